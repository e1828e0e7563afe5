"""Cached tile throughput against a bare aiohttp app serving the same bytes, in one run.

    python bench/tile_throughput.py [--duration 5] [--connections 64] [--rounds 3] [--client wrk|aiohttp]

A local fake tile server stands in for the imagery source (nothing leaves the machine); the
service fetches the tile once, then serves it from its cache. Goal: ratio >= 0.8.
"""

from __future__ import annotations

import sys

from common import (
    HERE,
    compare,
    fetch,
    free_port,
    load_arguments,
    service_env,
    start,
    start_bare,
    start_service,
    stop,
    wait_until_up,
)

Z, X, Y = 12, 2605, 1620  # inside the default county box


def main() -> None:
    how = load_arguments(__doc__)
    source_port, port = free_port(), free_port()
    processes = [start([sys.executable, str(HERE / "tile_source.py"), "--port", str(source_port)])]
    try:
        wait_until_up(f"http://127.0.0.1:{source_port}/tile/{Z}/{Y}/{X}")
        env = service_env(
            SIDEBAR_PROVIDERS__TILES__URL=f"http://127.0.0.1:{source_port}/tile/{{z}}/{{y}}/{{x}}",
            **{f"SIDEBAR_WIDGETS__{w}__ENABLED": "false" for w in ("PRICES", "WEATHER", "LINKS")},
        )
        processes.append(start_service(port, env))
        url = f"http://127.0.0.1:{port}/tiles/{Z}/{X}/{Y}.jpg"
        wait_until_up(url)
        body = fetch(url)
        bare_port = free_port()
        bare, body_file = start_bare(bare_port, body, "image/jpeg")
        processes.append(bare)
        print(how.describe())
        compare("tile", url, f"http://127.0.0.1:{bare_port}/tiles/{Z}/{X}/{Y}.jpg", how, size=len(body))
        body_file.unlink()
    finally:
        stop(processes)


if __name__ == "__main__":
    main()
