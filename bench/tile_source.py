"""A local stand-in for an imagery source: a 256 px JPEG for any /tile/{z}/{y}/{x}."""

from __future__ import annotations

import argparse
import io

from aiohttp import web
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    out = io.BytesIO()
    Image.effect_noise((256, 256), 64).convert("RGB").save(out, format="JPEG", quality=85)
    body = out.getvalue()

    async def tile(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/tile/{z}/{y}/{x}", tile)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
