"""The fake Twilio's conferences and their participants (``ivr.fake_twilio`` serves them), as
Twilio's REST API has them: a participant added by calling out (POST .../Participants.json, by
the conference's SID or its friendly name), listed, fetched by CallSid or label, updated
(muted, hold, coaching) and removed; a conference listed, fetched and ended.

Twilio's voice side is played by the tests: ``join`` reads the caller's own
``<Dial><Conference>`` answer, ``answer`` and ``no_answer`` are a called participant's phone,
``hang_up`` a participant leaving (an ``endConferenceOnExit`` leaving ends the conference).
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING
from urllib.parse import unquote

from ivr.fake_rest import ApiError, Form, Json, not_found, one, page_of

if TYPE_CHECKING:
    from ivr.fake_twilio import FakeTwilio

CONFERENCE_PATH = re.compile(
    r"^/2010-04-01/Accounts/([^/]+)/Conferences(?:/([^/]+?)(?:/(Participants)(?:/([^/]+))?)?)?"
    r"\.json$"
)
_UPDATABLE = ("Muted", "Hold", "HoldUrl", "Coaching", "CallSidToCoach")


@dataclass
class Participant:
    """One call in a conference (or being called into it)."""

    call_sid: str
    conference_sid: str
    label: str | None = None
    muted: bool = False
    hold: bool = False
    hold_url: str | None = None
    coaching: bool = False
    call_sid_to_coach: str | None = None
    start_conference_on_enter: bool = True
    end_conference_on_exit: bool = False
    # queued, connecting, ringing, connected, complete, failed
    status: str = "queued"
    to: str | None = None
    from_: str | None = None
    timeout: int | None = None
    early_media: bool = False
    status_callback: str | None = None
    status_callback_event: list[str] = field(default_factory=list)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Conference:
    """A conference: init until a participant who starts it is in, then in-progress, then
    completed. ``participants`` holds those in it now (Twilio lists no one who left);
    ``everyone`` every participant it ever had, for tests to look at."""

    sid: str
    friendly_name: str
    status: str = "init"
    participants: dict[str, Participant] = field(default_factory=dict)
    everyone: list[Participant] = field(default_factory=list)
    reason_ended: str | None = None
    call_sid_ending: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def _flag(form: Form, name: str, default: bool | None = None) -> bool | None:
    value = one(form, name)
    if value is None:
        return default
    return value.lower() == "true"  # Twilio: anything but "true" is false


class Conferences:
    """The fake's conferences; every method that reads or changes them takes ``fake.lock``."""

    def __init__(self, fake: FakeTwilio) -> None:
        self.fake = fake
        self.all: list[Conference] = []

    # --- for tests: Twilio's voice side ---

    def named(self, name: str) -> Conference | None:
        """The newest conference of this friendly name (or SID)."""
        with self.fake.lock:
            return self._find(name, live_only=False)

    def join(self, call_sid: str, twiml: str) -> Conference:
        """The call ``call_sid`` runs this TwiML: its ``<Dial><Conference>`` puts it in the
        conference (made if none of that name is live), connected at once."""
        root = ET.fromstring(twiml)  # noqa: S314 (our own TwiML, in tests)
        room = root.find("./Dial/Conference")
        if room is None or not (room.text or "").strip():
            raise ValueError("no <Dial><Conference> in this TwiML")
        attrib = room.attrib
        with self.fake.lock:
            conference = self._live_or_new((room.text or "").strip())
            leg = Participant(
                call_sid,
                conference.sid,
                muted=attrib.get("muted") == "true",
                start_conference_on_enter=attrib.get("startConferenceOnEnter", "true") == "true",
                end_conference_on_exit=attrib.get("endConferenceOnExit", "false") == "true",
                status="connected",
            )
            self._enter(conference, leg)
            return conference

    def answer(self, call_sid: str) -> Participant:
        """A called participant's phone is picked up: they are in."""
        with self.fake.lock:
            conference, leg = self._leg_anywhere(call_sid)
            leg.status = "connected"
            self._enter(conference, leg)
            return leg

    def no_answer(self, call_sid: str) -> Participant:
        """A called participant's phone rings out: they never join."""
        with self.fake.lock:
            conference, leg = self._leg_anywhere(call_sid)
            conference.participants.pop(call_sid, None)
            leg.status = "failed"
            self._call_over(call_sid, "no-answer")
            return leg

    def hang_up(self, call_sid: str) -> None:
        """This participant leaves (hangs up); one with endConferenceOnExit ends it for all."""
        with self.fake.lock:
            conference, leg = self._leg_anywhere(call_sid)
            self._leave(conference, leg, "participant-with-end-conference-on-exit-left")

    def redirected(self, call_sid: str) -> None:
        """A call given new TwiML leaves its conference, as if it hung up there (Twilio lists
        no participant whose call was modified). The caller holds the lock."""
        for conference in reversed(self.all):
            leg = conference.participants.get(call_sid)
            if leg is not None:  # the call itself goes on, elsewhere
                reason = "participant-with-end-conference-on-exit-left"
                self._leave(conference, leg, reason, call_ends=False)

    # --- the REST API (runs on handler threads) ---

    def route(
        self, method: str, path: str, match: re.Match[str], query: Form, form: Form
    ) -> tuple[int, Json, float]:
        name = unquote(match[2]) if match[2] else None
        in_room, who = match[3] is not None, unquote(match[4]) if match[4] else None
        with self.fake.lock:
            if method in ("POST", "DELETE") and self.fake._failures:
                raise ApiError(*self.fake._failures.pop(0))
            if name is None:
                if method != "GET":
                    raise ApiError(405, 20004, "Method not allowed")
                return 200, self._list(path, query), 0.0
            if not in_room:
                conference = self._find(name, live_only=False)
                if conference is None:
                    raise not_found(path)
                if method == "POST" and one(form, "Status") == "completed":
                    self._end(conference, "conference-ended-via-api", None)
                return 200, self._conference(conference), 0.0
            if who is None:
                if method == "POST":
                    return 201, self._add(name, path, form), self.fake.accept_then_hang
                conference = self._find(name, live_only=False)
                if conference is None:
                    raise not_found(path)
                items = [self._participant(p) for p in conference.participants.values()]
                return 200, page_of("participants", items, path, query), 0.0
            conference = self._find(name, live_only=True)
            leg = None if conference is None else self._member(conference, who)
            if conference is None or leg is None:
                raise not_found(path)
            if method == "DELETE":
                self._leave(conference, leg, "participant-with-end-conference-on-exit-kicked")
                return 204, {}, 0.0
            if method == "POST":
                self._update(conference, leg, form)
            return 200, self._participant(leg), 0.0

    def _add(self, name: str, path: str, form: Form) -> Json:
        to, from_ = one(form, "To"), one(form, "From")
        if not to:
            raise ApiError(400, 21201, "A 'To' phone number is required.")
        if not from_:
            raise ApiError(400, 21213, "A 'From' phone number is required.")
        if to in self.fake._rejected:
            raise ApiError(*self.fake._rejected[to])
        if name.startswith("CF"):  # by SID: only a conference still going takes people
            found = self._find(name, live_only=True)
            if found is None:
                raise not_found(path)
            conference = found
        else:  # by friendly name: joins the live one, or starts a new one
            conference = self._live_or_new(name)
        coaching = bool(_flag(form, "Coaching", False))
        coached = one(form, "CallSidToCoach")
        self._check_coaching(conference, coaching, coached)
        sid = "CA" + uuid.uuid4().hex
        leg = Participant(
            sid,
            conference.sid,
            label=one(form, "Label"),
            muted=bool(_flag(form, "Muted", False)),
            hold=bool(_flag(form, "Hold", False)),
            hold_url=one(form, "HoldUrl"),
            coaching=coaching or coached is not None,
            call_sid_to_coach=coached,
            start_conference_on_enter=bool(_flag(form, "StartConferenceOnEnter", True)),
            end_conference_on_exit=bool(_flag(form, "EndConferenceOnExit", False)),
            to=to,
            from_=from_,
            timeout=int(one(form, "Timeout") or 60),
            early_media=bool(_flag(form, "EarlyMedia", True)),
            status_callback=one(form, "StatusCallback"),
            status_callback_event=[
                e for v in form.get("StatusCallbackEvent", []) for e in v.split()
            ],
        )
        if leg.label is not None and self._member(conference, leg.label) is not None:
            raise ApiError(400, 16025, f"Participant label {leg.label} is already in use")
        conference.participants[sid] = leg
        conference.everyone.append(leg)
        self.fake.calls_out(sid, to=to, from_=from_, status_callback=leg.status_callback)
        return self._participant(leg)

    def _update(self, conference: Conference, leg: Participant, form: Form) -> None:
        coaching = _flag(form, "Coaching")
        coached = one(form, "CallSidToCoach")
        if coaching is True or (coaching is None and coached is not None):
            self._check_coaching(conference, True, coached or leg.call_sid_to_coach)
        if (muted := _flag(form, "Muted")) is not None:
            leg.muted = muted
        if (hold := _flag(form, "Hold")) is not None:
            leg.hold = hold
        if (hold_url := one(form, "HoldUrl")) is not None:
            leg.hold_url = hold_url
        if coached is not None:
            leg.call_sid_to_coach, leg.coaching = coached, True
        if coaching is not None:
            leg.coaching = coaching
            if not coaching:
                leg.call_sid_to_coach = None
        leg.updated_at = datetime.now(UTC)

    def _check_coaching(self, conference: Conference, coaching: bool, coached: str | None) -> None:
        if coaching and not coached:
            raise ApiError(400, 21220, "CallSidToCoach is required when Coaching is true")
        if coached is not None and coached not in conference.participants:
            raise ApiError(400, 21220, f"CallSidToCoach {coached} is not in this conference")

    def _list(self, path: str, query: Form) -> Json:
        name, status = one(query, "FriendlyName"), one(query, "Status")
        items = [
            self._conference(c)
            for c in reversed(self.all)  # newest first
            if name in (None, c.friendly_name) and status in (None, c.status)
        ]
        return page_of("conferences", items, path, query)

    # --- the conferences' own life (the caller holds the lock) ---

    def _find(self, name: str, *, live_only: bool) -> Conference | None:
        for conference in reversed(self.all):
            if name in (conference.sid, conference.friendly_name) and not (
                live_only and conference.status == "completed"
            ):
                return conference
        return None

    def _live_or_new(self, name: str) -> Conference:
        conference = self._find(name, live_only=True)
        if conference is None:
            conference = Conference("CF" + uuid.uuid4().hex, name)
            self.all.append(conference)
        return conference

    def _member(self, conference: Conference, who: str) -> Participant | None:
        if who in conference.participants:
            return conference.participants[who]
        return next((p for p in conference.participants.values() if p.label == who), None)

    def _leg_anywhere(self, call_sid: str) -> tuple[Conference, Participant]:
        for conference in reversed(self.all):
            if call_sid in conference.participants:
                return conference, conference.participants[call_sid]
        raise KeyError(f"call {call_sid} is in no live conference")

    def _enter(self, conference: Conference, leg: Participant) -> None:
        conference.participants[leg.call_sid] = leg
        if leg not in conference.everyone:
            conference.everyone.append(leg)
        if leg.start_conference_on_enter and conference.status == "init":
            conference.status = "in-progress"
        conference.updated_at = datetime.now(UTC)

    def _leave(
        self, conference: Conference, leg: Participant, reason: str, call_ends: bool = True
    ) -> None:
        conference.participants.pop(leg.call_sid, None)
        leg.status = "complete"
        if call_ends:
            self._call_over(leg.call_sid, "completed")
        if leg.end_conference_on_exit:
            self._end(conference, reason, leg.call_sid)
        elif not conference.participants:
            self._end(conference, "last-participant-left", leg.call_sid)

    def _end(self, conference: Conference, reason: str, ending: str | None) -> None:
        if conference.status == "completed":
            return
        for leg in list(conference.participants.values()):
            leg.status = "complete"
            self._call_over(leg.call_sid, "completed")
        conference.participants.clear()
        conference.status = "completed"
        conference.reason_ended, conference.call_sid_ending = reason, ending
        conference.updated_at = datetime.now(UTC)

    def _call_over(self, call_sid: str, status: str) -> None:
        for call in self.fake.sent:
            if call.sid == call_sid:
                call.status = status
        if call_sid in self.fake._inbound:
            self.fake._inbound[call_sid].status = status

    # --- resources as Twilio returns them ---

    def _conference(self, c: Conference) -> Json:
        uri = f"/2010-04-01/Accounts/{self.fake.account_sid}/Conferences/{c.sid}"
        return {
            "account_sid": self.fake.account_sid,
            "api_version": "2010-04-01",
            "call_sid_ending_conference": c.call_sid_ending,
            "date_created": format_datetime(c.created_at),
            "date_updated": format_datetime(c.updated_at),
            "friendly_name": c.friendly_name,
            "reason_conference_ended": c.reason_ended,
            "region": "jp1",
            "sid": c.sid,
            "status": c.status,
            "subresource_uris": {
                "participants": f"{uri}/Participants.json",
                "recordings": f"{uri}/Recordings.json",
            },
            "uri": f"{uri}.json",
        }

    def _participant(self, p: Participant) -> Json:
        account = self.fake.account_sid
        uri = f"/2010-04-01/Accounts/{account}/Conferences/{p.conference_sid}"
        return {
            "account_sid": account,
            "call_sid": p.call_sid,
            "call_sid_to_coach": p.call_sid_to_coach,
            "coaching": p.coaching,
            "conference_sid": p.conference_sid,
            "date_created": format_datetime(p.created_at),
            "date_updated": format_datetime(p.updated_at),
            "end_conference_on_exit": p.end_conference_on_exit,
            "hold": p.hold,
            "label": p.label,
            "muted": p.muted,
            "queue_time": "0",
            "start_conference_on_enter": p.start_conference_on_enter,
            "status": p.status,
            "uri": f"{uri}/Participants/{p.call_sid}.json",
        }
