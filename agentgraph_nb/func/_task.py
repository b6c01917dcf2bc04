"""Task calls of the functional API: :func:`task`, the futures its calls return, and where an
entrypoint's execution keeps their results (see the package docstring for the design)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any, Generic, TypeVar

from agentgraph_nb.checkpoint.base import PendingWrite
from agentgraph_nb.engine import Run, interrupt, interrupt_scope, stream_sink
from agentgraph_nb.errors import (
    CheckpointConflictError,
    CheckpointError,
    GraphValidationError,
    TaskCallError,
)
from agentgraph_nb.types import RetryPolicy

__all__ = ["TASK_WRITE", "TaskFunction", "TaskFuture", "task"]

T = TypeVar("T")

TASK_WRITE = "__task__"  # pending-write node name of a finished task's saved result

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

