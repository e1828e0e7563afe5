"""The links widget: the seed sidebar's links by default, the operator's list when configured."""

from __future__ import annotations

from service.settings import Settings
from service.web.app import create_app
from service.widgets import BUILTIN_WIDGETS

ONLY_LINKS = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "links"}


async def test_default_links_are_the_seed_sidebars(aiohttp_client):
    client = await aiohttp_client(create_app(Settings(engine={"background": False}, widgets=ONLY_LINKS)))
    body = await (await client.get("/widgets/links.json")).json()
    assert [item["title"] for item in body["data"]["items"]] == [
        "پایگاه اطلاع‌رسانی تأمین اجتماعی",
        "فرمانداری فامنین",
        "شهرداری فامنین",
        "کانال تلگرامی آوای فامنین",
        "بازی قیام مختار",
    ]
    assert all(item["url"].startswith("https://") for item in body["data"]["items"])


async def test_operator_list_replaces_the_defaults_and_is_escaped(aiohttp_client):
    settings = Settings(
        engine={"background": False},
        widgets={
            "links": {
                "items": [
                    {"title": "خبرگزاری <b>ایرنا</b>", "url": "https://www.irna.ir/"},
                    {"title": 'سامانه "قبض"', "url": "https://example.org/?a=1&b=2"},
                ]
            }
        },
    )
    client = await aiohttp_client(create_app(settings))

    html = await (await client.get("/widgets/links.html")).text()

    assert html.count("<li>") == 2
    assert "خبرگزاری &lt;b&gt;ایرنا&lt;/b&gt;" in html
    assert 'href="https://example.org/?a=1&amp;b=2"' in html
    assert 'rel="noopener"' in html
    assert "پایگاه اطلاع رسانی" not in html
