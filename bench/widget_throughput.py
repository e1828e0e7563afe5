"""Cached widget throughput against a bare aiohttp app serving the same bytes, in one run.

    python bench/widget_throughput.py [--duration 5] [--connections 64] [--rounds 3] [--client wrk|aiohttp]

Both servers run as separate processes (one worker each); the load comes from the same client
(wrk when installed, else an aiohttp client in this process). Prints requests/s of each and the
ratio ours / bare. Goal: >= 0.9 for JSON and HTML.
"""

from __future__ import annotations

from common import (
    compare,
    fetch,
    free_port,
    load_arguments,
    service_env,
    start_bare,
    start_service,
    stop,
    wait_until_up,
)

CONTENT_TYPES = {"json": "application/json; charset=utf-8", "html": "text/html; charset=utf-8"}


def main() -> None:
    how = load_arguments(__doc__)
    port = free_port()
    # Only the links widget: this measures serving, not upstreams.
    disabled = {f"SIDEBAR_WIDGETS__{w}__ENABLED": "false" for w in ("PRICES", "WEATHER", "SATELLITE")}
    processes = [start_service(port, service_env(**disabled))]
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/widgets/links.json")
        print(how.describe())
        for kind, content_type in CONTENT_TYPES.items():
            url = f"{base}/widgets/links.{kind}"
            body = fetch(url)
            bare_port = free_port()
            bare, body_file = start_bare(bare_port, body, content_type)
            processes.append(bare)
            compare(kind, url, f"http://127.0.0.1:{bare_port}/widgets/links.{kind}", how, size=len(body))
            body_file.unlink()
    finally:
        stop(processes)


if __name__ == "__main__":
    main()
