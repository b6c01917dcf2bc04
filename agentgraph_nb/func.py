"""The functional API: ``@entrypoint`` and ``@task``, LangGraph's names for a workflow written as
plain Python (loops, ``if``, ``try``) instead of a graph.

Example:
    >>> from agentgraph_nb import entrypoint, task
    >>> @task
    ... def double(x: int) -> int:
    ...     return 2 * x
    >>> @entrypoint(checkpointer="memory")
    ... def workflow(numbers: list[int]) -> list[int]:
    ...     futures = [double(n) for n in numbers]   # started at once, run side by side
    ...     return [f.result() for f in futures]
    >>> workflow.invoke([1, 2, 3], thread_id="t1")
    [2, 4, 6]

How it is built (on the graph engine, no second engine):

* An entrypoint is a one-node graph, ``START -> <name> -> END``, over a dict state with three
  keys: ``input`` (what ``invoke`` got), ``output`` (what the function returned) and
  ``previous`` (what it saved for the next call on the thread, ``entrypoint.final(save=...)``).
  ``invoke``, ``stream``, ``get_state`` ... of the :class:`Entrypoint` show the output, as
  LangGraph's do; ``app.graph`` is the graph underneath (the Debugger and GraphView use it).
* Calling a task starts it at once (sync tasks on a thread of their own, async ones as asyncio
  tasks) and returns a :class:`TaskFuture`. Each call gets a key from the order of calls in the
  body (``"0:fetch"``, ``"1:fetch"``, nested ``"1:fetch/0:parse"``); a finished task's result is
  saved at once as a pending write (node ``"__task__"``) of the checkpoint the entrypoint's step
  started from. When the body runs again, after an ``interrupt()`` was answered or after a
  failure (``invoke(None, thread_id=...)``), a call whose key has a saved result returns it
  without running the task. So the body must call its tasks in the same order each time (the
  rule LangGraph states for the same reason).
* ``interrupt()`` inside a task pauses the whole entrypoint; its id comes from the task call's
  key, so the answer reaches that call when the body runs again.
* Task executions are events like node executions (``node_start``/``node_end``, node = the task's
  name, ``task_id`` = ``"<step>:<call key>"``): the Timeline draws their bars, the
  GraphView draws the tasks that ran beside the entrypoint, ``stream(mode="updates")`` yields
  ``{task_name: result}`` as each finishes.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import inspect
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent import futures
from typing import Any, Generic, TypeVar

from agentgraph_nb.checkpoint.base import PendingWrite
from agentgraph_nb.constants import END, START
from agentgraph_nb.engine._loop import Run, interrupt, interrupt_scope
from agentgraph_nb.engine._stream import get_stream_writer, stream_sink, task_context
from agentgraph_nb.errors import (
    CheckpointConflictError,
    CheckpointError,
    GraphValidationError,
    TaskCallError,
)
from agentgraph_nb.types import Command, RetryPolicy, StateSnapshot

__all__ = ["Entrypoint", "TaskFuture", "TaskFunction", "entrypoint", "task"]

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")

TASK_WRITE = "__task__"  # pending-write node name of a finished task's saved result
_INJECTED = ("previous", "writer", "config")  # keyword parameters an entrypoint may declare

_pool: futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _task_pool() -> futures.ThreadPoolExecutor:
    """Threads for sync tasks: a pool of its own (not the engine's), since a task waiting on the
    tasks it started holds its thread meanwhile."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="agentgraph_nb_task")
    return _pool


class _Exec:
    """One execution of an entrypoint's body: where its task calls save and find results.

    Results are written through the store's sync methods, except in an async body on a store
    the run awaits (``run.astore``, a network store under ``ainvoke``/``astream``): there they go
    through its async methods on the body's loop, from async tasks directly and from the threads
    of sync tasks by handing the write to that loop, so the loop never blocks on the network.
    """

    __slots__ = ("lock", "loop", "name", "run", "saved", "seen", "started", "step", "stepping")

    def __init__(self, run: Run, step: int, name: str, seen: dict[str, None]) -> None:
        self.run = run
        self.seen = seen  # the entrypoint's names of the tasks that ran (drawn by app.show())
        self.started: list[Any] = []  # futures of the calls started (all awaited before the body ends)
        self.stepping = False  # pause before each task call (Entrypoint.debug(step_tasks=True))
        self.name = name
        self.step = step
        self.saved: dict[str, Any] | None = None  # read from the store on the first task call
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None  # an async body's loop, with run.astore

    @property
    def durable(self) -> bool:
        run = self.run
        return run.store is not None and run.thread_id is not None

    def saved_results(self) -> dict[str, Any]:
        """Results the tasks of earlier executions of this step saved (by call key)."""
        if self.saved is None:
            with self.lock:
                if self.saved is None:
                    self.saved = self._read(self._record())
        return self.saved

    async def aload(self) -> None:
        """Read the saved results before an async body runs (through the store's async methods)."""
        if self.saved is None and self.loop is not None:
            rec = None
            if self._readable():
                run = self.run
                rec = await run.astore.aget(run.thread_id, run.checkpoint_id)  # type: ignore[union-attr, arg-type]
            self.saved = self._read(rec)

    def _readable(self) -> bool:
        # a replay of an older checkpoint (fork_of) starts its step afresh: it reuses nothing saved there
        run = self.run
        return self.durable and run.checkpoint_id is not None and run.fork_of is None

    def _record(self) -> Any:
        run = self.run
        return run.store.get(run.thread_id, run.checkpoint_id) if self._readable() else None  # type: ignore[union-attr, arg-type]

    @staticmethod
    def _read(rec: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if rec is not None:
            for pw in rec.pending_writes:
                if pw.node == TASK_WRITE and isinstance(pw.update, dict):
                    out[pw.update["id"]] = pw.update["value"]
        return out

    def _keep(self, key: str, task: str, value: Any) -> PendingWrite | None:
        with self.lock:
            saved = self.saved if self.saved is not None else {}
            saved[key] = value
            self.saved = saved
        return PendingWrite(-1, TASK_WRITE, {"id": key, "value": value, "task": task}, []) if self.durable else None

    def save(self, key: str, task: str, value: Any) -> None:
        """Keep a finished task's result (in memory for this execution, and in the store), from
        a sync task's thread."""
        pw = self._keep(key, task, value)
        if pw is None:
            return
        try:
            if self.loop is not None:
                asyncio.run_coroutine_threadsafe(self.run.asave_pending([pw]), self.loop).result()
            else:
                with self.lock:
                    self.run.save_pending([pw])
        except CheckpointConflictError:
            raise
        except (TypeError, ValueError, CheckpointError) as exc:
            raise self._unstorable(exc, task, value) from exc

    async def asave(self, key: str, task: str, value: Any) -> None:
        """:meth:`save` from an async task."""
        pw = self._keep(key, task, value)
        if pw is None:
            return
        try:
            if self.loop is not None and self.loop is asyncio.get_running_loop():
                await self.run.asave_pending([pw])
            else:
                with self.lock:
                    self.run.save_pending([pw])
        except CheckpointConflictError:
            raise
        except (TypeError, ValueError, CheckpointError) as exc:
            raise self._unstorable(exc, task, value) from exc

    def _unstorable(self, exc: Exception, task: str, value: Any) -> CheckpointError:
        return CheckpointError(
            f"task {task!r} of entrypoint {self.name!r} returned a value the checkpointer cannot "
            f"store ({type(value).__name__}; thread {self.run.thread_id!r}): {exc}"
        )


class _Frame:
    """The caller of tasks: the entrypoint body, or a task calling tasks (nested keys)."""

    __slots__ = ("counter", "prefix")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.counter = 0

    def next_key(self, name: str) -> str:
        n = self.counter
        self.counter += 1
        return f"{self.prefix}{n}:{name}"


_exec: contextvars.ContextVar[_Exec | None] = contextvars.ContextVar("agentgraph_nb_entrypoint", default=None)
_frame: contextvars.ContextVar[_Frame | None] = contextvars.ContextVar("agentgraph_nb_task_frame", default=None)


class TaskFuture(Generic[T]):
    """What calling a task returns: the task is already running; ``.result()`` waits for its
    value (or raises its exception), ``await`` does the same in async code.

    Example:
        >>> fut = fetch("oslo")        # doctest: +SKIP
        >>> fut.result()               # doctest: +SKIP
    """

    __slots__ = ("_fut", "_name")

    def __init__(self, fut: futures.Future[T] | asyncio.Future[T], name: str) -> None:
        self._fut = fut
        self._name = name

    def result(self, timeout: float | None = None) -> T:
        """The task's value, waiting for it (``timeout`` seconds at most for a sync task)."""
        fut = self._fut
        if isinstance(fut, futures.Future):
            return fut.result(timeout)
        if not fut.done():
            raise RuntimeError(
                f"task {self._name!r} is an async task still running: use `await` on it in an async "
                "entrypoint instead of .result()"
            )
        return fut.result()

    def done(self) -> bool:
        """Whether the task has finished."""
        return self._fut.done()

    def cancel(self) -> bool:
        """Cancel the task: an async task gets ``CancelledError`` at its next ``await``; a sync
        task is cancelled only if it has not started. Its result is not saved, so the call runs
        again when the body runs again."""
        return self._fut.cancel()

    def __await__(self) -> Any:
        fut = self._fut
        if isinstance(fut, futures.Future):
            return asyncio.wrap_future(fut).__await__()
        return fut.__await__()

    def __repr__(self) -> str:
        return f"<TaskFuture {self._name!r} {'done' if self.done() else 'running'}>"


def _done(value: Any, name: str) -> TaskFuture[Any]:
    fut: futures.Future[Any] = futures.Future()
    fut.set_result(value)
    return TaskFuture(fut, name)


def _callable_name(fn: Any) -> str:
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__


def _is_async(fn: Any) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or (callable(fn) and inspect.iscoroutinefunction(type(fn).__call__))


class TaskFunction(Generic[T]):
    """A function made a task by :func:`task`: calling it returns a :class:`TaskFuture`."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None, retry_policy: RetryPolicy | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"@task needs a function, got {type(fn).__name__}")
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise GraphValidationError(f"task {_callable_name(fn)!r} is a generator; tasks must return a value")
        self.fn = fn
        self.name = name or _callable_name(fn)
        self.retry_policy = retry_policy
        self.is_async = _is_async(fn)
        functools.update_wrapper(self, fn, updated=())  # type: ignore[arg-type]

    def __call__(self, *args: Any, **kwargs: Any) -> TaskFuture[T]:
        ex = _exec.get()
        if ex is None:
            raise TaskCallError(
                f"task {self.name!r} was called outside a running @entrypoint: call it from the body of "
                "an @entrypoint function (or from another task it calls)",
                task=self.name,
            )
        frame = _frame.get()
        if frame is None:
            frame = _Frame("")
            _frame.set(frame)
        key = frame.next_key(self.name)
        if self.name not in ex.seen:
            ex.seen[self.name] = None
        saved = ex.saved_results()
        if key in saved:
            return _done(saved[key], self.name)
        if ex.stepping:
            _pause_before(key, self.name, args, kwargs)
        fut = self._start(ex, key, args, kwargs)
        ex.started.append(fut._fut)
        return fut

    def _start(self, ex: _Exec, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskFuture[T]:
        # made here, where the calling node (or task) is found; entered where the call runs:
        # interrupt() inside the task gets ids of this call's own, stable across re-runs
        scope = interrupt_scope(key)
        if self.is_async:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                return TaskFuture(loop.create_task(self._arun(ex, scope, key, args, kwargs)), self.name)
            # an async task called from a sync entrypoint: its own loop, on a thread
            ctx = contextvars.copy_context()
            return TaskFuture(_task_pool().submit(ctx.run, asyncio.run, self._arun(ex, scope, key, args, kwargs)),
                              self.name)
        ctx = contextvars.copy_context()
        return TaskFuture(_task_pool().submit(ctx.run, self._run, ex, scope, key, args, kwargs), self.name)

    # -- running one call ---------------------------------------------------------------------------
    def _enter(self, scope: interrupt_scope, key: str) -> None:
        scope.__enter__()  # in this call's own context (a copy), left with it
        _frame.set(_Frame(key + "/"))  # tasks called by this task get keys under this one

    def _run(self, ex: _Exec, scope: interrupt_scope, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self._enter(scope, key)
        tid = f"{ex.step}:{key}"
        attempt = 1
        while True:
            t0 = time.perf_counter()
            _event(ex, "node_start", self.name, 0.0, attempt, tid, args[0] if len(args) == 1 and not kwargs else args)
            try:
                value = self.fn(*args, **kwargs)
            except Exception as exc:
                delay = self._failed(ex, exc, attempt, tid, time.perf_counter() - t0, key)
                time.sleep(delay)
                attempt += 1
                continue
            return self._finish(ex, key, tid, attempt, time.perf_counter() - t0, value)

    async def _arun(self, ex: _Exec, scope: interrupt_scope, key: str, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
        self._enter(scope, key)
        tid = f"{ex.step}:{key}"
        attempt = 1
        while True:
            t0 = time.perf_counter()
            _event(ex, "node_start", self.name, 0.0, attempt, tid, args[0] if len(args) == 1 and not kwargs else args)
            try:
                value = await self.fn(*args, **kwargs)
            except Exception as exc:
                delay = self._failed(ex, exc, attempt, tid, time.perf_counter() - t0, key)
                await asyncio.sleep(delay)
                attempt += 1
                continue
            await ex.asave(key, self.name, value)
            return self._finish(ex, key, tid, attempt, time.perf_counter() - t0, value, saved=True)

    def _failed(self, ex: _Exec, exc: Exception, attempt: int, tid: str, dt: float, key: str) -> float:
        """The wait before the next attempt, or raise ``exc`` (with a note saying where)."""
        retry = self.retry_policy
        if retry is not None and attempt < retry.max_attempts and retry.should_retry(exc):
            _event(ex, "node_retry", self.name, dt, attempt, tid, exc)
            return retry.interval(attempt - 1, ex.run.rng, exc)
        _event(ex, "node_error", self.name, dt, attempt, tid, exc)
        _add_note(exc, f"in task {self.name!r} (call {key!r}, attempt {attempt}) of entrypoint {ex.name!r}"
                       + (f", thread {ex.run.thread_id!r}" if ex.run.thread_id is not None else ""))
        raise exc

    def _finish(self, ex: _Exec, key: str, tid: str, attempt: int, dt: float, value: Any,
                saved: bool = False) -> Any:
        if not saved:
            ex.save(key, self.name, value)
        _event(ex, "node_end", self.name, dt, attempt, tid, value)
        sink = stream_sink()
        if sink is not None and ex.run.stream_updates:
            sink.emit("updates", {self.name: value})
        elif ex.run.stream_updates and ex.run.out is not None:
            ex.run.out.append(("updates", {self.name: value}))
        return value

    def __repr__(self) -> str:
        return f"<task {self.name!r}>"


def _pause_before(key: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Stepping task by task: an ``interrupt()`` before the call runs (answered by the
    Debugger's Resume); its id is the call's own, so the answer lets exactly this call run."""
    with interrupt_scope(f"{key}/before"):
        interrupt({"before_task": name, "call": key, "input": args[0] if len(args) == 1 and not kwargs else args})


def _wait_started(ex: _Exec) -> None:
    """Let every task the body started finish (its result saved) before the body's step ends,
    even when the body raised: nothing of this execution runs on after the run."""
    while True:
        pending = [f for f in ex.started if not f.done()]
        if not pending:
            return
        futures.wait([f for f in pending if isinstance(f, futures.Future)])
        if any(not isinstance(f, futures.Future) for f in pending):  # pragma: no cover - async body only
            return


async def _await_started(ex: _Exec) -> None:
    """:func:`_wait_started` in an async body (asyncio tasks and thread futures alike)."""
    while True:
        pending = [f for f in ex.started if not f.done()]
        if not pending:
            return
        await asyncio.wait([asyncio.wrap_future(f) if isinstance(f, futures.Future) else f for f in pending])


def _event(ex: _Exec, kind: str, node: str, dt: float, attempt: int, tid: str, data: Any) -> None:
    emit = ex.run.emit
    if emit is not None:
        emit(kind, ex.step, node, dt, attempt, tid, data)


def _add_note(exc: BaseException, note: str) -> None:
    notes = getattr(exc, "__notes__", None)
    if notes is not None and note in notes:
        return
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python 3.10
        try:
            exc.__notes__ = [*(notes or []), note]  # type: ignore[attr-defined]
        except AttributeError:
            pass


def task(
    __fn: Callable[..., Any] | None = None, *, name: str | None = None, retry_policy: RetryPolicy | None = None,
) -> Any:
    """Make a function a task of an :func:`entrypoint`: calling it inside the entrypoint starts it
    at once and returns a :class:`TaskFuture` (``.result()``, or ``await``); tasks started one
    after another run side by side. A finished task's result is checkpointed, so an entrypoint
    that runs again (after an interrupt was answered, or after a failure) does not re-run it.

    Args:
        name: the task's name in streams, events and the notebook views (default: the function's).
        retry_policy: retry a failed call, as a node's ``retry=`` does.

    Example:
        >>> @task
        ... def fetch(city: str) -> dict:
        ...     return {"city": city}
        >>> @task(name="summary", retry_policy=RetryPolicy(max_attempts=3))
        ... async def summarize(text: str) -> str:
        ...     return text[:100]

    Raises:
        TaskCallError: when called outside a running entrypoint.
    """
    if __fn is not None:
        return TaskFunction(__fn, name=name, retry_policy=retry_policy)

    def wrap(fn: Callable[..., Any]) -> TaskFunction[Any]:
        return TaskFunction(fn, name=name, retry_policy=retry_policy)

    return wrap


def _check_signature(fn: Callable[..., Any], name: str) -> tuple[set[str], bool]:
    """The injected keywords ``fn`` declares, and whether it takes the input at all."""
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise GraphValidationError(
            f"entrypoint {name!r} is a generator; an entrypoint returns its result (stream partial "
            "results with get_stream_writer() or a `writer` parameter)"
        )
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise GraphValidationError(f"entrypoint {name!r}: cannot read its signature ({exc})") from exc
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in _INJECTED]
    if not positional and not any(p.kind is p.VAR_POSITIONAL for p in params):
        raise GraphValidationError(
            f"entrypoint {name!r} must take the input as its first parameter, e.g. "
            f"`def {name}(inputs, *, previous=None)`"
        )
    extra = [p.name for p in positional[1:] if p.default is p.empty]
    if extra:
        raise GraphValidationError(
            f"entrypoint {name!r} takes one input; parameter(s) {', '.join(map(repr, extra))} have no default. "
            f"Pass several values as one dict, or make them keyword parameters with defaults "
            f"(the injectable ones: {', '.join(_INJECTED)})"
        )
    unknown = [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty and p.name not in _INJECTED]
    if unknown:
        raise GraphValidationError(
            f"entrypoint {name!r}: keyword parameter(s) {', '.join(map(repr, unknown))} have no default "
            f"and are not injected (the injected ones: {', '.join(_INJECTED)})"
        )
    return {p.name for p in params if p.name in _INJECTED}, True


class entrypoint:
    """Make a function a workflow: ``@entrypoint(checkpointer=...)`` turns it into an
    :class:`Entrypoint`, which runs like a compiled graph (``invoke``, ``stream``, ``get_state``,
    ...). Inside, call :func:`task` functions and ``interrupt()``.

    The function takes the input as its one positional parameter, and may declare the keyword
    parameters ``previous`` (what the last call on the same thread returned, or saved with
    :class:`entrypoint.final`; ``None`` on a new thread or without a checkpointer), ``writer``
    (:func:`~agentgraph_nb.get_stream_writer`'s writer) and ``config`` (``{"configurable":
    {"thread_id": ...}}``).

    Args:
        checkpointer: a store or URL (``"memory"``, ``"sqlite:///runs.db"``, ...); ``None`` (the
            default, as in LangGraph) keeps nothing between calls.
        name: the workflow's name (default: the function's).
        retry_policy: retries of the whole body when it fails (its finished tasks are not re-run).

    Example:
        >>> @entrypoint(checkpointer="memory")
        ... def counter(step: int, *, previous: int | None = None) -> int:
        ...     return (previous or 0) + step
        >>> counter.invoke(2, thread_id="c"), counter.invoke(3, thread_id="c")
        (2, 5)
    """

    @dataclasses.dataclass(frozen=True)
    class final(Generic[R, S]):
        """Return ``entrypoint.final(value=..., save=...)`` to give the caller ``value`` and keep
        ``save`` as the next call's ``previous``."""

        value: Any
        save: Any

    def __init__(self, checkpointer: Any = None, *, name: str | None = None, store: Any = None,
                 retry_policy: RetryPolicy | None = None) -> None:
        if store is not None:
            raise GraphValidationError(
                "entrypoint(store=...): a long-term memory store is not supported yet; keep such data in "
                "the checkpointed `previous` value or in your own database"
            )
        self.checkpointer = checkpointer
        self.name = name
        self.retry_policy = retry_policy

    def __call__(self, fn: Callable[..., Any]) -> Entrypoint:
        return Entrypoint(fn, checkpointer=self.checkpointer, name=self.name, retry_policy=self.retry_policy)


class Entrypoint:
    """A workflow made by :func:`entrypoint`; runs like a compiled graph, whose state is the
    function's return value (``invoke`` returns it; ``get_state(...).values`` is it).

    ``app.graph`` is the one-node graph underneath (state keys ``input``, ``output``,
    ``previous``); ``app.show()``, ``app.debug()``, ``app.timeline()`` and the other notebook
    methods are the graph's, with the tasks that ran drawn as nodes beside the entrypoint.
    """

    def __init__(self, fn: Callable[..., Any], *, checkpointer: Any = None, name: str | None = None,
                 retry_policy: RetryPolicy | None = None) -> None:
        from agentgraph_nb.graph.state import StateGraph

        self.fn = fn
        self.name = name or _callable_name(fn)
        injected, _ = _check_signature(fn, self.name)
        self.is_async = _is_async(fn)
        #: names of the tasks that ran in this process, in the order first seen (``show()`` draws them)
        self.tasks_seen: dict[str, None] = {}
        self._stepping: set[str] = set()  # threads whose runs pause before each task call
        node = self._make_node(fn, injected)
        builder = StateGraph(dict, name=self.name)
        builder.add_node(self.name, node, retry=retry_policy)
        builder.add_edge(START, self.name).add_edge(self.name, END)
        self.graph = builder.compile(checkpointer=checkpointer)
        functools.update_wrapper(self, fn, updated=())  # type: ignore[arg-type]

    def _make_node(self, fn: Callable[..., Any], injected: set[str]) -> Callable[..., Any]:
        name = self.name
        seen = self.tasks_seen
        stepping = self._stepping

        def kwargs_for(state: dict[str, Any], ex: _Exec) -> dict[str, Any]:
            kw: dict[str, Any] = {}
            if "previous" in injected:
                kw["previous"] = state.get("previous")
            if "writer" in injected:
                kw["writer"] = get_stream_writer()
            if "config" in injected:
                kw["config"] = {"configurable": {"thread_id": ex.run.thread_id}}
            return kw

        def start(state: dict[str, Any]) -> tuple[_Exec, Any, Any]:
            found = task_context()
            if found is None:  # pragma: no cover - the engine always runs nodes where it finds them
                raise TaskCallError(f"entrypoint {name!r} ran outside the engine", task=name)
            run, _, step = found
            ex = _Exec(run, step, name, seen)
            ex.stepping = bool(stepping) and run.thread_id in stepping
            return ex, _exec.set(ex), _frame.set(_Frame(""))

        def end(value: Any) -> dict[str, Any]:
            if isinstance(value, entrypoint.final):
                return {"output": value.value, "previous": value.save}
            return {"output": value, "previous": value}

        if self.is_async:
            async def anode(state: dict[str, Any]) -> dict[str, Any]:
                ex, t1, t2 = start(state)
                run = ex.run
                if run.astore is not None and run.thread_id is not None:
                    ex.loop = asyncio.get_running_loop()
                try:
                    await ex.aload()
                    value = await fn(state.get("input"), **kwargs_for(state, ex))
                finally:
                    await _await_started(ex)
                    _frame.reset(t2)
                    _exec.reset(t1)
                return end(value)

            anode.__name__ = name
            return anode

        def node(state: dict[str, Any]) -> dict[str, Any]:
            ex, t1, t2 = start(state)
            try:
                value = fn(state.get("input"), **kwargs_for(state, ex))
            finally:
                _wait_started(ex)
                _frame.reset(t2)
                _exec.reset(t1)
            return end(value)

        node.__name__ = name
        return node

    # -- running ----------------------------------------------------------------------------------
    @staticmethod
    def _input(input: Any) -> Any:
        return input if input is None or isinstance(input, Command) else {"input": input}

    @staticmethod
    def _result(out: Any) -> Any:
        if isinstance(out, dict) and "__interrupt__" in out:
            return {"__interrupt__": out["__interrupt__"]}
        return out.get("output") if isinstance(out, dict) else out

    def invoke(self, input: Any, thread_id: str | None = None, **kwargs: Any) -> Any:
        """Run the workflow and return what it returned (``{"__interrupt__": [...]}`` when it
        paused). ``input`` is its input, ``Command(resume=...)`` to answer an ``interrupt()``,
        or ``None`` to run a failed thread again (finished tasks are not re-run). Takes the
        keywords of :meth:`CompiledGraph.invoke`."""
        return self._result(self.graph.invoke(self._input(input), thread_id, **kwargs))

    async def ainvoke(self, input: Any, thread_id: str | None = None, **kwargs: Any) -> Any:
        """Async :meth:`invoke`."""
        return self._result(await self.graph.ainvoke(self._input(input), thread_id, **kwargs))

    def _modes(self, mode: str | Sequence[str]) -> tuple[list[str], frozenset[str], bool]:
        asked = frozenset([mode] if isinstance(mode, str) else mode)
        return sorted(asked | {"updates", "custom"}), asked, not isinstance(mode, str)

    def _item(self, m: str, payload: Any, asked: frozenset[str], seen: list[bool]) -> Any:
        """A stream item as callers get it, or ``_SKIP``."""
        if m == "updates":
            if isinstance(payload, dict) and self.name in payload and isinstance(payload[self.name], dict):
                seen[0] = True
                payload = {self.name: payload[self.name].get("output")}
            return payload if "updates" in asked else _SKIP
        if m == "values":
            if isinstance(payload, dict) and "__interrupt__" in payload:
                return {"__interrupt__": payload["__interrupt__"]}
            return payload.get("output") if seen[0] and isinstance(payload, dict) else _SKIP
        if m == "custom" and "custom" not in asked:
            return _SKIP
        return payload

    def stream(self, input: Any, thread_id: str | None = None, *, mode: str | Sequence[str] = "updates",
               **kwargs: Any) -> Iterator[Any]:
        """Run and yield as it goes: ``"updates"`` (default) yields ``{task_name: result}`` as each
        task finishes and ``{entrypoint_name: return_value}`` at the end; ``"values"`` the return
        value; ``"custom"`` what the body and its tasks write; ``"events"``, ``"messages"`` as
        for a graph. A pause yields ``{"__interrupt__": (Interrupt(...),)}``."""
        modes, asked, tagged = self._modes(mode)
        seen = [False]
        for m, payload in self.graph.stream(self._input(input), thread_id, mode=modes, **kwargs):
            item = self._item(m, payload, asked, seen)
            if item is not _SKIP:
                yield (m, item) if tagged else item

    async def astream(self, input: Any, thread_id: str | None = None, *, mode: str | Sequence[str] = "updates",
                      **kwargs: Any) -> AsyncIterator[Any]:
        """Async :meth:`stream`."""
        modes, asked, tagged = self._modes(mode)
        seen = [False]
        async for m, payload in self.graph.astream(self._input(input), thread_id, mode=modes, **kwargs):
            item = self._item(m, payload, asked, seen)
            if item is not _SKIP:
                yield (m, item) if tagged else item

    def batch(self, inputs: Sequence[Any], **kwargs: Any) -> list[Any]:
        """Run many inputs (see :meth:`CompiledGraph.batch`); the return values in input order."""
        out = self.graph.batch([self._input(x) for x in inputs], **kwargs)
        return [x if isinstance(x, BaseException) else self._result(x) for x in out]

    async def abatch(self, inputs: Sequence[Any], **kwargs: Any) -> list[Any]:
        """Async :meth:`batch`."""
        out = await self.graph.abatch([self._input(x) for x in inputs], **kwargs)
        return [x if isinstance(x, BaseException) else self._result(x) for x in out]

    # -- state ------------------------------------------------------------------------------------
    @staticmethod
    def _snapshot(snap: StateSnapshot) -> StateSnapshot:
        values = snap.values.get("output") if isinstance(snap.values, dict) else snap.values
        return dataclasses.replace(snap, values=values)  # type: ignore[arg-type]  # the return value, any type

    def get_state(self, thread_id: str, checkpoint_id: str | None = None) -> StateSnapshot:
        """The thread's state: ``values`` is the last return value (``None`` before the first)."""
        return self._snapshot(self.graph.get_state(thread_id, checkpoint_id))

    def get_state_history(self, thread_id: str, **kwargs: Any) -> list[StateSnapshot]:
        """Every checkpoint of the thread, newest first (see :meth:`CompiledGraph.get_state_history`)."""
        return [self._snapshot(s) for s in self.graph.get_state_history(thread_id, **kwargs)]

    def update_state(self, thread_id: str, value: Any, checkpoint_id: str | None = None) -> str:
        """Set the thread's return value and ``previous`` to ``value`` (a checkpoint of its own;
        the next call sees it as ``previous``). Returns the new checkpoint's id."""
        return self.graph.update_state(thread_id, {"output": value, "previous": value},
                                       checkpoint_id=checkpoint_id)

    # -- the notebook ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The graph as JSON (see :meth:`CompiledGraph.to_json`) with the tasks that have run
        drawn as nodes beside the entrypoint (``"kind": "task"``, reached by a ``task`` branch)."""
        data = self.graph.to_json()
        tasks = [t for t in self.tasks_seen if t not in (self.name, START, END)]
        if tasks:
            data["nodes"] = [*data["nodes"], *({"name": t, "target": "", "async": False, "retry": None,
                                               "timeout": None, "kind": "task"} for t in tasks)]
            data["branches"] = [*data["branches"], {"source": self.name, "router": "task", "router_target": "",
                                                    "targets": tasks, "path_map": None}]
        return data

    def show(self, routes: Any = None) -> Any:
        """The GraphView of this workflow: the entrypoint, and beside it each task as soon as it
        first runs; live node and task status during runs."""
        view = self.graph.show(routes)
        view.graph = self.to_json()
        known = set(self.tasks_seen)

        def grow(event: Any) -> None:
            if event.kind == "node_start" and event.node not in known and event.node in self.tasks_seen:
                known.add(event.node)
                view.graph = self.to_json()

        self.graph.listen(grow)
        return view

    def debug(self, inputs: Any = None, *, thread_id: str | None = None, step_tasks: bool = True) -> Any:
        """The step-through Debugger on a run of this workflow. With ``step_tasks`` (default) the
        run pauses before each task call: the Debugger shows ``{"before_task": name, "call": key,
        "input": ...}`` as the pending interrupt and its graph marks the tasks done so far and the
        next one pending. **Resume** (any answer) runs that task and pauses before the next; Step
        on such a pause asks the same question again (the pause is an ``interrupt()``, which only
        an answer gets past). Finished tasks are never run again: going back and continuing
        reuse their results."""
        dbg = self.graph.debug(self._input(inputs) if inputs is not None else None, thread_id=thread_id)
        if step_tasks:
            self._stepping.add(dbg.session.thread_id)
        view = dbg.graphview
        view.graph = self.to_json()
        known = set(self.tasks_seen)

        def grow(event: Any) -> None:
            if event.kind == "node_start" and event.node not in known and event.node in self.tasks_seen:
                known.add(event.node)
                view.graph = self.to_json()

        self.graph.listen(grow)
        painting = [False]

        def paint(change: Any) -> None:
            # the Debugger paints nodes from the selected checkpoint's writes; tasks are not
            # among them: mark the ones whose results that step keeps, and the one asked about
            if painting[0]:
                return
            status = dict(change["new"])
            try:
                extra = self._task_statuses(dbg.state)
            except Exception:  # a picture must never break the Debugger
                return
            if any(status.get(k) != v for k, v in extra.items()):
                painting[0] = True
                try:
                    view.status = {**status, **extra}
                finally:
                    painting[0] = False

        view.observe(paint, names="status")
        paint({"new": view.status})
        return dbg

    def _task_statuses(self, snap: StateSnapshot) -> dict[str, str]:
        """Statuses of tasks at a checkpoint: ``done`` for those whose results its step keeps
        (or, at the end of a step, the step before kept), ``pending`` for the one a stepping
        pause asks about."""
        store = self.graph.checkpointer
        if store is None or snap.checkpoint_id is None or snap.thread_id is None:
            return {}
        out: dict[str, str] = {}
        rec = store.get(snap.thread_id, snap.checkpoint_id)
        recs = [rec] if rec is not None else []
        if rec is not None and not any(pw.node == TASK_WRITE for pw in rec.pending_writes) and rec.parent_id:
            parent = store.get(snap.thread_id, rec.parent_id)
            recs = [parent] if parent is not None else []
        for r in recs:
            for pw in r.pending_writes:
                if pw.node == TASK_WRITE and isinstance(pw.update, dict):
                    out[str(pw.update.get("task"))] = "done"
        for it in snap.interrupts:
            if isinstance(it.value, dict) and "before_task" in it.value:
                out[str(it.value["before_task"])] = "pending"
        return out

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """As a compiled graph displays, with the tasks that ran drawn beside the entrypoint."""
        from agentgraph_nb.notebook.display import mimebundle

        return mimebundle(self)

    def _ipython_display_(self) -> None:
        from agentgraph_nb.notebook.display import ipython_display

        ipython_display(self)

    def __getattr__(self, name: str) -> Any:
        # the graph's other methods: show, debug, timeline, record, events, listen, list_threads, ...
        if name.startswith("__") or name == "graph":
            raise AttributeError(name)
        return getattr(self.graph, name)

    def __repr__(self) -> str:
        store = type(self.graph.checkpointer).__name__ if self.graph.checkpointer is not None else "no checkpointer"
        return f"<Entrypoint {self.name!r}: {'async' if self.is_async else 'sync'}, {store}>"


_SKIP: Any = object()
