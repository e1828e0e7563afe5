"""The site's news feed: RSS 2.0 and Atom as CMSs really write them, read into plain titles, checked
links and honest dates; anything that is no feed, or has nothing usable, never replaces good data."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import unquote

import pytest

import providers.feed
from providers.base import ProviderConfig
from providers.feed import FUTURE_TOLERANCE_SECONDS, FeedProvider, plain_title, read_feed
from providers.http import NotModified, UpstreamClient, UpstreamError
from service.persian import TEHRAN
from service.settings import HttpSettings
from service.widgets.news import MAX_ITEMS, MAX_TITLE, NewsData
from tests.providers.test_off_loop import recording
from tests.providers.test_parse_pool import spy_on_pool
from tests.support.clock import FakeClock
from tests.support.feed import (
    ATOM,
    FEED_PATH,
    QUIRKS,
    RSS,
    feed_text,
    moment,
    rss_document,
    rss_item,
    serve_feed,
)

#: A morning in Tehran: the feeds' moments are written relative to it.
NOW = datetime(2026, 11, 26, 10, 30, tzinfo=TEHRAN).timestamp()
SITE = "https://avayefamenin.ir"


async def fetch_feed(
    upstream,
    *,
    now: float = NOW,
    validators=None,
    settings: HttpSettings | None = None,
    path: str = FEED_PATH,
) -> tuple[NewsData, dict]:
    """One fetch of the fake site's feed on a clock at ``now``; the data and the validators kept."""
    provider = FeedProvider(ProviderConfig(url=upstream.url(path), timeout_seconds=30))
    client = UpstreamClient(settings or HttpSettings(), FakeClock(now).time)
    await client.start()
    try:
        session = client.session(timeout_seconds=30, validators=validators, pool=provider.id)
        data = await provider.fetch(session)
        return data, session.new_validators
    finally:
        await client.close()


async def refused(upstream, **kwargs) -> UpstreamError:
    with pytest.raises(UpstreamError) as raised:
        await fetch_feed(upstream, **kwargs)
    return raised.value


def at(offset: str) -> datetime:
    return moment(NOW, offset)


# -- RSS 2.0 -------------------------------------------------------------------------------------


async def test_an_rss_feed_gives_its_items_newest_first_with_tehran_times(upstream):
    serve_feed(upstream, feed_text(RSS, NOW))

    data, _ = await fetch_feed(upstream)

    assert len(data.items) == 10 and data.problems == []
    first = data.items[0]
    assert first.title == "آغاز طرح زمستانه بازدید از گذرگاه‌های برون‌شهری فامنین"
    # pubDate "… 10:30:00 +0330" is that instant, kept in Tehran time.
    assert first.published == at("-0m") and first.published.utcoffset() == timedelta(hours=3, minutes=30)
    assert [item.published for item in data.items] == [
        at(offset) for offset in ("-0m", "-10m", "-45m", "-3h", "-9h", "-26h", "-3d", "-10d", "-12d", "-15d")
    ]


async def test_links_are_plain_ascii_addresses_of_the_articles(upstream):
    serve_feed(upstream, feed_text(RSS, NOW))

    data, _ = await fetch_feed(upstream)

    seed = data.items[7]  # the article of the seed page
    assert seed.title == "زاخارووا: همکاری مسکو با پیونگ‌یانگ در چارچوب قوانین بین‌المللی است"
    assert seed.url.isascii() and seed.url.startswith(f"{SITE}/fa/news/28605/")
    assert unquote(seed.url) == f"{SITE}/fa/news/28605/زاخارووا-همکاری-مسکو-با-پیونگ‌یانگ"


async def test_pictures_come_from_an_enclosure_or_media_content_on_the_site(upstream):
    serve_feed(upstream, feed_text(RSS, NOW))

    data, _ = await fetch_feed(upstream)

    assert data.items[0].image == f"{SITE}/files/fa/news/1405/9/5/28641_512.jpg"  # enclosure
    assert data.items[1].image == f"{SITE}/files/fa/news/1405/9/5/28640_512.jpg"  # media:content
    assert all(item.image is None for item in data.items[2:])


