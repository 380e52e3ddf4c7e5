"""The waiting room: a line, in Redis, in front of the residents' booking pages and the booking
API, shared by every web process. No PostgreSQL here: the line must stay cheap under a flood.

Each visitor (a first-party cookie's random id; a second tab shares it) takes one place: a number
from INCR, kept in a hash, so a reload or a second tab finds the same place. The line admits by
number: ``admitted`` advances at the ward's rate (admitted per minute) from the time it last
moved, and a visitor whose number is at or below it is let in with a pass (booking.pages.waiting
signs it into a cookie). Every step is one Lua script, so the processes never disagree.

Modes: ``off`` (no line), ``auto`` (a line forms only when arrivals outrun the rate: ``admitted``
may run ``BURST_SECONDS`` of the rate ahead of the last number given, so a quiet evening never
waits), ``on`` (a manager's opening: everyone takes a place, none is let in before the release
time, then the rate). The ward's setting is the default; a manager's change lives in Redis.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

from redis import Redis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio import Redis as AsyncRedis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

Mode = Literal["off", "auto", "on"]
MODES: tuple[Mode, ...] = ("off", "auto", "on")
PREFIX = "madoguchi:wr:"
# In auto mode the line lets this many seconds of the rate through at once before it forms.
BURST_SECONDS = 10
# Places nobody came back for are forgotten after this long without any arrival.
TICKETS_KEPT_SECONDS = 6 * 3600
# How long a process reuses what it read of the line for its own decisions (the PoW rule).
FRESH_SECONDS = 2.0
# Connections from one process's event loop to Redis (one Lua call takes about 0.1 ms).
PAGES_CONNECTIONS = 32

# KEYS: config, sequence, tickets, this minute's admissions
# ARGV: visitor ('' only looks), now (s), default mode, default rate, burst seconds, tickets kept
# Returns: {let in, visitor's number, admitted so far, last number given, rate, line formed,
#           seconds until the release time}
ENTER = """
local cfg = redis.call('HMGET', KEYS[1], 'mode', 'rate', 'start_at', 'admitted', 'admitted_at')
local mode = cfg[1] or ARGV[3]
local rate = tonumber(cfg[2] or ARGV[4])
local now = tonumber(ARGV[2])
local tail = tonumber(redis.call('GET', KEYS[2]) or '0')
local visitor = ARGV[1]
if mode == 'off' then
  if visitor ~= '' then redis.call('HDEL', KEYS[3], visitor) end
  return {1, 0, tail, tail, rate, 0, 0}
end
local admitted = tonumber(cfg[4] or tostring(tail))
local from = math.max(tonumber(cfg[5] or ARGV[2]), tonumber(cfg[3] or '0'))
if now > from then admitted = admitted + rate * (now - from) / 60 end
local burst = 0
if mode == 'auto' then burst = math.max(1, rate * tonumber(ARGV[5]) / 60) end
if admitted > tail + burst then admitted = tail + burst end
local seq = 0
if visitor ~= '' then
  seq = tonumber(redis.call('HGET', KEYS[3], visitor) or '0')
  if seq == 0 then
    seq = redis.call('INCR', KEYS[2])
    tail = seq
    redis.call('HSET', KEYS[3], visitor, seq)
    redis.call('EXPIRE', KEYS[3], tonumber(ARGV[6]))
  end
end
redis.call('HSET', KEYS[1], 'admitted', tostring(admitted), 'admitted_at', ARGV[2])
local floor = math.floor(admitted)
local formed = 0
if tail > floor then formed = 1 end
local until_start = math.max(0, math.ceil(tonumber(cfg[3] or '0') - now))
if seq > 0 and seq <= admitted then
  redis.call('HDEL', KEYS[3], visitor)
  redis.call('INCR', KEYS[4])
  redis.call('EXPIRE', KEYS[4], 180)
  return {1, seq, floor, tail, rate, formed, until_start}
