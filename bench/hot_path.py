"""The widget endpoint's own cost, in process: our handler against a bare one, same bytes and headers.

    python bench/hot_path.py [--requests 20000] [--rounds 7]

No sockets and no client, so it holds still on a busy machine where the throughput figures of
widget_throughput.py do not: both handlers answer the same prepared requests, alternating round by
round, and the best round of each is printed in microseconds per request with the difference
(what our routing-free bookkeeping costs on top of building the response).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request

from service.settings import Settings
from service.web.app import create_app

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def measure(kind: str, requests: int, rounds: int) -> None:
    app = create_app(Settings())
    server = TestServer(app)
    await server.start_server()
    try:
        path = f"/widgets/links.{kind}"
        match = await app.router.resolve(make_mocked_request("GET", path, app=app))
        ours: Handler = match.handler
        first = await ours(make_mocked_request("GET", path, app=app, match_info=dict(match)))
        assert isinstance(first, web.Response) and first.status == 200
        body = first.body
        # The bare handler gets what an HTTP client would see: plain header names, all but length.
        headers = {str(k): v for k, v in first.headers.items() if k != "Content-Length"}

        async def bare(request: web.Request) -> web.Response:
            return web.Response(body=body, headers=headers)

        prepared = [
            make_mocked_request("GET", path, app=app, match_info=dict(match)) for _ in range(requests)
        ]
        timings: dict[str, list[float]] = {"bare": [], "ours": []}
        handlers: dict[str, Handler] = {"bare": bare, "ours": ours}
        for _ in range(rounds):
            for name, handler in handlers.items():
                started = time.perf_counter()
                for request in prepared:
                    await handler(request)
                timings[name].append((time.perf_counter() - started) / requests * 1e6)
        best = {name: min(values) for name, values in timings.items()}
        print(
            f"{kind:5} ours {best['ours']:.2f} us/req   bare, same bytes and headers "
            f"{best['bare']:.2f} us/req   difference {best['ours'] - best['bare']:+.2f} us"
        )
    finally:
        await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    # Only the links widget: this measures serving, not upstreams.
    for widget in ("PRICES", "WEATHER", "SATELLITE"):
        os.environ[f"SIDEBAR_WIDGETS__{widget}__ENABLED"] = "false"
    os.environ.setdefault("SIDEBAR_LOG_LEVEL", "WARNING")
    for kind in ("json", "html"):
        asyncio.run(measure(kind, args.requests, args.rounds))


if __name__ == "__main__":
    main()
