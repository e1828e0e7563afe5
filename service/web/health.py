"""Probes: /livez (the process), /readyz (can this process serve), /health (everything, health+json)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from cache.base import CacheUnavailable
from service.engine.backoff import ProviderState
from service.engine.snapshot import iso_utc
from service.history.routes import HISTORY
from service.history.series import PriceHistory
from service.web.errors import endpoint
from service.web.keys import ENGINE, METRICS, READINESS, SETTINGS

routes = web.RouteTableDef()

_PING_TIMEOUT = 1.0
#: The policies that never evict a key without an expiry (snapshots, refresh state, price history)
#: and, among keys with one, pick by use rather than by time left or at random: so the tiles go
#: first, never the refresh locks and rate counters just set. Any other policy is a ``warn``.
SAFE_EVICTION_POLICIES = frozenset({"volatile-lru", "volatile-lfu", "noeviction"})


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    try:
        return iso_utc(epoch)
    except (OverflowError, ValueError, OSError):  # not a time: say nothing rather than fail
        return None


async def _cache_reachable(request: web.Request) -> bool:
    store = request.app[ENGINE].store
    try:
        return await asyncio.wait_for(store.ping(), _PING_TIMEOUT)
    except TimeoutError:
        store.available = False
        return False


async def _eviction_policy(request: web.Request) -> str | None:
    try:
        return await asyncio.wait_for(request.app[ENGINE].store.cache.eviction_policy(), _PING_TIMEOUT)
    except (TimeoutError, CacheUnavailable):
        return None  # reachability is the ping's to report


async def _redis_problem(request: web.Request, reachable: bool) -> tuple[str | None, str | None]:
    """(why Redis is ``warn``, its eviction policy): a reachable Redis may still refuse writes (out
    of memory, nothing it may evict) or be set to evict the durable keys along with the caches."""
    store = request.app[ENGINE].store
    if not reachable:
        return store.last_error or "unreachable", None
    if store.cache.refusing_writes:
        return store.cache.refusing_writes, await _eviction_policy(request)
    policy = await _eviction_policy(request)
    if policy is None or policy in SAFE_EVICTION_POLICIES:
        return None, policy
    return f"maxmemory-policy {policy} {_what_it_may_evict(policy)}: use volatile-lru", policy


def _what_it_may_evict(policy: str) -> str:
    if policy.startswith("volatile-"):
        # volatile-ttl takes the shortest-lived first, volatile-random any: both reach the locks.
        return "may evict refresh locks and rate counters before cached tiles"
    return "may evict snapshots and price history"


def _history_check(history: PriceHistory, now: float) -> dict[str, Any]:
    """Recording runs after each refresh and never fails it: a failure is only seen here (and in
    ``sidebar_snapshot_listener_errors_total``), else as charts that stop moving.

    While Redis refuses writes, the snapshot's own write is refused and kept in memory; recording is
    still tried, refused too, and counted in ``consecutiveFailures``. The refusal is the reason
    shown, whatever recording last said.
    """
    recording = history.recording
    why = history.cache.refusing_writes
    if why is None and recording.consecutive_failures:
        why = recording.last_error or "failing"
    check: dict[str, Any] = {
        "componentId": history.widget,
        "componentType": "component",
        "status": "warn" if why else "pass",
        "time": _iso(now),
        "lastSuccess": _iso(recording.last_success),
        "consecutiveFailures": recording.consecutive_failures,
    }
    if why:
        check["output"] = f"price history not recorded: {why}"
    return check


@routes.get("/livez")
@endpoint("/livez")
async def livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "pass"}, headers={"Cache-Control": "no-store"})


@routes.get("/readyz")
@endpoint("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """200 from the end of start-up to the start of shutdown, whatever Redis is doing.

    The cache's state is reported from what the store last saw, without a ping: a probe must
    answer at once, and a Redis outage is /health's ``warn``, not a reason to stop serving.
    """
    readiness = request.app[READINESS]
    body: dict[str, Any] = {"status": "pass" if readiness.ready else "fail"}
    if not readiness.ready:
        body["reason"] = readiness.reason
    engine = request.app.get(ENGINE)
    if engine is not None:
        body["cache"] = "reachable" if engine.store.available else "unreachable"
    return web.json_response(
        body, status=200 if readiness.ready else 503, headers={"Cache-Control": "no-store"}
    )


@routes.get("/health")
@endpoint("/health")
async def health(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    now = engine.clock.time()
    checks: dict[str, list[dict[str, Any]]] = {}
    overall = "pass"
    for name, refresher in engine.refreshers.items():
        snapshot = engine.store.local(name)
        state = refresher.state
        if snapshot is None:
            status = "fail"
        elif not refresher.is_fresh(snapshot, now) or state.consecutive_failures:
            status = "warn"
        else:
            status = "pass"
        check: dict[str, Any] = {
            "componentId": name,
            "componentType": "component",
            "observedValue": round(snapshot.age(now), 1) if snapshot else None,
            "observedUnit": "s",
            "status": status,
            # When observedValue was read (now); the fetch itself is now minus that age.
            "time": _iso(now),
            "source": snapshot.source if snapshot else None,
            "lastSuccess": _iso(state.last_success),
            "consecutiveFailures": state.consecutive_failures,
            "lastError": state.last_error,
        }
        if state.rejected:
            check["rejected"] = state.rejected
        missing = snapshot.data.get("missing") if snapshot is not None else None
        if isinstance(missing, list) and missing:
            # A configured item no provider of the chain supplies: the box lacks it, say which.
            check["missingItems"] = [str(key) for key in missing]
            check["output"] = "missing: " + ", ".join(check["missingItems"])
            if status == "pass":
                status = check["status"] = "warn"
        items = snapshot.data.get("items") if snapshot is not None else None
        stale_items = [
            str(item.get("key"))
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict) and item.get("stale") is True
        ]
        if stale_items:
            # Shown from an earlier fetch (held back until confirmed, or gone upstream).
            check["staleItems"] = stale_items
            if status == "pass":
                status = check["status"] = "warn"
        if refresher.widget.skipped:
            check["skippedProviders"] = list(refresher.widget.skipped)
        if state.last_error and state.consecutive_failures:
            check["output"] = state.last_error
        failing = {
            provider_id: _provider_check(provider)
            for provider_id, provider in state.providers.items()
            if provider.consecutive_failures
        }
        if failing:
            # The chain still delivers, but with less to fall back on: worth an operator's look.
            check["failingProviders"] = failing
            if status == "pass":
                status = check["status"] = "warn"
        checks[f"{name}:dataAge"] = [_present(check)]
        overall = _worse(overall, status)
    history = request.app.get(HISTORY)
    if history is not None:
        history_check = _history_check(history, now)
        checks[f"{history.widget}:historyRecording"] = [_present(history_check)]
        overall = _worse(overall, history_check["status"])
    if request.app[SETTINGS].redis_url is not None:
        reachable = await _cache_reachable(request)
        problem, policy = await _redis_problem(request, reachable)
        redis_check: dict[str, Any] = {
            "componentType": "datastore",
            "observedValue": round(engine.store.response_time * 1000, 2)
            if reachable and engine.store.response_time is not None
            else None,
            "observedUnit": "ms",
            "status": "warn" if problem else "pass",
            "time": _iso(now),
            "evictionPolicy": policy,
            "output": problem,
        }
        checks["redis:responseTime"] = [_present(redis_check)]
        overall = _worse(overall, redis_check["status"])
    body = {"status": overall, "description": "sidebar-widgets", "checks": checks}
    return web.Response(
        status=503 if overall == "fail" else 200,
        body=json.dumps(body, ensure_ascii=False).encode(),
        content_type="application/health+json",
        headers={"Cache-Control": "no-store"},
    )


def _provider_check(provider: ProviderState) -> dict[str, Any]:
    found: dict[str, Any] = {"consecutiveFailures": provider.consecutive_failures}
    if provider.last_error:
        found["lastError"] = provider.last_error
    if provider.retry_at:
        found["retryAt"] = _iso(provider.retry_at)
    return found


def _present(check: dict[str, Any]) -> dict[str, Any]:
    """The draft's keys are optional: one with nothing to say is left out, never sent as null,
    and a unit without the value it is the unit of goes with it."""
    present = {key: value for key, value in check.items() if value is not None}
    if "observedValue" not in present:
        present.pop("observedUnit", None)
    return present


def _worse(a: str, b: str) -> str:
    order = {"pass": 0, "warn": 1, "fail": 2}
    return a if order[a] >= order[b] else b


@routes.get("/metrics")
@endpoint("/metrics")
async def metrics(request: web.Request) -> web.Response:
    # The client library negotiates: the text format (0.0.4) unless the scraper asks for OpenMetrics,
    # and the Content-Type names the version of the format it wrote.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    metrics = request.app[METRICS]
    metrics.publish()
    payload = encode(metrics.registry)
    return web.Response(body=payload, headers={"Content-Type": content_type, "Cache-Control": "no-store"})
