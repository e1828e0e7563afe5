"""tgju.org market pages: parsed from their real structure, in Rial, with every trap of the page."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from aiohttp import web

from providers.http import UpstreamError
from providers.tgju import TgjuProvider, parse_info_bar, parse_page
from service.persian import TEHRAN
from service.web.app import create_app
from service.web.keys import ENGINE
from service.widgets.prices import DEFAULT_ITEMS
from tests.service.widgets.test_prices import prices_settings
from tests.support.fixtures import fixture_text
from tests.support.prices import fetch_once, html_page, serve_tgju

#: A morning in Tehran after the fixtures' clock times (10:09–10:15).
NOW = datetime(2026, 11, 26, 10, 30, tzinfo=TEHRAN)


def by_key(data):
    return {item.key: item for item in data.items}


async def test_reads_every_default_item_in_rial(upstream):
    serve_tgju(upstream)

    data = await fetch_once(TgjuProvider, upstream)

    items = by_key(data)
    assert set(items) == set(DEFAULT_ITEMS)
    # The fixture's numbers are Rial: a dollar at 1,052,300 Rial is 105,230 Toman.
    assert items["price_dollar_rl"].price == 1_052_300
    assert items["price_dollar_rl"].unit == "IRR"
    assert items["sekee"].price == 1_066_500_000
    assert items["mesghal"].price == 465_300_000
    assert (items["geram18"].low, items["geram18"].high) == (106_700_000, 107_500_000)
    # None of the market pages carries the ounce: it comes from the home page's info bar,
    # with its cents and its sign from the entry's class.
    assert items["ons"].unit == "USD" and items["ons"].price == 4197.25
    assert (items["ons"].change, items["ons"].direction, items["ons"].change_percent) == (
        -7.99,
        "down",
        -0.19,
    )
    assert data.problems == []


async def test_the_market_pages_alone_lack_the_ounce_and_bring_everything_else(upstream):
    serve_tgju(upstream, home=False)

    data = await fetch_once(TgjuProvider, upstream)

    assert set(by_key(data)) == set(DEFAULT_ITEMS) - {"ons"}
    assert any(problem.startswith("/: ") for problem in data.problems)  # the home page's 404


def test_the_info_bar_is_read_as_one_more_page_and_the_market_rows_win():
    items, problems = parse_info_bar(
        fixture_text("tgju_home.html"), {"ons", "price_dollar_rl", "sekee", "mesghal", "gc30"}
    )
    assert problems == []
    assert items["ons"].price == 4197.25 and items["ons"].low is None and items["ons"].updated_at is None
    assert (items["sekee"].price, items["sekee"].change, items["sekee"].direction) == (
        1_302_800_000,
        29_850_000,
        "up",
    )
    assert items["gc30"].unit == "IRR"  # only read when configured; the stock index is no default


async def test_change_sign_and_direction_come_from_the_span_class(upstream):
    serve_tgju(upstream)
    items = by_key(await fetch_once(TgjuProvider, upstream))

    up, down, flat = items["price_dollar_rl"], items["price_eur"], items["nim"]
    assert (up.direction, up.change, up.change_percent) == ("up", 4_710, 0.45)
    assert (down.direction, down.change, down.change_percent) == ("down", -2_590, -0.21)
    assert (flat.direction, flat.change, flat.change_percent) == ("flat", 0, 0.0)


async def test_coin_rows_with_empty_class_cells_are_read(upstream):
    serve_tgju(upstream)
    items = by_key(await fetch_once(TgjuProvider, upstream, items=["sekee", "sekeb", "rob"]))
    assert [items[k].price for k in ("sekee", "sekeb", "rob")] == [1_066_500_000, 1_012_000_000, 322_500_000]


def test_persian_digit_clock_times_are_today_in_tehran_and_a_jalali_day_is_kept_as_that_day():
    items, problems = parse_page(fixture_text("tgju_coin.html"), {"sekee", "gerami"}, page="coin", now=NOW)
    assert items["sekee"].updated_at == datetime(2026, 11, 26, 10, 9, 12, tzinfo=TEHRAN)
    assert items["sekee"].updated_at.isoformat() == "2026-11-26T10:09:12+03:30"
    assert items["sekee"].updated_on_jalali is None
    # "۲۴ مرداد": not traded today, only a day and no time; NOW is 5 Azar 1405.
    assert (items["gerami"].updated_at, items["gerami"].updated_on_jalali) == (None, "1405-05-24")
    assert problems == []


def coin_page_with_gerami_on(day: str) -> str:
    return fixture_text("tgju_coin.html").replace("۲۴ مرداد", day)


@pytest.mark.parametrize(
    ("cell", "on"),
    [
        ("۵ آذر", "1405-09-05"),  # today's date: a day-only cell names no later day
        ("۲۹ بهمن", "1404-11-29"),  # later in the year than today: last year's
        ("۳۰ اسفند", "1403-12-30"),  # the last 30 Esfand (1404 and 1405 are common years)
        ("24 مرداد", "1405-05-24"),  # ASCII digits
        ("۲۴  مرداد‏", "1405-05-24"),  # doubled space, a direction mark
        ("۹ دي", "1404-10-09"),  # the Arabic yeh
    ],
)
def test_a_day_without_a_year_is_the_latest_such_day_not_after_today(cell, on):
    items, problems = parse_page(coin_page_with_gerami_on(cell), {"gerami"}, page="coin", now=NOW)
    assert items["gerami"].updated_on_jalali == on and items["gerami"].updated_at is None
    assert problems == []


def test_a_time_cell_that_is_neither_a_time_nor_a_day_leaves_both_unknown():
    items, problems = parse_page(coin_page_with_gerami_on("—"), {"gerami"}, page="coin", now=NOW)
    assert (items["gerami"].updated_at, items["gerami"].updated_on_jalali) == (None, None)
    assert problems == []


def test_a_day_the_calendar_does_not_have_is_a_problem_like_an_impossible_time():
    items, problems = parse_page(coin_page_with_gerami_on("۳۲ مرداد"), {"gerami"}, page="coin", now=NOW)
    assert "gerami" not in items and problems[0].startswith("gerami: impossible day")


def test_a_clock_time_ahead_of_now_was_yesterday():
    just_after_midnight = datetime(2026, 11, 26, 0, 5, tzinfo=TEHRAN)
    items, _ = parse_page(fixture_text("tgju_coin.html"), {"sekee"}, page="coin", now=just_after_midnight)
    assert items["sekee"].updated_at == datetime(2026, 11, 25, 10, 9, 12, tzinfo=TEHRAN)


def test_columns_are_found_by_caption_whatever_their_order():
    items, problems = parse_page(
        fixture_text("tgju_currency_reordered.html"),
        {"price_dollar_rl", "price_eur"},
        page="currency",
        now=NOW,
    )
    dollar = items["price_dollar_rl"]
    # Persian digits, ٬ separators and a zero-width space in the price cell; an extra volume column.
    assert (dollar.price, dollar.low, dollar.high) == (1_052_300, 1_047_100, 1_055_000)
    assert (dollar.change, dollar.change_percent, dollar.direction) == (4_710, 0.45, "up")
    assert items["price_eur"].change == -2_590
    assert problems == []


def test_a_row_breaking_its_own_range_is_a_problem_not_an_item():
    html = fixture_text("tgju_currency.html").replace("<td>1,047,100</td>", "<td>1,100,000</td>")
    items, problems = parse_page(html, {"price_dollar_rl", "price_eur"}, page="currency", now=NOW)
    assert "price_dollar_rl" not in items
    assert "price_eur" in items
    assert problems and problems[0].startswith("price_dollar_rl: ")


def test_a_page_without_its_table_is_an_upstream_change():
    with pytest.raises(UpstreamError) as caught:
        parse_page("<html><body><p>در دست تعمیر</p></body></html>", {"sekee"}, page="coin", now=NOW)
    assert caught.value.reason == "changed"


async def test_one_page_failing_keeps_the_items_of_the_others(upstream):
    serve_tgju(upstream, home=False)
    upstream.fail("/coin", 500)

    data = await fetch_once(TgjuProvider, upstream)

    items = by_key(data)
    assert "price_dollar_rl" in items and "geram18" in items
    assert "sekee" not in items
    assert any(p.startswith("/coin: status") for p in data.problems)


async def test_the_info_bar_fills_a_failed_page_but_not_a_rejected_row(upstream):
    serve_tgju(upstream)
    upstream.fail("/coin", 500)
    upstream.on("/currency", html_page(fixture_text("tgju_currency.html").replace("1,052,300", "1e400")))

    items = by_key(await fetch_once(TgjuProvider, upstream))

    assert items["sekee"].price == 1_302_800_000 and items["sekee"].low is None  # the bar's copy
    assert "price_dollar_rl" not in items  # rejected on /currency: reported, not papered over


async def test_a_slow_page_times_out_without_losing_the_others(upstream):
    serve_tgju(upstream, home=False)
    answer = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        # Later than any timeout: the other pages get long enough to answer on a busy machine.
        await asyncio.wait_for(answer.wait(), 60)
        return web.Response(text="late")

    upstream.on("/gold-chart", slow)
    try:
        data = await fetch_once(TgjuProvider, upstream, timeout=3)
    finally:
        answer.set()
    assert "geram18" not in by_key(data) and "price_eur" in by_key(data)
    assert any(p.startswith("/gold-chart: timeout") for p in data.problems)


async def test_every_page_failing_is_a_failure_naming_the_transient_cause(upstream):
    upstream.fail("/currency", 502)
    upstream.fail("/gold-chart", 502)

    async def maintenance(request: web.Request) -> web.Response:
        return web.Response(text="<html><body>maintenance</body></html>", content_type="text/html")

    upstream.on("/coin", maintenance)
    with pytest.raises(UpstreamError) as caught:
        await fetch_once(TgjuProvider, upstream)
    assert caught.value.reason == "status"


async def test_a_layout_change_on_every_page_is_reported_as_changed(upstream):
    async def maintenance(request: web.Request) -> web.Response:
        return web.Response(text="<html><body>new design</body></html>", content_type="text/html")

    for page in ("/currency", "/gold-chart", "/coin", "/"):
        upstream.on(page, maintenance)
    with pytest.raises(UpstreamError) as caught:
        await fetch_once(TgjuProvider, upstream)
    assert caught.value.reason == "changed"


async def test_sends_a_browser_user_agent_and_persian_accept_language(upstream):
    serve_tgju(upstream)
    await fetch_once(TgjuProvider, upstream)
    request = upstream.requests[0]
    assert request.headers["User-Agent"].startswith("Mozilla/5.0")
    assert request.headers["Accept-Language"].startswith("fa")


async def test_pages_all_unchanged_since_the_last_fetch_renew_the_prices_instead_of_failing(
    aiohttp_client, upstream, clock
):
    def unchanged_since_first_fetch(page: str):
        html = fixture_text(f"tgju_{page or 'home'}.html")

        async def handler(request: web.Request) -> web.Response:
            if request.headers.get("If-None-Match") == '"v1"':
                return web.Response(status=304, headers={"ETag": '"v1"'})
            return web.Response(text=html, content_type="text/html", headers={"ETag": '"v1"'})

        return handler

    for page in ("currency", "gold-chart", "coin", ""):
        upstream.on(f"/{page}", unchanged_since_first_fetch(page))
    client = await aiohttp_client(create_app(prices_settings(upstream, refresh_seconds=300), clock=clock))
    first = await (await client.get("/widgets/prices.json")).json()
    await clock.advance(301)

    # A quiet market (a Friday): tgju answers every page "not modified".
    renewed = await client.app[ENGINE].refreshers["prices"].trigger()

    body = await (await client.get("/widgets/prices.json")).json()
    assert renewed is not None and body["status"] == "fresh"
    assert body["fetched_at"] > first["fetched_at"] and body["data"] == first["data"]
    assert not any(item["stale"] for item in body["data"]["items"])
    health = await (await client.get("/health")).json()
    assert health["checks"]["prices:dataAge"][0]["status"] == "pass"


async def test_pages_unchanged_while_another_changed_still_bring_their_prices_as_current(
    aiohttp_client, upstream, clock
):
    version = {"currency": "v1"}

    def page_with_etag(page: str):
        async def handler(request: web.Request) -> web.Response:
            etag = f'"{version.get(page, "v1")}"'
            if request.headers.get("If-None-Match") == etag:
                return web.Response(status=304, headers={"ETag": etag})
            html = fixture_text(f"tgju_{page or 'home'}.html")
            if page == "currency" and etag == '"v2"':
                html = html.replace("1,052,300", "1,054,000")
            return web.Response(text=html, content_type="text/html", headers={"ETag": etag})

        return handler

    for page in ("currency", "gold-chart", "coin", ""):
        upstream.on(f"/{page}", page_with_etag(page))
    client = await aiohttp_client(create_app(prices_settings(upstream, refresh_seconds=300), clock=clock))
    await client.get("/widgets/prices.json")
    await clock.advance(301)

    # Only the currencies moved: the coin and gold pages answer "not modified".
    version["currency"] = "v2"
    await client.app[ENGINE].refreshers["prices"].trigger()

    body = await (await client.get("/widgets/prices.json")).json()
    items = {item["key"]: item for item in body["data"]["items"]}
    assert items["price_dollar_rl"]["price"] == 1_054_000
    assert [key for key, item in items.items() if item["stale"]] == []
    assert body["data"]["missing"] == []
