"""A widget: its data model, options, defaults, template and query parameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueryError(ValueError):
    """A bad query parameter; the message goes back to the client with a 400."""


#: Turns the request's query parameters into a view (a dict passed to serialisers and templates).
QueryParser = Callable[[Mapping[str, str], BaseModel], dict[str, Any]]


#: (new data, last good data or None, widget options) → (data to store, problems found).
#: The last argument is the time of the fetch (shared clock), for widgets that date their parts.
Reconciler = Callable[
    [dict[str, Any], dict[str, Any] | None, BaseModel, float], tuple[dict[str, Any], list[str]]
]


#: (providers' answers in chain order as (provider id, data), widget options) → merged data.
Combiner = Callable[[list[tuple[str, dict[str, Any]]], BaseModel], dict[str, Any]]


def no_query(query: Mapping[str, str], options: BaseModel) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class WidgetSpec:
    name: str
    #: Persian title shown in the gallery and placeholders.
    title: str
    data_model: type[BaseModel]
    default_providers: tuple[str, ...]
    default_refresh_seconds: float
    enabled_by_default: bool = True
    #: Off by default until an operator names an upstream for it (a provider of its chain given a
    #: ``url``), then on without a second setting: a site's own feed has no default address.
    enabled_once_configured: bool = False
    options_model: type[BaseModel] = NoOptions
    template: str = "widgets/generic.html"
    parse_query: QueryParser = no_query
    #: Reshapes the stored data for a view (e.g. a subset of items, the configured number of
    #: days); identity by default. Called with (data, view, widget options).
    select: Callable[[dict[str, Any], dict[str, Any], BaseModel], dict[str, Any]] = field(
        default=lambda data, view, options: data
    )
    #: Sanity checks against the last good data, run before a snapshot is accepted:
    #: returns the data to store and the problems found (logged, counted, shown in /health).
    reconcile: Reconciler = field(default=lambda new, previous, options, now: (new, []))
    #: For a widget made of keyed items that several providers carry (prices): the keys the data
    #: still lacks, or needs a second opinion on, which the next providers of the chain are asked
    #: for. None: the first provider that answers supplies everything. Called with (the answers
    #: combined so far, the last good data or None, options).
    missing: Callable[[dict[str, Any], dict[str, Any] | None, BaseModel], list[str]] | None = None
    #: Merges what the providers of one refresh returned, in chain order, before ``reconcile``:
    #: (list of (provider id, validated data), options) → data. Only the first by default.
    combine: Combiner = field(default=lambda parts, options: parts[0][1])
    #: When data fetched at ``fetched_at`` (epoch seconds, shared clock) must be refreshed, for
    #: widgets tied to the calendar rather than an interval (e.g. the next local midnight). It
    #: replaces ``fetched_at + refresh_seconds`` for freshness, scheduling and ``max-age``; the
    #: refresh interval still caps ``max-age`` and backoff. Called with (fetched_at, options).
    next_refresh: Callable[[float, BaseModel], float] | None = None
    #: The fragment depends on the time of day (e.g. the next prayer highlighted), not only on
    #: the data: it is rendered again each minute and clients may keep it for at most a minute.
    clock_dependent: bool = False
    #: For data cut into days (a forecast): the local date (``YYYY-MM-DD``) a reader is on at
    #: ``now``, given to ``select`` as ``view["today"]`` so no day that has passed is shown, and
    #: part of the cache key and ETag, so answers change at local midnight. Called (now, options).
    today: Callable[[float, BaseModel], str] | None = None
    #: Another widget whose options name this one's place (the air box is for the weather's
    #: place): its providers get that widget's validated options as ``ProviderConfig.place``, so
    #: the place is configured once, in that widget's section.
    place_of: str | None = None
