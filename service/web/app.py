"""Application wiring: settings → cache, shared HTTP client, engine, routes (shortify-style)."""

from __future__ import annotations

import functools
import gc
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from cache import Cache, open_cache
from providers.http import UpstreamClient
from service.engine.clock import Clock, SystemClock
from service.engine.engine import Engine
from service.engine.tasks import Cleanup
from service.history import routes as history_routes
from service.history.routes import HISTORY, enricher
from service.history.series import PriceHistory
from service.metrics import Metrics, publish_every
from service.registry import Registry, default_registry
from service.satellite import routes as satellite_routes
from service.satellite.routes import SATELLITE, create_satellite, tile_source
from service.settings import Settings
from service.web import embedding, health, openapi, routes
from service.web.cors import FRAME_NONE, EmbedPolicy
from service.web.errors import JsonErrorsApplication, not_found
from service.web.keys import (
    EMBED,
    ENGINE,
    METRICS,
    OPENAPI,
    READINESS,
    REPRESENTATIONS,
    SETTINGS,
    WIDGETS,
    Readiness,
)
from service.web.rendering import Renderer
from service.web.representations import Representations
from service.widget_config import configure_widgets

#: How long shutdown may spend closing the engine, pools, processes and the cache, once requests
#: in flight have finished: well inside the margin a supervisor allows before it kills.
CLEANUP_CEILING_SECONDS = 6.0


def create_app(
    settings: Settings,
    *,
    registry: Registry | None = None,
    cache: Cache | None = None,
    http_session: aiohttp.ClientSession | None = None,
    clock: Clock | None = None,
) -> web.Application:
    """Build the app. Configuration errors surface here, before anything starts listening.

    ``cache``, ``http_session`` and ``clock`` are seams for tests and embedding; by default they come from
    settings (Redis when ``redis_url`` is set, memory otherwise) and a fresh client session.
    """
    widgets = configure_widgets(settings, registry or default_registry())
    tiles = tile_source(widgets.get("satellite"))
    app = JsonErrorsApplication()
    metrics = Metrics()
    app[SETTINGS] = settings
    app[WIDGETS] = widgets
    app[OPENAPI] = openapi.document_bytes(widgets)
    app[METRICS] = metrics
    renderer = Renderer(base_url=settings.public_url)
    policy = EmbedPolicy(settings.embed.allowed_origins)
    representations = Representations(
        renderer,
        metrics,
        fixed_headers={"Content-Security-Policy": FRAME_NONE, **policy.static_headers},
    )
    app[EMBED] = policy
    app[REPRESENTATIONS] = representations
    readiness = app[READINESS] = Readiness()

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        local = clock or SystemClock()
        # Each resource's close is registered as it is opened: a start-up step that fails later
        # closes what was opened before it (parsing processes, connection pools), and a close
        # that hangs cannot hold the process up past the ceiling.
        cleanup = Cleanup(ceiling_seconds=CLEANUP_CEILING_SECONDS, clock=local)
        try:
            # The in-memory backend keeps its own (the host's) time for expiries, as Redis does.
            backend = cache or open_cache(
                str(settings.redis_url) if settings.redis_url else None,
                clock=SystemClock(),
                prefix=settings.redis_prefix,
            )
            if cache is None:
                cleanup.add("cache", backend.close)
            upstream = UpstreamClient(settings.http, local.time, session=http_session)
            cleanup.add("upstream client", upstream.close)
            await upstream.start()
            engine = Engine(widgets, backend, upstream, settings.engine, metrics, clock=local)
            app[ENGINE] = engine
            representations.clock = engine.clock
            upstream.now = engine.clock.time
            engine.store.on_change(representations.forget)
            satellite = (
                create_satellite(
                    tiles,
                    backend,
                    upstream,
                    metrics,
                    renderer,
                    engine.tasks,
                    engine.clock,
                    trusted_proxies=settings.trusted_proxies,
                )
                if tiles
                else None
            )
            if satellite is not None:
                cleanup.add("satellite picture", satellite.close)
                app[SATELLITE] = satellite
                engine.store.on_change(functools.partial(satellite.on_snapshot, app))
            # Stopped first: its tasks use everything registered before it.
            cleanup.add("engine", engine.stop)
            if "prices" in engine.refreshers:
                history = app[HISTORY] = PriceHistory(backend, engine.tasks)
                engine.on_new_snapshot(history.record)
                representations.enrichers["prices"] = enricher(history)
            await engine.start()
            if metrics.shared:
                engine.tasks.spawn(publish_every(metrics, engine.clock), name="publish metrics")
            # Everything built so far lives as long as the process: move it out of the collector's
            # sight, so the frequent young-generation passes on the request path stay cheap.
            gc.freeze()
            readiness.ready = True
            yield
        finally:
            readiness.ready, readiness.reason = False, "shutting down"
            await cleanup.run()
            metrics.publish()  # this worker's last requests, into the service's totals

    async def shutting_down(app: web.Application) -> None:
        # on_shutdown runs before cleanup, while in-flight requests may still be finishing:
        # from here on a load balancer must send new requests elsewhere.
        readiness.ready, readiness.reason = False, "shutting down"

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(shutting_down)
    # First: the hot path, bound to this app's prepared answers (no app lookup per request).
    app.router.add_get(routes.WIDGET_PATH, routes.widget_handler(representations, metrics))
    app.add_routes(routes.routes)
    app.add_routes(health.routes)
    app.add_routes(openapi.routes)
    app.add_routes(satellite_routes.routes)
    app.add_routes(history_routes.routes)
    app.add_routes(embedding.routes)
    app.router.add_route("*", "/{tail:.*}", not_found)  # last: JSON 404/405 for everything else
    return app
