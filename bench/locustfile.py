"""An opening morning at Madoguchi, for locust: new weeks of slots have just opened.

Residents browse the calendar (month pages, a day's times, the earliest times anywhere), others
hold and book through the JSON API, agents sit signed in on the console's live queue (polling
its page, holding its server-sent event stream open), and phone calls go through the IVR
(Twilio's signed webhooks, followed by ivr.caller.PhoneCall), all at once. With ``flood`` set,
more residents ask for pages back to back, from a few addresses, to flood the web pool.

bench/bench_load.py starts the production layout and runs this file headless
(``locust -f bench/locustfile.py --headless``), passing the run's settings as a JSON file named
by BENCH_LOAD_CONFIG; every locust process writes what its clients heard (bench/load_record.py)
to the ``out`` folder when it stops. Locust's gevent patches this process only: the driver, the
database checks and the servers never run under it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import secrets
import ssl
import sys
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

# httpcore imports trio when it is installed, for async clients under trio. Under locust's
# gevent monkey-patching that import fails (gevent's select has no epoll) and takes httpx down
# with it; these clients are synchronous and never need trio, so it counts as not installed.
sys.modules.setdefault("trio", None)  # type: ignore[arg-type]

import httpx  # noqa: E402
from locust import User, between, events  # noqa: E402
from locust.env import Environment  # noqa: E402

from bench.bench_ivr import SORRY, birth_keys, keypad, ward_menus  # noqa: E402
from bench.load_record import SIGN_IN_BURST, Recorder, TimedTransport, answer_kind  # noqa: E402
from booking.context import TOKYO  # noqa: E402
from config.sample import sample_ward  # noqa: E402
from ivr.caller import PhoneCall  # noqa: E402

CONFIG: dict[str, Any] = json.loads(
    Path(os.environ.get("BENCH_LOAD_CONFIG", "/nonexistent")).read_text(encoding="utf-8")
    if "BENCH_LOAD_CONFIG" in os.environ
    else '{"calls": 0, "agents": 0, "flood": 0, "weights": {"browse": 3, "book": 1}}'
)
RECORDER = Recorder()
TLS = ssl.create_default_context(cafile=CONFIG.get("cafile"))  # one context: see bench_ivr
MENUS = ward_menus()
SERVICES: list[str] = MENUS.services  # in the IVR's order
VENUES: dict[str, list[str]] = {
    s: [v["id"] for v in sample_ward()["venues"] if s in v["services"]] for s in SERVICES
}
THINK = float(CONFIG.get("think", 2.0))
# The residents' pauses (reading a page, filling in the form) times this: 0 sends their
# requests back to back, to find what the web pool can serve.
PACE = float(CONFIG.get("pace", 1.0))
_addresses = itertools.count()
_state = {"deadline": float("inf"), "started": 0.0}


def _started(environment: Environment, **_: object) -> None:
    _state["started"] = time.time()
    _state["deadline"] = time.time() + float(CONFIG.get("seconds", 60))


events.test_start.add_listener(_started)  # type: ignore[no-untyped-call]


def _dump(**_: object) -> None:
    if RECORDER.ms or RECORDER.tallies:
        RECORDER.dump(Path(CONFIG["out"]) / f"{os.getpid()}.json")


events.test_stop.add_listener(_dump)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_dump)  # type: ignore[no-untyped-call]


class TimeUp(Exception):
    """The run is over: a caller hangs up, a resident leaves the form."""


def source(network: int) -> str:
    """A loopback address of this process's own for one client (127.<network>.x.y)."""
    n = next(_addresses) + (os.getpid() % 64) * 1000
    return f"127.{network}.{n // 250 % 250 + 1}.{n % 250 + 1}"


def today() -> date:
    return datetime.now(TOKYO).date()


