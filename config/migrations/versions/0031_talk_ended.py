"""when a caller's talk with an agent ended (the wrap-up starts there)

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call") as batch_op:
        batch_op.add_column(sa.Column("talk_ended_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call") as batch_op:
        batch_op.drop_column("talk_ended_at")
