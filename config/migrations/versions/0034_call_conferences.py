"""callers put through to agents by a Twilio conference: its name and the agent's leg on the
call, the caller's hold and the agent's raised hand; the supervisors listening, whispering or
joined (call_monitor)

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-04 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call") as batch_op:
        batch_op.add_column(sa.Column("conference", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("agent_leg_sid", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("held_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("hand_raised_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "call_monitor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("leg_sid", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "mode IN ('listen', 'whisper', 'join')", name=op.f("ck_call_monitor_mode_known")
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_call_monitor_call_id_call"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_monitor")),
    )
    op.create_index("uq_call_monitor_staff", "call_monitor", ["call_id", "staff_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_call_monitor_staff", table_name="call_monitor")
    op.drop_table("call_monitor")
    with op.batch_alter_table("call") as batch_op:
        batch_op.drop_column("hand_raised_at")
        batch_op.drop_column("held_at")
        batch_op.drop_column("agent_leg_sid")
        batch_op.drop_column("conference")