class Client(User):
    """A user with an HTTPS client of nginx's from a loopback address of its own."""

    abstract = True
    network = 1
    group: str | None = None

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.rng = random.Random(secrets.randbits(64))
        self.address = self.pick_address()
        self.http = self.client_from(self.address)

    def pick_address(self) -> str:
        return source(self.network)

    def client_from(self, address: str) -> httpx.Client:
        transport = TimedTransport(
            RECORDER, source=address, verify=TLS, on_request=self._fire, group=self.group
        )
        return httpx.Client(
            base_url=CONFIG["base"], transport=transport, timeout=30, trust_env=False
        )

    def _fire(
        self, method: str, name: str, ms: float, size: int, failed: BaseException | None
    ) -> None:
        self.environment.events.request.fire(
            request_type=method,
            name=name,
            response_time=ms,
            response_length=size,
            exception=failed,
            context={},
        )

    def pause(self, low: float, high: float) -> None:
        """Reading or filling in; when the run is over, the user leaves instead."""
        time.sleep(self.rng.uniform(low, high))
        if time.time() > _state["deadline"]:
            raise TimeUp

    def on_stop(self) -> None:
        self.http.close()


def _day_in_window(rng: random.Random) -> date:
    return today() + timedelta(days=rng.randint(1, 40))


class Browser(Client):
    """A resident looking for a time: month pages, a day's times, the earliest times."""

    weight = int(CONFIG.get("weights", {}).get("browse", 3))

    def wait_time(self) -> float:
        return self.rng.uniform(1, 3) * PACE

    def on_start(self) -> None:
        self.service = "pickup" if self.rng.random() < 0.8 else self.rng.choice(SERVICES)
        self.party = self.rng.choices([1, 2, 3], weights=[50, 30, 20])[0]

    def _venue(self) -> str:
        return self.rng.choice(VENUES[self.service])

    def browse(self) -> None:
        """One page; its answer is judged by its status, which the transport records."""
        kind = self.rng.choices(["start", "month", "day", "earliest"], weights=[1, 4, 3, 2])[0]
        q = {"party": self.party}
        if kind == "start":
            self.http.get(self.rng.choice(["/", f"/book/{self.service}"]))
        elif kind == "month":
            day = _day_in_window(self.rng)
            url = f"/book/{self.service}/{self._venue()}"
            self.http.get(url, params={**q, "month": f"{day:%Y-%m}"})
        elif kind == "day":
            url = f"/book/{self.service}/{self._venue()}/{_day_in_window(self.rng)}"
            self.http.get(url, params=q)
        else:
            self.http.get(f"/book/{self.service}/any", params=q)

    tasks = [browse]  # noqa: RUF012 (locust's own attribute)


class Flooder(Browser):
    """A resident's browser asking for pages back to back, from one of a few addresses."""

    abstract = int(CONFIG.get("flood", 0)) == 0
    fixed_count = int(CONFIG.get("flood", 0))

    def wait_time(self) -> float:
        return 0.0

    group = "flood: resident pages"

    def pick_address(self) -> str:
        many = max(1, int(CONFIG.get("flood_addresses", 1)))
        return f"127.9.0.{self.rng.randrange(many) + 1}"


