"""The site's own news feed (RSS 0.9x–2.0 or Atom), read with feedparser.

Everything in a feed is the CMS's text and may be anything: titles become one line of plain text
(markup and entities decoded, twice-escaped ones too, as CMSs write them), links must be http or
https once resolved against the site, pictures must be on the site's own host, and a date far
ahead of the fetch is no date at all. A body that is no feed, or a feed with nothing usable in
it, is an ``UpstreamError``: the last good list stays.

Text is read in the encoding the answer declares (the Content-Type's charset, the XML
declaration, a byte-order mark; UTF-8 when none), never in one guessed for it: see ``_decoding``.
"""

from __future__ import annotations

import calendar
import codecs
import html
import io
import re
from collections import Counter
from datetime import datetime
from email.message import Message
from typing import TYPE_CHECKING, Any

import feedparser
from bs4 import BeautifulSoup
from pydantic import ValidationError
from yarl import URL

from providers.base import Provider
from providers.http import UpstreamError
from providers.text import clean_title
from service.persian import TEHRAN
from service.widgets.news import (
    CONTROL,
    MAX_ITEMS,
    MAX_PROBLEMS,
    MAX_TITLE,
    TAG,
    NewsData,
    NewsItem,
    web_address,
)

if TYPE_CHECKING:
    from providers.http import UpstreamSession

#: Entries looked at, in feed order: a feed of thousands (a CMS's whole archive) costs no more.
MAX_ENTRIES = 200
#: A CMS clock a little ahead is fine; beyond this a date is wrong (a zone slip: +0000 written for
#: Tehran's time is 3.5 hours ahead), so the item is kept without it, never dated in the future.
FUTURE_TOLERANCE_SECONDS = 15 * 60
#: No web feed was published before RSS 0.90 (1999): an earlier date is a CMS's empty field.
EARLIEST = datetime(1999, 1, 1, tzinfo=TEHRAN).timestamp()
#: Feeds are served as anything (text/html, application/octet-stream): the body decides.
ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
#: A zero-width non-joiner beside a space or an end joins nothing (a CMS editor's leftover).
_STRAY_JOINERS = re.compile("\u200c+(?= |$)|(?<= )\u200c+|^\u200c+")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".avif")
#: The encoding an XML declaration names (read from the first bytes only).
_XML_ENCODING = re.compile(rb"""\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""")
#: Longest first: a UTF-32 mark begins with the UTF-16 one.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
#: What a decoding error leaves in the text: the item whose title has it is dropped.
_DAMAGED = "\ufffd"
#: A body claiming UTF-8 is read as UTF-8 with its bad bytes replaced while they are this share of
#: its non-ASCII bytes at most: a slip here and there. Text in another encoding is nearly all bad.
MAX_DAMAGED_SHARE = 0.01


class FeedProvider(Provider):
    id = "feed"
    widget = "news"
    default_timeout_seconds = 15.0

    def config_error(self) -> str | None:
        if not self.config.url:
            return "url: set it to the site's RSS or Atom feed, e.g. https://example.ir/feed"
        try:
            web_address(self.config.url)
        except ValueError as exc:
            return f"url: {exc}"
        return None

    def unusable_reason(self) -> str | None:
        if not self.config.url:
            return f"provider {self.id!r} needs url (the site's RSS or Atom feed)"
        return None

    async def fetch(self, http: UpstreamSession) -> NewsData:
        response = await http.get(self.config.url or "", headers={"Accept": ACCEPT})
        # feedparser is pure Python over SAX: a feed at the 5 MiB response limit takes about half a
        # second of CPU, which the event loop must never wait on. The parsing process sends back
        # the items only.
        content_type = response.headers.get("Content-Type")
        return await http.parse(read_feed, response.body, str(response.url), http.now(), content_type)


