"""News feeds dated by the test's clock, and a fake site serving them.

The feed fixtures write their moments as ``{{rss -10m}}`` (RFC 822 in Tehran time, ``+0330``, as
Persian CMSs write pubDate), ``{{gmt -3h}}`` (RFC 822 in GMT) or ``{{atom -2d}}`` (RFC 3339 with
``+03:30``): that long before (``-``) or after (``+``) ``now``, the clock of the service under test.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from aiohttp import web

from service.persian import TEHRAN
from tests.support.fixtures import FIXTURES
from tests.support.upstream import FakeUpstream

#: Where the fake site serves its feed (the common Persian news CMSs' path).
FEED_PATH = "/fa/rss/allnews"
RSS = "feed_rss2.xml"
ATOM = "feed_atom.xml"
QUIRKS = "feed_cms_quirks.xml"
RSS_TYPE = "application/rss+xml; charset=utf-8"

_MOMENT = re.compile(r"\{\{(rss|gmt|atom) ([+-]\d+)([mhd])\}\}")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def moment(now: float, offset: str) -> datetime:
    """``now`` moved by ``-10m``, ``+2d``…, to the whole second, in Tehran time."""
    match = re.fullmatch(r"([+-]\d+)([mhd])", offset)
    assert match is not None, offset
    shift = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    return datetime.fromtimestamp(int(now), TEHRAN) + shift


def feed_text(name: str, now: float) -> str:
    """A feed fixture with its moments written relative to ``now``."""

    def written(match: re.Match[str]) -> str:
        kind, when = match.group(1), moment(now, match.group(2) + match.group(3))
        if kind == "rss":
            return format_datetime(when)
        if kind == "gmt":
            return format_datetime(when.astimezone(UTC), usegmt=True)
        return when.isoformat()

    return _MOMENT.sub(written, (FIXTURES / name).read_text(encoding="utf-8"))


def rss_document(*items: str, link: str = "https://avayefamenin.ir/") -> str:
    """A minimal RSS 2.0 feed around ``items`` (each an ``<item>…</item>``)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>آوای فامنین</title>'
        f"<link>{link}</link><description>اخبار</description>{''.join(items)}</channel></rss>"
    )


def rss_item(title: str, link: str, published: datetime | None = None) -> str:
    date = f"<pubDate>{format_datetime(published)}</pubDate>" if published is not None else ""
    return f"<item><title>{title}</title><link>{link}</link>{date}</item>"


def serve_feed(
    upstream: FakeUpstream,
    body: str | bytes,
    *,
    content_type: str = RSS_TYPE,
    etag: str | None = None,
    path: str = FEED_PATH,
) -> None:
    """``body`` at ``path``; with ``etag``, a request that names it gets 304 Not Modified."""

    async def handler(request: web.Request) -> web.Response:
        if etag is not None and request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        headers = {"Content-Type": content_type}
        if etag is not None:
            headers["ETag"] = etag
        return web.Response(body=body.encode() if isinstance(body, str) else body, headers=headers)

    upstream.on(path, handler)