def _notice(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    head = rng.choice(letters) + rng.choice(letters) + rng.choice("0123456789")
    return f"{head}-{rng.randrange(1_000_000):06d}"


class Booker(Client):
    """A resident who books: the free times, a hold, the form filled in, the booking."""

    weight = int(CONFIG.get("weights", {}).get("book", 1))

    def wait_time(self) -> float:
        return self.rng.uniform(2, 5) * PACE

    def book_one(self) -> None:
        rng = self.rng
        service = "pickup" if rng.random() < 0.8 else rng.choice(["pin_reset", "cert_renewal"])
        party = rng.choices([1, 2, 3], weights=[50, 30, 20])[0] if service == "pickup" else 1
        params: dict[str, str | int] = {"service": service, "party": party, "limit": 10}
        if rng.random() < 0.5:
            params["venue"] = rng.choice(VENUES[service])
        free = self.http.get("/api/v1/availability", params=params)
        if free.status_code != 200:
            return
        slots = free.json()
        if not slots and "venue" in params:
            # A branch keeps two seats a pickup slot: a party of three finds none there, and
            # asks for the earliest time anywhere instead.
            del params["venue"]
            free = self.http.get("/api/v1/availability", params=params)
            slots = free.json() if free.status_code == 200 else []
        if not slots:
            RECORDER.tallies["booker found no free time"] += 1
            return
        slot = rng.choice(slots[:3])  # the earliest: what everyone wants on the opening morning
        hold = self.http.post("/api/v1/holds", json={"slot_id": slot["id"], "party_size": party})
        if hold.status_code == 409:
            RECORDER.tallies["hold refused: seats gone"] += 1
            return
        if hold.status_code != 201:
            return
        try:
            self.pause(1 * PACE, 4 * PACE)  # the form
        except TimeUp:
            return  # the hold lapses by itself
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(65 * 365))
        body = {
            "hold_id": hold.json()["id"],
            "party_size": party,
            "name_kana": "ヤマダ タロウ",
            "phone": f"0{rng.choice('789')}0{rng.randint(10_000_000, 99_999_999)}",
            "birth_date": birth.isoformat(),
            "language": rng.choice(["ja", "ja", "en"]),
            "members": [{"notice_number": _notice(rng)} for _ in range(party)]
            if service == "pickup"
            else [],
        }
        key = {"Idempotency-Key": secrets.token_hex(12)}
        try:
            booked = self.http.post("/api/v1/bookings", json=body, headers=key)
        except httpx.TransportError:
            RECORDER.tallies["booking retried after no answer"] += 1
            booked = self.http.post("/api/v1/bookings", json=body, headers=key)
        if booked.status_code == 201:
            made = booked.json()
            RECORDER.booked.append(
                {"code": made["code"], "slot_id": slot["id"], "seats": party, "birth": str(birth)}
            )
        elif booked.status_code == 409:
            RECORDER.tallies["booking refused (409)"] += 1

    tasks = [book_one]  # noqa: RUF012


class Agent(Client):
    """An agent signed in on the console: the queue page now and then, its live stream open."""

    abstract = int(CONFIG.get("agents", 0)) == 0
    fixed_count = int(CONFIG.get("agents", 0))
    network = 3
    wait_time = between(2, 4)

    def on_start(self) -> None:
        logins: list[str] = CONFIG["staff"]
        login_id = logins[next(_addresses) % len(logins)]
        self.http.get("/console/login")
        signed = self.http.post(
            "/console/login",
            data={
                "csrf": self.http.cookies.get("console_login") or "",
                "login_id": login_id,
                "password": CONFIG["password"],
            },
        )
        if signed.status_code != 303:
            RECORDER.error(f"agent {login_id} not signed in: {signed.status_code}")

    def poll(self) -> None:
        self.http.get("/console/")

    def watch(self) -> None:
        """The queue's stream: the time to its first event, then kept open a while."""
        group = "console: queue stream (first event)"
        started = time.perf_counter()
        hold = min(self.rng.uniform(5, 15), max(_state["deadline"] - time.time(), 1))
        got_first = False
        # An event comes when the queue changes: a quiet queue sends nothing after the first,
        # so the stream is read until ``hold`` passes without a word, then closed.
        timeout = httpx.Timeout(10, read=hold)
        try:
            with self.http.stream("GET", "/console/queue/stream", timeout=timeout) as answer:
                if answer.status_code != 200:
                    RECORDER.add(group, (time.perf_counter() - started) * 1000, "not signed in")
                    RECORDER.error(f"queue stream answered {answer.status_code}")
                    return
                for line in answer.iter_lines():
                    if line.startswith("event:") and not got_first:
                        got_first = True
                        RECORDER.add(group, (time.perf_counter() - started) * 1000, "ok")
                    if time.perf_counter() - started > hold:
                        break
        except httpx.ReadTimeout:
            if not got_first:
                RECORDER.add(group, (time.perf_counter() - started) * 1000, "timeout")
        except httpx.TransportError as failed:
            RECORDER.add(group, (time.perf_counter() - started) * 1000, "no connection")
            RECORDER.error(f"queue stream: {type(failed).__name__}: {failed}")

    tasks = [poll, poll, watch]  # noqa: RUF012


