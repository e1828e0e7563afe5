"""A fake XYZ tile server (Esri's z/y/x layout) that counts requests per tile."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

from aiohttp import web
from PIL import Image

from tests.support.upstream import FakeUpstream

ESRI_PLACEHOLDER_ETAG = '"vvvvvvvvvvvvf"'


def jpeg(colour: tuple[int, int, int], size: int = 256) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, format="JPEG", quality=90)
    return out.getvalue()


def tile_colour(z: int, x: int, y: int) -> tuple[int, int, int]:
    return (40 + (x * 37) % 160, 60 + (y * 53) % 150, 30 + z * 5)


class FakeTiles:
    """Serves ``/tile/{z}/{y}/{x}``; ``special`` maps (z, x, y) to another behaviour."""

    def __init__(self, upstream: FakeUpstream) -> None:
        self.upstream = upstream
        self.special: dict[tuple[int, int, int], Callable[[], web.StreamResponse]] = {}
        self.delay = 0.0
        self.down: int | None = None
        upstream.on_prefix("/tile/", self._serve)

    @property
    def template(self) -> str:
        return self.upstream.url("/tile/{z}/{y}/{x}").replace("%7B", "{").replace("%7D", "}")

    def hits(self, z: int, x: int, y: int) -> int:
        return self.upstream.hits[f"/tile/{z}/{y}/{x}"]

    def at_zoom(self, z: int) -> int:
        return sum(n for path, n in self.upstream.hits.items() if path.startswith(f"/tile/{z}/"))

    @property
    def total(self) -> int:
        return sum(n for path, n in self.upstream.hits.items() if path.startswith("/tile/"))

    def placeholder(self, z: int, x: int, y: int) -> None:
        self.special[(z, x, y)] = lambda: web.Response(
            body=jpeg((200, 200, 200)), content_type="image/jpeg", headers={"ETag": ESRI_PLACEHOLDER_ETAG}
        )

    def fail_all(self, status: int = 503) -> None:
        """Every tile fails from now on (the source is down)."""
        self.down = status

    def fail(self, z: int, x: int, y: int, status: int = 500) -> None:
        self.special[(z, x, y)] = lambda: web.Response(status=status, text="tile server error")

    def html(self, z: int, x: int, y: int) -> None:
        self.special[(z, x, y)] = lambda: web.Response(
            text="<html>rate limited</html>", content_type="text/html"
        )

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        z, y, x = (int(part) for part in request.path.removeprefix("/tile/").split("/"))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down is not None:
            return web.Response(status=self.down, text="source down")
        special = self.special.get((z, x, y))
        if special is not None:
            return special()
        return web.Response(body=jpeg(tile_colour(z, x, y)), content_type="image/jpeg")
