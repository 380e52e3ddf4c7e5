"""Tables of the phone line: each call, and the callbacks callers ask for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from booking.base import Base, UTCDateTime

OUTCOMES = (
    "in_progress",  # still on the line
    "booked",  # booked by itself
    "self_served",  # checked, moved or cancelled a booking, or heard the FAQ, without an agent
    "handed_to_agent",  # put through to the agents' queue and answered
    "callback_requested",  # asked to be called back instead of waiting
    "abandoned",  # hung up before finishing (in the menus or in the queue)
    "deflected",  # took the web booking's link by SMS and hung up (text-a-link)
)


class Call(Base):
    """One phone call (Twilio's CallSid): who called, the way through the menus, the outcome.

    The caller's number is personal data: kept encrypted with a keyed hash beside it, as the
    booking's phone is. The dialogue's working state (what the caller has keyed so far: notice
    numbers, birth date) is encrypted too, and cleared when the call ends.
    """

    __tablename__ = "call"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    caller_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    caller_hmac: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # valid (a Japanese number we could call back), withheld, or other (foreign, malformed)
    caller_kind: Mapped[str] = mapped_column(String(12))
    language: Mapped[str] = mapped_column(String(5), default="ja")
    outcome: Mapped[str] = mapped_column(String(20), default="in_progress")
    # The steps the caller went through, space-separated ("menu book_service book_party ...").
    path: Mapped[str] = mapped_column(Text, default="")
    booking_id: Mapped[int | None] = mapped_column(
        ForeignKey("booking.id", ondelete="SET NULL"), nullable=True
    )
    # The dialogue: the answer expected next (step name and its sequence number), the working
    # state, and the last reply, replayed when Twilio retries a webhook.
    expect: Mapped[str] = mapped_column(String(40), default="menu")
    seq: Mapped[int] = mapped_column(Integer, default=1)
    state_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_reply: Mapped[str] = mapped_column(Text, default="")
    queue: Mapped[str | None] = mapped_column(String(40), nullable=True)
    queue_result: Mapped[str | None] = mapped_column(String(20), nullable=True)
    wait_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The agent who took the call (a staff account id; no foreign key: the phone line does not
    # depend on the console), when they answered, and when they finished the wrap-up.
    agent_staff_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When the talk with the agent ended (the caller or the agent hung up): the wrap-up's start.
    talk_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    wrapped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    disposition: Mapped[str | None] = mapped_column(String(20), nullable=True)
    twilio_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    duration_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Put through by a Twilio conference: its name, the agent's leg in it (the participant a
    # whispering supervisor coaches), since when the caller is on hold, and since when the
    # agent has a hand raised for help.
    conference: Mapped[str | None] = mapped_column(String(80), nullable=True)
    agent_leg_sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    hand_raised_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        CheckConstraint(
            "outcome IN (" + ", ".join(f"'{o}'" for o in OUTCOMES) + ")", name="outcome_known"
        ),
        Index("ix_call_started_at", "started_at"),
        # The wait estimate reads a queue's last hour of answers at every turn of the wait loop.
        Index("ix_call_queue_answered_at", "queue", "answered_at"),
        # An agent's calls not yet wrapped up (their state, polled by every console).
        Index("ix_call_agent_open", "agent_staff_id", "wrapped_at"),
    )


class CallbackRequest(Base):
    """A caller who would rather be called back than wait: the agents' callback list."""

    __tablename__ = "callback_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int | None] = mapped_column(
        ForeignKey("call.id", ondelete="SET NULL"), nullable=True
    )
    phone_enc: Mapped[str] = mapped_column(Text)
    phone_hmac: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(5))
    # Why the caller reached for a person: queue_wait, after_hours, error, ...
    reason: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | done
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The caller's place in line, kept: when they entered the agents' queue (a callback asked
    # for from the queue), else when it was asked for. The agents' list is in this order.
    place_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The agent who took it on (a staff account id) and what came of the call back.
    claimed_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        CheckConstraint("status IN ('open', 'done')", name="status_known"),
        Index("ix_callback_request_open", "status", "requested_at"),
        Index("ix_callback_request_place", "status", "place_at"),
    )


