"""Tables of the slot engine: venues, services, sessions, slots, holds, bookings, the outbox."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from booking.base import Base, UTCDateTime


class Venue(Base):
    """A place residents visit: the main office, a branch office or a pop-up venue."""

    __tablename__ = "venue"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_ja: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # main | branch | popup
    address_ja: Mapped[str] = mapped_column(String(300))
    address_en: Mapped[str] = mapped_column(String(300))
    # Bookings for a day close at this local time on the last bookable day before it
    # (None: at midnight).
    cutoff_time: Mapped[time | None] = mapped_column(Time, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    # A walk-in who left a mobile number hears by SMS when this many are ahead of them.
    alert_ahead: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    # The ward's words for the venue, by language: {"ko": {"name": ..., "address": ...},
    # "ja": {"access": ..., "barrier_free": ..., "parking": ...}, ...} (see booking/localized.py).
    texts: Mapped[dict[str, dict[str, str]]] = mapped_column(
        JSON, default=dict, server_default="{}"
    )

    __table_args__ = (CheckConstraint("kind IN ('main', 'branch', 'popup')", name="kind"),)


class Service(Base):
    """An appointment type: card pickup, application help, PIN reset, certificate renewal."""

    __tablename__ = "service"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_ja: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    requires_notice_number: Mapped[bool] = mapped_column(Boolean, default=False)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    # The ward's words for the service, by language: {"ko": {"name": ...}, "ja": {"bring": ...}}.
    texts: Mapped[dict[str, dict[str, str]]] = mapped_column(
        JSON, default=dict, server_default="{}"
    )


class WardProfile(Base):
    """Who runs the service: the ward's name, logo, call center and its rules, from the ward's JSON.

    One row; residents' pages, the phone line and the texts all read it.
    """

    __tablename__ = "ward_profile"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class VenueService(Base):
    """Which services a venue offers."""

    __tablename__ = "venue_service"

    venue_id: Mapped[str] = mapped_column(ForeignKey("venue.id"), primary_key=True)
    service_id: Mapped[str] = mapped_column(ForeignKey("service.id"), primary_key=True)


class WeeklyTemplate(Base):
    """Regular opening of one service line at a venue on one weekday."""

    __tablename__ = "weekly_template"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    venue_id: Mapped[str] = mapped_column(ForeignKey("venue.id"))
    service_id: Mapped[str] = mapped_column(ForeignKey("service.id"))
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday
    opens: Mapped[time] = mapped_column(Time)
    closes: Mapped[time] = mapped_column(Time)
    slot_minutes: Mapped[int] = mapped_column(Integer)
    seats: Mapped[int] = mapped_column(Integer)
    # Comma-separated weeks of the month (e.g. "2,4" for 2nd and 4th Sundays); None = every week.
    weeks_of_month: Mapped[str | None] = mapped_column(String(20), nullable=True)

    __table_args__ = (
        UniqueConstraint("venue_id", "service_id", "weekday", "opens"),
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("slot_minutes > 0 AND seats >= 0", name="positive"),
    )


class Closure(Base):
    """An ad-hoc closed day, for one venue or (venue_id NULL) for all."""

    __tablename__ = "closure"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    venue_id: Mapped[str | None] = mapped_column(ForeignKey("venue.id"), nullable=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Session(Base):
    """A service line at a venue open on one date for some hours."""

    __tablename__ = "session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    venue_id: Mapped[str] = mapped_column(ForeignKey("venue.id"))
    service_id: Mapped[str] = mapped_column(ForeignKey("service.id"))
    day: Mapped[date] = mapped_column(Date)
    opens: Mapped[time] = mapped_column(Time)
    closes: Mapped[time] = mapped_column(Time)
    kind: Mapped[str] = mapped_column(String(20))  # regular | holiday | popup | extra
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | closed
    closed_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)

    __table_args__ = (
        UniqueConstraint("venue_id", "service_id", "day", "opens"),
        Index("ix_session_day", "day"),
        CheckConstraint("status IN ('open', 'closed')", name="status"),
    )


class Slot(Base):
    """A time window in a session with a capacity in seats.

    ``booked`` and ``held`` change only through conditional UPDATEs in booking/seats.py (and the
    one booking statement of booking/making.py); the CHECK is the last line of defence against
    overbooking.
    """

    __tablename__ = "slot"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("session.id"))
    venue_id: Mapped[str] = mapped_column(ForeignKey("venue.id"))
    service_id: Mapped[str] = mapped_column(ForeignKey("service.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[int] = mapped_column(Integer, default=0)
    # Mirrors the session's status so the seat UPDATE can refuse a closed slot without a join.
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    # Seats a manager kept booked on purpose above a cut capacity (nothing more is sold until
    # bookings fall below the capacity); the CHECK allows exactly these, no more.
    kept_over: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Channel quotas: until ``kept_until`` the web may not take the last ``kept_for_phone +
    # kept_for_walk_in`` seats and the phone line not the last ``kept_for_walk_in`` (nested
    # limits: the seats are a floor kept back, not a separate pot), then every channel may.
    kept_for_phone: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    kept_for_walk_in: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    kept_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The lottery (抽選) the slot's seats go to: while set, every first-come claim is refused
    # in the seat UPDATE itself, on every channel; only the lottery's draw books it.
    lottery_id: Mapped[int | None] = mapped_column(
        ForeignKey("lottery.id"), nullable=True, index=True
    )

    __table_args__ = (
        CheckConstraint(
            "booked >= 0 AND held >= 0 AND kept_over >= 0 AND capacity >= 0 "
            "AND booked + held <= capacity + kept_over",
            name="seats_within_capacity",
        ),
        CheckConstraint(
            "kept_for_phone >= 0 AND kept_for_walk_in >= 0", name="kept_seats_not_negative"
        ),
        Index("ix_slot_service_start", "service_id", "starts_at"),
        Index("ix_slot_venue_service_start", "venue_id", "service_id", "starts_at"),
        Index("ix_slot_session", "session_id"),
    )


class Hold(Base):
    """Seats kept for a caller or web visitor while they confirm; expires by itself.

    kind ``offer`` is kept for a person; kind ``release_delay`` keeps a cancelled booking's seats
    off sale for a while (discourages slot trading); kind ``waitlist`` keeps freed seats for the
    waitlist entry they were offered to (booking.waitlist).
    """

    __tablename__ = "hold"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # unguessable token
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"))
    seats: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(10))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_hold_slot_expires", "slot_id", "expires_at"),
        Index("ix_hold_expires", "expires_at"),
        CheckConstraint("seats > 0", name="seats_positive"),
    )


class Booking(Base):
    """A reservation. Personal fields are encrypted; ``*_hmac`` columns allow exact lookups."""

    __tablename__ = "booking"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"))
    venue_id: Mapped[str] = mapped_column(ForeignKey("venue.id"))
    service_id: Mapped[str] = mapped_column(ForeignKey("service.id"))
    party_size: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(10))  # ivr | web | agent
    status: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(5))
    name_kana_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    phone_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    phone_hmac: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    phone_line_type: Mapped[str | None] = mapped_column(String(20), nullable=True)
    birth_date_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A proxy (代理人) comes in the resident's place: the counter prepares for the letter of
    # authorisation and both proofs of identity the ward asks for.
    proxy: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Bumped on every move or cancel, so a job about an older version knows it is stale.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The counter's times, for the wait figures: checked in, and called to the counter.
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The desk (窓口) the call sent them to, as the counter said it ("3").
    called_desk: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # When the retention rule erased the resident's personal data (what statistics need stays).
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        CheckConstraint("party_size >= 1", name="party_positive"),
        CheckConstraint(
            "status IN ('booked', 'cancelled', 'checked_in', 'completed', 'no_show')",
            name="status",
        ),
        CheckConstraint("channel IN ('ivr', 'web', 'agent', 'line')", name="channel"),
        Index("ix_booking_slot", "slot_id"),
    )


class BookingMember(Base):
    """One person of a household booking, with their notice number where the service needs one."""

    __tablename__ = "booking_member"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    notice_number_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    notice_number_hmac: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    braille: Mapped[bool] = mapped_column(Boolean, default=False)
    e_certificate: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (UniqueConstraint("booking_id", "position"),)


class IdempotencyKey(Base):
    """A client's retry key: the same key and request give the same booking, never a second."""

    __tablename__ = "idempotency_key"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hmac: Mapped[str] = mapped_column(String(64))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BookingEvent(Base):
    """Outbox: what other packages must react to, written in the booking's own transaction."""

    __tablename__ = "booking_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # booked | moved | cancelled | status
    booking_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_booking_event_pending", "dispatched_at", "id"),)


