"""Upstream fixtures written for these tests, in each upstream's real structure."""

from __future__ import annotations

import time
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "providers" / "fixtures"


def fixture_text(name: str, *, updated: float | None = None) -> str:
    """A fixture file; ``TIME_UNIX`` / ``TIMESTAMP`` become a recent epoch (5 minutes ago)."""
    stamp = str(int(time.time() - 300 if updated is None else updated))
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return text.replace("TIME_UNIX", stamp).replace("TIMESTAMP", stamp)
