"""walk-in tickets (整理券): a ticket's unguessable token, the resident's language and mobile
number (sealed, for the alerts), the desk a call sends them to; each venue's "N ahead" alert;
messages about a ticket

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS_BEFORE = (
    "kind IN ('confirmation', 'moved', 'cancelled', 'reminder', 'reminder_morning', 'relocated', "
    "'waitlist_offer', 'lottery_lost', 'drawn')"
)
KINDS_NOW = (
    "kind IN ('confirmation', 'moved', 'cancelled', 'reminder', 'reminder_morning', 'relocated', "
    "'waitlist_offer', 'lottery_lost', 'drawn', 'queue_near', 'queue_called')"
)
# About exactly one of a booking, a waitlist entry, a walk-in's ticket.
ONE_SUBJECT = (
    "CASE WHEN walk_in_id IS NULL THEN (booking_id IS NULL) <> (waitlist_entry_id IS NULL) "
    "ELSE booking_id IS NULL AND waitlist_entry_id IS NULL END"
)


def upgrade() -> None:
    with op.batch_alter_table("walk_in", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("language", sa.String(length=5), nullable=False, server_default="ja")
        )
        batch_op.add_column(sa.Column("phone_enc", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("phone_hmac", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("called_desk", sa.String(length=20), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_walk_in_token"), ["token"])
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.add_column(sa.Column("called_desk", sa.String(length=20), nullable=True))
    with op.batch_alter_table("venue", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("alert_ahead", sa.Integer(), nullable=False, server_default="3")
        )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("walk_in_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_message_walk_in_id_walk_in"),
            "walk_in",
            ["walk_in_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_unique_constraint(
            "once_per_ticket", ["walk_in_id", "booking_version", "kind", "channel", "copy"]
        )
        batch_op.drop_constraint(batch_op.f("ck_message_booking_or_offer"), type_="check")
        batch_op.create_check_constraint("one_subject", ONE_SUBJECT)
        batch_op.drop_constraint(batch_op.f("ck_message_kind_known"), type_="check")
        batch_op.create_check_constraint("kind_known", KINDS_NOW)


def downgrade() -> None:
    op.execute("DELETE FROM message WHERE walk_in_id IS NOT NULL")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_message_kind_known"), type_="check")
        batch_op.create_check_constraint("kind_known", KINDS_BEFORE)
        batch_op.drop_constraint(batch_op.f("ck_message_one_subject"), type_="check")
        batch_op.create_check_constraint(
            "booking_or_offer", "(booking_id IS NULL) <> (waitlist_entry_id IS NULL)"
        )
        batch_op.drop_constraint("once_per_ticket", type_="unique")
        batch_op.drop_constraint(batch_op.f("fk_message_walk_in_id_walk_in"), type_="foreignkey")
        batch_op.drop_column("walk_in_id")
    with op.batch_alter_table("venue", schema=None) as batch_op:
        batch_op.drop_column("alert_ahead")
    with op.batch_alter_table("booking", schema=None) as batch_op:
        batch_op.drop_column("called_desk")
    with op.batch_alter_table("walk_in", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_walk_in_token"), type_="unique")
        batch_op.drop_column("called_desk")
        batch_op.drop_column("phone_hmac")
        batch_op.drop_column("phone_enc")
        batch_op.drop_column("language")
        batch_op.drop_column("token")
