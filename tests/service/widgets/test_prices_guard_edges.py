"""The price guard at its edges: unit changes held past their age, a declared unit change applied
once and only to the items that moved by it, confirmations that survive a missing fetch, and
units that stay right through `unit=toman` and `columns=`."""

from __future__ import annotations

import re
from typing import Any

from service.settings import EngineSettings, HttpSettings, Settings
from service.web.app import create_app
from service.web.keys import ENGINE
from service.widgets import BUILTIN_WIDGETS
from service.widgets.prices import PricesData, PricesOptions, reconcile
from tests.support.fixtures import fixture_text
from tests.support.prices import html_page, item, serve_tgju
from tests.support.waiting import CEILING_SECONDS


def settings(upstream, **prices: Any) -> Settings:
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "prices"}
    return Settings(
        engine=EngineSettings(background=False, retry_base_seconds=0.05, cold_wait_seconds=CEILING_SECONDS),
        # The guard is what these tests watch, over hundreds of fetches: the pages are parsed in a
        # thread, not a parsing process, whose per-parse garbage collection (and lower priority on
        # a busy machine) made a fetch cost tens of milliseconds. The pool has its own tests.
        http=HttpSettings(parse_workers=0),
        widgets={"prices": {"refresh_seconds": 60, **prices}, **others},
        providers={"tgju": {"url": upstream.url(""), "timeout_seconds": 30}},
    )


def test_a_unit_change_held_past_max_age_leaves_no_price_shown_and_a_valid_snapshot():
    # Every item moves ×10 (tgju goes Rial→Toman-like), no second provider, no unit_change_factor.
    options = PricesOptions(items=["sekee", "price_dollar_rl", "price_eur"], item_max_age_seconds=3600)
    good = [item("sekee", 1_000_000), item("price_dollar_rl", 50_000), item("price_eur", 60_000)]
    data, _ = reconcile({"items": good}, None, options, 0.0)
    shifted = [{**i, "price": i["price"] * 10} for i in good]
    data, _ = reconcile({"items": shifted}, data, options, 60.0)
    after, _ = reconcile({"items": shifted}, data, options, 3700.0)
    # Neither the old prices (too old) nor the shifted ones (unconfirmed) are shown; the snapshot is
    # valid, so later fetches land, and the hold stays until a provider or the configuration agrees.
    assert after["items"] == [] and after["missing"] == ["sekee", "price_dollar_rl", "price_eur"]
    assert all(p["unit_change"] for p in after["pending"].values())
    PricesData.model_validate(after)
    again, _ = reconcile({"items": shifted}, after, options, 7400.0)
    assert again["items"] == [] and set(again["pending"]) == set(after["pending"])


async def test_a_unit_change_in_the_app_never_shows_old_prices_past_their_age(
    aiohttp_client, upstream, clock
):
    serve_tgju(upstream)
    client = await aiohttp_client(
        create_app(
            settings(upstream, items=["price_dollar_rl", "price_eur", "sekee"], item_max_age_seconds=600),
            clock=clock,
        )
    )
    first = await (await client.get("/widgets/prices.json")).json()
    old = {i["key"]: i["price"] for i in first["data"]["items"]}
    # Upstream now writes every amount ×10 (an extra 0 on every number in the pages)
    for page in ("currency", "gold-chart", "coin"):
        text = fixture_text(f"tgju_{page}.html")
        text = re.sub(r">(\d{1,3}(?:,\d{3})+)<", lambda m: ">" + m.group(1) + "0<", text)
        upstream.on(f"/{page}", html_page(text))
    upstream.on(
        "/",
        html_page(
            re.sub(
                r">(\d{1,3}(?:,\d{3})+)<", lambda m: ">" + m.group(1) + "0<", fixture_text("tgju_home.html")
            )
        ),
    )
    refresher = client.app[ENGINE].refreshers["prices"]
    for _ in range(40):  # 40 minutes, well beyond item_max_age_seconds=600
        await clock.advance(60)
        await refresher.trigger()
    body = await (await client.get("/widgets/prices.json")).json()
    health = await (await client.get("/health")).json()
    check = health["checks"]["prices:dataAge"][0]
    new = {i["key"]: i["price"] for i in body["data"]["items"]}
    # Either the new values are eventually shown, or the old ones dropped: never the 40-min-old
    # values still served while item_max_age is 10 minutes.
    assert new != old or not body["data"]["items"], (new, old, body["status"], check)


def test_a_declared_unit_change_is_applied_once_and_not_to_a_spike():
    options = PricesOptions(items=["sekee", "price_dollar_rl", "price_eur", "rob"], unit_change_factor=10)
    good = [
        item("sekee", 1_000_000),
        item("price_dollar_rl", 50_000),
        item("price_eur", 60_000),
        item("rob", 300_000),
    ]
    data, _ = reconcile({"items": good}, None, options, 0.0)
    data, _ = reconcile({"items": [{**i, "price": i["price"] * 10} for i in good]}, data, options, 60.0)
    # Long after the unit change, one item spikes ×10 alone; a second item glitch ×10 too; with
    # two of four: no factor. Now three of four move ×10 again (shifted columns) — accepted at once
    moved = [{**i, "price": i["price"] * 100} for i in good[:3]] + [{**good[3], "price": 3_000_000}]
    data, _ = reconcile({"items": moved}, data, options, 120.0)
    assert [i["price"] for i in data["items"]][:3] == [10_000_000, 500_000, 600_000], data["items"]


