"""Helpers for weather tests: MET Norway's fixture moved to the current hour."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tests.support.fixtures import fixture_text


def metno_document() -> dict[str, Any]:
    """The MET fixture with its first step at the current hour (MET serves from now on)."""
    doc: dict[str, Any] = json.loads(fixture_text("metno_compact.json"))
    steps = doc["properties"]["timeseries"]
    first = datetime.fromisoformat(steps[0]["time"].replace("Z", "+00:00"))
    shift = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - first
    for step in steps:
        moment = datetime.fromisoformat(step["time"].replace("Z", "+00:00")) + shift
        step["time"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return doc


def metno_now() -> str:
    return json.dumps(metno_document())
