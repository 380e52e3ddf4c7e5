"""The real app served by uvicorn in a thread, on a free loopback port: for the tests that need
a real server (a browser, a WebSocket) and for the benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI


def listening_socket() -> tuple[socket.socket, str]:
    """A socket bound to a free port (the kernel picks it), and its http:// base URL. Bound
    first, so an app can be told its own address before it is made."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def serving(app: FastAPI, sock: socket.socket, *, name: str = "live-uvicorn") -> Iterator[None]:
    """Serve ``app`` on ``sock`` until the block ends (its lifespan runs: start-up and
    shut-down as in production)."""
    # log_config=None: uvicorn's own dictConfig would close every handler already set up,
    # the log audit's among them, and it would hear nothing more for the rest of the run.
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", log_config=None)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
