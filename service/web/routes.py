"""Widget endpoints: the list, JSON envelopes and HTML fragments.

These are the hot path. A cached widget's body changes only when a new snapshot lands (or its
status, day or minute turns) and its ``max-age`` once a second, so each plain widget URL keeps its
prepared body and headers for the current second; a request then costs a dict lookup, a time
check and the response object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.hdrs import ORIGIN

from service.engine.refresher import WidgetRefresher
from service.engine.snapshot import Snapshot
from service.metrics import Metrics
from service.web.answers import Answer, prepare, respond
from service.web.errors import JSON_UTF8, Handler, RequestError, endpoint, json_error
from service.web.http_caching import NO_STORE, cache_control, http_date
from service.web.keys import EMBED, ENGINE, REPRESENTATIONS, WIDGETS
from service.web.representations import Extra, Representation, Representations, day_ends
from service.widgets.base import QueryError

routes = web.RouteTableDef()

THEMES = ("light", "dark", "auto")
#: The widget title's heading level, chosen to fit the host page's outline.
HEADINGS = ("2", "3", "4")
DEFAULT_HEADING = 3
_JSON = JSON_UTF8
_HTML = "text/html; charset=utf-8"


#: Registered by the app ahead of every other route: the router tries a URL's candidates one by
#: one, and this is the hot path. One resource serves both formats for the same reason.
WIDGET_PATH = "/widgets/{name}.{format:json|html}"
#: /widgets: kept a few minutes by browsers and caches; it changes only when the service restarts.
LIST_CACHE_CONTROL = "public, max-age=300"
#: Prepared answers kept for the current second, plain and per query string.
MAX_PREPARED_VIEWS = 512


def widget_handler(reps: Representations, metrics: Metrics) -> Handler:
    """The widget endpoint of one app, its fast lane bound to that app's prepared answers."""
    hot = reps.hot

    async def widget(request: web.Request) -> web.StreamResponse:
        """This second's prepared answer for the path and query as sent, else the full handler.

        The fast lane answers like the full handler would (through ``respond``) and counts the
        request as ``endpoint`` would; only a path with nothing prepared takes the full (guarded)
        handler.
        """
        try:
            # Keyed by the raw path and query: a prepared answer needs no parsing at all.
            prepared = hot.get(request.raw_path)
            if prepared is not None:
                now = reps.clock.time()
                if now < prepared.expires_at:
                    response = respond(request, prepared.answer, now)
                    metrics.count_hot_hit(prepared.counted[response.status == 304])
                    return response
        except Exception:  # the full handler below answers (and logs) whatever this would have hit
            pass
        return await _widget(request)

    return widget


@endpoint("/widgets/{name}.{format}")
async def _widget(request: web.Request) -> web.Response:
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
    # Readable from the same origins as the widgets it lists (a page choosing what to embed).
    cors = request.app[EMBED].headers_for(request.headers.get(ORIGIN))
    # The list changes only with the configuration, that is with a restart.
    headers = {**cors, "Cache-Control": LIST_CACHE_CONTROL}
    return web.json_response(
        {"widgets": widgets}, dumps=lambda v: json.dumps(v, ensure_ascii=False), headers=headers
    )


@dataclass(frozen=True, slots=True)
class Prepared:
    """A widget answer, valid until ``expires_at`` (at most a second) for one snapshot."""

    expires_at: float
    snapshot: Snapshot
    #: What a 200 and a 304 are counted as in /metrics: (route, status), in that order.
    counted: tuple[tuple[str, int], tuple[str, int]]
    answer: Answer


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


def validators(representation: Representation) -> dict[str, str]:
    return {"ETag": representation.etag, "Last-Modified": http_date(representation.last_modified)}


