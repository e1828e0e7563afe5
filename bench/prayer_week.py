"""What a week of prayer times costs the event loop, against a baseline in the same run.

The prayer provider computes seven days of times on the event loop (no upstream, once a day).
This prints the cost per week and its ratio to one JSON encoding of the week's answer (the
baseline: work every request already does), so a slower solar library shows as a ratio, here,
not as a timed test.

    .venv/bin/python bench/prayer_week.py
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import date, timedelta

from service.widgets.prayer import MAX_DAYS, PrayerOptions, prayer_data, prayer_days

ROUNDS = 50


def per_call(work, rounds: int = ROUNDS) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    options = PrayerOptions()
    first = date(2026, 6, 1)
    days = iter(first + timedelta(days=i) for i in range(10_000))
    week = per_call(lambda: prayer_days(options, next(days), MAX_DAYS))
    answer = prayer_data(options, first, MAX_DAYS).model_dump(mode="json")
    encode = per_call(lambda: json.dumps(answer, ensure_ascii=False))
    print(f"a week of times: {week * 1000:.2f} ms; one JSON encoding of it: {encode * 1000:.3f} ms")
    print(f"ratio week / encoding: {week / encode:.1f}")


if __name__ == "__main__":
    main()
