"""Every benchmark runs in its short smoke mode, so none can rot unseen: a smoke run fails when
the bench itself breaks (an error, a check that fails, nothing sold or sent or heard), never on
a speed aim (speed is measured by running the benches in full; bench/README.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCHES = {
    "bench_booking.py": "No overbooking",
    "bench_crowding.py": "requests per second",
    "bench_ivr.py": "overall p99",
    "bench_load.py": "phone line's webhook p99",
    "bench_opening.py": "0 seats over capacity",
    "bench_pages.py": "month calendar, slowest p95",
    "bench_redis.py": "aim: with Redis frozen or stopped",
    "bench_reminders.py": "confirmation lag",
    "bench_speech.py": "answers heard, 0 missed",
    "bench_wait_estimate.py": "estimate error measured",
}


@pytest.mark.parametrize("bench", sorted(BENCHES))
def test_the_benchmark_runs_in_smoke_mode(bench: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ran = subprocess.run(  # noqa: S603 (our own bench)
        [sys.executable, str(REPO / "bench" / bench), "--smoke"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if ran.returncode == 0 and ran.stdout.startswith("SKIPPED"):
        pytest.skip(ran.stdout.strip())  # bench_load.py without Debian's nginx
    assert ran.returncode == 0, (
        f"{bench} --smoke failed:\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    )
    assert BENCHES[bench] in ran.stdout
