"""Widget endpoints: the list, JSON envelopes and HTML fragments.

These are the hot path. Everything in a cached widget's answer changes at most once a second
(``age_seconds``, ``max-age``) or when a new snapshot lands, so each (widget, format) keeps its
prepared body and headers for the current second; a request then costs a dict lookup, an
identity check and the response object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from service.engine.refresher import WidgetRefresher
from service.engine.snapshot import Snapshot
from service.web.cors import EmbedPolicy
from service.web.errors import RequestError, endpoint, json_error
from service.web.http_caching import NO_STORE, cache_control, etag_matches
from service.web.keys import EMBED, ENGINE, REPRESENTATIONS, WIDGETS
from service.web.representations import Extra, Representations
from service.widgets.base import QueryError

routes = web.RouteTableDef()

THEMES = ("light", "dark", "auto")
#: The widget title's heading level, chosen to fit the host page's outline.
HEADINGS = ("2", "3", "4")
DEFAULT_HEADING = 3
_JSON = "application/json; charset=utf-8"
_HTML = "text/html; charset=utf-8"


# One resource for both formats: the router tries a URL's candidates one by one, and this is the
# hot path. Registered before the plain /widgets list for the same reason.
@routes.get("/widgets/{name}.{format:json|html}")
@endpoint("/widgets/{name}.{format}")
async def widget(request: web.Request) -> web.Response:
    kind = request.match_info["format"]
    return _hot(request, kind) or await _serve(request, kind)


@routes.get("/widgets")
@endpoint("/widgets")
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
    return web.json_response({"widgets": widgets}, dumps=lambda v: json.dumps(v, ensure_ascii=False))


@dataclass(frozen=True, slots=True)
class Prepared:
    """A widget answer, valid until ``expires_at`` (at most a second) for one snapshot."""

    expires_at: float
    snapshot: Snapshot
    body: bytes
    headers: dict[str, str]
    not_modified_headers: dict[str, str]
    #: Set when CORS depends on the request's Origin (listed origins); None when it is fixed.
    per_origin: EmbedPolicy | None = None


def widget_view(request: web.Request) -> tuple[WidgetRefresher, dict[str, Any]]:
    """The widget a request names and the view its query asks for (4xx when either is bad)."""
    name = request.match_info["name"]
    refresher = request.app[ENGINE].refreshers.get(name)
    if refresher is None:
        raise RequestError(404, f"unknown widget: {name}")
    if not request.query_string:
        return refresher, {}
    widget = refresher.widget
    try:
        view = widget.spec.parse_query(request.query, widget.options)
    except QueryError as exc:
        raise RequestError(400, str(exc)) from None
    theme = request.query.get("theme")
    if theme is not None:
        if theme not in THEMES:
            raise RequestError(400, "theme: must be light, dark or auto")
        view["theme"] = theme
    heading = request.query.get("heading")
    if heading is not None:
        if heading not in HEADINGS:
            raise RequestError(400, "heading: must be 2, 3 or 4")
        # The default level is the plain fragment: no second cached rendering of it.
        if int(heading) != DEFAULT_HEADING:
            view["heading"] = int(heading)
    return refresher, view


def _answer(request: web.Request, prepared: Prepared) -> web.Response:
    headers, not_modified = prepared.headers, prepared.not_modified_headers
    if prepared.per_origin is not None:  # listed origins: the answer depends on who asks
        cors = prepared.per_origin.headers_for(request.headers.get("Origin"))
        headers, not_modified = {**headers, **cors}, {**not_modified, **cors}
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None and etag_matches(if_none_match, prepared.headers["ETag"]):
        return web.Response(status=304, headers=not_modified)
    return web.Response(body=prepared.body, headers=headers)


def _prepare(
    request: web.Request,
    kind: str,
    reps: Representations,
    refresher: WidgetRefresher,
    snapshot: Snapshot,
    view: dict[str, Any],
    now: float,
    extra: Extra | None = None,
) -> Prepared:
    spec = refresher.widget.spec
    status = refresher.status(snapshot, now)
    if kind == "json":
        parts = reps.json_parts(spec, snapshot, status, view, refresher.widget.options, now)
        body = parts.head + str(int(snapshot.age(now))).encode() + parts.tail
        etag, content_type = parts.etag, _JSON
    else:
        rendered = reps.html(spec, snapshot, status, view, now, refresher.widget.options, extra)
        body, etag, content_type = rendered.body, rendered.etag, _HTML
    settings = refresher.settings
    caching = {
        **reps.fixed_headers,
        "ETag": etag,
        "Cache-Control": cache_control(
            _max_age(kind, refresher, snapshot, now),
            stale_while_revalidate=settings.stale_while_revalidate_seconds,
            stale_if_error=settings.stale_if_error_seconds,
        ),
    }
    # Valid to the end of this second, or to the moment the data turns stale if that is sooner.
    expires_at = float(int(now) + 1)
    if status == "fresh":
        expires_at = min(expires_at, refresher.expires_at(snapshot))
    policy = request.app[EMBED]
    return Prepared(
        expires_at,
        snapshot,
        body,
        {"Content-Type": content_type, **caching},
        caching,
        None if policy.any_origin else policy,
    )


def _max_age(kind: str, refresher: WidgetRefresher, snapshot: Snapshot, now: float) -> float:
    max_age = refresher.max_age(snapshot, now)
    if kind == "html" and refresher.widget.spec.clock_dependent:
        # The fragment changes with the time of day: no client keeps it past this minute.
        max_age = min(max_age, 60 - now % 60)
    return max_age


def _hot(request: web.Request, kind: str) -> web.Response | None:
    """This second's prepared answer, if there is one (no query, no new snapshot since)."""
    if request.query_string:
        return None
    reps = request.app[REPRESENTATIONS]
    # Entries are dropped the moment their widget gets a new snapshot (Representations.forget).
    prepared = reps.hot.get((request.match_info["name"], kind))
    if prepared is None or reps.clock.time() >= prepared.expires_at:
        return None
    reps.metrics.count_lookup("local")
    return _answer(request, prepared)


