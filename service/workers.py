"""Several serving processes on one port: each binds it with SO_REUSEPORT and the kernel spreads
new connections among them, so every core serves and no process sits in front of the others.

The parent only starts, watches and stops workers. A worker that dies is started again; one that
dies within its first seconds (a port taken by another program, a Redis URL it cannot use) stops
them all instead of looping. SIGTERM or SIGINT is passed on; each worker drains its requests for
``shutdown_grace_seconds`` and the parent waits for them, so no worker outlives it.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger(__name__)

#: A worker that exits sooner than this after its start is broken, not unlucky.
EARLY_EXIT_SECONDS = 5.0

#: Beyond the workers' own grace, how long the parent waits before killing a worker.
KILL_MARGIN_SECONDS = 10.0

Target = Callable[[int], None]


def supervise(count: int, target: Target, *, grace_seconds: float) -> int:
    """Run ``target(index)`` in ``count`` processes until a signal or a worker's early death."""
    # A fresh interpreter per worker: nothing of the parent (no loop, no sockets) is inherited.
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    workers: dict[int, tuple[BaseProcess, float]] = {}
    status = 0
    try:
        for index in range(count):
            workers[index] = _start(context, target, index)
        while not stopping:
            sentinels = [process.sentinel for process, _ in workers.values()]
            multiprocessing.connection.wait(sentinels, timeout=0.5)
            for index, (process, started) in list(workers.items()):
                if process.is_alive() or stopping:
                    continue
                if time.monotonic() - started < EARLY_EXIT_SECONDS:
                    log.error("worker %d exited with %s at start-up; stopping", index, process.exitcode)
                    stopping, status = True, 1
                    break
                log.warning("worker %d exited with %s; starting it again", index, process.exitcode)
                workers[index] = _start(context, target, index)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_all([process for process, _ in workers.values()], grace_seconds + KILL_MARGIN_SECONDS)
    return status


def _start(
    context: multiprocessing.context.SpawnContext, target: Target, index: int
) -> tuple[BaseProcess, float]:
    process = context.Process(target=target, args=(index,), name=f"sidebar-worker-{index}")
    process.start()
    return process, time.monotonic()


def _stop_all(processes: list[BaseProcess], timeout: float) -> None:
    for process in processes:
        if process.is_alive() and process.pid is not None:
            process.terminate()  # SIGTERM: the worker drains like a single process does
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.error("worker %s did not stop in time; killing it", process.name)
            process.kill()
            process.join()
