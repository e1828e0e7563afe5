"""Price history end to end: accepted prices recorded once per refresh, read back as history.json,
sparklines and a 24-hour change in the fragment, a ticker layout; in memory and in Redis."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from aiohttp import web

from cache.base import CacheUnavailable
from cache.memory import MemoryCache
from cache.redis import RedisCache
from service.engine.clock import SystemClock
from service.history.sparkline import MIN_SPAN
from service.settings import EngineSettings, Settings
from service.web.app import create_app
from service.web.keys import ENGINE
from service.widgets import BUILTIN_WIDGETS
from tests.support.fixtures import fixture_text
from tests.support.prices import html_page, serve_tgju
from tests.support.waiting import CEILING_SECONDS

FIVE_MINUTES = 300.0
HOUR = 3600.0
#: The dollar's price in the currency fixture, and others inside that row's low (1,047,100) and
#: high (1,055,000), so the model accepts them as they are.
FIXTURE_DOLLAR = "1,052,300"


def settings(upstream: Any, *, redis_url: str | None = None, **prices: Any) -> Settings:
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "prices"}
    return Settings(
        redis_url=redis_url,
        engine=EngineSettings(background=False, retry_base_seconds=0.05, cold_wait_seconds=CEILING_SECONDS),
        widgets={"prices": {"refresh_seconds": FIVE_MINUTES, **prices}, **others},
        providers={"tgju": {"url": upstream.url(""), "timeout_seconds": 30}},
    )


def serve_dollar_at(upstream: Any, price: int) -> None:
    """tgju's pages with the dollar at ``price`` Rial (the rest as captured)."""
    serve_tgju(upstream)
    text = fixture_text("tgju_currency.html").replace(FIXTURE_DOLLAR, f"{price:,}")
    upstream.on("/currency", html_page(text))


async def refresh_at(client: Any, clock: Any, upstream: Any, price: int, *, after: float) -> float:
    """Move the clock on, let tgju show the dollar at ``price``, refresh; the snapshot's time."""
    serve_dollar_at(upstream, price)
    await clock.advance(after)
    snapshot = await client.app[ENGINE].refreshers["prices"].trigger()
    assert snapshot is not None
    return float(snapshot.fetched_at)


async def history(client: Any, item: str = "price_dollar_rl", span: str = "1d") -> dict[str, Any]:
    response = await client.get(f"/widgets/prices/history.json?item={item}&range={span}")
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_every_refresh_records_one_point_per_shown_price_in_its_unit(aiohttp_client, upstream, clock):
    serve_dollar_at(upstream, 1_050_000)
    client = await aiohttp_client(create_app(settings(upstream), clock=clock))
    assert (await client.get("/widgets/prices.json")).status == 200
    for price in (1_048_000, 1_054_000, 1_051_000):
        await refresh_at(client, clock, upstream, price, after=FIVE_MINUTES)

    body = await history(client)

    assert [price for _, price in body["points"]] == [1_050_000, 1_048_000, 1_054_000, 1_051_000]
    assert body["unit"] == "IRR" and body["range"] == "1d" and body["resolution"] == "raw"
    assert (body["first"], body["last"], body["min"], body["max"]) == (
        1_050_000,
        1_051_000,
        1_048_000,
        1_054_000,
    )
    times = [at for at, _ in body["points"]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", at) for at in times) and times == sorted(
        times
    )
    ounce = await history(client, "ons")
    assert ounce["unit"] == "USD" and all(isinstance(p, float) for _, p in ounce["points"])


