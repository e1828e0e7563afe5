"""What the service writes to its log, as a log collector reads it."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime, timedelta

import aiohttp

from tests.support.service_process import start_serving_probe
from tests.support.upstream import FakeUpstream

SECRET = "k3y-0f-the-probe-4pi"


async def serve_and_collect_log(upstream: FakeUpstream, paths: list[str], **env: str) -> str:
    process, port = await start_serving_probe(upstream, **env)
    try:
        async with aiohttp.ClientSession() as session:
            for path in paths:
                async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                    await response.read()
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    return err.decode()


async def test_json_log_has_one_object_per_line_with_widget_provider_and_reason(upstream: FakeUpstream):
    upstream.fail("/probe", 502)
    log = await serve_and_collect_log(
        upstream,
        ["/widgets/probe.json", "/livez", "/readyz", "/health", "/metrics", "/widgets/probe.json?x=1"],
        SIDEBAR_LOG_FORMAT="json",
        SIDEBAR_ACCESS_LOG="true",
        SIDEBAR_EVENT_LOOP="uvloop",
        SIDEBAR_PROVIDERS__PROBE__URL=upstream.url(f"/probe?key={SECRET}"),
        SIDEBAR_PROVIDERS__PROBE__API_KEY=SECRET,
        SIDEBAR_ENGINE__COLD_WAIT_SECONDS="2",
    )
    records = [json.loads(line) for line in log.splitlines() if line.strip()]

    assert all({"time", "level", "logger", "message", "pid"} <= record.keys() for record in records)
    failing = [r for r in records if r.get("provider") == "probe" and r.get("reason") == "status"]
    assert failing and failing[0]["widget"] == "probe" and failing[0]["level"] == "WARNING", records
    assert any(r["message"] == "event loop: uvloop.Loop" for r in records)

    access = [r for r in records if r["logger"] == "service.access"]
    assert [r["path"] for r in access] == ["/widgets/probe.json", "/widgets/probe.json?x=1"]
    assert {r["method"] for r in access} == {"GET"} and all(r["status"] >= 400 for r in access)
    assert SECRET not in log


async def test_text_log_without_access_log_by_default(upstream: FakeUpstream):
    upstream.json("/probe", {"value": 3, "label": "سه"})
    log = await serve_and_collect_log(upstream, ["/widgets/probe.json"], SIDEBAR_EVENT_LOOP="asyncio")
    assert "INFO service: event loop: asyncio" in log
    assert "/widgets/probe.json" not in log
    assert not log.lstrip().startswith("{")


async def test_the_access_log_names_the_reader_a_trusted_proxy_forwards_not_the_proxy(
    upstream: FakeUpstream,
):
    upstream.json("/probe", {"value": 3, "label": "سه"})
    process, port = await start_serving_probe(
        upstream,
        SIDEBAR_LOG_FORMAT="json",
        SIDEBAR_ACCESS_LOG="true",
        SIDEBAR_TRUSTED_PROXIES='["127.0.0.1"]',
    )
    try:
        async with aiohttp.ClientSession() as session:
            # As nginx sends it: whatever the reader wrote, then the address nginx saw.
            forwarded = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}
            async with session.get(f"http://127.0.0.1:{port}/widgets/probe.json", headers=forwarded):
                pass
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    records = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    access = [r for r in records if r["logger"] == "service.access"]
    assert [r["remote"] for r in access] == ["203.0.113.7"]
    assert access[0]["message"].startswith('203.0.113.7 "GET /widgets/probe.json')


async def test_the_access_log_ignores_x_forwarded_for_from_a_reader(upstream: FakeUpstream):
    upstream.json("/probe", {"value": 3, "label": "سه"})
    process, port = await start_serving_probe(upstream, SIDEBAR_LOG_FORMAT="json", SIDEBAR_ACCESS_LOG="true")
    try:
        async with aiohttp.ClientSession() as session:
            forwarded = {"X-Forwarded-For": "203.0.113.7"}
            async with session.get(f"http://127.0.0.1:{port}/widgets/probe.json", headers=forwarded):
                pass
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    records = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    assert [r["remote"] for r in records if r["logger"] == "service.access"] == ["127.0.0.1"]


async def test_json_log_times_are_iso_8601_with_their_offset_whatever_the_local_zone(
    upstream: FakeUpstream,
):
    upstream.json("/probe", {"value": 3, "label": "سه"})
    before = datetime.now(UTC)
    # A collector in another zone must not read Tehran's wall clock as its own.
    log = await serve_and_collect_log(
        upstream, ["/widgets/probe.json"], SIDEBAR_LOG_FORMAT="json", TZ="Asia/Tehran"
    )
    times = [datetime.fromisoformat(json.loads(line)["time"]) for line in log.splitlines() if line.strip()]
    assert times and all(t.tzinfo is not None for t in times)
    assert all(before - timedelta(seconds=1) <= t <= datetime.now(UTC) for t in times)
