"""The baseline: a bare aiohttp app that returns fixed bytes, with fixed headers and nothing else.

It runs on the event loop the service picks by default (uvloop when installed, as
``event_loop = "auto"``): a baseline on a slower loop would flatter the service.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
from pathlib import Path

from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True)
    parser.add_argument("--content-type", required=True)
    parser.add_argument("--headers", type=Path, help="a JSON object of further headers to send")
    args = parser.parse_args()
    body = args.body.read_bytes()
    headers = {"Content-Type": args.content_type}
    if args.headers is not None:
        headers.update(json.loads(args.headers.read_text()))

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, headers=headers)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=new_event_loop())


def new_event_loop() -> asyncio.AbstractEventLoop:
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


if __name__ == "__main__":
    main()
