"""Encoded widget bodies and their validators, built once per (snapshot, status, view) and reused.

Each answer is a pure function of its ETag: the tag names the snapshot's data *and* its
``fetched_at``, the status and the view (and, for fragments, the templates and the minute when
the text depends on it). ``last_modified`` is the moment that answer began to be the one served:
the fetch, or later the moment the data turned stale, the reader's day began, or (for a fragment
printing an age or the time of day) the minute began.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from pydantic import BaseModel

from service.engine.clock import Clock, SystemClock
from service.engine.snapshot import Snapshot
from service.metrics import Metrics
from service.web.rendering import Renderer
from service.widgets import WidgetSpec


@dataclass(frozen=True, slots=True)
class Representation:
    body: bytes
    etag: str
    #: Epoch seconds; sent as Last-Modified and compared with If-Modified-Since.
    last_modified: float


def _templates_version() -> str:
    """A digest of the templates, so a release that changes how fragments look changes their tags."""
    digest = hashlib.sha256()

    def walk(folder: Traversable) -> None:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_dir():
                walk(entry)
            else:
                digest.update(entry.name.encode() + b"\0" + entry.read_bytes())

    walk(files("service").joinpath("templates"))
    return digest.hexdigest()[:8]


TEMPLATES_VERSION = _templates_version()


def snapshot_version(snapshot: Snapshot) -> str:
    """The data's digest and the fetch it came from: a new fetch is a new answer, same data or not."""
    return f"{snapshot.digest}.{int(snapshot.fetched_at * 1000):x}"


def day_began(
    today: Callable[[float, BaseModel], str], options: BaseModel, since: float, now: float
) -> float:
    """When the reader's current day began, if after ``since`` (else ``since``), to the second.

    ``today`` is a widget's own idea of the local date, so the zone's rules (DST, a midnight that
    does not exist) are its own; this only bisects for the moment its answer last changed.
    """
    current = today(now, options)
    if since >= now or today(since, options) == current:
        return since
    return _narrow(lambda at: today(at, options) == current, since, now)[1]


def day_ends(today: Callable[[float, BaseModel], str], options: BaseModel, now: float, until: float) -> float:
    """The last second of the reader's current day, if it ends before ``until`` (else ``until``).

    The counterpart of ``day_began`` for ``max-age``: an answer cut at the reader's day must not be
    kept past its midnight, however long its data stays fresh.
    """
    current = today(now, options)
    if until <= now or today(until, options) == current:
        return until
    return _narrow(lambda at: today(at, options) != current, now, until)[0]


def _narrow(turned: Callable[[float], bool], low: float, high: float) -> tuple[float, float]:
    """Bisect to the second where ``turned`` becomes true: false at ``low``, true at ``high``."""
    while high - low > 1:
        middle = (low + high) / 2
        if turned(middle):
            high = middle
        else:
            low = middle
    return low, high


@dataclass(frozen=True)
class Extra:
    """What a fragment's template gets beyond the snapshot (e.g. price history for sparklines),
    prepared once per snapshot; ``tag`` joins the cache key and ETag."""

    tag: str
    context: dict[str, Any]


#: (snapshot, view) → the extra context that view's fragment needs, or None.
Enricher = Callable[[Snapshot, dict[str, Any]], Awaitable[Extra | None]]


def settings_tag(options: BaseModel, base_url: str) -> str:
    """A digest of the settings an answer is shaped by beyond its snapshot and view: a widget's
    options (prices' ``display_unit``, prayer's ``days``) and the public URL pictures link to.
    After a release that changes them, the same snapshot is another answer: another validator."""
    shaped = options.model_dump_json() + "\0" + base_url
    return hashlib.sha256(shaped.encode()).hexdigest()[:6]


def canonical_view(view: dict[str, Any]) -> str:
    """The view exactly, as the key of its rendering: a short digest could be made to collide."""
    return json.dumps(view, sort_keys=True) if view else ""


