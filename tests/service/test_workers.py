"""``serve --workers N``: N processes on one port, one shared cache, one upstream fetch."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

import aiohttp
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.service.test_cli import run
from tests.support.prices import serve_tgju
from tests.support.redis_server import RedisServer
from tests.support.service_process import start_serving_probe
from tests.support.upstream import FakeUpstream
from tests.support.waiting import eventually


async def test_several_workers_without_redis_is_a_one_line_start_up_error():
    code, out, err = await run("serve", "--workers", "2")
    assert code == 2
    assert err.strip() == (
        "sidebar-widgets: configuration error: workers: 2 workers need redis_url "
        "(separate in-memory caches would multiply upstream fetches)"
    )
    assert out == ""


def accepted_per_process(parent: psutil.Process, port: int) -> dict[int, int]:
    """Connections to ``port`` that each process under ``parent`` has accepted (holds a socket for)."""
    counts = {}
    for process in parent.children(recursive=True):
        try:
            sockets = process.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        counts[process.pid] = sum(
            1 for s in sockets if s.status == psutil.CONN_ESTABLISHED and s.laddr.port == port
        )
    return counts


def accepted_connections(parent: psutil.Process, port: int) -> int:
    return sum(accepted_per_process(parent, port).values())


def listening_workers(parent: psutil.Process, port: int) -> set[int]:
    """Processes under ``parent`` holding a listening socket on ``port``."""
    found = set()
    for process in [parent, *parent.children(recursive=True)]:
        try:
            sockets = process.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        if any(s.status == psutil.CONN_LISTEN and s.laddr.port == port for s in sockets):
            found.add(process.pid)
    return found


async def widget_requests_per_scrape(port: int, scrapes: int = 30) -> set[int]:
    """The service's count of answered widget requests, as each of ``scrapes`` scrapes reads it.

    Every connection is new, so the kernel hands them to workers at random: enough scrapes reach
    every worker, and each must give the whole service's count.
    """
    seen = set()
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(scrapes):
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                text = await response.text()
            answered = sum(
                sample.value
                for family in text_string_to_metric_families(text)
                if family.name == "sidebar_http_requests"
                for sample in family.samples
                if sample.name.endswith("_total") and "widgets" in sample.labels.get("route", "")
            )
            seen.add(int(answered))
    return seen


async def test_two_workers_share_one_port_and_fetch_each_widget_once(
    upstream: FakeUpstream, redis_server: RedisServer
):
    upstream.json("/probe", {"value": 7, "label": "هفت"})
    upstream.gate.clear()  # the first fetch is held, so every request arrives while it is in flight
    process, port = await start_serving_probe(
        upstream, extra_args=["--workers", "2"], SIDEBAR_REDIS_URL=redis_server.url
    )
    parent = psutil.Process(process.pid)
    try:

        async def both_listening() -> bool:
            return len(listening_workers(parent, port)) == 2

        await eventually(both_listening, every=0.05, message="never two workers listening on the port")
        assert parent.pid not in listening_workers(parent, port)

        # An odd number of requests: two workers cannot have answered the same count.
        requests = 41
        connector = aiohttp.TCPConnector(force_close=True, limit=requests)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def get() -> tuple[int, dict[str, object]]:
                async with session.get(f"http://127.0.0.1:{port}/widgets/probe.json") as response:
                    return response.status, await response.json()

            pending = [asyncio.ensure_future(get()) for _ in range(requests)]

            async def fetch_started() -> bool:
                return upstream.hits["/probe"] >= 1

            await eventually(fetch_started, every=0.05, message="the first fetch never reached the upstream")
            await eventually(
                lambda: accepted_connections(parent, port) >= requests,
                every=0.05,
                message=lambda: f"only {accepted_connections(parent, port)} requests reached the workers",
            )
            # Both workers hold requests (41 connections all hashed to one: a chance of 2**-40).
            assert len([n for n in accepted_per_process(parent, port).values() if n]) == 2
            upstream.gate.set()
            answers = await asyncio.gather(*pending)

        assert {status for status, _ in answers} == {200}
        assert {body["data"]["value"] for _, body in answers} == {7}  # type: ignore[index]
        assert upstream.hits["/probe"] == 1

        async def every_scrape_counts_every_request() -> bool:
            return await widget_requests_per_scrape(port) == {requests}

        await eventually(
            every_scrape_counts_every_request,
            message=lambda: "scrapes disagree with the requests answered",
        )
    finally:
        workers = parent.children(recursive=True)
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
    assert workers and not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]


async def test_workers_that_cannot_start_stop_the_service_instead_of_restarting_forever(
    redis_server: RedisServer,
):
    # Another program holds the port without SO_REUSEPORT, so no worker can bind it.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = await run(
            "serve",
            "--workers",
            "2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env={"SIDEBAR_REDIS_URL": redis_server.url},
        )
    # The port is checked before any worker is forked: one line, no worker restarted over and over.
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


async def test_a_worker_that_dies_while_serving_is_replaced(
    upstream: FakeUpstream, redis_server: RedisServer
):
    upstream.json("/probe", {"value": 7, "label": "هفت"})
    process, port = await start_serving_probe(
        upstream, extra_args=["--workers", "2"], SIDEBAR_REDIS_URL=redis_server.url
    )
    parent = psutil.Process(process.pid)
    try:

        async def both_listening() -> bool:
            return len(listening_workers(parent, port)) == 2

        await eventually(both_listening, every=0.05, message="never two workers listening on the port")
        connector = aiohttp.TCPConnector(force_close=True)  # a new connection, a random worker, each
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(20):
                async with session.get(f"http://127.0.0.1:{port}/widgets/probe.json") as response:
                    assert response.status == 200

        async def counted(total: int) -> bool:
            return await widget_requests_per_scrape(port) == {total}

        await eventually(lambda: counted(20), message="scrapes never agreed on 20 requests")
        victim = min(listening_workers(parent, port))
        psutil.Process(victim).kill()

        async def replaced() -> bool:
            workers = listening_workers(parent, port)
            return len(workers) == 2 and victim not in workers

        await eventually(replaced, every=0.05, message="no new worker listening in place of the killed one")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/widgets/probe.json") as response:
                assert response.status == 200
        # The dead worker's requests still count: a scrape never sees the service's counter go back.
        await eventually(lambda: counted(21), message="the killed worker's requests were forgotten")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    assert "exited with -9; starting it again" in err.decode()


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


async def test_a_killed_worker_leaves_none_of_its_helper_processes_behind(
    upstream: FakeUpstream, redis_server: RedisServer
):
    serve_tgju(upstream)  # tgju pages are parsed in helper processes the worker starts
    process, port = await start_serving_probe(
        upstream,
        extra_args=["--workers", "2"],
        SIDEBAR_REDIS_URL=redis_server.url,
        SIDEBAR_WIDGETS__PRICES__ENABLED="true",
        SIDEBAR_WIDGETS__PRICES__PROVIDERS='["tgju"]',
        SIDEBAR_PROVIDERS__TGJU__URL=upstream.url("/"),
        SIDEBAR_PROVIDERS__TGJU__TIMEOUT_SECONDS="60",
    )
    parent = psutil.Process(process.pid)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/widgets/prices.json") as response:
                assert response.status == 200, await response.text()
        parser = next(w for w in parent.children() if w.children(recursive=True))
        helpers = parser.children(recursive=True)
        parser.kill()

        async def helpers_gone() -> bool:
            return not alive(helpers)

        await eventually(
            helpers_gone, every=0.05, message=lambda: f"left behind: {[p.cmdline() for p in alive(helpers)]}"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert "exited with -9; starting it again" in err.decode()


async def test_workers_stop_when_their_parent_is_killed_outright(
    upstream: FakeUpstream, redis_server: RedisServer
):
    process, port = await start_serving_probe(
        upstream, extra_args=["--workers", "2"], SIDEBAR_REDIS_URL=redis_server.url
    )
    parent = psutil.Process(process.pid)

    async def both_listening() -> bool:
        return len(listening_workers(parent, port)) == 2

    await eventually(both_listening, every=0.05, message="never two workers listening on the port")
    workers = [psutil.Process(pid) for pid in listening_workers(parent, port)]
    process.kill()

    async def all_gone() -> bool:
        return not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]

    try:
        await eventually(all_gone, every=0.05, message="the workers outlived their parent")
    finally:
        for worker in workers:
            if worker.is_running():
                worker.kill()
        # Only now: the parent's pipes stay open while a worker holds them.
        await process.wait()


@pytest.mark.parametrize("workers", ["65", "100000", "abc", "0"])
async def test_a_workers_count_outside_1_to_64_is_refused_like_sidebar_workers_before_any_fork(
    workers: str,
):
    # Redis is configured (so the count alone decides) but unreachable, and the port is taken:
    # had the count been accepted, the workers would be forked and fail another way.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, out, err = await run(
            "serve",
            "--workers",
            workers,
            "--host",
            "127.0.0.1",
            "--port",
            str(taken.getsockname()[1]),
            env={"SIDEBAR_REDIS_URL": "redis://127.0.0.1:1/0"},
            timeout=60,
        )
    assert code == 2
    assert "--workers" in err and "64" in err
    assert "Traceback" not in err + out


CRASHING_WORKER = """
import logging, sys
from service.workers import LISTENING, supervise

def crash_once_listening(index, pipe):
    pipe.send_bytes(LISTENING)
    raise RuntimeError("crashes on its first request")

logging.basicConfig(level=logging.INFO)
sys.exit(supervise(2, crash_once_listening, grace_seconds=1))
"""


async def test_a_worker_that_keeps_dying_right_after_listening_stops_the_service_instead_of_looping():
    # Restarting it forever would hide the fault behind a busy loop of forks and warnings; exiting
    # hands it to whatever runs the service (compose, systemd), which restarts with a back-off.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASHING_WORKER,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 1
    assert "in a row within" in err.decode() and "stopping" in err.decode()
    assert err.decode().count("starting it again") < 10
