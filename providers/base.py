"""What a provider is: an id, the widget it feeds, and one async fetch.

Providers fetch, parse and validate. They know nothing of caching, scheduling or serving: the
engine in ``service/`` owns all of that, and hands each fetch the shared HTTP session.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from providers.http import UpstreamSession


@dataclass(frozen=True)
class ProviderConfig:
    """A provider's settings, with its own defaults already applied."""

    url: str | None
    timeout_seconds: float
    api_key: str | None = None
    #: This provider's own User-Agent, when configured (``[providers.ID] user_agent``).
    user_agent: str | None = None
    #: The service-wide User-Agent every request carries unless a provider sets its own.
    http_user_agent: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    #: The validated options of the widget this provider feeds (e.g. the links list).
    widget_options: BaseModel | None = None
    #: The validated options of the widget whose place this provider's widget shows
    #: (``WidgetSpec.place_of``), e.g. the weather's place for the air box.
    place: BaseModel | None = None


class Provider(ABC):
    """Subclass, set the class attributes, implement ``fetch``."""

    id: ClassVar[str]
    widget: ClassVar[str]
    #: Shown next to the data wherever the source's terms ask for it.
    attribution: ClassVar[str | None] = None
    default_url: ClassVar[str | None] = None
    default_timeout_seconds: ClassVar[float] = 10.0
    requires_api_key: ClassVar[bool] = False

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    def attribution_text(self) -> str | None:
        """The attribution to show with this provider's data (per instance, e.g. per tile source)."""
        return self.attribution

    def config_error(self) -> str | None:
        """A setting this provider cannot run with; start-up stops with this message."""
        return None

    def unusable_reason(self) -> str | None:
        """Why this provider must be skipped as configured (None when it can run)."""
        if self.requires_api_key and not self.config.api_key:
            return f"provider {self.id!r} needs api_key"
        return None

    @abstractmethod
    async def fetch(self, http: UpstreamSession) -> BaseModel:
        """Fetch, parse and validate; raise ``UpstreamError`` or ``NotModified``."""
