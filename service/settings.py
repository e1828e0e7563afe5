"""Configuration: environment (``SIDEBAR_…``, nested with ``__``) over an optional TOML file.

Widget and provider sections are open-ended (``extra="allow"``) because each widget and provider
validates its own options; what is unset here falls back to the widget's or provider's defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    UrlConstraints,
    field_validator,
)
from pydantic_core import MultiHostUrl
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

if TYPE_CHECKING:
    from service.registry import Registry

#: ``redis+sentinel://host:26379,host:26380/SERVICE/DB`` asks those sentinels for the master.
#: More serving processes than this is a typo, not a machine: each one holds its own app and pools.
MAX_WORKERS = 64

RedisUrl = Annotated[MultiHostUrl, UrlConstraints(allowed_schemes=["redis", "rediss", "redis+sentinel"])]

DEFAULT_USER_AGENT = "sidebar-widgets/0.1 (+https://github.com/sidebar-widgets/sidebar-widgets)"


class WidgetSettings(BaseModel):
    """``[widgets.NAME]``: None means "use the widget's default"."""

    model_config = ConfigDict(extra="allow")

    enabled: bool | None = None
    providers: list[str] | None = None
    refresh_seconds: float | None = Field(default=None, gt=0)

    @property
    def options(self) -> dict[str, Any]:
        """Widget-specific keys (``items``, ``days``…), validated by the widget itself."""
        return dict(self.model_extra or {})


class ProviderSettings(BaseModel):
    """``[providers.ID]``: what every HTTP provider understands, plus its own extra keys."""

    model_config = ConfigDict(extra="allow")

    url: str | None = None
    timeout_seconds: float | None = Field(default=None, gt=0)
    api_key: SecretStr | None = None
    user_agent: str | None = None

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class HttpSettings(BaseModel):
    """The one shared upstream client."""

    model_config = ConfigDict(extra="forbid")

    user_agent: str = Field(default=DEFAULT_USER_AGENT, min_length=1)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    timeout_seconds: float = Field(default=15.0, gt=0)
    max_response_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    max_redirects: int = Field(default=5, ge=0)
    #: Each provider (and the tile source) has its own connection pool of this size, so one
    #: hanging upstream can exhaust only its own connections.
    max_connections_per_provider: int = Field(default=10, ge=1)
    #: Processes that parse large upstream answers (tgju's pages) off the serving process, so the
    #: parse's allocations never reach its garbage collector. 0 parses in a thread instead.
    parse_workers: int = Field(default=1, ge=0, le=16)


class EmbedSettings(BaseModel):
    """Who may embed the widgets."""

    model_config = ConfigDict(extra="forbid")

    #: Origins allowed to frame /embed/* pages and to read widgets cross-origin (CORS), e.g.
    #: ``["https://avayefamenin.ir"]``; ``["*"]`` allows any site.
    allowed_origins: list[str] = Field(default_factory=lambda: ["*"], min_length=1)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} is not an origin (https://host[:port]) or *")
        return [origin.rstrip("/") for origin in value]


class EngineSettings(BaseModel):
    """Refresh engine tuning. Defaults suit production; tests shrink the times."""

    model_config = ConfigDict(extra="forbid")

    #: First retry delay after a failure; the n-th waits base × n², capped at the refresh interval.
    retry_base_seconds: float = Field(default=60.0, gt=0)
    #: Refreshes start up to this fraction of the interval early, at random, so replicas spread out.
    jitter_fraction: float = Field(default=0.1, ge=0, lt=1)
    #: An upstream's Retry-After is honoured up to this long; a longer one is capped.
    max_retry_after_seconds: float = Field(default=3600.0, gt=0)
    #: How long a request for a widget that never had data waits for the first fetch.
    cold_wait_seconds: float = Field(default=5.0, ge=0)
    #: A refresh lock's lifetime between renewals: its holder renews it while the fetch runs, so
    #: this is only how long a holder that died blocks the others.
    lock_seconds: float = Field(default=10.0, gt=0)
    #: Extra lock lifetime beyond the provider chain's timeouts.
    lock_margin_seconds: float = Field(default=5.0, gt=0)
    #: Advertised to HTTP caches: serve stale while revalidating / when we fail.
    stale_while_revalidate_seconds: int = Field(default=60, ge=0)
    stale_if_error_seconds: int = Field(default=86400, ge=0)
    #: Run the background scheduler (off only in tests that drive refreshes by hand).
    background: bool = True


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIDEBAR_", env_nested_delimiter="__", extra="forbid")

    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=1, le=65535)
    log_level: str = "INFO"
    #: ``json``: one JSON object per line (widget, provider and reason as fields where known).
    log_format: Literal["text", "json"] = "text"
    #: One line per request, probes (/livez, /readyz, /health, /metrics) left out.
    access_log: bool = False
    #: Serving processes on the one port (SO_REUSEPORT); more than one needs ``redis_url``.
    workers: int = Field(default=1, ge=1, le=MAX_WORKERS)
    #: ``auto`` runs uvloop when it is installed (the ``speed`` extra), asyncio's loop otherwise.
    event_loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    #: Where browsers reach this service (``https://widgets.example.org``): fragments embedded in
    #: another site's pages need absolute URLs for images and links. Empty: root-relative URLs.
    public_url: str = ""
    #: Reverse proxies (addresses or networks) whose ``X-Forwarded-For`` names the real client
    #: and whose ``X-Forwarded-Proto`` the gallery's snippets use; from anyone else these headers
    #: are ignored (they are the client's to write).
    trusted_proxies: list[IPvAnyNetwork] = []
    redis_url: RedisUrl | None = None
    redis_prefix: str = "sidebar:"
    #: On SIGTERM the service stops accepting connections and gives requests in flight this long
    #: to finish before it exits (a rolling deploy should not cut answers off mid-way).
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    http: HttpSettings = HttpSettings()
    engine: EngineSettings = EngineSettings()
    embed: EmbedSettings = EmbedSettings()
    widgets: dict[str, WidgetSettings] = {}
    providers: dict[str, ProviderSettings] = {}

    @field_validator("redis_url", mode="before")
    @classmethod
    def _empty_url_means_memory(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("redis_url")
    @classmethod
    def _one_host_unless_sentinel(cls, value: MultiHostUrl | None) -> MultiHostUrl | None:
        if value is None:
            return None
        if value.scheme == "redis+sentinel":
            parts = [part for part in (value.path or "").split("/") if part]
            if not parts or len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
                raise ValueError("a sentinel URL names the master: redis+sentinel://host:26379/mymaster/0")
            # Unlike redis://, nothing after the path is read: "?ssl=true" would silently mean
            # a plain connection, so it is refused rather than ignored.
            if value.query is not None or value.fragment is not None:
                raise ValueError(
                    "a sentinel URL takes no options (?… or #…): redis+sentinel://host/mymaster/0"
                )
        elif len(value.hosts()) != 1:
            raise ValueError("several hosts need redis+sentinel:// (Redis Cluster is not supported)")
        return value

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("SIDEBAR_CONFIG")
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise ConfigError(f"SIDEBAR_CONFIG: no such file: {config_file}")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


class ConfigError(Exception):
    """A configuration problem, worded for an operator (field and problem)."""


def load_settings(*, registry: Registry | None = None, **overrides: Any) -> Settings:
    """Read settings, turning every validation problem into one ``ConfigError`` message.

    Names nothing reads (``SIDEBAR_REDIS_URLL``, a misspelt key in the file) are refused first,
    all in one message: pydantic-settings would ignore them, and a typo would then show only as
    a default that never changed. ``registry`` (the default one when None) says which widgets and
    providers, with which options, exist.
    """
    from pydantic import ValidationError

    # Imported here: both need this module's settings classes.
    from service.config_names import check_names
    from service.registry import default_registry

    try:
        check_names(os.environ, registry or default_registry())
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    except ValueError as exc:  # a malformed TOML file
        raise ConfigError(f"SIDEBAR_CONFIG: {exc}") from None


def describe_validation_error(exc: Any, prefix: str = "") -> str:
    """``widgets.links.refresh_seconds: Input should be greater than 0`` — one line per problem."""
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        lines.append(f"{prefix}{where}: {error['msg']}")
    return "; ".join(lines)
