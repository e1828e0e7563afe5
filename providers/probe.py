"""Reads ``{"value": int, "label": str}`` from ``url``: a provider for exercising the engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError

from providers.base import Provider, UpstreamError
from service.widgets.probe import ProbeData

if TYPE_CHECKING:
    from service.upstream import UpstreamSession


class ProbeProvider(Provider):
    id = "probe"
    widget = "probe"
    attribution = "probe upstream"

    def unusable_reason(self) -> str | None:
        return None if self.config.url else "provider 'probe' needs url"

    async def fetch(self, http: UpstreamSession) -> ProbeData:
        assert self.config.url is not None
        payload = await http.get_json(self.config.url)
        try:
            return ProbeData.model_validate(payload)
        except ValidationError as exc:
            raise UpstreamError("validation", f"probe: {exc.error_count()} invalid field(s)") from None