class ClientAttempt(Base):
    """A booking or lookup attempt by one web client, for the per-client rate limit.

    ``client`` is a keyed hash of the address, never the address itself; rows older than the
    longest window are deleted as new ones come in.
    """

    __tablename__ = "client_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))  # lookup | hold | book
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_client_attempt_recent", "client", "kind", "at"),)


class WalkIn(Base):
    """A resident who came to the counter without a booking: a queue number for the day, and
    the seats they took in the slot being served (a no-show's, or unsold ones). The counter
    calls the number. Its ticket (整理券) links to the resident's status page by ``token``
    (unguessable, nothing personal in it); a mobile number left for the alerts is sealed as a
    booking's and erased once the day is over."""

    __tablename__ = "walk_in"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    venue_id: Mapped[str] = mapped_column(ForeignKey("venue.id"))
    service_id: Mapped[str] = mapped_column(ForeignKey("service.id"))
    day: Mapped[date] = mapped_column(Date)
    number: Mapped[int] = mapped_column(Integer)
    party_size: Mapped[int] = mapped_column(Integer)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    token: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    language: Mapped[str] = mapped_column(String(5), default="ja", server_default="ja")
    phone_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    phone_hmac: Mapped[str | None] = mapped_column(String(64), nullable=True)
    called_desk: Mapped[str | None] = mapped_column(String(20), nullable=True)

    __table_args__ = (
        UniqueConstraint("venue_id", "day", "number", name="one_number_a_day"),
        CheckConstraint("party_size >= 1", name="party_positive"),
    )


