"""The shape of the markup that host pages and validators rely on: styles, headings, landmarks, lang."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from bs4 import BeautifulSoup, Tag

from service.web.app import create_app
from tests.support.fed_service import WIDGETS, fed_settings

#: A rule of the stylesheet every fragment shares.
SHARED_RULE = ".sw-widget .sw-title{"


@pytest.fixture
async def client(aiohttp_client, upstream) -> TestClient:
    return await aiohttp_client(create_app(fed_settings(upstream)))


async def _soup(client: TestClient, path: str) -> BeautifulSoup:
    response = await client.get(path)
    assert response.status == 200, (path, await response.text())
    return BeautifulSoup(await response.text(), "html.parser")


def _root(soup: BeautifulSoup) -> Tag:
    root = soup.find(class_="sw-widget")
    assert isinstance(root, Tag)
    return root


@pytest.mark.parametrize("name", WIDGETS)
async def test_a_fragment_has_one_style_first_in_its_root(client, name):
    soup = await _soup(client, f"/widgets/{name}.html")

    root = _root(soup)
    assert len(soup.find_all("style")) == 1
    assert root.find(True) is root.find("style")  # the root's first element
    assert SHARED_RULE in root.style.text


@pytest.mark.parametrize("name", WIDGETS)
async def test_the_title_heading_level_is_the_heading_parameter_three_by_default(client, name):
    for query, level in (("", 3), ("?heading=2", 2), ("?heading=3", 3), ("?heading=4", 4)):
        soup = await _soup(client, f"/widgets/{name}.html{query}")
        titles = soup.select(".sw-title")
        assert [title.name for title in titles] == [f"h{level}"], query


@pytest.mark.parametrize("heading", ["1", "5", "h3", "", "3.0"])
async def test_a_heading_level_outside_two_to_four_is_a_bad_request(client, heading):
    response = await client.get(f"/widgets/links.html?heading={heading}")

    assert response.status == 400
    assert (await response.json())["error"] == "heading: must be 2, 3 or 4"


@pytest.mark.parametrize("name", WIDGETS)
async def test_an_embed_page_is_main_content_under_its_own_level_one_heading(client, name):
    soup = await _soup(client, f"/embed/{name}?heading=4")

    main = soup.find("main")
    assert isinstance(main, Tag) and main.find(class_="sw-widget") is not None
    assert [h.name for h in soup.find_all(["h1", "h2", "h3", "h4"])][:1] == ["h1"]
    assert main.find("h1") is not None
    assert soup.find("link", rel="icon") is not None  # no favicon request ending in a 404


async def test_the_gallery_carries_the_shared_stylesheet_once(client):
    page = await (await client.get("/")).text()
    soup = BeautifulSoup(page, "html.parser")

    assert page.count(SHARED_RULE) == 1
    head = soup.head
    assert head is not None and SHARED_RULE in head.style.text
    fragments = soup.select(".sw-widget")
    assert len(fragments) == len(WIDGETS)
    for fragment in fragments:  # a fragment's own rules, if any, still come first in it
        styles = fragment.find_all("style")
        assert len(styles) <= 1 and (not styles or fragment.find(True) is styles[0])


async def test_the_gallery_has_a_level_one_heading_and_a_main_landmark(client):
    soup = await _soup(client, "/")

    assert len(soup.find_all("h1")) == 1
    main = soup.find("main")
    assert isinstance(main, Tag) and len(main.select(".sw-widget")) == len(WIDGETS)
    assert soup.find("link", rel="icon") is not None


@pytest.mark.parametrize("theme", ["light", "dark", "auto"])
async def test_the_gallery_honours_the_theme(client, theme):
    soup = await _soup(client, f"/?theme={theme}")

    assert soup.body is not None and f"gl-theme-{theme}" in soup.body["class"]
    assert all(f"sw-theme-{theme}" in widget["class"] for widget in soup.select(".sw-widget"))


async def test_the_gallery_refuses_an_unknown_theme(client):
    response = await client.get("/?theme=neon")

    assert response.status == 400
    assert (await response.json())["error"] == "theme: must be light, dark or auto"


async def test_english_attributions_are_marked_english_and_persian_ones_are_not(client):
    satellite = _root(await _soup(client, "/widgets/satellite.html")).select_one(".sw-attribution")
    weather = _root(await _soup(client, "/widgets/weather.html")).select_one(".sw-attribution")

    assert satellite is not None and weather is not None
    english = satellite.select('[lang="en"]')
    assert [span.text for span in english] == [satellite.text.strip()]
    assert english[0].text.startswith("Tiles © Esri")
    assert "Open-Meteo" in weather.text and weather.select("[lang]") == []


async def test_a_latin_name_in_a_persian_credit_is_one_left_to_right_unbroken_piece(client):
    weather = _root(await _soup(client, "/widgets/weather.html")).select_one(".sw-attribution")

    assert weather is not None
    assert [bdi.text for bdi in weather.select("bdi.sw-latin[dir=ltr]")] == ["Open-Meteo.com (CC BY 4.0)"]
    assert weather.text.strip() == "داده‌های هواشناسی: Open-Meteo.com (CC BY 4.0)"