def test_a_declared_factor_does_not_accept_an_item_that_moved_by_another():
    options = PricesOptions(items=["sekee", "price_dollar_rl", "price_eur", "rob"], unit_change_factor=0.1)
    good = [
        item("sekee", 1_000_000),
        item("price_dollar_rl", 50_000),
        item("price_eur", 60_000),
        item("rob", 300_000),
    ]
    data, _ = reconcile({"items": good}, None, options, 0.0)
    new = [{**i, "price": i["price"] // 10} for i in good[:3]] + [{**good[3], "price": 300_000 * 50}]
    data, _ = reconcile({"items": new}, data, options, 60.0)
    rob = next(i for i in data["items"] if i["key"] == "rob")
    assert rob["price"] != 15_000_000, "a ×50 spike shown at once because others moved ×0.1"


def test_pending_confirmation_survives_one_fetch_without_the_item():
    options = PricesOptions(items=["sekee", "price_dollar_rl"], confirm_fetches=1)
    data, _ = reconcile({"items": [item("sekee", 1_000), item("price_dollar_rl", 500)]}, None, options, 0.0)
    data, _ = reconcile({"items": [item("sekee", 10_000), item("price_dollar_rl", 500)]}, data, options, 60.0)
    assert "sekee" in data["pending"]
    data, _ = reconcile({"items": [item("price_dollar_rl", 500)]}, data, options, 120.0)
    assert "sekee" in data["pending"], "pending dropped when a fetch lacked the item"


def test_one_off_spike_never_shown_when_it_reverts():
    options = PricesOptions(items=["sekee"], confirm_fetches=2)
    data, _ = reconcile({"items": [item("sekee", 1_000)]}, None, options, 0.0)
    shown = []
    for t, p in enumerate([10_000, 10_000, 1_000, 10_000, 1_000, 10_000, 10_000]):
        data, _ = reconcile({"items": [item("sekee", p)]}, data, options, 60.0 * (t + 1))
        shown.append(data["items"][0]["price"])
    assert 10_000 not in shown[:6], shown


async def test_toman_low_high_columns_match_json(aiohttp_client, upstream):
    serve_tgju(upstream)
    client = await aiohttp_client(create_app(settings(upstream)))
    rial = await (await client.get("/widgets/prices.json")).json()
    toman = await (await client.get("/widgets/prices.json?unit=toman")).json()
    for r, t in zip(rial["data"]["items"], toman["data"]["items"], strict=True):
        if r["unit"] == "USD":
            assert t == r
            continue
        assert t["unit"] == "IRT"
        for f in ("price", "low", "high"):
            if r[f] is not None:
                assert abs(t[f] * 10 - r[f]) <= 5, (r["key"], f, r[f], t[f])
    html = await (await client.get("/widgets/prices.html?unit=toman&columns=low,high,time")).text()
    html_r = await (await client.get("/widgets/prices.html?unit=rial&columns=low,high")).text()
    assert html.count('data-column="low"') == len(toman["data"]["items"])
    assert "ریال" not in html.split("<table>")[1]
    assert "تومان" not in html_r.split("<table>")[1]
    ons = next((i for i in rial["data"]["items"] if i["key"] == "ons"), None)
    if ons:
        assert isinstance(ons["price"], float) or ons["price"] == int(ons["price"])


async def test_three_days_of_a_unit_change_never_serve_the_first_prices_as_current(
    aiohttp_client, upstream, clock
):
    serve_tgju(upstream)
    client = await aiohttp_client(
        create_app(
            settings(upstream, items=["price_dollar_rl", "price_eur", "sekee"], item_max_age_seconds=600),
            clock=clock,
        )
    )
    await client.get("/widgets/prices.json")

    def sub(t):
        return re.sub(r">(\d{1,3}(?:,\d{3})+)<", lambda m: ">" + m.group(1) + "0<", t)

    for page in ("currency", "gold-chart", "coin"):
        upstream.on(f"/{page}", html_page(sub(fixture_text(f"tgju_{page}.html"))))
    upstream.on("/", html_page(sub(fixture_text("tgju_home.html"))))
    refresher = client.app[ENGINE].refreshers["prices"]
    for _ in range(3 * 24 * 60 // 10):  # three days, every 10 minutes
        await clock.advance(600)
        await refresher.trigger()
    body = await (await client.get("/widgets/prices.json")).json()
    check = (await (await client.get("/health")).json())["checks"]["prices:dataAge"][0]
    print(
        "STATUS",
        body["status"],
        [(i["key"], i["price"], i["stale"], i["fetched_at"]) for i in body["data"]["items"]],
    )
    print(
        "CHECK",
        {k: check.get(k) for k in ("status", "lastError", "consecutiveFailures", "rejected", "staleItems")},
    )
    assert not body["data"]["items"] or check["status"] == "fail", check
