"""Answers stay true through a shared cache: a validator names exactly one body.

A cache in front of the service (nginx ``proxy_cache``, a CDN) keeps a body for as long as its
validator still matches. So every answer the cache can hand out for a validator must be the answer
the service would send now: the envelope carries no age counter, a new fetch is a new ETag (same
data or not), and Last-Modified moves whenever the body does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from pydantic import BaseModel

from cache.memory import MemoryCache
from providers.base import Provider
from service.engine.clock import SystemClock
from service.registry import default_registry
from service.settings import Settings
from service.web.app import create_app
from service.web.http_caching import http_date, unmodified_since
from service.web.keys import ENGINE
from service.web.representations import day_began
from service.widgets import BUILTIN_WIDGETS
from service.widgets.base import WidgetSpec
from tests.support.clock import FakeClock
from tests.support.shared_cache import SharedCache

PATHS = ("/widgets/probe.json", "/widgets/probe.html", "/embed/probe")


async def _service(aiohttp_client, upstream, probe_settings, clock, **settings):
    upstream.json("/probe", {"value": 1, "label": "یک"})
    defaults = {"refresh_seconds": 60, "stale_while_revalidate_seconds": 30, "stale_if_error_seconds": 600}
    return await aiohttp_client(create_app(probe_settings(**{**defaults, **settings}), clock=clock))


async def _refresh(client) -> None:
    await client.app[ENGINE].refreshers["probe"].trigger()


async def _fetched_at(client, path: str = "/widgets/probe.json") -> str:
    return (await (await client.get(path)).json())["fetched_at"]


@pytest.mark.parametrize("path", PATHS)
async def test_a_cache_revalidating_after_a_refresh_of_the_same_data_gets_the_new_fetch(
    aiohttp_client, upstream, probe_settings, clock, path
):
    client = await _service(aiohttp_client, upstream, probe_settings, clock)
    cache = SharedCache(client, clock)
    first = await cache.get(path)
    assert first.how == "MISS"

    await clock.advance(61)
    await _refresh(client)  # the upstream answers the very same data
    seen = await cache.get(path)

    assert seen.how == "MISS" and seen.status == 200
    assert seen.headers["ETag"] != first.headers["ETag"]
    assert seen.body == await (await client.get(path)).read()
    new_fetch = await _fetched_at(client)
    assert seen.headers["Last-Modified"] == http_date(datetime.fromisoformat(new_fetch).timestamp())
    assert seen.headers["Last-Modified"] != first.headers["Last-Modified"]
    if path.endswith(".json"):
        assert json.loads(seen.body)["fetched_at"] == new_fetch != json.loads(first.body)["fetched_at"]


@pytest.mark.parametrize("path", PATHS)
async def test_without_a_refresh_the_cached_validator_gets_a_304(
    aiohttp_client, upstream, probe_settings, clock, path
):
    client = await _service(aiohttp_client, upstream, probe_settings, clock)
    first = await client.get(path)
    body = await first.read()
    await clock.advance(20)

    by_tag = await client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    by_date = await client.get(path, headers={"If-Modified-Since": first.headers["Last-Modified"]})

    assert by_tag.status == by_date.status == 304
    assert by_tag.headers["ETag"] == first.headers["ETag"]
    assert "stale-if-error=600" in by_tag.headers["Cache-Control"]
    again = await client.get(path)
    assert await again.read() == body  # twenty seconds on, the same bytes: nothing in them ages


async def test_through_the_cache_a_reader_always_gets_what_the_service_sends_now(
    aiohttp_client, upstream, probe_settings, clock
):
    """Across fresh, stale (refresh held up) and refreshed again, cached bytes are current bytes."""
    client = await _service(aiohttp_client, upstream, probe_settings, clock)
    cache = SharedCache(client, clock)
    path = "/widgets/probe.json"
    fetches: set[str] = set()

    async def agrees() -> str:
        seen = await cache.get(path)
        direct = await client.get(path)
        assert seen.body == await direct.read(), seen.how
        assert seen.headers["ETag"] == direct.headers["ETag"]
        fetches.add((await direct.json())["fetched_at"])
        return seen.how

    assert await agrees() == "MISS"
    await clock.advance(30)
    assert await agrees() == "HIT"
    upstream.gate.clear()  # the next refresh hangs: the data turns stale
    await clock.advance(31)
    assert await agrees() == "MISS"  # status is part of the body: stale is a new answer
    await clock.advance(10)
    assert await agrees() == "REVALIDATED"  # still the same stale answer: a 304
    upstream.gate.set()
    await _refresh(client)
    assert await agrees() == "MISS"
    assert len(fetches) == 2 and cache.not_modified == 1


async def test_the_envelope_carries_no_age_counter(aiohttp_client, upstream, probe_settings, clock):
    client = await _service(aiohttp_client, upstream, probe_settings, clock)
    body = await (await client.get("/widgets/probe.json")).json()
    assert "age_seconds" not in body
    assert set(body) == {"widget", "status", "source", "fetched_at", "attribution", "data"}


async def test_last_modified_is_the_fetch_or_the_moment_the_data_turned_stale(
    aiohttp_client, upstream, probe_settings, clock
):
    client = await _service(aiohttp_client, upstream, probe_settings, clock)
    fresh = await client.get("/widgets/probe.json")
    fetched = datetime.fromisoformat((await fresh.json())["fetched_at"])
    assert parsedate_to_datetime(fresh.headers["Last-Modified"]) == fetched

    upstream.gate.clear()
    await clock.advance(75)
    stale = await client.get(
        "/widgets/probe.json", headers={"If-Modified-Since": fresh.headers["Last-Modified"]}
    )

    assert stale.status == 200 and (await stale.json())["status"] == "stale"
    assert parsedate_to_datetime(stale.headers["Last-Modified"]) == fetched + timedelta(seconds=60)
    upstream.gate.set()


async def test_if_none_match_outranks_if_modified_since(aiohttp_client, upstream, probe_settings, clock):
    client = await _service(aiohttp_client, upstream, probe_settings, clock)
    first = await client.get("/widgets/probe.json")
    headers = {"If-None-Match": 'W/"another"', "If-Modified-Since": first.headers["Last-Modified"]}
    assert (await client.get("/widgets/probe.json", headers=headers)).status == 200


def test_if_modified_since_in_the_future_or_unparseable_is_ignored():
    now = 1_795_000_000.0
    later = datetime.fromtimestamp(now + 3600, UTC)
    earlier = datetime.fromtimestamp(now - 3600, UTC)
    assert unmodified_since(earlier, now - 7200, now)
    assert not unmodified_since(earlier, now - 60, now)
    assert not unmodified_since(later, now - 60, now)
    assert not unmodified_since(None, now - 60, now)


async def test_embed_pages_are_cached_like_their_fragment(aiohttp_client, upstream, probe_settings, clock):
    client = await _service(aiohttp_client, upstream, probe_settings, clock)
    fragment = await client.get("/widgets/probe.html")
    page = await client.get("/embed/probe")

    assert page.headers["Cache-Control"] == fragment.headers["Cache-Control"]
    assert "stale-if-error=600" in page.headers["Cache-Control"]
    assert page.headers["Last-Modified"] == fragment.headers["Last-Modified"]
    assert page.headers["ETag"].startswith('W/"') and page.headers["ETag"] != fragment.headers["ETag"]
    assert page.headers["Content-Security-Policy"].startswith("frame-ancestors *;")


async def test_an_embed_page_without_data_is_not_kept(aiohttp_client, upstream, probe_settings, clock):
    upstream.fail("/probe", 500)
    # A short provider timeout: the app's shutdown waits out the failing refresh it started.
    settings = probe_settings(cold_wait_seconds=0, timeout_seconds=2)
    client = await aiohttp_client(create_app(settings, clock=clock))
    page = await client.get("/embed/probe")
    assert page.status == 200 and page.headers["Cache-Control"] == "no-store" and "ETag" not in page.headers


def test_a_dated_answer_changed_when_the_readers_day_began():
    """A view cut at the reader's local day changes at that midnight, not only at the fetch."""
    tehran = timedelta(hours=3, minutes=30)

    def today(now: float, options: object) -> str:
        return (datetime.fromtimestamp(now, UTC) + tehran).date().isoformat()

    midnight = datetime(2026, 11, 27, tzinfo=UTC) - tehran
    fetched = (midnight - timedelta(hours=2)).timestamp()
    now = (midnight + timedelta(hours=1)).timestamp()

    began = day_began(today, object(), fetched, now)  # type: ignore[arg-type]

    assert midnight.timestamp() <= began <= midnight.timestamp() + 1
    assert day_began(today, object(), now - 60, now) == now - 60  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ("/widgets/probe.html", "/embed/probe"))
