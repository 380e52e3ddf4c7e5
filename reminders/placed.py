"""The ledger's side of the calls the ward placed (ivr.placed.PlacedCalls): what each is about,
and Twilio's last word on it. The phone line asks through this; config wires it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session as DbSession

from ivr.placed import PlacedCall
from reminders import service
from reminders.service import ReminderRules


@dataclass(frozen=True)
class PlacedCallLedger:
    """The reminders' messages sent as voice calls, as the phone line sees them."""

    # Read when a call settles: the rules the application holds at that moment.
    rules: Callable[[], ReminderRules]

    def about(self, db: DbSession, message_id: int) -> PlacedCall | None:
        """What the voice message ``message_id`` is about; None when it is none of ours."""
        return service.call_about(db, message_id=message_id)

    def settle(self, db: DbSession, message_id: int, sid: str, status: str) -> None:
        """The call's status callback, recorded as the message's delivery (a relocation's call
        that failed asks an agent to call instead)."""
        service.apply_status(db, message_id=message_id, sid=sid, status=status, rules=self.rules())
