"""the ward's profile, and venues' and services' words by language

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 15:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("venue", "service"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("texts", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "ward_profile",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_ward_profile_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ward_profile")),
    )


def downgrade() -> None:
    op.drop_table("ward_profile")
    for table in ("service", "venue"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("texts")