end
return {0, seq, floor, tail, rate, formed, until_start}
"""


@dataclass(frozen=True)
class Place:
    """A visitor's answer from the line: let in, or their place and the estimated wait."""

    admitted: bool
    number: int
    admitted_so_far: int
    last_number: int
    per_minute: int
    formed: bool
    until_start: int = 0

    @property
    def ahead(self) -> int:
        """Places ahead of this one not yet let in (those who left still count: an estimate)."""
        return max(0, self.number - self.admitted_so_far - 1) if not self.admitted else 0

    @property
    def position(self) -> int:
        """1 for the next one in."""
        return self.ahead + 1

    @property
    def wait_seconds(self) -> int:
        """The estimated wait: this place at the rate."""
        if self.admitted:
            return 0
        return self.until_start + math.ceil(self.position * 60 / max(1, self.per_minute))


@dataclass(frozen=True)
class Line:
    """What the managers' console shows."""

    mode: Mode
    per_minute: int
    start_at: float | None
    waiting: int
    admitted_last_minute: int
    wait_seconds: int
    reachable: bool = True


def _place(raw: list[object]) -> Place:
    values = [int(cast(int, v)) for v in raw]
    return Place(
        bool(values[0]), values[1], values[2], values[3], values[4], bool(values[5]), values[6]
    )