class Lottery(Base):
    """A lottery (抽選) for the busiest sessions: applications in a window, then one draw.

    ``record`` is what the ward may publish once drawn (no personal data): the seats each time
    offered, the applications by number (party and preferred times), the seed, the input's
    digest and every application's result; anyone can re-run the draw from it.
    """

    __tablename__ = "lottery"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_id: Mapped[str] = mapped_column(ForeignKey("service.id"))
    applications_from: Mapped[datetime] = mapped_column(UTCDateTime)
    applications_until: Mapped[datetime] = mapped_column(UTCDateTime)
    draw_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | drawn
    seed: Mapped[str | None] = mapped_column(String(64), nullable=True)
    input_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    drawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    record: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("status IN ('open', 'drawn')", name="status"),
        CheckConstraint(
            "applications_from < applications_until AND applications_until <= draw_at",
            name="times_in_order",
        ),
        Index("ix_lottery_due", "status", "draw_at"),
    )


class LotteryApplication(Base):
    """One household's application: its contact (sealed as a booking's), up to three
    preferred slots in order, and, once drawn, the outcome and the booking made for it."""

    __tablename__ = "lottery_application"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lottery_id: Mapped[int] = mapped_column(ForeignKey("lottery.id"))
    channel: Mapped[str] = mapped_column(String(10))  # ivr | web | agent
    party_size: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(5))
    name_kana_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    phone_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    phone_hmac: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    phone_line_type: Mapped[str | None] = mapped_column(String(20), nullable=True)
    birth_date_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    proxy: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    preferences: Mapped[list[int]] = mapped_column(JSON)  # slot ids, first choice first
    outcome: Mapped[str] = mapped_column(String(10), default="pending")  # pending | won | lost
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        CheckConstraint("party_size >= 1", name="party_positive"),
        CheckConstraint("outcome IN ('pending', 'won', 'lost')", name="outcome"),
        CheckConstraint("channel IN ('ivr', 'web', 'agent')", name="channel"),
        Index("ix_lottery_application_lottery", "lottery_id", "id"),
    )


