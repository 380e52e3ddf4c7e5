"""ready cards: the notice numbers (as keyed hashes) of cards that have arrived, by venue

Revision ID: 0027
Revises: 0025
Create Date: 2026-12-04 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ready_card",
        sa.Column("notice_number_hmac", sa.String(length=64), nullable=False),
        sa.Column("venue_id", sa.String(length=40), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["venue_id"], ["venue.id"], name=op.f("fk_ready_card_venue_id_venue")
        ),
        sa.PrimaryKeyConstraint("notice_number_hmac", name=op.f("pk_ready_card")),
    )
    op.create_index("ix_ready_card_imported_at", "ready_card", ["imported_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ready_card_imported_at", table_name="ready_card")
    op.drop_table("ready_card")