async def test_hourly_and_daily_ranges_keep_the_last_price_of_each_hour_and_day(
    aiohttp_client, upstream, clock
):
    serve_dollar_at(upstream, 1_050_000)
    clock._wall = 1_795_000_000.0 - 1_795_000_000.0 % HOUR + 60  # one minute past an hour
    client = await aiohttp_client(create_app(settings(upstream), clock=clock))
    await client.get("/widgets/prices.json")
    prices = [1_048_000 + 500 * i for i in range(9)]  # every 20 minutes for three hours
    for price in prices:
        await refresh_at(client, clock, upstream, price, after=20 * 60)

    week = await history(client, span="7d")

    assert week["resolution"] == "hourly"
    # Hours: :01 (1,050,000), :21, :41 | :01, :21, :41 | ... the last of each hour is kept.
    assert [p for _, p in week["points"]] == [prices[1], prices[4], prices[7], prices[8]]
    year = await history(client, span="1y")
    assert [p for _, p in year["points"]][-1] == prices[-1] and len(year["points"]) <= 2


async def test_unknown_items_and_ranges_are_short_json_400s(aiohttp_client, upstream, clock):
    serve_tgju(upstream)
    client = await aiohttp_client(
        create_app(settings(upstream, items=["sekee", "price_dollar_rl"]), clock=clock)
    )

    for query in (
        "item=bitcoin&range=1d",
        "item=ons&range=1d",
        "item=sekee&range=2d",
        "item=sekee",
        "range=1d",
    ):
        response = await client.get(f"/widgets/prices/history.json?{query}")
        assert response.status == 400, query
        assert set(await response.json()) == {"error"}
    for query in ("chart=bar", "layout=grid", "chart=", "layout=TICKER"):
        response = await client.get(f"/widgets/prices.html?{query}")
        assert response.status == 400 and "error" in await response.json(), query


async def test_history_answers_carry_an_etag_and_cache_control_like_other_json(
    aiohttp_client, upstream, clock
):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(settings(upstream), clock=clock))
    url = "/widgets/prices/history.json?item=sekee&range=30d"

    first = await client.get(url)
    etag, cache_control = first.headers["ETag"], first.headers["Cache-Control"]

    assert etag.startswith('W/"') and re.search(
        r"max-age=\d+, s-maxage=\d+, stale-while-revalidate", cache_control
    )
    again = await client.get(url, headers={"If-None-Match": etag})
    assert again.status == 304
    other = await client.get("/widgets/prices/history.json?item=sekee&range=1y")
    assert other.headers["ETag"] != etag
    await refresh_at(client, clock, upstream, 1_049_000, after=FIVE_MINUTES)
    assert (await client.get(url, headers={"If-None-Match": etag})).status == 200


async def test_a_sparkline_per_row_with_persian_accessible_text_and_the_24_hour_change(
    aiohttp_client, upstream, clock
):
    serve_dollar_at(upstream, 1_048_000)
    client = await aiohttp_client(create_app(settings(upstream), clock=clock))
    await client.get("/widgets/prices.json")
    for price in (1_049_000, 1_050_000, 1_051_000, 1_053_000, 1_054_000):
        await refresh_at(client, clock, upstream, price, after=5 * HOUR)  # 25 hours in all

    html = await (await client.get("/widgets/prices.html?chart=sparkline")).text()

    rows = re.findall(
        r'<tr data-key="([^"]+)">.*?</tr>\n<tr class="sw-spark-row" data-spark="\1">', html, re.S
    )
    assert html.count("<svg") == len(rows) == 14 and "<script" not in html
    # The item's row, then a row of its own under it with the line and the 24-hour change.
    dollar = re.search(
        r'<tr data-key="price_dollar_rl">.*?</tr>\n<tr class="sw-spark-row".*?</tr>', html, re.S
    )
    assert dollar is not None
    row = dollar.group(0)
    svg = re.search(
        r'<svg class="sw-up"[^>]*role="img" aria-label="([^"]+)">'
        r'<title>([^<]+)</title><polyline points="([^"]+)"',
        row,
    )
    assert svg is not None, row
    label, title, points = svg.groups()
    assert label == title and "دلار آمریکا" in label and "افزایشی" in label
    # In Toman, as the row: the line starts from the price of 24 hours ago (1,048,000 Rial, the
    # last known then) and ends on the price shown.
    assert "از ۱۰۴٬۸۰۰ به ۱۰۵٬۴۰۰" in label and not re.search(r"[0-9]", label)
    assert len(points.split()) == 6 and points.startswith("0.0,")
    # Against the price 24 hours ago (the 1,048,000 of an hour before that, the last one known then):
    # 1,054,000 is +0.57 %.
    change = re.search(r'<span class="sw-change24 sw-up">۲۴ ساعت: <bdi dir="ltr">([^<]+)</bdi></span>', row)
    assert change is not None and change.group(1) == "+۰٫۵۷٪", row
    # tgju's own change for the day stays beside it.
    assert '<bdi dir="ltr">+۰٫۴۵٪</bdi>' in row


