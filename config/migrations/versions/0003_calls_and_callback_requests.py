"""calls and callback requests

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 21:57:42.558593
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("caller_enc", sa.Text(), nullable=True),
        sa.Column("caller_hmac", sa.String(length=64), nullable=True),
        sa.Column("caller_kind", sa.String(length=12), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("expect", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("state_enc", sa.Text(), nullable=True),
        sa.Column("last_reply", sa.Text(), nullable=False),
        sa.Column("queue", sa.String(length=40), nullable=True),
        sa.Column("queue_result", sa.String(length=20), nullable=True),
        sa.Column("wait_seconds", sa.Integer(), nullable=True),
        sa.Column("twilio_status", sa.String(length=20), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('in_progress', 'booked', 'self_served', 'handed_to_agent', "
            "'callback_requested', 'abandoned')",
            name=op.f("ck_call_outcome_known"),
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["booking.id"],
            name=op.f("fk_call_booking_id_booking"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call")),
        sa.UniqueConstraint("call_sid", name=op.f("uq_call_call_sid")),
    )
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.create_index("ix_call_started_at", ["started_at"], unique=False)

    op.create_table(
        "callback_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("phone_enc", sa.Text(), nullable=False),
        sa.Column("phone_hmac", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'done')", name=op.f("ck_callback_request_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["call.id"],
            name=op.f("fk_callback_request_call_id_call"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_request")),
    )
    with op.batch_alter_table("callback_request", schema=None) as batch_op:
        batch_op.create_index("ix_callback_request_open", ["status", "requested_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("callback_request", schema=None) as batch_op:
        batch_op.drop_index("ix_callback_request_open")

    op.drop_table("callback_request")
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_index("ix_call_started_at")

    op.drop_table("call")
