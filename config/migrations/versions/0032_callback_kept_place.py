"""a callback keeps the caller's place in line (when they entered the queue); a queue's
answers by time, for the wait estimate

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-04 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("callback_request") as batch_op:
        batch_op.add_column(sa.Column("place_at", sa.DateTime(timezone=True), nullable=True))
    # Callbacks asked for before: their place is when they were asked for.
    op.execute("UPDATE callback_request SET place_at = requested_at WHERE place_at IS NULL")
    with op.batch_alter_table("callback_request") as batch_op:
        batch_op.alter_column("place_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_index("ix_callback_request_place", ["status", "place_at"], unique=False)
    with op.batch_alter_table("call") as batch_op:
        batch_op.create_index("ix_call_queue_answered_at", ["queue", "answered_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call") as batch_op:
        batch_op.drop_index("ix_call_queue_answered_at")
    with op.batch_alter_table("callback_request") as batch_op:
        batch_op.drop_index("ix_callback_request_place")
        batch_op.drop_column("place_at")