class LotteryEntrant(Base):
    """One person of an application, by notice number: the unique constraint is what makes
    one application per notice number hold under any concurrency."""

    __tablename__ = "lottery_entrant"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lottery_id: Mapped[int] = mapped_column(ForeignKey("lottery.id"))
    application_id: Mapped[int] = mapped_column(ForeignKey("lottery_application.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    notice_number_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    notice_number_hmac: Mapped[str] = mapped_column(String(64))
    braille: Mapped[bool] = mapped_column(Boolean, default=False)
    e_certificate: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        UniqueConstraint("lottery_id", "notice_number_hmac", name="one_application_per_notice"),
    )


class WaitlistEntry(Base):
    """A resident waiting for seats on a full day (or at one full time) of a service at a venue.

    The order is the id's. A freed seat is offered to the first waiting entry it can seat, as a
    hold of kind ``waitlist`` (``hold_id``) until ``offer_expires_at``; the phone number is
    personal data, kept as a booking's is (encrypted, with a keyed hash for lookups).
    """

    __tablename__ = "waitlist_entry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The unguessable key of the resident's link (the SMS's offer page).
    token: Mapped[str] = mapped_column(String(32), unique=True)
    venue_id: Mapped[str] = mapped_column(ForeignKey("venue.id"))
    service_id: Mapped[str] = mapped_column(ForeignKey("service.id"))
    day: Mapped[date] = mapped_column(Date)
    # One time of that day only; None: any time of the day.
    slot_id: Mapped[int | None] = mapped_column(ForeignKey("slot.id"), nullable=True)
    party_size: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(10))  # ivr | web | agent
    language: Mapped[str] = mapped_column(String(5))
    phone_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    phone_hmac: Mapped[str | None] = mapped_column(String(64), nullable=True)
    phone_line_type: Mapped[str | None] = mapped_column(String(20), nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="waiting")
    # The live offer: its hold (gone once taken or lapsed), the slot and until when.
    hold_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    offered_slot_id: Mapped[int | None] = mapped_column(ForeignKey("slot.id"), nullable=True)
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Set when the notification side has planned the offer's message (its outbox mark).
    offer_noticed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Put here by a lottery's draw (its loser), and when the notification side planned the
    # "not drawn" message (that outbox's mark).
    lottery_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lottery_noticed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        CheckConstraint("party_size >= 1", name="party_positive"),
        CheckConstraint("channel IN ('ivr', 'web', 'agent')", name="channel"),
        CheckConstraint(
            "status IN ('waiting', 'offered', 'booked', 'lapsed', 'left', 'closed')",
            name="status",
        ),
        CheckConstraint(
            "(status = 'offered') = (hold_id IS NOT NULL AND offer_expires_at IS NOT NULL)",
            name="offer_has_hold",
        ),
        Index("ix_waitlist_entry_queue", "venue_id", "service_id", "day", "status", "id"),
        Index("ix_waitlist_entry_phone", "phone_hmac"),
        Index("ix_waitlist_entry_hold", "hold_id"),
    )


class DayRelease(Base):
    """Staged release (段階的公開): the slots from ``slots_from`` up to ``slots_until`` (local
    midnights, stored UTC) open for booking at ``opens_at``, optionally only at one venue or
    for one service, and optionally only for residents born in ``born_from``..``born_to``
    (a birth-year group; either end may be open). A day no release covers is open as before;
    a day some release covers is open to a resident only once one of its releases for them
    has opened. Read inside the seat statements (booking.release)."""

    __tablename__ = "day_release"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slots_from: Mapped[datetime] = mapped_column(UTCDateTime)
    slots_until: Mapped[datetime] = mapped_column(UTCDateTime)
    venue_id: Mapped[str | None] = mapped_column(ForeignKey("venue.id"), nullable=True)
    service_id: Mapped[str | None] = mapped_column(ForeignKey("service.id"), nullable=True)
    born_from: Mapped[int | None] = mapped_column(Integer, nullable=True)
    born_to: Mapped[int | None] = mapped_column(Integer, nullable=True)
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("slots_until > slots_from", name="days_in_order"),
        CheckConstraint(
            "born_from IS NULL OR born_to IS NULL OR born_from <= born_to", name="years_in_order"
        ),
        Index("ix_day_release_slots", "slots_from", "slots_until"),
    )


