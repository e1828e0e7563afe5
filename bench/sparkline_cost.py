"""The cost of the prices fragment with sparklines against the same fragment without, in one run.

    python bench/sparkline_cost.py [--duration 5] [--connections 64] [--rounds 3] [--client wrk|aiohttp]

Starts, as separate processes, a local tgju (its captured pages, ``tgju_source.py``) and the service
with only the prices widget, refreshed every ``--refresh`` seconds so a history builds up and each
new snapshot prepares its sparklines again (production refreshes every 300 s: this is harsher).
Then loads, alternating for ``--rounds`` with the same client:

* ``plain``: ``/widgets/prices.html`` (the hot path: prepared once per second);
* ``query``: ``/widgets/prices.html?theme=light`` (a view with a query, rendered once per snapshot);
* ``spark``: ``/widgets/prices.html?chart=sparkline`` (the same, plus sparklines and 24-hour changes,
  prepared once per snapshot).

Prints requests/s of each, the ratios spark / query (what the sparklines cost; the goal is near 1)
and spark / plain.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request

from common import (
    HERE,
    Load,
    default_client,
    free_port,
    load,
    service_env,
    start,
    start_service,
    stop,
    wait_until_up,
)

VIEWS = {"plain": "", "query": "?theme=light", "spark": "?chart=sparkline"}


def arguments() -> tuple[Load, float, float]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client", choices=["wrk", "aiohttp"], default=default_client())
    parser.add_argument("--refresh", type=float, default=2.0, help="prices refresh interval, seconds")
    parser.add_argument("--warm", type=float, default=8.0, help="seconds of history before measuring")
    args = parser.parse_args()
    return Load(args.client, args.duration, args.connections, args.rounds), args.refresh, args.warm


def main() -> None:
    how, refresh, warm = arguments()
    tgju_port, port = free_port(), free_port()
    processes = [
        start([sys.executable, str(HERE / "tgju_source.py"), "--port", str(tgju_port), "--bytes", "0"])
    ]
    try:
        wait_until_up(f"http://127.0.0.1:{tgju_port}/currency")
        env = service_env(
            SIDEBAR_WIDGETS__PRICES__PROVIDERS='["tgju"]',
            SIDEBAR_WIDGETS__PRICES__REFRESH_SECONDS=str(refresh),
            SIDEBAR_PROVIDERS__TGJU__URL=f"http://127.0.0.1:{tgju_port}",
            SIDEBAR_ENGINE__BACKGROUND="true",
            **{f"SIDEBAR_WIDGETS__{w}__ENABLED": "false" for w in ("WEATHER", "SATELLITE", "LINKS")},
        )
        processes.append(start_service(port, env))
        base = f"http://127.0.0.1:{port}/widgets/prices"
        wait_until_up(f"{base}.json")
        time.sleep(warm)
        with urllib.request.urlopen(
            f"{base}/history.json?item=price_dollar_rl&range=1d", timeout=10
        ) as answer:
            points = len(json.load(answer)["points"])
        with urllib.request.urlopen(f"{base}.html?chart=sparkline", timeout=10) as answer:
            svgs = answer.read().count(b"<svg")
        print(how.describe(), f"| refresh every {refresh:g}s, {points} points of history, {svgs} sparklines")
        rates: dict[str, list[float]] = {name: [] for name in VIEWS}
        names = list(VIEWS)
        for round_ in range(how.rounds):
            # Each round starts with another view, so none always runs first or last.
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                rates[name].append(
                    load(how.client, f"{base}.html{VIEWS[name]}", how.duration, how.connections)
                )
        best = {name: max(values) for name, values in rates.items()}
        for name, rps in best.items():
            print(f"{name:6} {rps:9.0f} req/s")
        spark = best["spark"]
        print(f"ratio spark / query {spark / best['query']:.2f}   spark / plain {spark / best['plain']:.2f}")
    finally:
        stop(processes)


if __name__ == "__main__":
    main()
