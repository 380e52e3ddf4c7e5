"""callback claims

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 22:31:09.796912
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("callback_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callback_request", schema=None) as batch_op:
        batch_op.drop_column("outcome")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("claimed_by")
