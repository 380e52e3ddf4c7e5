"""The reminders' front door: planning residents' notifications from the booking outbox, sending
them (claims, outcomes, reconciliation), opt-outs, and the ledger as people see it. No HTTP, no
Redis here (``reminders.jobs`` sends). The work lives by role:

- ``reminders.planning``: which message, by which channel, when (in bulk from the outbox);
- ``reminders.sending``: claiming a batch before Twilio is called, recording what it answered,
  settling unfinished claims by asking Twilio;
- ``reminders.opt_outs``: residents who want no more messages;
- ``reminders.ledger``: a booking's messages, counts by state, what a placed call is about;
- ``reminders.queue_alerts``: a walk-in ticket's alerts (a few ahead, called);
- ``reminders.links``: the web booking's link to a caller who asked on the phone line;
- ``reminders.texts``: the texts' catalogue and measures.
"""

from __future__ import annotations

from reminders.ledger import (
    CallAbout,
    MessageView,
    call_about,
    count_by_status,
    erase_personal_data,
    messages_for,
)
from reminders.links import booking_page, plan_link_texts
from reminders.opt_outs import opt_out, opted_out, opted_out_of
from reminders.planning import (
    FIRST_MESSAGE,
    REMINDERS,
    SMS_LINES,
    VOICE_LINES,
    Later,
    Planned,
    ReminderRules,
    after_quiet_hours,
    call_instead,
    channel_for,
    pass_on_lapsed_offers,
    plan_from_outbox,
    resend_confirmation,
)
from reminders.queue_alerts import (
    erase_queue_alert_numbers,
    fresh_queue_alerts,
    plan_queue_alerts,
    status_link,
)
from reminders.sending import (
    BACKOFF,
    DELIVERED,
    FAILED,
    MAX_ATTEMPTS,
    NOT_A_MOBILE,
    Outgoing,
    apply_status,
    claim,
    claim_batch,
    claims_to_reconcile,
    due_message_ids,
    give_back,
    offer_link,
    outgoing,
    record_failure,
    record_sent,
    record_sent_many,
    settle,
    sms_body,
)
from reminders.texts import render, sms_segments, texts, when_text

__all__ = [
    "BACKOFF",
    "DELIVERED",
    "FAILED",
    "FIRST_MESSAGE",
    "MAX_ATTEMPTS",
    "NOT_A_MOBILE",
    "REMINDERS",
    "SMS_LINES",
    "VOICE_LINES",
    "CallAbout",
    "Later",
    "MessageView",
    "Outgoing",
    "Planned",
    "ReminderRules",
    "after_quiet_hours",
    "apply_status",
    "booking_page",
    "call_about",
    "call_instead",
    "channel_for",
    "claim",
    "claim_batch",
    "claims_to_reconcile",
    "count_by_status",
    "due_message_ids",
    "erase_personal_data",
    "erase_queue_alert_numbers",
    "fresh_queue_alerts",
    "give_back",
    "messages_for",
    "offer_link",
    "opt_out",
    "opted_out",
    "opted_out_of",
    "outgoing",
    "pass_on_lapsed_offers",
    "plan_from_outbox",
    "plan_link_texts",
    "plan_queue_alerts",
    "record_failure",
    "record_sent",
    "record_sent_many",
    "render",
    "resend_confirmation",
    "settle",
    "sms_body",
    "sms_segments",
    "status_link",
    "texts",
    "when_text",
]