# -- Atom ----------------------------------------------------------------------------------------


async def test_an_atom_feed_resolves_relative_links_and_decodes_html_titles(upstream):
    serve_feed(upstream, feed_text(ATOM, NOW), content_type="application/atom+xml")

    data, _ = await fetch_feed(upstream)

    assert [item.title for item in data.items] == [
        "آسفالت خیابان امام خمینی & میدان شهدا",
        "جمع‌آوری برف معابر اصلی شهر",
        "اطلاعیه قطع آب در محله جهاد",
    ]
    assert [item.url for item in data.items] == [
        "https://famenin.example/news/asphalt-emam-street/",
        "https://famenin.example/news/snow-removal/",
        "https://famenin.example/news/water-cut/",
    ]
    assert [item.image for item in data.items] == [
        "https://famenin.example/wp-content/uploads/2026/11/asphalt.jpg",  # enclosure link, relative
        "https://famenin.example/wp-content/uploads/2026/11/snow-150x150.jpg",  # media:thumbnail
        None,
    ]


async def test_an_atom_entry_is_dated_when_published_else_when_updated(upstream):
    serve_feed(upstream, feed_text(ATOM, NOW), content_type="application/atom+xml")

    data, _ = await fetch_feed(upstream)

    # The first entry was updated after it was published: it still appeared 20 minutes ago.
    assert [item.published for item in data.items] == [at("-20m"), at("-5h"), at("-2d")]


# -- How CMSs really write feeds -----------------------------------------------------------------


async def test_cms_quirks_are_read_as_a_reader_would_expect_even_served_as_html(upstream):
    serve_feed(upstream, feed_text(QUIRKS, NOW), content_type="text/html; charset=iso-8859-1")

    data, _ = await fetch_feed(upstream)

    titles = [item.title for item in data.items]
    assert titles[:5] == [
        # CDATA holding HTML: the markup goes, its text and entities stay as text.
        'فوری: "بازگشایی" مدارس فامنین از شنبه',
        # Entities escaped twice (&amp;#8211;) are decoded as the CMS meant them.
        "بودجه ۱۴۰۶ – شورای شهر & فرمانداری",
        # Escaped script and img tags are no title: the text around them is.
        "هشدار هواشناسی",
        # Arabic ي and ك made Persian, a zero-width space and a line break gone, spaces collapsed.
        "دیدار مردمی فرماندار با اهالی روستای کرزان‌رود",
        "برنامه افتتاح پروژه‌های هفته آینده",
    ]
    runaway = titles[5]
    assert len(runaway) <= MAX_TITLE and runaway.endswith("…") and runaway.startswith("گزارش کامل نشست")
    assert len(titles) == 6  # the javascript: link, the empty title and the repeated link are dropped


async def test_relative_links_are_resolved_against_the_channel_link(upstream):
    serve_feed(upstream, feed_text(QUIRKS, NOW))

    data, _ = await fetch_feed(upstream)

    # "/fa/news/500/…" from the site's root; "news/501" from the channel's <link> (…/fa/), not
    # from the feed's own address (/fa/rss/allnews).
    assert unquote(data.items[0].url) == f"{SITE}/fa/news/500/بازگشایی-مدارس"
    assert data.items[1].url == f"{SITE}/fa/news/501"


async def test_only_pictures_on_the_sites_own_host_or_its_subdomains_are_kept(upstream):
    serve_feed(upstream, feed_text(QUIRKS, NOW))

    data, _ = await fetch_feed(upstream)

    assert data.items[0].image == "https://static.avayefamenin.ir/thumbs/500.jpg"
    assert data.items[1].image is None  # a tracker's pixel on another host


async def test_every_dropped_item_is_reported_by_kind(upstream):
    serve_feed(upstream, feed_text(QUIRKS, NOW))

    data, _ = await fetch_feed(upstream)

    host = "127.0.0.1"  # the feed's own host: where an operator looks
    assert sorted(data.problems) == sorted(
        [
            f"{host}: 1 item(s) dropped: no http or https link",
            f"{host}: 1 item(s) dropped: no title",
            f"{host}: 1 item(s) dropped: the same link as an earlier item",
            f"{host}: 1 item(s) dated in the future shown without a time",
        ]
    )


