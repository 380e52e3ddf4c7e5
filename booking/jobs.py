"""Where jobs are armed: the protocol config/queue.py implements with RQ or a thread. Its one
home, here in the core that every package may import (booking itself knows no queue)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Jobs(Protocol):
    """Where jobs are armed: RQ on Redis, or a thread in this process (the embedded default).
    Arming a job id that is already waiting does nothing."""

    def run_at(self, at: datetime, func: str, *args: object, job_id: str, queue: str) -> None: ...

    def run_soon(self, func: str, *args: object, job_id: str, queue: str) -> None: ...

    def wake(self, func: str, *, queue: str) -> None:
        """Run ``func`` (no arguments) soon, after every commit made so far, unless a run of it
        is already waiting to start (that run will see them). ``queue`` holds only ``func``'s
        runs. Never by a reused job id: one arriving while a run of that id is under way could
        be lost with it."""
        ...
