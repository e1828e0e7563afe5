"""Links come from configuration, so "fetching" is validating the configured list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.base import Provider
from service.widgets.links import LinksData, LinksOptions

if TYPE_CHECKING:
    from providers.http import UpstreamSession


class LinksProvider(Provider):
    id = "links"
    widget = "links"

    async def fetch(self, http: UpstreamSession) -> LinksData:
        options = self.config.widget_options
        items = options.items if isinstance(options, LinksOptions) else LinksOptions().items
        return LinksData(items=items)
