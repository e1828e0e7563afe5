"""One widget's refresh: coalesced in-process, locked across processes, never losing good data.

This is the engine's heart; providers only fetch. Per refresh, exactly one process (the holder of
the shared lock) walks the provider chain once. Everyone else keeps serving the last good
snapshot, stale if need be, and picks up the new one when it is announced.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable

from pydantic import ValidationError

from cache.base import CacheUnavailable
from providers.base import Provider
from providers.http import NotModified, UpstreamClient, UpstreamError
from service.engine.backoff import RefreshState, backoff_seconds
from service.engine.snapshot import Snapshot
from service.engine.store import SnapshotStore
from service.metrics import Metrics
from service.settings import EngineSettings
from service.widget_config import ConfiguredWidget

log = logging.getLogger(__name__)


class WidgetRefresher:
    def __init__(
        self,
        widget: ConfiguredWidget,
        store: SnapshotStore,
        upstream: UpstreamClient,
        settings: EngineSettings,
        metrics: Metrics,
    ) -> None:
        self.widget = widget
        self.name = widget.name
        self.store = store
        self.upstream = upstream
        self.settings = settings
        self.metrics = metrics
        self.state = RefreshState()
        self._inflight: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._early: dict[float, float] = {}
        store.on_change(self._on_store_change)

    # -- reading -------------------------------------------------------------------------------

    def is_fresh(self, snapshot: Snapshot, now: float) -> bool:
        return snapshot.age(now) <= self.widget.refresh_seconds

    def status(self, snapshot: Snapshot | None, now: float) -> str:
        """What the envelope and fragment say about the data: fresh, stale or unavailable."""
        if snapshot is None:
            return "unavailable"
        return "fresh" if self.is_fresh(snapshot, now) else "stale"

    def serve_now(self) -> Snapshot | None:
        """The hot path: the in-process snapshot, with a background refresh if it is stale."""
        snapshot = self.store.peek(self.name)
        if snapshot is not None and snapshot.fetched_at + self.widget.refresh_seconds < time.time():
            self.trigger()
        return snapshot

    async def current(self) -> Snapshot | None:
        """What a request should serve now. Waits only when there has never been any data."""
        snapshot = self.store.peek(self.name) or await self.store.load(self.name)
        if snapshot is None:
            task = self.trigger()
            if task is not None and self.settings.cold_wait_seconds > 0:
                try:
                    await asyncio.wait_for(asyncio.shield(task), self.settings.cold_wait_seconds)
                except TimeoutError:
                    pass
            return self.store.peek(self.name)
        if not self.is_fresh(snapshot, time.time()):
            self.trigger()  # stale-while-revalidate: serve now, refresh behind
        return snapshot

    def next_refresh_at(self, snapshot: Snapshot | None) -> float:
        """When this process will next try to refresh (for Cache-Control and the scheduler)."""
        due = time.time() if snapshot is None else snapshot.fetched_at + self.widget.refresh_seconds
        return max(due, self.state.retry_at)

    # -- refreshing ----------------------------------------------------------------------------

    def trigger(self, *, force: bool = False) -> asyncio.Task[None] | None:
        """Start a refresh unless one is running (then join it) or we are backing off."""
        if self._inflight is not None:
            return self._inflight
        if not force and time.time() < self.state.retry_at:
            return None
        seen = self.store.peek(self.name)
        task = asyncio.ensure_future(self._refresh(seen))
        self._inflight = task
        task.add_done_callback(self._finished)
        return task

    async def cancel(self) -> None:
        task = self._inflight
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight = None
        if not task.cancelled() and task.exception() is not None:
            log.error("refresh of %s crashed", self.name, exc_info=task.exception())

    async def _refresh(self, seen: Snapshot | None) -> None:
        token = uuid.uuid4().hex
        lock_key = f"lock:{self.name}"
        lock_ttl = self.widget.chain_timeout_seconds + self.settings.lock_margin_seconds
        try:
            locked = await self.store.cache.acquire_lock(lock_key, token, lock_ttl)
            shared_lock = True
        except CacheUnavailable:
            # Degraded: in-process coalescing still holds; other replicas may fetch too.
            locked, shared_lock = True, False
        if not locked:
            await self._await_other_process(seen, lock_ttl)
            return
        try:
            if shared_lock and await self._done_elsewhere(seen):
                return
            await self._walk_chain(self.store.local(self.name))
        finally:
            if shared_lock:
                try:
                    await self.store.cache.release_lock(lock_key, token)
                except CacheUnavailable:
                    pass  # it expires by itself

    async def _done_elsewhere(self, seen: Snapshot | None) -> bool:
        """Re-check under the lock (as MapProxy does): did another process refresh or back off?"""
        current = await self.store.load_shared(self.name)
        now = time.time()
        if current is not None and self.is_fresh(current, now):
            if seen is None or current.fetched_at > seen.fetched_at:
                return True
        shared_state = await self._load_shared_state()
        if shared_state is not None:
            # Replicas share one failure count, so backoff grows the same whoever tried last.
            self.state = shared_state
            if shared_state.retry_at > now:
                return True
        return False

    async def _await_other_process(self, seen: Snapshot | None, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = await self.store.load_shared(self.name)
            if current is not None and (seen is None or current.fetched_at > seen.fetched_at):
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), 0.25)
            except TimeoutError:
                pass
        shared_state = await self._load_shared_state()
        if shared_state is not None:
            self.state = shared_state

    async def _walk_chain(self, held: Snapshot | None) -> None:
        self.state.last_attempt = time.time()
        failures: list[tuple[Provider, UpstreamError]] = []
        for provider in self.widget.providers:
            outcome = await self._try(provider, held)
            if isinstance(outcome, Snapshot):
                await self._succeeded(provider)  # first, so the recovery is logged by this process
                await self.store.save(outcome)
                return
            failures.append((provider, outcome))
        await self._failed(failures)

    async def _try(self, provider: Provider, held: Snapshot | None) -> Snapshot | UpstreamError:
        """One provider's attempt: the snapshot to store, or why there is none."""
        validators = held.validators if held is not None and held.source == provider.id else {}
        session = self.upstream.session(
            timeout_seconds=provider.config.timeout_seconds,
            user_agent=provider.config.user_agent,
            validators=validators,
            pool=provider.id,
            secrets=(provider.config.api_key or "",),
        )
        started = time.perf_counter()
        try:
            model = await asyncio.wait_for(provider.fetch(session), provider.config.timeout_seconds * 2)
            # Everything from the upstream's answer to a stored snapshot is part of the attempt:
            # whatever raises here is this provider's failure, never the refresh's crash.
            data = self.widget.spec.data_model.model_validate(model.model_dump(mode="json"))
            stored, problems = self.widget.spec.reconcile(
                data.model_dump(mode="json"), held.data if held is not None else None, self.widget.options
            )
            snapshot = Snapshot.create(
                self.name,
                provider.id,
                time.time(),
                stored,
                attribution=provider.attribution_text(),
                validators=session.new_validators,
            )
        except NotModified:
            if held is not None:
                return held.renewed(time.time(), session.new_validators)
            error = UpstreamError("status", f"{provider.id}: 304 without data to keep")
        except UpstreamError as exc:
            error = exc
        except ValidationError as exc:
            error = UpstreamError("validation", f"{provider.id}: {exc.error_count()} invalid field(s)")
        except TimeoutError:
            error = UpstreamError("timeout", f"{provider.id}: fetch did not finish in time")
        except Exception as exc:  # a parser or a sanity check tripping over an unexpected shape
            log.debug("provider %s raised", provider.id, exc_info=True)
            error = UpstreamError("parse", f"{provider.id}: {type(exc).__name__}")
        else:
            self._report_problems(provider, problems)
            return snapshot
        finally:
            self.metrics.fetch_duration.labels(provider.id).observe(time.perf_counter() - started)
        self.metrics.upstream_errors.labels(provider.id, error.reason).inc()
        return error

    def _report_problems(self, provider: Provider, problems: list[str]) -> None:
        """Parts of an accepted fetch that were rejected (the rest of the data still lands)."""
        self.state.rejected = problems
        if problems:
            self.metrics.rejected_items.labels(self.name).inc(len(problems))
            for problem in problems:
                log.warning("widget %s: %s rejected: %s", self.name, provider.id, problem)

    async def _succeeded(self, provider: Provider) -> None:
        if self.state.consecutive_failures:
            log.info(
                "widget %s recovered via %s after %d failed refresh(es)",
                self.name,
                provider.id,
                self.state.consecutive_failures,
            )
        self.state.consecutive_failures = 0
        self.state.last_success = time.time()
        self.state.retry_at = 0.0
        await self._save_shared_state()

    async def _failed(self, failures: list[tuple[Provider, UpstreamError]]) -> None:
        summary = "; ".join(f"{p.id}: {e.reason}: {e}" for p, e in failures)
        self.state.consecutive_failures += 1
        self.state.last_error = summary
        self.state.last_error_reason = failures[-1][1].reason if failures else None
        retry_after = max((e.retry_after for _, e in failures if e.retry_after is not None), default=None)
        delay = backoff_seconds(
            self.state.consecutive_failures,
            base=self.settings.retry_base_seconds,
            cap=self.widget.refresh_seconds,
            retry_after=retry_after,
            # A changed page layout will not change back in a minute: no retry storm.
            give_up_early=bool(failures) and all(e.reason == "changed" for _, e in failures),
        )
        self.state.retry_at = time.time() + delay
        if self.state.consecutive_failures == 1:
            log.warning("widget %s failing, keeping last good data: %s", self.name, summary)
        await self._save_shared_state()

    async def _load_shared_state(self) -> RefreshState | None:
        if not self.store.cache.shared:
            return None
        try:
            raw = await self.store.cache.get(f"state:{self.name}")
        except CacheUnavailable:
            return None
        return RefreshState.from_bytes(raw) if raw else None

    async def _save_shared_state(self) -> None:
        if not self.store.cache.shared:
            return
        try:
            await self.store.cache.set(f"state:{self.name}", self.state.to_bytes())
        except CacheUnavailable:
            pass

    # -- scheduling ----------------------------------------------------------------------------

    def _on_store_change(self, widget: str) -> None:
        if widget != self.name:
            return
        snapshot = self.store.local(widget)
        if snapshot is not None and snapshot.fetched_at > (self.state.last_attempt or 0.0):
            # Good data newer than our last failed attempt: some process got through, so this one
            # is no longer failing or backing off either.
            self.state.consecutive_failures = 0
            self.state.retry_at = 0.0
            self.state.last_success = max(self.state.last_success or 0.0, snapshot.fetched_at)
        self._changed.set()

    def _due(self, snapshot: Snapshot | None) -> float:
        if snapshot is None:
            return max(time.time(), self.state.retry_at)
        # Start a little early, by a random share of the interval drawn once per snapshot, so
        # replicas spread out and data rarely turns stale (XFetch's idea, simplified).
        early = self._early.get(snapshot.fetched_at)
        if early is None:
            early = random.uniform(0, self.settings.jitter_fraction) * self.widget.refresh_seconds
            self._early = {snapshot.fetched_at: early}
        return max(snapshot.fetched_at + self.widget.refresh_seconds - early, self.state.retry_at)

    async def run_schedule(self) -> None:
        """Refresh on the widget's interval, forever; wakes early when another process writes."""
        idle = min(1.0, max(0.05, self.widget.refresh_seconds / 20))
        while True:
            snapshot = self.store.peek(self.name) or await self.store.load(self.name)
            wait = self._due(snapshot) - time.time()
            if wait > 0:
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), wait)
                except TimeoutError:
                    pass
                continue
            task = self.trigger()
            if task is not None:
                await _quietly(task)
            await asyncio.sleep(idle)  # never spin, whatever the clock says


async def _quietly(awaitable: Awaitable[None]) -> None:
    try:
        await asyncio.shield(awaitable)
    except Exception:
        pass  # already logged by the task's done-callback
