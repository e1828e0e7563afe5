"""The links box: a list of titled URLs, from configuration (defaults: the seed sidebar's links)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from service.widgets.base import WidgetSpec


class Link(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    url: HttpUrl

    @field_validator("title")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("title must not be blank")
        return value


#: A sidebar box, not a directory: more links than this is a configuration mistake.
MAX_LINKS = 100

# The seed page names these five boxes; the addresses are the organisations' public sites.
DEFAULT_LINKS: tuple[Link, ...] = (
    Link(title="پایگاه اطلاع‌رسانی تأمین اجتماعی", url=HttpUrl("https://www.tamin.ir/")),
    Link(title="فرمانداری فامنین", url=HttpUrl("https://famenin.ostan-hm.ir/")),
    Link(title="شهرداری فامنین", url=HttpUrl("https://famenin.ir/")),
    Link(title="کانال تلگرامی آوای فامنین", url=HttpUrl("https://t.me/avayefamenin")),
    Link(title="بازی قیام مختار", url=HttpUrl("https://www.ghiyamemokhtar.ir/")),
)


class LinksOptions(BaseModel):
    """``[widgets.links] items = [{title = "…", url = "https://…"}, …]``."""

    model_config = ConfigDict(extra="forbid")

    items: list[Link] = Field(default_factory=lambda: list(DEFAULT_LINKS), min_length=1, max_length=MAX_LINKS)


class LinksData(BaseModel):
    items: list[Link] = Field(min_length=1, max_length=MAX_LINKS)


LINKS = WidgetSpec(
    name="links",
    title="پیوندهای مفید",
    data_model=LinksData,
    default_providers=("links",),
    default_refresh_seconds=3600,
    options_model=LinksOptions,
    template="widgets/links.html",
)
