"""The engine's side of node caching: make a cached node's key, look it up before the node
runs, store its result after. The stores themselves (``agentgraph_nb.cache``) are handed in by
``compile()``; nothing here imports them.

A node's entry lives under the namespace ``graph \\x1f node \\x1f version`` (the version: a digest
of the node function's code, so an edited function starts afresh) and the key: a digest of the
serializer's packing of the node's input, or of what ``CachePolicy.key_func(input)`` returned
(for the memory store, a short packing is the key itself). Dicts are packed in their key order:
equal inputs built in another order miss (never a wrong hit); the engine builds the state in a
fixed order, so only hand-made inputs (a run's input dict, a ``Send`` payload) can differ.

Failures: a ``key_func`` that raises, or a key (or default input) the serializer cannot pack, is
a :class:`~agentgraph_nb.CacheKeyError` naming the node, raised before the node runs. A store
that fails (unreachable Redis, a locked file) or a result the serializer cannot pack is logged
at WARNING and the run goes on as if the node were not cached: a cache never fails a run that
would succeed without it.
"""

from __future__ import annotations

import logging
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

from agentgraph_nb._lazy import LazyModule
from agentgraph_nb.errors import CacheKeyError

if not TYPE_CHECKING:
    asyncio = LazyModule("asyncio", __name__, "asyncio")
else:
    import asyncio

    from agentgraph_nb.engine._loop import Run
    from agentgraph_nb.engine._plan import PNode

__all__ = ["NodeCache", "code_version"]

logger = logging.getLogger("agentgraph_nb")

SEP = "\x1f"


def code_version(fn: Any) -> str:
    """A short digest of a callable's code (bytecode, constants, names; nested code too), so
    that editing a node's function invalidates its cached results. Objects without code
    (callable instances, builtins) are versioned by their class's ``__call__``, else their name."""
    target = getattr(fn, "__func__", fn)
    code = getattr(target, "__code__", None)
    if code is None:
        call = getattr(type(fn), "__call__", None)  # noqa: B004
        code = getattr(call, "__code__", None)
    h = blake2b(digest_size=6)
    h.update(f"{getattr(target, '__module__', '')}:{getattr(target, '__qualname__', type(fn).__qualname__)}".encode())
    if code is not None:
        _hash_code(h, code)
    return h.hexdigest()


def _hash_code(h: Any, code: Any) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for c in code.co_consts:
        if hasattr(c, "co_code"):
            _hash_code(h, c)
        else:
            h.update(repr(c).encode())


class NodeCache:
    """One cached node: its store, namespace, TTL and key function, and the serializer that
    packs keys (and, for stores of bytes, values)."""

    __slots__ = ("dumps_key", "dumps_value", "key_func", "loads_value", "node", "ns", "objects", "store", "ttl")

    def __init__(self, store: Any, node: str, ns: str, ttl: float | None, key_func: Any,
                 dumps_key: Any, dumps_value: Any, loads_value: Any) -> None:
        self.store = store
        self.node = node
        self.ns = ns
        self.ttl = ttl
        self.key_func = key_func
        self.dumps_key = dumps_key
        self.dumps_value = dumps_value
        self.loads_value = loads_value
        self.objects = bool(getattr(store, "stores_objects", False))

    def key(self, inp: Any) -> Any:
        """The key of ``inp`` (see the module's docstring); :class:`CacheKeyError` when none can be made."""
        kf = self.key_func
        if kf is None:
            obj = inp
            what = "its input"
        else:
            try:
                obj = kf(inp)
            except Exception as exc:
                raise CacheKeyError(
                    f"node {self.node!r}: CachePolicy.key_func raised {type(exc).__name__}: {exc}", node=self.node
                ) from exc
            what = "the key its CachePolicy.key_func returned"
        try:
            packed = self.dumps_key(obj)
        except Exception as exc:
            hint = "" if kf is not None else "; give the node CachePolicy(key_func=...) returning a str or tuple"
            raise CacheKeyError(
                f"node {self.node!r}: cannot make a cache key from {what} ({type(obj).__name__}): {exc}{hint}",
                node=self.node,
            ) from exc
        if self.objects and len(packed) <= 64:
            return packed  # type: ignore[no-any-return]  # an in-process store: short packings are their own key
        return blake2b(packed, digest_size=16).hexdigest()

    def _hit(self, run: Run, node: PNode, raw: Any, step: int, index: int) -> Any:
        if self.objects:
            res = raw
        else:
            try:
                update, goto = self.loads_value(raw)
                res = (update, tuple(goto) if isinstance(goto, list) and goto else goto)
            except Exception as exc:
                logger.warning("node %r: a cached result cannot be read (%s); running the node", node.name, exc,
                               extra=run._log_extra(step, node.name))
                node.stats.cache_misses += 1
                return None
        node.stats.cache_hits += 1
        if run.emit is not None:
            run.emit("cache_hit", step, node.name, 0.0, 0, f"{step}:{index}", res[0])
        return res

    def _store_failed(self, run: Run, node: PNode, step: int, what: str, exc: BaseException) -> None:
        logger.warning("node %r: cache %s failed, running uncached (%s: %s)", node.name, what, type(exc).__name__, exc,
                       extra=run._log_extra(step, node.name))

    def lookup(self, run: Run, node: PNode, inp: Any, step: int, index: int) -> tuple[Any, Any]:
        """``(key, saved result or None)``; a hit is counted and emitted as ``cache_hit``."""
        key = self.key(inp)
        try:
            raw = self.store.get(self.ns, key)
        except Exception as exc:
            self._store_failed(run, node, step, "lookup", exc)
            raw = None
        return self._found(run, node, key, raw, step, index)

    async def alookup(self, run: Run, node: PNode, inp: Any, step: int, index: int) -> tuple[Any, Any]:
        """:meth:`lookup` for async runs (a network store's call on a worker thread)."""
        if not getattr(self.store, "network", False):
            return self.lookup(run, node, inp, step, index)
        key = self.key(inp)
        try:
            raw = await asyncio.to_thread(self.store.get, self.ns, key)
        except Exception as exc:
            self._store_failed(run, node, step, "lookup", exc)
            raw = None
        return self._found(run, node, key, raw, step, index)

    def _found(self, run: Run, node: PNode, key: Any, raw: Any, step: int, index: int) -> tuple[Any, Any]:
        """What a lookup returns: a miss counted, or a hit counted and emitted."""
        if raw is None:
            node.stats.cache_misses += 1
            return key, None
        return key, self._hit(run, node, raw, step, index)

    def _value(self, res: Any) -> Any:
        if self.objects:
            return res
        update, goto = res
        return self.dumps_value([update, list(goto) if isinstance(goto, tuple) else goto])

    def put(self, run: Run, node: PNode, key: Any, res: Any, step: int) -> None:
        """Save a node's result under ``key`` (a failure is logged, never raised)."""
        try:
            self.store.set(self.ns, key, self._value(res), self.ttl)
        except Exception as exc:
            self._store_failed(run, node, step, "store", exc)

    async def aput(self, run: Run, node: PNode, key: Any, res: Any, step: int) -> None:
        """:meth:`put` for async runs."""
        if not getattr(self.store, "network", False):
            self.put(run, node, key, res, step)
            return
        try:
            await asyncio.to_thread(self.store.set, self.ns, key, self._value(res), self.ttl)
        except Exception as exc:
            self._store_failed(run, node, step, "store", exc)