class WaitingRoom:
    """The line for one installation. Its clients come from config (no module-level
    connection): an async one per event loop (made on first use: a connection belongs to the
    loop that opened it) serves the pages, the sync one the console and the API's checks in
    the thread pool."""

    def __init__(
        self,
        redis: Redis,
        aredis: Callable[[], AsyncRedis],
        *,
        mode: Mode,
        per_minute: int,
        clock: Callable[[], float] = time.time,
        prefix: str = PREFIX,
    ) -> None:
        self.prefix = prefix  # every key of the line starts with it (tests keep theirs apart)
        self.config, self.sequence = prefix + "config", prefix + "seq"
        self.redis = redis
        self.aredis = aredis
        self.mode = mode
        self.per_minute = per_minute
        self.clock = clock
        self._enter = redis.register_script(ENTER)
        self._aenter: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncScript] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._formed: tuple[float, bool] = (-math.inf, False)

    def _args(self, visitor: str, now: float) -> tuple[list[str], list[str | int]]:
        keys = [self.config, self.sequence, self.prefix + "tickets", self._admits(now)]
        args: list[str | int] = [
            visitor,
            repr(now),
            self.mode,
            self.per_minute,
            BURST_SECONDS,
            TICKETS_KEPT_SECONDS,
        ]
        return keys, args

    def _admits(self, now: float, minutes_ago: int = 0) -> str:
        return f"{self.prefix}admits:{int(now // 60) - minutes_ago}"

    async def enter(self, visitor: str) -> Place:
        """Let the visitor in, or give (or find again) their place. RedisError propagates: the
        caller decides what a line that cannot be reached means."""
        loop = asyncio.get_running_loop()
        script = self._aenter.get(loop)
        if script is None:
            script = self._aenter[loop] = self.aredis().register_script(ENTER)
        keys, args = self._args(visitor, self.clock())
        return _place(await script(keys=keys, args=args))

    def enter_sync(self, visitor: str) -> Place:
        """enter() for a thread (tests, the benchmark's checks)."""
        keys, args = self._args(visitor, self.clock())
        return _place(self._enter(keys=keys, args=args))

    def in_force(self) -> bool:
        """Whether the line is on (a manager's opening) or has formed (auto): the proof-of-work
        rule's question. Read at most every FRESH_SECONDS per process; False when Redis is away.
        """
        now = time.monotonic()
        with self._lock:
            read_at, formed = self._formed
        if now - read_at < FRESH_SECONDS:
            return formed
        try:
            keys, args = self._args("", self.clock())
            place = _place(self._enter(keys=keys, args=args))
            formed = place.formed or self.settings_mode() == "on"
        except RedisError as exc:
            log.warning("waiting room: Redis unreachable, the line is taken as off: %s", exc)
            formed = False
        with self._lock:
            self._formed = (now, formed)
        return formed

    def settings_mode(self) -> Mode:
        """The mode in force: a manager's, else the ward's setting."""
        stored = self.redis.hget(self.config, "mode")
        return _mode(stored, self.mode)

    def line(self) -> Line:
        """The line as the console shows it: mode, rate, release time, length, admissions."""
        now = self.clock()
        try:
            keys, args = self._args("", now)
            place = _place(self._enter(keys=keys, args=args))
            stored = cast(
                list[bytes | None], self.redis.hmget(self.config, ["mode", "rate", "start_at"])
            )
            counts = cast(
                list[bytes | None],
                self.redis.mget([self._admits(now, n) for n in (0, 1)]),
            )
        except RedisError as exc:
            log.warning("waiting room: Redis unreachable: %s", exc)
            return Line(self.mode, self.per_minute, None, 0, 0, 0, reachable=False)
        mode = _mode(stored[0], self.mode)
        waiting = max(0, place.last_number - place.admitted_so_far) if mode != "off" else 0
        # The last full minute's admissions, and this one's so far, whichever is more telling.
        admitted = max(int(c or 0) for c in counts)
        start = float(stored[2]) if stored[2] else None
        return Line(
            mode=mode,
            per_minute=place.per_minute,
            start_at=start if start and start > now else None,
            waiting=waiting,
            admitted_last_minute=admitted,
            wait_seconds=place.until_start + math.ceil(waiting * 60 / max(1, place.per_minute)),
        )

    def set_line(self, *, mode: Mode, per_minute: int, start_at: float | None = None) -> Line:
        """A manager's change: the mode, the rate, and for ``on`` the release time (none let in
        before it). Turning the line on lets in everyone already holding a place."""
        if mode not in MODES or per_minute < 1:
            raise ValueError(f"mode {mode!r} at {per_minute} a minute")
        now = self.clock()
        # Advance the line to now at the old rate first, so the change starts from here.
        keys, args = self._args("", now)
        self._enter(keys=keys, args=args)
        # redis-py's mapping type is invariant in its keys: any str/str dict is one.
        fields: dict[Any, Any] = {"mode": mode, "rate": str(per_minute)}
        with self.redis.pipeline() as pipe:
            if mode == "on":
                fields["start_at"] = repr(start_at if start_at is not None else now)
                fields["admitted"] = str(
                    int(cast(bytes | None, self.redis.get(self.sequence)) or 0)
                )
                fields["admitted_at"] = repr(now)
            else:
                pipe.hdel(self.config, "start_at")
            pipe.hset(self.config, mapping=fields)
            pipe.execute()
        with self._lock:
            self._formed = (-math.inf, False)
        return self.line()


def _mode(stored: object, default: Mode) -> Mode:
    text = stored.decode() if isinstance(stored, bytes) else str(stored or "")
    for mode in MODES:
        if text == mode:
            return mode
    return default


def waiting_room(url: str, *, mode: Mode, per_minute: int, prefix: str = PREFIX) -> WaitingRoom:
    """The line on the Redis at ``url``, with short timeouts: a Redis that is away costs a
    request at most half a second, and the pages then let residents through. The pages' pool
    is bounded and a request waits for a free connection: a flood of residents must queue for
    Redis, never open so many connections that Redis refuses them (which would let them in).
    """

    def pages_client() -> AsyncRedis:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=PAGES_CONNECTIONS,
            timeout=5,
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
        )
        return AsyncRedis(connection_pool=pool)

    return WaitingRoom(
        Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5),
        pages_client,
        mode=mode,
        per_minute=per_minute,
        prefix=prefix,
    )