class CancelTally(Base):
    """Cancellations a phone number made itself in a month (Tokyo), for the monthly limit.
    Kept by the keyed hash, never the number; the month's row is counted up in one conditional
    upsert, so racing cancellations cannot pass the limit. Last month's rows go as new ones
    come in."""

    __tablename__ = "cancel_tally"

    phone_hmac: Mapped[str] = mapped_column(String(64), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)  # its first day
    cancels: Mapped[int] = mapped_column(Integer)


class HandoverSheet(Base):
    """The ward's copies of printed application details handed over at the end of a day's work
    (seed 002, ⑤): always face to face, so confirmed by the staff member handing over and the
    ward's receiver, two accounts. Frozen once confirmed: copies recorded later go on a new sheet.
    Staff are the console's accounts, by id (booking knows no staff table)."""

    __tablename__ = "handover_sheet"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    venue_id: Mapped[str] = mapped_column(ForeignKey("venue.id"))
    day: Mapped[date] = mapped_column(Date)
    staff_id: Mapped[int] = mapped_column(Integer)  # who handed the copies over
    receiver_id: Mapped[int] = mapped_column(Integer)  # the ward's staff member who took them
    copies: Mapped[int] = mapped_column(Integer)
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("staff_id <> receiver_id", name="two_people"),
        CheckConstraint("copies >= 0", name="copies_counted"),
        Index("ix_handover_sheet_day", "venue_id", "day"),
    )


class ApplicationHelp(Base):
    """An application-help visit (申請補助) as the counter completed it: whether the application
    went from the help terminal, whether the applicant took their copy of the printed details,
    and the ward's copies (one per application sent) waiting for a handover sheet. No personal
    data: the visit is a booking or a walk-in's queue number."""

    __tablename__ = "application_help"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    venue_id: Mapped[str] = mapped_column(ForeignKey("venue.id"))
    day: Mapped[date] = mapped_column(Date)
    booking_id: Mapped[int | None] = mapped_column(
        ForeignKey("booking.id"), nullable=True, unique=True
    )
    walk_in_id: Mapped[int | None] = mapped_column(
        ForeignKey("walk_in.id"), nullable=True, unique=True
    )
    staff_id: Mapped[int] = mapped_column(Integer)  # who completed the visit (a console account)
    sent: Mapped[bool] = mapped_column(Boolean)
    copy_given: Mapped[bool] = mapped_column(Boolean)
    ward_copies: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sheet_id: Mapped[int | None] = mapped_column(
        ForeignKey("handover_sheet.id"), nullable=True, index=True
    )

    __table_args__ = (
        CheckConstraint("(booking_id IS NULL) <> (walk_in_id IS NULL)", name="one_visit"),
        # Nothing printed when nothing was sent: no copy for anyone.
        CheckConstraint("sent OR (ward_copies = 0 AND NOT copy_given)", name="copies_if_sent"),
        CheckConstraint("ward_copies >= 0", name="copies_counted"),
        Index("ix_application_help_open", "venue_id", "day", "staff_id"),
    )


class ReadyCard(Base):
    """A card that has arrived at the venue where it is picked up (the ward's import from its
    card management system). Kept by the notice number's keyed hash only, never the number:
    a pickup booking's own hash finds it. Gone once the card is picked up, or under the
    retention rule."""

    __tablename__ = "ready_card"

    notice_number_hmac: Mapped[str] = mapped_column(String(64), primary_key=True)
    venue_id: Mapped[str] = mapped_column(ForeignKey("venue.id"))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_ready_card_imported_at", "imported_at"),)


class LineLink(Base):
    """A booking made or found in the LINE chat, linked to the resident's LINE user: its notices
    then go by LINE push. The LINE user id is personal data: sealed, with a keyed hash for the
    lookups; the row goes when the retention rule erases the booking's personal data."""

    __tablename__ = "line_link"

    booking_id: Mapped[int] = mapped_column(
        ForeignKey("booking.id", ondelete="CASCADE"), primary_key=True
    )
    user_enc: Mapped[str] = mapped_column(Text)
    user_hmac: Mapped[str] = mapped_column(String(64), index=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime)
