"""Sending residents' messages through a local fake of Twilio's REST API: each message once,
failures retried only when Twilio certainly did not take them, uncertain ones settled by asking
Twilio, stale and opted-out ones never sent; SQLite and PostgreSQL."""

from __future__ import annotations

import time as wall
from datetime import datetime, time
from urllib.parse import urlsplit

import httpx
from sqlalchemy import text
from twilio.request_validator import RequestValidator

from booking import service as booking
from booking.context import TOKYO
from reminders import jobs
from reminders import service as reminders
from reminders.service import ReminderRules
from tests.reminders.conftest import PUBLIC, TOKEN, Desk, new_landline, new_mobile


def signed_post(desk: Desk, path: str, form: dict[str, str]) -> httpx.Response:
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, form)
    response: httpx.Response = desk.http.post(
        path, data=form, headers={"X-Twilio-Signature": signature}
    )
    return response


def test_a_confirmation_goes_once_and_its_delivery_is_recorded(desk: Desk) -> None:
    phone = new_mobile()
    made = desk.book(phone)
    planned = desk.plan()
    confirmation = desk.message(made.id, "confirmation")
    assert (confirmation.id, confirmation.send_after) in planned.due

    assert jobs.send(confirmation.id) == "sent"
    assert jobs.send(confirmation.id) == "nothing to send"  # a retried job, a second worker
    [body] = desk.sms_to(phone)
    assert made.code in body
    assert "本庁舎" in body
    # With what to bring and where to go: within four segments.
    assert reminders.sms_segments(body) <= 4
    sent = desk.message(made.id, "confirmation")
    assert (sent.status, sent.attempts) == ("sent", 1)
    assert sent.provider_sid == desk.twilio.messages()[-1].sid

    path = f"/reminders/status?m={sent.id}"
    form = {"MessageSid": str(sent.provider_sid), "MessageStatus": "delivered"}
    assert signed_post(desk, path, form).status_code == 204
    assert desk.message(made.id, "confirmation").status == "delivered"
    forged = desk.http.post(path, data=form, headers={"X-Twilio-Signature": "x"})
    assert forged.status_code == 403


def test_english_bookings_get_english_texts(desk: Desk) -> None:
    phone = new_mobile()
    made = desk.book(phone, language="en")
    desk.plan()
    jobs.send(desk.message(made.id, "confirmation").id)
    [body] = desk.sms_to(phone)
    assert body.startswith("My Number card booking:")
    assert made.code in body


def test_a_cancelled_bookings_reminder_is_never_sent(desk: Desk) -> None:
    phone = new_mobile()
    made = desk.book(phone)
    desk.plan()
    reminder = desk.message(made.id, "reminder")
    with desk.sessions() as db:
        booking.cancel_booking(db, booking_id=made.id)
        db.commit()
    # Its job runs before the pump has seen the cancellation: the claim sees it anyway.
    desk.due_now(reminder.id)
    assert jobs.send(reminder.id) == "nothing to send"
    assert desk.message(made.id, "reminder").status == "dropped"
    desk.plan()
    cancelled = desk.message(made.id, "cancelled")
    assert jobs.send(cancelled.id) == "sent"
    assert [b for b in desk.sms_to(phone) if "取り消しました" in b]
    assert not [b for b in desk.sms_to(phone) if "明日" in b]


def test_a_moved_booking_gets_the_new_time_and_not_the_old_reminder(desk: Desk) -> None:
    phone = new_mobile()
    made = desk.book(phone)
    desk.plan()
    old_reminder = desk.message(made.id, "reminder")
    other = desk.book(new_mobile())
    with desk.sessions() as db:
        booking.cancel_booking(db, booking_id=other.id)  # frees a slot of its own to move to
        booking.reschedule_booking(db, booking_id=made.id, slot_id=other.slot_id)
        db.commit()
    desk.plan()
    new_reminder = desk.message(made.id, "reminder")
    assert (new_reminder.booking_version, new_reminder.status) == (2, "scheduled")
    assert {m.status for m in desk.messages(made.id) if m.id == old_reminder.id} == {"dropped"}
    moved = desk.message(made.id, "moved")
    assert jobs.send(moved.id) == "sent"
    assert [b for b in desk.sms_to(phone) if "変更しました" in b]


def test_twilio_down_is_retried_later_and_sends_once(desk: Desk) -> None:
    phone = new_mobile()
    made = desk.book(phone)
    desk.plan()
    message = desk.message(made.id, "confirmation")
    desk.twilio.fail_next(1, status=503, code=20503, message="Service unavailable")
    assert jobs.send(message.id) == "retry"
    waiting = desk.message(made.id, "confirmation")
    assert waiting.status == "scheduled"
    assert waiting.send_after > desk.clock()
    assert desk.armed.sends(message.id) == [waiting.send_after]  # RQ's scheduler takes it then
    assert desk.sms_to(phone) == []
    desk.due_now(message.id)
    assert jobs.send(message.id) == "sent"
    assert len(desk.sms_to(phone)) == 1
    assert desk.message(made.id, "confirmation").attempts == 2