class SignInBurst(User):
    """``sign_in_burst`` agents signing in to the console at the same instant, ``sign_in_bursts``
    times, evenly spread over the run after the ramp (every caller then on the line): each
    from an address of its own, with an account of its own, the sign-in form already open. The
    POSTs are let go together; each is timed, and each burst's window (the first sent to the
    last answered) is kept, to pick out the phone line's webhooks under way meanwhile."""

    abstract = int(CONFIG.get("sign_in_burst", 0)) == 0 or int(CONFIG.get("sign_in_bursts", 0)) == 0
    fixed_count = 1
    network = 4

    def wait_time(self) -> float:
        return 0.2

    def on_start(self) -> None:
        ramp, seconds = float(CONFIG.get("ramp", 0)), float(CONFIG.get("seconds", 60))
        count = int(CONFIG["sign_in_bursts"])
        self.times = [
            _state["started"] + ramp + (seconds - ramp) * (n + 1) / (count + 1)
            for n in range(count)
        ]

    def burst(self) -> None:
        if not self.times:
            time.sleep(1)
            return
        time.sleep(max(0.0, self.times.pop(0) - time.time()))
        logins: list[str] = CONFIG["burst_staff"][: int(CONFIG["sign_in_burst"])]
        clients = [
            httpx.Client(
                base_url=CONFIG["base"],
                transport=httpx.HTTPTransport(local_address=source(self.network), verify=TLS),
                timeout=30,
                trust_env=False,
            )
            for _ in logins
        ]
        try:
            for client in clients:  # the form open in each browser (not timed)
                client.get("/console/login")
            # Threads and events are gevent's here (locust patches them): greenlets that
            # send their sign-in together once ``go`` is set.
            go = threading.Event()
            workers = [
                threading.Thread(target=self._sign_in, args=(client, login, go))
                for client, login in zip(clients, logins, strict=True)
            ]
            for worker in workers:
                worker.start()
            time.sleep(0.05)  # every one of them waiting on ``go``
            began = time.time()
            go.set()
            for worker in workers:
                worker.join()
            RECORDER.bursts.append((began, time.time()))
        finally:
            for client in clients:
                client.close()

    def _sign_in(self, client: httpx.Client, login_id: str, go: threading.Event) -> None:
        form = {
            "csrf": client.cookies.get("console_login") or "",
            "login_id": login_id,
            "password": CONFIG["password"],
        }
        go.wait()
        started = time.perf_counter()
        try:
            answer = client.post("/console/login", data=form)
        except httpx.TransportError as failed:
            ms = (time.perf_counter() - started) * 1000
            timed_out = isinstance(failed, httpx.TimeoutException)
            RECORDER.add(SIGN_IN_BURST, ms, "timeout" if timed_out else "no connection")
            RECORDER.error(f"burst sign-in {login_id}: {type(failed).__name__}: {failed}")
            return
        ms = (time.perf_counter() - started) * 1000
        RECORDER.add(SIGN_IN_BURST, ms, answer_kind(answer.status_code, busy_page=False))
        if answer.status_code != 303:
            RECORDER.error(f"burst sign-in {login_id}: {answer.status_code}")

    tasks = [burst]  # noqa: RUF012


class Unexpected(Exception):
    """The IVR said or asked something the caller's script has no answer for."""


