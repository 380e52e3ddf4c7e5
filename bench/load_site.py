"""The production layout on this machine, for the load test: Debian's nginx with
deploy/nginx/madoguchi.conf in front of N web processes and one phone-line process (each started
with its systemd unit's command line), two `madoguchi worker`s, a throwaway PostgreSQL database
and a redis-server of the bench's own.

The pieces that read and adapt the production files are tests/production_site.py's, shared
with tests/test_production_layout.py, so the bench runs exactly what that test checks."""

from __future__ import annotations

import os
import re
import secrets
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

from agent_console import service as staff
from booking import schedule
from config.app import session_factory
from config.migrate import throwaway_database
from config.sample import sample_ward
from config.settings import Settings
from tests.production_site import (
    DEPLOY,
    NGINX,
    REPO,
    Process,
    SitePorts,
    free_port,
    nginx_conf,
    private_redis,
    self_signed,
    site_for_test,
    unit_command,
    wait_for_port,
    wait_until_up,
)

TOKEN = "bench-" + secrets.token_hex(16)  # the bench's Twilio auth token: webhooks are signed
PASSWORD = "load-test-" + secrets.token_hex(8)  # the bench's agents'


@dataclass
class Site:
    base: str  # https://127.0.0.1:PORT
    cafile: Path
    database: str  # the throwaway database's URL
    folder: Path
    web: list[Process]
    phone: list[Process]  # the phone-line pool
    workers: list[Process]
    nginx: Process
    staff: list[str]  # agents' login IDs (password: PASSWORD)
    burst_staff: list[str]  # the sign-in bursts' agents (password: PASSWORD)

    @property
    def app_processes(self) -> list[Process]:
        return [*self.web, *self.phone]


def worker_command() -> list[str]:
    """madoguchi-worker@.service's ExecStart, with this Python."""
    text = (DEPLOY / "systemd" / "madoguchi-worker@.service").read_text(encoding="utf-8")
    assert "ExecStart=/opt/madoguchi/venv/bin/madoguchi worker\n" in text
    return [sys.executable, "-m", "config.cli", "worker"]


