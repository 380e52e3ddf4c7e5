"""text-a-link and the survey: the phone line's requests for the web booking's link (its
outbox), messages about a call (kind booking_link), the callers' survey answers; calls and
call events may be "deflected"

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-04 19:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTCOMES_BEFORE = (
    "outcome IN ('in_progress', 'booked', 'self_served', 'handed_to_agent', "
    "'callback_requested', 'abandoned')"
)
OUTCOMES_NOW = (
    "outcome IN ('in_progress', 'booked', 'self_served', 'handed_to_agent', "
    "'callback_requested', 'abandoned', 'deflected')"
)
EVENTS_BEFORE = "kind IN ('started', 'entered_queue', 'connected', 'abandoned', 'completed')"
EVENTS_NOW = (
    "kind IN ('started', 'entered_queue', 'connected', 'abandoned', 'completed', 'deflected')"
)
KINDS_BEFORE = (
    "kind IN ('confirmation', 'moved', 'cancelled', 'reminder', 'reminder_morning', 'relocated', "
    "'waitlist_offer', 'lottery_lost', 'drawn', 'queue_near', 'queue_called')"
)
KINDS_NOW = (
    "kind IN ('confirmation', 'moved', 'cancelled', 'reminder', 'reminder_morning', 'relocated', "
    "'waitlist_offer', 'lottery_lost', 'drawn', 'queue_near', 'queue_called', 'booking_link')"
)
ONE_SUBJECT_BEFORE = (
    "CASE WHEN walk_in_id IS NULL THEN (booking_id IS NULL) <> (waitlist_entry_id IS NULL) "
    "ELSE booking_id IS NULL AND waitlist_entry_id IS NULL END"
)
# About exactly one of a booking, a waitlist entry, a walk-in's ticket, a call.
ONE_SUBJECT_NOW = (
    "CASE WHEN call_id IS NOT NULL "
    "THEN booking_id IS NULL AND waitlist_entry_id IS NULL AND walk_in_id IS NULL "
    "WHEN walk_in_id IS NULL THEN (booking_id IS NULL) <> (waitlist_entry_id IS NULL) "
    "ELSE booking_id IS NULL AND waitlist_entry_id IS NULL END"
)


def upgrade() -> None:
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_call_outcome_known"), type_="check")
        batch_op.create_check_constraint("outcome_known", OUTCOMES_NOW)
    with op.batch_alter_table("call_event", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_call_event_kind_known"), type_="check")
        batch_op.create_check_constraint("kind_known", EVENTS_NOW)
    op.create_table(
        "link_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_link_request_call_id_call"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_request")),
        sa.UniqueConstraint("call_id", name=op.f("uq_link_request_call_id")),
    )
    with op.batch_alter_table("link_request", schema=None) as batch_op:
        batch_op.create_index("ix_link_request_pending", ["planned_at", "id"], unique=False)
    op.create_table(
        "call_survey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("settled", sa.Boolean(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('agent', 'self_service')", name=op.f("ck_call_survey_kind_known")
        ),
        sa.CheckConstraint(
            "score IS NULL OR score BETWEEN 1 AND 5", name=op.f("ck_call_survey_score_range")
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call.id"], name=op.f("fk_call_survey_call_id_call"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_survey")),
        sa.UniqueConstraint("call_id", name=op.f("uq_call_survey_call_id")),
    )
    with op.batch_alter_table("call_survey", schema=None) as batch_op:
        batch_op.create_index("ix_call_survey_answered_at", ["answered_at"], unique=False)
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("call_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_message_call_id_call"), "call", ["call_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_unique_constraint(
            "once_per_call", ["call_id", "booking_version", "kind", "channel", "copy"]
        )
        batch_op.drop_constraint(batch_op.f("ck_message_one_subject"), type_="check")
        batch_op.create_check_constraint("one_subject", ONE_SUBJECT_NOW)
        batch_op.drop_constraint(batch_op.f("ck_message_kind_known"), type_="check")
        batch_op.create_check_constraint("kind_known", KINDS_NOW)


def downgrade() -> None:
    op.execute("DELETE FROM message WHERE call_id IS NOT NULL")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_message_kind_known"), type_="check")
        batch_op.create_check_constraint("kind_known", KINDS_BEFORE)
        batch_op.drop_constraint(batch_op.f("ck_message_one_subject"), type_="check")
        batch_op.create_check_constraint("one_subject", ONE_SUBJECT_BEFORE)
        batch_op.drop_constraint("once_per_call", type_="unique")
        batch_op.drop_constraint(batch_op.f("fk_message_call_id_call"), type_="foreignkey")
        batch_op.drop_column("call_id")
    with op.batch_alter_table("call_survey", schema=None) as batch_op:
        batch_op.drop_index("ix_call_survey_answered_at")
    op.drop_table("call_survey")
    with op.batch_alter_table("link_request", schema=None) as batch_op:
        batch_op.drop_index("ix_link_request_pending")
    op.drop_table("link_request")
    op.execute("DELETE FROM call_event WHERE kind = 'deflected'")
    op.execute("UPDATE call SET outcome = 'self_served' WHERE outcome = 'deflected'")
    with op.batch_alter_table("call_event", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_call_event_kind_known"), type_="check")
        batch_op.create_check_constraint("kind_known", EVENTS_BEFORE)
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_call_outcome_known"), type_="check")
        batch_op.create_check_constraint("outcome_known", OUTCOMES_BEFORE)
