"""The production layout, run: Debian's nginx with deploy/nginx/madoguchi.conf in front of two
web processes and one phone-line process, each started with its systemd unit's command line,
on a PostgreSQL database and a Redis of this test's own, the sample ward loaded.

Every request goes to nginx over HTTPS from a loopback address of the test's choosing
(127.0.0.N): uvicorn logs the client address nginx passed on, so each process's own access log
says which requests it served, and that the forwarded address was trusted."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import TypeAdapter
from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from booking import schedule
from config.app import session_factory
from config.migrate import throwaway_database
from config.sample import sample_ward
from config.settings import Settings, normalise_database_url
from ivr.caller import PhoneCall
from tests.conftest import DEFAULT_PG
from tests.production_site import (
    DEPLOY,
    NGINX,
    Process,
    Served,
    SitePorts,
    free_port,
    nginx_conf,
    private_redis,
    self_signed,
    served,
    site_for_test,
    unit_command,
    wait_for_port,
    wait_until_up,
)

TOKEN = "5e6f708192a3b4c5d6e7f8091a2b3c4d"  # noqa: S105 (the test line's token)
UNITS = ("madoguchi-web@.service", "madoguchi-ivr@.service", "madoguchi-worker@.service")


# --- the files themselves ----------------------------------------------------------------------


def _template() -> dict[str, tuple[bool, str]]:
    """deploy/madoguchi.env.example: setting name -> (set for production, value)."""
    found: dict[str, tuple[bool, str]] = {}
    # MADOGUCHI_* settings, and uvicorn's own FORWARDED_ALLOW_IPS (read by Settings too).
    line = re.compile(r"^(#?)(?:MADOGUCHI_)?([A-Z0-9_]+)=(.*)$")
    for raw in (DEPLOY / "madoguchi.env.example").read_text(encoding="utf-8").splitlines():
        match = line.match(raw)
        if match:
            name = match.group(2).lower()
            assert name not in found, f"MADOGUCHI_{name.upper()} is in the template twice"
            found[name] = (match.group(1) == "", match.group(3))
    return found


def test_the_env_template_lists_every_setting_with_its_default() -> None:
    template = _template()
    fields = Settings.model_fields
    assert set(template) - set(fields) == set(), "settings in the template that do not exist"
    assert set(fields) - set(template) == set(), "settings missing from the template"
    for name, (is_set, value) in template.items():
        default = fields[name].default
        if is_set:
            continue  # the production value, filled in by the ward
        if value == "":
            assert default in (None, ""), f"MADOGUCHI_{name.upper()}: the default is {default!r}"
            continue
        shown: object = TypeAdapter(fields[name].annotation).validate_python(value)
        assert shown == default, f"MADOGUCHI_{name.upper()}={value}: the default is {default!r}"


def test_every_unit_is_a_hardened_service_of_the_target_reading_the_env_file() -> None:
    for unit in UNITS:
        body = (DEPLOY / "systemd" / unit).read_text(encoding="utf-8")
        lines = set(body.splitlines())
        for wanted in (
            "User=madoguchi",
            "EnvironmentFile=/etc/madoguchi/madoguchi.env",
            "Restart=on-failure",
            "NoNewPrivileges=true",
            "ProtectSystem=strict",
            "PrivateTmp=true",
            "ReadWritePaths=/var/lib/madoguchi",
            "PartOf=madoguchi.target",
            "WantedBy=madoguchi.target",
        ):
            assert wanted in lines, f"{unit} lacks {wanted}"
    target = (DEPLOY / "systemd" / "madoguchi.target").read_text(encoding="utf-8")
    assert "WantedBy=multi-user.target" in target
    web = (DEPLOY / "systemd" / "madoguchi-web@.service").read_text(encoding="utf-8")
    # The web pool never loads the speech models (half a gigabyte each, per process).
    assert "UnsetEnvironment=MADOGUCHI_VOSK_MODEL_JA MADOGUCHI_VOSK_MODEL_EN" in web


# --- the layout, running -----------------------------------------------------------------------


@dataclass
class Layout:
    base: str  # https://127.0.0.1:PORT, the public address (MADOGUCHI_PUBLIC_BASE_URL)
    http_port: int
    cafile: Path  # the site's self-signed certificate
    tls: ssl.SSLContext
    web: list[Process]
    ivr: Process
    nginx: Process

    def client(self, source: str) -> httpx.Client:
        """An HTTPS client of nginx's, connecting from loopback address ``source``."""
        transport = httpx.HTTPTransport(local_address=source, verify=self.tls)
        return httpx.Client(base_url=self.base, transport=transport, timeout=15)

    def seen_by(self, process: Process, source: str) -> list[Served]:
        return [s for s in served(process) if s.client == source]


