"""Event-loop stalls while refreshes parse megabyte pages and the satellite picture is rebuilt.

    python bench/loop_stall.py [--duration 10] [--interval 0.005] [--page-bytes 2097152]

Starts, as separate processes: a fake tgju serving its three market pages at ~2 MB each (rows
repeated from the captured samples), a fake tile source, and two copies of the service:

* ``busy``: prices refresh from that tgju every second (three 2 MB pages parsed per refresh) and
  the satellite widget every second (each new snapshot rebuilds the stitched picture);
* ``idle``: the same service with only the links widget (no refresh work at all).

Each is polled on a cached endpoint (``/widgets/links.json``) every ``--interval`` seconds for
``--duration`` seconds, one request at a time; prints worst and p99 latency of both and the ratio
busy / idle, and how many refreshes ran during the busy poll. Goal: busy worst <= 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
import urllib.request

import aiohttp
from common import HERE, free_port, service_env, start, start_service, stop, wait_until_up


async def poll(url: str, duration: float, interval: float) -> list[float]:
    """Latencies (seconds) of one GET every ``interval``, one at a time, for ``duration``."""
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        deadline = time.monotonic() + duration
        next_at = time.monotonic()
        while time.monotonic() < deadline:
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    return latencies


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def counter(metrics: str, name: str, provider: str) -> float:
    match = re.search(rf'^{name}\{{provider="{provider}"\}} ([\d.e+]+)$', metrics, re.M)
    return float(match.group(1)) if match else 0.0


def fetch_counts(base: str) -> tuple[float, float]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    name = "sidebar_upstream_fetch_duration_seconds_count"
    return counter(text, name, "tgju"), counter(text, name, "tiles")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--interval", type=float, default=0.005)
    parser.add_argument("--page-bytes", type=int, default=2 * 1024 * 1024)
    args = parser.parse_args()

    tgju_port, tile_port, busy_port, idle_port = (free_port() for _ in range(4))
    processes = [
        start(
            [
                sys.executable,
                str(HERE / "tgju_source.py"),
                "--port",
                str(tgju_port),
                "--bytes",
                str(args.page_bytes),
            ]
        ),
        start([sys.executable, str(HERE / "tile_source.py"), "--port", str(tile_port)]),
    ]
    try:
        wait_until_up(f"http://127.0.0.1:{tgju_port}/currency")
        wait_until_up(f"http://127.0.0.1:{tile_port}/tile/11/1620/2605")
        busy = service_env(
            SIDEBAR_WIDGETS__WEATHER__ENABLED="false",
            SIDEBAR_WIDGETS__PRICES__PROVIDERS='["tgju"]',
            SIDEBAR_WIDGETS__PRICES__REFRESH_SECONDS="1",
            SIDEBAR_PROVIDERS__TGJU__URL=f"http://127.0.0.1:{tgju_port}",
            SIDEBAR_WIDGETS__SATELLITE__REFRESH_SECONDS="1",
            SIDEBAR_PROVIDERS__TILES__URL=f"http://127.0.0.1:{tile_port}/tile/{{z}}/{{y}}/{{x}}",
            SIDEBAR_ENGINE__JITTER_FRACTION="0",
        )
        idle = service_env(
            **{f"SIDEBAR_WIDGETS__{w}__ENABLED": "false" for w in ("PRICES", "WEATHER", "SATELLITE")}
        )
        processes.append(start_service(busy_port, busy))
        processes.append(start_service(idle_port, idle))
        busy_base, idle_base = f"http://127.0.0.1:{busy_port}", f"http://127.0.0.1:{idle_port}"
        for base in (busy_base, idle_base):
            wait_until_up(f"{base}/widgets/links.json")
        wait_until_up(f"{busy_base}/widgets/prices.json", timeout=60)  # the first big parse is done
        wait_until_up(f"{busy_base}/widgets/satellite.jpg", timeout=60)

        idle_lat = asyncio.run(poll(f"{idle_base}/widgets/links.json", args.duration, args.interval))
        before = fetch_counts(busy_base)
        busy_lat = asyncio.run(poll(f"{busy_base}/widgets/links.json", args.duration, args.interval))
        after = fetch_counts(busy_base)

        print(f"{args.duration:.0f}s each, one GET /widgets/links.json every {args.interval * 1000:.0f} ms")
        print(f"pages: 3 x {args.page_bytes} bytes per prices refresh")
        print(
            f"busy refreshes during the poll: tgju {after[0] - before[0]:.0f}, "
            f"tile fetches {after[1] - before[1]:.0f}"
        )
        for label, lat in (("idle", idle_lat), ("busy", busy_lat)):
            worst, tail, median = max(lat) * 1000, p99(lat) * 1000, sorted(lat)[len(lat) // 2] * 1000
            print(
                f"{label}: {len(lat)} requests   worst {worst:7.2f} ms   p99 {tail:7.2f} ms"
                f"   median {median:6.2f} ms"
            )
        worst_ratio, p99_ratio = max(busy_lat) / max(idle_lat), p99(busy_lat) / p99(idle_lat)
        verdict = "met" if max(busy_lat) <= 0.020 else "NOT met"
        print(
            f"ratio busy/idle: worst {worst_ratio:.2f}   p99 {p99_ratio:.2f}"
            f"   goal: busy worst <= 20 ms ({verdict})"
        )
    finally:
        stop(processes)


if __name__ == "__main__":
    main()
