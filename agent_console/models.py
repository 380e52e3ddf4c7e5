"""Tables of the agent console: staff accounts, their sessions, and the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from booking.base import Base, UTCDateTime

ROLES = ("agent", "counter_manager", "supervisor", "auditor")


class StaffUser(Base):
    """A person on the ward's or the call center's staff, with their own login (the contract
    forbids shared IDs). Never deleted: a leaver is deactivated, so the audit log keeps naming
    who did what."""

    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login_id: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(Text)  # argon2id
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The phone the agent takes calls on (E.164): a queued caller is put through to it.
    desk_phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # Set when a supervisor made the account or reset its password: the temporary password
    # they handed over must be replaced before the console shows anything else.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # The second factor: the authenticator app's TOTP secret, encrypted like residents' data
    # (never logged); one being set up until its first code confirms it; the time step of the
    # last code accepted (a code is used once).
    totp_secret_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    totp_pending_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("role IN (" + ", ".join(f"'{r}'" for r in ROLES) + ")", name="role_known"),
    )


class StaffSession(Base):
    """A signed-in browser. The cookie holds a random token; only its hash is stored, so a copy
    of the table signs nobody in. Ended at logout, after idle time, or when the account is
    deactivated (at once: every request looks the session up)."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # "second_factor" between a right password and a right code: such a session opens nothing.
    pending: Mapped[str | None] = mapped_column(String(20), nullable=True)

    __table_args__ = (Index("ix_staff_session_staff", "staff_id", "ended_at"),)


class StaffRecoveryCode(Base):
    """A one-time code for signing in without the authenticator (a lost phone): ten are
    shown once at enrolment and stored hashed with argon2, like passwords."""

    __tablename__ = "staff_recovery_code"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    code_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_staff_recovery_code_staff", "staff_id", "used_at"),)


class AuditEvent(Base):
    """Who did what to which resident's data, when, from where. Append-only: each event carries
    the hash of the one before, so an edited or deleted event breaks the chain
    (``madoguchi audit check``)."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), nullable=True)
    login_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))  # e.g. booking.view, booking.cancel
    subject_kind: Mapped[str] = mapped_column(String(20))  # booking, call, staff, ...
    subject_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")  # never personal data itself
    client: Mapped[str] = mapped_column(String(64))  # the address the request came from
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    __table_args__ = (
        Index("ix_audit_event_at", "at"),
        Index("ix_audit_event_subject", "subject_kind", "subject_id"),
    )


class AuditHead(Base):
    """One row: the hash of the newest event. Appending locks it, so concurrent appends form one
    chain rather than two events claiming the same predecessor."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_hash: Mapped[str] = mapped_column(String(64))
    events: Mapped[int] = mapped_column(Integer, default=0)
    # Events older than the audit log's retention are removed from the front of the chain: the
    # hash the oldest kept event follows, and how many went, so the chain still checks.
    anchor_hash: Mapped[str] = mapped_column(String(64), server_default="0" * 64)
    purged: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The purge's cutoff: the only events the append-only trigger lets go are older than this.
    purge_before: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ErasureRecord(Base):
    """消去記録: one run that erased residents' personal data, for the ward's records and a
    certificate of erasure: what, how many, when, by which job, up to which date."""

    __tablename__ = "erasure_record"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    job: Mapped[str] = mapped_column(String(60))  # e.g. retention (daily), erase --all
    scope: Mapped[str] = mapped_column(String(20))  # retention | everything
    cutoff: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # What was erased, as JSON: {"bookings": 12, "messages": 30, ...}
    counts: Mapped[str] = mapped_column(Text)
    total: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(Text)  # how: fields overwritten, rows kept for figures


class InquiryCategory(Base):
    """What an inquiry was about: a fixed list a supervisor can edit."""

    __tablename__ = "inquiry_category"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_ja: Mapped[str] = mapped_column(String(100))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


RESOLUTIONS = ("resolved", "booked", "changed", "callback", "escalated", "unresolved")


class Inquiry(Base):
    """What an agent answered: the category, a note, the resolution; linked to the call and
    the booking it was about. The note is free text a resident's details may slip into, so it
    is kept encrypted like the rest of their data."""

    __tablename__ = "inquiry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int | None] = mapped_column(
        ForeignKey("call.id", ondelete="SET NULL"), nullable=True
    )
    booking_id: Mapped[int | None] = mapped_column(
        ForeignKey("booking.id", ondelete="SET NULL"), nullable=True
    )
    # The caller's number as a keyed hash: finds earlier inquiries when the same number calls.
    phone_hmac: Mapped[str | None] = mapped_column(String(64), nullable=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    category_id: Mapped[str] = mapped_column(ForeignKey("inquiry_category.id"))
    note_enc: Mapped[str] = mapped_column(Text)
    resolution: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "resolution IN (" + ", ".join(f"'{r}'" for r in RESOLUTIONS) + ")",
            name="resolution_known",
        ),
        Index("ix_inquiry_phone", "phone_hmac", "created_at"),
    )


AGENT_STATES = ("ready", "not_ready", "offline")
NOT_READY_REASONS = ("break", "training", "meeting")


class AgentState(Base):
    """The state an agent chose (ready, or not ready with a reason), or offline once signed out
    or their session lapsed. One row per agent: taking a call locks it, so two tabs of one
    agent cannot take two calls. On a call and wrap-up are not stored: they follow from the
    agent's calls (ivr's call rows)."""

    __tablename__ = "agent_state"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(12), nullable=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "state IN (" + ", ".join(f"'{s}'" for s in AGENT_STATES) + ")", name="state_known"
        ),
    )


class AgentStateSpan(Base):
    """One stretch of a chosen state (ready, or not ready with its reason), from when it was
    chosen to when the next was (open while it lasts): what time per state is summed from."""

    __tablename__ = "agent_state_span"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    state: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(12), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        CheckConstraint("state IN ('ready', 'not_ready')", name="span_state_known"),
        Index("ix_agent_state_span_started", "started_at", "staff_id"),
        Index("ix_agent_state_span_open", "staff_id", "ended_at"),
    )