# -- Dates ---------------------------------------------------------------------------------------


async def test_a_feed_with_an_undated_item_keeps_the_feeds_order(upstream):
    serve_feed(upstream, feed_text(QUIRKS, NOW))

    data, _ = await fetch_feed(upstream)

    assert data.items[2].published is None  # no pubDate at all
    # The CMS's order, though the undated item would sort anywhere and a later one is older.
    assert [unquote(item.url).rsplit("/", 1)[-1] for item in data.items[2:]] == ["502", "503", "504", "506"]


async def test_a_feed_dated_throughout_is_sorted_newest_first(upstream):
    serve_feed(
        upstream,
        rss_document(
            rss_item("دوم", f"{SITE}/2", at("-2h")),
            rss_item("اول", f"{SITE}/1", at("-1h")),
            rss_item("سوم", f"{SITE}/3", at("-3h")),
        ),
    )

    data, _ = await fetch_feed(upstream)

    assert [item.title for item in data.items] == ["اول", "دوم", "سوم"]


async def test_a_date_far_in_the_future_is_dropped_and_a_slightly_early_clock_is_not(upstream):
    slip = at("+3h") + timedelta(minutes=30)  # Tehran's wall time written as +0000
    slightly = datetime.fromtimestamp(NOW + FUTURE_TOLERANCE_SECONDS - 60, TEHRAN)
    serve_feed(
        upstream,
        rss_document(rss_item("زود", f"{SITE}/1", slip), rss_item("کمی زود", f"{SITE}/2", slightly)),
    )

    data, _ = await fetch_feed(upstream)

    assert [(item.title, item.published) for item in data.items] == [("زود", None), ("کمی زود", slightly)]


async def test_a_date_before_any_web_feed_existed_is_no_date(upstream):
    serve_feed(upstream, rss_document(rss_item("صفر", f"{SITE}/1", datetime(1970, 1, 1, tzinfo=TEHRAN))))

    data, _ = await fetch_feed(upstream)

    assert data.items[0].published is None


async def test_at_most_twenty_items_are_kept(upstream):
    items = [rss_item(f"خبر {n}", f"{SITE}/{n}", at(f"-{n}m")) for n in range(1, 40)]
    serve_feed(upstream, rss_document(*items))

    data, _ = await fetch_feed(upstream)

    assert len(data.items) == MAX_ITEMS and data.items[0].title == "خبر 1"


# -- Answers that are no feed never replace good data --------------------------------------------


async def test_an_html_page_is_refused_as_not_a_feed(upstream):
    page = "<!DOCTYPE html><html lang='fa'><head><title>خطا</title></head><body>صفحه پیدا نشد</body></html>"
    serve_feed(upstream, page, content_type="text/html; charset=utf-8")

    error = await refused(upstream)

    assert error.reason == "content_type" and "HTML page, not a feed" in str(error)


@pytest.mark.parametrize("body", ['{"items": []}', "", "\x00\x01\x02 binary"])
async def test_a_body_that_is_no_feed_is_a_parse_error(upstream, body):
    serve_feed(upstream, body, content_type="application/rss+xml")

    error = await refused(upstream)

    assert error.reason == "parse"


async def test_a_feed_without_items_is_refused(upstream):
    serve_feed(upstream, rss_document())

    error = await refused(upstream)

    assert error.reason == "validation" and "no items" in str(error)


async def test_a_feed_with_no_usable_item_is_refused_and_says_why(upstream):
    serve_feed(
        upstream,
        rss_document(
            rss_item("بد", "javascript:alert(1)"), rss_item("", f"{SITE}/2"), link="data:text/html,x"
        ),
    )

    error = await refused(upstream)

    assert error.reason == "validation" and "no http or https link" in str(error) and "no title" in str(error)