def read_feed(body: bytes, feed_url: str, now: float, content_type: str | None = None) -> NewsData:
    """The usable items of a feed (blocking and picklable: runs in a parsing process).

    ``content_type`` is the answer's Content-Type header (None: it had none).
    """
    host = URL(feed_url).host or "upstream"
    readable, encoding = _decoding(body, content_type, host)
    # A stream, never bytes or str: feedparser opens a string naming a file or URL itself. Told
    # the encoding as a header would, it reads in that one (tries others only if that fails).
    headers = {"content-type": f"application/xml; charset={encoding}"}
    parsed = feedparser.parse(io.BytesIO(readable), sanitize_html=True, response_headers=headers)
    if _codec(parsed.get("encoding")) != _codec(encoding):
        # It could not (a byte-order mark's encoding the body is not in): what it fell back to
        # is a guess, and a guess at Persian text is mojibake.
        raise UpstreamError("parse", f"{host}: the feed is not in the encoding its byte-order mark says")
    if not parsed.get("version"):
        if _looks_like_html(body):
            raise UpstreamError("content_type", f"{host} sent an HTML page, not a feed")
        raise UpstreamError("parse", f"{host} sent no RSS or Atom feed")
    entries = list(parsed.get("entries", []))[:MAX_ENTRIES]
    if not entries:
        raise UpstreamError("validation", f"{host}: the feed has no items")
    site = _address(parsed.get("feed", {}).get("link"), feed_url)
    base = site or feed_url
    own_hosts = {_site_host(feed_url), _site_host(base)}
    items: list[NewsItem] = []
    seen: set[str] = set()
    dropped: Counter[str] = Counter()
    future_dated = 0
    for entry in entries:
        item, problem = _item(entry, base, own_hosts, now)
        if item is None:
            dropped[problem or "unusable"] += 1
        elif item.url in seen:
            dropped["the same link as an earlier item"] += 1
        else:
            seen.add(item.url)
            items.append(item)
            future_dated += problem == "future"
    problems = [f"{host}: {count} item(s) dropped: {why}" for why, count in dropped.most_common()]
    if future_dated:
        problems.append(f"{host}: {future_dated} item(s) dated in the future shown without a time")
    if not items:
        raise UpstreamError("validation", f"{host}: no usable item in the feed ({'; '.join(problems)[:300]})")
    if all(item.published is not None for item in items):
        # Stable: items of the same moment keep the feed's order.
        items.sort(key=lambda item: item.published.timestamp() if item.published else 0.0, reverse=True)
    return NewsData(items=items[:MAX_ITEMS], problems=problems[:MAX_PROBLEMS])


def _item(entry: Any, base: str, own_hosts: set[str], now: float) -> tuple[NewsItem | None, str | None]:
    """The entry as an item, or None and why; ``"future"`` with an item whose date was dropped."""
    title = plain_title(str(entry.get("title") or ""))
    if not title:
        return None, "no title"
    if _DAMAGED in title:
        return None, "bytes in the title that are not UTF-8"
    url = _address(entry.get("link"), base)
    if url is None:
        return None, "no http or https link"
    published, problem = _published(entry, now)
    try:
        item = NewsItem(title=title, url=url, published=published, image=_image(entry, base, own_hosts))
    except ValidationError as exc:
        return None, str(exc.errors()[0]["msg"])[:80]
    return item, problem


