"""Redis backend (redis.asyncio): shared by every process pointed at the same server."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import unquote, urlsplit

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import OutOfMemoryError, RedisError, ResponseError

from cache.base import FUTURE_TOLERANCE_SECONDS, CacheFull, CacheUnavailable

log = logging.getLogger(__name__)

# Compare-and-delete, so a process whose lock expired cannot release its successor's lock. A key
# of another type (junk) is nobody's lock: ``get`` on it would be an error, not a "no".
_RELEASE_IF_OWNER = """
if redis.call('type', KEYS[1]).ok == 'string' and redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


# Take the lock if free. A lock with no expiry (set by hand, or by a release that set none) would
# hold everyone back for ever: the first to find it gives it the lock's lifetime, in the same step,
# and says so (-1), so it is taken when that lapses and reported by one process, once.
_ACQUIRE = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 1
end
if redis.call('pttl', KEYS[1]) == -1 then
    redis.call('pexpire', KEYS[1], ARGV[2])
    return -1
end
return 0
"""

# Renew only while still the owner: an expired holder must not resurrect a successor's lock.
_EXTEND_IF_OWNER = """
if redis.call('type', KEYS[1]).ok == 'string' and redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

# The expiry is set by whoever creates the counter, in the same step, so no counter lives forever.
# Anything but an integer at the key (junk) is replaced by a new counter, as junk values are.
_COUNT = """
local kind = redis.call('type', KEYS[1]).ok
if kind == 'string' then
    local held = redis.call('get', KEYS[1])
    if not (string.match(held, '^-?%d+$') and #held <= 18) then
        redis.call('del', KEYS[1])
    end
elseif kind ~= 'none' then
    redis.call('del', KEYS[1])
end
local value = redis.call('incr', KEYS[1])
if value == 1 then
    redis.call('pexpire', KEYS[1], ARGV[1])
end
return value
"""

# Compare-and-set on a version kept beside the value, decided inside Redis: whichever replica's
# write arrives last, the stored value is the newest one. Publishing in the same script means the
# announcement can never describe a value that lost.
_SET_IF_NEWER = """
local current = nil
if redis.call('type', KEYS[2]).ok == 'string' then
    current = tonumber(redis.call('get', KEYS[2]))
end
local clock = redis.call('time')
local ceiling = tonumber(clock[1]) + tonumber(clock[2]) / 1000000 + tonumber(ARGV[4])
if current and current <= ceiling and redis.call('type', KEYS[1]).ok == 'string'
        and current >= tonumber(ARGV[2]) then
    return 0
end
redis.call('set', KEYS[1], ARGV[1])
redis.call('set', KEYS[2], ARGV[2])
redis.call('publish', KEYS[3], ARGV[3])
return 1
"""

# One point of a time series per call, decided in Redis so downsampling and trimming can never
# interleave with another writer's. Members are "<at> <value>" (unique per time); scores are times.
#
# A series is durable data: it carries no expiry (PERSIST takes off one an earlier release set),
# so a volatile-* eviction policy never picks it. Instead KEYS[2] (a sorted set) holds when each
# series ends (its last write plus what it keeps, on Redis's clock), and every write removes a few
# series that have ended: one nobody writes to any more (its unit changed) goes when it would have
# expired. That sweep names keys it was not passed, which a single Redis (or Sentinel) allows and
# a Cluster would not; only our own keys (ARGV[6], the prefix) that are series are removed.
_SERIES_ADD = """
local key, ends, at = KEYS[1], KEYS[2], tonumber(ARGV[1])
local bucket, keep, most = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
for _, name in ipairs({key, ends}) do
    local kind = redis.call('type', name).ok
    if kind ~= 'zset' and kind ~= 'none' then
        redis.call('del', name)  -- junk (made by hand): replaced, as a junk value is by a write
    end
end
local member = ARGV[1] .. ' ' .. ARGV[2]
local first, last = ARGV[1], ARGV[1]
if bucket > 0 then
    local start = math.floor(at / bucket) * bucket
    last = string.format('(%.17g', start + bucket)
    if redis.call('zcount', key, '(' .. ARGV[1], last) > 0 then
        return 0
    end
    first = string.format('%.17g', start)
end
-- The new point first: the script's first write is then one Redis refuses when out of memory, as
-- it refuses any other write (a removal first would let the rest of the script past maxmemory).
redis.call('zadd', key, ARGV[1], member)
for _, other in ipairs(redis.call('zrangebyscore', key, first, last)) do
    if other ~= member then
        redis.call('zrem', key, other)
    end
end
redis.call('zremrangebyscore', key, '-inf', string.format('(%.17g', at - keep))
redis.call('zremrangebyrank', key, 0, -(most + 1))
redis.call('persist', key)
local clock = redis.call('time')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
redis.call('zadd', ends, string.format('%.17g', now + keep), key)
local ended = redis.call('zrangebyscore', ends, '-inf', string.format('%.17g', now), 'LIMIT', 0, 16)
for _, name in ipairs(ended) do
    if string.sub(name, 1, #ARGV[6]) == ARGV[6] and redis.call('type', name).ok == 'zset' then
        redis.call('del', name)
    end
    redis.call('zrem', ends, name)
end
return 1
"""