def test_an_answer_lost_in_a_timeout_is_settled_with_twilio_not_resent(desk: Desk) -> None:
    phone = new_mobile()
    made = desk.book(phone)
    desk.plan()
    message = desk.message(made.id, "confirmation")
    desk.twilio.accept_then_hang = 1.0  # Twilio takes it; the answer never comes in time
    assert jobs.send(message.id) == "uncertain"
    desk.twilio.accept_then_hang = 0
    assert desk.message(made.id, "confirmation").status == "claimed"
    assert jobs.send(message.id) == "nothing to send"  # a claim is never sent blindly again
    assert jobs.reconcile(desk.runtime) >= 1
    settled = desk.message(made.id, "confirmation")
    assert settled.status == "sent"
    assert settled.provider_sid == desk.twilio.messages()[-1].sid
    assert len(desk.sms_to(phone)) == 1


def test_a_worker_that_died_before_calling_twilio_is_settled_by_sending_again(
    desk: Desk,
) -> None:
    phone = new_mobile()
    made = desk.book(phone)
    desk.plan()
    message = desk.message(made.id, "confirmation")
    with desk.sessions() as db:  # the claim was committed; then the worker was killed
        assert isinstance(
            reminders.claim(db, message_id=message.id, rules=desk.runtime.rules), reminders.Outgoing
        )
        db.commit()
    jobs.reconcile(desk.runtime)  # Twilio has nothing to this number: free to try again
    again = desk.message(made.id, "confirmation")
    assert again.status == "scheduled"
    desk.due_now(message.id)
    assert jobs.send(message.id) == "sent"
    assert len(desk.sms_to(phone)) == 1


def test_a_slow_twilio_within_the_timeout_is_just_slow(desk: Desk) -> None:
    phone = new_mobile()
    made = desk.book(phone)
    desk.plan()
    desk.twilio.delay = 0.2
    assert jobs.send(desk.message(made.id, "confirmation").id) == "sent"
    assert len(desk.sms_to(phone)) == 1


def test_an_invalid_number_fails_without_retries(desk: Desk) -> None:
    phone = new_mobile()
    made = desk.book(phone)
    desk.plan()
    desk.twilio.reject(phone, status=400, code=21211, message="Invalid 'To' Phone Number")
    message = desk.message(made.id, "confirmation")
    assert jobs.send(message.id) == "rejected"
    failed = desk.message(made.id, "confirmation")
    assert failed.status == "failed"
    assert "21211" in str(failed.last_error)
    assert desk.armed.sends(message.id) == []


def test_an_unsubscribed_resident_is_opted_out_for_every_booking(desk: Desk) -> None:
    phone = new_mobile()
    first, second = desk.book(phone), desk.book(phone)
    desk.plan()
    desk.twilio.reject(phone, status=400, code=21610, message="Attempt to send to unsubscribed")
    assert jobs.send(desk.message(first.id, "confirmation").id) == "rejected"
    assert jobs.send(desk.message(second.id, "confirmation").id) == "nothing to send"
    assert desk.message(second.id, "confirmation").status == "dropped"
    with desk.sessions() as db:
        assert reminders.opted_out(db, booking_id=second.id)


def test_opting_out_of_one_booking_drops_its_messages_only(desk: Desk) -> None:
    phone = new_mobile()
    quiet, loud = desk.book(phone), desk.book(phone)
    desk.plan()
    with desk.sessions() as db:
        assert reminders.opt_out(db, booking_id=quiet.id) == 2  # confirmation and reminder
        db.commit()
    assert {m.status for m in desk.messages(quiet.id)} == {"dropped"}
    assert jobs.send(desk.message(quiet.id, "confirmation").id) == "nothing to send"
    assert jobs.send(desk.message(loud.id, "confirmation").id) == "sent"
    assert len(desk.sms_to(phone)) == 1


