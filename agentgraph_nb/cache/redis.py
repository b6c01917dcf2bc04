"""A node cache in Redis: ``compile(cache="redis://host:6379/0")`` (extra ``redis``). Entries
expire through Redis's own TTL; every process and machine using the server shares them."""

from __future__ import annotations

import threading
from typing import Any

from agentgraph_nb._lazy import requires_extra
from agentgraph_nb.cache import BaseCache
from agentgraph_nb.errors import CacheError

with requires_extra("the Redis node cache"):
    import redis

__all__ = ["RedisCache"]

_PREFIX = "agentgraph_nb:cache:"


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisCache(BaseCache):
    """Cached node results in Redis (values are the serializer's bytes).

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS).
        prefix: what every key starts with.
    """

    network = True

    def __init__(self, url: str, *, prefix: str = _PREFIX) -> None:
        self.url = url
        self.prefix = prefix
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        from agentgraph_nb.nodes._conn import hide_password

        return f"RedisCache({hide_password(self.url)!r})"

    def _r(self) -> redis.Redis:
        c = self._client
        if c is None:
            with self._lock:
                if self._client is None:
                    try:
                        self._client = redis.Redis.from_url(self.url)
                    except ValueError as exc:
                        raise CacheError(f"bad Redis cache URL: {exc}") from exc
                c = self._client
        return c

    def _key(self, ns: str, key: str) -> str:
        return f"{self.prefix}{ns}\x1f{key}"

    def get(self, ns: str, key: str) -> Any | None:
        return self._call("get", lambda r: r.get(self._key(ns, key)))

    def set(self, ns: str, key: str, value: Any, ttl: float | None) -> None:
        px = max(1, int(ttl * 1000)) if ttl is not None else None
        self._call("set", lambda r: r.set(self._key(ns, key), value, px=px))

    def clear(self, prefix: str | None = None) -> int:
        pattern = _glob_escape(self.prefix + (prefix or "")) + "*"

        def run(r: redis.Redis) -> int:
            n = 0
            batch: list[Any] = []
            for k in r.scan_iter(match=pattern, count=500):
                batch.append(k)
                if len(batch) >= 500:
                    n += r.delete(*batch)
                    batch = []
            if batch:
                n += r.delete(*batch)
            return n

        return int(self._call("clear", run))

    def _call(self, what: str, fn: Any) -> Any:
        try:
            return fn(self._r())
        except redis.RedisError as exc:
            from agentgraph_nb.nodes._conn import hide_password

            raise CacheError(f"Redis cache {hide_password(self.url)}: {what} failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
