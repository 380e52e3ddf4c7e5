"""The slot engine's front door: every channel (the phone line, the web pages, the console, the
jobs) calls the engine through this module, which only re-exports. The work lives in modules
with one role each:

- ``seats``: the seat statements (the only code that changes ``booked``/``held``, with the one
  booking statement of ``making``), holds, their lapse, freed seats offered to the waitlist;
- ``making``: ``book`` (one statement on PostgreSQL, step by step elsewhere), ``book_drawn``;
  ``retry_keys`` its idempotency, ``attempts`` the clients' attempt limits;
- ``changes``: cancel, move, the counter's status changes;
- ``capacity``: capacity, quotas, closures, stranded bookings and their relocation;
- ``counter_day``: check-in, no-shows, walk-ins, calls to the counter; ``counter_queue``
  the day's queue at a venue (who waits, who is called, the pace and the waits); ``tickets``
  walk-ins' tickets, their status pages' tokens and the numbers left for alerts;
- ``reads``: bookings as the channels see them; ``outbox``: the events others react to;
- ``offers``: the waitlist as the channels use it; ``retention``: erasure of personal data;
- ``availability``, ``figures``, ``release``, ``views``: the catalogue and free seats, the
  counters' figures, the staged release, the plain values handed out.
"""

from __future__ import annotations

from booking.attempts import ATTEMPTS_KEPT, forget_old_attempts, note_attempt
from booking.availability import (
    DayMark,
    availability,
    first_bookable_day,
    last_bookable_day,
    list_services,
    list_venues,
    month_marks,
    service_or_404,
    venue_or_404,
    venue_services,
    ward_info,
)
from booking.capacity import (
    RELOCATE_SEARCH_DAYS,
    SessionDay,
    SlotDay,
    close_slots,
    keep_within,
    nearest_free_slot,
    relocate,
    reopen_slots,
    sessions_between,
    set_capacity,
    set_quota,
    slots_of_day,
    stranded,
)
from booking.changes import (
    cancel,
    cancel_booking,
    cancel_by_resident,
    reschedule,
    reschedule_booking,
    set_status,
)
from booking.counter_day import (
    WalkInView,
    call_to_counter,
    call_walk_in,
    check_in,
    check_in_offline,
    complete_walk_in,
    mark_no_shows,
    walk_in,
    walk_ins_of_day,
)
from booking.counter_queue import QueueEntry, VenueQueue, estimated_wait, venue_queue
from booking.figures import (
    BookingPeriod,
    CapacityDay,
    CounterDay,
    Today,
    booking_period,
    counter_figures,
    today_figures,
)
from booking.making import CHANNELS, book, book_drawn
from booking.offers import (
    erase_waitlist_personal_data,
    extend_waitlist_offer,
    join_waitlist,
    leave_waitlist,
    lottery_losses_to_notice,
    mark_lottery_losses_noticed,
    mark_waitlist_offers_noticed,
    offer_freed_seats,
    take_waitlist_offer,
    waitlist_entry,
    waitlist_for_phone,
    waitlist_of_day,
    waitlist_offers_to_notice,
)
from booking.outbox import OUTBOX_WRITTEN, EventView, mark_dispatched, pending_events, take_tally
from booking.reads import (
    ContactView,
    booking_by_code,
    booking_contacts,
    bookings_between,
    bookings_for_phone,
    bookings_of_day,
    find_booking,
    get_booking,
)
from booking.release import ReleaseView, add_release, list_releases, remove_release
from booking.retention import erase_personal_data
from booking.seats import create_hold, get_hold, reclaim_expired_holds, release_hold
from booking.tickets import (
    BookedInQueue,
    TicketView,
    alert_ahead,
    booking_in_queue,
    booking_queue_token,
    erase_ticket_phones,
    is_booking_token,
    leave_ticket_phone,
    set_ticket_language,
    ticket,
    ticket_of_number,
    ticket_of_walk_in,
    tickets_with_phones,
)
from booking.views import (
    BookingView,
    HeldTime,
    HoldView,
    MemberInput,
    MemberView,
    ResidentInput,
    SlotView,
)
from booking.waitlist import WaitlistView

__all__ = [
    "ATTEMPTS_KEPT",
    "CHANNELS",
    "OUTBOX_WRITTEN",
    "RELOCATE_SEARCH_DAYS",
    "BookedInQueue",
    "BookingPeriod",
    "BookingView",
    "CapacityDay",
    "ContactView",
    "CounterDay",
    "DayMark",
    "EventView",
    "HeldTime",
    "HoldView",
    "MemberInput",
    "MemberView",
    "QueueEntry",
    "ReleaseView",
    "ResidentInput",
    "SessionDay",
    "SlotDay",
    "SlotView",
    "TicketView",
    "Today",
    "VenueQueue",
    "WaitlistView",
    "WalkInView",
    "add_release",
    "alert_ahead",
    "availability",
    "book",
    "book_drawn",
    "booking_by_code",
    "booking_contacts",
    "booking_in_queue",
    "booking_period",
    "booking_queue_token",
    "bookings_between",
    "bookings_for_phone",
    "bookings_of_day",
    "call_to_counter",
    "call_walk_in",
    "cancel",
    "cancel_booking",
    "cancel_by_resident",
    "check_in",
    "check_in_offline",
    "close_slots",
    "complete_walk_in",
    "counter_figures",
    "create_hold",
    "erase_personal_data",
    "erase_ticket_phones",
    "erase_waitlist_personal_data",
    "estimated_wait",
    "extend_waitlist_offer",
    "find_booking",
    "first_bookable_day",
    "forget_old_attempts",
    "get_booking",
    "get_hold",
    "is_booking_token",
    "join_waitlist",
    "keep_within",
    "last_bookable_day",
    "leave_ticket_phone",
    "leave_waitlist",
    "list_releases",
    "list_services",
    "list_venues",
    "lottery_losses_to_notice",
    "mark_dispatched",
    "mark_lottery_losses_noticed",
    "mark_no_shows",
    "mark_waitlist_offers_noticed",
    "month_marks",
    "nearest_free_slot",
    "note_attempt",
    "offer_freed_seats",
    "pending_events",
    "reclaim_expired_holds",
    "release_hold",
    "relocate",
    "remove_release",
    "reopen_slots",
    "reschedule",
    "reschedule_booking",
    "service_or_404",
    "sessions_between",
    "set_capacity",
    "set_quota",
    "set_status",
    "set_ticket_language",
    "slots_of_day",
    "stranded",
    "take_tally",
    "take_waitlist_offer",
    "ticket",
    "ticket_of_number",
    "ticket_of_walk_in",
    "tickets_with_phones",
    "today_figures",
    "venue_or_404",
    "venue_queue",
    "venue_services",
    "waitlist_entry",
    "waitlist_for_phone",
    "waitlist_of_day",
    "waitlist_offers_to_notice",
    "walk_in",
    "walk_ins_of_day",
    "ward_info",
]
