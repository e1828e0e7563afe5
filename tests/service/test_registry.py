"""Providers plug in through the ``sidebar_widgets.providers`` entry-point group."""

from __future__ import annotations

import sys
import textwrap

import pytest

from service.registry import ENTRY_POINT_GROUP, default_registry
from service.settings import ConfigError


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A distribution on sys.path, as ``pip install`` would leave it, declaring one provider."""

    def install(module_source: str, entry: str) -> None:
        (tmp_path / "sidebar_weather_plugin.py").write_text(textwrap.dedent(module_source))
        dist = tmp_path / "sidebar_weather_plugin-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sidebar-weather-plugin\nVersion: 1.0\n")
        (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry}\n")
        monkeypatch.syspath_prepend(str(tmp_path))

    yield install
    sys.modules.pop("sidebar_weather_plugin", None)


def test_builtins_are_registered_explicitly_and_ship_no_test_widget() -> None:
    registry = default_registry(with_entry_points=False)
    widgets = {"links", "prices", "satellite", "weather", "air", "prayer", "date", "news"}
    assert set(registry.widgets) == widgets
    builtin = {
        "links",
        "tgju",
        "openmeteo",
        "metno",
        "openmeteo_air",
        "tiles",
        "prayer_times",
        "calendar",
        "feed",
    }
    assert builtin <= set(registry.providers)
    assert "probe" not in registry.providers


def test_the_test_probe_widget_arrives_through_the_plugin_entry_point() -> None:
    registry = default_registry()
    assert registry.widgets["probe"].name == "probe"
    assert registry.providers["probe"].widget == "probe"


def test_a_plugin_provider_is_found_through_its_entry_point(installed_plugin) -> None:
    installed_plugin(
        """
        from tests.support.probe import ProbeProvider

        class ProbeMirror(ProbeProvider):
            id = "probe_mirror"
        """,
        "probe_mirror = sidebar_weather_plugin:ProbeMirror",
    )
    registry = default_registry()
    assert registry.providers["probe_mirror"].widget == "probe"


def test_a_plugin_that_is_not_a_provider_is_refused_by_name(installed_plugin) -> None:
    installed_plugin("VALUE = 3\n", "bogus = sidebar_weather_plugin:VALUE")
    with pytest.raises(ConfigError, match="'bogus'.*neither a Provider nor a WidgetSpec"):
        default_registry()


def test_a_plugin_for_an_unknown_widget_is_refused(installed_plugin) -> None:
    installed_plugin(
        """
        from tests.support.probe import ProbeProvider

        class Horoscope(ProbeProvider):
            id = "horoscope"
            widget = "horoscope"
        """,
        "horoscope = sidebar_weather_plugin:Horoscope",
    )
    with pytest.raises(ConfigError, match="unknown widget 'horoscope'"):
        default_registry()
