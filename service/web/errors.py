"""Every error leaves as JSON ``{"error": "..."}`` with the right status; never a traceback.

Errors carry the same CORS headers as the answers they stand in for, so a page on another origin
reads a 404 or a 503 as such rather than as an opaque network failure.

``endpoint`` wraps each handler (cheaper than an aiohttp middleware, which re-wraps the handler
on every request) and also counts the request for /metrics. Unmatched paths reach ``not_found``
through a catch-all route registered last.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from service.web.cors import FRAME_NONE
from service.web.keys import EMBED, METRICS

log = logging.getLogger(__name__)

JSON_UTF8 = "application/json; charset=utf-8"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(http_status: int, message: str, /, **extra: object) -> web.Response:
    body = {"error": message, **extra}
    return web.Response(
        status=http_status,
        body=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": JSON_UTF8, "Cache-Control": "no-store"},
    )


class RequestError(Exception):
    """Raised by handlers for a 4xx answer with a short reason."""

    def __init__(self, http_status: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message


def endpoint(route: str) -> Callable[[Handler], Handler]:
    """Errors as JSON, a default CSP, and a request count under ``route``.

    A ``{format}`` in ``route`` is filled from the match, so one resource serving several
    formats still counts them apart.
    """
    by_format = (
        {fmt: route.replace("{format}", fmt) for fmt in ("json", "html")} if "{format}" in route else {}
    )

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                response = await handler(request)
            except RequestError as exc:
                response = json_error(exc.http_status, exc.message)
            except web.HTTPException as exc:
                response = json_error(exc.status, exc.reason) if exc.status >= 400 else exc
            except Exception:
                log.exception("unhandled error on %s %s", request.method, request.path)
                response = json_error(500, "internal error")
            headers = response.headers
            if "Content-Security-Policy" not in headers:
                headers["Content-Security-Policy"] = FRAME_NONE
            if response.status >= 400:
                headers.update(request.app[EMBED].headers_for(request.headers.get("Origin")))
            label = by_format.get(request.match_info.get("format", ""), route) if by_format else route
            request.app[METRICS].count_request(label, response.status)
            return response

        return guarded

    return wrap


@endpoint("unmatched")
async def not_found(request: web.Request) -> web.Response:
    """The catch-all: 405 (with Allow) when another route has this path, else 404."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.canonical == "/{tail}":
            continue
        match, methods = await resource.resolve(request)
        if match is None:
            allowed |= methods
    if allowed:
        response = json_error(405, "Method Not Allowed")
        response.headers["Allow"] = ", ".join(sorted(allowed))
        return response
    return json_error(404, "Not Found")