#: Where each series' span ends (see ``_SERIES_ADD``), under the cache's prefix.
SERIES_ENDS_KEY = "series-ends"

#: What /health and the logs say when Redis refuses a write.
OUT_OF_MEMORY = "Redis refuses writes: out of memory"


SENTINEL_SCHEME = "redis+sentinel"


def _direct_client(url: str, *, timeout_seconds: float, max_connections: int) -> redis.Redis:
    # Short timeouts: a dead Redis must cost a request milliseconds, not the OS TCP timeout.
    # A blocking pool: a burst waits briefly for a connection instead of failing.
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        socket_timeout=timeout_seconds,
        health_check_interval=15,
    )
    return redis.Redis.from_pool(pool)


def sentinel_addresses(url: str) -> list[tuple[str, int]]:
    """The ``(host, port)`` of each sentinel a ``redis+sentinel://`` URL lists (port 26379 unless
    given). An IPv6 address comes in brackets, ``[::1]:26379``: its own colons are not a port's."""
    hosts = urlsplit(url).netloc.rpartition("@")[2]
    addresses = []
    for host in hosts.split(","):
        if host.startswith("["):
            name, _, rest = host[1:].partition("]")
            port = rest.removeprefix(":")
        else:
            name, _, port = host.partition(":")
        addresses.append((name, int(port or 26379)))
    return addresses


class _BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """The master's pool, waiting briefly for a free connection as the direct client's does:
    redis-py's own sentinel pool fails an operation at once when all are in use, so a burst of
    requests would read as a Redis outage and be served from memory."""


def _sentinel_client(url: str, *, timeout_seconds: float, max_connections: int) -> redis.Redis:
    """``redis+sentinel://[:password@]host:26379,host:26380/SERVICE[/DB]``: the master those
    sentinels name, looked up again on every new connection, so a failover is followed as soon
    as the sentinels have promoted a replica. The password is the master's (and its replicas')."""
    parts = urlsplit(url)
    credentials, _, _ = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    sentinels = sentinel_addresses(url)
    path = [part for part in parts.path.split("/") if part]
    if not path:
        raise ValueError("a sentinel URL names the master: redis+sentinel://host:26379/mymaster/0")
    service, db = path[0], int(path[1]) if len(path) > 1 else 0
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        sentinels,
        # Each sentinel asked once: redis-py's own clients retry ten times with pauses growing to
        # seconds, so with the sentinels down every request would wait that long for the cache
        # instead of failing over to memory at once, as it does when a direct Redis is down.
        sentinel_kwargs={
            "socket_connect_timeout": timeout_seconds,
            "socket_timeout": timeout_seconds,
            "retry": Retry(NoBackoff(), 0),
        },
        socket_connect_timeout=timeout_seconds,
        socket_timeout=timeout_seconds,
    )
    client: redis.Redis = sentinel.master_for(
        unquote(service),
        db=db,
        username=unquote(username) or None,
        password=unquote(password) or None,
        connection_pool_class=_BlockingSentinelPool,
        max_connections=max_connections,
        timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        socket_timeout=timeout_seconds,
        health_check_interval=15,
    )
    return client


