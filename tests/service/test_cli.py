"""The command line, run as operators run it: in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import aiohttp

from tests.conftest import PLUGINS
from tests.support.redis_server import free_port

#: The subprocess finds the tests package and the probe plug-in's entry point.
PLUGIN_PATH = [str(Path(__file__).parents[2]), PLUGINS]


async def run(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, str, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEBAR_")}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join(PLUGIN_PATH)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        *args,
        env=full_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode, out.decode(), err.decode()


async def test_bad_configuration_exits_2_naming_the_field_without_a_traceback():
    code, out, err = await run("serve", env={"SIDEBAR_WIDGETS__LINKS__REFRESH_SECONDS": "-5"})
    assert code == 2
    assert "widgets.links.refresh_seconds" in err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1


async def test_fetch_prints_the_validated_json(upstream):
    upstream.json("/probe", {"value": 4, "label": "چهار"})
    code, out, err = await run(
        "fetch",
        "probe",
        env={
            "SIDEBAR_WIDGETS__PROBE__ENABLED": "true",
            "SIDEBAR_PROVIDERS__PROBE__URL": upstream.url("/probe"),
        },
    )
    assert code == 0, err
    assert json.loads(out) == {"widget": "probe", "source": "probe", "data": {"value": 4, "label": "چهار"}}


async def test_fetch_failure_exits_non_zero_with_one_line_reason(upstream):
    upstream.fail("/probe", 502)
    code, out, err = await run(
        "fetch",
        "probe",
        env={
            "SIDEBAR_WIDGETS__PROBE__ENABLED": "true",
            "SIDEBAR_PROVIDERS__PROBE__URL": upstream.url("/probe"),
        },
    )
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "probe: status" in err and "HTTP 502" in err


async def test_fetch_unknown_widget_exits_2():
    code, _, err = await run("fetch", "horoscope")
    assert code == 2
    assert "unknown widget 'horoscope'" in err


async def test_serve_runs_the_service_on_the_given_port():
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEBAR_")}
    for widget in ("PRICES", "WEATHER", "SATELLITE"):  # no real upstreams from tests
        env[f"SIDEBAR_WIDGETS__{widget}__ENABLED"] = "false"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/widgets/links.json") as response:
                        body = await response.json()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("the service never answered")
        assert body["status"] == "fresh"
        assert body["data"]["items"][0]["title"] == "پایگاه اطلاع رسانی تامین اجتماعی"
    finally:
        process.terminate()
        await process.wait()
