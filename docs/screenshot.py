"""Draw docs/boxes.png: the boxes as a reader sees them in a news site's 300 px sidebar column.

    .venv/bin/python docs/screenshot.py

Nothing comes from the network. The service runs in this process on the test suite's local fakes
(captured tgju pages, Open-Meteo and MET Norway answers) at the moment the weather was captured,
so the picture is the same on every run. The only upstream without a captured answer is the
satellite imagery; its tiles are drawn here (farmland and hills, credited as drawn), good enough
to show how the box sits in a column. Debian's Chromium, driven by Playwright, renders a light
host page with every fragment included server-side, three columns side by side; the PNG is then
quantised to a palette to stay small. It needs the test extra (`pip install -e '.[test]'`:
Playwright, and numpy with Skyfield) and Debian's chromium, which the test support installs when
it is missing.
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import numpy as np  # noqa: E402
from aiohttp import web  # noqa: E402
from aiohttp.test_utils import TestServer  # noqa: E402
from PIL import Image  # noqa: E402
from playwright.async_api import async_playwright  # noqa: E402

from service.settings import WidgetSettings  # noqa: E402
from service.web.app import create_app  # noqa: E402
from tests.support.browser import CHROMIUM_ARGS, chromium_executable  # noqa: E402
from tests.support.clock import FakeClock  # noqa: E402
from tests.support.fed_service import fed_settings  # noqa: E402
from tests.support.redis_server import free_port  # noqa: E402
from tests.support.upstream import FakeUpstream, fake_upstream  # noqa: E402
from tests.support.weather import OPENMETEO_CAPTURED  # noqa: E402

OUTPUT = ROOT / "docs" / "boxes.png"
#: Three sidebar columns, top to bottom.
COLUMNS = (("weather", "date"), ("prices", "links"), ("prayer", "satellite"))
SKETCH_CREDIT = "Terrain drawn for this picture, not satellite imagery"
#: Generous: the first tgju parse starts a parsing process.
READY_WITHIN_SECONDS = 60

HOST_PAGE = """<!DOCTYPE html>
<html lang="fa" dir="rtl"><head><meta charset="utf-8"><title>sidebar-widgets</title>
<style>
body {{ margin: 0; padding: 16px; background: #f6f8fa; font-family: sans-serif; }}
main {{ display: flex; gap: 24px; align-items: flex-start; width: max-content; }}
aside {{ width: 300px; display: flex; flex-direction: column; gap: 16px; }}
</style></head>
<body><main id="shot">{columns}</main></body></html>
"""


def farmland(width: int, height: int, seed: int = 1405) -> Image.Image:
    """A dry plain with hills, and green fields where the ground is low, as Hamadan's plains look
    from above in late autumn."""
    rng = np.random.default_rng(seed)

    def smooth(cells: int) -> np.ndarray:
        noise = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
        resized = noise.resize((width, height), Image.Resampling.BICUBIC)
        return np.asarray(resized, dtype=np.float32) / 255

    relief = 0.6 * smooth(5) + 0.3 * smooth(16) + 0.1 * smooth(64)
    # Fields: small rectangles of their own shade, irrigated (green) in the low ground.
    plots = rng.random((height // 40, width // 64)).astype(np.float32)
    fields = (
        np.asarray(
            Image.fromarray((plots * 255).astype(np.uint8)).resize((width, height), Image.Resampling.NEAREST),
            dtype=np.float32,
        )[..., None]
        / 255
    )
    low = np.clip((0.5 - relief) * 5, 0, 1)[..., None]
    dry = np.array([188, 164, 126]) * (0.92 + 0.12 * fields)
    green = np.array([104, 120, 76]) * (0.85 + 0.3 * fields)
    irrigated = low * (fields > 0.45)
    plain = dry * (1 - irrigated) + green * irrigated
    hills = np.array([128, 104, 82]) * (0.9 + 0.2 * smooth(90)[..., None])
    steep = np.clip((relief - 0.55) * 4, 0, 1)[..., None]
    land = plain * (1 - steep) + hills * steep
    return Image.fromarray(np.clip(land, 0, 255).astype(np.uint8))


def serve_farmland(upstream: FakeUpstream) -> None:
    """Every tile a piece of one seamless picture of the z11 tiles around the county."""
    zoom, x0, y0, span = 11, 1298, 806, 10
    world = farmland(256 * span, 256 * span)
    plain = Image.new("RGB", (256, 256), (196, 170, 128))

    async def tile(request: web.Request) -> web.Response:
        z, y, x = (int(part) for part in request.path.removeprefix("/tile/").split("/"))
        inside = z == zoom and 0 <= x - x0 < span and 0 <= y - y0 < span
        left, top = 256 * (x - x0), 256 * (y - y0)
        image = world.crop((left, top, left + 256, top + 256)) if inside else plain
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=85)
        return web.Response(body=out.getvalue(), content_type="image/jpeg")

    upstream.on_prefix("/tile/", tile)


async def wait_for_data(session: aiohttp.ClientSession, base: str) -> None:
    """Until every box has data and the satellite picture is drawn."""
    names = [name for column in COLUMNS for name in column]
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while True:
        statuses = []
        for name in names:
            async with session.get(f"{base}/widgets/{name}.json") as answer:
                statuses.append(answer.status)
        async with session.get(f"{base}/widgets/satellite.jpg") as answer:
            statuses.append(answer.status)
        if all(status == 200 for status in statuses):
            return
        if time.monotonic() > deadline:
            waiting = dict(zip([*names, "satellite.jpg"], statuses, strict=True))
            raise SystemExit(f"the boxes did not get their data: {waiting}")
        await asyncio.sleep(0.5)


async def host_page(session: aiohttp.ClientSession, base: str) -> str:
    """The fragments included server-side, as a PHP or SSI include would."""
    columns = []
    for column in COLUMNS:
        boxes = []
        for name in column:
            async with session.get(f"{base}/widgets/{name}.html", params={"theme": "light"}) as answer:
                boxes.append(await answer.text())
        columns.append("<aside>" + "\n".join(boxes) + "</aside>")
    return HOST_PAGE.format(columns="\n".join(columns))


async def screenshot(html: str) -> bytes:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1100, "height": 1200}, color_scheme="light")
        await page.set_content(html, wait_until="load")
        shot = await page.locator("#shot").screenshot()
        await browser.close()
        return shot


async def main() -> None:
    async with fake_upstream() as upstream:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        settings = fed_settings(upstream, public_url=base, now=OPENMETEO_CAPTURED)
        serve_farmland(upstream)
        # The boxes as a site gets them: every default but the prayer box's single day.
        settings.widgets["prices"] = WidgetSettings()
        settings.widgets["prayer"] = WidgetSettings.model_validate({"days": 1})
        # The terrain is drawn here, so it is not credited to Esri.
        sketch = {"url": upstream.url("/tile/") + "{z}/{y}/{x}", "attribution": SKETCH_CREDIT}
        settings.widgets["satellite"] = WidgetSettings.model_validate(
            {"source": "sketch", "sources": {"sketch": sketch}}
        )
        app = create_app(settings, clock=FakeClock(OPENMETEO_CAPTURED))
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                await wait_for_data(session, base)
                html = await host_page(session, base)
            png = await screenshot(html)
        finally:
            await server.close()
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    image.save(OUTPUT, optimize=True)
    print(f"{OUTPUT.relative_to(ROOT)}: {image.width}x{image.height}, {OUTPUT.stat().st_size // 1024} KB")


if __name__ == "__main__":
    asyncio.run(main())
