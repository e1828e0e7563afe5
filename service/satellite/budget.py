"""How many tiles may be fetched upstream per minute: in all, and on behalf of one client.

The tile source's terms forbid bulk fetching, and one client walking a deep zoom level would
otherwise cost tens of thousands of upstream fetches a minute. Both budgets count in fixed
one-minute windows of the engine's clock, in the shared cache, so every replica draws on the
same budget. Only upstream fetches are counted: a tile any cache holds costs nothing.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Sequence

from cache.base import Cache, CacheUnavailable
from cache.memory import MemoryCache
from service.engine.clock import Clock

WINDOW_SECONDS = 60.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class OverBudget(Exception):
    """No upstream fetch is allowed now; ``retry_after`` seconds until the next window."""

    def __init__(self, budget: str, retry_after: float, client: str | None = None) -> None:
        who = "this client's" if budget == "client" else "the upstream"
        super().__init__(f"{who} tile budget spent; try again in {math.ceil(retry_after)} s")
        #: ``client`` or ``upstream``: whose budget is spent.
        self.budget = budget
        self.retry_after = retry_after
        #: The client whose budget is spent (for ``client``).
        self.client = client


class TileBudget:
    def __init__(self, cache: Cache, clock: Clock, *, per_minute: int, per_client_per_minute: int) -> None:
        self._cache = cache
        #: Used while the shared cache is unreachable: each process then keeps its own count.
        self._fallback = MemoryCache(clock, max_bytes=1)
        self._clock = clock
        self.per_minute = per_minute
        self.per_client_per_minute = per_client_per_minute

    async def take(self, client: str | None) -> None:
        """Count one upstream fetch for ``client``, or raise ``OverBudget`` without counting it globally.

        The client's own budget is checked first, so a crawler past its share does not also use
        up everyone else's.
        """
        now = self._clock.time()
        window = int(now // WINDOW_SECONDS)
        retry_after = WINDOW_SECONDS - now % WINDOW_SECONDS
        if client is not None:
            if await self._count(f"budget:tiles:{window}:{client}") > self.per_client_per_minute:
                raise OverBudget("client", retry_after, client)
        if await self._count(f"budget:tiles:{window}") > self.per_minute:
            raise OverBudget("upstream", retry_after)

    async def _count(self, key: str) -> int:
        # Kept a window longer than it counts: a replica whose clock lags a little still finds it.
        try:
            return await self._cache.count(key, 2 * WINDOW_SECONDS)
        except CacheUnavailable:
            return await self._fallback.count(key, 2 * WINDOW_SECONDS)


def client_id(peer: str | None, forwarded_for: str | None, trusted_proxies: Sequence[Network]) -> str:
    """Who a request counts against: its peer, or the client a chain of trusted proxies names.

    Each proxy appends the address it saw to the ``X-Forwarded-For`` it received, which the client
    may have filled with anything. So the hops are read from the right, and only as long as the
    one vouching for them is a trusted proxy: the client is the first hop no trusted proxy sent,
    and cannot pick its own id by writing the header itself. An IPv6 client is its /64 (one
    subscriber's whole network); the id is hashed so client addresses never sit in the cache in
    the clear.
    """
    address = client_address(peer, forwarded_for, trusted_proxies)
    if address is None:
        who = peer or "unknown"
    elif isinstance(address, ipaddress.IPv6Address):
        who = str(ipaddress.IPv6Network((address, 64), strict=False))
    else:
        who = str(address)
    return hashlib.sha256(who.encode()).hexdigest()[:16]


def client_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: Sequence[Network]
) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client's address, read as ``client_id`` explains; None when the peer is no address."""
    address = _address(peer)
    hops = forwarded_for.split(",") if forwarded_for else []
    while address is not None and hops and any(address in network for network in trusted_proxies):
        forwarded = _hop_address(hops.pop().strip())
        if forwarded is None:
            break  # not written by a proxy of ours: the proxy that passed it on is the client
        address = forwarded
    return address


def from_trusted_proxy(peer: str | None, trusted_proxies: Sequence[Network]) -> bool:
    """Whether ``peer`` (a request's remote address) is one of ``trusted_proxies``."""
    address = _address(peer)
    return address is not None and any(address in network for network in trusted_proxies)


def _hop_address(hop: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in one ``X-Forwarded-For`` hop, which some proxies write with a port."""
    address = _address(hop)
    if address is None:
        host, colon, port = hop.rpartition(":")
        bracketed = host.startswith("[") and host.endswith("]")
        if colon and port.isascii() and port.isdigit() and (bracketed or ":" not in host):
            address = _address(host)
    return address


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in ``text``; an IPv4-mapped one (a dual-stack socket's view of IPv4) as IPv4."""
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