def _out_of_memory(exc: Exception) -> bool:
    # Inside a script the refusal comes wrapped in the script's error, not as its own class.
    return isinstance(exc, OutOfMemoryError) or "OOM command not allowed" in str(exc)


def _wrong_type(exc: Exception) -> bool:
    """A key of another type than the operation's (someone made a value a list): junk, not an outage."""
    return isinstance(exc, ResponseError) and "WRONGTYPE" in str(exc)


def _unavailable(exc: Exception) -> CacheUnavailable:
    """The reason, logged and shown by /health. redis-py appends the repr of every sentinel client
    it asked (a kilobyte of internals per line) to "No master found for 'mymaster'": cut it off."""
    if _out_of_memory(exc):
        return CacheFull(OUT_OF_MEMORY)
    if isinstance(exc, MasterNotFoundError):
        return CacheUnavailable(str(exc).partition(" : ")[0])
    return CacheUnavailable(str(exc))


class RedisCache:
    shared = True

    def __init__(
        self, url: str, *, prefix: str = "sidebar:", timeout_seconds: float = 1.0, max_connections: int = 64
    ) -> None:
        self._prefix = prefix
        self._client = (
            _sentinel_client(url, timeout_seconds=timeout_seconds, max_connections=max_connections)
            if url.startswith(SENTINEL_SCHEME + "://")
            else _direct_client(url, timeout_seconds=timeout_seconds, max_connections=max_connections)
        )
        self._acquire = self._client.register_script(_ACQUIRE)
        self._release = self._client.register_script(_RELEASE_IF_OWNER)
        self._extend = self._client.register_script(_EXTEND_IF_OWNER)
        self._set_if_newer = self._client.register_script(_SET_IF_NEWER)
        self._count = self._client.register_script(_COUNT)
        self._series_add = self._client.register_script(_SERIES_ADD)
        self.refusing_writes: str | None = None
        #: Whether a key of the wrong type, or a message that is not text, was logged: once each.
        self._wrong_type_logged = False
        self._undecodable_logged = False

    def _key(self, key: str) -> str:
        return self._prefix + key

    def _failed(self, exc: Exception) -> CacheUnavailable:
        failure = _unavailable(exc)
        if isinstance(failure, CacheFull):
            if self.refusing_writes is None:
                log.warning("%s: values are served from memory, history is not recorded", failure)
            self.refusing_writes = str(failure)
        return failure

    def _wrote(self) -> None:
        if self.refusing_writes is not None:
            log.info("Redis accepts writes again")
            self.refusing_writes = None

    def _junk(self, key: str) -> None:
        if not self._wrong_type_logged:
            self._wrong_type_logged = True
            log.warning("%s holds a value of another type than ours, treated as missing (logged once)", key)

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._client.get(self._key(key))
        except (RedisError, OSError) as exc:
            if _wrong_type(exc):
                self._junk(key)
                return None
            raise self._failed(exc) from exc
        # decode_responses is off, so values come back as the bytes we stored.
        return value if value is None or isinstance(value, bytes) else value.encode()

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        px = None if ttl_seconds is None else max(1, int(ttl_seconds * 1000))
        try:
            await self._client.set(self._key(key), value, px=px)
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc
        self._wrote()

    async def count(self, key: str, ttl_seconds: float) -> int:
        try:
            counted = int(await self._count(keys=[self._key(key)], args=[max(1, int(ttl_seconds * 1000))]))
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc
        self._wrote()
        return counted

    async def acquire_lock(self, key: str, token: str, ttl_seconds: float) -> bool:
        try:
            taken = int(
                await self._acquire(keys=[self._key(key)], args=[token, max(1, int(ttl_seconds * 1000))])
            )
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc
        self._wrote()
        if taken == -1:
            log.warning(
                "%s had no expiry (set by hand or by another release); it now lapses in %g s",
                key,
                ttl_seconds,
            )
        return taken == 1

    async def release_lock(self, key: str, token: str) -> bool:
        try:
            return bool(await self._release(keys=[self._key(key)], args=[token]))
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc

    async def extend_lock(self, key: str, token: str, ttl_seconds: float) -> bool:
        try:
            ms = max(1, int(ttl_seconds * 1000))
            return bool(await self._extend(keys=[self._key(key)], args=[token, ms]))
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc

    async def lock_held(self, key: str) -> bool:
        try:
            return bool(await self._client.exists(self._key(key)))
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc

    async def set_if_newer(self, key: str, value: bytes, version: float, channel: str, message: str) -> bool:
        try:
            written = await self._set_if_newer(
                keys=[self._key(key), self._key(key) + ":version", self._key(channel)],
                args=[value, repr(version), message, repr(FUTURE_TOLERANCE_SECONDS)],
            )
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc
        self._wrote()
        return bool(written)

    async def series_add(
        self,
        key: str,
        at: float,
        value: bytes,
        *,
        keep_seconds: float,
        bucket_seconds: float = 0.0,
        max_points: int = 10_000,
    ) -> None:
        try:
            await self._series_add(
                keys=[self._key(key), self._key(SERIES_ENDS_KEY)],
                args=[
                    repr(float(at)),
                    value,
                    repr(float(bucket_seconds)),
                    repr(float(keep_seconds)),
                    max_points,
                    self._prefix,
                ],
            )
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc
        self._wrote()

    async def series_range(self, key: str, start: float, end: float) -> list[tuple[float, bytes]]:
        try:
            members = cast(
                list[tuple[bytes | str, float]],
                await self._client.zrangebyscore(
                    self._key(key), repr(float(start)), repr(float(end)), withscores=True
                ),
            )
        except (RedisError, OSError) as exc:
            if _wrong_type(exc):
                self._junk(key)
                return []
            raise self._failed(exc) from exc
        points = []
        for member, score in members:
            # The time is the score (a number Redis checked), not the member's "<at>" prefix, which
            # only keeps members unique: a member written by hand may carry anything there.
            raw = member if isinstance(member, bytes) else str(member).encode()
            _, space, value = raw.partition(b" ")
            if space:  # a member with no "<at> " is none of ours; its value is the caller's to check
                points.append((float(score), value))
        return points

    async def server_time(self) -> float:
        try:
            seconds, micros = await self._client.time()
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc
        return float(seconds) + float(micros) / 1e6

    async def publish(self, channel: str, message: str) -> None:
        try:
            await self._client.publish(self._key(channel), message)
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc

    async def subscribe(self, channel: str) -> AsyncIterator[str]:
        pubsub = self._client.pubsub()
        try:
            await pubsub.subscribe(self._key(channel))
            # Wait for Redis to confirm, so "subscribed" really means no message can be missed.
            confirmed = None
            while confirmed is None or confirmed["type"] != "subscribe":
                confirmed = await pubsub.get_message(timeout=1.0)
            yield ""
            while True:
                # A bounded wait, so an idle subscription never trips the socket timeout.
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None and message["type"] == "message":
                    text = self._text(channel, message["data"])
                    if text is not None:
                        yield text
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc
        finally:
            try:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            except (RedisError, OSError):
                pass

    def _text(self, channel: str, data: object) -> str | None:
        """A message as text; None for one that is not UTF-8 (not ours: anyone may publish)."""
        if not isinstance(data, bytes):
            return str(data)
        try:
            return data.decode()
        except UnicodeDecodeError:
            if not self._undecodable_logged:
                self._undecodable_logged = True
                log.warning("a message on %s is not UTF-8, ignored (logged once)", channel)
            return None

    async def ping(self) -> float:
        started = time.perf_counter()
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc
        return time.perf_counter() - started

    async def eviction_policy(self) -> str | None:
        try:
            memory = await self._client.info("memory")
        except ResponseError:
            return None  # INFO renamed away or not permitted (a managed Redis): nothing to tell
        except (RedisError, OSError) as exc:
            raise self._failed(exc) from exc
        policy = memory.get("maxmemory_policy")
        return policy if isinstance(policy, str) else None

    async def close(self) -> None:
        await self._client.aclose()
