"""The embedded default: no Redis configured, `madoguchi serve` runs the same jobs on a thread
of its own and sends (here, to the fake Twilio) what a worker would."""

from __future__ import annotations

import secrets
import time
from datetime import date, timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from booking import schedule
from booking import service as booking
from booking.service import ResidentInput
from config.app import create_app
from config.migrate import upgrade
from config.sample import sample_ward
from config.settings import Settings
from ivr.fake_twilio import FakeTwilio
from reminders import service as reminders
from tests.reminders.conftest import TOKEN, WARD, new_mobile


def test_serve_alone_sends_a_confirmation(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/embedded.db"
    upgrade(url)
    with FakeTwilio(auth_token=TOKEN) as twilio:
        settings = Settings(
            environment="test",
            database_url=url,
            data_dir=tmp_path,
            data_keys=Fernet.generate_key().decode(),
            lookup_key=secrets.token_urlsafe(32),
            twilio_account_sid=twilio.account_sid,
            twilio_auth_token=TOKEN,
            twilio_from_number=WARD,
            twilio_api_base=twilio.base_url,
            quiet_from="00:00",
            quiet_until="00:00",
        )
        app = create_app(settings, housekeeping=True)
        with TestClient(app):  # the lifespan starts the in-process jobs
            with app.state.sessions() as db:
                schedule.install_ward(db, sample_ward())
                schedule.extend_schedule(db)
                db.commit()
            phone = new_mobile()
            with app.state.sessions() as db:
                # Days ahead: the day-before reminder is still to come, whatever the hour the
                # tests run (the day's first free slot is tomorrow morning after 18:00 JST).
                later = db.info["booking"].today() + timedelta(days=3)
                [slot] = booking.availability(
                    db, service_id="application_help", start=later, limit=1
                )
                resident = ResidentInput("ヨテイ ハナコ", phone, date(1970, 1, 1))
                made = booking.book(db, slot_id=slot.id, party=1, resident=resident, channel="web")
                db.commit()  # the commit wakes the pump on the job thread
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # planned, then sent, by the job thread
                with app.state.sessions() as db:
                    found = reminders.messages_for(db, booking_id=made.id)
                if found and found[0].status not in ("scheduled", "claimed"):
                    break
                time.sleep(0.1)
            [confirmation, reminder] = found
            assert (confirmation.kind, confirmation.status) == ("confirmation", "sent")
            [sms] = twilio.messages()
            assert sms.to == phone
            assert made.code in str(sms.body)
            assert (reminder.kind, reminder.status) == ("reminder", "scheduled")
