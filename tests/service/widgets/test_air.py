"""The air-quality box end to end: a fake Open-Meteo in, the index with its Persian category, the
particles and the hours ahead out, for the weather's place, readable in both themes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from bs4 import BeautifulSoup, Tag

from service.registry import default_registry
from service.settings import ConfigError, EngineSettings, Settings, load_settings
from service.web.app import create_app
from service.web.keys import ENGINE
from service.widget_config import configure_widgets
from service.widgets import BUILTIN_WIDGETS
from service.widgets.air import FORECAST_HOURS_RULE, LEVELS
from tests.support.air import AIR_CAPTURED, PATH, hour_index, openmeteo_air_document
from tests.support.clock import FakeClock
from tests.support.waiting import CEILING_SECONDS

ATTRIBUTION = "داده‌های کیفیت هوا: Copernicus CAMS، از Open-Meteo.com (CC BY 4.0)"
#: WCAG 2.1 AA for normal text (1.4.3); the colour bars need only 3:1 (1.4.11).
AA_TEXT = 4.5


def air_settings(upstream, *, weather: dict[str, Any] | None = None, **air: Any) -> Settings:
    """The air box alone; ``weather`` is the weather's section, where the place is configured."""
    others = {
        spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name not in ("air", "weather")
    }
    return Settings(
        engine=EngineSettings(background=False, retry_base_seconds=0.05, cold_wait_seconds=CEILING_SECONDS),
        widgets={
            "air": {"refresh_seconds": 0.3, **air},
            "weather": {"enabled": False, **(weather or {})},
            **others,
        },
        providers={"openmeteo_air": {"url": upstream.url(""), "timeout_seconds": 30}},
    )


@pytest.fixture
def clock() -> FakeClock:
    """The morning the fixture models (the weather fixtures' too), on any day the suite runs."""
    return FakeClock(AIR_CAPTURED)


async def started(aiohttp_client, upstream, clock, payload: dict[str, Any] | None = None, **settings: Any):
    upstream.json(PATH, payload if payload is not None else openmeteo_air_document(clock.time()))
    return await aiohttp_client(create_app(air_settings(upstream, **settings), clock=clock))


async def soup_of(client, path: str = "/widgets/air.html") -> Tag:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    root = BeautifulSoup(await response.text(), "html.parser").find(class_="sw-widget")
    assert isinstance(root, Tag)
    return root


# -- What the box says --------------------------------------------------------------------------


async def test_json_has_the_place_the_reading_and_four_blocks_ahead(aiohttp_client, upstream, clock):
    client = await started(aiohttp_client, upstream, clock)

    body = await (await client.get("/widgets/air.json")).json()

    assert body["status"] == "fresh" and body["source"] == "openmeteo_air"
    assert body["attribution"] == ATTRIBUTION
    data = body["data"]
    assert data["location"] == {"name": "فامنین", "latitude": 35.116, "longitude": 48.973}
    assert data["current"] == {
        "us_aqi": 118,
        "beyond_index": False,
        "level": "sensitive",
        "category": "ناسالم برای گروه‌های حساس",
        "category_short": "ناسالم برای حساس‌ها",
        "observed_at": "2026-11-26T07:00:00+03:30",
        "pm2_5": 41.3,
        "pm10": 68.9,
    }
    assert [(b["starts_at"][11:16], b["us_aqi"]) for b in data["forecast"]] == [
        ("08:00", 127),
        ("11:00", 104),
        ("14:00", 81),
        ("17:00", 139),
    ]


