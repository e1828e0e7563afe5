"""Cached widget throughput against a bare aiohttp app serving the same bytes, in one run.

    python bench/widget_throughput.py [--duration 5] [--connections 64] [--rounds 3] [--client wrk|aiohttp]

Both servers run as separate processes (one worker each); the load comes from the same client
(wrk when installed, else an aiohttp client in this process). Prints requests/s of each and the
ratio ours / bare. Goal: >= 0.9 for JSON and HTML.
"""

from __future__ import annotations

import argparse

from common import (
    compare,
    default_client,
    fetch,
    free_port,
    service_env,
    start_bare,
    start_service,
    wait_until_up,
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client", choices=["wrk", "aiohttp"], default=default_client())
    args = parser.parse_args()

    port = free_port()
    disabled = {f"SIDEBAR_WIDGETS__{w}__ENABLED": "false" for w in ("PRICES", "WEATHER", "SATELLITE")}
    ours = start_service(port, service_env(**disabled))  # measure serving, not upstreams
    processes = [ours]
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/widgets/links.json")
        print(
            f"client: {args.client}, {args.connections} connections, {args.duration}s x {args.rounds} rounds"
        )
        for kind, content_type in (
            ("json", "application/json; charset=utf-8"),
            ("html", "text/html; charset=utf-8"),
        ):
            url = f"{base}/widgets/links.{kind}"
            body = fetch(url)
            bare_port = free_port()
            bare, body_file = start_bare(bare_port, body, content_type)
            processes.append(bare)
            compare(
                kind,
                url,
                f"http://127.0.0.1:{bare_port}/widgets/links.{kind}",
                client=args.client,
                duration=args.duration,
                connections=args.connections,
                rounds=args.rounds,
                size=len(body),
            )
            body_file.unlink()
    finally:
        for process in processes:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
