"""message copies, claims and opt-outs

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 23:36:10.997231
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reminder_opt_out",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("to_hmac", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "source IN ('resident', 'agent', 'provider', 'call')",
            name=op.f("ck_reminder_opt_out_source_known"),
        ),
        sa.CheckConstraint(
            "(booking_id IS NULL) <> (to_hmac IS NULL)",
            name=op.f("ck_reminder_opt_out_booking_or_number"),
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["booking.id"],
            name=op.f("fk_reminder_opt_out_booking_id_booking"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminder_opt_out")),
        sa.UniqueConstraint("booking_id", name=op.f("uq_reminder_opt_out_booking_id")),
        sa.UniqueConstraint("to_hmac", name=op.f("uq_reminder_opt_out_to_hmac")),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("copy", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(batch_op.f("once_per_version"), type_="unique")
        batch_op.create_unique_constraint(
            "once_per_version", ["booking_id", "booking_version", "kind", "channel", "copy"]
        )


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_constraint("once_per_version", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("once_per_version"), ["booking_id", "booking_version", "kind"]
        )
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("copy")

    op.drop_table("reminder_opt_out")
