"""Every page and fragment is valid HTML to the Nu HTML Checker, with the service fed real-shaped data.

The checker runs once over all documents (it is a Java program, seconds to start). Fragments are
checked where they end up: inside a minimal host document, under its level-1 and level-2 headings.
"""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from service.web.app import create_app
from service.web.rendering import Renderer
from service.widgets import BUILTIN_WIDGETS
from tests.support.clock import FakeClock
from tests.support.fed_service import WIDGETS, fed_settings
from tests.support.validators import check_html

HOST_DOCUMENT = """<!DOCTYPE html>
<html lang="fa" dir="rtl">
<head><meta charset="utf-8"><title>خبرگزاری</title></head>
<body>
<main><h1>خبرگزاری</h1>
<aside>{headings}
{fragment}
</aside>
</main>
</body>
</html>
"""


def host_document(fragment: str, heading: int = 3) -> str:
    """A news page around ``fragment``, its outline leading down to the fragment's heading level."""
    headings = "".join(f"<h{level}>ستون کناری</h{level}>" for level in range(2, heading))
    return HOST_DOCUMENT.format(headings=headings, fragment=fragment)


#: Queries that change a fragment's markup beyond its theme: each is checked too.
VIEWS = {
    "prices": ["columns=change,percent,low,high,time", "unit=rial"],
    "prayer": ["days=1"],
    "weather": ["days=3"],
}
THEMES = ("light", "dark")


async def _get(client: TestClient, path: str) -> str:
    response = await client.get(path)
    assert response.status == 200, (path, await response.text())
    return await response.text()


async def test_every_page_and_fragment_has_no_html_errors_or_warnings(aiohttp_client, upstream):
    client = await aiohttp_client(create_app(fed_settings(upstream)))
    documents: dict[str, str] = {}
    for theme in THEMES:
        documents[f"/?theme={theme}"] = await _get(client, f"/?theme={theme}")
        for name in WIDGETS:
            page = f"/embed/{name}?theme={theme}"
            documents[page] = await _get(client, page)
            for query in [f"theme={theme}", *VIEWS.get(name, [])]:
                path = f"/widgets/{name}.html?{query}"
                documents[path] = host_document(await _get(client, path))
            for heading in (2, 4):
                path = f"/widgets/{name}.html?theme={theme}&heading={heading}"
                documents[path] = host_document(await _get(client, path), heading)
    documents["/embed/satellite/map"] = await _get(client, "/embed/satellite/map")
    # The placeholder a widget shows before its first data.
    prices = next(spec for spec in BUILTIN_WIDGETS if spec.name == "prices")
    documents["placeholder"] = host_document(
        Renderer().fragment(prices, None, "unavailable", {}, now=FakeClock().time())
    )
    # A known-bad document in the same run shows the checker read the files and reports errors:
    # a second <style> after content, as fragments once had.
    links = await _get(client, "/widgets/links.html")
    documents["canary"] = host_document(links.replace("</ul>", "</ul><style>p{}</style>", 1))

    # Real data in every widget, not the placeholder of one still waiting for its upstream.
    assert all('data-status="fresh"' in html for path, html in documents.items() if "/widgets/" in path)

    messages = check_html(documents)

    canary = [m for m in messages if m.document == "canary"]
    assert [m.kind for m in canary] == ["error"] and "style" in canary[0].text
    assert len(documents) == 2 * (1 + 4 * len(WIDGETS)) + 4 + 1 + 1 + 1
    errors = [
        str(m) for m in messages if m.document != "canary" and m.kind in ("error", "non-document-error")
    ]
    warnings = [str(m) for m in messages if m.kind == "warning"]
    assert errors == [] and warnings == [], "\n".join(errors + warnings)