async def test_no_sparkline_row_until_the_prices_span_enough_of_the_day_to_draw(
    aiohttp_client, upstream, clock
):
    serve_dollar_at(upstream, 1_050_000)
    client = await aiohttp_client(create_app(settings(upstream), clock=clock))

    # Just deployed: one price per item, nothing to draw and no 24-hour change yet.
    first = await (await client.get("/widgets/prices.html?chart=sparkline")).text()
    # Five minutes on: two prices, both at the right edge of the day's axis, a dot or a tick if drawn.
    await refresh_at(client, clock, upstream, 1_051_000, after=FIVE_MINUTES)
    minutes = await (await client.get("/widgets/prices.html?chart=sparkline")).text()
    # Three hours on: a line an eighth of the row long.
    await refresh_at(client, clock, upstream, 1_052_000, after=MIN_SPAN - FIVE_MINUTES)
    hours = await (await client.get("/widgets/prices.html?chart=sparkline")).text()

    for early in (first, minutes):
        assert '<tr class="sw-spark-row"' not in early and "<svg" not in early
        assert early.count("<tr data-key") == 14
    assert hours.count('<tr class="sw-spark-row"') == hours.count("<svg") == 14


async def test_a_fragment_whose_24_hour_change_moved_on_gets_a_new_etag_though_prices_did_not(
    aiohttp_client, upstream, clock
):
    dollar = {"price": 1_048_000, "etag": '"v1"'}

    def page(name: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            etag = dollar["etag"] if name == "currency" else '"v1"'
            if request.headers.get("If-None-Match") == etag:
                return web.Response(status=304, headers={"ETag": etag})
            html = fixture_text(f"tgju_{name or 'home'}.html")
            if name == "currency":
                html = html.replace(FIXTURE_DOLLAR, f"{dollar['price']:,}")
            return web.Response(text=html, content_type="text/html", headers={"ETag": etag})

        return handler

    for name in ("currency", "gold-chart", "coin", ""):
        upstream.on(f"/{name}", page(name))
    client = await aiohttp_client(create_app(settings(upstream), clock=clock))
    refresher = client.app[ENGINE].refreshers["prices"]
    await client.get("/widgets/prices.json")
    dollar.update(price=1_054_000, etag='"v2"')
    await clock.advance(HOUR)
    await refresher.trigger()
    # Then a quiet market: every page "not modified", the same prices renewed.
    await clock.advance(23.5 * HOUR)
    await refresher.trigger()
    url = "/widgets/prices.html?chart=sparkline&items=price_dollar_rl"
    day_old = await client.get(url)
    assert "+۰٫۵۷٪" in await day_old.text()
    await clock.advance(HOUR)
    await refresher.trigger()

    # A day after the move, the change over 24 hours is nothing; a cached copy must not keep +0.57 %.
    later = await client.get(url, headers={"If-None-Match": day_old.headers["ETag"]})

    assert later.status == 200 and "+۰٫۵۷٪" not in await later.text()


async def test_sparklines_are_prepared_once_per_snapshot_not_per_request(aiohttp_client, upstream, clock):
    class CountingCache(MemoryCache):
        reads = 0

        async def series_range(self, key: str, start: float, end: float) -> list[tuple[float, bytes]]:
            CountingCache.reads += 1
            return await super().series_range(key, start, end)

    serve_tgju(upstream)
    client = await aiohttp_client(
        create_app(settings(upstream), clock=clock, cache=CountingCache(SystemClock()))
    )
    await client.get("/widgets/prices.json")

    views = [
        "chart=sparkline",
        "chart=sparkline&theme=dark",
        "chart=sparkline&items=sekee,ons",
        "chart=sparkline",
    ]
    answers = await asyncio.gather(*(client.get(f"/widgets/prices.html?{q}") for q in views * 5))

    assert {a.status for a in answers} == {200}
    assert CountingCache.reads == 14  # one read per item, for the one snapshot
    await refresh_at(client, clock, upstream, 1_049_000, after=FIVE_MINUTES)
    await client.get("/widgets/prices.html?chart=sparkline")
    assert CountingCache.reads == 28


async def test_the_ticker_is_one_css_only_line_paused_on_hover_and_still_for_reduced_motion(
    aiohttp_client, upstream, clock
):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(settings(upstream), clock=clock))

    html = await (await client.get("/widgets/prices.html?layout=ticker&items=price_dollar_rl,sekee")).text()

    assert "<table" not in html and "<script" not in html
    lists = re.findall(r'<ul class="sw-ticker-items"( aria-hidden="true")?>(.*?)</ul>', html, re.S)
    assert [hidden for hidden, _ in lists] == ["", ' aria-hidden="true"']
    assert lists[0][1] == lists[1][1] and lists[0][1].count("<li data-key") == 2
    assert re.search(r"\.sw-ticker:hover \.sw-ticker-track[^{]*\{animation-play-state:paused\}", html)
    assert re.search(
        r"@media \(prefers-reduced-motion:reduce\)\{[^}]*\}\.sw-prices \.sw-ticker-track\{animation:none\}"
        r"\.sw-prices \.sw-ticker-items\[aria-hidden\]\{display:none\}",
        html,
    )
    assert "۱۰۵٬۲۳۰" in lists[0][1]
    assert 'style="animation-duration:8s"' in html  # two items: the shortest loop allowed


