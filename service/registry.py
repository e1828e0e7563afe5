"""Which widgets and providers exist: built-ins, registered explicitly, plus entry points.

A third-party package adds a provider by declaring, in its own pyproject.toml::

    [project.entry-points."sidebar_widgets.providers"]
    myprovider = "my_package.module:MyProvider"

The object may be a ``Provider`` subclass, or a ``WidgetSpec`` for a widget of its own.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from providers import BUILTIN_PROVIDERS
from providers.base import Provider
from service.settings import ConfigError
from service.widgets import BUILTIN_WIDGETS, WidgetSpec

ENTRY_POINT_GROUP = "sidebar_widgets.providers"

log = logging.getLogger(__name__)


class Registry:
    def __init__(self) -> None:
        self.widgets: dict[str, WidgetSpec] = {}
        self.providers: dict[str, type[Provider]] = {}

    def add_widget(self, spec: WidgetSpec) -> None:
        if spec.name in self.widgets and self.widgets[spec.name] is not spec:
            raise ConfigError(f"widget {spec.name!r} is registered twice")
        self.widgets[spec.name] = spec

    def add_provider(self, provider: type[Provider]) -> None:
        known = self.providers.get(provider.id)
        if known is not None and known is not provider:
            raise ConfigError(f"provider {provider.id!r} is registered twice")
        self.providers[provider.id] = provider

    def load_entry_points(self) -> None:
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = entry.load()
            except Exception as exc:  # a broken plug-in must name itself, not crash start-up
                raise ConfigError(
                    f"entry point {entry.name!r} ({entry.value}) failed to load: {exc}"
                ) from None
            if isinstance(obj, WidgetSpec):
                self.add_widget(obj)
            elif isinstance(obj, type) and issubclass(obj, Provider):
                self.add_provider(obj)
            else:
                raise ConfigError(
                    f"entry point {entry.name!r} ({entry.value}) is neither a Provider nor a WidgetSpec"
                )
            log.info("loaded plug-in %s from %s", entry.name, entry.value)

    def check(self) -> None:
        for provider in self.providers.values():
            if provider.widget not in self.widgets:
                raise ConfigError(f"provider {provider.id!r} feeds unknown widget {provider.widget!r}")


def default_registry(*, with_entry_points: bool = True) -> Registry:
    registry = Registry()
    for spec in BUILTIN_WIDGETS:
        registry.add_widget(spec)
    for provider in BUILTIN_PROVIDERS:
        registry.add_provider(provider)
    if with_entry_points:
        registry.load_entry_points()
    registry.check()
    return registry
