"""The service as operators run it: ``python -m service serve`` in a subprocess."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from service.widgets import BUILTIN_WIDGETS
from tests.support.redis_server import free_port
from tests.support.upstream import FakeUpstream

#: The subprocess finds the tests package and the probe plug-in's entry point.
PLUGIN_PATH = [str(Path(__file__).parents[2]), str(Path(__file__).parent / "plugins")]


#: How long a started service may take to answer /livez.
STARTUP_SECONDS = 60.0


async def start_serving_probe(
    upstream: FakeUpstream, *, extra_args: Sequence[str] = (), **env: str
) -> tuple[asyncio.subprocess.Process, int]:
    """``serve`` with only the probe widget, fetched on demand from the fake upstream."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEBAR_")}
    for spec in BUILTIN_WIDGETS:
        full_env[f"SIDEBAR_WIDGETS__{spec.name.upper()}__ENABLED"] = "false"
    full_env.update(
        {
            "PYTHONPATH": os.pathsep.join(PLUGIN_PATH),
            "SIDEBAR_WIDGETS__PROBE__ENABLED": "true",
            "SIDEBAR_PROVIDERS__PROBE__URL": upstream.url("/probe"),
            "SIDEBAR_PROVIDERS__PROBE__TIMEOUT_SECONDS": "60",
            # Only requests start fetches, and a cold request waits for its fetch to the end.
            "SIDEBAR_ENGINE__BACKGROUND": "false",
            "SIDEBAR_ENGINE__COLD_WAIT_SECONDS": "60",
            **env,
        }
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra_args,
        env=full_env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    # A busy machine may take many seconds to start Python and import the service: a generous
    # ceiling, polled often, so a quiet machine still starts at once.
    deadline = time.monotonic() + STARTUP_SECONDS
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                break
            try:
                async with session.get(f"http://127.0.0.1:{port}/livez") as response:
                    if response.status == 200:
                        return process, port
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    if process.returncode is None:
        process.kill()
    raise AssertionError(f"the service never answered within {STARTUP_SECONDS:.0f} s")
