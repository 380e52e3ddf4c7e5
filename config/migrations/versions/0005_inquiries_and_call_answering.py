"""inquiries and call answering

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 22:25:47.243975
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inquiry_category",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name_ja", sa.String(length=100), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inquiry_category")),
    )
    op.create_table(
        "inquiry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("phone_hmac", sa.String(length=64), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.String(length=40), nullable=False),
        sa.Column("note_enc", sa.Text(), nullable=False),
        sa.Column("resolution", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "resolution IN ('resolved', 'booked', 'changed', 'callback', 'escalated', "
            "'unresolved')",
            name=op.f("ck_inquiry_resolution_known"),
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["booking.id"],
            name=op.f("fk_inquiry_booking_id_booking"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_inquiry_call_id_call"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["inquiry_category.id"],
            name=op.f("fk_inquiry_category_id_inquiry_category"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_user.id"], name=op.f("fk_inquiry_staff_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inquiry")),
    )
    with op.batch_alter_table("inquiry", schema=None) as batch_op:
        batch_op.create_index("ix_inquiry_phone", ["phone_hmac", "created_at"], unique=False)

    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent_staff_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("wrapped_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("disposition", sa.String(length=20), nullable=True))

    categories = sa.table(
        "inquiry_category",
        sa.column("id", sa.String),
        sa.column("name_ja", sa.String),
        sa.column("sort_order", sa.Integer),
        sa.column("active", sa.Boolean),
    )
    op.bulk_insert(
        categories,
        [
            {"id": key, "name_ja": name, "sort_order": i, "active": True}
            for i, (key, name) in enumerate(
                [
                    ("booking", "予約（新規・変更・取消）"),
                    ("what_to_bring", "持ち物"),
                    ("lost_card", "カードの紛失"),
                    ("pin", "暗証番号"),
                    ("certificate", "電子証明書"),
                    ("complaint", "苦情・ご意見"),
                    ("other", "その他"),
                ]
            )
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_column("disposition")
        batch_op.drop_column("wrapped_at")
        batch_op.drop_column("answered_at")
        batch_op.drop_column("agent_staff_id")

    with op.batch_alter_table("inquiry", schema=None) as batch_op:
        batch_op.drop_index("ix_inquiry_phone")

    op.drop_table("inquiry")
    op.drop_table("inquiry_category")