def plain_title(raw: str) -> str:
    """One line of plain text, at most ``MAX_TITLE`` characters, from a feed's title.

    Feeds say titles are text or HTML, and CMSs write either in both (CDATA with ``<b>``, entities
    escaped twice: ``&amp;#8211;``); markup read as text is no title a reader wants, so both are
    read as HTML, then decoded once more. Whatever reads as a tag after that is dropped too.
    """
    text = raw
    if "<" in text or "&" in text:
        text = BeautifulSoup(text, "html.parser").get_text()
    text = TAG.sub("", html.unescape(text))
    text = _STRAY_JOINERS.sub("", clean_title(CONTROL.sub(" ", text)))
    if len(text) > MAX_TITLE:
        cut = text[: MAX_TITLE - 1]
        space = cut.rfind(" ")
        text = (cut[:space] if space > MAX_TITLE // 2 else cut).rstrip() + "…"
    return text


def _address(link: object, base: str) -> str | None:
    """``link`` resolved against ``base`` as an encoded http(s) address, or None."""
    if not isinstance(link, str) or not link.strip():
        return None
    try:
        joined = URL(base).join(URL(link.strip()))
        address = str(joined)  # percent-encoded, the host in IDNA: plain ASCII
        return web_address(address) if joined.scheme in ("http", "https") else None
    except ValueError:
        return None


def _site_host(address: str) -> str:
    host = (URL(address).host or "").lower()
    return host.removeprefix("www.")


def _on_site(address: str, own_hosts: set[str]) -> bool:
    host = _site_host(address)
    return any(host == own or host.endswith("." + own) for own in own_hosts if own)


def _image(entry: Any, base: str, own_hosts: set[str]) -> str | None:
    """The first picture of the entry that is on the site's own host (a subdomain counts)."""
    candidates: list[str] = []
    for media in entry.get("media_content") or []:
        if (
            media.get("medium") == "image"
            or str(media.get("type", "")).startswith("image/")
            or (not media.get("type") and str(media.get("url", "")).lower().endswith(_IMAGE_SUFFIXES))
        ):
            candidates.append(media.get("url", ""))
    candidates += [thumbnail.get("url", "") for thumbnail in entry.get("media_thumbnail") or []]
    candidates += [
        link.get("href", "")
        for link in entry.get("links") or []
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/")
    ]
    for candidate in candidates:
        address = _address(candidate, base)
        if address is not None and _on_site(address, own_hosts):
            return address
    return None


def _published(entry: Any, now: float) -> tuple[datetime | None, str | None]:
    """When the entry appeared (its published date, else its updated one), in Tehran time."""
    moment = entry.get("published_parsed") or entry.get("updated_parsed")
    if moment is None:
        return None, None
    try:
        stamp = float(calendar.timegm(moment))
    except (TypeError, ValueError, OverflowError):
        return None, None
    if stamp < EARLIEST:
        return None, None
    if stamp > now + FUTURE_TOLERANCE_SECONDS:
        return None, "future"
    return datetime.fromtimestamp(stamp, TEHRAN), None


def _decoding(body: bytes, content_type: str | None, host: str) -> tuple[bytes, str]:
    """The body to parse and the encoding to read it in, decided here and never guessed.

    Left to itself, feedparser tries the declared encodings, then windows-1252, which decodes
    any bytes at all: one bad byte in a UTF-8 feed (a title cut mid-letter by the CMS) turned
    every Persian title into Latin-1 mojibake, taken for fresh news. Instead:

    - a byte-order mark says it all;
    - a body that is valid UTF-8 is UTF-8, whatever charset the server adds by default (no
      text in a legacy encoding is valid UTF-8 by chance);
    - a body that claims UTF-8 (or claims nothing: XML's default) and has a few bad bytes is UTF-8
      with those bytes replaced: the item hit is dropped (``_item``), the rest reads right;
    - otherwise the first declared encoding that decodes the body, and if none does, an
      ``UpstreamError``: the last good list stays.

    The Content-Type's charset comes first for XML media types (RFC 7303); for anything else a
    feed is served as (text/html, octet-stream…) the body's XML declaration does.
    """
    if body.startswith(codecs.BOM_UTF8):
        body, declared = body.removeprefix(codecs.BOM_UTF8), ["utf-8"]
    else:
        for mark, encoding in _BYTE_ORDER_MARKS:
            if body.startswith(mark):
                return body, encoding
        declared = list(dict.fromkeys(_declared(body, content_type)))
    text = body.decode("utf-8", errors="replace")
    damaged = text.count(_DAMAGED)
    if damaged == 0:
        return body, "utf-8"
    non_ascii = len(body) - len(text.encode("ascii", errors="ignore"))
    if (not declared or "utf-8" in declared) and damaged <= max(1, non_ascii * MAX_DAMAGED_SHARE):
        return text.encode("utf-8"), "utf-8"
    for encoding in declared:
        try:
            body.decode(encoding)
        except UnicodeDecodeError:
            continue
        return body, encoding
    claimed = ", ".join(declared) or "UTF-8, XML's default"
    raise UpstreamError("parse", f"{host}: the feed is not in the encoding it declares ({claimed})")


def _declared(body: bytes, content_type: str | None) -> list[str]:
    """The encodings the answer claims, as codec names (``utf-8``, ``cp1256``…), first first."""
    header = Message()
    header["content-type"] = content_type or ""
    charset = _codec(header.get_param("charset"))
    match = _XML_ENCODING.match(body[:1024])
    declaration = _codec(match.group(1).decode("ascii")) if match is not None else None
    media_type = header.get_content_type()
    xml_media_type = media_type.endswith(("/xml", "+xml"))
    ordered = [charset, declaration] if xml_media_type else [declaration, charset]
    return [encoding for encoding in ordered if encoding is not None]


def _codec(name: object) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return None
    try:
        return codecs.lookup(name.strip()).name
    except LookupError:
        return None


def _looks_like_html(body: bytes) -> bool:
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head
