"""Several serving processes on one port: each binds it with SO_REUSEPORT and the kernel spreads
new connections among them, so every core serves and no process sits in front of the others.

The parent only starts, watches and stops workers. A worker that dies after it was listening is
started again; one that dies before (a port taken by another program, a bad plug-in) stops them
all instead of looping, since its successor would fail the same way. SIGTERM or SIGINT is passed
on; each worker drains its requests for ``shutdown_grace_seconds`` and the parent waits for them,
so no worker outlives it.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from types import FrameType

log = logging.getLogger(__name__)

#: Beyond the workers' own grace, how long the parent waits before killing a worker.
KILL_MARGIN_SECONDS = 10.0

#: Called in the worker process with its index and an event to set once it is listening.
Target = Callable[[int, Event], None]


def supervise(count: int, target: Target, *, grace_seconds: float) -> int:
    """Run ``target(index)`` in ``count`` processes until a signal or a worker's early death."""
    # A fresh interpreter per worker: nothing of the parent (no loop, no sockets) is inherited.
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    workers: dict[int, tuple[BaseProcess, Event]] = {}
    status = 0
    try:
        for index in range(count):
            workers[index] = _start(context, target, index)
        while not stopping:
            sentinels = [process.sentinel for process, _ in workers.values()]
            multiprocessing.connection.wait(sentinels, timeout=0.5)
            for index, (process, listening) in list(workers.items()):
                if process.is_alive() or stopping:
                    continue
                if not listening.is_set():
                    log.error("worker %d exited with %s before listening; stopping", index, process.exitcode)
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
) -> tuple[BaseProcess, Event]:
    listening = context.Event()
    process = context.Process(target=target, args=(index, listening), name=f"sidebar-worker-{index}")
    process.start()
    return process, listening


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
