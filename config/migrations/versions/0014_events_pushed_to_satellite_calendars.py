"""events pushed to satellite calendars

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24 00:36:43.040124
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_pushed_event",
        sa.Column("venue_id", sa.String(length=40), nullable=False),
        sa.Column("uid", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("venue_id", "uid", name=op.f("pk_calendar_pushed_event")),
    )


def downgrade() -> None:
    op.drop_table("calendar_pushed_event")
