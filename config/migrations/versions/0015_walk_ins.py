"""walk-ins

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-24 00:41:13.964330
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "walk_in",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("venue_id", sa.String(length=40), nullable=False),
        sa.Column("service_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("party_size", sa.Integer(), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("party_size >= 1", name=op.f("ck_walk_in_party_positive")),
        sa.ForeignKeyConstraint(
            ["service_id"], ["service.id"], name=op.f("fk_walk_in_service_id_service")
        ),
        sa.ForeignKeyConstraint(["slot_id"], ["slot.id"], name=op.f("fk_walk_in_slot_id_slot")),
        sa.ForeignKeyConstraint(["venue_id"], ["venue.id"], name=op.f("fk_walk_in_venue_id_venue")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_walk_in")),
        sa.UniqueConstraint("venue_id", "day", "number", name="one_number_a_day"),
    )


def downgrade() -> None:
    op.drop_table("walk_in")
