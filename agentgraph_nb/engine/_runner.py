"""Drivers: how a run's async generator is consumed from sync code, async code and notebooks.

* A graph whose nodes and routers are all sync is driven **without an event loop**: the loop's
  generator never suspends, so each item is taken with ``send(None)``. This works the same in a
  script, a thread, or a notebook cell whose event loop is already running.
* A graph with async nodes under a sync call gets a private event loop when none is running.
* Inside a running loop (a notebook cell), a sync call on an async graph runs the nodes **on the
  notebook's own loop** by making that loop re-entrant with ``nest_asyncio2`` (ipykernel 7
  depends on it), so async clients created at the notebook's top level keep working. Set
  ``agentgraph_nb.engine._runner.NESTED = "thread"`` to use a worker thread with its own loop
  instead (no patching, but loop-bound objects such as a client created in the notebook's loop
  fail there). Without ``nest_asyncio2`` installed (it comes with ``agentgraph_nb[notebook]``) the
  thread is used, with a warning saying so.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import asyncio

__all__ = ["NESTED", "at_loop_close", "iterate_sync", "run_sync"]

NESTED: Literal["nest", "thread"] = "nest"

_DONE = object()

_cleanups: weakref.WeakKeyDictionary[Any, list[Callable[[], Awaitable[Any]]]] = weakref.WeakKeyDictionary()


_private: weakref.WeakSet[Any] = weakref.WeakSet()


def is_private_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` is one the engine made for one sync call (``invoke()`` of a graph with
    async nodes), which closes when the call returns: a client bound to it would be made and
    connected anew on every call."""
    return loop in _private


def at_loop_close(loop: asyncio.AbstractEventLoop, close: Callable[[], Awaitable[Any]]) -> None:
    """Await ``close()`` on ``loop`` before the engine closes it, when ``loop`` is one the engine
    made for a sync call (a client's connections bound to it are then closed cleanly instead of
    being collected open). Loops the engine did not make are their owners' to close: nothing
    runs for them."""
    _cleanups.setdefault(loop, []).append(close)


async def _run_cleanups(loop: asyncio.AbstractEventLoop) -> None:
    for close in _cleanups.pop(loop, ()):
        try:
            await close()
        except Exception:  # a failing close must not hide the run's own outcome
            pass


def _drive_no_loop(agen: AsyncIterator[Any]) -> Iterator[Any]:
    """Consume an async generator that never suspends, without an event loop."""
    try:
        while True:
            aw = agen.__anext__()
            try:
                aw.send(None)  # type: ignore[attr-defined]
            except StopIteration as stop:
                yield stop.value
                continue
            except StopAsyncIteration:
                return
            aw.close()  # type: ignore[attr-defined]
            raise RuntimeError("internal error: a sync run tried to wait on the event loop")
    finally:
        _close_no_loop(agen)


def _close_no_loop(agen: Any) -> None:
    aw = agen.aclose()
    try:
        aw.send(None)
    except (StopIteration, StopAsyncIteration):
        pass
    except RuntimeError:
        pass


def _running_loop() -> asyncio.AbstractEventLoop | None:
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _drive_on(loop: asyncio.AbstractEventLoop, agen: AsyncIterator[Any]) -> Iterator[Any]:
    """Take the generator's items one ``run_until_complete`` at a time; close it at the end."""
    try:
        while True:
            try:
                item = loop.run_until_complete(agen.__anext__())
            except StopAsyncIteration:
                return
            yield item
    finally:
        loop.run_until_complete(agen.aclose())  # type: ignore[attr-defined]


def _drive_private_loop(agen: AsyncIterator[Any]) -> Iterator[Any]:
    import asyncio

    loop = asyncio.new_event_loop()
    _private.add(loop)
    try:
        yield from _drive_on(loop, agen)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(_run_cleanups(loop))
        finally:
            loop.close()


def _drive_nested(loop: asyncio.AbstractEventLoop, agen: AsyncIterator[Any]) -> Iterator[Any]:
    import nest_asyncio2  # type: ignore[import-untyped]

    if not getattr(loop, "_nest_patched", False):
        nest_asyncio2.apply(loop)
    yield from _drive_on(loop, agen)


def _drive_thread(agen: AsyncIterator[Any]) -> Iterator[Any]:
    import asyncio
    import queue
    import threading

    q: queue.Queue[Any] = queue.Queue(maxsize=1024)
    stop = threading.Event()

    async def pump() -> None:
        _private.add(asyncio.get_running_loop())
        try:
            async for item in agen:
                q.put(("item", item))
                if stop.is_set():
                    break
        except BaseException as exc:  # delivered to the caller's thread
            q.put(("error", exc))
        finally:
            await _run_cleanups(asyncio.get_running_loop())
            q.put(("done", None))

    t = threading.Thread(target=lambda: asyncio.run(pump()), name="agentgraph_nb-loop", daemon=True)
    t.start()
    try:
        while True:
            kind, payload = q.get()
            if kind == "item":
                yield payload
            elif kind == "error":
                raise payload
            else:
                return
    finally:
        stop.set()


_warned_no_nest = False


def _warn_no_nest() -> None:
    """Say once why async nodes run on a worker thread instead of the notebook's loop."""
    global _warned_no_nest
    if _warned_no_nest:
        return
    _warned_no_nest = True
    import warnings

    from agentgraph_nb.errors import AgentGraphWarning

    warnings.warn(
        "nest_asyncio2 is not installed, so a sync invoke()/stream() inside a running event loop runs "
        "the graph's async nodes on a worker thread's own loop: objects bound to this loop (clients, "
        "queues created at the notebook's top level) will fail there. Install it with "
        'pip install "agentgraph_nb[notebook]", use await app.ainvoke(...), or set '
        'agentgraph_nb.engine._runner.NESTED = "thread" to choose the thread and silence this.',
        AgentGraphWarning,
        stacklevel=4,
    )


def iterate_sync(agen: AsyncIterator[Any], *, needs_loop: bool) -> Iterator[Any]:
    """Consume the run generator from sync code with the cheapest driver that works."""
    if not needs_loop:
        return _drive_no_loop(agen)
    loop = _running_loop()
    import asyncio  # noqa: F401
    if loop is None:
        return _drive_private_loop(agen)
    if NESTED == "nest":
        try:
            import nest_asyncio2  # type: ignore[import-untyped]  # noqa: F401
        except ImportError:
            _warn_no_nest()
            return _drive_thread(agen)
        return _drive_nested(loop, agen)
    return _drive_thread(agen)


def run_sync(coro: Any, *, needs_loop: bool) -> Any:
    """Run a coroutine to its result from sync code with the cheapest driver that works (the
    same choices as :func:`iterate_sync`)."""
    if not needs_loop:
        try:
            coro.send(None)
        except StopIteration as stop:
            return stop.value
        coro.close()
        raise RuntimeError("internal error: a sync run tried to wait on the event loop")

    async def one() -> AsyncIterator[Any]:
        yield await coro

    for value in iterate_sync(one(), needs_loop=True):
        return value
    raise RuntimeError("internal error: the run produced no result")
