"""Calls the ward placed (a reminder, a relocation, a waitlist offer, a lottery's loss): what
the phone line needs to know about one, and who tells it. The phone line defines this; the
package that placed the call (reminders) implements it, and config hands it to the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session as DbSession


@dataclass(frozen=True)
class PlacedCall:
    """What a call the ward placed is about: the IVR reads this booking out, then offers keep
    or cancel (a reminder) or accept or an agent (a relocation)."""

    booking_id: int | None
    language: str
    kind: str
    # A waitlist offer's call (kind ``waitlist_offer``): press 1 to book the seats it keeps.
    waitlist_entry_id: int | None = None


class PlacedCalls(Protocol):
    """The ledger of the calls placed, as the phone line asks it (``app.state.placed_calls``)."""

    def about(self, db: DbSession, message_id: int) -> PlacedCall | None:
        """What the placed call ``message_id`` is about; None when it is no voice call of ours."""
        ...

    def settle(self, db: DbSession, message_id: int, sid: str, status: str) -> None:
        """Twilio's last word on the placed call (completed, busy, failed...): recorded, and
        followed up as the ledger's rules say (flushed, not committed)."""
        ...
