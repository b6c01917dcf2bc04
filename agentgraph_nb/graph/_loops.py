"""For-each and while loops (``add_foreach``, ``add_while``), built in the builder from what the
engine already has, so that a graph without loops runs exactly as before.

* A **for-each** node is one node of the graph whose function runs ``fn(item)`` for every item
  of a list key, at most ``max_concurrency`` at once (threads for sync functions, tasks for async
  ones), with the node's :class:`~agentgraph_nb.RetryPolicy` applied to each item, and writes
  the results, in input order, to ``into`` in one update (through ``into``'s reducer when it has
  one). Each item is visible in the events (``node_start``/``node_end``/``node_error``/
  ``node_retry`` named ``"each[3]"``), hence in the Timeline.

  Why not a fan-out of ``Send`` tasks and a join? It was the first idea: it would give per-item
  durability for free, but it needs two hidden nodes per loop, a hidden reducer key for the
  partial results, rewriting the user's edges onto the join, and an engine hook for the
  concurrency limit; one node keeps the graph, its drawing and its DSL what the user wrote.
  Durability comes from the engine's pending writes instead: each finished item's result is
  saved on the checkpoint before the step as a ``RESUME_WRITE`` (the record an answer to an
  ``interrupt()`` is), under an id made like an interrupt's (thread, checkpoint, task, item), and
  a resumed step finds it in ``run.resume_values``; so after a crash, a failed item or a pause,
  only the unfinished items run again. (A channel of its own would read better; it needs a line
  in the engine's ``_read_pending``, left for when the engine files settle.)

* A **while** loop is one node whose executions are the iterations: each superstep it checks
  ``condition(state)`` and either runs the body once (and goes to itself again with
  ``Command(goto=...)``) or leaves through the edges the user drew from it (one last, short
  superstep that runs no body). The iteration count lives in a state key of its own
  (``"<name>.iteration"``, see :func:`iteration_key`), so it is checkpointed with the state:
  a resumed run continues counting, and the Debugger steps through the loop one iteration at
  a time.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable, Mapping
from concurrent import futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentgraph_nb._callables import is_async_callable
from agentgraph_nb.checkpoint.base import PendingWrite
from agentgraph_nb.constants import END
from agentgraph_nb.engine import RESUME_WRITE, current_task, interrupt_scopes
from agentgraph_nb.errors import (
    ForEachInputError,
    GraphInterrupt,
    GraphValidationError,
    LoopConditionError,
    LoopLimitError,
)
from agentgraph_nb.types import Command, RetryPolicy

if TYPE_CHECKING:
    from agentgraph_nb.graph.state import StateGraph

__all__ = [
    "ON_ERROR",
    "ForEachNode",
    "ItemError",
    "LoopSpec",
    "WhileNode",
    "add_loop_key",
    "check_callable",
    "check_loops",
    "iteration_key",
    "loop_node_defs",
    "positive_int",
    "validate_foreach",
]

ON_ERROR = ("raise", "skip", "collect")


@dataclass(frozen=True)
class ItemError:
    """A for-each item that failed for good (after its retries), under ``on_error="skip"`` or
    ``"collect"``: what ``errors_into`` receives (and, with ``"collect"``, ``into`` at the
    item's position).

    Attributes:
        index: the item's position in the list.
        error: the exception's type and message, ``"ValueError: bad item"``.
        attempts: how many attempts it took.
    """

    index: int
    error: str
    attempts: int


@dataclass
class LoopSpec:
    """What the builder keeps about a loop node (for exports, the DSL writer and compile)."""

    kind: str  # "foreach" | "while"
    name: str
    fn: Callable[..., Any]  # the item function (for-each) or the body (while)
    over: str = ""
    into: str = ""
    max_concurrency: int = 4
    on_error: str = "raise"
    errors_into: str | None = None
    condition: Callable[..., Any] | None = None
    max_iterations: int = 50

    def describe(self) -> dict[str, Any]:
        """The loop as JSON-able data (exports)."""
        if self.kind == "foreach":
            out: dict[str, Any] = {"kind": "foreach", "over": self.over, "into": self.into,
                                   "max_concurrency": self.max_concurrency, "on_error": self.on_error}
            if self.errors_into:
                out["errors_into"] = self.errors_into
            return out
        return {"kind": "while", "max_iterations": self.max_iterations}

    def label(self) -> str:
        """A short text for drawings: ``for each in items`` / ``while (max 50)``."""
        if self.kind == "foreach":
            return f"for each in {self.over}"
        return f"while, max {self.max_iterations}"


def iteration_key(name: str) -> str:
    """The state key that counts the iterations of the while loop ``name`` (0 outside the loop)."""
    return f"{name}.iteration"


def positive_int(value: Any, what: str, node: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GraphValidationError(f"node {node!r}: {what} must be an int >= 1, got {value!r}")
    return value


def _state_key(builder: StateGraph, key: Any, what: str, node: str) -> str:
    if not isinstance(key, str) or not key:
        raise GraphValidationError(f"node {node!r}: {what}= must be a state key (str), got {key!r}")
    schema = builder.state
    if schema.kind == "root":
        raise GraphValidationError(
            f"node {node!r}: a loop needs a state with keys; the state of graph {builder.name!r} is one value")
    if schema.kind != "dict" and key not in schema.key_set:
        from agentgraph_nb.errors import did_you_mean

        raise GraphValidationError(
            f"node {node!r}: {what}={key!r} is not a key of the state {schema.name}.{did_you_mean(key, schema.keys)}"
        )
    return key


# -- for-each -----------------------------------------------------------------------------------------
class ForEachNode:
    """The function of a for-each node: ``fn(item)`` for every item of ``state[over]``.

    It receives the list itself (its node input is ``state[over]``, see :func:`loop_node_defs`).
    """

    per_item_retry = True  # the node's RetryPolicy is applied here, per item; the engine gets none

    def __init__(self, name: str, fn: Callable[..., Any], over: str, into: str, max_concurrency: int,
                 retry: RetryPolicy | None, on_error: str, errors_into: str | None) -> None:
        self.name = self.__name__ = name
        self.fn = self.loop_fn = fn  # loop_fn: what exports name as the node's function
        self.over = over
        self.into = into
        self.max_concurrency = max_concurrency
        self.retry = retry
        self.on_error = on_error
        self.errors_into = errors_into

    @property
    def is_async(self) -> bool:
        """Whether the item function is async (then items run as tasks on the event loop)."""
        return is_async_callable(self.fn)

    def __repr__(self) -> str:
        return f"ForEachNode({self.name!r}, over={self.over!r}, into={self.into!r})"

    def _items(self, items: Any) -> list[Any]:
        if items is _ABSENT:
            raise ForEachInputError(
                f"for-each node {self.name!r}: state key {self.over!r} has no value; it needs a list "
                "(write it before the loop, or give it a default)",
                node=self.name, key=self.over, found="nothing",
            )
        if not isinstance(items, (list, tuple)):
            raise ForEachInputError(
                f"for-each node {self.name!r}: state key {self.over!r} holds {type(items).__name__} "
                f"{_short(items)}, not a list",
                node=self.name, key=self.over, found=type(items).__name__,
            )
        return list(items)

    def __call__(self, items: Any) -> Any:
        """Run the items (a coroutine when :attr:`is_async`)."""
        items = self._items(items)
        ctx = _Ctx.here(self.name, len(items))
        if self.is_async:
            return self._arun(items, ctx)
        n = len(items)
        outcomes: list[Any] = [None] * n
        workers = min(self.max_concurrency, n)
        if workers <= 1:
            for i in range(n):
                outcomes[i] = self._run_one(items[i], i, ctx)
                if self.on_error == "raise" and type(outcomes[i]) is _Failed:
                    break
        else:
            lock = threading.Lock()
            nxt = iter(range(n))
            stop = threading.Event()

            def worker() -> None:
                while not stop.is_set():
                    with lock:
                        i = next(nxt, -1)
                    if i < 0:
                        return
                    outcomes[i] = o = self._run_one(items[i], i, ctx)
                    if self.on_error == "raise" and type(o) is _Failed:
                        stop.set()

            pool = _pool()
            # the calling thread is a worker too: a for-each inside an item never waits on a full pool
            futs = [pool.submit(contextvars.copy_context().run, worker) for _ in range(workers - 1)]
            worker()
            for f in futs:
                f.result()
        return self._finish(outcomes)

    async def _arun(self, items: list[Any], ctx: _Ctx) -> Any:
        n = len(items)
        outcomes: list[Any] = [None] * n
        sem = asyncio.Semaphore(self.max_concurrency)
        stopped = False

        async def one(i: int) -> None:
            nonlocal stopped
            async with sem:
                if stopped:  # an item failed under on_error="raise": start no other
                    return
                outcomes[i] = o = await self._arun_one(items[i], i, ctx)
                if self.on_error == "raise" and type(o) is _Failed:
                    stopped = True
                    raise _Stop

        tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
        try:
            if tasks:
                await asyncio.gather(*tasks)
        except _Stop:
            pass
        finally:
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        return self._finish(outcomes)

    def _run_one(self, item: Any, i: int, ctx: _Ctx) -> Any:
        if ctx.durable and ctx.key(i) in ctx.saved:  # finished before a crash or a pause
            return ctx.saved[ctx.key(i)]
        attempt = 1
        with ctx.scope(i):
            while True:
                t = ctx.start(i, attempt, item)
                try:
                    out = self.fn(item)
                except GraphInterrupt as gi:
                    return _Paused(gi)
                except Exception as exc:
                    if self._retry(exc, attempt):
                        time.sleep(ctx.retry(i, attempt, exc, t, self.retry))
                        attempt += 1
                        continue
                    return ctx.failed(i, attempt, exc, t)
                ctx.end(i, attempt, out, t)
                if ctx.durable:
                    ctx.save(i, out)
                return out

    async def _arun_one(self, item: Any, i: int, ctx: _Ctx) -> Any:
        if ctx.durable and ctx.key(i) in ctx.saved:
            return ctx.saved[ctx.key(i)]
        attempt = 1
        with ctx.scope(i):
            while True:
                t = ctx.start(i, attempt, item)
                try:
                    out = self.fn(item)
                    if asyncio.iscoroutine(out):
                        out = await out
                except GraphInterrupt as gi:
                    return _Paused(gi)
                except Exception as exc:
                    if self._retry(exc, attempt):
                        await asyncio.sleep(ctx.retry(i, attempt, exc, t, self.retry))
                        attempt += 1
                        continue
                    return ctx.failed(i, attempt, exc, t)
                ctx.end(i, attempt, out, t)
                if ctx.durable:
                    await ctx.asave(i, out)
                return out

    def _retry(self, exc: Exception, attempt: int) -> bool:
        r = self.retry
        return r is not None and attempt < r.max_attempts and r.should_retry(exc)

    def _finish(self, outcomes: list[Any]) -> dict[str, Any]:
        paused = [i for o in outcomes if type(o) is _Paused for i in o.gi.interrupts]
        if paused:  # every item that asked pauses the node; resuming answers them all
            raise GraphInterrupt(tuple(paused))
        results: list[Any] = []
        errors: list[ItemError] = []
        for i, o in enumerate(outcomes):
            if type(o) is _Failed:
                if self.on_error == "raise":
                    exc = o.exc
                    _note(exc, f"in for-each node {self.name!r}, item {i} (attempt {o.attempts})")
                    exc.agentgraph_item = i  # type: ignore[attr-defined]
                    raise exc
                err = ItemError(i, f"{type(o.exc).__name__}: {o.exc}", o.attempts)
                errors.append(err)
                if self.on_error == "collect":
                    results.append(err)
            else:
                results.append(o)
        update: dict[str, Any] = {self.into: results}
        if self.errors_into is not None:
            update[self.errors_into] = errors
        return update


class _Stop(Exception):
    """An item failed under ``on_error="raise"``: stop the others."""


class _Failed:
    __slots__ = ("attempts", "exc")

    def __init__(self, exc: BaseException, attempts: int) -> None:
        self.exc = exc
        self.attempts = attempts


class _Paused:
    __slots__ = ("gi",)

    def __init__(self, gi: GraphInterrupt) -> None:
        self.gi = gi


class _Ctx:
    """Where a for-each runs (its run, step and task) and the per-item events it sends."""

    __slots__ = ("durable", "emit", "index", "lock", "name", "run", "saved", "scopes", "step")

    def __init__(self, name: str, task: Any) -> None:
        self.name = name
        self.run = task.run if task is not None else None
        self.emit = self.run.emit if self.run is not None else None
        self.step = self.run.step + 1 if self.run is not None else 0
        self.index = task.index if task is not None else 0
        self.scopes: list[Any] | None = None
        # each item's result is saved as it finishes (with the answers to interrupts, which a
        # resumed step reads back): a crash or a pause re-runs only the items not finished
        run = self.run
        self.durable = run is not None and run.store is not None and run.durability != "exit"
        self.saved: Mapping[str, Any] = run.resume_values if run is not None and self.durable else {}
        self.lock = threading.Lock()

    @classmethod
    def here(cls, name: str, n: int) -> _Ctx:
        ctx = cls(name, current_task())
        # each item's interrupt() calls get ids of their own (items run side by side); made here,
        # in the node, where interrupt() finds the running node, entered where each item runs
        ctx.scopes = interrupt_scopes([f"item:{i}" for i in range(n)]) if ctx.run is not None else None
        return ctx

    def scope(self, i: int) -> Any:
        return self.scopes[i] if self.scopes is not None else _NULL_SCOPE

    def key(self, i: int) -> str:
        """The id item ``i``'s saved result goes by (stable across a crash, like an interrupt's)."""
        return str(self.run.interrupt_id(f"{self.index}/foreach:{i}", 0))  # type: ignore[union-attr]

    def _write(self, i: int, out: Any) -> list[PendingWrite]:
        return [PendingWrite(-1, RESUME_WRITE, {"id": self.key(i), "value": out}, [])]

    def save(self, i: int, out: Any) -> None:
        with self.lock:  # items finish on several threads; one store write at a time
            self.run.save_pending(self._write(i, out))  # type: ignore[union-attr]

    async def asave(self, i: int, out: Any) -> None:
        await self.run.asave_pending(self._write(i, out))  # type: ignore[union-attr]

    def _task(self, i: int) -> str:
        return f"{self.step}:{self.index}/{i}"

    def start(self, i: int, attempt: int, item: Any) -> float:
        if self.emit is not None:
            self.emit("node_start", self.step, f"{self.name}[{i}]", 0.0, attempt, self._task(i), item)
        return time.perf_counter()

    def end(self, i: int, attempt: int, out: Any, t: float) -> None:
        if self.emit is not None:
            self.emit("node_end", self.step, f"{self.name}[{i}]", time.perf_counter() - t, attempt, self._task(i), out)

    def retry(self, i: int, attempt: int, exc: Exception, t: float, policy: Any) -> float:
        rng = self.run.rng if self.run is not None else None
        if self.emit is not None:
            self.emit("node_retry", self.step, f"{self.name}[{i}]", time.perf_counter() - t, attempt, self._task(i), exc)
        return float(policy.interval(attempt - 1, rng, exc))

    def failed(self, i: int, attempt: int, exc: Exception, t: float) -> _Failed:
        if self.emit is not None:
            self.emit("node_error", self.step, f"{self.name}[{i}]", time.perf_counter() - t, attempt, self._task(i), exc)
        return _Failed(exc, attempt)


class _NullScope:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NULL_SCOPE = _NullScope()
_ABSENT: Any = type("_Absent", (), {"__repr__": lambda self: "<absent>"})()
_POOL: futures.ThreadPoolExecutor | None = None


def _pool() -> futures.ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="agentgraph_nb-foreach")
    return _POOL


def _short(v: Any, n: int = 60) -> str:
    text = repr(v)
    return text if len(text) <= n else text[: n - 3] + "..."


def _note(exc: BaseException, text: str) -> None:
    try:
        notes = getattr(exc, "__notes__", None)
        if isinstance(notes, list) and text in notes:
            return
        exc.__notes__ = [*(notes or []), text]  # type: ignore[attr-defined]  # what add_note does (3.10 too)
    except Exception:  # an exception that refuses attributes
        pass


# -- while --------------------------------------------------------------------------------------------
class WhileNode:
    """The function of a while node: one iteration per execution (see the module docstring).

    Its node input is ``(iterations so far, the state as nodes receive it)`` (see
    :func:`loop_node_defs`); ``exits`` (the targets of the user's edges from the loop) and
    ``routers`` (the user's conditional edges from it) are set at compile time.
    """

    def __init__(self, name: str, body: Callable[..., Any], condition: Callable[..., Any], max_iterations: int) -> None:
        self.name = self.__name__ = name
        self.body = self.loop_fn = body
        self.condition = condition
        self.max_iterations = max_iterations
        self.key = iteration_key(name)
        self.exits: tuple[str, ...] = ()
        self.routers: tuple[tuple[Callable[..., Any], Mapping[Any, str] | None], ...] = ()

    @property
    def is_async(self) -> bool:
        """Whether the body is async."""
        return is_async_callable(self.body)

    def __repr__(self) -> str:
        return f"WhileNode({self.name!r}, max_iterations={self.max_iterations})"

    def _holds(self, state: Any, done: int) -> bool:
        try:
            out = self.condition(state)
        except Exception as exc:
            raise LoopConditionError(
                f"while loop {self.name!r}: its condition {_fn_name(self.condition)!r} raised "
                f"{type(exc).__name__}: {exc} (before iteration {done + 1})",
                node=self.name,
            ) from exc
        if asyncio.iscoroutine(out):
            out.close()
            raise LoopConditionError(
                f"while loop {self.name!r}: its condition {_fn_name(self.condition)!r} is async; "
                "a loop condition is a plain function of the state", node=self.name,
            )
        try:
            return bool(out)
        except Exception as exc:
            raise LoopConditionError(
                f"while loop {self.name!r}: its condition {_fn_name(self.condition)!r} returned "
                f"{type(out).__name__} {_short(out)}, which is neither true nor false ({type(exc).__name__}: {exc})",
                node=self.name,
            ) from exc

    def _exit(self, state: Any) -> Command:
        goto: list[Any] = [t for t in self.exits if t != END]
        for router, path_map in self.routers:
            out = router(state)
            items = out if isinstance(out, (list, tuple)) else [out]
            for o in items:
                target = path_map[o] if path_map is not None and not hasattr(o, "arg") else o
                if target != END:
                    goto.append(target)
        return Command(update={self.key: 0}, goto=goto)

    def _step(self, inp: tuple[int, Any]) -> tuple[bool, Any]:
        done, state = inp
        if not self._holds(state, done):
            return False, self._exit(state)
        if done >= self.max_iterations:
            raise LoopLimitError(
                f"while loop {self.name!r} reached max_iterations={self.max_iterations} with its condition "
                f"{_fn_name(self.condition)!r} still true; nothing after the loop ran. The thread's last checkpoint "
                "is the one after the last iteration: raise max_iterations (or fix the body or the condition, "
                "e.g. with update_state) and resume with invoke(None, thread_id=...)",
                node=self.name, limit=self.max_iterations,
            )
        return True, done

    def _iterated(self, done: int, out: Any) -> Command:
        if isinstance(out, Command):
            raise TypeError(
                f"while loop {self.name!r}: its body returned a Command; a loop body returns an update (dict) or None")
        if out is None:
            update: dict[str, Any] = {}
        elif isinstance(out, Mapping):
            update = dict(out)
        else:
            raise TypeError(
                f"while loop {self.name!r}: its body returned {type(out).__name__} {_short(out)}; "
                "a loop body returns an update (dict) or None")
        update[self.key] = done + 1
        return Command(update=update, goto=self.name)

    def __call__(self, inp: tuple[int, Any]) -> Any:
        if self.is_async:
            return self._acall(inp)
        go, res = self._step(inp)
        if not go:
            return res
        return self._iterated(res, self.body(inp[1]))

    async def _acall(self, inp: tuple[int, Any]) -> Any:
        go, res = self._step(inp)
        if not go:
            return res
        out = self.body(inp[1])
        if asyncio.iscoroutine(out):
            out = await out
        return self._iterated(res, out)


def _fn_name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


# -- compile --------------------------------------------------------------------------------------------
def check_loops(builder: StateGraph) -> None:
    """Definite mistakes around loops (called by validation): joins or weighted edges leaving a
    while loop (its iterations would each count as an arrival)."""
    loops: dict[str, LoopSpec] = getattr(builder, "loops", {})
    whiles = {n for n, s in loops.items() if s.kind == "while"}
    if not whiles:
        return
    for sources, target in builder.joins:
        bad = whiles.intersection(sources)
        if bad:
            w = sorted(bad)[0]
            raise GraphValidationError(
                f"while loop {w!r} is a source of the join into {target!r}; a join after a loop is not supported: "
                f"add a node after {w!r} (g.add_edge({w!r}, 'after')) and join on that")
    for source, _ in builder.weighted:
        if source in whiles:
            raise GraphValidationError(
                f"while loop {source!r} has weighted edges; route after a loop with add_conditional_edges instead")


def loop_node_defs(builder: StateGraph, base_input: Callable[[str], Callable[[dict[str, Any]], Any]]
                   ) -> tuple[dict[str, Callable[[dict[str, Any]], Any]], set[str]]:
    """For :func:`~agentgraph_nb.graph.compiled._graph_def`: the node inputs of loop nodes
    (name -> make_input), and the while loops whose outgoing edges their node function takes
    over (its ``exits`` and ``routers`` are set here). A for-each node's ``retry`` applies to
    its items (inside :class:`ForEachNode`), so the engine is given none for it."""
    loops: dict[str, LoopSpec] = getattr(builder, "loops", {})
    inputs: dict[str, Callable[[dict[str, Any]], Any]] = {}
    whiles: set[str] = set()
    for name, spec in loops.items():
        if spec.kind == "foreach":
            inputs[name] = _list_input(spec.over)
        else:
            node = builder.nodes[name].fn
            assert isinstance(node, WhileNode)
            node.exits = tuple(t for s, t in builder.edges if s == name)
            node.routers = tuple((b.router, b.path_map) for b in builder.branches if b.source == name)
            inputs[name] = _while_input(node.key, base_input(name))
            whiles.add(name)
    return inputs, whiles


def _list_input(over: str) -> Callable[[dict[str, Any]], Any]:
    def make_input(values: dict[str, Any]) -> Any:
        return values.get(over, _ABSENT)

    return make_input


def _while_input(key: str, state_input: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    def make_input(values: dict[str, Any]) -> tuple[int, Any]:
        return values.get(key) or 0, state_input(values)

    return make_input


def add_loop_key(builder: StateGraph, name: str) -> None:
    """Give the while loop ``name`` its iteration counter in the state (see :func:`iteration_key`)."""
    schema = builder.state
    if schema.kind == "dict":
        return  # a dict state takes any key
    import typing

    from agentgraph_nb.state._schema import read_schema

    side = read_schema(typing.TypedDict(f"_{name}_loop", {iteration_key(name): int}))  # type: ignore[operator]
    schema.extend(side, f"while loop {name!r}")


def validate_foreach(builder: StateGraph, name: str, over: Any, into: Any, max_concurrency: Any, on_error: Any,
                     errors_into: Any, retry: Any) -> tuple[str, str, int, str, str | None]:
    """Check ``add_foreach``'s options (GraphValidationError naming the node)."""
    over = _state_key(builder, over, "over", name)
    into = _state_key(builder, into, "into", name)
    if errors_into is not None:
        errors_into = _state_key(builder, errors_into, "errors_into", name)
    max_concurrency = positive_int(max_concurrency, "max_concurrency", name)
    if on_error not in ON_ERROR:
        raise GraphValidationError(
            f"node {name!r}: on_error={on_error!r}; choose one of {', '.join(map(repr, ON_ERROR))}")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise GraphValidationError(f"node {name!r}: retry= must be a RetryPolicy, got {retry!r}")
    return over, into, max_concurrency, on_error, errors_into


def check_callable(fn: Any, what: str, name: str) -> None:
    """GraphValidationError naming the node when ``fn`` is not callable."""
    if not callable(fn):
        raise GraphValidationError(f"node {name!r}: {what} must be a function, got {type(fn).__name__} {fn!r}")

