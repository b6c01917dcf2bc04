"""Where cached node results live: ``compile(cache="memory" | "sqlite:///c.db" | "redis://...")``.

A cache store keeps entries under a namespace (graph, node and the node's code version) and a
key (a digest of the node's input, or of what ``CachePolicy.key_func`` returned); the engine's
hook (``agentgraph_nb.engine._cache``) makes both. Stores:

- :class:`MemoryCache` (``"memory"``): this process only; results are kept as the objects the
  node returned (a hit costs a few microseconds; do not mutate a node's result in place).
- :class:`SqliteCache` (``"sqlite:///path.db"``): one file, shared by every process that opens
  it; results are stored with the checkpoint serializer (no pickle).
- :class:`RedisCache` (``"redis://host:port/db"``, extra ``redis``): shared across machines;
  entries expire through Redis's own TTL.

Any object with the :class:`BaseCache` methods works as ``compile(cache=...)`` too.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from agentgraph_nb.errors import CacheError

__all__ = ["BaseCache", "MemoryCache", "RedisCache", "SqliteCache", "open_cache"]


class BaseCache:
    """What a cache store implements. Values are bytes (the serializer's), except for stores
    with ``stores_objects = True``, which keep the node's result object itself.

    Attributes:
        stores_objects: values are kept as objects, not bytes (in-process stores).
        network: its calls may wait on the network: async runs make them on a worker thread.
    """

    stores_objects = False
    network = False

    def get(self, ns: str, key: Any) -> Any | None:
        """The value under ``(ns, key)``, or None when missing or expired."""
        raise NotImplementedError

    def set(self, ns: str, key: Any, value: Any, ttl: float | None) -> None:
        """Store ``value`` under ``(ns, key)`` for ``ttl`` seconds (None: until cleared)."""
        raise NotImplementedError

    def clear(self, prefix: str | None = None) -> int:
        """Delete the entries whose namespace starts with ``prefix`` (all with None); return how many."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections (the cache reopens them when used again)."""


class MemoryCache(BaseCache):
    """Results kept in this process, as objects (``compile(cache="memory")``).

    Args:
        max_entries: per namespace (node), the most entries kept; the oldest stored is dropped
            first. None (default): no limit.
    """

    stores_objects = True

    def __init__(self, max_entries: int | None = None) -> None:
        if max_entries is not None and (not isinstance(max_entries, int) or max_entries < 1):
            raise ValueError(f"MemoryCache(max_entries=...) must be a positive int or None, got {max_entries!r}")
        self.max_entries = max_entries
        self._data: dict[str, dict[str, tuple[Any, float]]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryCache({sum(len(d) for d in self._data.values())} entries)"

    def get(self, ns: str, key: Any) -> Any | None:
        d = self._data.get(ns)
        if d is None:
            return None
        e = d.get(key)
        if e is None:
            return None
        if e[1] < time.monotonic():
            d.pop(key, None)
            return None
        return e[0]

    def set(self, ns: str, key: Any, value: Any, ttl: float | None) -> None:
        expires = time.monotonic() + ttl if ttl is not None else float("inf")
        with self._lock:
            d = self._data.get(ns)
            if d is None:
                d = self._data[ns] = {}
            d.pop(key, None)  # re-inserted last: the newest
            d[key] = (value, expires)
            if self.max_entries is not None and len(d) > self.max_entries:
                del d[next(iter(d))]

    def clear(self, prefix: str | None = None) -> int:
        with self._lock:
            gone = [ns for ns in self._data if prefix is None or ns.startswith(prefix)]
            return sum(len(self._data.pop(ns)) for ns in gone)


def open_cache(spec: Any) -> BaseCache | None:
    """A cache store from ``compile(cache=...)``: None, ``"memory"``, ``"sqlite:///path.db"``,
    ``"redis://..."``/``"rediss://..."``, or a store object (anything with ``get``/``set``/``clear``).

    Raises:
        CacheError: an unknown URL scheme or an object that is not a cache store.
    """
    if spec is None or spec is False:
        return None
    if isinstance(spec, BaseCache):
        return spec
    if isinstance(spec, str):
        if spec == "memory":
            return MemoryCache()
        if spec.startswith("sqlite://"):
            from agentgraph_nb.cache.sqlite import SqliteCache

            return SqliteCache(spec)
        if spec.startswith(("redis://", "rediss://", "unix://")):
            from agentgraph_nb.cache.redis import RedisCache

            return RedisCache(spec)
        scheme = spec.split("://", 1)[0] if "://" in spec else spec
        raise CacheError(
            f"compile(cache={spec!r}): unknown cache {scheme!r}; use \"memory\", \"sqlite:///path.db\", "
            "\"redis://host:6379/0\" or a cache object"
        )
    if all(callable(getattr(spec, m, None)) for m in ("get", "set", "clear")):
        return spec  # type: ignore[no-any-return]
    raise CacheError(
        f"compile(cache=...) takes \"memory\", \"sqlite:///path.db\", \"redis://...\" or a cache object "
        f"(with get/set/clear), got {type(spec).__name__}"
    )


def __getattr__(name: str) -> Any:
    if name == "SqliteCache":
        from agentgraph_nb.cache.sqlite import SqliteCache

        return SqliteCache
    if name == "RedisCache":
        from agentgraph_nb.cache.redis import RedisCache

        return RedisCache
    raise AttributeError(f"module 'agentgraph_nb.cache' has no attribute {name!r}")