async def test_a_feed_larger_than_the_http_limit_is_refused_before_parsing(monkeypatch, upstream):
    submitted = spy_on_pool(monkeypatch)
    items = [rss_item(f"خبر {n}", f"{SITE}/{n}", at(f"-{n}m")) for n in range(1, 400)]
    serve_feed(upstream, rss_document(*items))

    error = await refused(upstream, settings=HttpSettings(max_response_bytes=16 * 1024))

    assert error.reason == "too_large" and submitted == []


# -- Conditional requests ------------------------------------------------------------------------


async def test_an_unchanged_feed_is_a_304_that_keeps_the_data(upstream):
    serve_feed(upstream, feed_text(RSS, NOW), etag='"feed-v1"')

    _, validators = await fetch_feed(upstream)
    with pytest.raises(NotModified):
        await fetch_feed(upstream, validators=validators)

    assert upstream.requests[-1].headers["If-None-Match"] == '"feed-v1"'
    assert upstream.hits[FEED_PATH] == 2


# -- A hostile feed ------------------------------------------------------------------------------


def test_titles_are_one_line_of_plain_text_whatever_the_feed_sends():
    assert plain_title("<p onclick='x()'>خبر <b>مهم</b></p>") == "خبر مهم"
    assert plain_title("&lt;iframe src=//evil&gt;&lt;/iframe&gt;عنوان") == "عنوان"
    assert plain_title("a\u202eb\x07c\r\nd") == "ab c d"  # a bidi override, a bell and a line break
    assert plain_title("x < y و y > z") == "x < y و y > z"  # comparisons are no markup
    assert plain_title("   ") == ""


def test_an_entity_expansion_bomb_and_external_entities_are_never_expanded(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-ON-DISK", encoding="utf-8")
    laughs = "".join(f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, 10))
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY l0 "lol">{laughs}'
        f'<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
        '<rss version="2.0"><channel><title>t</title><link>https://avayefamenin.ir/</link>'
        "<item><title>&l9;</title><link>https://avayefamenin.ir/1</link></item>"
        "<item><title>خبر &xxe;</title><link>https://avayefamenin.ir/2</link></item>"
        "</channel></rss>"
    )

    data = read_feed(body.encode(), f"{SITE}{FEED_PATH}", NOW)

    titles = [item.title for item in data.items]
    assert all(len(title) < 100 and "SECRET" not in title for title in titles)


def test_a_body_naming_a_file_is_read_as_text_never_opened(tmp_path):
    # feedparser opens a string that names a file (or a URL): the body must never be one.
    local = tmp_path / "feed.xml"
    local.write_text(rss_document(rss_item("از دیسک", f"{SITE}/disk")), encoding="utf-8")

    with pytest.raises(UpstreamError) as raised:
        read_feed(str(local).encode(), f"{SITE}{FEED_PATH}", NOW)

    assert raised.value.reason == "parse"


async def test_the_feed_is_parsed_in_a_parsing_process(monkeypatch, upstream):
    in_this_process = recording(monkeypatch, providers.feed, "plain_title")
    submitted = spy_on_pool(monkeypatch)
    serve_feed(upstream, feed_text(RSS, NOW))

    data, _ = await fetch_feed(upstream)

    assert len(data.items) == 10
    assert submitted == [read_feed]
    assert in_this_process == []  # the patched copy here never ran: the worker's own did


# -- Configuration -------------------------------------------------------------------------------


def test_without_a_url_the_provider_cannot_run_and_says_what_to_set():
    provider = FeedProvider(ProviderConfig(url=None, timeout_seconds=15))

    assert provider.unusable_reason() == "provider 'feed' needs url (the site's RSS or Atom feed)"
    assert "url: set it to the site's RSS or Atom feed" in (provider.config_error() or "")


@pytest.mark.parametrize("url", ["ftp://avayefamenin.ir/feed", "avayefamenin.ir/feed", "file:///etc/passwd"])
def test_a_feed_url_that_is_no_web_address_is_a_configuration_error(url):
    provider = FeedProvider(ProviderConfig(url=url, timeout_seconds=15))

    assert (provider.config_error() or "").startswith("url: must be an absolute http or https address")