class Caller(Client):
    """A phone line: one call after another through Twilio's signed webhooks."""

    abstract = int(CONFIG.get("calls", 0)) == 0
    fixed_count = int(CONFIG.get("calls", 0))
    network = 2
    wait_time = between(THINK * 0.5, THINK * 1.5 + 0.01)

    def one_call(self) -> None:
        self.call = PhoneCall(
            self.http,
            public_base_url=CONFIG["base"],
            auth_token=CONFIG["token"],
            from_number=f"+8190{self.rng.randint(10_000_000, 99_999_999)}",
            call_sid=f"CA{self.rng.getrandbits(128):032x}",
        )
        self.turns = 0
        kind = self.rng.choices(["booking", "check", "faq"], weights=[70, 15, 15])[0]
        if kind == "check" and not RECORDER.booked:
            kind = "faq"
        try:
            outcome = {"booking": self.booking, "check": self.check, "faq": self.faq}[kind]()
            RECORDER.tallies[f"call: {outcome}"] += 1
        except TimeUp:
            RECORDER.tallies[f"call: {kind}, hung up when time was up"] += 1
            self.hang_up()
        except Exception as failed:
            RECORDER.error(f"{kind} call {self.call.call_sid}: {type(failed).__name__}: {failed}")
            self.hang_up()

    tasks = [one_call]  # noqa: RUF012

    def hang_up(self) -> None:
        if self.call.state not in ("ended", "new"):
            with contextlib.suppress(Exception):
                self.call.hang_up()  # Twilio's status callback: any held seats go back

    def heard(self, lines: list[str]) -> None:
        if any(SORRY in line for line in lines):
            raise Unexpected(f"the IVR apologised: {' '.join(lines)[:200]}")

    def press(self, keys: str) -> None:
        self.turns += 1
        if self.turns > 60:
            raise Unexpected("more than 60 key presses: a loop?")
        self.pause(THINK * 0.5, THINK * 1.5)
        self.heard(self.call.press(keys))

    def step(self) -> str | None:
        prompt = self.call.prompt
        if prompt is None:
            return None
        return httpx.URL(prompt.action).path.removeprefix("/ivr/").removeprefix("step/")

    def booking(self) -> str:
        rng = self.rng
        service = 0 if rng.random() < 0.7 else rng.randrange(1, len(MENUS.services))
        party = rng.choices([1, 2, 3], weights=[50, 30, 20])[0] if service == 0 else 1
        venue = 0 if rng.random() < 0.3 else rng.randint(1, MENUS.venues[MENUS.services[service]])
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(65 * 365))
        notices = [_notice(rng).split("-") for _ in range(party)]
        typed = {"head": 0, "tail": 0}
        answers = {
            "book_service": str(service + 1),
            "book_party": str(party),
            "notice_check": "1",
            "birth_check": "1",
            "phone_caller": "1",
            "confirm": "1",
        }
        self.heard(self.call.dial())
        while (step := self.step()) is not None:
            if step == "menu" and not self.turns:
                self.press("1")
            elif step == "book_venue":
                self.press(f"{venue}#")
            elif step == "offer":
                self.press("1")
            elif step == "offer_none":
                if venue == 0:
                    self.press("9")
                    self.hang_up()
                    return "booking, no free time"
                venue = 0
                self.press("1")
            elif step == "notice_head":
                self.press(keypad(notices[typed["head"] % party][0]))
                typed["head"] += 1
            elif step == "notice_tail":
                self.press(notices[typed["tail"] % party][1])
                typed["tail"] += 1
            elif step == "birth":
                self.press(birth_keys(birth, rng))
            elif step == "after_booking":
                RECORDER.tallies["ivr bookings heard"] += 1
                self.press("9")
                return "booked"
            elif step in answers:
                self.press(answers[step])
            else:
                raise Unexpected(f"unexpected step {step!r}: {self.call.last_said[:200]}")
        raise Unexpected(f"the call ended before a booking: {self.call.last_said[:200]}")

    def check(self) -> str:
        made = self.rng.choice(RECORDER.booked)
        self.heard(self.call.dial())
        self.press("2")
        while (step := self.step()) is not None:
            if step == "manage_code":
                if self.turns > 1:
                    raise Unexpected(f"booking {made['code']} not found by its birth date")
                self.press(str(made["code"]))
            elif step == "manage_birth":
                self.press(f"{date.fromisoformat(str(made['birth'])):%Y%m%d}#")
            elif step == "manage":
                self.press("9")
            elif step == "menu":
                self.hang_up()
                return "checked a booking"
            else:
                raise Unexpected(f"unexpected step {step!r}: {self.call.last_said[:200]}")
        raise Unexpected("the call ended while checking a booking")

    def faq(self) -> str:
        self.heard(self.call.dial())
        self.press("3")
        for _ in range(self.rng.randint(1, 3)):
            if self.step() != "faq":
                raise Unexpected(f"unexpected step {self.step()!r}")
            self.press(self.rng.choice(["1", "2", "3", "4"]))
        self.hang_up()
        return "heard the FAQ"


__all__ = ["Agent", "Booker", "Browser", "Caller", "Flooder", "SignInBurst"]
