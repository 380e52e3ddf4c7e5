"""the waitlist: entries, and messages about a waitlist offer

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-17 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS_NOW = (
    "kind IN ('confirmation', 'moved', 'cancelled', 'reminder', 'reminder_morning', 'relocated', "
    "'waitlist_offer', 'lottery_lost', 'drawn')"
)
KINDS_BEFORE = (
    "kind IN ('confirmation', 'moved', 'cancelled', 'reminder', 'reminder_morning', 'relocated')"
)


def upgrade() -> None:
    op.create_table(
        "waitlist_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("venue_id", sa.String(length=40), nullable=False),
        sa.Column("service_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=True),
        sa.Column("party_size", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("phone_enc", sa.Text(), nullable=True),
        sa.Column("phone_hmac", sa.String(length=64), nullable=True),
        sa.Column("phone_line_type", sa.String(length=20), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("hold_id", sa.String(length=32), nullable=True),
        sa.Column("offered_slot_id", sa.Integer(), nullable=True),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offer_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offer_noticed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        # A lottery's loser put on the list by the draw (no foreign key: the lottery's tables
        # come in a later revision), and when their "not drawn" message was planned.
        sa.Column("lottery_id", sa.Integer(), nullable=True),
        sa.Column("lottery_noticed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("party_size >= 1", name=op.f("ck_waitlist_entry_party_positive")),
        sa.CheckConstraint(
            "channel IN ('ivr', 'web', 'agent')", name=op.f("ck_waitlist_entry_channel")
        ),
        sa.CheckConstraint(
            "status IN ('waiting', 'offered', 'booked', 'lapsed', 'left', 'closed')",
            name=op.f("ck_waitlist_entry_status"),
        ),
        sa.CheckConstraint(
            "(status = 'offered') = (hold_id IS NOT NULL AND offer_expires_at IS NOT NULL)",
            name=op.f("ck_waitlist_entry_offer_has_hold"),
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_waitlist_entry_booking_id_booking")
        ),
        sa.ForeignKeyConstraint(
            ["offered_slot_id"], ["slot.id"], name=op.f("fk_waitlist_entry_offered_slot_id_slot")
        ),
        sa.ForeignKeyConstraint(
            ["service_id"], ["service.id"], name=op.f("fk_waitlist_entry_service_id_service")
        ),
        sa.ForeignKeyConstraint(
            ["slot_id"], ["slot.id"], name=op.f("fk_waitlist_entry_slot_id_slot")
        ),
        sa.ForeignKeyConstraint(
            ["venue_id"], ["venue.id"], name=op.f("fk_waitlist_entry_venue_id_venue")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_entry")),
        sa.UniqueConstraint("token", name=op.f("uq_waitlist_entry_token")),
    )
    op.create_index(
        "ix_waitlist_entry_queue",
        "waitlist_entry",
        ["venue_id", "service_id", "day", "status", "id"],
    )
    op.create_index("ix_waitlist_entry_phone", "waitlist_entry", ["phone_hmac"])
    op.create_index("ix_waitlist_entry_hold", "waitlist_entry", ["hold_id"])
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waitlist_entry_id", sa.Integer(), nullable=True))
        batch_op.alter_column("booking_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_message_waitlist_entry_id_waitlist_entry"),
            "waitlist_entry",
            ["waitlist_entry_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_unique_constraint(
            "once_per_offer", ["waitlist_entry_id", "booking_version", "kind", "channel", "copy"]
        )
        batch_op.create_check_constraint(
            "booking_or_offer", "(booking_id IS NULL) <> (waitlist_entry_id IS NULL)"
        )
        batch_op.drop_constraint(batch_op.f("ck_message_kind_known"), type_="check")
        batch_op.create_check_constraint("kind_known", KINDS_NOW)


def downgrade() -> None:
    op.execute("DELETE FROM message WHERE waitlist_entry_id IS NOT NULL")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_message_kind_known"), type_="check")
        batch_op.create_check_constraint("kind_known", KINDS_BEFORE)
        batch_op.drop_constraint(batch_op.f("ck_message_booking_or_offer"), type_="check")
        batch_op.drop_constraint("once_per_offer", type_="unique")
        batch_op.drop_constraint(
            batch_op.f("fk_message_waitlist_entry_id_waitlist_entry"), type_="foreignkey"
        )
        batch_op.alter_column("booking_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("waitlist_entry_id")
    op.drop_index("ix_waitlist_entry_hold", table_name="waitlist_entry")
    op.drop_index("ix_waitlist_entry_phone", table_name="waitlist_entry")
    op.drop_index("ix_waitlist_entry_queue", table_name="waitlist_entry")
    op.drop_table("waitlist_entry")
