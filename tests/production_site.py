"""The production layout run in a test: deploy/nginx/madoguchi.conf with its paths and ports
moved into a temporary folder, and the uvicorn processes started with the command lines of
deploy/systemd's units. Nothing here is a copy of the production files: they are read and
changed only where a test machine must differ (ports, certificate, folders)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis import Redis

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
NGINX = Path("/usr/sbin/nginx")
INSTALLED = "/opt/madoguchi/"
UVICORN = "/opt/madoguchi/venv/bin/uvicorn"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate and key for ``host``, valid for a day: the ward's certificate in a test."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _replace(text: str, old: str, new: str) -> str:
    if old not in text:
        raise AssertionError(f"deploy/nginx/madoguchi.conf no longer has {old!r}")
    return text.replace(old, new)


def _upstream(text: str, name: str, ports: list[int]) -> str:
    pattern = re.compile(r"(upstream " + name + r" \{\n)((?:    server [^\n]+\n)+)")
    if not pattern.search(text):
        raise AssertionError(f"deploy/nginx/madoguchi.conf has no upstream {name}")
    servers = "".join(f"    server 127.0.0.1:{port};\n" for port in ports)
    return pattern.sub(lambda m: m.group(1) + servers, text, count=1)


@dataclass(frozen=True)
class SitePorts:
    https: int
    http: int
    web: list[int]
    ivr: list[int]


def site_for_test(folder: Path, ports: SitePorts, cert: Path, key: Path) -> str:
    """deploy/nginx/madoguchi.conf on this machine: loopback ports, the test's certificate,
    logs in ``folder``, files from this checkout instead of /opt/madoguchi."""
    text = (DEPLOY / "nginx" / "madoguchi.conf").read_text(encoding="utf-8")
    text = _upstream(text, "madoguchi_web", ports.web)
    text = _upstream(text, "madoguchi_ivr", ports.ivr)
    # No IPv6 on every test machine; the IPv4 listeners stand for both.
    text = re.sub(r"\n *listen \[::\]:[^\n]*", "", text)
    text = _replace(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{ports.https} ssl http2;")
    text = _replace(text, "listen 80;", f"listen 127.0.0.1:{ports.http};")
    text = _replace(text, "/etc/ssl/madoguchi/fullchain.pem", str(cert))
    text = _replace(text, "/etc/ssl/madoguchi/privkey.pem", str(key))
    text = _replace(text, "/var/log/nginx/", f"{folder}/")
    text = _replace(text, "/var/www/letsencrypt", str(folder / "acme"))
    return _replace(text, INSTALLED, f"{REPO}/")


def nginx_conf(folder: Path, site: Path) -> str:
    """The main nginx.conf around the site, as Debian's includes it, with every file in
    ``folder``. Run by root, the workers stay root: pytest's folders are root's own (mode
    0700), where nginx's default worker user (nobody) could not write the temporary files of a
    body too big for its memory buffers. (The test's answers all fit in memory and pass
    without it; an upload or a long console page would not.)"""
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {folder}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    access_log {folder}/access.log;
{temp}
    include {site};
}}
"""


def unit_command(unit: str, port: int) -> list[str]:
    """The ExecStart of a deploy/systemd unit for instance ``port``, with this Python's uvicorn."""
    text = (DEPLOY / "systemd" / unit).read_text(encoding="utf-8")
    found = re.search(r"^ExecStart=(.+)$", text, re.MULTILINE)
    assert found is not None, f"{unit} has no ExecStart"
    words = shlex.split(found.group(1).replace("%i", str(port)))
    assert words[0] == UVICORN, f"{unit} does not start uvicorn from the venv"
    return [sys.executable, "-m", "uvicorn", *words[1:]]


@dataclass
class Process:
    """A child process with its output in a log file."""

    name: str
    command: list[str]
    log: Path
    env: Mapping[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(  # noqa: S603 (our own command lines)
                self.command,
                cwd=REPO,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self.popen = None


def wait_until_up(process: Process, url: str, seconds: float = 45) -> None:
    """Until ``url`` answers 200 (the process is serving), or fail with its log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not process.alive():
            raise AssertionError(f"{process.name} stopped:\n{process.output()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{process.name} did not answer {url}:\n{process.output()[-3000:]}")


def wait_for_port(process: Process, port: int, seconds: float = 10) -> None:
    """Until something listens on loopback ``port``, or fail with the process's log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not process.alive():
            raise AssertionError(f"{process.name} stopped:\n{process.output()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{process.name} does not listen on {port}:\n{process.output()}")


# uvicorn's access log: `INFO:     127.0.0.3:0 - "GET /static/site.css HTTP/1.1" 200 OK`,
# and `INFO:     127.0.0.4:0 - "WebSocket /ivr/stream" [accepted]`.
ACCESS = re.compile(r'(\d+\.\d+\.\d+\.\d+):\d+ - "(GET|POST|HEAD|WebSocket) ([^ "]+)')


@dataclass(frozen=True)
class Served:
    client: str
    method: str
    path: str


def served(process: Process) -> list[Served]:
    """Every request the process logged, with the client address it believed."""
    return [Served(*m.groups()) for m in ACCESS.finditer(process.output())]


def private_redis(folder: Path, stack: ExitStack) -> str:
    """A redis-server of this layout's own on a free port, stopped with ``stack``; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    redis = Process(
        "redis",
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        folder / "redis.log",
    ).start()
    stack.callback(redis.stop)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if Redis.from_url(url).ping():
                return url
        except Exception:  # noqa: S110 (not up yet)
            pass
        time.sleep(0.1)
    raise RuntimeError(f"redis-server did not start:\n{redis.output()}")