def caching_headers(
    kind: str, refresher: WidgetRefresher, snapshot: Snapshot, representation: Representation, now: float
) -> dict[str, str]:
    """Validators and Cache-Control of a widget answer (a fragment's also serve the page around it)."""
    settings = refresher.settings
    return {
        **validators(representation),
        "Cache-Control": cache_control(
            _max_age(kind, refresher, snapshot, now),
            stale_while_revalidate=settings.stale_while_revalidate_seconds,
            stale_if_error=settings.stale_if_error_seconds,
        ),
    }


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
    spec, options = refresher.widget.spec, refresher.widget.options
    status = refresher.status(snapshot, now)
    stale_since = refresher.expires_at(snapshot)
    if kind == "json":
        rendered = reps.json(spec, snapshot, status, view, options, now, stale_since)
        content_type = _JSON
    else:
        rendered = reps.html(spec, snapshot, status, view, now, options, extra=extra, stale_since=stale_since)
        content_type = _HTML
    settings = refresher.settings
    caching = {
        **reps.fixed_headers,
        "Cache-Control": cache_control(
            _max_age(kind, refresher, snapshot, now),
            stale_while_revalidate=settings.stale_while_revalidate_seconds,
            stale_if_error=settings.stale_if_error_seconds,
        ),
    }
    # Valid to the end of this second, or to the moment the data turns stale if that is sooner.
    expires_at = float(int(now) + 1)
    if status == "fresh":
        expires_at = min(expires_at, stale_since)
    elif kind == "html":
        # A stale fragment prints its minutes of age, which turn when fetched_at's fraction does.
        expires_at = min(expires_at, snapshot.fetched_at + (snapshot.age(now) // 60 + 1) * 60)
    route = f"/widgets/{{name}}.{kind}"
    answer = prepare(
        request.app[EMBED],
        rendered.body,
        content_type,
        etag=rendered.etag,
        last_modified=rendered.last_modified,
        headers=caching,
    )
    return Prepared(expires_at, snapshot, ((route, 200), (route, 304)), answer)


def _max_age(kind: str, refresher: WidgetRefresher, snapshot: Snapshot, now: float) -> float:
    max_age = refresher.max_age(snapshot, now)
    spec = refresher.widget.spec
    if spec.today is not None:
        # Cut at the reader's day (weather's rows from today on): no client keeps it past midnight.
        max_age = day_ends(spec.today, refresher.widget.options, now, now + max_age) - now
    if kind == "html" and spec.clock_dependent:
        # The fragment changes with the time of day: no client keeps it past this minute.
        max_age = min(max_age, 60 - now % 60)
    if kind == "html" and not refresher.is_fresh(snapshot, now):
        # A stale fragment prints its age in minutes ("۵ دقیقه پیش"), a new text each minute of age,
        # however long the provider backs off: no client keeps it past this minute of age.
        max_age = min(max_age, 60 - snapshot.age(now) % 60)
    return max_age


def _hot(request: web.Request, kind: str) -> web.Response | None:
    """This second's prepared answer for this path and query, if there is one (no new snapshot since)."""
    reps = request.app[REPRESENTATIONS]
    # Entries are dropped the moment their widget gets a new snapshot (Representations.forget).
    prepared = reps.hot.get(request.raw_path)
    now = reps.clock.time()
    if prepared is None or now >= prepared.expires_at:
        return None
    reps.metrics.count_lookup("local")
    return respond(request, prepared.answer, now)


async def _serve(request: web.Request, kind: str) -> web.Response:
    reps = request.app[REPRESENTATIONS]
    refresher, view = widget_view(request)
    snapshot = refresher.serve_now() or await refresher.current()
    now = refresher.now()
    if snapshot is None:
        return _unavailable(request, kind, reps, refresher, view, now)
    extra = await reps.extra(refresher.name, snapshot, view) if kind == "html" else None
    prepared = _prepare(request, kind, reps, refresher, snapshot, view, now, extra)
    if refresher.store.local(refresher.name) is not snapshot:
        # A new snapshot landed while this one was awaited (its extra context, the shared cache):
        # ``forget`` has already run, so keeping this answer would serve the old data again.
        return respond(request, prepared.answer, now)
    plain = f"/widgets/{refresher.name}.{kind}"
    if not view:
        _keep(reps.hot, plain, prepared)
    if request.raw_path != plain:
        # A view is prepared for its query string as sent (the same query is the same answer this
        # second), so embeds with options take the fast lane too.
        _keep(reps.hot, request.raw_path, prepared)
    return respond(request, prepared.answer, now)


def _keep(hot: dict[str, Prepared], key: str, prepared: Prepared) -> None:
    """Keep ``prepared`` for ``key``, replacing last second's. Bounded, the plain paths included: a
    crawler inventing queries only pushes out the oldest, which the next second prepares again."""
    if hot.pop(key, None) is None and len(hot) >= MAX_PREPARED_VIEWS:
        del hot[next(iter(hot))]
    hot[key] = prepared  # last: the newest, pushed out last


async def fragment(request: web.Request, refresher: WidgetRefresher, view: dict[str, Any]) -> str:
    """The widget's HTML fragment for a view, whatever its state (for pages that wrap it)."""
    snapshot = refresher.serve_now() or await refresher.current()
    now = refresher.now()
    status = refresher.status(snapshot, now)
    reps = request.app[REPRESENTATIONS]
    extra = await reps.extra(refresher.name, snapshot, view)
    rendered = reps.html(
        refresher.widget.spec, snapshot, status, view, now, refresher.widget.options, extra=extra
    )
    return rendered.body.decode()


async def fragment_answer(
    request: web.Request, refresher: WidgetRefresher, view: dict[str, Any]
) -> tuple[Representation, dict[str, str]]:
    """The widget's fragment for a view with the caching headers it is served with."""
    snapshot = refresher.serve_now() or await refresher.current()
    now = refresher.now()
    status = refresher.status(snapshot, now)
    spec, options = refresher.widget.spec, refresher.widget.options
    if snapshot is None:
        rendered = request.app[REPRESENTATIONS].html(spec, None, status, view, now, options)
        return rendered, {"Cache-Control": NO_STORE}
    reps = request.app[REPRESENTATIONS]
    extra = await reps.extra(refresher.name, snapshot, view)
    rendered = reps.html(
        spec, snapshot, status, view, now, options, extra=extra, stale_since=refresher.expires_at(snapshot)
    )
    return rendered, caching_headers("html", refresher, snapshot, rendered, now)


def _unavailable(
    request: web.Request,
    kind: str,
    reps: Representations,
    refresher: WidgetRefresher,
    view: dict[str, Any],
    now: float,
) -> web.Response:
    if kind == "json":
        return json_error(
            503,
            refresher.state.last_error or "no data yet",
            widget=refresher.name,
            status="unavailable",
            source=None,
            fetched_at=None,
            attribution=None,
            data=None,
        )
    # A polite placeholder, not an error page: server-side includes and iframes show it as is.
    rendered = reps.html(refresher.widget.spec, None, "unavailable", view, now, refresher.widget.options)
    headers = {
        **reps.fixed_headers,
        **request.app[EMBED].headers_for(request.headers.get("Origin")),
        "Content-Type": _HTML,
        "Cache-Control": NO_STORE,
    }
    return web.Response(body=rendered.body, headers=headers)


# Registered after the GET routes: the router tries resources in order, and GETs are the hot path.
# Only the widget documents: any other path under /widgets/ is a 404, not a 405 for a GET.
@routes.route("OPTIONS", "/widgets/{name}.{format:json|html}")
@endpoint("/widgets/*")
async def preflight(request: web.Request) -> web.Response:
    """CORS preflight for every JSON and HTML answer a page on another origin may read: the widget
    documents here, and the price history, which registers this same handler for its path (GET
    only; the conditional headers a reader revalidates with may be sent)."""
    headers = {
        **request.app[EMBED].headers_for(request.headers.get("Origin")),
        "Access-Control-Allow-Methods": "GET, OPTIONS",
        "Access-Control-Allow-Headers": "If-None-Match, If-Modified-Since",
        "Access-Control-Max-Age": "86400",
    }
    return web.Response(status=204, headers=headers)
