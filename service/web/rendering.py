"""HTML fragments: Jinja2 with autoescape, one template per widget inside a shared frame."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel

from service import persian
from service.engine.snapshot import Snapshot
from service.widgets import WidgetSpec


def create_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("service", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fa_digits"] = persian.digits
    env.filters["fa_number"] = persian.number
    env.filters["jalali"] = persian.jalali_datetime
    env.filters["age"] = persian.age_phrase
    env.filters["fa_signed"] = persian.signed
    env.filters["fa_degrees"] = persian.degrees
    env.filters["compass"] = persian.compass
    env.filters["jalali_day_month"] = persian.jalali_day_month
    env.filters["day_month"] = persian.gregorian_day_month
    env.filters["clock_time"] = persian.clock_time
    env.filters["epoch"] = persian.epoch
    env.filters["shown_minute"] = persian.shown_minute
    env.filters["language"] = persian.language
    env.filters["latin_runs"] = persian.latin_runs
    return env


class Renderer:
    def __init__(self, env: Environment | None = None, *, base_url: str = "") -> None:
        self.env = env or create_environment()
        self.env.globals["base_url"] = base_url

    def fragment(
        self,
        spec: WidgetSpec,
        snapshot: Snapshot | None,
        status: str,
        view: dict[str, Any],
        *,
        options: BaseModel | None = None,
        now: float,
        extra: dict[str, Any] | None = None,
    ) -> str:
        if snapshot is None:
            template = self.env.get_template("widgets/unavailable.html")
            return template.render(spec=spec, status=status, view=view, options=options)
        template = self.env.get_template(spec.template)
        return template.render(
            spec=spec,
            status=status,
            data=spec.select(snapshot.data, view, options) if options is not None else snapshot.data,
            view=view,
            options=options,
            snapshot=snapshot,
            age_seconds=snapshot.age(now),
            now=now,
            **(extra or {}),
        )
