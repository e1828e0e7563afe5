"""``GET /widgets/prices/history.json``: an item's recorded prices over a range."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from cache.base import CacheUnavailable
from service.engine.snapshot import Snapshot, iso_utc
from service.history.series import RANGES, PriceHistory, current_unit
from service.history.sparkline import fragment_context
from service.web.answers import prepare, respond
from service.web.errors import RequestError, endpoint, json_error
from service.web.http_caching import cache_control
from service.web.keys import EMBED, ENGINE, REPRESENTATIONS
from service.web.representations import Enricher, Extra
from service.web.routes import preflight
from service.widgets.prices import TITLES, PricesOptions

routes = web.RouteTableDef()

HISTORY = web.AppKey("history", PriceHistory)
_JSON = "application/json; charset=utf-8"
PATH = "/widgets/prices/history.json"


def enricher(history: PriceHistory) -> Enricher:
    """The prices fragment's extra context: sparklines and 24-hour changes for ``chart=sparkline``."""

    async def enrich(snapshot: Snapshot, view: dict[str, Any]) -> Extra | None:
        if view.get("chart") != "sparkline":
            return None
        tag, context = await fragment_context(history, snapshot)
        return Extra(tag, context)

    return enrich


async def history_body(history: PriceHistory, snapshot: Snapshot, key: str, span: str) -> bytes:
    tier, seconds = RANGES[span]

    async def make() -> bytes:
        points = await history.points(snapshot, key, tier, snapshot.fetched_at - seconds)
        prices = [price for _, price in points]
        body = {
            "item": key,
            "title": TITLES.get(key, key),
            "unit": current_unit(snapshot, key)[0],
            "range": span,
            "resolution": tier.name,
            "from": iso_utc(snapshot.fetched_at - seconds),
            "to": snapshot.fetched_at_iso,
            "points": [[iso_utc(at), price] for at, price in points],
            "first": prices[0] if prices else None,
            "last": prices[-1] if prices else None,
            "min": min(prices) if prices else None,
            "max": max(prices) if prices else None,
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    return await history.prepared(snapshot, ("json", key, span), make)


@routes.get(PATH)
@endpoint(PATH)
async def price_history(request: web.Request) -> web.Response:
    refresher = request.app[ENGINE].refreshers.get("prices")
    if refresher is None or HISTORY not in request.app:
        raise RequestError(404, "unknown widget: prices")
    options = refresher.widget.options
    assert isinstance(options, PricesOptions)
    key = request.query.get("item", "")
    if key not in options.items:
        raise RequestError(400, f"item: unknown key {key[:40]!r}; valid: {', '.join(options.items)}")
    span = request.query.get("range", "")
    if span not in RANGES:
        raise RequestError(400, f"range: must be one of {', '.join(RANGES)}")
    snapshot = refresher.serve_now() or await refresher.current()
    if snapshot is None:
        return json_error(503, refresher.state.last_error or "no data yet")
    try:
        body = await history_body(request.app[HISTORY], snapshot, key, span)
    except CacheUnavailable:
        return json_error(503, "history is unavailable while the cache is unreachable")
    now = refresher.now()
    settings = refresher.settings
    caching = {
        **request.app[REPRESENTATIONS].fixed_headers,
        "Cache-Control": cache_control(
            refresher.max_age(snapshot, now),
            stale_while_revalidate=settings.stale_while_revalidate_seconds,
            stale_if_error=settings.stale_if_error_seconds,
        ),
    }
    answer = prepare(
        request.app[EMBED],
        body,
        _JSON,
        etag=f'W/"{snapshot.digest}-{int(snapshot.fetched_at)}-{key}-{span}"',
        last_modified=snapshot.fetched_at,
        headers=caching,
    )
    return respond(request, answer, now)


# After the GET, on the same resource: a page revalidating with If-None-Match preflights first, and
# gets the widgets' answer (one rule for every cross-origin read).
routes.route("OPTIONS", PATH)(preflight)
