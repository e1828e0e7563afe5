"""One widget's refresh: coalesced in-process and across processes, backed off per provider.

This is the engine's heart; providers only fetch. Per refresh, exactly one process (the holder of
the shared lock, kept alive for as long as the fetch runs) walks the provider chain once, skipping
providers that are backing off. Everyone else keeps serving the last good snapshot, stale if need
be, and picks up the new one when it is announced. Nothing a provider returns can crash a refresh:
whatever goes wrong between the upstream's answer and a stored snapshot is that provider's failed
attempt, and the schedule loop survives even the engine's own surprises.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import traceback
from collections.abc import Awaitable
from typing import Any

from pydantic import ValidationError

from cache.base import CacheUnavailable
from providers.base import Provider
from providers.http import (
    NotModified,
    UpstreamClient,
    UpstreamError,
    UpstreamSession,
    printable,
    redact,
)
from service.engine.backoff import RefreshState, backoff_seconds
from service.engine.clock import wait_event
from service.engine.single_flight import SingleFlight
from service.engine.snapshot import Snapshot
from service.engine.store import SnapshotStore
from service.metrics import Metrics
from service.settings import EngineSettings
from service.widget_config import ConfiguredWidget

log = logging.getLogger(__name__)

#: How a problem that stands for several items says so: "3 item(s) dropped: no title".
_ITEMS = re.compile(r"\b(\d+) item\(s\)")
#: The numbers in a problem's text: the same problem with other numbers is the same problem.
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


class WidgetRefresher:
    def __init__(
        self,
        widget: ConfiguredWidget,
        store: SnapshotStore,
        upstream: UpstreamClient,
        settings: EngineSettings,
        metrics: Metrics,
        flight: SingleFlight[Snapshot],
    ) -> None:
        self.widget = widget
        self.name = widget.name
        self.store = store
        self.clock = store.clock
        self.upstream = upstream
        self.settings = settings
        self.metrics = metrics
        self.state = RefreshState()
        self._flight = flight
        self._chain = [p.id for p in widget.providers]
        self._changed = asyncio.Event()
        self._early: dict[float, float] = {}
        #: Set while unexpected engine errors repeat, so they are logged once, and recovery once.
        self._troubled = False
        #: The problems of the last accepted fetch by kind, so each is logged when it starts and
        #: when it ends, never on every refresh it lasts.
        self._problems: dict[str, str] = {}
        store.on_change(self._on_store_change)

    # -- reading -------------------------------------------------------------------------------

    def now(self) -> float:
        return float(self.clock.time())

    def expires_at(self, snapshot: Snapshot) -> float:
        """When this snapshot turns stale: one interval after it was fetched, or the widget's own
        schedule (``WidgetSpec.next_refresh``, e.g. the next local midnight)."""
        hook = self.widget.spec.next_refresh
        if hook is None:
            return snapshot.fetched_at + self.widget.refresh_seconds
        return hook(snapshot.fetched_at, self.widget.options)

    def is_fresh(self, snapshot: Snapshot, now: float) -> bool:
        if self.widget.spec.next_refresh is not None:
            return now < self.expires_at(snapshot)
        return snapshot.age(now) <= self.widget.refresh_seconds

    def status(self, snapshot: Snapshot | None, now: float) -> str:
        """What the envelope and fragment say about the data: fresh, stale or unavailable."""
        if snapshot is None:
            return "unavailable"
        return "fresh" if self.is_fresh(snapshot, now) else "stale"

    def serve_now(self) -> Snapshot | None:
        """The hot path: the in-process snapshot, with a background refresh if it is stale."""
        snapshot = self.store.peek(self.name)
        if snapshot is not None and self.expires_at(snapshot) < self.now():
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
                except Exception:
                    pass  # counted and logged where the refresh ran
            return self.store.peek(self.name)
        if not self.is_fresh(snapshot, self.now()):
            self.trigger()  # stale-while-revalidate: serve now, refresh behind
        return snapshot

    @property
    def retry_at(self) -> float:
        """No refresh before this (shared clock): every provider of the chain is backing off."""
        return self.state.retry_at(self._chain)

    def next_refresh_at(self, snapshot: Snapshot | None) -> float:
        """When this process will next try to refresh (for Cache-Control and the scheduler)."""
        due = self.now() if snapshot is None else self.expires_at(snapshot)
        return max(due, self.retry_at)

    def max_age(self, snapshot: Snapshot | None, now: float) -> float:
        """How long clients may keep this answer: until new data can exist, never past one interval."""
        return min(self.widget.refresh_seconds, max(0.0, self.next_refresh_at(snapshot) - now))

    # -- refreshing ----------------------------------------------------------------------------

    def trigger(self, *, force: bool = False) -> asyncio.Task[Snapshot | None] | None:
        """Start a refresh unless one is running (then join it) or every provider is backing off."""
        running = self._flight.running(self.name)
        if running is not None:
            return running
        if not force and self.now() < self.retry_at:
            return None
        seen = self.store.peek(self.name)
        task = self._flight.start(
            self.name, lambda: self._refresh(seen, force=force), lambda: self._done_elsewhere(seen)
        )
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Snapshot | None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._unexpected(error)

    def _unexpected(self, error: BaseException) -> None:
        """An error of the engine itself (never of a provider): counted, logged once with traceback."""
        self.metrics.engine_errors.labels(self.name).inc()
        if not self._troubled:
            self._troubled = True
            log.error(
                "widget %s: unexpected engine error; the schedule keeps running",
                self.name,
                exc_info=(type(error), error, error.__traceback__),
                extra={"widget": self.name},
            )

    def _untroubled(self) -> None:
        if self._troubled:
            self._troubled = False
            log.info("widget %s: engine errors stopped", self.name, extra={"widget": self.name})

    async def _done_elsewhere(self, seen: Snapshot | None) -> Snapshot | None:
        """Did another process just refresh? Re-checked under the lock, as MapProxy does.

        Also adopts the shared failure counts, so every replica reports the same and none asks a
        provider another one is backing off from.
        """
        shared_state = await self._load_shared_state()
        if shared_state is not None:
            self.state = shared_state
        current = await self.store.load_shared(self.name)
        if current is not None and self.is_fresh(current, self.now()):
            if seen is None or current.fetched_at > seen.fetched_at:
                return current
        return None

    async def _refresh(self, seen: Snapshot | None, *, force: bool) -> Snapshot | None:
        now = self.now()
        ready = [p for p in self.widget.providers if force or self.state.provider(p.id).retry_at <= now]
        if not ready:
            return None  # every provider is backing off (decided by another replica meanwhile)
        held = self.store.local(self.name)
        self.state.last_attempt = now
        failures: list[tuple[Provider, UpstreamError]] = []
        for index, provider in enumerate(ready):
            outcome = await self._try(provider, held, ready[index + 1 :])
            if isinstance(outcome, Snapshot):
                # The shared state first: a replica that hears of the new snapshot reads it next.
                self._succeeded(provider, outcome)
                await self._save_shared_state()
                await self.store.save(outcome)
                self._untroubled()
                return outcome
            self._provider_failed(provider, outcome)
            failures.append((provider, outcome))
        self._failed(failures)
        await self._save_shared_state()
        self._untroubled()
        return None

    async def _try(
        self, provider: Provider, held: Snapshot | None, later: list[Provider]
    ) -> Snapshot | UpstreamError:
        """One provider's attempt (with the later providers filling what it lacks): the snapshot
        to store, or why there is none."""
        session = self._session(provider, held)
        answer = await self._fetch(provider, session)
        if isinstance(answer, NotModified):
            if held is not None:
                # Unchanged upstream: the data we hold is confirmed current, a success.
                self.metrics.not_modified.labels(provider.id).inc()
                return held.renewed(self.now(), session.new_validators)
            return self._count(provider, UpstreamError("status", f"{provider.id}: 304 without data to keep"))
        if isinstance(answer, UpstreamError):
            return answer
        parts = [(provider, answer)]
        parts.extend(await self._fill(parts, later, held.data if held is not None else None))
        try:
            # Everything from the upstream's answer to a stored snapshot is part of the attempt:
            # whatever raises here is this provider's failure, never the refresh's crash.
            spec = self.widget.spec
            combined = spec.combine([(p.id, data) for p, data in parts], self.widget.options)
            fetched_at = self.now()
            stored, problems = spec.reconcile(
                combined, held.data if held is not None else None, self.widget.options, fetched_at
            )
            # What reconcile kept from the held data must pass the same bounds as fresh data.
            stored = spec.data_model.model_validate(stored).model_dump(mode="json")
            attributions = [a for p, _ in parts if (a := p.attribution_text())]
            snapshot = Snapshot.create(
                self.name,
                provider.id,
                fetched_at,
                stored,
                attribution=" · ".join(dict.fromkeys(attributions)) or None,
                validators=session.new_validators,
            )
            snapshot.to_bytes()  # it must be storable, validators included, before it counts
        except ValidationError as exc:
            error = UpstreamError("validation", f"{provider.id}: {exc.error_count()} invalid field(s)")
        except Exception as exc:  # a sanity check tripping over an unexpected shape
            error = self._unexpected_shape(provider, exc)
        else:
            self._report_problems(provider, problems)
            return snapshot
        return self._count(provider, error)

    async def _fill(
        self,
        first: list[tuple[Provider, dict[str, Any]]],
        later: list[Provider],
        previous: dict[str, Any] | None,
    ) -> list[tuple[Provider, dict[str, Any]]]:
        """Ask the later providers of the chain for what the answers so far lack (per-item fallback).

        What "lacks" and how answers merge is the widget's business (``missing``, ``combine``).
        """
        spec, options = self.widget.spec, self.widget.options
        if spec.missing is None:
            return []
        found: list[tuple[Provider, dict[str, Any]]] = []
        for provider in later:
            have = spec.combine([(p.id, data) for p, data in [*first, *found]], options)
            if not spec.missing(have, previous, options):
                break
            # Never with the held snapshot's validators: a 304 here would bring no items.
            answer = await self._fetch(provider, self._session(provider, None))
            if isinstance(answer, NotModified):
                continue
            if isinstance(answer, UpstreamError):
                # Counted as this provider's failure (backoff, /health); the refresh goes on.
                self._provider_failed(provider, answer)
                continue
            self.state.provider(provider.id).succeeded(self.now())
            found.append((provider, answer))
        return found

    def _session(self, provider: Provider, held: Snapshot | None) -> UpstreamSession:
        validators = held.validators if held is not None and held.source == provider.id else {}
        return self.upstream.session(
            timeout_seconds=provider.config.timeout_seconds,
            user_agent=provider.config.user_agent,
            validators=validators,
            pool=provider.id,
            secrets=(provider.config.api_key or "",),
        )

    async def _fetch(
        self, provider: Provider, session: UpstreamSession
    ) -> dict[str, Any] | NotModified | UpstreamError:
        """Fetch and validate against the widget's model: the data, a 304, or a counted failure."""
        started = self.clock.monotonic()
        try:
            model = await asyncio.wait_for(provider.fetch(session), provider.config.timeout_seconds * 2)
            data = self.widget.spec.data_model.model_validate(model.model_dump(mode="json"))
            return data.model_dump(mode="json")
        except NotModified as exc:
            return exc
        except UpstreamError as exc:
            error = exc
        except ValidationError as exc:
            error = UpstreamError("validation", f"{provider.id}: {exc.error_count()} invalid field(s)")
        except TimeoutError:
            error = UpstreamError("timeout", f"{provider.id}: fetch did not finish in time")
        except Exception as exc:  # a parser tripping over an unexpected shape
            error = self._unexpected_shape(provider, exc)
        finally:
            self.metrics.fetch_duration.labels(provider.id).observe(self.clock.monotonic() - started)
        return self._count(provider, error)

    def _unexpected_shape(self, provider: Provider, exc: Exception) -> UpstreamError:
        # Where in the parser, for whoever debugs it; the text may quote upstream bytes, so it
        # is redacted and kept on one line like every upstream text that reaches a log.
        trace = "".join(traceback.format_exception(exc))
        secrets = (provider.config.api_key or "",)
        log.debug(
            "provider %s raised: %s",
            provider.id,
            printable(redact(trace, secrets), limit=4000),
            extra={"widget": self.name, "provider": provider.id, "reason": "parse"},
        )
        return UpstreamError("parse", f"{provider.id}: {type(exc).__name__}")

    def _count(self, provider: Provider, error: UpstreamError) -> UpstreamError:
        self.metrics.upstream_errors.labels(provider.id, error.reason).inc()
        return error

    def _report_problems(self, provider: Provider, problems: list[str]) -> None:
        """Parts of an accepted fetch that were rejected (the rest of the data still lands).

        Counted per item, on every fetch; logged like failures: a warning when a kind of problem
        first appears, a line when it is gone, nothing while it lasts (a broken feed item would
        otherwise log every few minutes for as long as the CMS keeps it).
        """
        self.state.rejected = problems
        self.metrics.rejected_items.labels(self.name).inc(sum(_items_in(p) for p in problems))
        current = {_NUMBER.sub("#", problem): problem for problem in problems}
        extra = {"widget": self.name, "provider": provider.id, "reason": "rejected"}
        for kind, problem in current.items():
            if kind not in self._problems:
                log.warning("widget %s: %s rejected: %s", self.name, provider.id, problem, extra=extra)
        for kind, problem in self._problems.items():
            if kind not in current:
                log.info("widget %s: %s no longer rejects: %s", self.name, provider.id, problem, extra=extra)
        self._problems = current

    def _succeeded(self, provider: Provider, snapshot: Snapshot) -> None:
        mine = self.state.provider(provider.id)
        if mine.consecutive_failures:
            log.info(
                "provider %s recovered after %d failure(s)",
                provider.id,
                mine.consecutive_failures,
                extra={"widget": self.name, "provider": provider.id},
            )
        mine.succeeded(snapshot.fetched_at)
        if self.state.consecutive_failures:
            log.info(
                "widget %s recovered via %s after %d failed refresh(es)",
                self.name,
                provider.id,
                self.state.consecutive_failures,
                extra={"widget": self.name, "provider": provider.id},
            )
        self.state.consecutive_failures = 0
        self.state.last_error = self.state.last_error_reason = None
        self.state.last_success = snapshot.fetched_at

    def _provider_failed(self, provider: Provider, error: UpstreamError) -> None:
        mine = self.state.provider(provider.id)
        delay = backoff_seconds(
            mine.consecutive_failures + 1,
            base=self.settings.retry_base_seconds,
            cap=self.widget.refresh_seconds,
            retry_after=error.retry_after,
            max_retry_after=self.settings.max_retry_after_seconds,
            # A changed page layout will not change back in a minute: no retry storm.
            give_up_early=error.reason == "changed",
        )
        mine.failed(self.now(), error.reason, f"{error.reason}: {error}", delay)
        if mine.consecutive_failures == 1:
            log.warning(
                "provider %s failing (%s): %s",
                provider.id,
                error.reason,
                error,
                extra={"widget": self.name, "provider": provider.id, "reason": error.reason},
            )

    def _failed(self, failures: list[tuple[Provider, UpstreamError]]) -> None:
        summary = "; ".join(f"{p.id}: {e.reason}: {e}" for p, e in failures)
        self.state.consecutive_failures += 1
        self.state.last_error = summary
        self.state.last_error_reason = failures[-1][1].reason if failures else None
        if self.state.consecutive_failures == 1:
            kept = "keeping last good data" if self.store.local(self.name) is not None else "no data yet"
            log.warning(
                "widget %s failing, %s: %s",
                self.name,
                kept,
                summary,
                extra={"widget": self.name, "reason": self.state.last_error_reason},
            )

    async def _load_shared_state(self) -> RefreshState | None:
        if not self.store.cache.shared:
            return None
        try:
            raw = await self.store.cache.get(f"state:{self.name}")
        except CacheUnavailable:
            return None
        if not raw:
            return None
        try:
            state = RefreshState.from_bytes(raw)
        except Exception:  # another release's state, or junk: ours replaces it at the next attempt
            return None
        # Nobody waits longer than we would ever have asked for, whatever the shared state says.
        ceiling = self.now() + max(self.settings.max_retry_after_seconds, self.widget.refresh_seconds)
        for provider in state.providers.values():
            provider.retry_at = min(provider.retry_at, ceiling)
        return state

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
            # Good data newer than our last failed attempt: some process got through, so this
            # widget is no longer failing here either.
            self.state.consecutive_failures = 0
            self.state.last_error = self.state.last_error_reason = None
            self.state.last_success = max(self.state.last_success or 0.0, snapshot.fetched_at)
            if self.store.cache.shared and not self.store.tasks.closed:
                # Which providers failed or recovered there is in the shared state it wrote.
                self.store.tasks.spawn(self._adopt_shared_state(), name=f"reload state {self.name}")
        self._changed.set()

    async def _adopt_shared_state(self) -> None:
        shared_state = await self._load_shared_state()
        # A refresh of this widget running here counts its providers' failures in ``self.state``
        # across awaits: replacing the object now would drop what it has counted so far. Nothing
        # is lost by leaving it: the refresh adopted the shared state under the lock before it
        # began, and writes its own (the newer) when it ends. Checked after the read, which is
        # where a refresh may have started meanwhile.
        if shared_state is not None and self._flight.running(self.name) is None:
            self.state = shared_state

    def _due(self, snapshot: Snapshot | None) -> float:
        if snapshot is None:
            return max(self.now(), self.retry_at)
        if self.widget.spec.next_refresh is not None:
            # A calendar schedule: refreshing early would compute the day that is ending again.
            return max(self.expires_at(snapshot), self.retry_at)
        # Start a little early, by a random share of the interval drawn once per snapshot, so
        # replicas spread out and data rarely turns stale (XFetch's idea, simplified).
        early = self._early.get(snapshot.fetched_at)
        if early is None:
            early = random.uniform(0, self.settings.jitter_fraction) * self.widget.refresh_seconds
            self._early = {snapshot.fetched_at: early}
        return max(snapshot.fetched_at + self.widget.refresh_seconds - early, self.retry_at)

    async def run_schedule(self) -> None:
        """Refresh on the widget's interval, forever; wakes early when another process writes.

        Each step is guarded and the next one is always scheduled, so no error
        can end the loop: it is counted and logged once, like Home Assistant's coordinator.
        """
        idle = min(1.0, max(0.05, self.widget.refresh_seconds / 20))
        while True:
            waited = False
            try:
                waited = await self._schedule_step()
            except asyncio.CancelledError:
                raise  # shutting down: the only way out
            except Exception as exc:
                self._unexpected(exc)
            if not waited:
                # After an attempt or an error: never spin, whatever happened or the clock says.
                await self.clock.sleep(idle)

    async def _schedule_step(self) -> bool:
        """Wait until the next refresh is due (True), or run it (False)."""
        snapshot = self.store.peek(self.name) or await self.store.load(self.name)
        wait = self._due(snapshot) - self.now()
        if wait > 0:
            self._changed.clear()
            await wait_event(self.clock, self._changed, wait)
            return True
        task = self.trigger()
        if task is not None:
            await _quietly(task)
        return False


async def _quietly(awaitable: Awaitable[Snapshot | None]) -> None:
    try:
        await asyncio.shield(awaitable)
    except Exception:
        pass  # counted and logged by the refresh's done-callback


def _items_in(problem: str) -> int:
    """How many items a problem stands for: the number it says, else one."""
    match = _ITEMS.search(problem)
    return int(match.group(1)) if match is not None else 1
