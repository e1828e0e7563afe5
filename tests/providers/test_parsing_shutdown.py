"""Closing the parsing processes always ends, even with a worker that will not stop when asked."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import psutil

from providers.parsing import ParsePool
from tests.support.waiting import eventually


def deaf_to_sigterm(started: str) -> int:
    """Ignore SIGTERM (as a parse stuck in a C extension effectively does), then stay busy."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Path(started).touch()
    time.sleep(3600)
    return os.getpid()


async def test_close_kills_a_worker_that_ignores_sigterm(tmp_path):
    pool = ParsePool(1)
    started = tmp_path / "started"
    parse = asyncio.ensure_future(pool.run(deaf_to_sigterm, str(started)))
    await eventually(started.exists, message="the parse never started")
    (pid,) = pool.processes()

    # Under the suite's ceiling, far longer than the terminate-then-kill wait: without the kill,
    # close() would wait for the worker for an hour.
    await asyncio.wait_for(pool.close(), 60)

    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    parse.cancel()
    await asyncio.gather(parse, return_exceptions=True)