@contextmanager
def _database() -> Iterator[str]:
    admin = normalise_database_url(os.environ.get("MADOGUCHI_TEST_DATABASE_URL", DEFAULT_PG))
    try:
        engine = create_engine(admin)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    with throwaway_database(admin, prefix="madoguchi_layout") as url:
        yield url.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layout]:
    if not NGINX.exists():
        pytest.skip("Debian's nginx is not installed (/usr/sbin/nginx); .ci/run installs it")
    folder = tmp_path_factory.mktemp("layout")
    with ExitStack() as stack:
        database = stack.enter_context(_database())
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        redis_url = private_redis(folder, stack)
        ports = SitePorts(free_port(), free_port(), [free_port(), free_port()], [free_port()])
        base = f"https://127.0.0.1:{ports.https}"
        env = {
            "MADOGUCHI_ENVIRONMENT": "production",
            "MADOGUCHI_DATABASE_URL": database,
            "MADOGUCHI_REDIS_URL": redis_url,
            "MADOGUCHI_DATA_DIR": str(folder / "data"),
            "MADOGUCHI_DATA_KEYS": Fernet.generate_key().decode(),
            "MADOGUCHI_LOOKUP_KEY": secrets.token_urlsafe(32),
            "MADOGUCHI_PUBLIC_BASE_URL": base,
            "MADOGUCHI_TWILIO_AUTH_TOKEN": TOKEN,
            "MADOGUCHI_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        }
        settings = Settings.model_validate(
            {k[len("MADOGUCHI_") :].lower(): v for k, v in env.items() if "MADOGUCHI_" in k}
        )
        sessions = session_factory(settings)
        with sessions() as db:  # `madoguchi sample load`
            schedule.install_ward(db, sample_ward())
            schedule.extend_schedule(db)
            db.commit()
        sessions.kw["bind"].dispose()

        web = [
            Process(
                f"web {port}",
                unit_command("madoguchi-web@.service", port),
                folder / f"web-{port}.log",
                env,
            )
            for port in ports.web
        ]
        ivr = Process(
            f"ivr {ports.ivr[0]}",
            unit_command("madoguchi-ivr@.service", ports.ivr[0]),
            folder / "ivr.log",
            env,
        )
        for process in (*web, ivr):
            stack.callback(process.stop)
            process.start()

        cert, key = self_signed(folder / "tls")
        site = folder / "madoguchi.conf"
        site.write_text(site_for_test(folder, ports, cert, key), encoding="utf-8")
        (folder / "acme").mkdir()
        main = folder / "nginx.conf"
        main.write_text(nginx_conf(folder, site), encoding="utf-8")
        nginx_command = [
            str(NGINX),
            "-p",
            str(folder),
            "-e",
            str(folder / "error.log"),
            "-c",
            str(main),
        ]
        checked = subprocess.run(  # noqa: S603 (Debian's nginx, our configuration)
            [*nginx_command, "-t"], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stderr
        nginx = Process("nginx", [*nginx_command, "-g", "daemon off;"], folder / "nginx.out")
        stack.callback(nginx.stop)
        nginx.start()

        for process, port in ((web[0], ports.web[0]), (web[1], ports.web[1]), (ivr, ports.ivr[0])):
            wait_until_up(process, f"http://127.0.0.1:{port}/healthz")
        tls = ssl.create_default_context(cafile=str(cert))
        wait_for_port(nginx, ports.https)
        yield Layout(base, ports.http, cert, tls, web, ivr, nginx)


def _no_phone_line_on_the_web(layout: Layout) -> None:
    for process in layout.web:
        wrong = [s for s in served(process) if s.path.startswith("/ivr/")]
        assert wrong == [], f"{process.name} served the phone line: {wrong}"


def test_a_booking_over_https_is_shared_by_the_web_processes_and_never_the_phone_line(
    layout: Layout,
) -> None:
    source = "127.0.0.3"
    with layout.client(source) as http:
        assert http.get("/api/v1/services").status_code == 200
        free = http.get(
            "/api/v1/availability", params={"service": "pickup", "party": 1, "limit": 3}
        )
        assert free.status_code == 200, free.text
        slot = free.json()[0]["id"]
        hold = http.post("/api/v1/holds", json={"slot_id": slot, "party_size": 1})
        assert hold.status_code == 201, hold.text
        booked = http.post(
            "/api/v1/bookings",
            headers={"Idempotency-Key": secrets.token_hex(8)},
            json={
                "hold_id": hold.json()["id"],
                "party_size": 1,
                "name_kana": "ヤマダ タロウ",
                "phone": "090-1234-5678",
                "birth_date": "1958-04-01",
                "language": "ja",
                "members": [{"notice_number": "AB1-234567"}],
            },
        )
        assert booked.status_code == 201, booked.text
        assert booked.json()["status"] == "booked"
        page = http.get("/")
        assert page.status_code == 200
        # nginx told the app the request came over https: the app's own HSTS header says so.
        assert "max-age" in page.headers.get("strict-transport-security", "")

    # Both web processes served some of it, and believed the client's own address.
    for process in layout.web:
        assert layout.seen_by(process, source), f"{process.name} served none of the booking"
    seen = {s.path for p in layout.web for s in layout.seen_by(p, source)}
    assert {"/api/v1/holds", "/api/v1/bookings", "/"} <= seen
    # The phone-line process saw none of it.
    assert layout.seen_by(layout.ivr, source) == []


def test_the_site_speaks_http2_and_sends_http_to_https(layout: Layout) -> None:
    with (
        socket.create_connection(("127.0.0.1", int(layout.base.rsplit(":", 1)[1]))) as raw,
    ):
        offer = ssl.create_default_context(cafile=str(layout.cafile))
        offer.set_alpn_protocols(["h2", "http/1.1"])
        with offer.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.selected_alpn_protocol() == "h2"
    plain = httpx.get(f"http://127.0.0.1:{layout.http_port}/manage?x=1", follow_redirects=False)
    assert plain.status_code == 301
    assert plain.headers["location"].startswith("https://127.0.0.1")
    assert plain.headers["location"].endswith("/manage?x=1")


def _stream(layout: Layout, call_sid: str, source: str) -> int:
    """Twilio's media stream of one question through nginx: connected, start, a second of
    silence in 20 ms frames, stop. Returns the close code the server ended with."""
    url = layout.base.replace("https://", "wss://") + "/ivr/stream"
    signature = RequestValidator(TOKEN).compute_signature(url, {})
    stream_sid = "MZ" + secrets.token_hex(16)
    frame = base64.b64encode(b"\xff" * 160).decode()  # 20 ms of mu-law silence
    with connect(
        url,
        ssl=layout.tls,
        additional_headers={"X-Twilio-Signature": signature},
        source_address=(source, 0),
        open_timeout=10,
    ) as ws:
        ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "streamSid": stream_sid,
            "accountSid": "AC" + "0" * 32,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "customParameters": {"step": "menu", "n": "1", "lang": "ja"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        ws.send(json.dumps({"event": "start", "start": start, "streamSid": stream_sid}))
        for n in range(50):
            media = {"track": "inbound", "chunk": str(n + 1), "payload": frame}
            ws.send(json.dumps({"event": "media", "media": media, "streamSid": stream_sid}))
        ws.send(json.dumps({"event": "stop", "streamSid": stream_sid}))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    assert ws.close_code is not None, "the stream was not closed after stop"
    return ws.close_code


def test_a_call_and_its_media_stream_go_through_nginx_to_the_phone_line_pool_only(
    layout: Layout,
) -> None:
    source = "127.0.0.4"
    with layout.client(source) as http:
        call = PhoneCall(http, public_base_url=layout.base, auth_token=TOKEN)
        heard = call.dial()  # signed for the https address: checks pass through the proxy
        assert heard, "the greeting said nothing"
        call.press("1")
        assert call.state == "gathering"
    # Neither refused (1008: the signature) nor broken (1007: the messages). The app ends a
    # stream after stop without a closing handshake (1006), through nginx as without it.
    assert _stream(layout, call.call_sid, source) not in (1007, 1008)

    mine = layout.seen_by(layout.ivr, source)
    assert any(s.method == "POST" and s.path == "/ivr/voice" for s in mine), mine
    assert any(s.method == "WebSocket" and s.path == "/ivr/stream" for s in mine), mine
    assert "no speech in ja, keys only" in layout.ivr.output()
    assert "refused" not in layout.ivr.output()
    for process in layout.web:
        assert layout.seen_by(process, source) == []
    _no_phone_line_on_the_web(layout)

    # The pool itself answers nothing but the phone line: a resident page is not its to serve.
    port = layout.ivr.command[layout.ivr.command.index("--port") + 1]
    assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 404
    assert httpx.get(f"http://127.0.0.1:{port}/api/v1/services").status_code == 404


def test_static_files_come_from_disk_and_metrics_stay_private(layout: Layout) -> None:
    source = "127.0.0.5"
    with layout.client(source) as http:
        for path, on_disk in (
            ("/static/site.css", "booking/pages/static/site.css"),
            ("/console/static/queue.js", "agent_console/static/queue.js"),
        ):
            answer = http.get(path)
            assert answer.status_code == 200
            assert answer.content == (Path(__file__).resolve().parents[1] / on_disk).read_bytes()
            assert answer.headers["cache-control"] == "public, max-age=3600"
        assert http.get("/metrics").status_code == 404
    for process in (*layout.web, layout.ivr):
        assert layout.seen_by(process, source) == [], f"{process.name} was asked"


def test_a_flood_gets_the_busy_page_and_a_call_still_gets_through(layout: Layout) -> None:
    flood = "127.0.0.6"

    def hammer(_: int) -> httpx.Response:
        with layout.client(flood) as http:
            return http.get("/")

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(hammer, range(120)))
    refused = [a for a in answers if a.status_code == 429]
    assert refused, f"no request was refused: {sorted({a.status_code for a in answers})}"
    assert {a.status_code for a in answers} <= {200, 429}
    busy = refused[0]
    assert busy.headers["content-type"].startswith("text/html")
    assert busy.headers["retry-after"] == "30"
    assert "しばらく" in busy.text and "try again" in busy.text
    assert "03-1234-5678" in busy.text
    # Refused at nginx, never in the app: each of the app's answers carries its request id,
    # nginx's busy page none, and no web process logged a refusal for the flooding address.
    # The logged count is a floor, not an equality: on a loaded machine the logs once held twice
    # the requests answered 200, so the request id, not the count, tells whose answer it was.
    assert all("x-request-id" not in a.headers for a in refused)
    assert all("x-request-id" in a.headers for a in answers if a.status_code == 200)
    logged = [line for p in layout.web for line in p.output().splitlines() if f"{flood}:" in line]
    assert [line for line in logged if '" 429' in line] == []
    assert len(logged) >= len(answers) - len(refused)

    # Another resident is not held back, and a call from the flooding address still goes on.
    with layout.client("127.0.0.7") as http:
        assert http.get("/").status_code == 200
    with layout.client(flood) as http:
        call = PhoneCall(http, public_base_url=layout.base, auth_token=TOKEN)
        assert call.dial()
    _no_phone_line_on_the_web(layout)
