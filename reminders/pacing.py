"""The sending number's pace: at most so many messages and calls a second from it
(``MADOGUCHI_TWILIO_SENDS_PER_SECOND``), as Twilio allows a number (about 1 a second for a long
code, more for a short code, a toll-free number or a messaging service).

Each send reserves the next free moment on the number's timeline (one every 1/rate seconds) and
waits for it; one that would wait longer than ``most`` is not sent now and reserves nothing.
``SharedPace`` keeps the timeline in Redis, so every worker of the pool shares the one cap
(Redis's own clock, one atomic script per send); ``Pace`` keeps it in this process, for the
embedded default without Redis, and stands in while Redis cannot be reached (each worker then
keeps the cap on its own for that while).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Pacer(Protocol):
    def reserve(self, most: float) -> float | None:
        """Seconds to wait before the next send, its moment reserved; None when that would be
        longer than ``most`` seconds (nothing reserved)."""
        ...


class Pace:
    """The cap kept in this process (thread-safe), by the monotonic clock unless given one."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / per_second
        self.clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self, most: float) -> float | None:
        with self._lock:
            now = self.clock()
            at = max(now, self._next)
            if at - now > most:
                return None
            self._next = at + self.interval
            return at - now


# KEYS[1] the number's timeline; ARGV: the interval and the longest wait, in microseconds. The
# next free moment is kept as Redis's own time (TIME), so workers' clocks need not agree.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
local at = math.max(now, free)
if at - now > tonumber(ARGV[2]) then return -1 end
redis.call('SET', KEYS[1], tostring(at + tonumber(ARGV[1])), 'PX', 60000)
return at - now
"""


class SharedPace:
    """The cap shared by every worker through Redis (``redis``: a redis-py client)."""

    def __init__(self, redis: Any, number: str, per_second: float) -> None:
        self.redis = redis
        self.key = f"madoguchi:pace:{number}"
        self.interval_us = int(1_000_000 / per_second)
        self.fallback = Pace(per_second)
        self._script: Any = None
        self._away = False

    def reserve(self, most: float) -> float | None:
        try:
            if self._script is None:
                self._script = self.redis.register_script(_RESERVE)
            waited = int(self._script(keys=[self.key], args=[self.interval_us, int(most * 1e6)]))
        except Exception as exc:  # Redis away: this worker keeps the cap on its own meanwhile
            if not self._away:  # once per outage, not once a message
                log.warning("Redis unreachable, the sending cap is kept per worker: %s", exc)
                self._away = True
            return self.fallback.reserve(most)
        self._away = False
        return None if waited < 0 else waited / 1e6
