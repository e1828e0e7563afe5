"""The latest-news box (آخرین اخبار): the newest items of the site's own RSS or Atom feed.

The data is plain text and checked addresses only: a title never carries the feed's markup (the
fragment escapes it like any text), a link is http or https, an image is on the site's own host.
Times are aware instants in Tehran time; the fragment says how long ago each item was published,
as of the moment it is rendered, so it is rendered again each minute (``clock_dependent``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.persian import TEHRAN
from service.widgets.base import QueryError, WidgetSpec
from service.widgets.local_day import local_today

#: Items kept from a fetch, and the most a box may show: a sidebar list, not an archive.
MAX_ITEMS = 20
DEFAULT_ITEMS = 8
#: Two lines of a 300 px column hold about 80 characters; a CMS's runaway title stops well after.
MAX_TITLE = 300
#: Longer addresses are no article link a reader follows (RFC 9110 suggests 8000 at most).
MAX_URL = 2048
#: A line per kind of rejected item at most (the engine logs and counts each).
MAX_PROBLEMS = 10
#: Markup as a browser would read it: a tag's opening, e.g. ``<b>`` or ``</a>`` (not ``x < y``).
TAG = re.compile(r"<[A-Za-z/!?][^<>]*>")
#: C0 and C1 control characters (line breaks included): a title is one line.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
ITEMS_RULE = f"items: must be a whole number from 1 to {MAX_ITEMS}"
SHOW_TIME_RULE = "show_time: must be true or false"


def web_address(value: str) -> str:
    """An absolute http or https address with a host, and nothing a browser would read otherwise."""
    if len(value) > MAX_URL:
        raise ValueError(f"longer than {MAX_URL} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ValueError("contains spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http or https address")
    return value


class NewsItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=MAX_TITLE)
    url: str
    #: When the feed says the item was published (or last updated); None when it does not say,
    #: or says a moment well after the fetch (a CMS's clock or zone is wrong).
    published: datetime | None = None
    #: The item's picture (an enclosure or ``media:content``), only from the site's own host.
    image: str | None = None

    @field_validator("title")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if not value.strip() or CONTROL.search(value) or TAG.search(value):
            raise ValueError("must be one line of plain text")
        return value

    @field_validator("url", "image")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        return None if value is None else web_address(value)

    @field_validator("published")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("published needs a time zone")
        return value


class NewsData(BaseModel):
    #: Newest first when every item is dated; otherwise in the feed's own order.
    items: list[NewsItem] = Field(min_length=1, max_length=MAX_ITEMS)
    #: Items the feed had but that could not be shown, by kind; the engine reports them and does
    #: not store them.
    problems: list[str] = Field(default_factory=list, max_length=MAX_PROBLEMS)


class NewsOptions(BaseModel):
    """``[widgets.news]``: how many items the box shows and whether each says when it appeared."""

    model_config = ConfigDict(extra="forbid")

    items: int = Field(default=DEFAULT_ITEMS, ge=1, le=MAX_ITEMS)
    show_time: bool = True


def parse_query(query: Mapping[str, str], options: BaseModel) -> dict[str, Any]:
    """``items=1..20`` and ``show_time=true|false``; the configured value is no view of its own."""
    assert isinstance(options, NewsOptions)
    view: dict[str, Any] = {}
    if "items" in query:
        raw = query["items"]
        # ASCII and short before int(): "۸" and "²" are digits to isdigit() but not what a URL means.
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 2) or not 1 <= int(raw) <= MAX_ITEMS:
            raise QueryError(ITEMS_RULE)
        if int(raw) != options.items:
            view["items"] = int(raw)
    if "show_time" in query:
        if query["show_time"] not in ("true", "false"):
            raise QueryError(SHOW_TIME_RULE)
        show = query["show_time"] == "true"
        if show != options.show_time:
            view["show_time"] = show
    return view


def select(data: dict[str, Any], view: dict[str, Any], options: BaseModel) -> dict[str, Any]:
    assert isinstance(options, NewsOptions)
    count = view.get("items", options.items)
    items = data["items"]
    return data if len(items) <= count else {**data, "items": items[:count]}


def reconcile(
    new: dict[str, Any], previous: dict[str, Any] | None, options: BaseModel, now: float | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The rejections found while reading the feed are reported, not stored."""
    problems = list(new.get("problems", []))
    return {key: value for key, value in new.items() if key != "problems"}, problems


def today(now: float, options: BaseModel) -> str:
    """Tehran's date at ``now``: an item of the day before reads «دیروز», so the box's answers
    (cache key, ETag) turn at Tehran's midnight."""
    return local_today(now, TEHRAN).isoformat()


NEWS = WidgetSpec(
    name="news",
    title="آخرین اخبار",
    data_model=NewsData,
    default_providers=("feed",),
    # A site's own feed, asked conditionally: most refreshes are a 304 of a few hundred bytes.
    default_refresh_seconds=300,
    # Until an operator names the site's feed there is nothing to show; naming it turns it on.
    enabled_by_default=False,
    enabled_once_configured=True,
    options_model=NewsOptions,
    template="widgets/news.html",
    parse_query=parse_query,
    select=select,
    reconcile=reconcile,
    today=today,
    # «۱۰ دقیقه پیش» turns each minute.
    clock_dependent=True,
)
