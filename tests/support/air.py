"""Open-Meteo air-quality answers dated by the test's clock, not by the morning they model.

``openmeteo_air_quality.json`` is Famenin on the morning of the weather fixtures (a winter
inversion: the index rises overnight and at rush hour). ``openmeteo_air_document(now)`` moves it
to ``now``, as the upstream would answer then: its hours start at midnight of ``now``'s day in
Tehran and its current reading is the hour running at ``now``.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from service.persian import TEHRAN
from tests.support.fixtures import fixture_text

FIXTURE = "openmeteo_air_quality.json"
PATH = "/v1/air-quality"
#: A moment of the captured morning (the weather fixtures' too): the fixture as it is, unmoved.
AIR_CAPTURED = datetime(2026, 11, 26, 7, 50, tzinfo=TEHRAN).timestamp()


def openmeteo_air_document(now: float, **current: Any) -> dict[str, Any]:
    """The answer at ``now``; ``current`` replaces values of its current reading (``us_aqi=151``)."""
    doc: dict[str, Any] = json.loads(fixture_text(FIXTURE))
    moment = datetime.fromtimestamp(now, TEHRAN)
    hourly = doc["hourly"]
    shift = moment.date() - date.fromisoformat(hourly["time"][0][:10])
    hourly["time"] = [_stamp(datetime.fromisoformat(t) + shift) for t in hourly["time"]]
    doc["current"]["time"] = _stamp(moment.replace(tzinfo=None, minute=0, second=0, microsecond=0))
    doc["current"].update(current)
    return doc


def hour_index(doc: dict[str, Any], hours_after_reading: int) -> int:
    """Where in ``hourly`` the hour ``hours_after_reading`` after the current reading's is."""
    reading = datetime.fromisoformat(doc["current"]["time"])
    return doc["hourly"]["time"].index(_stamp(reading + timedelta(hours=hours_after_reading)))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")
