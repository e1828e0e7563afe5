"""A diagnostic widget fed by the ``probe`` provider: off unless an operator turns it on.

It exercises the whole engine against any JSON endpoint with ``{"value": …, "label": …}``, which
is how the test suite drives refresh, coalescing and failure handling without a real upstream.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from service.widgets.base import WidgetSpec


class ProbeData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: int = Field(ge=0)
    label: str = Field(min_length=1, max_length=500)


PROBE = WidgetSpec(
    name="probe",
    title="آزمایش",
    data_model=ProbeData,
    default_providers=("probe",),
    default_refresh_seconds=60,
    enabled_by_default=False,
)
