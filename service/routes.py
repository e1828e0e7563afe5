"""Widget endpoints: the list, JSON envelopes and HTML fragments."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from service.errors import json_error
from service.http_caching import NO_STORE, cache_control, etag_matches
from service.keys import ENGINE, REPRESENTATIONS, SETTINGS, WIDGETS
from service.refresh import WidgetRefresher
from service.snapshot import Snapshot
from service.widgets.base import QueryError

routes = web.RouteTableDef()

_JSON = "application/json; charset=utf-8"
_HTML = "text/html; charset=utf-8"


@routes.get("/widgets")
async def list_widgets(request: web.Request) -> web.Response:
    widgets = [
        {
            "name": w.name,
            "title": w.spec.title,
            "json": f"/widgets/{w.name}.json",
            "html": f"/widgets/{w.name}.html",
            "refresh_seconds": w.refresh_seconds,
        }
        for w in request.app[WIDGETS].values()
        if w.enabled
    ]
    return web.json_response({"widgets": widgets})


async def _resolve(request: web.Request) -> tuple[WidgetRefresher, dict[str, Any], Snapshot | None, str, float]:
    name = request.match_info["name"]
    refresher = request.app[ENGINE].refreshers.get(name)
    if refresher is None:
        raise web.HTTPNotFound(reason=f"unknown widget: {name}")
    widget = refresher.widget
    try:
        view = widget.spec.parse_query(request.query, widget.options)
    except QueryError as exc:
        raise web.HTTPBadRequest(reason=str(exc)) from None
    snapshot = await refresher.current()
    now = time.time()
    if snapshot is None:
        status = "unavailable"
    else:
        status = "fresh" if refresher.is_fresh(snapshot, now) else "stale"
    return refresher, view, snapshot, status, now


def _caching_headers(request: web.Request, refresher: WidgetRefresher, snapshot: Snapshot, now: float, etag: str) -> dict[str, str]:
    engine_settings = request.app[SETTINGS].engine
    return {
        "ETag": etag,
        "Cache-Control": cache_control(
            refresher.next_refresh_at(snapshot) - now,
            stale_while_revalidate=engine_settings.stale_while_revalidate_seconds,
            stale_if_error=engine_settings.stale_if_error_seconds,
        ),
    }


@routes.get("/widgets/{name}.json")
async def widget_json(request: web.Request) -> web.Response:
    refresher, view, snapshot, status, now = await _resolve(request)
    if snapshot is None:
        return json_error(
            503,
            refresher.state.last_error or "no data yet",
            widget=refresher.name,
            status="unavailable",
            source=None,
            fetched_at=None,
            age_seconds=None,
            attribution=None,
            data=None,
        )
    parts = request.app[REPRESENTATIONS].json_parts(refresher.widget.spec, snapshot, status, view)
    headers = _caching_headers(request, refresher, snapshot, now, parts.etag)
    if etag_matches(request.headers.get("If-None-Match"), parts.etag):
        return web.Response(status=304, headers=headers)
    body = parts.head + str(int(snapshot.age(now))).encode() + parts.tail
    headers["Content-Type"] = _JSON
    return web.Response(body=body, headers=headers)


@routes.get("/widgets/{name}.html")
async def widget_html(request: web.Request) -> web.Response:
    refresher, view, snapshot, status, now = await _resolve(request)
    rendered = request.app[REPRESENTATIONS].html(refresher.widget.spec, snapshot, status, view, now)
    if snapshot is None:
        # A polite placeholder, not an error page: server-side includes and iframes show it as is.
        return web.Response(body=rendered.body, headers={"Content-Type": _HTML, "Cache-Control": NO_STORE})
    headers = _caching_headers(request, refresher, snapshot, now, rendered.etag)
    if etag_matches(request.headers.get("If-None-Match"), rendered.etag):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = _HTML
    return web.Response(body=rendered.body, headers=headers)
