"""Encoded widget bodies, built once per (snapshot, status, view) and reused by hot requests."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from service.engine.clock import Clock, SystemClock
from service.engine.snapshot import Snapshot
from service.metrics import Metrics
from service.web.rendering import Renderer
from service.widgets import WidgetSpec


@dataclass(frozen=True)
class JsonParts:
    """The envelope split around ``age_seconds``, the one field that changes every second."""

    head: bytes
    tail: bytes
    etag: str


@dataclass(frozen=True)
class HtmlBody:
    body: bytes
    etag: str


@dataclass(frozen=True)
class Extra:
    """What a fragment's template gets beyond the snapshot (e.g. price history for sparklines),
    prepared once per snapshot; ``tag`` joins the cache key and ETag."""

    tag: str
    context: dict[str, Any]


#: (snapshot, view) → the extra context that view's fragment needs, or None.
Enricher = Callable[[Snapshot, dict[str, Any]], Awaitable[Extra | None]]


def view_key(view: dict[str, Any]) -> str:
    if not view:
        return "-"
    return hashlib.sha256(json.dumps(view, sort_keys=True).encode()).hexdigest()[:10]


def _dated(spec: WidgetSpec, view: dict[str, Any], now: float, options: BaseModel | None) -> dict[str, Any]:
    """The view with the reader's local date, for widgets whose data is cut into days."""
    if spec.today is None or options is None:
        return view
    return {**view, "today": spec.today(now, options)}


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class Representations:
    def __init__(
        self,
        renderer: Renderer,
        metrics: Metrics,
        max_entries: int = 512,
        fixed_headers: dict[str, str] | None = None,
    ) -> None:
        self.renderer = renderer
        #: The engine's clock (set when the engine starts): answers expire on shared time.
        self.clock: Clock = SystemClock()
        self.metrics = metrics
        #: Headers every widget answer carries (CSP, CORS when any origin may read).
        self.fixed_headers = fixed_headers or {}
        self._max = max_entries
        self._cache: OrderedDict[tuple[Any, ...], JsonParts | HtmlBody] = OrderedDict()
        #: The current second's full answer per (widget, format), kept by the routes.
        self.hot: dict[tuple[str, str], Any] = {}
        #: Per widget: what some views of its fragment add from outside the snapshot.
        self.enrichers: dict[str, Enricher] = {}

    async def extra(self, widget: str, snapshot: Snapshot | None, view: dict[str, Any]) -> Extra | None:
        """The extra context a fragment view needs (never for the plain view: the hot path)."""
        enricher = self.enrichers.get(widget)
        if enricher is None or snapshot is None or not view:
            return None
        return await enricher(snapshot, view)

    def forget(self, widget: str) -> None:
        """A new snapshot landed: no prepared answer of the old one may be served again."""
        for key in [k for k in self.hot if k[0] == widget]:
            del self.hot[key]

    def _remember(self, key: tuple[Any, ...], value: JsonParts | HtmlBody) -> None:
        self._cache[key] = value
        if len(self._cache) > self._max:
            self._cache.popitem(last=False)

    def json_parts(
        self,
        spec: WidgetSpec,
        snapshot: Snapshot,
        status: str,
        view: dict[str, Any],
        options: BaseModel,
        now: float,
    ) -> JsonParts:
        view = _dated(spec, view, now, options)
        vkey = view_key(view)
        key = ("json", spec.name, snapshot.digest, snapshot.fetched_at, status, vkey)
        found = self._cache.get(key)
        if isinstance(found, JsonParts):
            return found
        selected = spec.select(snapshot.data, view, options)
        data_json = snapshot.data_json if selected is snapshot.data else _json(selected)
        head = (
            b'{"widget":'
            + _json(spec.name)
            + b',"status":'
            + _json(status)
            + b',"source":'
            + _json(snapshot.source)
            + b',"fetched_at":'
            + _json(snapshot.fetched_at_iso)
            + b',"attribution":'
            + _json(snapshot.attribution)
            + b',"age_seconds":'
        )
        tail = b',"data":' + data_json + b"}"
        parts = JsonParts(head, tail, f'W/"{snapshot.digest}-{status}-{vkey}"')
        self._remember(key, parts)
        return parts

    def html(
        self,
        spec: WidgetSpec,
        snapshot: Snapshot | None,
        status: str,
        view: dict[str, Any],
        now: float,
        options: BaseModel | None = None,
        extra: Extra | None = None,
    ) -> HtmlBody:
        view = _dated(spec, view, now, options)
        vkey = view_key(view)
        # Stale fragments print their age; one rendering per minute of age is plenty.
        age_bucket = int(snapshot.age(now) // 60) if snapshot is not None and status == "stale" else 0
        digest = snapshot.digest if snapshot is not None else "none"
        fetched_at = snapshot.fetched_at if snapshot is not None else 0.0
        # A fragment that depends on the time of day is rendered again each minute.
        minute = int(now // 60) if spec.clock_dependent else 0
        tag = "" if extra is None else extra.tag
        key = ("html", spec.name, digest, fetched_at, status, vkey, age_bucket, minute, tag)
        found = self._cache.get(key)
        if isinstance(found, HtmlBody):
            return found
        text = self.renderer.fragment(
            spec,
            snapshot,
            status,
            view,
            options=options,
            now=now,
            extra=None if extra is None else extra.context,
        )
        suffix = f"-{age_bucket}" if status == "stale" else ""
        suffix += f"-{tag}" if tag else ""
        suffix += f"-m{minute}" if spec.clock_dependent else ""
        body = HtmlBody(text.encode(), f'W/"{digest}-{status}-{vkey}{suffix}-h"')
        self._remember(key, body)
        return body