def test_a_reminder_to_a_landline_is_a_call_that_can_cancel(desk: Desk) -> None:
    phone = new_landline()
    made = desk.book(phone)
    desk.plan()
    assert [m.kind for m in desk.messages(made.id)] == ["reminder"]  # no SMS to a landline
    reminder = desk.message(made.id, "reminder", "voice")
    desk.due_now(reminder.id)
    assert jobs.send(reminder.id) == "sent"
    [url] = desk.calls_to(phone)
    assert url == f"{PUBLIC}/ivr/voice?reminder={reminder.id}"

    resident = desk.resident(phone)
    heard = " ".join(resident.pick_up(url))
    assert "予約のお知らせ" in heard
    assert "取り消す場合は、2" in heard
    resident.press("2")
    resident.press("1")  # yes, cancel it
    with desk.sessions() as db:
        assert booking.get_booking(db, booking_id=made.id).status == "cancelled"
    # Twilio posts the call's status where the ward told it to: the IVR's status route.
    [placed] = [c for c in desk.twilio.calls() if c.to == phone]
    assert placed.status_callback == f"{PUBLIC}/ivr/status?reminder={reminder.id}"
    form = {"CallSid": resident.call_sid, "CallStatus": "completed", "CallDuration": "40"}
    callback = urlsplit(placed.status_callback)
    assert signed_post(desk, f"{callback.path}?{callback.query}", form).status_code == 204
    assert desk.message(made.id, "reminder", "voice").status == "delivered"
    with desk.sessions() as db:  # the ward's own call is not a call received
        kinds = (
            db.execute(
                text(
                    "SELECT kind FROM call_event JOIN call ON call.id = call_event.call_id "
                    "WHERE call.call_sid = :sid"
                ),
                {"sid": resident.call_sid},
            )
            .scalars()
            .all()
        )
    assert "started" not in kinds and "completed" in kinds


def test_a_reminder_sms_that_fails_becomes_a_call(desk: Desk) -> None:
    phone = new_mobile()
    made = desk.book(phone)
    desk.plan()
    reminder = desk.message(made.id, "reminder")
    desk.due_now(reminder.id)
    assert jobs.send(reminder.id) == "sent"
    form = {"MessageSid": str(desk.message(made.id, "reminder").provider_sid)}
    form["MessageStatus"] = "undelivered"
    assert signed_post(desk, f"/reminders/status?m={reminder.id}", form).status_code == 204
    assert desk.message(made.id, "reminder").status == "failed"
    call = desk.message(made.id, "reminder", "voice")
    assert jobs.send(call.id) == "sent"
    assert desk.calls_to(phone) == [f"{PUBLIC}/ivr/voice?reminder={call.id}"]


def test_nothing_goes_out_in_quiet_hours(desk: Desk) -> None:
    phone = new_mobile()
    made = desk.book(phone)
    desk.plan()
    message = desk.message(made.id, "confirmation")
    now = desk.clock().astimezone(TOKYO).time()
    # Quiet hours that cover this very moment, ending in a while.
    later = time((now.hour + 2) % 24, 0)
    night = ReminderRules(time(18), None, quiet_from=time((now.hour + 23) % 24), quiet_until=later)
    with desk.sessions() as db:
        result = reminders.claim(db, message_id=message.id, rules=night)
        db.commit()
    assert isinstance(result, reminders.Later)
    assert result.at.astimezone(TOKYO).time() == later
    assert desk.message(made.id, "confirmation").status == "scheduled"
    assert desk.sms_to(phone) == []


def test_the_pump_plans_arms_and_rearms_what_lost_its_job(desk: Desk) -> None:
    phone = new_mobile()
    made = desk.book(phone)
    jobs.pump()
    message = desk.message(made.id, "confirmation")
    assert desk.armed.sends(message.id)  # armed when planned
    desk.armed.armed.clear()  # Redis restarted empty: every armed job is gone
    jobs.pump()
    assert desk.armed.sends(message.id)  # due and still scheduled: armed again
    assert any(func == jobs.PUMP for _, func, _, _ in desk.armed.armed)  # and the next pump
    wall.sleep(1.1)  # (the old job ids were made from the pump's own second)
    jobs.pump()  # still not taken: re-armed under the same job id, so queues keep one copy
    assert len(desk.armed.send_job_ids(message.id)) == 1
    assert jobs.send(message.id) == "sent"
    assert jobs.send(message.id) == "nothing to send"
    assert len(desk.sms_to(phone)) == 1


def test_an_agent_can_resend_the_confirmation(desk: Desk) -> None:
    phone = new_mobile()
    made = desk.book(phone)
    desk.plan()
    jobs.send(desk.message(made.id, "confirmation").id)
    with desk.sessions() as db:
        again = reminders.resend_confirmation(db, booking_id=made.id, rules=desk.runtime.rules)
        db.commit()
    assert jobs.send(again.id) == "sent"
    assert len(desk.sms_to(phone)) == 2
    copies = [m for m in desk.messages(made.id) if m.kind == "confirmation"]
    assert [m.status for m in copies] == ["sent", "sent"]


def test_sent_at_when_the_clock_reads_real_time(desk: Desk) -> None:
    # The fixture's clock must read real time: Twilio's records are compared with claims.
    assert abs((desk.clock() - datetime.now(TOKYO)).total_seconds()) < 60
