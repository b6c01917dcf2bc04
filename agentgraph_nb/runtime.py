"""What a node gets besides the state: the run's context and the app's long-lived resources.

LangGraph's shape where it has one: ``StateGraph(State, context_schema=Ctx)``,
``app.invoke(inputs, context=Ctx(...))`` and a node that takes ``runtime: Runtime[Ctx]`` (a
second parameter named ``runtime``) and reads ``runtime.context``. Ours adds resources: HTTP
clients, database pools, model clients declared once at compile time, opened on first use,
shared by every run of the app (concurrent ones included), closed by ``app.close()`` /
``await app.aclose()`` (and at interpreter exit)::

    app = g.compile(resources={
        "http": lambda: httpx.Client(timeout=10),                       # closed with .close()
        "db": Resource(lambda: sqlite3.connect("app.db", check_same_thread=False)),
    })

    def fetch(state, runtime: Runtime[Ctx]):
        r = runtime.resources["http"].get(runtime.context.base_url + state["path"])
        return {"body": r.text}

``get_runtime()`` and ``get_resource("http")`` find the same from any code a node calls.

Opening is thread-safe: two runs that first use a resource at the same time open it once.
Factories are plain callables (sync); what they return may be an async client, which
``aclose()`` closes by awaiting its ``aclose()``.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from agentgraph_nb.errors import ResourceError

__all__ = ["Resource", "ResourcePool", "Runtime", "get_resource", "get_runtime"]

logger = logging.getLogger("agentgraph_nb")

ContextT = TypeVar("ContextT")


class Resource:
    """A long-lived object nodes share: made by ``factory()`` on first use, closed with
    ``close(obj)`` (default: its ``close()``, or ``aclose()`` under ``app.aclose()``).

    Example:
        >>> Resource(lambda: psycopg_pool.ConnectionPool(url), close=lambda p: p.close())  # doctest: +SKIP
    """

    __slots__ = ("close", "factory")

    def __init__(self, factory: Callable[[], Any], close: Callable[[Any], Any] | None = None) -> None:
        if not callable(factory):
            raise TypeError(f"Resource(factory) takes a callable that makes the resource, got {factory!r}")
        if close is not None and not callable(close):
            raise TypeError(f"Resource(close=...) takes a callable, got {close!r}")
        self.factory = factory
        self.close = close

    def __repr__(self) -> str:
        return f"Resource({getattr(self.factory, '__qualname__', self.factory)!r})"


_POOLS: weakref.WeakSet[ResourcePool] = weakref.WeakSet()


@atexit.register
def _close_all_at_exit() -> None:
    for pool in list(_POOLS):
        try:
            pool.close()
        except Exception:  # at exit: log and go on with the others
            logger.exception("closing resources at exit failed")


class ResourcePool(Mapping[str, Any]):
    """The resources of one compiled graph (``runtime.resources``): a read-only mapping whose
    items open on first access and stay open until :meth:`close`.

    Raises on access:
        ResourceError: an unknown name (with the declared ones and a did-you-mean), or a
            factory that raised (chained).
    """

    def __init__(self, resources: Mapping[str, Any], graph: str = "") -> None:
        self.graph = graph
        self._decl: dict[str, Resource] = {}
        for name, spec in resources.items():
            if not isinstance(name, str) or not name:
                raise ResourceError(f"graph {graph!r}: resource names are non-empty strings, got {name!r}",
                                    resource=str(name))
            if isinstance(spec, Resource):
                self._decl[name] = spec
            elif callable(spec):
                self._decl[name] = Resource(spec)
            else:
                raise ResourceError(
                    f"graph {graph!r}: resource {name!r} must be a factory (a callable that makes it) or a "
                    f"Resource(factory, close=...), got {type(spec).__name__}; to share an object made "
                    "already, pass lambda: obj", resource=name)
        self._open: dict[str, Any] = {}
        self._locks = {name: threading.Lock() for name in self._decl}
        self.opened: dict[str, int] = dict.fromkeys(self._decl, 0)  # times each was opened (tests, dashboards)
        _POOLS.add(self)

    def __repr__(self) -> str:
        names = [n + ("*" if n in self._open else "") for n in self._decl]
        return f"ResourcePool({', '.join(names)})"

    def __getitem__(self, name: str) -> Any:
        try:
            return self._open[name]
        except KeyError:
            pass
        lock = self._locks.get(name)
        if lock is None:
            from agentgraph_nb.errors import did_you_mean

            declared = ", ".join(self._decl) or "none"
            raise ResourceError(
                f"graph {self.graph!r} has no resource {name!r} (declared: {declared}).{did_you_mean(name, self._decl)} "
                "Declare it with compile(resources={...}).", resource=name)
        with lock:  # two first uses at once: one opens, the other waits and gets it
            if name in self._open:
                return self._open[name]
            try:
                obj = self._decl[name].factory()
            except Exception as exc:
                raise ResourceError(
                    f"graph {self.graph!r}: opening resource {name!r} failed: {type(exc).__name__}: {exc}",
                    resource=name) from exc
            if inspect.iscoroutine(obj):
                obj.close()
                raise ResourceError(f"graph {self.graph!r}: the factory of resource {name!r} is async; "
                                    "give a sync factory (it may return an async client)", resource=name)
            self._open[name] = obj
            self.opened[name] += 1
            return obj

    # identity, not Mapping's item-by-item comparison (which would open every resource)
    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

    def __iter__(self) -> Iterator[str]:
        return iter(self._decl)

    def __len__(self) -> int:
        return len(self._decl)

    def is_open(self, name: str) -> bool:
        """Whether ``name`` has been opened (and not closed since)."""
        return name in self._open

    def _take_open(self) -> list[tuple[str, Any]]:
        items = []
        for name in reversed(list(self._open)):  # the last opened first
            with self._locks[name]:
                obj = self._open.pop(name, None)
            if obj is not None:
                items.append((name, obj))
        return items

    def close(self) -> None:
        """Close every open resource, the last opened first. A closer that fails is logged and
        the others still close. An async client (only ``aclose()``) is closed on a private event
        loop; prefer ``await app.aclose()`` for those."""
        for name, obj in self._take_open():
            try:
                closer = self._decl[name].close
                if closer is not None:
                    out = closer(obj)
                elif callable(getattr(obj, "close", None)) and not inspect.iscoroutinefunction(obj.close):
                    out = obj.close()
                elif callable(getattr(obj, "aclose", None)):
                    out = obj.aclose()
                else:
                    out = None
                if inspect.isawaitable(out):
                    from agentgraph_nb.engine import run_sync

                    run_sync(_await(out), needs_loop=True)
            except Exception:
                logger.exception("graph %r: closing resource %r failed", self.graph, name)

    async def aclose(self) -> None:
        """Close every open resource, awaiting async closers (``aclose()`` first when there is one)."""
        for name, obj in self._take_open():
            try:
                closer = self._decl[name].close
                if closer is not None:
                    out = closer(obj)
                elif callable(getattr(obj, "aclose", None)):
                    out = obj.aclose()
                elif callable(getattr(obj, "close", None)):
                    out = obj.close()
                else:
                    out = None
                if inspect.isawaitable(out):
                    await out
            except Exception:
                logger.exception("graph %r: closing resource %r failed", self.graph, name)


async def _await(aw: Any) -> Any:
    return await aw


_NO_RESOURCES = ResourcePool({})


@dataclass(frozen=True)
class Runtime(Generic[ContextT]):
    """What a node that takes a ``runtime`` parameter receives (LangGraph's ``Runtime``).

    Attributes:
        context: the run's ``invoke(..., context=...)`` value (an instance of the graph's
            ``context_schema``), or None.
        resources: the app's resources (``compile(resources={...})``), opened on first access.
        thread_id: the run's thread, or None.
        run_id: the run's id.
    """

    context: ContextT = None  # type: ignore[assignment]
    resources: ResourcePool = field(default=_NO_RESOURCES)
    thread_id: str | None = None
    run_id: str = ""

    def override(self, **changes: Any) -> Runtime[ContextT]:
        """A copy with some fields changed (as LangGraph's ``Runtime.override``)."""
        return replace(self, **changes)


_EMPTY: Runtime[Any] = Runtime()


def runtime_of(run: Any) -> Runtime[Any]:
    """The runtime of an engine run (what its compiled graph gave it), with the run's ids."""
    rt = getattr(run, "runtime", None) or _EMPTY
    tid = run.ev_thread if run.namespace else run.thread_id
    return replace(rt, thread_id=tid, run_id=run.run_id)


def get_runtime() -> Runtime[Any]:
    """The :class:`Runtime` of the node running this code (from any function it calls).

    Raises:
        RuntimeError: outside a running node.
    """
    from agentgraph_nb.engine import find_scratch

    scratch = find_scratch(1)
    if scratch is None:
        raise RuntimeError("get_runtime() can only be called while a graph's node runs")
    return runtime_of(scratch.run)


def get_resource(name: str) -> Any:
    """The resource ``name`` of the running graph (opened on first use): ``get_resource("http")``.

    Raises:
        RuntimeError: outside a running node.
        ResourceError: the graph declares no such resource, or opening it failed.
    """
    from agentgraph_nb.engine import find_scratch

    scratch = find_scratch(1)
    if scratch is None:
        raise RuntimeError(f"get_resource({name!r}) can only be called while a graph's node runs")
    rt = getattr(scratch.run, "runtime", None) or _EMPTY
    return rt.resources[name]


def takes_runtime(fn: Any) -> bool:
    """Whether a node function has a parameter named ``runtime`` besides the state."""
    target = fn if (inspect.isfunction(fn) or inspect.ismethod(fn)) else getattr(type(fn), "__call__", None)  # noqa: B004
    code = getattr(target, "__code__", None)
    if code is None:
        return False
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    return "runtime" in names[1 if inspect.ismethod(target) or target is not fn else 0:]


def with_runtime(fn: Any) -> Any:
    """``fn(state, runtime=...)`` as a one-argument node (sync or async, as ``fn`` is)."""
    from agentgraph_nb._callables import is_async_callable
    from agentgraph_nb.engine import find_scratch

    if is_async_callable(fn):
        async def anode(state: Any) -> Any:
            scratch = find_scratch(1)
            return await fn(state, runtime=runtime_of(scratch.run) if scratch is not None else _EMPTY)

        node = anode
    else:
        def snode(state: Any) -> Any:
            scratch = find_scratch(1)
            return fn(state, runtime=runtime_of(scratch.run) if scratch is not None else _EMPTY)

        node = snode
    node.__name__ = getattr(fn, "__name__", node.__name__)
    node.__qualname__ = getattr(fn, "__qualname__", node.__qualname__)
    node.__wrapped__ = fn  # type: ignore[attr-defined]
    node.takes_runtime = True  # type: ignore[attr-defined]  # runs where its run is (not on a Ray worker)
    return node