async def test_the_fragment_prints_index_category_particles_time_and_attribution(
    aiohttp_client, upstream, clock
):
    client = await started(aiohttp_client, upstream, clock)

    root = await soup_of(client)

    assert root.select_one(".sw-title").text == "کیفیت هوای فامنین"
    now = root.select_one(".sw-now")
    assert now["data-level"] == "sensitive" and "sw-aqi-sensitive" in now["class"]
    assert now.select_one(".sw-index").text == "۱۱۸"
    assert now.select_one(".sw-category").text == "ناسالم برای گروه‌های حساس"
    assert now.select_one(".sw-scale").text == "شاخص کیفیت هوا، ساعت ۰۷:۰۰"
    assert [li.text for li in root.select(".sw-details li")] == [
        "PM2.5: ۴۱ میکروگرم بر مترمکعب",
        "PM10: ۶۹ میکروگرم بر مترمکعب",
    ]
    assert [li.select_one(".sw-hours").text for li in root.select(".sw-forecast li")] == [
        "۸ تا ۱۱",
        "۱۱ تا ۱۴",
        "۱۴ تا ۱۷",
        "۱۷ تا ۲۰",
    ]
    assert root.select_one(".sw-attribution").text.strip() == ATTRIBUTION
    assert not root.find("script")


BREAKPOINTS = [
    (0, "good"),
    (50, "good"),
    (51, "moderate"),
    (100, "moderate"),
    (101, "sensitive"),
    (150, "sensitive"),
    (151, "unhealthy"),
    (200, "unhealthy"),
    (201, "very_unhealthy"),
    (300, "very_unhealthy"),
    (301, "hazardous"),
    (500, "hazardous"),
]
NAMES = {
    "good": "پاک",
    "moderate": "قابل قبول",
    "sensitive": "ناسالم برای گروه‌های حساس",
    "unhealthy": "ناسالم",
    "very_unhealthy": "بسیار ناسالم",
    "hazardous": "خطرناک",
}


@pytest.mark.parametrize(("aqi", "level"), BREAKPOINTS)
async def test_each_index_has_its_category_in_words_at_the_breakpoints(
    aiohttp_client, upstream, clock, aqi, level
):
    payload = openmeteo_air_document(clock.time(), us_aqi=aqi)
    for hour in (1, 2, 3):  # the first block ahead too
        payload["hourly"]["us_aqi"][hour_index(payload, hour)] = aqi
    client = await started(aiohttp_client, upstream, clock, payload)

    current = (await (await client.get("/widgets/air.json")).json())["data"]["current"]
    root = await soup_of(client)

    assert (current["us_aqi"], current["level"], current["category"]) == (aqi, level, NAMES[level])
    now = root.select_one(".sw-now")
    assert now["data-level"] == level and f"sw-aqi-{level}" in now["class"]
    assert now.select_one(".sw-category").text == NAMES[level]
    first = root.select_one(".sw-forecast li")
    short = next(lv.short for lv in LEVELS if lv.key == level)
    assert first["data-level"] == level and first.select_one(".sw-cat").text == short


async def test_a_dust_storm_beyond_500_reads_500_plus_and_hazardous(aiohttp_client, upstream, clock):
    payload = openmeteo_air_document(clock.time(), us_aqi=1240, pm10=2650.0)
    client = await started(aiohttp_client, upstream, clock, payload)

    current = (await (await client.get("/widgets/air.json")).json())["data"]["current"]
    now = (await soup_of(client)).select_one(".sw-now")

    assert (current["us_aqi"], current["beyond_index"], current["level"]) == (500, True, "hazardous")
    assert now.select_one(".sw-index").text == "۵۰۰+" and now.select_one(".sw-category").text == "خطرناک"


async def test_hours_without_an_index_read_unknown_not_a_colour(aiohttp_client, upstream, clock):
    payload = openmeteo_air_document(clock.time(), pm10=None)
    for hour in (1, 2, 3):
        payload["hourly"]["us_aqi"][hour_index(payload, hour)] = None
    client = await started(aiohttp_client, upstream, clock, payload)

    root = await soup_of(client)

    first = root.select_one(".sw-forecast li")
    assert first["data-level"] == "none" and "sw-aqi-none" in first["class"]
    assert (first.select_one(".sw-value").text, first.select_one(".sw-cat").text) == ("—", "نامعلوم")
    assert root.select(".sw-details li")[1].text == "PM10: — میکروگرم بر مترمکعب"


