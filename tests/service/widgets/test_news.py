"""The latest-news box end to end: the site's feed in, a right-to-left list of plain titles linking
to their articles out, each saying in Persian how long ago it appeared, as of the moment it is read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from bs4 import BeautifulSoup, Tag

from service.engine.snapshot import Snapshot
from service.persian import TEHRAN
from service.registry import default_registry
from service.settings import ConfigError, EngineSettings, Settings
from service.web.app import create_app
from service.web.keys import ENGINE
from service.web.rendering import Renderer
from service.widget_config import configure_widgets
from service.widgets import BUILTIN_WIDGETS
from service.widgets.news import NEWS, NewsOptions
from tests.support.clock import FakeClock
from tests.support.feed import FEED_PATH, RSS, feed_text, rss_document, rss_item, serve_feed
from tests.support.waiting import CEILING_SECONDS

#: A Thursday morning in Tehran (5 Azar 1405): the feed's moments are written relative to it.
NOW = datetime(2026, 11, 26, 10, 30, tzinfo=TEHRAN).timestamp()
SITE = "https://avayefamenin.ir"


def news_settings(upstream, *, feed: dict[str, Any] | None = None, **news: Any) -> Settings:
    """The news box alone, on the fake site's feed; ``news`` is its section."""
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "news"}
    return Settings(
        engine=EngineSettings(background=False, retry_base_seconds=0.05, cold_wait_seconds=CEILING_SECONDS),
        widgets={"news": {"enabled": True, "refresh_seconds": 0.3, **news}, **others},
        providers={
            "feed": feed if feed is not None else {"url": upstream.url(FEED_PATH), "timeout_seconds": 30}
        },
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


async def started(aiohttp_client, upstream, clock, body: str | None = None, **news: Any):
    serve_feed(upstream, body if body is not None else feed_text(RSS, clock.time()))
    return await aiohttp_client(create_app(news_settings(upstream, **news), clock=clock))


async def soup_of(client, path: str = "/widgets/news.html") -> Tag:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    root = BeautifulSoup(await response.text(), "html.parser").find(class_="sw-widget")
    assert isinstance(root, Tag)
    return root


def shown_times(root: Tag) -> list[str]:
    return [time.get_text(strip=True) for time in root.select("li time")]


# -- What the box says ---------------------------------------------------------------------------


async def test_json_has_each_items_title_link_time_and_picture(aiohttp_client, upstream, clock):
    client = await started(aiohttp_client, upstream, clock)

    body = await (await client.get("/widgets/news.json")).json()
    every = await (await client.get("/widgets/news.json?items=20")).json()

    assert body["status"] == "fresh" and body["source"] == "feed" and body["attribution"] is None
    items = body["data"]["items"]
    assert len(items) == 8 and len(every["data"]["items"]) == 10  # the feed's ten, 8 by default
    assert items[0] == {
        "title": "آغاز طرح زمستانه بازدید از گذرگاه‌های برون‌شهری فامنین",
        "url": items[0]["url"],
        "published": "2026-11-26T10:30:00+03:30",
        "image": f"{SITE}/files/fa/news/1405/9/5/28641_512.jpg",
    }
    assert items[0]["url"].startswith(f"{SITE}/fa/news/28641/")
    assert items[2]["image"] is None


async def test_the_fragment_is_a_right_to_left_list_of_links_opening_each_article(
    aiohttp_client, upstream, clock
):
    client = await started(aiohttp_client, upstream, clock)
    data = (await (await client.get("/widgets/news.json")).json())["data"]

    root = await soup_of(client)

    assert root["dir"] == "rtl" and root["lang"] == "fa" and root["data-widget"] == "news"
    assert root.select_one(".sw-title").get_text() == "آخرین اخبار"
    links = root.select("ul.sw-news-list > li > a")
    assert len(links) == 8  # the default number of items
    for link, item in zip(links, data["items"], strict=False):
        assert link["href"] == item["url"] and link.get_text(strip=True) == item["title"]
        assert link["target"] == "_blank" and link["rel"] == ["noopener"]


async def test_each_item_says_how_long_ago_in_persian_then_yesterday_then_its_jalali_day(
    aiohttp_client, upstream, clock
):
    client = await started(aiohttp_client, upstream, clock, items=10)

    root = await soup_of(client)

    assert shown_times(root) == [
        "لحظاتی پیش",
        "۱۰ دقیقه پیش",
        "۴۵ دقیقه پیش",
        "۳ ساعت پیش",
        "۹ ساعت پیش",
        "دیروز",  # 08:30 on Wednesday, 26 hours before Thursday 10:30
        "۲ آذر",  # three days ago
        "۲۵ آبان",
        "۲۳ آبان",
        "۲۰ آبان",
    ]
    first = root.select_one("li time")
    assert first["datetime"] == "2026-11-26T10:30:00+03:30"
    assert first["title"] == "۵ آذر ۱۴۰۵، ساعت ۱۰:۳۰"


async def test_the_times_follow_the_clock_the_box_is_read_by_without_a_new_fetch(
    aiohttp_client, upstream, clock
):
    client = await started(aiohttp_client, upstream, clock, refresh_seconds=86400)
    await soup_of(client)
    await clock.advance(3600)

    an_hour_on = await soup_of(client)
    await clock.advance(datetime(2026, 11, 27, 0, 10, tzinfo=TEHRAN).timestamp() - clock.time())
    root = await soup_of(client)  # past midnight

    assert upstream.hits[FEED_PATH] == 1
    assert shown_times(an_hour_on)[:3] == ["۱ ساعت پیش", "۱ ساعت پیش", "۱ ساعت پیش"]
    # Thursday's items are now hours old; Wednesday's is no longer yesterday but its day.
    assert shown_times(root)[:6] == [
        "۱۳ ساعت پیش",
        "۱۳ ساعت پیش",
        "۱۴ ساعت پیش",
        "۱۶ ساعت پیش",
        "۲۲ ساعت پیش",
        "۴ آذر",
    ]


async def test_a_fragment_may_be_kept_to_the_end_of_its_minute_since_its_times_turn(
    aiohttp_client, upstream, clock
):
    client = await started(aiohttp_client, upstream, clock, refresh_seconds=3600)
    await clock.advance(15)

    fragment = await client.get("/widgets/news.html")
    data = await client.get("/widgets/news.json")

    assert "max-age=45," in fragment.headers["Cache-Control"]
    assert "max-age=3600," in data.headers["Cache-Control"]  # the JSON says no time in words


async def test_an_item_without_a_date_shows_no_time(aiohttp_client, upstream, clock):
    body = rss_document(
        rss_item("بی‌تاریخ", f"{SITE}/1"),
        rss_item("با تاریخ", f"{SITE}/2", datetime.fromtimestamp(NOW - 600, TEHRAN)),
    )
    client = await started(aiohttp_client, upstream, clock, body)

    root = await soup_of(client)

    items = root.select("ul.sw-news-list > li")
    assert [li.select_one("a").get_text(strip=True) for li in items] == ["بی‌تاریخ", "با تاریخ"]
    assert items[0].select_one("time") is None and items[1].select_one("time").get_text() == "۱۰ دقیقه پیش"


# -- Options and query parameters ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "count"), [("items=1", 1), ("items=3", 3), ("items=20", 10), ("items=8", 8)]
)
async def test_items_chooses_how_many_the_box_shows(aiohttp_client, upstream, clock, query, count):
    client = await started(aiohttp_client, upstream, clock)

    root = await soup_of(client, f"/widgets/news.html?{query}")

    assert len(root.select("ul.sw-news-list > li")) == count


