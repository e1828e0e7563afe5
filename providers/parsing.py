"""CPU-heavy parsing in worker processes, so it can never stall the event loop.

A worker thread is not enough for a megabyte HTML page: BeautifulSoup builds millions of objects,
and every one of those allocations, in whatever thread, counts towards the garbage collector's
next pass, which then walks the whole heap holding the GIL while requests wait. In another
process those objects are not in the serving process's heap at all.

Functions run here must be module-level (they are pickled by reference) and take and return
small picklable values: the bytes of one upstream answer in (bounded by ``[http]
max_response_bytes``), plain data out, never a parse tree.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import importlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ParamSpec, Protocol, TypeVar

__all__ = ["ParseCall", "ParsePool", "WorkerDied"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

#: Workers run at a lower priority: a parse may finish a little later, but a request being served
#: must never wait for a CPU that a parse holds (on a two-core machine both could be busy).
WORKER_NICENESS = 10
#: How long a terminated worker has to exit before it is killed.
STOP_SECONDS = 2.0


class ParseCall(Protocol):
    """``await parse(fn, *args)``: how code that is handed the pool runs a function in it."""

    async def __call__(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T: ...


class _Collector(logging.Handler):
    """A worker's log records, sent back with the result and logged by the parent as its own."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Made picklable the way QueueHandler does: arguments and traceback rendered to text.
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        records, self.records = self.records, []
        return records


_collector = _Collector()


def _start_worker(modules: tuple[str, ...], level: int) -> None:
    """Worker initializer: lower the worker's priority, log to the parent, import the parser.

    The imports (BeautifulSoup, pydantic models) cost more than parsing a small page; paid here,
    once per worker, they never count in a task's own time.
    """
    try:
        os.nice(WORKER_NICENESS)
    except OSError:  # not allowed here; running at the parent's priority is still correct
        pass
    root = logging.getLogger()
    root.setLevel(level)
    root.addHandler(_collector)
    for module in modules:
        importlib.import_module(module)


def _replay(records: Iterable[logging.LogRecord]) -> None:
    for record in records:
        logging.getLogger(record.name).handle(record)


class WorkerDied(Exception):
    """The process running a parse exited before answering (the pool is replaced)."""


def _call(
    fn: Callable[..., T], args: tuple[object, ...], kwargs: dict[str, object]
) -> tuple[T, list[logging.LogRecord]]:
    """Run ``fn`` with the garbage collector paused, then collect once; return what it logged too.

    A parse tree is alive until the parse returns, so collector passes during it find nothing to
    free and only rescan a growing heap; one pass afterwards frees the tree's reference cycles.
    """
    _collector.take()
    gc.disable()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        exc.__dict__["worker_log"] = _collector.take()
        raise
    finally:
        gc.enable()
        gc.collect()
    return result, _collector.take()