def view_key(view: dict[str, Any]) -> str:
    """The view's short digest, for ETags (a client only revalidates a URL with that URL's tag)."""
    if not view:
        return "-"
    return hashlib.sha256(canonical_view(view).encode()).hexdigest()[:10]


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
        self._cache: OrderedDict[tuple[Any, ...], Representation] = OrderedDict()
        #: The current second's full answer per request path, kept by the routes (each one's
        #: ``snapshot`` says whose it is).
        self.hot: dict[str, Any] = {}
        #: Per widget: what some views of its fragment add from outside the snapshot.
        self.enrichers: dict[str, Enricher] = {}
        self._settings: dict[str, str] = {}

    async def extra(self, widget: str, snapshot: Snapshot | None, view: dict[str, Any]) -> Extra | None:
        """The extra context a fragment view needs (never for the plain view: the hot path)."""
        enricher = self.enrichers.get(widget)
        if enricher is None or snapshot is None or not view:
            return None
        return await enricher(snapshot, view)

    def forget(self, widget: str) -> None:
        """A new snapshot landed: no prepared answer of the old one may be served again."""
        for key in [k for k, prepared in self.hot.items() if prepared.snapshot.widget == widget]:
            del self.hot[key]

    def _settings_tag(self, spec: WidgetSpec, options: BaseModel | None) -> str:
        """The widget's settings digest, computed once: settings do not change while running."""
        if options is None:  # only the placeholder of a widget without data, never cached
            return ""
        found = self._settings.get(spec.name)
        if found is None:
            base_url = str(self.renderer.env.globals.get("base_url", ""))
            found = self._settings[spec.name] = settings_tag(options, base_url)
        return found

    def _remember(self, key: tuple[Any, ...], value: Representation) -> Representation:
        self._cache[key] = value
        if len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return value

    def json(
        self,
        spec: WidgetSpec,
        snapshot: Snapshot,
        status: str,
        view: dict[str, Any],
        options: BaseModel,
        now: float,
        stale_since: float,
    ) -> Representation:
        """The JSON envelope; ``stale_since`` is when this snapshot turns (or turned) stale."""
        view = _dated(spec, view, now, options)
        key = ("json", spec.name, snapshot.digest, snapshot.fetched_at, status, canonical_view(view))
        found = self._cache.get(key)
        if found is not None:
            return found
        selected = spec.select(snapshot.data, view, options)
        data_json = snapshot.data_json if selected is snapshot.data else _json(selected)
        body = (
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
            + b',"data":'
            + data_json
            + b"}"
        )
        modified = _modified(spec, snapshot, status, options, now, stale_since)
        vkey = view_key(view)
        etag = f'W/"{snapshot_version(snapshot)}-{status}-{vkey}-s{self._settings_tag(spec, options)}"'
        return self._remember(key, Representation(body, etag, modified))

    def html(
        self,
        spec: WidgetSpec,
        snapshot: Snapshot | None,
        status: str,
        view: dict[str, Any],
        now: float,
        options: BaseModel | None = None,
        extra: Extra | None = None,
        stale_since: float | None = None,
    ) -> Representation:
        view = _dated(spec, view, now, options)
        # Stale fragments print their age; one rendering per minute of age is plenty.
        age_bucket = int(snapshot.age(now) // 60) if snapshot is not None and status == "stale" else 0
        version = snapshot_version(snapshot) if snapshot is not None else "none"
        # A fragment that depends on the time of day is rendered again each minute.
        minute = int(now // 60) if spec.clock_dependent else 0
        tag = "" if extra is None else extra.tag
        key = ("html", spec.name, version, status, canonical_view(view), age_bucket, minute, tag)
        found = self._cache.get(key)
        if found is not None:
            return found
        vkey = view_key(view)
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
        modified = now
        if snapshot is not None:
            modified = _modified(spec, snapshot, status, options, now, stale_since or snapshot.fetched_at)
            if status == "stale":
                modified = max(modified, snapshot.fetched_at + age_bucket * 60)
            if spec.clock_dependent:
                modified = max(modified, minute * 60.0)
        settings = self._settings_tag(spec, options)
        etag = f'W/"{version}-{status}-{vkey}{suffix}-h{TEMPLATES_VERSION}{settings}"'
        return self._remember(key, Representation(text.encode(), etag, modified))


def _modified(
    spec: WidgetSpec,
    snapshot: Snapshot,
    status: str,
    options: BaseModel | None,
    now: float,
    stale_since: float,
) -> float:
    """When the answer for this snapshot, status and the reader's day began to be what it is."""
    modified = snapshot.fetched_at
    if status == "stale":
        modified = max(modified, min(stale_since, now))
    if spec.today is not None and options is not None:
        modified = max(modified, day_began(spec.today, options, modified, now))
    return modified
