"""Live stream modes: ``"messages"`` (a model's tokens as they arrive) and ``"custom"``
(whatever a node passes to :func:`get_stream_writer`'s writer), and the per-node accounting of
model calls (tokens and cost into the node's metrics and ``llm_end`` events).

Why a separate driver: the loop hands stream items to the consumer between supersteps (see
``_loop.stream_run``), but a token arrives *inside* a node. With a live mode the run is driven
apart from the consumer, and every item (tokens, custom values, and the step-level items of the
other modes, in the order they happen) goes through one thread-safe :class:`_Channel`:

* a graph of sync nodes runs on a worker thread, exactly as ``invoke`` runs it (no event loop);
* a graph with async nodes runs as a task on the consumer's event loop.

With ``"messages"``, the messages a node returns that were neither streamed nor in the state
before also go out whole, once (see :class:`_Relay`). Closing the stream early sets the sink
closed: the next token or custom value raises :class:`StreamClosed` into the node, which ends
the run at once (a node blocked on something else finishes first).

The sink is found through one context variable, set once per live run (never per node), so a run
without a live mode pays nothing; which node is calling is found as ``interrupt()`` finds it
(the engine's frame up the stack, or the task's context variable).
"""

from __future__ import annotations

import contextvars
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from agentgraph_nb.engine._loop import Run

__all__ = ["LIVE_MODES", "NS_ITEM", "StreamClosed", "get_stream_writer", "live_stream", "live_stream_async", "message_metadata",
           "report_llm_call", "stream_sink", "task_context", "token_listener"]

LIVE_MODES = frozenset({"messages", "custom"})
NS_ITEM = "__ns__"  # the mode of a subgraph's stream item in its parent's stream: (ns tuple, mode, payload)


class StreamClosed(BaseException):
    """Raised into a node that writes to a stream whose consumer has gone (it stops the run
    promptly; a ``BaseException`` so that a node's ``except Exception`` does not swallow it)."""


class _Sink:
    """Where live items go for one streamed run (``seen``: ids of the messages streamed)."""

    __slots__ = ("closed", "custom", "messages", "put", "seen")

    def __init__(self, put: Callable[[tuple[Any, Any]], None], modes: frozenset[str]) -> None:
        self.put = put
        self.messages = "messages" in modes
        self.custom = "custom" in modes
        self.closed = False
        self.seen: set[str] = set()

    def emit(self, mode: str, payload: Any) -> None:
        if self.closed:
            raise StreamClosed()
        self.put((mode, payload))


_sink: contextvars.ContextVar[_Sink | None] = contextvars.ContextVar("agentgraph_nb_stream", default=None)


def stream_sink() -> _Sink | None:
    """The live sink of the streamed run this code runs in, or ``None``."""
    return _sink.get()


def _noop_writer(value: Any) -> None:
    return None


def get_stream_writer() -> Callable[[Any], None]:
    """A function that sends values to ``stream(mode="custom")`` from inside a node.

    Outside a run streamed with ``"custom"`` the writer does nothing, so a node may always call
    it (as in LangGraph).

    Example:
        >>> from agentgraph_nb import START, StateGraph, get_stream_writer
        >>> def node(state):
        ...     write = get_stream_writer()
        ...     write({"progress": 0.5})
        ...     return {"done": True}
        >>> app = StateGraph(dict).add_node("n", node).add_edge(START, "n").compile()
        >>> list(app.stream({}, mode="custom"))
        [{'progress': 0.5}]
    """
    sink = _sink.get()
    if sink is None or not sink.custom:
        return _noop_writer
    emit = sink.emit
    ctx = task_context()
    if ctx is not None and ctx[0].namespace and ctx[0].sub_modes:  # in a subgraph of stream(subgraphs=True)
        ns = tuple(ctx[0].namespace.split("|"))

        def write_ns(value: Any) -> None:
            emit(NS_ITEM, (ns, "custom", value))

        return write_ns

    def write(value: Any) -> None:
        emit("custom", value)

    return write


def task_context() -> tuple[Run, str, int] | None:
    """``(run, node, step)`` of the node execution this code runs in, or ``None`` outside a run."""
    from agentgraph_nb.engine._loop import _find_scratch

    # the frame depth to start from, on engines whose _find_scratch takes one (1: this frame)
    found = _find_scratch(1) if _find_scratch.__code__.co_argcount else _find_scratch()  # type: ignore[call-arg]
    if found is None:
        return None
    run = found.run
    return run, found.node, run.step + 1


def message_metadata(ctx: tuple[Run, str, int] | None, **extra: Any) -> dict[str, Any]:
    """The metadata of ``stream(mode="messages")`` items for a call made in ``ctx``."""
    if ctx is None:
        meta: dict[str, Any] = {"node": "", "step": 0, "run_id": None, "thread_id": None}
    else:
        run, node, step = ctx
        meta = {"node": node, "step": step, "run_id": run.run_id, "thread_id": run.thread_id,
                "langgraph_node": node, "langgraph_step": step}
        if run.namespace:  # a subgraph's call: the parent's thread, and where it ran
            meta["thread_id"] = run.ev_thread
            meta["namespace"] = run.namespace
    meta.update(extra)
    return meta


