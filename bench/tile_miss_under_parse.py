"""Tile-miss latency with the parsing process idle, and while tgju refreshes parse four 2 MB pages.

    python bench/tile_miss_under_parse.py [--duration 20] [--interval 0.1] [--page-bytes 2097152]
                                          [--old-tree DIR]

Starts, as separate processes: a fake tile source, a fake tgju serving its market pages and its
home page at ~2 MB each, and then, one after the other (never two at once, on a small machine):

* ``quiet``: the service with the satellite widget only;
* ``parsing``: the same with prices refreshing from that tgju every second. A refresh parses four
  pages, seconds of work for one parsing process, so the parsing process never rests.

Each gets one GET of a tile it has never served every ``--interval`` seconds for ``--duration``
seconds (open loop: a slow answer does not delay the next request), with the tile budgets lifted.
Prints median, p99 and worst latency, the errors, the tgju pages parsed meanwhile, and the ratio
parsing / quiet. ``--old-tree DIR`` measures a second source tree the same way in the same run
(e.g. the last commit: ``mkdir /tmp/old && git archive HEAD | tar -x -C /tmp/old``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from common import HERE, free_port, service_env, start, stop, wait_until_up

from service.satellite.tile_math import tile_range
from service.widgets.satellite import FAMENIN_BBOX

#: Deep zooms of the county box: thousands of distinct tiles, so every request is a miss.
ZOOMS = (15, 16)


def fresh_tiles() -> list[tuple[int, int, int]]:
    tiles = []
    for z in ZOOMS:
        x_min, y_min, x_max, y_max = tile_range(FAMENIN_BBOX, z)
        tiles += [(z, x, y) for y in range(y_min, y_max + 1) for x in range(x_min, x_max + 1)]
    return tiles


@dataclass
class Result:
    latencies: list[float]
    errors: dict[int, int]
    pages_parsed: float


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def misses(base: str, tiles: list[tuple[int, int, int]], duration: float, interval: float) -> Result:
    latencies: list[float] = []
    errors: dict[int, int] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:

        async def one(z: int, x: int, y: int) -> None:
            started = time.perf_counter()
            async with session.get(f"{base}/tiles/{z}/{x}/{y}.jpg") as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
            if response.status != 200:
                errors[response.status] = errors.get(response.status, 0) + 1

        requests = []
        count = int(duration / interval)
        began = time.monotonic()
        for i, tile in enumerate(tiles[:count]):
            await asyncio.sleep(max(0.0, began + i * interval - time.monotonic()))
            requests.append(asyncio.ensure_future(one(*tile)))
        await asyncio.gather(*requests)
    return Result(latencies, errors, 0.0)


def pages_parsed(base: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    name = "sidebar_upstream_fetch_duration_seconds_count"
    match = re.search(rf'^{name}\{{provider="tgju"\}} ([\d.e+]+)$', text, re.M)
    # One tgju fetch is one refresh: four pages.
    return 4 * float(match.group(1)) if match else 0.0


def run_service(tree: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {**env, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(command, env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(
    tree: Path,
    env: dict[str, str],
    tiles: list[tuple[int, int, int]],
    args: argparse.Namespace,
    *,
    parsing: bool,
) -> Result:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = run_service(tree, port, env)
    try:
        wait_until_up(f"{base}/widgets/satellite.jpg", timeout=60)  # the picture is drawn first
        if parsing:
            wait_until_up(f"{base}/widgets/prices.json", timeout=120)  # the first refresh is parsed
        before = pages_parsed(base) if parsing else 0.0
        result = asyncio.run(misses(base, tiles, args.duration, args.interval))
        result.pages_parsed = pages_parsed(base) - before if parsing else 0.0
        return result
    finally:
        stop([process])


def describe(label: str, result: Result) -> str:
    lat = [v * 1000 for v in result.latencies]
    errors = ", ".join(f"{n} x {status}" for status, n in sorted(result.errors.items())) or "none"
    parsed = f"   tgju pages parsed meanwhile {result.pages_parsed:.0f}" if result.pages_parsed else ""
    return (
        f"  {label:8} {len(lat)} misses   median {percentile(lat, 0.5):7.1f} ms"
        f"   p99 {percentile(lat, 0.99):7.1f} ms   worst {max(lat):7.1f} ms   errors: {errors}{parsed}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--page-bytes", type=int, default=2 * 1024 * 1024)
    parser.add_argument("--old-tree", type=Path, help="another source tree to measure the same way")
    args = parser.parse_args()

    tgju_port, tile_port = free_port(), free_port()
    sources = [
        start(
            [sys.executable, str(HERE / "tgju_source.py"), "--port", str(tgju_port)]
            + ["--bytes", str(args.page_bytes), "--home"]
        ),
        start([sys.executable, str(HERE / "tile_source.py"), "--port", str(tile_port)]),
    ]
    try:
        wait_until_up(f"http://127.0.0.1:{tgju_port}/currency")
        wait_until_up(f"http://127.0.0.1:{tgju_port}/")
        wait_until_up(f"http://127.0.0.1:{tile_port}/tile/11/1620/2605")
        satellite = {
            "SIDEBAR_PROVIDERS__TILES__URL": f"http://127.0.0.1:{tile_port}/tile/{{z}}/{{y}}/{{x}}",
            "SIDEBAR_WIDGETS__SATELLITE__UPSTREAM_TILES_PER_MINUTE": "1000000",
            "SIDEBAR_WIDGETS__SATELLITE__CLIENT_MISSES_PER_MINUTE": "1000000",
            "SIDEBAR_WIDGETS__WEATHER__ENABLED": "false",
        }
        quiet = service_env(**satellite, SIDEBAR_WIDGETS__PRICES__ENABLED="false")
        busy = service_env(
            **satellite,
            SIDEBAR_WIDGETS__PRICES__PROVIDERS='["tgju"]',
            SIDEBAR_WIDGETS__PRICES__REFRESH_SECONDS="1",
            SIDEBAR_PROVIDERS__TGJU__URL=f"http://127.0.0.1:{tgju_port}",
            SIDEBAR_ENGINE__JITTER_FRACTION="0",
        )
        trees = {"this tree": HERE.parent}
        if args.old_tree is not None:
            trees["old tree"] = args.old_tree.resolve()
        tiles = fresh_tiles()
        print(
            f"one tile miss every {args.interval * 1000:.0f} ms for {args.duration:.0f} s; "
            f"tgju pages {args.page_bytes} bytes, four per refresh, a refresh every second; "
            f"{os.cpu_count()} cores"
        )
        for name, tree in trees.items():
            alone = measure(tree, quiet, tiles, args, parsing=False)
            under = measure(tree, busy, tiles, args, parsing=True)
            print(f"{name} ({tree})")
            print(describe("quiet", alone))
            print(describe("parsing", under))
            ratio = percentile(under.latencies, 0.99) / percentile(alone.latencies, 0.99)
            print(f"  p99 ratio parsing / quiet: {ratio:.2f}")
    finally:
        stop(sources)


if __name__ == "__main__":
    main()
