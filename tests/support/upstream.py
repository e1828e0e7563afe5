"""A fake upstream: a local aiohttp server whose answers tests script, and which counts requests."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeUpstream:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.requests: list[web.Request] = []
        self._handlers: dict[str, Handler] = {}
        self._prefixes: dict[str, Handler] = {}
        #: Closed gate: requests wait until a test opens it (to hold a fetch in flight).
        self.gate = asyncio.Event()
        self.gate.set()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.server = TestServer(app, host="127.0.0.1")

    async def start(self) -> FakeUpstream:
        await self.server.start_server()
        return self

    async def close(self) -> None:
        self.gate.set()
        await self.server.close()

    def url(self, path: str = "/") -> str:
        return str(self.server.make_url(path))

    def on(self, path: str, handler: Handler) -> None:
        self._handlers[path] = handler

    def on_prefix(self, prefix: str, handler: Handler) -> None:
        self._prefixes[prefix] = handler

    def json(
        self, path: str, payload: Any, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(
                status=status,
                body=json.dumps(payload).encode(),
                content_type="application/json",
                headers=headers,
            )

        self.on(path, handler)

    def fail(
        self, path: str, status: int = 500, *, headers: dict[str, str] | None = None, body: str = "error"
    ) -> None:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(status=status, text=body, headers=headers)

        self.on(path, handler)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        self.requests.append(request)
        await self.gate.wait()
        handler = self._handlers.get(request.path)
        if handler is None:
            handler = next((h for p, h in self._prefixes.items() if request.path.startswith(p)), None)
        if handler is None:
            return web.Response(status=404, text="no such fixture")
        return await handler(request)


@asynccontextmanager
async def fake_upstream() -> AsyncIterator[FakeUpstream]:
    """What the suite's ``upstream`` fixture gives, for a module sharing one on its own loop."""
    fake = await FakeUpstream().start()
    try:
        yield fake
    finally:
        await fake.close()