def report_llm_call(ctx: tuple[Run, str, int] | None, *, model: str, tokens_in: int, tokens_out: int,
                    cost: float | None, latency: float, base_url: str = "") -> None:
    """Account one model call to the node that made it: its metrics (``tokens_in``,
    ``tokens_out``, ``cost``) and, when someone listens, an ``llm_end`` event."""
    if ctx is None:
        return
    run, node, step = ctx
    pnode = run.plan.by_name.get(node)
    if pnode is not None:
        st = pnode.stats
        st.llm_calls += 1
        st.tokens_in += tokens_in
        st.tokens_out += tokens_out
        if cost is not None:
            st.cost += cost
    if run.emit is not None:
        run.emit("llm_end", step, node, latency, 0, "", {
            "model": model, "tokens_in": tokens_in, "tokens_out": tokens_out, "cost": cost, "latency": latency,
            "base_url": base_url,
        })


def token_listener(ctx: tuple[Run, str, int] | None) -> Callable[[Any], None] | None:
    """For a model call made in ``ctx``: a function that passes each streamed chunk, as an
    ``llm_token`` event, to the run's listeners that asked for tokens (a callable with a true
    ``llm_tokens`` attribute, such as a GraphView's or a Debugger's listener), or ``None`` when
    none did. Other listeners never see ``llm_token`` events, so a run watched by a dashboard
    pays nothing per token; a model whose call has a token listener streams."""
    if ctx is None:
        return None
    run, node, step = ctx
    cbs = [cb for cb in run.listeners if getattr(cb, "llm_tokens", False)]
    if not cbs:
        return None
    import logging
    import time

    from agentgraph_nb.types import Event

    run_id, thread_id = run.run_id, run.thread_id

    def on_chunk(piece: Any) -> None:
        ev = Event("llm_token", run_id, thread_id, step, node, time.perf_counter(), 0.0, 0, "", piece)
        for cb in cbs:
            try:
                cb(ev)
            except Exception:  # a broken listener must not break the run
                logging.getLogger("agentgraph_nb").exception("agentgraph_nb listener %r failed on llm_token", cb)

    return on_chunk


# -- whole messages that nodes return --------------------------------------------------------------
def _is_message(m: Any) -> bool:
    return type(m) is dict and isinstance(m.get("role"), str)


def _scan(values: Any, ids: set[str], objs: dict[int, Any]) -> None:
    """Note the messages held in a state's values (lists of message dicts, or one); ``objs``
    keeps them alive, so their ``id()`` cannot be reused by a new message."""
    if not isinstance(values, dict):
        return
    for v in values.values():
        items = v if isinstance(v, list) else (v,)
        for m in items:
            if _is_message(m):
                objs[id(m)] = m
                mid = m.get("id")
                if mid:
                    ids.add(mid)


class _Relay:
    """Passes a live run's items on; with ``"messages"``, also the messages a node returns in its
    update that were not streamed token by token and were not in the state before (tool
    results, answers of models that do not stream), as LangGraph does, each whole as one
    ``(message, metadata)`` item. To see the updates, it turns the run's ``"updates"`` items on
    and drops them again unless the caller asked for them."""

    __slots__ = ("cur", "ids", "objs", "put", "run", "sink", "updates")

    def __init__(self, run: Run, sink: _Sink, modes: frozenset[str], put: Callable[[tuple[Any, Any]], None]) -> None:
        self.put = put
        self.run = run
        self.sink = sink
        self.updates = "updates" in modes
        self.ids: set[str] = set()
        self.objs: dict[int, Any] = {}
        self.cur: Any = None
        if sink.messages:
            run.stream_updates = True
            self.cur = run.values
            _scan(run.values, self.ids, self.objs)

    def __call__(self, item: tuple[Any, Any]) -> None:
        if item[0] != "updates" or not self.sink.messages:
            self.put(item)
            return
        run = self.run
        if run.values is not self.cur:  # a new step committed: what the state held before it is old
            _scan(self.cur, self.ids, self.objs)
            self.cur = run.values
        for node, update in item[1].items():
            if not isinstance(update, dict):
                continue
            meta: dict[str, Any] | None = None
            for v in update.values():
                for m in (v if isinstance(v, list) else (v,)):
                    if not _is_message(m) or id(m) in self.objs:
                        continue
                    mid = m.get("id")
                    if mid and (mid in self.ids or mid in self.sink.seen):
                        continue
                    if meta is None:
                        meta = message_metadata((run, node, run.step))
                    self.put(("messages", (m, meta)))
        if self.updates:
            self.put(item)


