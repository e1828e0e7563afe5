"""A diagnostic widget and its provider, for driving the engine against any JSON endpoint.

The provider reads ``{"value": int, "label": str}`` from its ``url``. Both are registered as a
plug-in through the ``sidebar_widgets.providers`` entry point (``tests/support/plugins``), the
same way a third-party package adds a widget, so the service itself ships no test widget.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from providers.base import Provider
from providers.http import UpstreamError, UpstreamSession
from service.widgets.base import WidgetSpec


class ProbeData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: int = Field(ge=0, le=10**12)
    label: str = Field(min_length=1, max_length=500)


PROBE = WidgetSpec(
    name="probe",
    title="آزمایش",
    data_model=ProbeData,
    default_providers=("probe",),
    default_refresh_seconds=60,
    enabled_by_default=False,
)


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