async def test_every_colour_comes_with_its_category_in_words(aiohttp_client, upstream, clock):
    client = await started(aiohttp_client, upstream, clock, forecast_hours=24)

    root = await soup_of(client)

    coloured = root.select('[class*="sw-aqi-"]')
    assert len(coloured) == 1 + 8
    for element in coloured:
        words = element.select_one(".sw-category, .sw-cat")
        assert words is not None and words.text.strip(), element


# -- Colours ------------------------------------------------------------------------------------


def contrast(first: str, second: str) -> float:
    """WCAG 2.1's contrast ratio of two sRGB colours (#rgb or #rrggbb)."""

    def luminance(colour: str) -> float:
        hex_digits = colour.lstrip("#")
        if len(hex_digits) == 3:
            hex_digits = "".join(c * 2 for c in hex_digits)
        channels = [int(hex_digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_ratio_is_wcags():
    assert contrast("#000", "#fff") == pytest.approx(21)
    assert contrast("#777", "#fff") == pytest.approx(4.48, abs=0.01)  # just under AA


def theme_colours(style: str) -> dict[str, dict[str, str]]:
    """Each theme's box background and category colours, as the fragment's stylesheet sets them."""
    found: dict[str, dict[str, str]] = {"light": {}, "dark": {}, "auto-dark": {}}
    light_bg = re.search(r"\.sw-widget\{[^}]*--_bg:var\(--sw-bg,(#[0-9a-f]+)\)", style)
    dark_bg = re.search(r"\.sw-widget\.sw-theme-dark\{[^}]*--_bg:var\(--sw-bg,(#[0-9a-f]+)\)", style)
    assert light_bg and dark_bg
    found["light"]["background"] = light_bg[1]
    found["dark"]["background"] = found["auto-dark"]["background"] = dark_bg[1]
    media = style.index("@media (prefers-color-scheme:dark){\n.sw-air")
    for match in re.finditer(
        r"\.sw-air(\.sw-theme-(?:dark|auto))? \.sw-aqi-(\w+)\{--_aqi:(#[0-9a-f]+)\}", style
    ):
        theme = {None: "light", ".sw-theme-dark": "dark", ".sw-theme-auto": "auto-dark"}[match[1]]
        if theme == "auto-dark":
            assert match.start() > media  # only where the reader's system is dark
        found[theme][match[2]] = match[3]
    return found


async def test_every_category_colour_meets_aa_contrast_on_both_themes(aiohttp_client, upstream, clock):
    client = await started(aiohttp_client, upstream, clock)
    root = await soup_of(client)

    themes = theme_colours(root.style.text)

    keys = {level.key for level in LEVELS}
    assert themes["auto-dark"] == {key: value for key, value in themes["dark"].items()}
    for theme, colours in themes.items():
        background = colours.pop("background")
        assert set(colours) == keys, theme
        ratios = {key: round(contrast(colour, background), 2) for key, colour in colours.items()}
        assert all(ratio >= AA_TEXT for ratio in ratios.values()), (theme, background, ratios)
    # Each theme tells its six categories apart by colour too, not only by their words.
    assert len(set(themes["light"].values())) == len(set(themes["dark"].values())) == len(keys)


# -- The place is the weather's -----------------------------------------------------------------


async def test_the_place_is_the_weathers_configured_once(aiohttp_client, upstream, clock):
    payload = openmeteo_air_document(clock.time())
    payload["latitude"], payload["longitude"] = 34.8, 48.6
    hamedan = {"name": "همدان", "latitude": 34.7983, "longitude": 48.5148}
    client = await started(aiohttp_client, upstream, clock, payload, weather=hamedan)

    body = await (await client.get("/widgets/air.json")).json()
    root = await soup_of(client)

    query = upstream.requests[0].query
    assert (query["latitude"], query["longitude"]) == ("34.7983", "48.5148")
    assert body["data"]["location"]["name"] == "همدان"
    assert root.select_one(".sw-title").text == "کیفیت هوای همدان"


def test_the_air_section_takes_no_place_of_its_own(monkeypatch):
    monkeypatch.setenv("SIDEBAR_WIDGETS__AIR__LATITUDE", "34.8")
    with pytest.raises(ConfigError, match="widgets.air.latitude: unknown setting"):
        load_settings()


def test_a_place_set_for_the_weather_reaches_the_air_provider(monkeypatch):
    monkeypatch.setenv("SIDEBAR_WIDGETS__WEATHER__NAME", "همدان")
    monkeypatch.setenv("SIDEBAR_WIDGETS__WEATHER__TIMEZONE", "Asia/Tehran")

    air = configure_widgets(load_settings(), default_registry())["air"]

    assert air.enabled and [p.id for p in air.providers] == ["openmeteo_air"]
    assert air.providers[0].config.place.name == "همدان"


async def test_a_weather_name_with_markup_is_printed_as_text(aiohttp_client, upstream, clock):
    name = '<img src=x onerror="alert(1)">&amp; فامنین'
    client = await started(aiohttp_client, upstream, clock, weather={"name": name})

    html = await (await client.get("/widgets/air.html")).text()
    root = BeautifulSoup(html, "html.parser")

    assert "<img" not in html and "&lt;img" in html
    assert root.select_one(".sw-title").text == f"کیفیت هوای {name}"


# -- Options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "blocks"),
    [("", 4), ("?forecast_hours=0", 0), ("?forecast_hours=6", 2), ("?forecast_hours=24", 8)],
)
async def test_forecast_hours_chooses_how_far_ahead_the_box_looks(
    aiohttp_client, upstream, clock, query, blocks
):
    client = await started(aiohttp_client, upstream, clock)

    body = await (await client.get(f"/widgets/air.json{query}")).json()
    root = await soup_of(client, f"/widgets/air.html{query}")

    assert len(body["data"]["forecast"]) == blocks
    assert len(root.select(".sw-forecast li")) == blocks
    assert (root.select_one(".sw-ahead") is not None) == (blocks > 0)


async def test_the_configured_forecast_hours_is_the_default_view(aiohttp_client, upstream, clock):
    client = await started(aiohttp_client, upstream, clock, forecast_hours=0)

    root = await soup_of(client)

    assert root.select_one(".sw-forecast") is None and root.select_one(".sw-now") is not None


@pytest.mark.parametrize("value", ["25", "27", "4", "-3", "abc", "", "۱۲", "030", "1e1", "12.0", "٣"])
async def test_forecast_hours_outside_whole_blocks_to_24_is_400(aiohttp_client, upstream, clock, value):
    client = await started(aiohttp_client, upstream, clock)
    for fmt in ("json", "html"):
        response = await client.get(f"/widgets/air.{fmt}", params={"forecast_hours": value})

        assert response.status == 400
        assert (await response.json())["error"] == FORECAST_HOURS_RULE


@pytest.mark.parametrize(
    ("value", "problem"), [(5, "multiple of 3"), (27, "less than or equal to 24"), (-3, "0")]
)
async def test_a_bad_configured_forecast_hours_stops_start_up(upstream, value, problem):
    with pytest.raises(ConfigError, match=f"widgets.air.forecast_hours: .*{problem}"):
        create_app(air_settings(upstream, forecast_hours=value))


# -- Bad answers never replace good data --------------------------------------------------------


async def test_an_old_reading_later_keeps_the_good_one_and_says_why(aiohttp_client, upstream, clock):
    client = await started(aiohttp_client, upstream, clock)
    first = await (await client.get("/widgets/air.json")).json()
    await clock.advance(0.35)
    old = openmeteo_air_document(clock.time() - 6 * 3600, us_aqi=12)
    old["hourly"] = openmeteo_air_document(clock.time())["hourly"]
    upstream.json(PATH, old)
    refresher = client.app[ENGINE].refreshers["air"]

    await refresher.trigger()

    second = await (await client.get("/widgets/air.json")).json()
    assert upstream.hits[PATH] == 2
    assert second["status"] == "stale" and second["data"] == first["data"]
    assert "not the hour now" in refresher.state.last_error
