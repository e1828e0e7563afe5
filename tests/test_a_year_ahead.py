"""The tests of dated answers mean the same a year from now: run them with the calendar 400 days on.

Every provider and widget test dates its fixtures from the clock it gives the service, and the
service reads time only from that clock (``test_layout``). This runs those tests once more with
Python's clock moved by libfaketime, so a fixture or a code path that still reads the calendar
day fails here today, not on the day its dates run out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.faketime import days_ahead_env

ROOT = Path(__file__).resolve().parents[1]
DATED_TESTS = ["tests/providers", "tests/service/widgets"]
DAYS_AHEAD = 400


def test_the_dated_tests_pass_400_days_ahead() -> None:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *DATED_TESTS]
    done = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, **days_ahead_env(DAYS_AHEAD)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"{' '.join(command[2:])} with the clock {DAYS_AHEAD} days ahead:\n" + (
        done.stdout[-6000:] + done.stderr[-2000:]
    )
    assert " passed" in done.stdout.splitlines()[-1], done.stdout[-2000:]