async def test_the_ticker_has_no_title_or_footer_line_of_its_own(aiohttp_client, upstream, clock):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(settings(upstream), clock=clock))

    html = await (await client.get("/widgets/prices.html?layout=ticker&items=price_dollar_rl,sekee")).text()

    # The title stays for screen readers and the page's outline, out of sight.
    assert '<div class="sw-visually-hidden"><h3 class="sw-title">قیمت روز طلا، سکه و ارز</h3></div>' in html
    assert 'class="sw-footer"' not in html
    # What the footer said rides at the end of the line: when, and from where.
    shown = html[html.index('<ul class="sw-ticker-items">') :].split("</ul>")[0]
    meta = shown.split("<li")[-1]
    assert meta.startswith(' class="sw-ticker-meta">') and "به‌روزرسانی: " in meta and "tgju.org" in meta
    # Short names, the full one in a title attribute.
    assert '<span class="sw-ticker-title" title="دلار آمریکا">دلار</span>' in shown
    assert '<span class="sw-ticker-title">سکه امامی</span>' in shown


async def test_a_stale_ticker_says_how_old_its_prices_are_on_its_line(aiohttp_client, upstream, clock):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(settings(upstream), clock=clock))
    await client.get("/widgets/prices.json")
    # tgju stops answering: no refresh brings anything newer for half an hour.
    upstream.on("/currency", html_page("<html><body>maintenance</body></html>"))
    await clock.advance(30 * 60)

    html = await (await client.get("/widgets/prices.html?layout=ticker&items=sekee")).text()

    assert 'data-status="stale"' in html and 'class="sw-footer"' not in html
    meta = html[html.index('<li class="sw-ticker-meta sw-stale">') :].split("</li>")[0]
    assert "(۳۰ دقیقه پیش)" in meta