# -- the channel between a running graph and its consumer ------------------------------------------
_DONE: Any = object()
_ERROR: Any = object()


class _Channel:
    """A thread-safe queue of ``(mode, payload)`` items with one consumer, sync or async.

    The consumer takes everything waiting at once (one wake-up per burst, not per token).
    """

    __slots__ = ("cond", "items", "loop", "loop_thread", "waiter")

    def __init__(self) -> None:
        self.items: deque[tuple[Any, Any]] = deque()
        self.cond = threading.Condition(threading.Lock())
        self.waiter: asyncio.Future[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_thread = 0

    def put(self, item: tuple[Any, Any]) -> None:
        with self.cond:
            self.items.append(item)
            w = self.waiter
            if w is None:
                self.cond.notify()
                return
            self.waiter = None
        if threading.get_ident() == self.loop_thread:
            if not w.done():
                w.set_result(None)
        else:
            try:
                self.loop.call_soon_threadsafe(_wake, w)  # type: ignore[union-attr]
            except RuntimeError:  # the consumer's loop is closed: nobody is left to wake
                pass

    def take(self) -> list[tuple[Any, Any]]:
        """Everything waiting, blocking until something is."""
        with self.cond:
            while not self.items:
                self.cond.wait()
            out = list(self.items)
            self.items.clear()
            return out

    async def atake(self) -> list[tuple[Any, Any]]:
        import asyncio

        while True:
            with self.cond:
                if self.items:
                    out = list(self.items)
                    self.items.clear()
                    return out
                loop = asyncio.get_running_loop()
                self.loop = loop
                self.loop_thread = threading.get_ident()
                fut: asyncio.Future[None] = loop.create_future()
                self.waiter = fut
            try:
                await fut
            finally:
                with self.cond:
                    if self.waiter is fut:
                        self.waiter = None


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _unpack(batch: list[tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
    for mode, payload in batch:
        if mode is _DONE:
            return
        if mode is _ERROR:
            raise payload
        yield mode, payload


def _start_worker(run: Run, agen: Any, modes: frozenset[str]) -> tuple[_Channel, _Sink, threading.Thread]:
    """Run a sync run's item generator (no event loop) on a worker thread feeding a channel."""
    from agentgraph_nb.engine._runner import _close_no_loop, _drive_no_loop

    ch = _Channel()
    sink = _Sink(ch.put, modes)
    relay = _Relay(run, sink, modes, ch.put)

    def work() -> None:
        _sink.set(sink)
        items = _drive_no_loop(agen)
        try:
            for item in items:
                relay(item)
                if sink.closed:
                    break
        except BaseException as exc:
            ch.put((_ERROR, exc))
        else:
            ch.put((_DONE, None))
        finally:
            items.close()  # type: ignore[attr-defined]
            _close_no_loop(agen)

    t = threading.Thread(target=contextvars.copy_context().run, args=(work,), name="agentgraph_nb-stream",
                         daemon=True)
    t.start()
    return ch, sink, t


def live_stream(run: Run, agen: Any, modes: frozenset[str]) -> Iterator[tuple[Any, Any]]:
    """Items of a sync run with live modes, for a sync consumer (``stream``); ``agen``: the
    run's item generator."""
    ch, sink, t = _start_worker(run, agen, modes)
    try:
        while True:
            batch = ch.take()
            yield from _unpack(batch)
            if batch[-1][0] is _DONE or batch[-1][0] is _ERROR:
                return
    finally:
        sink.closed = True
        t.join()


async def live_stream_async(run: Run, agen: Any, modes: frozenset[str]) -> AsyncGenerator[tuple[Any, Any], None]:
    """Items of a run with live modes, for an async consumer (``astream``, and ``stream`` of a
    graph with async nodes). A sync run (``run.sync``) is driven on a worker thread."""
    import asyncio

    if run.sync:
        ch, sink, t = _start_worker(run, agen, modes)
        task = None
    else:
        ch = _Channel()
        sink = _Sink(ch.put, modes)
        relay = _Relay(run, sink, modes, ch.put)

        async def pump() -> None:
            try:
                async for item in agen:
                    relay(item)
            except BaseException as exc:
                ch.put((_ERROR, exc))
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
            else:
                ch.put((_DONE, None))
            finally:
                await agen.aclose()

        token = _sink.set(sink)
        try:
            task = asyncio.ensure_future(pump())
        finally:
            _sink.reset(token)
    try:
        while True:
            batch = await ch.atake()
            for item in _unpack(batch):
                yield item
            if batch[-1][0] is _DONE or batch[-1][0] is _ERROR:
                return
    finally:
        sink.closed = True
        if task is not None:
            if not task.done():
                task.cancel()
            try:
                await task
            except BaseException:
                pass
        else:
            while t.is_alive():
                await asyncio.sleep(0.001)
