"""Every error leaves as JSON ``{"error": "..."}`` with the right status; never a traceback.

The same middleware counts requests by route and status, so one wrapper serves both concerns.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from service.keys import METRICS

log = logging.getLogger(__name__)


def json_error(http_status: int, message: str, /, **extra: object) -> web.Response:
    body = {"error": message, **extra}
    return web.Response(
        status=http_status,
        body=json.dumps(body, ensure_ascii=False).encode(),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@web.middleware
async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            request.app[METRICS].count_request(route, exc.status)
            raise
        response = json_error(exc.status, exc.reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = json_error(500, "internal error")
    request.app[METRICS].count_request(route, response.status)
    return response