CALL_EVENTS = ("started", "entered_queue", "connected", "abandoned", "completed", "deflected")


class CallEvent(Base):
    """What happened to a call, when: the log the supervisor's wallboard is computed from
    (a call can enter the queue, be connected, or be abandoned at most once each here; the
    row for each is written when the webhook or the agent's action says so)."""

    __tablename__ = "call_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    language: Mapped[str] = mapped_column(String(5))

    __table_args__ = (
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in CALL_EVENTS) + ")", name="kind_known"
        ),
        Index("ix_call_event_at", "at", "kind"),
        Index("uq_call_event_once", "call_id", "kind", unique=True),
    )


class FaqEntry(Base):
    """A frequently asked question: what the IVR's option 3 speaks (key n for the n-th entry)
    and what agents read from in the console. Supervisors edit them."""

    __tablename__ = "faq_entry"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sort_order: Mapped[int] = mapped_column(Integer)
    title_ja: Mapped[str] = mapped_column(String(100))
    title_en: Mapped[str] = mapped_column(String(100))
    answer_ja: Mapped[str] = mapped_column(Text)
    answer_en: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LineEvent(Base):
    """A LINE webhook event taken in, by its ``webhookEventId``: LINE redelivers an event it
    thinks was not received, and the unique row makes the second delivery do nothing."""

    __tablename__ = "line_event"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class LineUser(Base):
    """A resident who added the ward's LINE Official Account: whether they still follow it (an
    unfollow, or a block, stops every LINE message at once), and the chat's working state
    (what they chose and typed so far: encrypted, and forgotten when it expires)."""

    __tablename__ = "line_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_hmac: Mapped[str] = mapped_column(String(64), unique=True)
    user_enc: Mapped[str] = mapped_column(Text)
    following: Mapped[bool] = mapped_column(Boolean, default=True)
    language: Mapped[str] = mapped_column(String(5), default="ja")
    state_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    state_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


MONITOR_MODES = ("listen", "whisper", "join")


class CallMonitor(Base):
    """A supervisor in a call's conference: their desk phone's leg, and how they are in it
    (listen: muted; whisper: coaching the agent, the caller does not hear; join: a full
    participant). One row per supervisor and call: a change of mode updates it."""

    __tablename__ = "call_monitor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    staff_id: Mapped[int] = mapped_column(Integer)
    leg_sid: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(10))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "mode IN (" + ", ".join(f"'{m}'" for m in MONITOR_MODES) + ")", name="mode_known"
        ),
        Index("uq_call_monitor_staff", "call_id", "staff_id", unique=True),
    )


class LinkRequest(Base):
    """A caller who pressed for the web booking's link by SMS (text-a-link): the phone line's
    outbox row, written in the call's own transaction. The reminders' pump turns it into a
    message (kind ``booking_link``) to the call's number and marks it planned; one per call."""

    __tablename__ = "link_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), unique=True)
    language: Mapped[str] = mapped_column(String(5))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_link_request_pending", "planned_at", "id"),)


SURVEY_KINDS = ("agent", "self_service")


class CallSurvey(Base):
    """A caller's answers to the short survey by keys, after an agent's call or a booking made
    by the line itself: satisfaction 1-5 and whether the matter was settled (either missing
    when the caller hung up midway). Nothing else: no recording, no number. One per call."""

    __tablename__ = "call_survey"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), unique=True)
    kind: Mapped[str] = mapped_column(String(12))
    language: Mapped[str] = mapped_column(String(5))
    score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    settled: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in SURVEY_KINDS) + ")", name="kind_known"
        ),
        CheckConstraint("score IS NULL OR score BETWEEN 1 AND 5", name="score_range"),
        Index("ix_call_survey_answered_at", "answered_at"),
    )
