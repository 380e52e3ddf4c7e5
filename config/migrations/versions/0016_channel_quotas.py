"""channel quotas: seats kept for the phone line and for walk-ins until a set time

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-24 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("slot", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kept_for_phone", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("kept_for_walk_in", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("kept_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(
            "kept_seats_not_negative", "kept_for_phone >= 0 AND kept_for_walk_in >= 0"
        )


def downgrade() -> None:
    with op.batch_alter_table("slot", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_slot_kept_seats_not_negative"), type_="check")
        batch_op.drop_column("kept_until")
        batch_op.drop_column("kept_for_walk_in")
        batch_op.drop_column("kept_for_phone")
