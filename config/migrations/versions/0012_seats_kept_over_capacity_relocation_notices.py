"""seats kept over capacity, relocation notices

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEATS_NOW = (
    "booked >= 0 AND held >= 0 AND kept_over >= 0 AND capacity >= 0 "
    "AND booked + held <= capacity + kept_over"
)
SEATS_BEFORE = "booked >= 0 AND held >= 0 AND booked + held <= capacity"
KINDS_NOW = (
    "kind IN ('confirmation', 'moved', 'cancelled', 'reminder', 'reminder_morning', 'relocated')"
)
KINDS_BEFORE = "kind IN ('confirmation', 'moved', 'cancelled', 'reminder', 'reminder_morning')"


def upgrade() -> None:
    with op.batch_alter_table("slot", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kept_over", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.drop_constraint(batch_op.f("ck_slot_seats_within_capacity"), type_="check")
        batch_op.create_check_constraint("seats_within_capacity", SEATS_NOW)
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_message_kind_known"), type_="check")
        batch_op.create_check_constraint("kind_known", KINDS_NOW)


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_message_kind_known"), type_="check")
        batch_op.create_check_constraint("kind_known", KINDS_BEFORE)
    with op.batch_alter_table("slot", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_slot_seats_within_capacity"), type_="check")
        batch_op.create_check_constraint("seats_within_capacity", SEATS_BEFORE)
        batch_op.drop_column("kept_over")