async def test_the_ticker_says_when_a_price_it_shows_from_an_earlier_fetch_is_from(
    aiohttp_client, upstream, clock
):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(settings(upstream), clock=clock))
    await client.get("/widgets/prices.json")
    # The dollar jumps tenfold: held back until confirmed, its last good price shown meanwhile.
    jumped = (
        fixture_text("tgju_currency.html")
        .replace(FIXTURE_DOLLAR, "10,523,000")
        .replace("<td>1,047,100</td>", "<td>10,471,000</td>")
        .replace("<td>1,055,000</td>", "<td>10,550,000</td>")
    )
    upstream.on("/currency", html_page(jumped))
    await clock.advance(2 * HOUR)
    await client.app[ENGINE].refreshers["prices"].trigger()

    html = await (await client.get("/widgets/prices.html?layout=ticker&items=price_dollar_rl,sekee")).text()

    shown = html[html.index('<ul class="sw-ticker-items">') :].split("</ul>")[0]
    dollar, coin = shown.split("</li>")[:2]
    assert 'data-stale="true"' in dollar and "sw-item-age" in dollar and "ساعت" in dollar
    assert "data-stale" not in coin and "sw-item-age" not in coin
    # On the ticker's one line, not under the price as in the table.
    assert re.search(r"\.sw-ticker \.sw-item-age\{display:inline", html)


async def test_recording_failures_never_fail_a_refresh_and_are_logged_once_and_counted(
    aiohttp_client, upstream, clock, caplog
):
    class NoSeries(MemoryCache):
        async def series_add(self, *args: Any, **kwargs: Any) -> None:
            raise CacheUnavailable("connection refused")

    serve_dollar_at(upstream, 1_050_000)
    client = await aiohttp_client(create_app(settings(upstream), clock=clock, cache=NoSeries(SystemClock())))
    with caplog.at_level(logging.WARNING):
        assert (await client.get("/widgets/prices.json")).status == 200
        await refresh_at(client, clock, upstream, 1_051_000, after=FIVE_MINUTES)

    body = await (await client.get("/widgets/prices.json")).json()
    assert body["status"] == "fresh" and body["data"]["items"][0]["price"] == 1_051_000
    assert len([r for r in caplog.records if "after storing a snapshot failed" in r.message]) == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'sidebar_snapshot_listener_errors_total{widget="prices"} 2.0' in metrics


#: With Redis the shared clock is Redis TIME, re-measured each minute of the local (fake) clock;
#: steps shorter than that move the shared clock with the fake one.
SHORT_REFRESH = 10.0


async def test_two_replicas_on_one_redis_record_one_point_per_refresh(
    aiohttp_client, upstream, clock, redis_server
):
    class CountingRedis(RedisCache):
        adds = 0

        async def series_add(self, *args: Any, **kwargs: Any) -> None:
            CountingRedis.adds += 1
            await super().series_add(*args, **kwargs)

    serve_dollar_at(upstream, 1_050_000)
    shared = settings(upstream, redis_url=redis_server.url, refresh_seconds=SHORT_REFRESH)
    caches = [CountingRedis(redis_server.url), CountingRedis(redis_server.url)]
    a = await aiohttp_client(create_app(shared, clock=clock, cache=caches[0]))
    b = await aiohttp_client(create_app(shared, clock=clock, cache=caches[1]))
    await asyncio.gather(a.get("/widgets/prices.json"), b.get("/widgets/prices.json"))
    for price in (1_051_000, 1_052_000, 1_053_000):
        serve_dollar_at(upstream, price)
        await clock.advance(SHORT_REFRESH + 1)
        await asyncio.gather(*(c.app[ENGINE].refreshers["prices"].trigger() for c in (a, b)))
    for _ in range(100):  # b adopts a's last snapshot (or the other way round)
        if b.app[ENGINE].store.local("prices") == a.app[ENGINE].store.local("prices"):
            break
        await asyncio.sleep(0.01)

    from_a, from_b = await history(a), await history(b)

    assert upstream.hits["/currency"] == 4
    assert [p for _, p in from_a["points"]] == [1_050_000, 1_051_000, 1_052_000, 1_053_000]
    assert from_b["points"] == from_a["points"]
    # Written by one of them per refresh: four refreshes, fourteen items, three tiers.
    assert CountingRedis.adds == 4 * 14 * 3
    for cache in caches:
        await cache.close()


