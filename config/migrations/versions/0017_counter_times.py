"""the counter's times: bookings checked in and called, walk-ins called

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-24 02:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("called_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("walk_in", schema=None) as batch_op:
        batch_op.add_column(sa.Column("called_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("walk_in", schema=None) as batch_op:
        batch_op.drop_column("called_at")
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.drop_column("called_at")
        batch_op.drop_column("checked_in_at")
