"""A service whose upstreams are local fakes serving captured real answers, every widget on."""

from __future__ import annotations

from service.engine.clock import SystemClock
from service.settings import Settings
from tests.support.air import openmeteo_air_document
from tests.support.feed import FEED_PATH, RSS, feed_text, serve_feed
from tests.support.prices import serve_tgju
from tests.support.tiles import FakeTiles
from tests.support.upstream import FakeUpstream
from tests.support.weather import metno_document, openmeteo_document

#: Every built-in widget, in the order pages show them.
WIDGETS = ("weather", "air", "prices", "satellite", "prayer", "date", "links", "news")


def fed_settings(upstream: FakeUpstream, public_url: str = "", *, now: float | None = None) -> Settings:
    """Settings for a service fed real-shaped data: tgju's pages, Open-Meteo and MET, tiles, a news feed.

    The weather answers are dated at ``now``, the clock the service runs on: by default the
    system clock, as a service given no clock of its own reads.
    """
    now = SystemClock().time() if now is None else now
    serve_tgju(upstream)
    upstream.json("/v1/forecast", openmeteo_document(now))
    upstream.json("/weatherapi/locationforecast/2.0/compact", metno_document(now))
    upstream.json("/v1/air-quality", openmeteo_air_document(now))
    serve_feed(upstream, feed_text(RSS, now), path=FEED_PATH)
    tiles = FakeTiles(upstream)
    return Settings(
        public_url=public_url,
        engine={"background": False},
        # The prayer box's widest form: a week's table of six times in a 300 px column.
        widgets={
            "prices": {"items": ["price_dollar_rl", "sekee", "ons"]},
            "prayer": {"days": 7},
            # Off until an operator names the site's feed.
            "news": {"enabled": True},
        },
        providers={
            "tgju": {"url": upstream.url("")},
            "openmeteo": {"url": upstream.url("")},
            "metno": {"url": upstream.url("")},
            "openmeteo_air": {"url": upstream.url("")},
            "tiles": {"url": tiles.template},
            "feed": {"url": upstream.url(FEED_PATH)},
        },
    )
