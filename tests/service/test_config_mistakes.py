"""Configuration mistakes stop the service with one line: names nothing reads, unknown price items.

A misspelt name used to be ignored, and the service started on the very default it was meant to
change; an unknown price item started fine and only ever showed as missing.
"""

from __future__ import annotations

import pytest

from service.registry import default_registry
from service.settings import ConfigError, Settings, load_settings
from service.widget_config import configure_widgets
from tests.service.test_cli import run
from tests.support.redis_server import free_port

#: No upstream is reached from these tests, even should a check fail to stop start-up.
OFFLINE = {
    **{f"SIDEBAR_WIDGETS__{name}__ENABLED": "false" for name in ("PRICES", "WEATHER", "AIR", "SATELLITE")},
    "SIDEBAR_ENGINE__BACKGROUND": "false",
}


def refusal(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> str:
    """The message start-up stops with, given these variables."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as raised:
        configure_widgets(load_settings(), default_registry())
    message = str(raised.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("variable", "value", "meant"),
    [
        # The three of the issue: a typo, a missing plural, a setting outside its section.
        ("SIDEBAR_REDIS_URLL", "redis://127.0.0.1:6379/0", "SIDEBAR_REDIS_URL"),
        ("SIDEBAR_PROVIDER__TGJU__URL", "https://mirror.example", "SIDEBAR_PROVIDERS__TGJU__URL"),
        ("SIDEBAR_ALLOWED_ORIGINS", '["https://avayefamenin.ir"]', "SIDEBAR_EMBED__ALLOWED_ORIGINS"),
        # Every level: a section's setting, a widget, a widget's option, a provider's setting, an
        # option below a key of the operator's choosing, a name below a plain value.
        ("SIDEBAR_HTTP__USER_AGENTT", "site ops@example.org", "SIDEBAR_HTTP__USER_AGENT"),
        ("SIDEBAR_WIDGETS__PRICSE__ENABLED", "false", "SIDEBAR_WIDGETS__PRICES__ENABLED"),
        ("SIDEBAR_WIDGETS__PRICES__DISPLAY_UNITS", "rial", "SIDEBAR_WIDGETS__PRICES__DISPLAY_UNIT"),
        ("SIDEBAR_WIDGETS__LINKS__REFRESH", "60", "SIDEBAR_WIDGETS__LINKS__REFRESH_SECONDS"),
        ("SIDEBAR_PROVIDERS__TGJU__URLL", "https://mirror.example", "SIDEBAR_PROVIDERS__TGJU__URL"),
        (
            "SIDEBAR_WIDGETS__SATELLITE__SOURCES__MINE__URLL",
            "https://tiles.example/{z}/{x}/{y}.jpg",
            "SIDEBAR_WIDGETS__SATELLITE__SOURCES__MINE__URL",
        ),
        ("SIDEBAR_ENGINE__BACKGROUND__NOW", "true", "SIDEBAR_ENGINE__BACKGROUND"),
        # Names are matched without regard to case, as the settings match them.
        ("sidebar_redis_urll", "redis://127.0.0.1:6379/0", "SIDEBAR_REDIS_URL"),
    ],
)
def test_a_misspelt_variable_is_refused_with_the_name_it_resembles(monkeypatch, variable, value, meant):
    message = refusal(monkeypatch, {variable: value})
    assert f"({variable}, did you mean {meant}?)" in message


def test_the_message_says_which_setting_widget_or_provider_is_unknown(monkeypatch):
    message = refusal(
        monkeypatch,
        {
            "SIDEBAR_REDIS_URLL": "redis://127.0.0.1:6379/0",
            "SIDEBAR_WIDGETS__PRICSE__ENABLED": "false",
            "SIDEBAR_PROVIDERS__TGJUU__URL": "https://mirror.example",
        },
    )
    assert "redis_urll: unknown setting (SIDEBAR_REDIS_URLL" in message
    assert "widgets.pricse: unknown widget (SIDEBAR_WIDGETS__PRICSE__ENABLED" in message
    assert "providers.tgjuu: unknown provider (SIDEBAR_PROVIDERS__TGJUU__URL" in message


def test_every_unknown_name_is_named_in_the_one_line(monkeypatch):
    env = {
        "SIDEBAR_REDIS_URLL": "redis://127.0.0.1:6379/0",
        "SIDEBAR_PROVIDER__TGJU__URL": "https://mirror.example",
        "SIDEBAR_ALLOWED_ORIGINS": '["*"]',
    }
    message = refusal(monkeypatch, env)
    assert all(variable in message for variable in env)


def test_with_no_close_name_the_name_is_refused_all_the_same(monkeypatch):
    message = refusal(monkeypatch, {"SIDEBAR_WIDGETS__LINKS__COLOUR": "red"})
    assert message == "widgets.links.colour: unknown setting (SIDEBAR_WIDGETS__LINKS__COLOUR)"


def test_an_unknown_widget_or_provider_far_from_any_lists_the_known_ones(monkeypatch):
    message = refusal(monkeypatch, {"SIDEBAR_PROVIDERS__HOROSCOPE__URL": "https://stars.example"})
    assert "providers.horoscope: unknown provider" in message
    assert "known: brsapi, calendar, feed, links, metno, navasan, openmeteo" in message


def test_a_guess_is_offered_only_when_there_is_one(monkeypatch):
    # Weather's and prayer times' latitude are as likely: naming either would mislead.
    assert "did you mean" not in refusal(monkeypatch, {"SIDEBAR_LATITUDE": "35.1"})


def test_a_widgets_option_is_never_guessed_from_another_widgets(monkeypatch):
    # The satellite widget has a title; the prices widget has none.
    message = refusal(monkeypatch, {"SIDEBAR_WIDGETS__PRICES__TITLE": "قیمت‌ها"})
    assert message == "widgets.prices.title: unknown setting (SIDEBAR_WIDGETS__PRICES__TITLE)"


def test_keys_inside_a_json_value_are_checked_as_well(monkeypatch):
    message = refusal(
        monkeypatch,
        {"SIDEBAR_WIDGETS__LINKS__ITEMS": '[{"titel": "فرمانداری", "url": "https://example.org/"}]'},
    )
    assert message == (
        "widgets.links.items.0.titel: unknown setting "
        "(in SIDEBAR_WIDGETS__LINKS__ITEMS, did you mean widgets.links.items.0.title?)"
    )


def test_sidebar_config_is_read_by_its_exact_name_only(monkeypatch, tmp_path):
    config = tmp_path / "sidebar.toml"
    config.write_text('redis_prefix = "file:"\n', encoding="utf-8")
    assert "did you mean SIDEBAR_CONFIG?" in refusal(monkeypatch, {"sidebar_config": str(config)})


def test_known_names_pass_in_any_case_at_any_level_and_as_json(monkeypatch):
    for key, value in {
        "sidebar_port": "9090",
        "SIDEBAR_HTTP": '{"user_agent": "famenin-news ops@avayefamenin.example"}',
        "SIDEBAR_WIDGETS__LINKS__REFRESH_SECONDS": "600",
        "SIDEBAR_WIDGETS__PRICES__ITEMS": '["sekee", "oil_brent", "silver_925"]',
        "SIDEBAR_WIDGETS__SATELLITE__SOURCE": "mine",
        "SIDEBAR_WIDGETS__SATELLITE__SOURCES__MINE__URL": "https://tiles.example/{z}/{x}/{y}.jpg",
        "SIDEBAR_WIDGETS__SATELLITE__SOURCES__MINE__ATTRIBUTION": "Tiles: example",
        "SIDEBAR_PROVIDERS__TGJU__URL": "https://mirror.example",
    }.items():
        monkeypatch.setenv(key, value)

    settings = load_settings()
    widgets = configure_widgets(settings, default_registry())

    assert settings.port == 9090 and settings.http.user_agent.startswith("famenin-news")
    assert widgets["links"].refresh_seconds == 600
    assert widgets["prices"].options.items == ["sekee", "oil_brent", "silver_925"]


def test_unknown_keys_in_the_file_are_refused_at_every_level(monkeypatch, tmp_path):
    config = tmp_path / "sidebar.toml"
    config.write_text(
        'redis_urll = "redis://127.0.0.1:6379/0"\n'
        'allowed_origins = ["*"]\n'
        '[http]\nuser_agentt = "site ops@example.org"\n'
        "[widgets.links]\nrefresh_second = 600\n"
        'items = [{titel = "شهرداری", url = "https://example.org/"}]\n'
        "[widgets.satelite]\nzoom = 11\n"
        '[providers.tgju]\nurll = "https://mirror.example"\n',
        encoding="utf-8",
    )
    message = refusal(monkeypatch, {"SIDEBAR_CONFIG": str(config)})
    where = f"in {config}"
    for expected in (
        f"redis_urll: unknown setting ({where}, did you mean redis_url?)",
        f"allowed_origins: unknown setting ({where}, did you mean embed.allowed_origins?)",
        f"http.user_agentt: unknown setting ({where}, did you mean http.user_agent?)",
        f"widgets.links.refresh_second: unknown setting ({where}, "
        "did you mean widgets.links.refresh_seconds?)",
        f"widgets.links.items.0.titel: unknown setting ({where}, did you mean widgets.links.items.0.title?)",
        f"widgets.satelite: unknown widget ({where}, did you mean widgets.satellite?)",
        f"providers.tgju.urll: unknown setting ({where}, did you mean providers.tgju.url?)",
    ):
        assert expected in message


def test_the_files_top_level_keys_are_matched_without_regard_to_case_like_the_settings(monkeypatch, tmp_path):
    config = tmp_path / "sidebar.toml"
    config.write_text(
        'REDIS_PREFIX = "file:"\n[HTTP]\nuser_agent = "site ops@example.org"\n', encoding="utf-8"
    )
    monkeypatch.setenv("SIDEBAR_CONFIG", str(config))
    settings = load_settings()
    assert settings.redis_prefix == "file:" and settings.http.user_agent == "site ops@example.org"


def test_settings_built_in_code_get_the_same_check():
    settings = Settings(
        widgets={"pricse": {"enabled": False}}, providers={"tgju": {"urll": "https://mirror.example"}}
    )
    with pytest.raises(ConfigError) as raised:
        configure_widgets(settings, default_registry())
    assert str(raised.value) == (
        "widgets.pricse: unknown widget (did you mean widgets.prices?); "
        "providers.tgju.urll: unknown setting (did you mean providers.tgju.url?)"
    )


def test_an_unknown_price_item_is_refused_with_the_key_it_resembles(monkeypatch):
    message = refusal(monkeypatch, {"SIDEBAR_WIDGETS__PRICES__ITEMS": '["sekke", "price_dolar_rl", "ons"]'})
    assert message == (
        "widgets.prices.items: Value error, unknown item key(s): "
        "sekke (did you mean sekee?), price_dolar_rl (did you mean price_dollar_rl?)"
    )


def test_an_unknown_price_item_like_no_key_lists_the_keys_offered(monkeypatch):
    message = refusal(monkeypatch, {"SIDEBAR_WIDGETS__PRICES__ITEMS": '["dogecoin"]'})
    assert "unknown item key(s): dogecoin (offered: price_dollar_rl, price_eur," in message
    assert "oil_brent" in message and "silver_999" in message


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {"SIDEBAR_REDIS_URLL": "redis://127.0.0.1:1/0", "SIDEBAR_ALLOWED_ORIGINS": '["*"]'},
            ["did you mean SIDEBAR_REDIS_URL?", "did you mean SIDEBAR_EMBED__ALLOWED_ORIGINS?"],
        ),
        ({"SIDEBAR_WIDGETS__PRICES__ITEMS": '["sekke"]'}, ["sekke (did you mean sekee?)"]),
        # A value checked by a widget itself, which workers used to report with a traceback each.
        ({"SIDEBAR_WIDGETS__PRICES__DISPLAY_UNIT": "dinar"}, ["widgets.prices.display_unit"]),
    ],
)
async def test_serve_stops_on_a_mistake_with_exit_2_and_one_line(env, named, workers):
    # Redis is named (workers need it) but never reached: the mistake stops start-up before.
    code, out, err = await run(
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),
        *workers,
        env={**OFFLINE, "SIDEBAR_REDIS_URL": "redis://127.0.0.1:1/0", **env},
    )
    assert code == 2
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith("sidebar-widgets: configuration error: ")
    assert all(part in err for part in named)