class ParsePool:
    """Parsing processes, started on first use; a crashed one is replaced, a runaway one killed.

    Each process runs one parse at a time (it is a single-process executor of its own), so one
    can be killed without touching the parses of the others. Parses queue per *lane*: one lane per
    parsing function, since a function reads one kind of upstream answer (a tgju page, a feed).
    A lane runs at most ``workers`` parses at once, and never waits for another lane's: when no
    process is free a new one starts. So a hostile answer ties up its own lane only, and only
    until its caller gives up (the engine bounds every fetch): its process is killed then, as a
    parse that outlived its caller has nothing worth finishing and must not burn the CPU on.
    Up to ``workers`` free processes are kept for the next parses; the rest exit.

    ``workers`` 0 parses in a thread instead (for platforms that cannot start processes, or where
    another interpreter's memory matters more than the event loop's latency). If a process cannot
    be started, the same fallback is used, with a warning, for the pool's lifetime.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._idle: list[concurrent.futures.ProcessPoolExecutor] = []
        self._busy: set[concurrent.futures.ProcessPoolExecutor] = set()
        self._lanes: dict[str, asyncio.Semaphore] = {}
        self._unavailable = workers == 0
        self._closed = False

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in a worker process; ``WorkerDied`` if the worker crashed.

        Cancelling the caller (its timeout) while ``fn`` runs kills the process running it.
        """
        if self._closed:
            raise WorkerDied("the parse pool is closed (shutting down)")
        if self._unavailable:
            return await asyncio.to_thread(fn, *args, **kwargs)
        async with self._lane(fn):
            if self._closed:  # closed while this parse waited for its lane
                raise WorkerDied("the parse pool is closed (shutting down)")
            executor = self._executor_for(fn)
            if executor is None:
                return await asyncio.to_thread(fn, *args, **kwargs)
            try:
                future = executor.submit(_call, fn, args, kwargs)
            except BrokenProcessPool:
                self._discard(executor)
                raise WorkerDied("the parsing worker was gone") from None
            except OSError as exc:  # e.g. out of processes or file descriptors: start-up failed
                self._give_up(executor, exc)
                return await asyncio.to_thread(fn, *args, **kwargs)
            try:
                result, records = await asyncio.wrap_future(future)
            except BrokenProcessPool:
                # Killed for memory, a crash in a C extension…: this parse failed, and the next one
                # gets a fresh process.
                self._discard(executor)
                raise WorkerDied("the parsing worker died while parsing") from None
            except asyncio.CancelledError:
                if not _caller_gave_up():
                    # Nobody cancelled the caller: close() cancelled the parse before it started.
                    raise WorkerDied("the parse pool is closed (shutting down)") from None
                self._abandon(executor, future, fn)
                raise
            except Exception as exc:
                self._release(executor)
                _replay(exc.__dict__.pop("worker_log", ()))
                raise
            self._release(executor)
            _replay(records)
            return result

    @property
    def closed(self) -> bool:
        return self._closed

    def processes(self) -> tuple[int, ...]:
        """Process ids of the live workers (for tests and diagnostics)."""
        executors = [*self._idle, *self._busy]
        return tuple(
            process.pid for executor in executors for process in _workers(executor) if process.pid is not None
        )

    async def close(self) -> None:
        """Stop the workers and wait until they have exited; a parse in progress is abandoned."""
        self._closed = True
        executors = [*self._idle, *self._busy]
        self._idle, self._busy = [], set()
        if executors:
            await asyncio.to_thread(_stop, executors)

    def _lane(self, fn: Callable[..., object]) -> asyncio.Semaphore:
        name = f"{fn.__module__}.{fn.__qualname__}"
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = asyncio.Semaphore(self.workers)
        return lane

    def _executor_for(self, fn: Callable[..., object]) -> concurrent.futures.ProcessPoolExecutor | None:
        """A free process, or a new one (``None``: processes cannot be started here)."""
        if self._idle:
            executor = self._idle.pop()
        else:
            try:
                executor = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=_context(),
                    initializer=_start_worker,
                    initargs=((fn.__module__,), logging.getLogger().getEffectiveLevel()),
                )
            except (OSError, ImportError, NotImplementedError) as exc:
                self._give_up(None, exc)
                return None
        self._busy.add(executor)
        return executor

    def _release(self, executor: concurrent.futures.ProcessPoolExecutor) -> None:
        """A parse ended normally: its process is free for the next one, or exits."""
        if executor not in self._busy:  # close() took it meanwhile
            return
        self._busy.discard(executor)
        if len(self._idle) < self.workers:
            self._idle.append(executor)
        else:
            executor.shutdown(wait=False)

    def _abandon(
        self,
        executor: concurrent.futures.ProcessPoolExecutor,
        future: concurrent.futures.Future[Any],
        fn: Callable[..., object],
    ) -> None:
        """The caller gave up: a parse not started (or just done) frees its process; one still
        running is a runaway, and its process is killed (a pure-Python parse cannot be
        interrupted any other way)."""
        if future.cancel():
            self._release(executor)
            return
        if future.done():
            if isinstance(future.exception(), BrokenProcessPool):
                self._discard(executor)
            else:
                self._release(executor)
            return
        workers = _workers(executor)
        self._discard(executor)
        for process in workers:
            process.kill()
        # Debug only: the caller's timeout is the failure, logged once by whoever bounds it.
        log.debug(
            "parse %s.%s outlived its caller; its worker (pid %s) was killed",
            fn.__module__,
            fn.__qualname__,
            ", ".join(str(process.pid) for process in workers) or "-",
        )

    def _discard(self, executor: concurrent.futures.ProcessPoolExecutor) -> None:
        self._busy.discard(executor)
        if executor in self._idle:
            self._idle.remove(executor)
        executor.shutdown(wait=False, cancel_futures=True)

    def _give_up(self, executor: concurrent.futures.ProcessPoolExecutor | None, exc: BaseException) -> None:
        log.warning("parsing processes unavailable (%s); parsing in threads instead", exc)
        self._unavailable = True
        if executor is not None:
            self._discard(executor)


def _context() -> multiprocessing.context.BaseContext:
    """Never "fork": this process has threads and an event loop, and a forked child would inherit
    their locks in whatever state they were in.

    "forkserver" forks workers from a clean, single-threaded server process that has already
    imported the parsers, so a worker (the first, or one replacing a crashed one) starts in
    milliseconds rather than the better part of a second "spawn" needs to import them again.
    The server is multiprocessing's, one per process, and exits with it. Where there is no
    forkserver (Windows), "spawn".
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Only read when the server starts (once per process); the package imports every built-in
    # provider's parser, and nothing of the parent's ``__main__`` (the default) is needed.
    context.set_forkserver_preload([__name__])
    return context


def _workers(executor: concurrent.futures.ProcessPoolExecutor | None) -> list[multiprocessing.Process]:
    # No public accessor: the executor keeps its processes by pid in ``_processes``.
    processes = getattr(executor, "_processes", None) or {}
    return [process for process in processes.values() if process.is_alive()]


def _stop(executors: list[concurrent.futures.ProcessPoolExecutor]) -> None:
    """Shut down without waiting for a running parse (seconds on a large page): nothing in a
    parse is worth finishing once the client closes, so its worker is terminated, and killed if
    it is still there ``STOP_SECONDS`` later (stuck in a C extension, or ignoring SIGTERM): the
    thread running this is joined at interpreter exit, so it must end."""
    workers = [process for executor in executors for process in _workers(executor)]
    for executor in executors:
        executor.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        process.terminate()
    for process in workers:
        process.join(STOP_SECONDS)
        if process.is_alive():
            log.warning("parsing worker %s ignored SIGTERM for %g s; killed", process.pid, STOP_SECONDS)
            process.kill()
            process.join()
    for executor in executors:
        executor.shutdown(wait=True)


def _caller_gave_up() -> bool:
    """Whether the running task itself is being cancelled (its caller's timeout, or shutdown),
    rather than only the future it awaited."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