@pytest.mark.parametrize("value", ["0", "21", "-1", "abc", "", "۳", "03x", "1e1", "2.0", "100", "٣"])
async def test_items_outside_1_to_20_is_a_bad_request(aiohttp_client, upstream, clock, value):
    client = await started(aiohttp_client, upstream, clock)

    for fmt in ("html", "json"):
        response = await client.get(f"/widgets/news.{fmt}", params={"items": value})
        assert response.status == 400
        assert await response.json() == {"error": "items: must be a whole number from 1 to 20"}


async def test_show_time_false_leaves_the_times_out(aiohttp_client, upstream, clock):
    client = await started(aiohttp_client, upstream, clock)

    root = await soup_of(client, "/widgets/news.html?show_time=false")

    assert root.select("time") == [] and len(root.select("li a")) == 8


@pytest.mark.parametrize("value", ["yes", "1", "True", ""])
async def test_show_time_other_than_true_or_false_is_a_bad_request(aiohttp_client, upstream, clock, value):
    client = await started(aiohttp_client, upstream, clock)

    response = await client.get("/widgets/news.html", params={"show_time": value})

    assert response.status == 400
    assert await response.json() == {"error": "show_time: must be true or false"}


async def test_the_configured_options_are_the_default_view(aiohttp_client, upstream, clock):
    client = await started(aiohttp_client, upstream, clock, items=3, show_time=False)

    plain = await soup_of(client)
    asked = await soup_of(client, "/widgets/news.html?show_time=true&items=5")

    assert len(plain.select("li")) == 3 and plain.select("time") == []
    assert len(asked.select("li")) == 5 and len(asked.select("time")) == 5


@pytest.mark.parametrize(
    ("options", "field"), [({"items": 0}, "items"), ({"items": 21}, "items"), ({"colour": "red"}, "colour")]
)
def test_bad_options_stop_start_up_naming_the_field(upstream, options, field):
    with pytest.raises(ConfigError, match=f"widgets.news.{field}"):
        configure_widgets(news_settings(upstream, **options), default_registry(with_entry_points=False))


# -- Off until the site's feed is named ----------------------------------------------------------


