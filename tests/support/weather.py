"""Weather fixtures dated by the test's clock, not by the day they were captured.

Each fixture is a real answer from one morning in Famenin. A test either runs its service at that
moment (``OPENMETEO_CAPTURED``, ``METNO_CAPTURED``: the same dates and weekdays every day the
suite runs) or has the answer moved to its clock's ``now`` (``openmeteo_document(now)``,
``metno_document(now)``), as the upstream would answer at that moment.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from service.persian import TEHRAN
from tests.support.fixtures import fixture_text

#: When Open-Meteo gave ``openmeteo_forecast.json``: five minutes after its ``current`` reading.
OPENMETEO_CAPTURED = datetime(2026, 11, 26, 7, 50, tzinfo=TEHRAN).timestamp()
#: When MET Norway gave ``metno_compact.json``: during the hour of its first step (04:00Z).
METNO_CAPTURED = datetime(2026, 11, 26, 4, 20, tzinfo=UTC).timestamp()

#: Open-Meteo's ``current`` block is one reading every 15 minutes.
CURRENT_INTERVAL = timedelta(minutes=15)


def openmeteo_document(now: float, name: str = "openmeteo_forecast.json") -> dict[str, Any]:
    """Open-Meteo's answer as it would come at ``now``: its days start on ``now``'s day in Tehran,
    and its current reading is the last quarter-hour before ``now``."""
    doc: dict[str, Any] = json.loads(fixture_text(name))
    moment = datetime.fromtimestamp(now, TEHRAN)
    first = date.fromisoformat(doc["daily"]["time"][0])
    shift = moment.date() - first
    doc["daily"]["time"] = [(date.fromisoformat(d) + shift).isoformat() for d in doc["daily"]["time"]]
    reading = moment.replace(tzinfo=None, second=0, microsecond=0)
    reading -= timedelta(minutes=reading.minute % 15)
    doc["current"]["time"] = reading.isoformat(timespec="minutes")
    return doc


def metno_document(now: float) -> dict[str, Any]:
    """MET's answer as it would come at ``now``: its first step is ``now``'s hour (MET serves from
    the current hour on), every step moved by the same amount."""
    doc: dict[str, Any] = json.loads(fixture_text("metno_compact.json"))
    steps = doc["properties"]["timeseries"]
    first = _utc(steps[0]["time"])
    shift = datetime.fromtimestamp(now, UTC).replace(minute=0, second=0, microsecond=0) - first
    for step in steps:
        step["time"] = _stamp(_utc(step["time"]) + shift)
    meta = doc["properties"]["meta"]
    meta["updated_at"] = _stamp(_utc(meta["updated_at"]) + shift)
    return doc


def metno_now(now: float) -> str:
    """``metno_document`` as the JSON text MET sends."""
    return json.dumps(metno_document(now))


def _utc(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