async def test_a_stale_fragment_printing_its_age_is_kept_no_longer_than_that_age_holds(
    aiohttp_client, upstream, probe_settings, clock, path
):
    """While the provider backs off, the data may not change for minutes, but the fragment's
    "N minutes ago" does each minute: a cache keeping it longer would print an age that is wrong."""
    client = await _service(
        aiohttp_client, upstream, probe_settings, clock, refresh_seconds=300, retry_base_seconds=200
    )
    cache = SharedCache(client, clock)
    await cache.get(path)
    upstream.fail("/probe", 502)
    await clock.advance(301)
    await _refresh(client)  # fails: nothing new before the retry, 200 seconds on

    for _ in range(4):
        seen = await cache.get(path)
        now = await (await client.get(path)).read()
        assert seen.body == now
        await clock.advance(50)


#: Settings of a later release, each changing what the kept answer would be: the fragment shows
#: more times, or every answer more days.
CHANGED_PRAYER_SETTINGS = [
    ("/widgets/prayer.html", {"show_asr_isha": True}),
    ("/embed/prayer", {"show_asr_isha": True}),
    ("/widgets/prayer.html", {"days": 3}),
    ("/widgets/prayer.json", {"days": 3}),
]


@pytest.mark.parametrize(("path", "changed"), CHANGED_PRAYER_SETTINGS)
async def test_a_setting_that_changes_an_answer_changes_its_validator(aiohttp_client, clock, path, changed):
    """A release with other settings may serve the very snapshot the shared cache holds (same data,
    same ``fetched_at``): a cache revalidating its copy must not be told it is still current."""
    shared = MemoryCache(SystemClock())

    def settings(**prayer: object) -> Settings:
        others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "prayer"}
        return Settings(engine={"background": False}, widgets={"prayer": prayer, **others})

    before = await aiohttp_client(create_app(settings(), cache=shared, clock=clock))
    kept = await before.get(path)
    after = await aiohttp_client(create_app(settings(**changed), cache=shared, clock=clock))
    same_snapshot = await _fetched_at(after, "/widgets/prayer.json")
    assert same_snapshot == await _fetched_at(before, "/widgets/prayer.json")

    answer = await after.get(path, headers={"If-None-Match": kept.headers["ETag"]})

    assert answer.status == 200 and await answer.read() != await kept.read()


