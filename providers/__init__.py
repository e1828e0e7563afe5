"""Built-in providers, registered explicitly (third-party ones come through entry points)."""

from providers.base import Provider
from providers.links import LinksProvider
from providers.probe import ProbeProvider

BUILTIN_PROVIDERS: tuple[type[Provider], ...] = (LinksProvider, ProbeProvider)
