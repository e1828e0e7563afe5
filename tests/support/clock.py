"""A clock tests move by hand: staleness, backoff and schedules without real waiting."""

from __future__ import annotations

import asyncio
import heapq
import itertools

#: Where every fake clock starts unless a test says otherwise (a Wednesday, 2026-11-18 around
#: 11:06 UTC): the "now" that fixtures are dated from, the same on every day the suite runs.
START = 1_795_000_000.0


class FakeClock:
    """``time()`` and ``monotonic()`` move only in ``advance``; ``sleep`` wakes when they pass.

    Sleepers are woken in deadline order, with the loop run in between, so a task that sleeps
    again after waking is woken again within the same ``advance`` if its new deadline falls in it.
    """

    def __init__(self, start: float = START) -> None:
        self._wall = start
        self._mono = 10_000.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._order), waiter))
        await waiter

    @property
    def sleepers(self) -> int:
        return sum(1 for _, _, waiter in self._sleepers if not waiter.done())

    async def advance(self, seconds: float) -> None:
        target = self._mono + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, waiter = heapq.heappop(self._sleepers)
            self._step_to(deadline)
            if not waiter.done():
                waiter.set_result(None)
            await settle()
        self._step_to(target)
        await settle()

    def _step_to(self, mono: float) -> None:
        if mono > self._mono:
            self._wall += mono - self._mono
            self._mono = mono


async def settle(rounds: int = 20) -> None:
    """Let every ready task run until it next waits (no real time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
