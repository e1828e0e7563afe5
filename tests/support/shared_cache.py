"""A shared HTTP cache in front of the service, on the test's clock: what nginx or a CDN does.

The part of RFC 9111 that matters for correctness: a stored answer is served while younger than
``s-maxage`` (else ``max-age``), with an ``Age``; after that it is revalidated with the stored
``ETag`` and ``Last-Modified``; a 304 refreshes the stored headers and keeps the stored body, a
200 replaces both; ``no-store`` answers are passed through and never kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from aiohttp.test_utils import TestClient
from multidict import CIMultiDict

from tests.support.clock import FakeClock


@dataclass
class Stored:
    body: bytes
    headers: CIMultiDict[str]
    stored_at: float


@dataclass
class Seen:
    """What a reader behind the cache got, and how the cache came by it."""

    status: int
    headers: CIMultiDict[str]
    body: bytes
    #: HIT (served from storage), REVALIDATED (a 304 kept the body), MISS (a 200 from the origin).
    how: str


@dataclass
class SharedCache:
    client: TestClient
    clock: FakeClock
    stored: dict[str, Stored] = field(default_factory=dict)
    #: Conditional requests the origin answered 304.
    not_modified: int = 0

    def _lifetime(self, headers: CIMultiDict[str]) -> float:
        control = headers.get("Cache-Control", "")
        for directive in ("s-maxage", "max-age"):
            found = re.search(rf"(?<![-\w]){directive}=(\d+)", control)
            if found:
                return float(found.group(1))
        return 0.0

    async def get(self, path: str) -> Seen:
        now = self.clock.time()
        entry = self.stored.get(path)
        if entry is not None and now - entry.stored_at < self._lifetime(entry.headers):
            served = CIMultiDict(entry.headers)
            served["Age"] = str(int(now - entry.stored_at))
            return Seen(200, served, entry.body, "HIT")
        conditional: dict[str, str] = {}
        if entry is not None:
            if "ETag" in entry.headers:
                conditional["If-None-Match"] = entry.headers["ETag"]
            if "Last-Modified" in entry.headers:
                conditional["If-Modified-Since"] = entry.headers["Last-Modified"]
        response = await self.client.get(path, headers=conditional)
        body = await response.read()
        if response.status == 304 and entry is not None:
            self.not_modified += 1
            entry.headers.update(response.headers)
            entry.stored_at = now
            return Seen(200, CIMultiDict(entry.headers), entry.body, "REVALIDATED")
        if response.status == 200 and "no-store" not in response.headers.get("Cache-Control", ""):
            self.stored[path] = Stored(body, CIMultiDict(response.headers), now)
        return Seen(response.status, CIMultiDict(response.headers), body, "MISS")
