"""A local stand-in for tgju.org: its three market pages, each grown to about 2 MB.

Built from the captured pages in ``/work/shared/samples/prices`` (or ``--samples``): the rows of
each page's first market table are repeated (with their ``data-market-nameslug`` suffixed, so the
real rows still parse once) until the page weighs ``--bytes``. Every byte is tgju-shaped.
``--home`` serves the grown currency page at ``/`` too, so a refresh parses four pages as it
does against tgju.org (its fourth is the home page's info bar).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from aiohttp import web

SAMPLES = {
    "currency": "tgju_currency_amiranmanesh.html",
    "gold-chart": "tgju_gold_amiranmanesh.html",
    "coin": "tgju_coin_amiranmanesh.html",
}
_TBODY = re.compile(r"<tbody>(.*?)</tbody>", re.S)


def grown(html: str, size: int) -> str:
    match = _TBODY.search(html)
    if match is None:
        raise SystemExit("sample has no <tbody>")
    rows = match.group(1)
    copies: list[str] = []
    total = len(html.encode())
    n = 0
    while total < size:
        n += 1
        copy = re.sub(r'(data-market-(?:nameslug|row)=")([^"]+)"', rf'\g<1>\g<2>_{n}"', rows)
        copies.append(copy)
        total += len(copy.encode())
    return html[: match.end(1)] + "".join(copies) + html[match.end(1) :]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bytes", type=int, default=2 * 1024 * 1024)
    parser.add_argument("--samples", default="/work/shared/samples/prices")
    parser.add_argument("--home", action="store_true", help="serve a grown market page at / too")
    args = parser.parse_args()
    pages = {
        page: grown((Path(args.samples) / name).read_text(encoding="utf-8"), args.bytes).encode()
        for page, name in SAMPLES.items()
    }

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=pages[request.match_info["page"]], content_type="text/html", charset="utf-8")

    async def home(request: web.Request) -> web.Response:
        return web.Response(body=pages["currency"], content_type="text/html", charset="utf-8")

    app = web.Application()
    app.router.add_get("/{page}", serve)
    if args.home:
        app.router.add_get("/", home)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
