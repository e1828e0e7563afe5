"""Upstream fixtures written for these tests, in each upstream's real structure."""

from __future__ import annotations

from pathlib import Path

from tests.support.clock import START

FIXTURES = Path(__file__).resolve().parent.parent / "providers" / "fixtures"

#: How old a fixture's prices are when it is served: fresh, but not to the second.
AGE_SECONDS = 300


def fixture_text(name: str, *, now: float = START) -> str:
    """A fixture file; ``TIME_UNIX`` / ``TIMESTAMP`` become ``now`` minus five minutes.

    ``now`` is the clock of the service under test (the fake clock's start by default), so
    prices are as fresh on any day the suite runs.
    """
    stamp = str(int(now - AGE_SECONDS))
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return text.replace("TIME_UNIX", stamp).replace("TIMESTAMP", stamp)
