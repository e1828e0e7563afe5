"""A feed's text is read in the encoding the answer declares, never in one guessed for it: a bad
byte costs the item it is in, never every title turned into Latin-1 mojibake."""

from __future__ import annotations

import codecs
import re

import pytest

from providers.http import UpstreamError
from tests.providers.test_feed import NOW, fetch_feed, refused
from tests.support.feed import RSS, RSS_TYPE, feed_text, serve_feed

#: The newest item's title in the RSS fixture, and the same with one letter cut mid-byte as a CMS
#: that truncates by bytes writes it: the first byte of «ر» (0xD8 0xB1) without the second.
TITLE = "آغاز طرح زمستانه بازدید از گذرگاه‌های برون‌شهری فامنین"
CUT = "آغاز ط".encode() + b"\xd8" + "ح زمستانه بازدید از گذرگاه‌های برون‌شهری فامنین".encode()
#: What UTF-8 Persian read as windows-1252 or Latin-1 looks like: «ا» is "Ø§", «ی» is "Û\x8c".
MOJIBAKE = re.compile("[ØÙÛÚ]")


def rss_bytes() -> bytes:
    return feed_text(RSS, NOW).encode()


async def clean_titles(upstream) -> list[str]:
    serve_feed(upstream, rss_bytes())
    data, _ = await fetch_feed(upstream)
    return [item.title for item in data.items]


async def test_one_bad_byte_in_a_title_drops_that_item_and_the_others_read_right(upstream):
    expected = [title for title in await clean_titles(upstream) if title != TITLE]
    body = rss_bytes().replace(TITLE.encode(), CUT)
    serve_feed(upstream, body, content_type="application/rss+xml; charset=utf-8")

    data, _ = await fetch_feed(upstream)

    titles = [item.title for item in data.items]
    assert titles == expected and len(titles) == 9
    assert not any(MOJIBAKE.search(title) for title in titles)
    assert data.problems == ["127.0.0.1: 1 item(s) dropped: bytes in the title that are not UTF-8"]


async def test_a_bad_byte_outside_the_titles_costs_nothing(upstream):
    expected = await clean_titles(upstream)
    description = "رئیس پلیس راه شهرستان".encode()
    body = rss_bytes().replace(description, description[:-1] + b" ", 1)  # «ن» cut in half
    assert body != rss_bytes()
    serve_feed(upstream, body)

    data, _ = await fetch_feed(upstream)

    assert [item.title for item in data.items] == expected and data.problems == []


@pytest.mark.parametrize(
    "content_type",
    [
        "application/rss+xml; charset=windows-1256",  # a server's default charset, not the feed's
        "text/html; charset=iso-8859-1",
        "application/octet-stream",
        "",
    ],
)
async def test_a_feed_that_is_utf8_reads_as_utf8_whatever_charset_the_server_adds(upstream, content_type):
    expected = await clean_titles(upstream)
    serve_feed(upstream, rss_bytes(), content_type=content_type)

    data, _ = await fetch_feed(upstream)

    assert [item.title for item in data.items] == expected


@pytest.mark.parametrize(
    "content_type",
    [
        "application/rss+xml",
        "application/rss+xml; charset=windows-1256",
        # A server claiming UTF-8 for every answer; the document knows better.
        "application/rss+xml; charset=utf-8",
        "text/html; charset=iso-8859-1",
    ],
)
async def test_a_windows_1256_feed_reads_in_the_encoding_its_declaration_names(upstream, content_type):
    expected = await clean_titles(upstream)
    # Persian CMSs of the 2000s: Arabic code page, the letters it lacks as character references.
    text = feed_text(RSS, NOW).replace('encoding="UTF-8"', 'encoding="windows-1256"')
    assert 'encoding="windows-1256"' in text
    serve_feed(upstream, text.encode("cp1256", errors="xmlcharrefreplace"), content_type=content_type)

    data, _ = await fetch_feed(upstream)

    assert [item.title for item in data.items] == expected


async def test_a_feed_not_in_the_utf8_it_declares_is_refused_not_read_as_mojibake(upstream):
    body = feed_text(RSS, NOW).encode("cp1256", errors="xmlcharrefreplace")  # still says UTF-8

    serve_feed(upstream, body, content_type="application/rss+xml; charset=utf-8")
    error = await refused(upstream)

    assert isinstance(error, UpstreamError) and error.reason == "parse"
    assert "not in the encoding it declares (utf-8)" in str(error)


async def test_a_utf16_feed_with_its_byte_order_mark_is_read(upstream):
    expected = await clean_titles(upstream)
    text = feed_text(RSS, NOW).replace('encoding="UTF-8"', 'encoding="UTF-16"')
    serve_feed(upstream, codecs.BOM_UTF16_LE + text.encode("utf-16-le"), content_type=RSS_TYPE)

    data, _ = await fetch_feed(upstream)

    assert [item.title for item in data.items] == expected


async def test_a_feed_broken_against_its_byte_order_mark_is_refused_not_guessed(upstream):
    text = feed_text(RSS, NOW).replace('encoding="UTF-8"', 'encoding="UTF-16"')
    body = codecs.BOM_UTF16_LE + text.encode("utf-16-le") + b"\x00\xd8"  # a lone surrogate at the end

    serve_feed(upstream, body)
    error = await refused(upstream)

    assert error.reason == "parse" and "byte-order mark" in str(error)