async def test_the_box_is_off_until_an_operator_turns_it_on(aiohttp_client, upstream, clock):
    client = await aiohttp_client(
        create_app(
            Settings(engine=EngineSettings(background=False, cold_wait_seconds=CEILING_SECONDS)), clock=clock
        )
    )

    listed = await (await client.get("/widgets")).json()
    response = await client.get("/widgets/news.json")

    assert "news" not in [widget["name"] for widget in listed["widgets"]]
    assert response.status == 404 and upstream.hits[FEED_PATH] == 0


async def test_naming_the_feed_turns_the_box_on_without_a_second_setting(aiohttp_client, upstream, clock):
    serve_feed(upstream, feed_text(RSS, clock.time()))
    settings = news_settings(upstream)
    settings.widgets["news"].enabled = None  # as when the operator sets only [providers.feed] url

    widgets = configure_widgets(settings, default_registry(with_entry_points=False))
    client = await aiohttp_client(create_app(settings, clock=clock))

    assert widgets["news"].enabled
    assert (await client.get("/widgets/news.json")).status == 200


def test_turned_on_without_the_feeds_url_start_up_stops_saying_what_to_set(upstream):
    with pytest.raises(ConfigError, match=r"providers\.feed: url: set it to the site's RSS or Atom feed"):
        configure_widgets(news_settings(upstream, feed={}), default_registry(with_entry_points=False))


def test_a_feed_url_that_is_not_http_stops_start_up(upstream):
    settings = news_settings(upstream, feed={"url": "file:///etc/passwd"})

    with pytest.raises(ConfigError, match=r"providers\.feed: url: must be an absolute http or https address"):
        configure_widgets(settings, default_registry(with_entry_points=False))


# -- Hostile titles and links --------------------------------------------------------------------


async def test_a_hostile_title_is_printed_as_text_never_as_markup(aiohttp_client, upstream, clock):
    hostile = (
        "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
        "«نقل‌قول» &amp;quot;دوگانه&amp;quot; &amp;amp; 'تک'"
    )
    client = await started(aiohttp_client, upstream, clock, rss_document(rss_item(hostile, f"{SITE}/1")))

    html = await (await client.get("/widgets/news.html")).text()

    assert "<script" not in html.split("</style>", 1)[1] and "<img" not in html and "onerror" not in html
    link = BeautifulSoup(html, "html.parser").select_one("li a")
    assert link.get_text() == "«نقل‌قول» \"دوگانه\" & 'تک'"
    assert "&amp; &#39;تک&#39;" in html


def test_the_template_escapes_whatever_the_stored_data_holds():
    # Data read back from a shared cache is checked by its model; the template escapes anyway.
    item = {
        "title": 'خبر "ویژه" & <مهم>',
        "url": f'{SITE}/a"onmouseover="alert(1)',
        "published": None,
        "image": None,
    }
    snapshot = Snapshot.create("news", "feed", NOW, {"items": [item], "problems": []})

    html = Renderer().fragment(NEWS, snapshot, "fresh", {}, options=NewsOptions(), now=NOW)

    link = BeautifulSoup(html, "html.parser").select_one("li a")
    assert link["href"] == item["url"] and link.get_text() == item["title"]
    assert 'onmouseover="' not in html and "&lt;مهم&gt;" in html


# -- A feed that fails never replaces good data --------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (rss_document(), "no items"),
        ("<!DOCTYPE html><html><body>در دست تعمیر</body></html>", "HTML page"),
        (rss_document(rss_item("کلیک", "javascript:alert(1)")), "no usable item"),
    ],
)
async def test_a_broken_feed_later_keeps_the_last_good_list_stale(
    aiohttp_client, upstream, clock, answer, reason
):
    client = await started(aiohttp_client, upstream, clock)
    first = await (await client.get("/widgets/news.json")).json()
    await clock.advance(0.35)
    serve_feed(upstream, answer)
    refresher = client.app[ENGINE].refreshers["news"]

    await refresher.trigger()

    second = await (await client.get("/widgets/news.json")).json()
    assert upstream.hits[FEED_PATH] == 2
    assert second["status"] == "stale" and second["data"] == first["data"]
    assert reason in (refresher.state.last_error or "")
    root = await soup_of(client)
    assert root["data-status"] == "stale" and len(root.select("li a")) == 8


async def test_dropped_items_are_reported_not_stored(aiohttp_client, upstream, clock):
    body = rss_document(rss_item("خوب", f"{SITE}/1"), rss_item("بد", "javascript:alert(1)"))
    client = await started(aiohttp_client, upstream, clock, body)

    data = (await (await client.get("/widgets/news.json")).json())["data"]

    assert [item["title"] for item in data["items"]] == ["خوب"] and data["problems"] == []
    assert client.app[ENGINE].refreshers["news"].state.rejected == [
        "127.0.0.1: 1 item(s) dropped: no http or https link"
    ]
