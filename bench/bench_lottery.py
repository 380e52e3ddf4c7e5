#!/usr/bin/env python3
"""The lottery (抽選) at a ward's scale on PostgreSQL: applications taken one by one, then the
draw: how long it holds the lottery's slots, and that it books exactly its winners.

See --help and bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from datetime import date, datetime, timedelta
from datetime import time as clock_time

from cryptography.fernet import Fernet
from sqlalchemy import func, select

from booking import lottery, schedule
from booking.context import TOKYO, BookingContext, BookingRules
from booking.models import Booking, Slot
from booking.personal import Vault
from booking.service import MemberInput, ResidentInput
from config.db import make_engine, make_sessionmaker
from config.migrate import throwaway_database
from config.sample import sample_ward

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 10, 5, 10, 0, tzinfo=TOKYO)  # a Monday morning in Tokyo
DAY = date(2026, 10, 17)  # a Saturday: a holiday opening, the lottery's sessions


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--applications", type=int, default=3000, help="households applying")
    parser.add_argument("--sessions", type=int, default=4, help="holiday sessions in the draw")
    parser.add_argument("--seats", type=int, default=6, help="seats per 15-minute slot")
    parser.add_argument("--database-url", default=os.environ.get("MADOGUCHI_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    clock = Clock()
    vault = Vault.from_keys([Fernet.generate_key().decode()], "bench-lookup-key-" + "x" * 16)
    rules = BookingRules(max_active_per_phone=1_000_000)
    ctx = BookingContext(vault=vault, rules=rules, clock=clock)
    with throwaway_database(args.database_url or DEFAULT_ADMIN_URL, prefix="bench_lottery") as url:
        engine = make_engine(url.render_as_string(hide_password=False))
        sessions = make_sessionmaker(engine, ctx)
        with sessions() as db:
            schedule.install_ward(db, sample_ward())
            opened = [
                schedule.open_extra_session(
                    db,
                    venue_id="main",
                    service_id="pickup",
                    day=DAY,
                    opens=clock_time(9 + 2 * i),
                    closes=clock_time(11 + 2 * i),
                    slot_minutes=15,
                    seats=args.seats,
                ).id
                for i in range(args.sessions)
            ]
            made = lottery.create_lottery(
                db,
                session_ids=opened,
                applications_from=NOW - timedelta(minutes=1),
                applications_until=NOW + timedelta(days=2),
                draw_at=NOW + timedelta(days=3),
            )
            db.commit()
        slots = [s.id for s in made.slots]
        seats = len(slots) * args.seats
        rng = random.Random(1)
        started = time.perf_counter()
        people = 0
        for i in range(args.applications):
            party = rng.choice((1, 1, 1, 2, 2, 3, 4))
            people += party
            resident = ResidentInput(
                name_kana="ベンチ ハナコ",
                phone=f"090{10_000_000 + i:08d}",
                birth_date=date(1970, 1, 1),
                members=[MemberInput(f"B{i % 100:02d}-{i * 10 + m:06d}") for m in range(party)],
            )
            with sessions() as db:
                lottery.apply(
                    db,
                    lottery_id=made.id,
                    party=party,
                    resident=resident,
                    preferences=rng.sample(slots, 3),
                    channel="web",
                )
                db.commit()
        applying = time.perf_counter() - started
        clock.now = made.draw_at + timedelta(seconds=1)
        started = time.perf_counter()
        with sessions() as db:
            outcome = lottery.run_draw(db, lottery_id=made.id)
            db.commit()
        drawing = time.perf_counter() - started
        assert outcome is not None
        with sessions() as db:
            record = lottery.public_record(db, lottery_id=made.id)
            booked = db.execute(
                select(func.count(), func.coalesce(func.sum(Booking.party_size), 0)).where(
                    Booking.slot_id.in_(slots)
                )
            ).one()
            over = db.execute(
                select(func.count()).where(Slot.id.in_(slots), Slot.booked > Slot.capacity)
            ).scalar_one()
        engine.dispose()
    assert record is not None, "no record"
    assert lottery.verify(record), "the record does not reproduce the draw"
    assert booked[0] == len(outcome.won), "bookings do not match the winners"
    assert over == 0, "a slot over capacity"
    won, lost = len(outcome.won), len(outcome.lost)
    say = [
        f"{args.applications} applications ({people} people), {seats} seats in {len(slots)} slots",
        f"applying: {args.applications / applying:,.0f} applications/s (one at a time)",
        f"draw: {drawing:.2f} s; {won} won ({booked[1]} seats), {lost} not drawn",
        "the record reproduces the draw; bookings = winners; no slot over capacity",
    ]
    print("\n".join(say))


if __name__ == "__main__":
    main()
