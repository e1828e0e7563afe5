"""Cached widget throughput against a bare aiohttp app serving the same bytes, in one run.

    python bench/widget_throughput.py [--duration 5] [--connections 64] [--rounds 3] [--client wrk|aiohttp]

Every server runs as a separate process (one worker each); the load comes from the same client
(wrk when installed, else an aiohttp client in this process), alternating round by round. Two
baselines: a bare aiohttp handler returning the same bytes, and one returning the same bytes
with the same headers (ETag, Last-Modified, Cache-Control, CSP, CORS: what a real endpoint
cannot skip). Prints requests/s of each and both ratios. Goal: >= 0.95 of the same-headers
baseline for JSON and HTML. Besides requests/s it prints each server's CPU time per request,
the steadier measure on a machine other work shares.
"""

from __future__ import annotations

from common import (
    Server,
    compare,
    fetch_with_headers,
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
    service = start_service(port, service_env(**disabled))
    processes = [service]
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/widgets/links.json")
        print(how.describe())
        for kind, content_type in CONTENT_TYPES.items():
            url = f"{base}/widgets/links.{kind}"
            body, headers = fetch_with_headers(url)
            # Cache-Control counts down: the baseline sends one fixed value of the same length.
            bare_port, same_port = free_port(), free_port()
            bare, body_file = start_bare(bare_port, body, content_type)
            same, same_file = start_bare(same_port, body, content_type, headers)
            processes += [bare, same]
            compare(
                kind,
                Server(url, service.pid),
                Server(f"http://127.0.0.1:{bare_port}/widgets/links.{kind}", bare.pid),
                how,
                size=len(body),
                same_headers=Server(f"http://127.0.0.1:{same_port}/widgets/links.{kind}", same.pid),
            )
            for used in (body_file, same_file):
                used.unlink()
                used.with_suffix(".headers.json").unlink(missing_ok=True)
    finally:
        stop(processes)


if __name__ == "__main__":
    main()
