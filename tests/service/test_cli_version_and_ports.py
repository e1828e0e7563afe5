"""``--version``; a port in use is one line and exit 1; log lines say which process wrote them."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import signal
import socket
import sys
from importlib.metadata import version

import psutil
import pytest

from tests.service.test_cli import run
from tests.service.test_workers import listening_workers
from tests.support.redis_server import RedisServer
from tests.support.service_process import PLUGIN_PATH, start_serving_probe
from tests.support.upstream import FakeUpstream
from tests.support.waiting import eventually

IN_USE = os.strerror(errno.EADDRINUSE)
#: No upstream is reached from these tests, even should the service start after all.
OFFLINE = {
    **{f"SIDEBAR_WIDGETS__{name}__ENABLED": "false" for name in ("PRICES", "WEATHER", "AIR", "SATELLITE")},
    "SIDEBAR_ENGINE__BACKGROUND": "false",
}


async def test_version_prints_the_installed_package_version():
    code, out, err = await run("--version")
    assert code == 0 and err == ""
    assert out == f"sidebar-widgets {version('sidebar-widgets')}\n"


def held_port(*, reuse_port: bool = False) -> socket.socket:
    """A listening socket on a free loopback port, as another server would hold it."""
    sock = socket.socket()
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]])
async def test_a_port_in_use_is_one_line_and_exit_1(workers):
    with held_port() as taken:
        port = taken.getsockname()[1]
        code, out, err = await run(
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *workers,
            # Workers need Redis; it is never reached, the port stops start-up first.
            env={**OFFLINE, "SIDEBAR_REDIS_URL": "redis://127.0.0.1:1/0"},
        )
    assert code == 1
    assert out == ""
    assert err == f"sidebar-widgets: cannot listen on 127.0.0.1:{port}: {IN_USE}\n"


async def test_a_port_held_by_another_copys_workers_is_in_use_too():
    # Workers bind with SO_REUSEPORT: without the check, ours would join the other copy's on the
    # port, and the kernel would hand each service some of the other's connections.
    with held_port(reuse_port=True) as taken:
        code, _, err = await run(
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(taken.getsockname()[1]),
            "--workers",
            "2",
            env={**OFFLINE, "SIDEBAR_REDIS_URL": "redis://127.0.0.1:1/0"},
        )
    assert code == 1
    assert "cannot listen on" in err and len(err.strip().splitlines()) == 1, err


#: The service with its trial bind turned off, as when another program takes the port between
#: that check and the real bind.
RACING = """
import sys
import service.cli

service.cli.check_can_listen = lambda host, port: None
sys.exit(service.cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_port_taken_after_the_check_still_stops_without_a_traceback(
    workers: int, redis_server: RedisServer
):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEBAR_")}
    env.update(OFFLINE, SIDEBAR_REDIS_URL=redis_server.url, PYTHONPATH=os.pathsep.join(PLUGIN_PATH))
    with held_port() as taken:
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            RACING,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, raw = await asyncio.wait_for(process.communicate(), 60)
    err = raw.decode()
    assert process.returncode == 1, err
    assert "Traceback" not in err
    assert f"cannot listen on 127.0.0.1:{port}: {IN_USE}\n" in err


def event_loop_lines(log: str, log_format: str) -> dict[int, str]:
    """Each process's ``event loop: …`` line (one per serving process), by the pid it names."""
    found = {}
    for line in log.splitlines():
        if log_format == "json":
            record = json.loads(line)
            if record["message"].startswith("event loop: "):
                found[record["pid"]] = line
        else:
            match = re.match(r"^\S+ \S+ \[(\d+)\] INFO service: event loop: ", line)
            if match:
                found[int(match.group(1))] = line
    return found


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_each_workers_log_lines_carry_its_process_id(
    log_format: str, upstream: FakeUpstream, redis_server: RedisServer
):
    process, port = await start_serving_probe(
        upstream,
        extra_args=["--workers", "2"],
        SIDEBAR_REDIS_URL=redis_server.url,
        SIDEBAR_LOG_FORMAT=log_format,
    )
    parent = psutil.Process(process.pid)
    try:

        async def both_listening() -> set[int]:
            workers = listening_workers(parent, port)
            return workers if len(workers) == 2 else set()

        workers = await eventually(both_listening, every=0.05, message="never two workers listening")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert set(event_loop_lines(err.decode(), log_format)) == workers
