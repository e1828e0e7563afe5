"""Configuration: TOML file named by SIDEBAR_CONFIG, environment on top, clear errors."""

from __future__ import annotations

import pytest

from service.registry import default_registry
from service.settings import ConfigError, load_settings
from service.widget_config import configure_widgets


def test_defaults_run_on_memory_with_the_links_widget() -> None:
    settings = load_settings()
    assert settings.redis_url is None
    widgets = configure_widgets(settings, default_registry())
    assert widgets["links"].enabled and widgets["links"].refresh_seconds == 3600
    assert [p.id for p in widgets["links"].providers] == ["links"]
    assert not widgets["probe"].enabled


def test_toml_file_and_environment_merge_with_environment_winning(tmp_path, monkeypatch) -> None:
    config = tmp_path / "sidebar.toml"
    config.write_text(
        'redis_url = "redis://file-host:6379/0"\n'
        "[widgets.links]\nrefresh_seconds = 600\n"
        'items = [{title = "شهرداری", url = "https://example.org/"}]\n'
        "[providers.probe]\ntimeout_seconds = 3\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SIDEBAR_CONFIG", str(config))
    monkeypatch.setenv("SIDEBAR_REDIS_URL", "rediss://env-host:6380/1")
    monkeypatch.setenv("SIDEBAR_WIDGETS__LINKS__REFRESH_SECONDS", "90")
    monkeypatch.setenv("SIDEBAR_PROVIDERS__PROBE__URL", "http://mirror.example/probe")

    settings = load_settings()

    assert str(settings.redis_url) == "rediss://env-host:6380/1"
    assert settings.widgets["links"].refresh_seconds == 90
    assert settings.widgets["links"].options["items"][0]["title"] == "شهرداری"
    assert settings.providers["probe"].timeout_seconds == 3
    assert settings.providers["probe"].url == "http://mirror.example/probe"
    links = configure_widgets(settings, default_registry())["links"]
    assert [str(i.url) for i in links.options.items] == ["https://example.org/"]


def test_provider_chain_from_the_environment_as_json(monkeypatch) -> None:
    monkeypatch.setenv("SIDEBAR_WIDGETS__PROBE__ENABLED", "true")
    monkeypatch.setenv("SIDEBAR_WIDGETS__PROBE__PROVIDERS", '["probe"]')
    monkeypatch.setenv("SIDEBAR_PROVIDERS__PROBE__URL", "http://127.0.0.1:9/probe")
    widgets = configure_widgets(load_settings(), default_registry())
    assert widgets["probe"].enabled and [p.id for p in widgets["probe"].providers] == ["probe"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SIDEBAR_REDIS_URL": "http://localhost:6379"}, "redis_url"),
        ({"SIDEBAR_PORT": "seventy"}, "port"),
        ({"SIDEBAR_WIDGETS__LINKS__REFRESH_SECONDS": "0"}, "widgets.links.refresh_seconds"),
        ({"SIDEBAR_ENGINE__JITTER_FRACTION": "2"}, "engine.jitter_fraction"),
        ({"SIDEBAR_LOG_LEVEL": "chatty"}, "log_level"),
        ({"SIDEBAR_CONFIG": "/nonexistent/sidebar.toml"}, "SIDEBAR_CONFIG"),
    ],
)
def test_bad_values_name_the_field(monkeypatch, env, message) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_settings()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SIDEBAR_WIDGETS__WEATHERX__ENABLED": "true"}, "widgets.weatherx: unknown widget"),
        ({"SIDEBAR_WIDGETS__LINKS__PROVIDERS": '["nope"]'}, "unknown provider 'nope'"),
        ({"SIDEBAR_WIDGETS__LINKS__PROVIDERS": '["probe"]'}, "feeds 'probe', not 'links'"),
        ({"SIDEBAR_WIDGETS__PROBE__ENABLED": "true"}, "provider 'probe' needs url"),
        (
            {"SIDEBAR_WIDGETS__LINKS__ITEMS": '[{"title": "x", "url": "not a url"}]'},
            "widgets.links.items.0.url",
        ),
        ({"SIDEBAR_WIDGETS__LINKS__COLOUR": "red"}, "widgets.links.colour"),
        ({"SIDEBAR_WIDGETS__PRICES__ITEMS": '["sekee", "sekee"]'}, "items must not repeat a key"),
        ({"SIDEBAR_WIDGETS__PRICES__DISPLAY_UNIT": "dinar"}, "widgets.prices.display_unit"),
        ({"SIDEBAR_WIDGETS__WEATHER__TIMEZONE": "Mars/Olympus"}, "unknown time zone"),
        ({"SIDEBAR_WIDGETS__WEATHER__DAYS": "9"}, "widgets.weather.days"),
        ({"SIDEBAR_WIDGETS__SATELLITE__BBOX": "[49.5, 34.85, 48.8, 35.3]"}, "west < east"),
        ({"SIDEBAR_WIDGETS__SATELLITE__SOURCE": "bing"}, "source 'bing' is not one of"),
        ({"SIDEBAR_WIDGETS__SATELLITE__SOURCE": "eox", "SIDEBAR_WIDGETS__SATELLITE__ZOOM": "15"}, "beyond"),
        ({"SIDEBAR_PROVIDERS__METNO__USER_AGENT": ""}, "providers.metno: MET Norway needs"),
    ],
)
def test_bad_widget_configuration_names_the_field(monkeypatch, env, message) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("[", r"\[")):
        configure_widgets(load_settings(), default_registry())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SIDEBAR_EMBED__ALLOWED_ORIGINS": '["avayefamenin.ir"]'}, "embed.allowed_origins"),
        ({"SIDEBAR_PUBLIC_URL": "widgets.example.org"}, "public_url"),
    ],
)
def test_bad_service_wide_values_name_the_field(monkeypatch, env, message) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_settings()


