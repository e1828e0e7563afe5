"""The prices widget end to end: fake tgju pages in, JSON and a Persian RTL fragment out."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from service.engine.snapshot import Snapshot
from service.persian import TEHRAN
from service.settings import EngineSettings, Settings
from service.web.app import create_app
from service.web.keys import ENGINE
from service.web.rendering import Renderer
from service.widgets import BUILTIN_WIDGETS
from service.widgets.prices import (
    PRICES,
    SHORT_TITLES,
    TITLES,
    PricesData,
    PricesOptions,
    reconcile,
    with_short_titles,
)
from tests.support.clock import FakeClock
from tests.support.fixtures import fixture_text
from tests.support.prices import html_page, item, serve_tgju
from tests.support.waiting import CEILING_SECONDS


def prices_settings(upstream, **prices: Any) -> Settings:
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "prices"}
    return Settings(
        engine=EngineSettings(background=False, retry_base_seconds=0.05, cold_wait_seconds=CEILING_SECONDS),
        widgets={"prices": {"refresh_seconds": 0.3, **prices}, **others},
        providers={"tgju": {"url": upstream.url(""), "timeout_seconds": 30}},
    )


def test_an_absurd_jump_keeps_the_last_good_value():
    options = PricesOptions(items=["sekee", "price_dollar_rl"])
    previous = {"items": [item("sekee", 1_000_000_000), item("price_dollar_rl", 1_000_000)]}
    new = {"items": [item("sekee", 1_010_000_000), item("price_dollar_rl", 10_000_000)], "problems": []}

    stored, problems = reconcile(new, previous, options)

    assert [i["price"] for i in stored["items"]] == [1_010_000_000, 1_000_000]
    assert len(problems) == 1 and problems[0].startswith("price_dollar_rl: 10000000 is 10.00×")


def test_items_a_fetch_lacks_keep_their_last_good_value_in_configured_order():
    options = PricesOptions(items=["price_dollar_rl", "sekee", "ons"])
    previous = {"items": [item("price_dollar_rl", 1_000_000), item("sekee", 1_000_000_000)]}
    new = {"items": [item("ons", 4000, "USD"), item("price_dollar_rl", 1_010_000)], "problems": ["x"]}

    stored, problems = reconcile(new, previous, options)

    assert [(i["key"], i["price"]) for i in stored["items"]] == [
        ("price_dollar_rl", 1_010_000),
        ("sekee", 1_000_000_000),
        ("ons", 4000),
    ]
    assert problems == ["x"]


async def test_json_items_are_integer_rial_with_the_promised_fields(aiohttp_client, upstream):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(prices_settings(upstream)))

    body = await (await client.get("/widgets/prices.json")).json()

    assert body["status"] == "fresh" and body["source"] == "tgju"
    items = body["data"]["items"]
    assert [i["key"] for i in items] == list(PricesOptions().items)
    dollar = items[0]
    assert set(dollar) == {
        "key",
        "title",
        "short_title",
        "price",
        "unit",
        "change",
        "change_percent",
        "direction",
        "low",
        "high",
        "updated_at",
        "source",
        "fetched_at",
        "stale",
    }
    assert dollar["fetched_at"] == body["fetched_at"] and dollar["stale"] is False
    assert body["data"]["missing"] == []
    assert {i["source"] for i in items} == {"tgju"}
    assert dollar["price"] == 1_052_300 and dollar["unit"] == "IRR" and dollar["title"] == "دلار آمریکا"
    # What a narrow row shows, beside the full name (added: every earlier field is as it was).
    assert dollar["short_title"] == "دلار"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT10:15:30\+03:30", dollar["updated_at"])
    assert next(i for i in items if i["key"] == "gerami")["updated_at"] is None


async def test_items_and_unit_query_parameters(aiohttp_client, upstream):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(prices_settings(upstream)))

    body = await (await client.get("/widgets/prices.json?items=sekee,price_dollar_rl&unit=toman")).json()

    assert [(i["key"], i["price"], i["unit"]) for i in body["data"]["items"]] == [
        ("sekee", 106_650_000, "IRT"),
        ("price_dollar_rl", 105_230, "IRT"),
    ]
    html = await (await client.get("/widgets/prices.html?items=ons,sekee")).text()
    assert html.index('data-key="ons"') < html.index('data-key="sekee"')
    assert html.count("<tr data-key") == 2


@pytest.mark.parametrize("query", ["items=sekee,bitcoin", "items=", "unit=dinar"])
async def test_bad_query_parameters_are_400_naming_what_is_valid(aiohttp_client, upstream, query):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(prices_settings(upstream)))
    for fmt in ("json", "html"):
        response = await client.get(f"/widgets/prices.{fmt}?{query}")
        assert response.status == 400
        error = (await response.json())["error"]
        assert (
            ("valid: price_dollar_rl" in error) if query.startswith("items") else ("toman or rial" in error)
        )


async def test_fragment_shows_toman_with_persian_digits_arrows_and_a_jalali_time(aiohttp_client, upstream):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(prices_settings(upstream)))

    html = await (await client.get("/widgets/prices.html")).text()

    assert html.startswith('<div class="sw-widget sw-prices sw-theme-light" dir="rtl" lang="fa"')
    assert "قیمت روز طلا، سکه و ارز" in html
    # The unit is said once, in the price column's head.
    head = html[html.index("<thead>") : html.index("</thead>")]
    assert re.findall(r'<th scope="col">([^<]+)</th>', head) == ["عنوان", "قیمت (تومان)", "تغییر"]
    dollar_row = html[html.index('data-key="price_dollar_rl"') : html.index('data-key="price_eur"')]
    assert '<bdi dir="ltr">۱۰۵٬۲۳۰</bdi>' in dollar_row and "تومان" not in dollar_row  # 1,052,300 Rial
    # The day's change as tgju's percentage: an arrow for the eye, the sign for a screen reader.
    assert '<span aria-hidden="true">▲</span><bdi dir="ltr">+۰٫۴۵٪</bdi>' in dollar_row
    assert "sw-up" in dollar_row
    euro_row = html[html.index('data-key="price_eur"') :].split("</tr>")[0]
    assert "▼" in euro_row and "−۰٫۲۱٪" in euro_row and "sw-down" in euro_row
    # A row in another unit than the head's says its own; dollars keep their cents.
    ounce_row = html[html.index('data-key="ons"') :].split("</tr>")[0]
    assert '<bdi dir="ltr">۴٬۱۹۷٫۲۵</bdi> <span class="sw-unit">دلار</span>' in ounce_row
    assert re.search(r"به‌روزرسانی: [۰-۹]+ [آ-ی]+ [۰-۹]{4}، ساعت [۰-۹]{2}:[۰-۹]{2}", html)


async def test_each_row_names_its_item_short_with_the_full_name_in_its_title(aiohttp_client, upstream):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(prices_settings(upstream)))

    html = await (await client.get("/widgets/prices.html")).text()

    names = dict(
        re.findall(
            r'<tr data-key="([^"]+)">\n<th scope="row"[^>]*><span class="sw-name">([^<]+)</span>', html
        )
    )
    titles = dict(re.findall(r'<tr data-key="([^"]+)">\n<th scope="row" title="([^"]+)">', html))
    assert names == {
        "price_dollar_rl": "دلار",
        "price_eur": "یورو",
        "price_gbp": "پوند",
        "price_aed": "درهم",
        "price_try": "لیر",
        "sekee": "سکه امامی",
        "sekeb": "بهار آزادی",
        "nim": "نیم سکه",
        "rob": "ربع سکه",
        "gerami": "سکه گرمی",
        "geram18": "طلای ۱۸ عیار",
        "geram24": "طلای ۲۴ عیار",
        "mesghal": "مثقال طلا",
        "ons": "انس طلا",
    }
    # The full name is a hover away where it says more; a name already short needs none.
    assert titles == {
        "price_dollar_rl": "دلار آمریکا",
        "price_gbp": "پوند انگلیس",
        "price_aed": "درهم امارات",
        "price_try": "لیر ترکیه",
        "sekeb": "سکه بهار آزادی",
        "geram18": "طلای ۱۸ عیار (گرم)",
        "geram24": "طلای ۲۴ عیار (گرم)",
    }


def test_every_offered_key_has_a_short_name_and_any_other_shows_its_title():
    assert set(SHORT_TITLES) == set(TITLES)
    # A snapshot may hold a key this release does not name (an older or newer release wrote it).
    franc = {**item("price_chf", 1_000_000), "title": "فرانک سوئیس"}
    stored = PricesData.model_validate({"items": [franc]}).model_dump(mode="json")
    snapshot = Snapshot.create("prices", "tgju", FakeClock().time(), stored)

    html = Renderer().fragment(
        PRICES, snapshot, "fresh", {}, options=PricesOptions(), now=snapshot.fetched_at
    )

    assert with_short_titles([franc])[0]["short_title"] == "فرانک سوئیس"
    # Its title, with no title attribute repeating it.
    assert '<th scope="row"><span class="sw-name">فرانک سوئیس</span></th>' in html


async def test_display_unit_rial_from_config(aiohttp_client, upstream):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(prices_settings(upstream, display_unit="rial")))
    html = await (await client.get("/widgets/prices.html?items=price_dollar_rl")).text()
    assert '<bdi dir="ltr">۱٬۰۵۲٬۳۰۰</bdi>' in html and '<th scope="col">قیمت (ریال)</th>' in html


def test_an_upstream_title_with_markup_is_shown_as_text():
    # tgju's own title for a key this release does not name, as a snapshot may hold it.
    franc = {**item("price_chf", 1_000_000), "title": "فرانک <script>alert(1)</script> سوئیس"}
    stored = PricesData.model_validate({"items": [franc]}).model_dump(mode="json")
    snapshot = Snapshot.create("prices", "tgju", FakeClock().time(), stored)

    html = Renderer().fragment(
        PRICES, snapshot, "fresh", {}, options=PricesOptions(), now=snapshot.fetched_at
    )

    assert "<script" not in html
    assert "فرانک &lt;script&gt;alert(1)&lt;/script&gt; سوئیس" in html


async def test_a_ten_fold_jump_is_rejected_and_reported(aiohttp_client, upstream, clock):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(prices_settings(upstream), clock=clock))
    await client.get("/widgets/prices.json")
    jumped = (
        fixture_text("tgju_currency.html")
        .replace("1,052,300", "10,523,000")
        .replace("<td>1,047,100</td>", "<td>10,471,000</td>")
        .replace("<td>1,055,000</td>", "<td>10,550,000</td>")
    )
    serve_tgju(upstream)
    upstream.on("/currency", html_page(jumped))
    await clock.advance(60)

    await client.app[ENGINE].refreshers["prices"].trigger()

    body = await (await client.get("/widgets/prices.json")).json()
    dollar = next(i for i in body["data"]["items"] if i["key"] == "price_dollar_rl")
    assert dollar["price"] == 1_052_300
    assert dollar["stale"] is True and dollar["fetched_at"] < body["fetched_at"]  # its own age
    assert body["status"] == "fresh"
    health = await (await client.get("/health")).json()
    check = health["checks"]["prices:dataAge"][0]
    assert any("price_dollar_rl" in r for r in check["rejected"])
    assert check["staleItems"] == ["price_dollar_rl"] and check["status"] == "warn"
    html = await (await client.get("/widgets/prices.html")).text()
    row = html[html.index('data-key="price_dollar_rl"') :].split("</tr>")[0]
    assert 'data-stale="true"' in row and "sw-item-age" in row and "ساعت" in row
    euro = html[html.index('data-key="price_eur"') :].split("</tr>")[0]
    assert "data-stale" not in euro
    metrics = await (await client.get("/metrics")).text()
    assert 'sidebar_rejected_items_total{widget="prices"} 1.0' in metrics


async def test_a_failed_page_keeps_its_items_last_good_values(aiohttp_client, upstream, clock):
    serve_tgju(upstream, home=False)
    client = await aiohttp_client(create_app(prices_settings(upstream), clock=clock))
    first = await (await client.get("/widgets/prices.json")).json()
    upstream.fail("/coin", 500)
    await clock.advance(0.35)

    await client.app[ENGINE].refreshers["prices"].trigger()

    second = await (await client.get("/widgets/prices.json")).json()
    assert second["status"] == "fresh" and second["fetched_at"] >= first["fetched_at"]
    assert [i["key"] for i in second["data"]["items"]] == [i["key"] for i in first["data"]["items"]]
    sekee = next(i for i in second["data"]["items"] if i["key"] == "sekee")
    assert sekee["price"] == 1_066_500_000


async def test_a_missing_table_everywhere_backs_off_to_the_refresh_interval(aiohttp_client, upstream, clock):
    async def redesigned(request):
        return web.Response(text="<html><body>new site</body></html>", content_type="text/html")

    for page in ("/currency", "/gold-chart", "/coin", "/"):
        upstream.on(page, redesigned)
    settings = prices_settings(upstream)
    settings.widgets["prices"].refresh_seconds = 300
    settings.engine.cold_wait_seconds = 0
    client = await aiohttp_client(create_app(settings, clock=clock))
    refresher = client.app[ENGINE].refreshers["prices"]

    await refresher.trigger()

    assert refresher.state.last_error_reason == "changed"
    assert refresher.retry_at - clock.time() == 300
    html = await (await client.get("/widgets/prices.html")).text()
    assert 'data-status="unavailable"' in html


def fetch_after(previous: dict[str, Any], price: int, options: PricesOptions) -> dict[str, Any]:
    new = {"items": [item("sekee", 1_000_000_000), item("price_dollar_rl", price)], "problems": []}
    stored, _ = reconcile(new, previous, options)
    return stored


def dollar(data: dict[str, Any]) -> int:
    return next(i["price"] for i in data["items"] if i["key"] == "price_dollar_rl")


def test_a_real_jump_is_shown_once_the_next_fetches_repeat_it():
    options = PricesOptions(items=["sekee", "price_dollar_rl"])  # confirm_fetches = 2
    data = {"items": [item("sekee", 1_000_000_000), item("price_dollar_rl", 1_000_000)]}

    data = fetch_after(data, 4_000_000, options)  # first sighting: held back
    assert dollar(data) == 1_000_000 and data["pending"]["price_dollar_rl"]["repeats"] == 0
    data = fetch_after(data, 4_020_000, options)  # within 1 %: one repeat
    assert dollar(data) == 1_000_000
    data = fetch_after(data, 3_990_000, options)  # a second repeat: confirmed
    assert dollar(data) == 3_990_000 and data["pending"] == {}


def test_a_one_off_spike_that_reverts_is_never_shown():
    options = PricesOptions(items=["sekee", "price_dollar_rl"], confirm_fetches=1)
    data = {"items": [item("sekee", 1_000_000_000), item("price_dollar_rl", 1_000_000)]}

    data = fetch_after(data, 10_000_000, options)
    data = fetch_after(data, 1_010_000, options)  # back to normal: the spike is forgotten
    data = fetch_after(data, 10_000_000, options)  # a new spike starts counting afresh

    assert dollar(data) == 1_010_000 and data["pending"]["price_dollar_rl"]["repeats"] == 0


def test_a_wandering_held_value_is_not_confirmed():
    options = PricesOptions(items=["sekee", "price_dollar_rl"], confirm_fetches=1)
    data = {"items": [item("sekee", 1_000_000_000), item("price_dollar_rl", 1_000_000)]}

    data = fetch_after(data, 4_000_000, options)
    data = fetch_after(data, 4_100_000, options)  # 2.5 % away from the held value: not a repeat

    assert dollar(data) == 1_000_000


async def test_columns_choose_what_each_row_shows_beside_the_price(aiohttp_client, upstream, clock):
    serve_tgju(upstream)
    # An afternoon in Tehran: the fixture's 10:15 is today's (at dawn it would be yesterday's).
    client = await aiohttp_client(create_app(prices_settings(upstream), clock=clock))
    default = await (await client.get("/widgets/prices.html")).text()

    html = await (await client.get("/widgets/prices.html?columns=high,low,time")).text()

    row = html[html.index('data-key="price_dollar_rl"') :].split("</tr>")[0]
    assert [c for c in ("change", "percent", "low", "high", "time") if f'data-column="{c}"' in row] == [
        "low",
        "high",
        "time",
    ]  # the fixed order of a price row, whatever order was asked
    assert "▲" not in row and "٪" not in row
    assert re.search(r'data-column="time"><bdi dir="ltr">[۰-۹]{2}:[۰-۹]{2}</bdi>', row)
    assert "data-column" not in default  # the default: the price and the day's change in percent
    only_price = await (await client.get("/widgets/prices.html?columns=")).text()
    assert "data-column" not in only_price and "▲" not in only_price and "sw-price" in only_price


@pytest.mark.parametrize("query", ["columns=volume", "columns=change,<script>", "columns=" + "x" * 5000])
async def test_unknown_columns_are_400_naming_the_valid_ones(aiohttp_client, upstream, query):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(prices_settings(upstream)))
    response = await client.get(f"/widgets/prices.html?{query}")
    assert response.status == 400
    error = (await response.json())["error"]
    assert "change, percent, low, high, time" in error and len(error) < 200


async def test_optional_rates_are_offered_not_default_and_keep_their_units(aiohttp_client, upstream):
    from service.widgets.prices import DEFAULT_ITEMS, OPTIONAL_TITLES

    assert not set(OPTIONAL_TITLES) & set(DEFAULT_ITEMS)
    serve_tgju(upstream)
    wanted = ["oil_brent", "crypto-tether-irr", "silver_925", "sekee"]
    client = await aiohttp_client(create_app(prices_settings(upstream, items=wanted)))

    body = await (await client.get("/widgets/prices.json")).json()

    found = {i["key"]: i for i in body["data"]["items"]}
    assert set(found) == set(wanted) and body["data"].get("missing", []) == []
    assert (found["oil_brent"]["price"], found["oil_brent"]["unit"]) == (63.75, "USD")  # info bar
    assert (found["crypto-tether-irr"]["price"], found["crypto-tether-irr"]["unit"]) == (1_232_050, "IRR")
    assert (found["silver_925"]["price"], found["silver_925"]["unit"]) == (3_765_900, "IRR")  # gold page
    assert found["oil_brent"]["title"] == "نفت برنت (بشکه)"


def test_an_item_kept_from_earlier_data_says_so_with_its_own_age_and_is_dropped_when_too_old():
    options = PricesOptions(items=["sekee", "price_dollar_rl"], item_max_age_seconds=3600)
    first, _ = reconcile({"items": [item("sekee", 1_000), item("price_dollar_rl", 500)]}, None, options, 0.0)
    assert all(i["stale"] is False and i["fetched_at"] == "1970-01-01T00:00:00+00:00" for i in first["items"])
    # (reconcile's output is the raw data; the model writes these times with a "Z" when stored)

    # The dollar is gone from the upstream; the coin jumps 10× (held back until confirmed).
    later, _ = reconcile({"items": [item("sekee", 10_000)]}, first, options, 600.0)
    by_key = {i["key"]: i for i in later["items"]}
    assert by_key["price_dollar_rl"]["stale"] is True and by_key["price_dollar_rl"]["price"] == 500
    assert by_key["price_dollar_rl"]["fetched_at"] == "1970-01-01T00:00:00+00:00"  # its own age
    assert by_key["sekee"]["stale"] is True and by_key["sekee"]["price"] == 1_000
    assert later["missing"] == []

    # An hour and more after they were last fetched, neither is shown as if it were current.
    much_later, _ = reconcile({"items": [item("sekee", 10_000)]}, later, options, 3601.0)
    assert much_later["items"] == [] or all(i["key"] != "price_dollar_rl" for i in much_later["items"])
    assert "price_dollar_rl" in much_later["missing"]


def test_most_items_moving_by_one_factor_is_held_however_often_it_repeats():
    options = PricesOptions(items=["sekee", "price_dollar_rl", "price_eur", "rob"])
    good = [
        item("sekee", 1_000_000),
        item("price_dollar_rl", 50_000),
        item("price_eur", 60_000),
        item("rob", 300_000),
    ]
    data, _ = reconcile({"items": good}, None, options, 0.0)
    shifted = [{**i, "price": i["price"] * 10} for i in good]  # Rial where Toman was: ×10 everywhere

    for fetch in range(1, 6):
        data, problems = reconcile({"items": shifted}, data, options, 60.0 * fetch)
        assert [i["price"] for i in data["items"]] == [1_000_000, 50_000, 60_000, 300_000], fetch
        assert all(i["stale"] for i in data["items"])
        assert any("unit change or shifted columns" in p for p in problems)


def test_a_declared_unit_change_is_accepted_at_once():
    options = PricesOptions(items=["sekee", "price_dollar_rl", "price_eur"], unit_change_factor=10)
    good = [item("sekee", 1_000_000), item("price_dollar_rl", 50_000), item("price_eur", 60_000)]
    data, _ = reconcile({"items": good}, None, options, 0.0)

    data, problems = reconcile(
        {"items": [{**i, "price": i["price"] * 10} for i in good]}, data, options, 60.0
    )

    assert [i["price"] for i in data["items"]] == [10_000_000, 500_000, 600_000]
    assert not any(i["stale"] for i in data["items"]) and data["pending"] == {}
    assert any("unit_change_factor, accepted" in p for p in problems)


def test_one_item_jumping_alone_is_still_confirmed_by_repeating():
    options = PricesOptions(items=["sekee", "price_dollar_rl", "price_eur"], confirm_fetches=2)
    good = [item("sekee", 1_000_000), item("price_dollar_rl", 50_000), item("price_eur", 60_000)]
    data, _ = reconcile({"items": good}, None, options, 0.0)
    jumped = [item("sekee", 5_000_000), item("price_dollar_rl", 50_100), item("price_eur", 60_100)]
    for fetch in (1, 2, 3):
        data, _ = reconcile({"items": jumped}, data, options, 60.0 * fetch)
    assert data["items"][0]["price"] == 5_000_000 and not data["items"][0]["stale"]


# -- When a price was last traded ---------------------------------------------------------------

#: A morning in Tehran (Thursday 5 Azar 1405), after the tgju fixtures' clock times (10:09–10:15).
MORNING = datetime(2026, 11, 26, 10, 30, tzinfo=TEHRAN)


def time_column(items: list[dict[str, Any]], now: datetime) -> dict[str, str]:
    """Each row's time cell as the fragment prints it at ``now`` (the renderer's clock), the items
    stored as the engine stores them (through the data model)."""
    # Made-up keys name the rows: built unvalidated, as the options only choose what is shown.
    options = PricesOptions.model_construct(items=[i["key"] for i in items])
    stored = PricesData.model_validate({"items": items}).model_dump(mode="json")
    snapshot = Snapshot.create("prices", "tgju", now.timestamp() - 60, stored)
    html = Renderer().fragment(
        PRICES, snapshot, "fresh", {"columns": ["time"]}, options=options, now=now.timestamp()
    )
    return dict(re.findall(r'<tr data-key="([^"]+)">.*?data-column="time">(.*?)</td>', html, re.S))


def traded(key: str, **when: str) -> dict[str, Any]:
    return {**item(key, 1_000_000), **when}


def test_a_trade_today_shows_its_clock_time_and_one_of_an_earlier_day_says_which_day():
    cells = time_column(
        [
            traded("today", updated_at="2026-11-26T10:15:30+03:30"),
            traded("yesterday", updated_at="2026-11-25T23:58:02+03:30"),
            traded("days_ago", updated_at="2026-11-23T11:49:45+03:30"),
            traded("day_only", updated_on_jalali="1405-05-24"),
            traded("unknown"),
        ],
        MORNING,
    )

    assert cells == {
        "today": '<bdi dir="ltr">۱۰:۱۵</bdi>',
        "yesterday": 'دیروز <bdi dir="ltr">۲۳:۵۸</bdi>',
        "days_ago": "۲ آذر",
        "day_only": "۲۴ مرداد",  # tgju's own «۲۴ مرداد»: a row not traded today
        "unknown": "–",
    }


def test_the_day_is_tehrans_whatever_zone_the_time_came_in():
    # 21:30 UTC on the 25th is 01:00 on the 26th in Tehran: today, not yesterday.
    late = datetime(2026, 11, 25, 21, 30, tzinfo=UTC).isoformat()
    assert time_column([traded("x", updated_at=late)], MORNING) == {"x": '<bdi dir="ltr">۰۱:۰۰</bdi>'}


def test_just_after_midnight_the_last_evenings_trade_is_yesterdays():
    evening = traded("x", updated_at="2026-11-26T23:58:02+03:30")
    assert time_column([evening], datetime(2026, 11, 26, 23, 59, tzinfo=TEHRAN))["x"].startswith("<bdi")
    after_midnight = datetime(2026, 11, 27, 0, 5, tzinfo=TEHRAN)
    assert time_column([evening], after_midnight)["x"] == 'دیروز <bdi dir="ltr">۲۳:۵۸</bdi>'


async def test_the_fragment_says_yesterday_once_the_readers_day_turns_and_its_etag_changes(
    aiohttp_client, upstream
):
    serve_tgju(upstream)
    clock = FakeClock(datetime(2026, 11, 26, 23, 50, tzinfo=TEHRAN).timestamp())
    settings = prices_settings(upstream, refresh_seconds=86400)
    client = await aiohttp_client(create_app(settings, clock=clock))
    url = "/widgets/prices.html?columns=time&items=price_dollar_rl,gerami"

    before = await client.get(url)
    body = (await (await client.get("/widgets/prices.json")).json())["data"]
    await clock.advance(20 * 60)  # 00:10: the same snapshot, the reader's next day
    after = await client.get(url)

    dollar = {"before": await before.text(), "after": await after.text()}
    assert 'data-column="time"><bdi dir="ltr">۱۰:۱۵</bdi>' in dollar["before"]
    assert 'data-column="time">دیروز <bdi dir="ltr">۱۰:۱۵</bdi>' in dollar["after"]
    assert 'data-column="time">۲۴ مرداد</td>' in dollar["before"]  # the row tgju dates by day only
    assert before.headers["ETag"] != after.headers["ETag"]
    gerami = next(i for i in body["items"] if i["key"] == "gerami")
    assert gerami["updated_at"] is None and gerami["updated_on_jalali"] == "1405-05-24"
    dollar_json = next(i for i in body["items"] if i["key"] == "price_dollar_rl")
    assert "updated_on_jalali" not in dollar_json  # items with a time read exactly as before
