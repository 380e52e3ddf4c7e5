"""agents' states: the state each agent chose (ready, not ready with a reason, offline), the
log of spans time per state is summed from, and an index on agents' open calls

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_state",
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=12), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('ready', 'not_ready', 'offline')", name=op.f("ck_agent_state_state_known")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_user.id"], name=op.f("fk_agent_state_staff_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("staff_id", name=op.f("pk_agent_state")),
    )
    op.create_table(
        "agent_state_span",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=12), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('ready', 'not_ready')", name=op.f("ck_agent_state_span_span_state_known")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_user.id"], name=op.f("fk_agent_state_span_staff_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_state_span")),
    )
    op.create_index("ix_agent_state_span_started", "agent_state_span", ["started_at", "staff_id"])
    op.create_index("ix_agent_state_span_open", "agent_state_span", ["staff_id", "ended_at"])
    op.create_index("ix_call_agent_open", "call", ["agent_staff_id", "wrapped_at"])


def downgrade() -> None:
    op.drop_index("ix_call_agent_open", table_name="call")
    op.drop_index("ix_agent_state_span_open", table_name="agent_state_span")
    op.drop_index("ix_agent_state_span_started", table_name="agent_state_span")
    op.drop_table("agent_state_span")
    op.drop_table("agent_state")
