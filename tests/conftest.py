from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from service.settings import EngineSettings, Settings
from service.widgets import BUILTIN_WIDGETS
from tests.support.clock import FakeClock
from tests.support.redis_server import RedisServer
from tests.support.upstream import FakeUpstream

#: The probe widget is a plug-in: its entry point is found through this folder on sys.path.
PLUGINS = str(Path(__file__).parent / "support" / "plugins")
if PLUGINS not in sys.path:
    sys.path.append(PLUGINS)

OTHER_WIDGETS = [spec.name for spec in BUILTIN_WIDGETS]


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers even on one core, since most tests wait on sockets and child
    processes; at most four, since each may hold a browser, Redis servers and services."""
    return max(2, min(4, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's environment must not leak into tests."""
    for name in list(os.environ):
        if name.startswith("SIDEBAR_"):
            monkeypatch.delenv(name)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[redis.Redis]:
    """A plain client of the test's Redis: what another process (or a hostile one) writes there."""
    client = redis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    fake = await FakeUpstream().start()
    yield fake
    await fake.close()


@pytest.fixture
def probe_settings(upstream: FakeUpstream) -> Callable[..., Settings]:
    """Settings running only the probe widget against the fake upstream's ``/probe``."""

    def make(
        *,
        redis_url: str | None = None,
        refresh_seconds: float = 60,
        providers: list[str] | None = None,
        extra_providers: dict[str, Any] | None = None,
        timeout_seconds: float = 30,
        **engine: Any,
    ) -> Settings:
        engine.setdefault("background", False)
        engine.setdefault("retry_base_seconds", 0.05)
        engine.setdefault("cold_wait_seconds", 5)
        probe: dict[str, Any] = {"enabled": True, "refresh_seconds": refresh_seconds}
        if providers is not None:
            probe["providers"] = providers
        return Settings(
            redis_url=redis_url,
            engine=EngineSettings(**engine),
            widgets={"probe": probe, **{name: {"enabled": False} for name in OTHER_WIDGETS}},
            providers={
                "probe": {"url": upstream.url("/probe"), "timeout_seconds": timeout_seconds},
                **(extra_providers or {}),
            },
        )

    return make
