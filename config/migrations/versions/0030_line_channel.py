"""the LINE channel: webhook events taken in (redeliveries do nothing), LINE users (following,
the chat's state), bookings linked to a LINE user; "line" a booking channel and a message
channel

Revision ID: 0030
Revises: 0025
Create Date: 2026-12-04 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHANNELS_BEFORE = "channel IN ('ivr', 'web', 'agent')"
_CHANNELS_AFTER = "channel IN ('ivr', 'web', 'agent', 'line')"


def upgrade() -> None:
    op.create_table(
        "line_event",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_line_event")),
    )
    op.create_index(op.f("ix_line_event_received_at"), "line_event", ["received_at"])
    op.create_table(
        "line_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_hmac", sa.String(length=64), nullable=False),
        sa.Column("user_enc", sa.Text(), nullable=False),
        sa.Column("following", sa.Boolean(), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("state_enc", sa.Text(), nullable=True),
        sa.Column("state_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_line_user")),
        sa.UniqueConstraint("user_hmac", name=op.f("uq_line_user_user_hmac")),
    )
    op.create_table(
        "line_link",
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("user_enc", sa.Text(), nullable=False),
        sa.Column("user_hmac", sa.String(length=64), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["booking.id"],
            name=op.f("fk_line_link_booking_id_booking"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("booking_id", name=op.f("pk_line_link")),
    )
    op.create_index(op.f("ix_line_link_user_hmac"), "line_link", ["user_hmac"])
    with op.batch_alter_table("booking") as batch:
        batch.drop_constraint(batch.f("ck_booking_channel"), type_="check")
        batch.create_check_constraint("channel", _CHANNELS_AFTER)
    with op.batch_alter_table("message") as batch:
        batch.drop_constraint(batch.f("ck_message_channel_known"), type_="check")
        batch.create_check_constraint("channel_known", "channel IN ('sms', 'voice', 'line')")


def downgrade() -> None:
    op.execute("DELETE FROM message WHERE channel = 'line'")  # pushes: no SMS was ever sent
    with op.batch_alter_table("message") as batch:
        batch.drop_constraint(batch.f("ck_message_channel_known"), type_="check")
        batch.create_check_constraint("channel_known", "channel IN ('sms', 'voice')")
    # The bookings made in the chat stay; they count as the web's, as their quotas did.
    op.execute("UPDATE booking SET channel = 'web' WHERE channel = 'line'")
    with op.batch_alter_table("booking") as batch:
        batch.drop_constraint(batch.f("ck_booking_channel"), type_="check")
        batch.create_check_constraint("channel", _CHANNELS_BEFORE)
    op.drop_index(op.f("ix_line_link_user_hmac"), table_name="line_link")
    op.drop_table("line_link")
    op.drop_table("line_user")
    op.drop_index(op.f("ix_line_event_received_at"), table_name="line_event")
    op.drop_table("line_event")