class Days(BaseModel):
    days: list[str]


class DaysProvider(Provider):
    id = "days"
    widget = "days"

    async def fetch(self, http):
        return Days(days=["2026-11-18", "2026-11-19", "2026-11-20"])


#: A widget whose answer is cut at the reader's day (UTC here), like weather's forecast rows.
DAYS = WidgetSpec(
    name="days",
    title="روزها",
    data_model=Days,
    default_providers=("days",),
    default_refresh_seconds=900,
    today=lambda now, options: datetime.fromtimestamp(now, UTC).date().isoformat(),
    select=lambda data, view, options: {"days": [day for day in data["days"] if day >= view["today"]]},
)


@pytest.mark.parametrize("path", ("/widgets/days.json", "/widgets/days.html", "/embed/days"))
async def test_an_answer_cut_at_the_readers_day_is_not_kept_past_midnight(aiohttp_client, path):
    registry = default_registry()
    registry.add_widget(DAYS)
    registry.add_provider(DaysProvider)
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS}
    settings = Settings(engine={"background": False}, widgets=others)
    clock = FakeClock(datetime(2026, 11, 18, 23, 55, tzinfo=UTC).timestamp())
    client = await aiohttp_client(create_app(settings, registry=registry, clock=clock))
    cache = SharedCache(client, clock)
    await cache.get(path)

    await clock.advance(6 * 60)  # a new day, the data still fresh for nine minutes
    seen = await cache.get(path)

    assert seen.body == await (await client.get(path)).read()  # yesterday's row is gone from both