async def test_history_in_redis_outlives_a_restart(aiohttp_client, upstream, clock, redis_server):
    serve_dollar_at(upstream, 1_050_000)
    shared = settings(upstream, redis_url=redis_server.url, refresh_seconds=SHORT_REFRESH)
    first = await aiohttp_client(create_app(shared, clock=clock))
    await first.get("/widgets/prices.json")
    await refresh_at(first, clock, upstream, 1_051_000, after=SHORT_REFRESH + 1)
    await first.close()

    second = await aiohttp_client(create_app(shared, clock=clock))

    assert [p for _, p in (await history(second))["points"]] == [1_050_000, 1_051_000]


def _luminance(colour: str) -> float:
    if len(colour) == 4:  # #fff
        colour = "#" + "".join(c * 2 for c in colour[1:])
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    dark, light = sorted([_luminance(a), _luminance(b)])
    return (light + 0.05) / (dark + 0.05)


async def test_sparkline_and_24_hour_change_colours_meet_text_contrast_on_both_themes(
    aiohttp_client, upstream, clock
):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(settings(upstream), clock=clock))

    html = await (await client.get("/widgets/prices.html?chart=sparkline")).text()

    themes = re.findall(r"\.sw-widget(?:\.sw-theme-dark)?\{(--_fg:[^}]*)\}", html)
    assert len(themes) == 2
    for rule in themes:
        colours = dict(re.findall(r"--_(\w+):var\(--sw-\w+,(#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3})\)", rule))
        for name in ("up", "down", "muted"):
            assert _contrast(colours[name], colours["bg"]) >= 4.5, (name, colours)


async def test_the_embed_page_takes_the_same_options(aiohttp_client, upstream, clock):
    serve_dollar_at(upstream, 1_050_000)
    client = await aiohttp_client(create_app(settings(upstream), clock=clock))
    await client.get("/widgets/prices.json")
    await refresh_at(client, clock, upstream, 1_052_000, after=MIN_SPAN)

    spark = await (await client.get("/embed/prices?chart=sparkline&items=price_dollar_rl")).text()
    ticker = await (await client.get("/embed/prices?layout=ticker")).text()

    assert spark.count("<svg") == 1 and "<polyline" in spark
    assert 'class="sw-ticker"' in ticker and "<table" not in ticker
    assert (await client.get("/embed/prices?chart=pie")).status == 400


async def test_an_unreachable_history_leaves_the_box_whole_and_the_endpoint_503(
    aiohttp_client, upstream, clock
):
    class Unreachable(MemoryCache):
        async def series_range(self, key: str, start: float, end: float) -> list[tuple[float, bytes]]:
            raise CacheUnavailable("connection refused")

    serve_tgju(upstream)
    client = await aiohttp_client(
        create_app(settings(upstream), clock=clock, cache=Unreachable(SystemClock()))
    )

    fragment = await client.get("/widgets/prices.html?chart=sparkline")
    history_answer = await client.get("/widgets/prices/history.json?item=sekee&range=7d")

    html = await fragment.text()
    assert fragment.status == 200 and html.count("<tr data-key") == 14
    assert "<svg" not in html and '<tr class="sw-spark-row"' not in html
    assert history_answer.status == 503 and set(await history_answer.json()) == {"error"}