def unit_nice(unit: str) -> int:
    """The Nice= a deploy/systemd unit sets (0 when it sets none)."""
    text = (DEPLOY / "systemd" / unit).read_text(encoding="utf-8")
    found = re.search(r"^Nice=(-?\d+)$", text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def load_nginx_conf(folder: Path, site: Path) -> str:
    """The test's nginx.conf with Debian's own sizes (worker_processes auto, 768 connections a
    worker): the test's single worker of 512 would run out of connections before the app does."""
    text = nginx_conf(folder, site)
    text = text.replace("worker_processes 1;", "worker_processes auto;")
    return text.replace("worker_connections 512;", "worker_connections 768;")


def _install(env: dict[str, str], agents: int, burst: int = 0) -> tuple[list[str], list[str]]:
    """`madoguchi sample load` and the agents' accounts: the sessions' and the bursts'."""
    settings = Settings.model_validate(
        {k[len("MADOGUCHI_") :].lower(): v for k, v in env.items() if k.startswith("MADOGUCHI_")}
    )
    sessions = session_factory(settings)
    logins = [f"agent{n}" for n in range(1, agents + 1)]
    bursting = [f"burst{n}" for n in range(1, burst + 1)]
    with sessions() as db:
        schedule.install_ward(db, sample_ward())
        schedule.extend_schedule(db)
        for login in [*logins, *bursting]:
            staff.create_staff(
                db, login_id=login, display_name=login, role="agent", password=PASSWORD
            )
        db.commit()
    sessions.kw["bind"].dispose()
    return logins, bursting


@contextmanager
def production_layout(
    folder: Path,
    *,
    admin_url: str,
    web: int,
    agents: int,
    phone: int = 1,
    workers: int = 2,
    web_nice: int = 0,
    burst_agents: int = 0,
    phone_cpus: list[int] | None = None,
) -> Iterator[Site]:
    """Everything started and answering; stopped again on leaving. ``web_nice`` runs the web
    processes at that nice level, as their unit's Nice= does (bench_load.py passes the unit's
    own unless told otherwise). ``phone_cpus`` pins the phone-line processes to those CPUs and
    the web processes and workers to the others (taskset: what CPUAffinity= in their units
    does); PostgreSQL, Redis and nginx still run anywhere."""
    nice = ["nice", "-n", str(web_nice)] if web_nice else []
    pin_phone: list[str] = []
    pin_rest: list[str] = []
    if phone_cpus:
        rest = sorted(set(range(os.cpu_count() or 1)) - set(phone_cpus))
        if not rest:
            raise ValueError(f"no CPU left for the web pool beside {phone_cpus}")
        pin_phone = ["taskset", "-c", ",".join(map(str, phone_cpus))]
        pin_rest = ["taskset", "-c", ",".join(map(str, rest))]
    with ExitStack() as stack:
        url = stack.enter_context(throwaway_database(admin_url, prefix="madoguchi_load"))
        database = url.render_as_string(hide_password=False)
        redis_url = private_redis(folder, stack)
        ports = SitePorts(
            free_port(),
            free_port(),
            [free_port() for _ in range(web)],
            [free_port() for _ in range(phone)],
        )
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
            # The load comes from a few hundred loopback addresses and numbers where a real
            # morning has tens of thousands: the app's per-address and per-number limits would
            # refuse the bench, not the residents. nginx's per-address limit stays as shipped.
            "MADOGUCHI_WEB_BOOKINGS_PER_HOUR": "1000000",
            "MADOGUCHI_WEB_LOOKUPS_PER_15_MINUTES": "1000000",
            "MADOGUCHI_IVR_LOOKUPS_PER_15_MINUTES": "1000000",
            "MADOGUCHI_MAX_ACTIVE_BOOKINGS_PER_PHONE": "50",
            # The opening is in the morning, after the quiet hours (21:00-08:00 by default):
            # whenever the bench runs, the workers send every confirmation at once, as then.
            "MADOGUCHI_QUIET_FROM": "00:00",
            "MADOGUCHI_QUIET_UNTIL": "00:00",
            "MADOGUCHI_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(REPO),
        }
        logins, bursting = _install(env, agents, burst_agents)

        def started(name: str, command: list[str], log: str) -> Process:
            process = Process(name, command, folder / log, env)
            stack.callback(process.stop)
            return process.start()

        web_processes = [
            started(
                f"web {p}",
                [*pin_rest, *nice, *unit_command("madoguchi-web@.service", p)],
                f"web-{p}.log",
            )
            for p in ports.web
        ]
        phone_processes = [
            started(
                f"ivr {p}", [*pin_phone, *unit_command("madoguchi-ivr@.service", p)], f"ivr-{p}.log"
            )
            for p in ports.ivr
        ]
        worker_processes = [
            started(f"worker {n}", [*pin_rest, *worker_command()], f"worker-{n}.log")
            for n in range(1, workers + 1)
        ]

        cert, key = self_signed(folder / "tls")
        site = folder / "madoguchi.conf"
        site.write_text(site_for_test(folder, ports, cert, key), encoding="utf-8")
        (folder / "acme").mkdir(exist_ok=True)
        main = folder / "nginx.conf"
        main.write_text(load_nginx_conf(folder, site), encoding="utf-8")
        command = [str(NGINX), "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(main)]
        checked = subprocess.run(  # noqa: S603 (Debian's nginx, our configuration)
            [*command, "-t"], capture_output=True, text=True, check=False
        )
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t: {checked.stderr}")
        nginx = started("nginx", [*command, "-g", "daemon off;"], "nginx.out")

        pools = [*web_processes, *phone_processes]
        for process, port in zip(pools, [*ports.web, *ports.ivr], strict=True):
            wait_until_up(process, f"http://127.0.0.1:{port}/healthz", seconds=90)
        wait_for_port(nginx, ports.https)
        ssl.create_default_context(cafile=str(cert))  # the certificate is readable
        yield Site(
            base,
            cert,
            database,
            folder,
            web_processes,
            phone_processes,
            worker_processes,
            nginx,
            logins,
            bursting,
        )


def nginx_present() -> bool:
    return NGINX.exists() and os.access(NGINX, os.X_OK)