async def _serve(request: web.Request, kind: str) -> web.Response:
    reps = request.app[REPRESENTATIONS]
    refresher, view = widget_view(request)
    snapshot = refresher.serve_now() or await refresher.current()
    now = refresher.now()
    if snapshot is None:
        return _unavailable(kind, reps, refresher, view, now)
    extra = await reps.extra(refresher.name, snapshot, view) if kind == "html" else None
    prepared = _prepare(request, kind, reps, refresher, snapshot, view, now, extra)
    if not view:
        reps.hot[(refresher.name, kind)] = prepared
    return _answer(request, prepared)


async def fragment(request: web.Request, refresher: WidgetRefresher, view: dict[str, Any]) -> str:
    """The widget's HTML fragment for a view, whatever its state (for pages that wrap it)."""
    snapshot = refresher.serve_now() or await refresher.current()
    now = refresher.now()
    status = refresher.status(snapshot, now)
    reps = request.app[REPRESENTATIONS]
    extra = await reps.extra(refresher.name, snapshot, view)
    rendered = reps.html(refresher.widget.spec, snapshot, status, view, now, refresher.widget.options, extra)
    return rendered.body.decode()


def _unavailable(
    kind: str, reps: Representations, refresher: WidgetRefresher, view: dict[str, Any], now: float
) -> web.Response:
    if kind == "json":
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
    # A polite placeholder, not an error page: server-side includes and iframes show it as is.
    rendered = reps.html(refresher.widget.spec, None, "unavailable", view, now, refresher.widget.options)
    return web.Response(body=rendered.body, headers={"Content-Type": _HTML, "Cache-Control": NO_STORE})


# Registered after the GET routes: the router tries resources in order, and GETs are the hot path.
# Only the widget documents: any other path under /widgets/ is a 404, not a 405 for a GET.
@routes.route("OPTIONS", "/widgets/{name}.{format:json|html}")
@endpoint("/widgets/*")
async def preflight(request: web.Request) -> web.Response:
    """CORS preflight for the widget endpoints (GET only; If-None-Match may be sent)."""
    headers = {
        **request.app[EMBED].headers_for(request.headers.get("Origin")),
        "Access-Control-Allow-Methods": "GET, OPTIONS",
        "Access-Control-Allow-Headers": "If-None-Match",
        "Access-Control-Max-Age": "86400",
    }
    return web.Response(status=204, headers=headers)
