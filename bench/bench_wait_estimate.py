#!/usr/bin/env python3
"""The wait estimate the phone line says in the queue, against simulated queues: M/M/c
(Erlang C: Poisson arrivals, exponential talk times, c agents, first come first served) from
an empty queue at opening time, at several loads and a jam where the queue grows. At each
arrival that finds every agent busy (the callers the wait loop speaks to), the estimate from
that queue's last hour of answers, by the same function the line uses
(ivr.wait_estimate.estimate_wait), is compared with the wait the caller then had.

No database, no network: seeds are fixed, so the figures repeat. See --help and
bench/README.md ("The wait estimate").
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ivr.wait_estimate import Answer, estimate_wait, hour_rate_wait, mean_wait

TWO_MINUTES = 120.0
Estimator = Callable[[int, Sequence[Answer], float], float | None]


@dataclass(frozen=True)
class Load:
    name: str
    occupancy: float  # offered load per agent: arrivals / (agents x answers per agent)


LOADS = (
    Load("steady", 0.70),
    Load("busy", 0.85),
    Load("near full", 0.95),
    Load("jam (booking opens)", 1.30),
)


def erlang_c(agents: int, offered: float) -> float:
    """The chance an arrival waits (Erlang C), for ``offered`` erlangs on ``agents`` lines."""
    if offered >= agents:
        return 1.0
    term, total = 1.0, 1.0
    for k in range(1, agents):
        term *= offered / k
        total += term
    last = term * offered / agents * agents / (agents - offered)
    return last / (total + last)


def erlang_c_wait(agents: int, arrivals: float, answers: float) -> float | None:
    """The formula's expected wait in the queue (seconds, every caller counted), or None when
    the queue grows without end."""
    offered = arrivals / answers
    if offered >= agents:
        return None
    return erlang_c(agents, offered) / (agents * answers - arrivals)


@dataclass
class Errors:
    said: int = 0
    silent: int = 0
    errors: list[float] = field(default_factory=list)
    close: int = 0  # within a fifth of the actual wait (long waits are said in 5-minute steps)

    def add(self, estimate: float | None, actual: float) -> None:
        if estimate is None:
            self.silent += 1
            return
        self.said += 1
        self.errors.append(abs(estimate - actual))
        self.close += abs(estimate - actual) <= 0.2 * actual

    def row(self) -> tuple[str, ...]:
        if not self.errors:
            return (f"{self.said}", "-", "-", "-", "-", "-")
        ordered = sorted(self.errors)
        p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
        within = sum(1 for e in ordered if e <= TWO_MINUTES) / len(ordered)
        return (
            f"{self.said}",
            f"{statistics.fmean(ordered):.0f}",
            f"{statistics.median(ordered):.0f}",
            f"{p90:.0f}",
            f"{within * 100:.0f}%",
            f"{self.close / len(ordered) * 100:.0f}%",
        )


def simulate(
    *,
    agents: int,
    talk_seconds: float,
    occupancy: float,
    hours: float,
    seed: int,
    estimators: dict[str, Estimator],
    errors: dict[str, Errors],
) -> list[float]:
    """One simulated morning; the estimators' errors added to ``errors``; the waits returned."""
    rng = random.Random(seed)
    answers_per_second = 1 / talk_seconds
    arrivals_per_second = occupancy * agents * answers_per_second
    free_at = [0.0] * agents  # when each agent is next free
    starts: list[float] = []  # answer times, in arrival order (first come, first served)
    answered: list[Answer] = []  # the same, with the waits
    ahead: deque[float] = deque()  # answer times of callers still waiting at "now"
    waits: list[float] = []
    now, end = 0.0, hours * 3600
    while True:
        now += rng.expovariate(arrivals_per_second)
        if now >= end:
            return waits
        while ahead and ahead[0] <= now:
            ahead.popleft()
        agent = min(range(agents), key=free_at.__getitem__)
        start = max(now, free_at[agent])
        free_at[agent] = start + rng.expovariate(answers_per_second)
        wait = start - now
        waits.append(wait)
        if wait > 0:  # every agent busy: the wait loop says the place and the estimate
            position = len(ahead) + 1
            known = bisect.bisect_right(starts, now)  # answered by now
            first = bisect.bisect_left(starts, now - 3600, 0, known)
            window = answered[first:known]
            for name, estimator in estimators.items():
                errors[name].add(estimator(position, window, now), wait)
            ahead.append(start)
        starts.append(start)
        answered.append(Answer(start, wait))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=10, help="agents (lines answered)")
    parser.add_argument("--talk-minutes", type=float, default=5.0, help="mean talk time")
    parser.add_argument("--hours", type=float, default=4.0, help="hours simulated from opening")
    parser.add_argument("--seeds", type=int, default=20, help="mornings simulated per load")
    parser.add_argument("--smoke", action="store_true", help="one short morning per load")
    args = parser.parse_args()
    hours, seeds = (1.5, 1) if args.smoke else (args.hours, args.seeds)
    talk = args.talk_minutes * 60
    agents = args.agents

    def known_rate(position: int, _answers: Sequence[Answer], _now: float) -> float:
        return float(position * talk / agents)

    estimators: dict[str, Estimator] = {
        "line (k answers at the rate since the hour's first)": lambda k, a, t: estimate_wait(
            k, a, now=t
        ),
        "k answers at the whole hour's rate": lambda k, a, t: hour_rate_wait(k, a, now=t),
        "naive (mean wait of the hour's answered)": lambda _k, a, t: mean_wait(a, now=t),
        "k/(c mu): knows agents and talk time": known_rate,
    }
    header = (
        "load",
        "estimator",
        "said",
        "MAE s",
        "median s",
        "p90 s",
        "within 2 min",
        "within 20%",
    )
    table: list[tuple[str, ...]] = []
    notes: list[str] = []
    for load in LOADS:
        arrivals = load.occupancy * agents / talk
        erlang = erlang_c_wait(agents, arrivals, 1 / talk)
        waiting_mean = None if erlang is None else 1 / (agents / talk - arrivals)

        def formula(
            _k: int, _a: Sequence[Answer], _t: float, mean: float | None = waiting_mean
        ) -> float | None:
            return mean  # Erlang C's mean wait of those who wait: knows every rate, not the place

        by_load = {**estimators, "Erlang C (mean wait of those who wait)": formula}
        errors = {name: Errors() for name in by_load}
        waits: list[float] = []
        for seed in range(seeds):
            waits += simulate(
                agents=agents,
                talk_seconds=talk,
                occupancy=load.occupancy,
                hours=hours,
                seed=1000 * seed + int(load.occupancy * 100),
                estimators=by_load,
                errors=errors,
            )
        label = f"{load.name} (occupancy {load.occupancy:.2f})"
        for name, found in errors.items():
            table.append((label, name, *found.row()))
        waited = [w for w in waits if w > 0]
        notes.append(
            f"{label}: {len(waits)} callers, {len(waited)} waited; mean wait simulated "
            f"{statistics.fmean(waits):.0f} s (of those who waited "
            f"{statistics.fmean(waited) if waited else 0:.0f} s); Erlang C expected wait "
            + ("- (the queue grows)" if erlang is None else f"{erlang:.0f} s")
        )
    widths = [max(len(row[i]) for row in (header, *table)) for i in range(len(header))]
    print(
        f"The wait estimate against M/M/c queues: {agents} agents, talk {args.talk_minutes:g} "
        f"min, {hours:g} h from an empty queue, {seeds} seeds per load; absolute errors of the "
        "estimate said at each arrival that finds every agent busy"
    )
    for row in (header, *table):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
    print()
    print("\n".join(notes))
    jam = [row for row in table if row[0].startswith("jam") and row[1].startswith("line")]
    if not jam or jam[0][2] == "0":
        raise SystemExit("the jam said no estimate at all")
    print("estimate error measured (mean, median, p90, within 2 min)")


if __name__ == "__main__":
    main()
