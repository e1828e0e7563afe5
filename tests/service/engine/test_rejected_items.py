"""Items an accepted fetch rejected: counted one by one on every fetch, logged like a failure, once
when a kind of problem appears and once when it is gone, never on every refresh it lasts."""

from __future__ import annotations

import logging

import pytest

from service.web.app import create_app
from service.web.keys import ENGINE
from tests.service.widgets.test_news import NOW, SITE, news_settings
from tests.support.clock import FakeClock
from tests.support.feed import rss_document, rss_item, serve_feed

GOOD = rss_item("خبر خوب", f"{SITE}/1")


def bad_link(number: int) -> str:
    return rss_item(f"بد {number}", f"javascript:alert({number})")


def with_bad_links(count: int) -> str:
    return rss_document(GOOD, *(bad_link(n) for n in range(count)))


def rejected_lines(caplog) -> list[tuple[str, str]]:
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if "reject" in r.getMessage()]
    caplog.clear()
    return lines


def rejected_total(metrics: str) -> float:
    (line,) = [line for line in metrics.splitlines() if line.startswith("sidebar_rejected_items_total{")]
    assert 'widget="news"' in line
    return float(line.rsplit(" ", 1)[1])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


async def refreshed_with(client, upstream, clock: FakeClock, body: str) -> None:
    serve_feed(upstream, body)
    await clock.advance(0.35)  # past the box's refresh interval
    await client.app[ENGINE].refreshers["news"].trigger()


async def test_a_lasting_problem_is_logged_when_it_starts_and_when_it_ends(
    aiohttp_client, upstream, clock, caplog
):
    caplog.set_level(logging.INFO, logger="service.engine.refresher")
    serve_feed(upstream, with_bad_links(1))
    client = await aiohttp_client(create_app(news_settings(upstream), clock=clock))
    assert (await client.get("/widgets/news.json")).status == 200
    started = rejected_lines(caplog)

    for count in (1, 2, 1):  # the same problem, on more or fewer items
        await refreshed_with(client, upstream, clock, with_bad_links(count))
    lasting = rejected_lines(caplog)
    await refreshed_with(client, upstream, clock, rss_document(GOOD))
    ended = rejected_lines(caplog)
    await refreshed_with(client, upstream, clock, rss_document(GOOD))
    fine = rejected_lines(caplog)

    assert upstream.hits["/fa/rss/allnews"] == 6
    assert started == [
        ("WARNING", "widget news: feed rejected: 127.0.0.1: 1 item(s) dropped: no http or https link")
    ]
    assert lasting == []
    assert ended == [
        ("INFO", "widget news: feed no longer rejects: 127.0.0.1: 1 item(s) dropped: no http or https link")
    ]
    assert fine == []


async def test_another_kind_of_problem_is_logged_when_it_appears(aiohttp_client, upstream, clock, caplog):
    caplog.set_level(logging.INFO, logger="service.engine.refresher")
    serve_feed(upstream, with_bad_links(1))
    client = await aiohttp_client(create_app(news_settings(upstream), clock=clock))
    assert (await client.get("/widgets/news.json")).status == 200
    caplog.clear()

    untitled = rss_item("", f"{SITE}/2")
    await refreshed_with(client, upstream, clock, rss_document(GOOD, untitled, bad_link(0)))

    assert rejected_lines(caplog) == [
        ("WARNING", "widget news: feed rejected: 127.0.0.1: 1 item(s) dropped: no title")
    ]


async def test_the_counter_counts_rejected_items_on_every_fetch(aiohttp_client, upstream, clock):
    serve_feed(upstream, with_bad_links(3))
    client = await aiohttp_client(create_app(news_settings(upstream), clock=clock))
    assert (await client.get("/widgets/news.json")).status == 200

    after_one = rejected_total(await (await client.get("/metrics")).text())
    await refreshed_with(client, upstream, clock, with_bad_links(2))
    after_two = rejected_total(await (await client.get("/metrics")).text())

    # Three items dropped for one reason are three, not one kind; a lasting problem still counts.
    assert (after_one, after_two) == (3.0, 5.0)
