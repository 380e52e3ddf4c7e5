"""lottery (抽選): lotteries, applications by household, one per notice number; slots kept for
a lottery

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-17 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lottery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.String(length=40), nullable=False),
        sa.Column("applications_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applications_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("draw_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=True),
        sa.Column("input_digest", sa.String(length=64), nullable=True),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("record", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open', 'drawn')", name=op.f("ck_lottery_status")),
        sa.CheckConstraint(
            "applications_from < applications_until AND applications_until <= draw_at",
            name=op.f("ck_lottery_times_in_order"),
        ),
        sa.ForeignKeyConstraint(
            ["service_id"], ["service.id"], name=op.f("fk_lottery_service_id_service")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lottery")),
    )
    op.create_index("ix_lottery_due", "lottery", ["status", "draw_at"])
    op.create_table(
        "lottery_application",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lottery_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("party_size", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("name_kana_enc", sa.Text(), nullable=True),
        sa.Column("phone_enc", sa.Text(), nullable=True),
        sa.Column("phone_hmac", sa.String(length=64), nullable=True),
        sa.Column("phone_line_type", sa.String(length=20), nullable=True),
        sa.Column("birth_date_enc", sa.Text(), nullable=True),
        sa.Column("proxy", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("preferences", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("party_size >= 1", name=op.f("ck_lottery_application_party_positive")),
        sa.CheckConstraint(
            "outcome IN ('pending', 'won', 'lost')", name=op.f("ck_lottery_application_outcome")
        ),
        sa.CheckConstraint(
            "channel IN ('ivr', 'web', 'agent')", name=op.f("ck_lottery_application_channel")
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_lottery_application_booking_id_booking")
        ),
        sa.ForeignKeyConstraint(
            ["lottery_id"], ["lottery.id"], name=op.f("fk_lottery_application_lottery_id_lottery")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lottery_application")),
    )
    op.create_index("ix_lottery_application_lottery", "lottery_application", ["lottery_id", "id"])
    op.create_index(
        op.f("ix_lottery_application_phone_hmac"), "lottery_application", ["phone_hmac"]
    )
    op.create_table(
        "lottery_entrant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lottery_id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("notice_number_enc", sa.Text(), nullable=True),
        sa.Column("notice_number_hmac", sa.String(length=64), nullable=False),
        sa.Column("braille", sa.Boolean(), nullable=False),
        sa.Column("e_certificate", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["lottery_application.id"],
            name=op.f("fk_lottery_entrant_application_id_lottery_application"),
        ),
        sa.ForeignKeyConstraint(
            ["lottery_id"], ["lottery.id"], name=op.f("fk_lottery_entrant_lottery_id_lottery")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lottery_entrant")),
        sa.UniqueConstraint("lottery_id", "notice_number_hmac", name="one_application_per_notice"),
    )
    op.create_index(
        op.f("ix_lottery_entrant_application_id"), "lottery_entrant", ["application_id"]
    )
    with op.batch_alter_table("slot", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lottery_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_slot_lottery_id"), ["lottery_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_slot_lottery_id_lottery"), "lottery", ["lottery_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("slot", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_slot_lottery_id_lottery"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_slot_lottery_id"))
        batch_op.drop_column("lottery_id")
    op.drop_index(op.f("ix_lottery_entrant_application_id"), table_name="lottery_entrant")
    op.drop_table("lottery_entrant")
    op.drop_index(op.f("ix_lottery_application_phone_hmac"), table_name="lottery_application")
    op.drop_index("ix_lottery_application_lottery", table_name="lottery_application")
    op.drop_table("lottery_application")
    op.drop_index("ix_lottery_due", table_name="lottery")
    op.drop_table("lottery")
