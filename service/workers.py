"""Several serving processes on one port: each binds it with SO_REUSEPORT and the kernel spreads
new connections among them, so every core serves and no process sits in front of the others.

The parent only starts, watches and stops workers. A worker that dies after it was listening is
started again, unless it keeps dying within seconds of starting; one that dies before (a port
taken by another program, a bad plug-in) stops them all instead of looping, since its successor
would fail the same way. SIGTERM or SIGINT is passed
on; each worker drains its requests for ``shutdown_grace_seconds`` and the parent waits for them,
so no worker outlives it. Should the parent itself be killed outright, the kernel sends each worker
SIGTERM (Linux's parent-death signal), so none is left serving on its own.

Each worker leads a process group of its own, which its helpers (multiprocessing's resource
tracker and forkserver, the parsing processes) join by being started from it. A worker that dies
without cleaning up (``kill -9``, a crash in C) leaves them running with nobody to stop them; the
parent kills what is left of the group before it starts the worker's successor.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import FrameType

from service.engine.clock import SystemClock

log = logging.getLogger(__name__)

#: Process supervision waits on real time: workers live and die on it.
_CLOCK = SystemClock()

#: Beyond the workers' own grace, how long the parent waits before killing a worker.
KILL_MARGIN_SECONDS = 10.0

#: A worker that dies this soon after it started, this many times in a row, is not going to get
#: better by being started again: the service stops (exit 1) and its own supervisor (compose,
#: systemd) restarts it with a back-off, instead of a busy loop of forks and warnings.
QUICK_DEATH_SECONDS = 10.0
QUICK_DEATHS_TO_STOP = 5

#: Written by a worker to its pipe once it is listening.
LISTENING = b"listening"

#: Called in the worker process with its index and a pipe end to write ``LISTENING`` to.
Target = Callable[[int, Connection], None]

_PR_SET_PDEATHSIG = 1
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def supervise(count: int, target: Target, *, grace_seconds: float) -> int:
    """Run ``target(index, pipe)`` in ``count`` processes until a signal or a worker's early death."""
    # Forked from a parent that has no event loop, thread or socket yet: cheap, and nothing to
    # share by accident. (A spawned interpreter would also start multiprocessing's resource
    # tracker, a process that outlives the parent for a moment.)
    context = multiprocessing.get_context("fork")
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    workers: dict[int, tuple[BaseProcess, Connection]] = {}
    started: dict[int, float] = {}
    quick_deaths = dict.fromkeys(range(count), 0)
    status = 0
    try:
        for index in range(count):
            workers[index], started[index] = _start(context, target, index), _CLOCK.monotonic()
        while not stopping:
            sentinels = [process.sentinel for process, _ in workers.values()]
            multiprocessing.connection.wait(sentinels, timeout=0.5)
            for index, (process, pipe) in list(workers.items()):
                if process.is_alive() or stopping:
                    continue
                _kill_group(process)
                if not _was_listening(pipe):
                    log.error("worker %d exited with %s before listening; stopping", index, process.exitcode)
                    stopping, status = True, 1
                    break
                quick = _CLOCK.monotonic() - started[index] < QUICK_DEATH_SECONDS
                quick_deaths[index] = quick_deaths[index] + 1 if quick else 0
                if quick_deaths[index] >= QUICK_DEATHS_TO_STOP:
                    log.error(
                        "worker %d exited with %s, %d times in a row within %.0f s of starting; stopping",
                        index,
                        process.exitcode,
                        quick_deaths[index],
                        QUICK_DEATH_SECONDS,
                    )
                    stopping, status = True, 1
                    break
                log.warning("worker %d exited with %s; starting it again", index, process.exitcode)
                pipe.close()
                workers[index], started[index] = _start(context, target, index), _CLOCK.monotonic()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_all([process for process, _ in workers.values()], grace_seconds + KILL_MARGIN_SECONDS)
    return status


def _start(
    context: multiprocessing.context.ForkContext, target: Target, index: int
) -> tuple[BaseProcess, Connection]:
    listening, announce = context.Pipe(duplex=False)
    process = context.Process(
        target=_worker, args=(target, index, announce, os.getpid()), name=f"sidebar-worker-{index}"
    )
    # Blocked across the fork: a signal for the new worker before it has set its own handlers
    # stays pending (the parent's handler, inherited, would swallow it), and is delivered to the
    # worker's own handling once it unblocks; the parent's is delivered when it unblocks here.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    announce.close()
    return process, listening


def _worker(target: Target, index: int, announce: Connection, parent: int) -> None:
    os.setpgid(0, 0)
    # The parent's handlers only set its own flag; the worker's signals are the worker's.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the death signal was asked for
        raise SystemExit(1)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    try:
        target(index, announce)
    except Exception:
        # Through logging, so a JSON log stays one object per line.
        log.exception("worker %d failed", index)
        raise SystemExit(1) from None


def _was_listening(pipe: Connection) -> bool:
    try:
        return pipe.poll() and pipe.recv_bytes() == LISTENING
    except (EOFError, OSError):  # closed without a word: it never listened
        return False


def _stop_all(processes: list[BaseProcess], timeout: float) -> None:
    for process in processes:
        if process.is_alive() and process.pid is not None:
            process.terminate()  # SIGTERM: the worker drains like a single process does
    deadline = _CLOCK.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - _CLOCK.monotonic()))
        if process.is_alive():
            log.error("worker %s did not stop in time; killing it", process.name)
            process.kill()
            process.join()
        _kill_group(process)


def _kill_group(process: BaseProcess) -> None:
    """Kill whatever is left of a dead worker's process group: its helpers, orphaned by its death.

    The group keeps the worker's pid as its id while any member lives, so the id cannot have been
    handed to an unrelated process in the meantime.
    """
    if process.pid is None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # nothing left: the worker cleaned up after itself
        pass