def test_malformed_toml_is_a_config_error(tmp_path, monkeypatch) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[widgets.links\nrefresh_seconds = 1\n")
    monkeypatch.setenv("SIDEBAR_CONFIG", str(config))
    with pytest.raises(ConfigError, match="SIDEBAR_CONFIG"):
        load_settings()


@pytest.mark.parametrize(
    "url",
    [
        "redis://cache:6379/0",
        "rediss://:secret@cache:6380/1",
        "redis+sentinel://s1:26379,s2:26380/mymaster/0",
    ],
)
def test_redis_urls_direct_and_through_sentinels_are_accepted(monkeypatch, url) -> None:
    monkeypatch.setenv("SIDEBAR_REDIS_URL", url)
    assert str(load_settings().redis_url) == url


@pytest.mark.parametrize(
    "url, message",
    [
        ("redis+sentinel://s1:26379", "a sentinel URL names the master"),
        ("redis+sentinel://s1:26379/mymaster/db", "a sentinel URL names the master"),
        ("redis://a:6379,b:6379/0", "Redis Cluster is not supported"),
        ("http://cache:6379", "URL scheme should be"),
    ],
)
def test_unusable_redis_urls_are_refused(monkeypatch, url, message) -> None:
    monkeypatch.setenv("SIDEBAR_REDIS_URL", url)
    with pytest.raises(ConfigError, match=f"redis_url: .*{message}"):
        load_settings()


@pytest.mark.parametrize(
    "env, message",
    [
        ({"SIDEBAR_WORKERS": "0"}, "workers: Input should be greater than or equal to 1"),
        ({"SIDEBAR_EVENT_LOOP": "trio"}, "event_loop: Input should be 'auto', 'asyncio' or 'uvloop'"),
        ({"SIDEBAR_LOG_FORMAT": "xml"}, "log_format: Input should be 'text' or 'json'"),
    ],
)
def test_serving_settings_are_checked(monkeypatch, env, message) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://s1:26379/mymaster/0?ssl=true",
        "redis+sentinel://s1:26379/mymaster/0?password=s3cret",
        "redis+sentinel://s1:26379/mymaster/0#tls",
    ],
)
def test_a_sentinel_url_with_options_it_would_ignore_is_refused_without_echoing_them(
    monkeypatch, url
) -> None:
    # Only hosts, master, db and credentials are read: "?ssl=true" would silently mean no TLS.
    monkeypatch.setenv("SIDEBAR_REDIS_URL", url)
    with pytest.raises(ConfigError, match="redis_url: .*a sentinel URL takes no options") as raised:
        load_settings()
    assert "s3cret" not in str(raised.value)
