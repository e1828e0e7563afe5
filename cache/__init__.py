"""Cache backends behind one small async interface."""

from cache.base import BackendClock, Cache, CacheUnavailable
from cache.memory import MemoryCache

__all__ = ["BackendClock", "Cache", "CacheUnavailable", "MemoryCache", "open_cache"]


def open_cache(redis_url: str | None, *, clock: BackendClock, prefix: str = "sidebar:") -> Cache:
    """The backend a URL selects: Redis for redis://, rediss:// and redis+sentinel://, memory when unset."""
    if not redis_url:
        return MemoryCache(clock)
    from cache.redis import RedisCache

    return RedisCache(redis_url, prefix=prefix)
