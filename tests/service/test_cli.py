"""The command line, run as operators run it: in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import aiohttp
import pytest

from tests.support.redis_server import free_port
from tests.support.service_process import PLUGIN_PATH, start_serving_probe
from tests.support.waiting import eventually


async def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str, str]:
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
    for widget in ("PRICES", "WEATHER", "AIR", "SATELLITE"):  # no real upstreams from tests
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

            async def links() -> dict[str, object]:
                async with session.get(f"http://127.0.0.1:{port}/widgets/links.json") as response:
                    return await response.json()

            body = await eventually(
                links,
                every=0.1,
                ignoring=(aiohttp.ClientConnectionError,),
                message="the service never answered",
            )
        assert body["status"] == "fresh"
        assert body["data"]["items"][0]["title"] == "پایگاه اطلاع‌رسانی تأمین اجتماعی"
    finally:
        process.terminate()
        await process.wait()


async def refuses_connections(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


async def test_sigterm_lets_a_request_in_flight_finish_then_exits_0(upstream):
    upstream.json("/probe", {"value": 5, "label": "پنج"})
    upstream.gate.clear()  # the upstream holds the fetch, so the request stays in flight
    process, port = await start_serving_probe(upstream)
    try:
        async with aiohttp.ClientSession() as session:
            slow = asyncio.ensure_future(session.get(f"http://127.0.0.1:{port}/widgets/probe.json"))

            async def fetch_started() -> bool:
                return upstream.hits["/probe"] >= 1

            await eventually(
                fetch_started, every=0.05, message="the request's fetch never reached the upstream"
            )

            process.send_signal(signal.SIGTERM)

            await eventually(
                lambda: refuses_connections(port),
                every=0.05,
                message="new connections not refused while draining",
            )
            assert not slow.done() and process.returncode is None
            upstream.gate.set()
            response = await slow
            assert response.status == 200
            assert (await response.json())["data"] == {"value": 5, "label": "پنج"}
            response.release()
        _, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, err.decode()
        assert "Traceback" not in err.decode()
        assert await refuses_connections(port)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_sigterm_gives_up_on_a_request_after_the_grace_period(upstream):
    upstream.json("/probe", {"value": 5, "label": "پنج"})
    upstream.gate.clear()  # never opened: the request would hang for a minute
    process, port = await start_serving_probe(upstream, SIDEBAR_SHUTDOWN_GRACE_SECONDS="0.5")
    try:
        async with aiohttp.ClientSession() as session:
            slow = asyncio.ensure_future(session.get(f"http://127.0.0.1:{port}/widgets/probe.json"))

            async def fetch_started() -> bool:
                return upstream.hits["/probe"] >= 1

            await eventually(
                fetch_started, every=0.05, message="the request's fetch never reached the upstream"
            )
            process.send_signal(signal.SIGTERM)

            # aiohttp's own default grace is 60 s; the configured 0.5 s must be what applies.
            _, err = await asyncio.wait_for(process.communicate(), 30)
            assert process.returncode == 0, err.decode()
            with pytest.raises(aiohttp.ClientError):
                await slow
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_no_command_prints_usage_and_the_commands_instead_of_serving():
    code, out, err = await run()
    assert code == 2
    assert "usage: sidebar-widgets" in err and "serve" in err and "fetch" in err


async def test_help_is_plain_text_and_fetch_help_names_the_widgets():
    code, out, _ = await run("--help")
    assert code == 0 and "usage: sidebar-widgets" in out
    assert "``" not in out and "`" not in out
    code, out, _ = await run("fetch", "--help")
    assert code == 0
    for name in ("prices", "weather", "satellite", "prayer", "date", "links"):
        assert name in out


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
async def test_a_port_outside_1_to_65535_is_refused_like_sidebar_port_without_a_traceback(port):
    code, out, err = await run("serve", "--port", port)
    assert code == 2
    assert "--port" in err and "65535" in err
    assert "Traceback" not in err + out
