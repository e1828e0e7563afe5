"""Settings + registry → the widgets this process runs, each with its provider chain."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from providers.base import Provider, ProviderConfig
from service.config_names import describe, unknown_in_sections
from service.registry import Registry
from service.settings import ConfigError, Settings, describe_validation_error
from service.widgets import WidgetSpec


@dataclass(frozen=True)
class ConfiguredWidget:
    spec: WidgetSpec
    enabled: bool
    refresh_seconds: float
    options: BaseModel
    #: The fallback chain, in order; providers that cannot run as configured are left out.
    providers: tuple[Provider, ...]
    #: Providers left out, with why (shown in /health so an operator sees a missing key).
    skipped: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def chain_timeout_seconds(self) -> float:
        return sum(p.config.timeout_seconds for p in self.providers)


def configure_widgets(settings: Settings, registry: Registry) -> dict[str, ConfiguredWidget]:
    # Read from the environment or a file, these names were checked by load_settings; settings
    # built in code get the same check (and words) here, unknown widgets and providers included.
    unknown = unknown_in_sections(settings, registry)
    if unknown:
        raise ConfigError(describe(unknown))
    return {name: _configure(name, spec, settings, registry) for name, spec in registry.widgets.items()}


def _configure(name: str, spec: WidgetSpec, settings: Settings, registry: Registry) -> ConfiguredWidget:
    given = settings.widgets.get(name)
    chain = tuple(spec.default_providers if given is None or given.providers is None else given.providers)
    enabled = spec.enabled_by_default if given is None or given.enabled is None else given.enabled
    if spec.enabled_once_configured and (given is None or given.enabled is None):
        enabled = any(_names_upstream(settings, provider_id) for provider_id in chain)
    refresh = spec.default_refresh_seconds
    if given is not None and given.refresh_seconds is not None:
        refresh = given.refresh_seconds
    try:
        options = spec.options_model.model_validate(given.options if given is not None else {})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, prefix=f"widgets.{name}.")) from None
    place = _place_options(spec, settings, registry)

    providers: list[Provider] = []
    skipped: list[str] = []
    for provider_id in chain:
        cls = registry.providers.get(provider_id)
        if cls is None:
            raise ConfigError(f"widgets.{name}.providers: unknown provider {provider_id!r}")
        if cls.widget != name:
            raise ConfigError(
                f"widgets.{name}.providers: provider {provider_id!r} feeds {cls.widget!r}, not {name!r}"
            )
        provider = cls(_provider_config(cls, settings, options, place))
        problem = provider.config_error() if enabled else None
        if problem is not None:
            raise ConfigError(f"providers.{provider_id}: {problem}")
        reason = provider.unusable_reason()
        if reason is None:
            providers.append(provider)
        else:
            skipped.append(reason)
    if enabled and not providers:
        detail = "; ".join(skipped) if skipped else "the chain is empty"
        raise ConfigError(f"widgets.{name}.providers: no usable provider ({detail})")
    return ConfiguredWidget(spec, enabled, refresh, options, tuple(providers), tuple(skipped))


def _place_options(spec: WidgetSpec, settings: Settings, registry: Registry) -> BaseModel | None:
    """The options of the widget whose place ``spec`` shows (``place_of``), validated as its own."""
    if spec.place_of is None:
        return None
    owner = registry.widgets.get(spec.place_of)
    if owner is None:
        raise ConfigError(f"widgets.{spec.name}: its place comes from unknown widget {spec.place_of!r}")
    given = settings.widgets.get(spec.place_of)
    try:
        return owner.options_model.model_validate(given.options if given is not None else {})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, prefix=f"widgets.{spec.place_of}.")) from None


def _names_upstream(settings: Settings, provider_id: str) -> bool:
    given = settings.providers.get(provider_id)
    return given is not None and bool(given.url)


def _provider_config(
    cls: type[Provider], settings: Settings, widget_options: BaseModel, place: BaseModel | None = None
) -> ProviderConfig:
    given = settings.providers.get(cls.id)
    url = cls.default_url
    timeout = cls.default_timeout_seconds
    api_key = user_agent = None
    options = {}
    if given is not None:
        url = given.url or url
        timeout = given.timeout_seconds or timeout
        api_key = given.api_key.get_secret_value() if given.api_key else None
        user_agent = given.user_agent
        options = given.options
    return ProviderConfig(
        url=url,
        timeout_seconds=timeout,
        api_key=api_key or None,
        user_agent=user_agent,
        http_user_agent=settings.http.user_agent,
        options=options,
        widget_options=widget_options,
        place=place,
    )
