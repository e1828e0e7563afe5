"""Waiting for a condition, not for a time: what tests on real time (processes, Redis, sockets) use.

A fixed short sleep or deadline says how fast the machine is, not whether the code is right, and
fails on a busy machine (another suite running on the same cores). ``eventually`` polls until the
condition holds; its ceiling only stops a test that would otherwise hang, so it is generous.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

#: Long enough for anything a passing test waits for on a loaded machine; short of hanging a run.
CEILING_SECONDS = 60.0


async def eventually(
    condition: Callable[[], T | Awaitable[T]],
    *,
    within: float = CEILING_SECONDS,
    every: float = 0.02,
    message: str | Callable[[], str] = "the condition never held",
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``condition`` (sync or async) until it returns something truthy, and return that.

    Fails with ``message`` (a string, or a function giving one, to describe the state at the end)
    after ``within`` seconds. Exceptions of the ``ignoring`` types count as "not yet".
    """
    deadline = time.monotonic() + within
    while True:
        try:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
        except ignoring:
            result = None  # type: ignore[assignment]
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"{text} (waited {within:g} s)")
        await asyncio.sleep(every)


@dataclass(frozen=True)
class Call:
    """One call of a watched method: when it started and ended (``time.monotonic``), with what."""

    started: float
    finished: float
    args: tuple[Any, ...]
    result: Any


def record_calls(target: object, method: str) -> list[Call]:
    """Record every call of ``target.method`` (an async method), in order of completion.

    To check how something happened instead of how fast: e.g. a follower that learnt the lock's
    holder let go from its next poll (``lock_held`` answered False) rather than by waiting out its
    own ceiling, whatever the machine's speed.
    """
    calls: list[Call] = []
    real = getattr(target, method)

    async def watched(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        result = await real(*args, **kwargs)
        calls.append(Call(started, time.monotonic(), args, result))
        return result

    setattr(target, method, watched)
    return calls
