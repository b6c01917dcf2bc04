"""One run of a compiled graph: the superstep loop.

The loop is a single coroutine, :func:`run_loop`; :func:`stream_run` turns it into the async
generator of a stream (the loop awaits a marker when stream items are waiting, which only that
driver sees). Sync graphs are driven without an event loop at all (the coroutine never suspends: sync nodes
run inline, parallel ones on a thread pool, retries sleep with ``time.sleep``), so a plain
``invoke()`` pays no asyncio cost and works inside a running notebook loop; graphs with async
nodes are driven on an event loop by the runner.
"""

from __future__ import annotations

import contextvars
import logging
import os
import random
import sys
import time
from collections.abc import AsyncGenerator, Callable, Generator
from collections.abc import Set as AbstractSet
from types import CoroutineType
from typing import TYPE_CHECKING, Any, cast

from agentgraph_nb._lazy import LazyModule
from agentgraph_nb.checkpoint.base import CheckpointRecord, PendingWrite, new_checkpoint_stamp
from agentgraph_nb.constants import END, START
from agentgraph_nb.engine._algo import (
    NOARG,
    apply_writes,
    is_overwrite,
    normalize_result,
    pick_weighted,
    resolve_targets,
)
from agentgraph_nb.engine._recover import (
    diverted_task,
    handler_input,
    note_completed,
    on_failure,
    resume_compensation,
)
from agentgraph_nb.errors import (
    AgentGraphError,
    CheckpointConflictError,
    GraphInterrupt,
    GraphRecursionError,
    InvalidUpdateError,
    NodeError,
    NodeTimeoutError,
    ParentCommand,
    StepTimeoutError,
)
from agentgraph_nb.types import CaughtError, Event, Interrupt, NodeFailure

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures as futures

    from agentgraph_nb.checkpoint.base import BaseCheckpointer
    from agentgraph_nb.engine._plan import Plan, PNode
    from agentgraph_nb.types import RetryPolicy

__all__ = ["INTERRUPT_KEY", "Run", "current_task", "interrupt", "interrupt_scope", "run_loop", "stream_run"]

if not TYPE_CHECKING:
    asyncio = LazyModule("asyncio", __name__, "asyncio")
    futures = LazyModule("concurrent.futures", __name__, "futures")

logger = logging.getLogger("agentgraph_nb")

INTERRUPT_KEY = "__interrupt__"
_IW = "__interrupt__"  # pending-write node name for recorded interrupts
_RW = "__resume__"  # pending-write node name for resume answers
_EW = "__error__"  # pending-write node name marking a task whose saved result could not be merged
# the same, by their public names (agentgraph_nb.engine)
INTERRUPT_WRITE, RESUME_WRITE, ERROR_WRITE = _IW, _RW, _EW

# what interrupt() reads: a _Scratch, or the Run itself for its inline tasks (one at a time)
_current: contextvars.ContextVar[_Scratch | Run | None] = contextvars.ContextVar("agentgraph_nb_task", default=None)

_pool: futures.ThreadPoolExecutor | None = None


_POOL_SIZE = 32  # sync nodes of one step that may block side by side (threads start on demand)


def _thread_pool() -> futures.ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = futures.ThreadPoolExecutor(max_workers=_POOL_SIZE, thread_name_prefix="agentgraph_nb")
    return _pool


class _Scratch:
    """Per-execution context a node's ``interrupt()`` calls read."""

    __slots__ = ("counter", "index", "node", "run")

    def __init__(self, run: Run, node: str, index: int) -> None:
        self.run = run
        self.node = node
        self.index = index
        self.counter = 0


def interrupt(value: Any) -> Any:
    """Pause the running node and ask a human: ``answer = interrupt({"question": ...})``.

    The first time, the run stops and ``invoke`` returns the state with an ``"__interrupt__"``
    entry (``get_state(...).interrupts`` lists it). Resume with
    ``invoke(Command(resume=answer), thread_id=...)``: the node runs again from its first line and
    this call returns ``answer``. Several ``interrupt()`` calls in one node are answered in order.
    It may be called from the node or any function the node calls; from a task the node starts
    itself (``asyncio.create_task``, ``gather``) only in runs with a ``thread_id``.

    Raises:
        RuntimeError: when called outside a running node.
    """
    scratch = _find_scratch(2)
    if scratch is None:
        raise RuntimeError(
            "interrupt() can only be called inside a node while a graph runs (in a task the node "
            "starts itself, only in runs with a thread_id=..., which resuming needs anyway)"
        )
    n = scratch.counter
    scratch.counter += 1
    run = scratch.run
    iid = run.interrupt_id(scratch.index, n)
    answers = run.resume_values.get(iid, _MISSING)
    if answers is not _MISSING:
        return answers
    if run.asked_at is _EMPTY:
        run.asked_at = {}
    # which task asked (get_state().tasks shows it there); a scope's index names a part of it
    task = scratch.parent if isinstance(scratch, _ScopedScratch) else scratch
    run.asked_at[iid] = task.index
    raise GraphInterrupt((Interrupt(value, iid, scratch.node, "during"),))


def current_task() -> _Scratch | Run | None:
    """The node execution the calling code runs in (``.run``, ``.node``, ``.index``), or None
    outside a run; found as :func:`interrupt` finds it (a subgraph node reads its parent run)."""
    return _find_scratch(2)


def find_scratch(depth: int) -> _Scratch | Run | None:
    """The running task's context, found up the stack when no context variable is set (the
    engine runs inline nodes without one); ``depth``: frames to skip."""
    return _find_scratch(depth + 1)


def _find_scratch(depth: int) -> _Scratch | Run | None:
    """What interrupt() answers to: the nearest engine frame up the calling stack (a task's
    ``scratch``, or the run itself for the loop's inline node), else the context variable.

    The stack comes first because the context variable is not set per run for ``invoke`` /
    ``ainvoke`` without a thread (three objects per run, which count with a million concurrent
    runs); it is what a task the node starts itself inherits (set once per run with a thread, and
    per task in parallel steps, streams and nodes with a timeout).
    """
    f = sys._getframe(depth)
    while f is not None:
        code = f.f_code
        if code is _LOOP_CODE:
            return _in_scope(cast("Run", f.f_locals["run"]))
        if code in _TASK_CODES:
            found = f.f_locals.get("scratch")
            if found is not None:
                return _in_scope(cast("_Scratch | Run", found))
        f = f.f_back  # type: ignore[assignment]
    scoped = _scope.get()
    return scoped if scoped is not None else _current.get()


class _ScopedScratch(_Scratch):
    """The scratch of an :class:`interrupt_scope`: a part of a node with interrupt ids of its own."""

    __slots__ = ("parent",)

    def __init__(self, run: Run, node: str, index: Any, parent: _Scratch | Run) -> None:
        super().__init__(run, node, index)
        self.parent = parent


# the interrupt_scope entered in this context (thread or task), if any
_scope: contextvars.ContextVar[_ScopedScratch | None] = contextvars.ContextVar("agentgraph_nb_scope", default=None)


def _in_scope(found: _Scratch | Run) -> _Scratch | Run:
    """``found``, or the scope entered inside it (a scope of another node's scratch, e.g. of a
    subgraph's node run by the scoped code, does not apply to that node)."""
    s = _scope.get()
    return s if s is not None and s.parent is found else found


class interrupt_scope:
    """Give the ``interrupt()`` calls of one part of a node ids of their own, so that parts that
    run side by side (threads, tasks) pause and resume independently of their timing.

    Made in the node (where it finds the running node), entered where the part runs: in a
    worker thread, a task, or the node itself. ``interrupt()`` calls inside count from 0 under
    ``key``, which must name the part the same way each time the node runs (e.g. a tool call's
    id). Outside a running node it does nothing (``interrupt()`` then fails as usual).

    Example:
        >>> scopes = [interrupt_scope(call["id"]) for call in calls]   # doctest: +SKIP
        >>> def run(i):                                                # in a worker thread
        ...     with scopes[i]:
        ...         return tool(calls[i])
    """

    __slots__ = ("_scratch", "_token")

    def __init__(self, key: str) -> None:
        parent = _find_scratch(2)
        self._scratch: _ScopedScratch | None = None
        self._token: contextvars.Token[_ScopedScratch | None] | None = None
        if parent is not None:
            run = parent if isinstance(parent, Run) else parent.run
            base = parent.parent if isinstance(parent, _ScopedScratch) else parent
            index = f"{parent.index}/{key}"
            self._scratch = _ScopedScratch(run, cast(str, parent.node), index, base)

    def __enter__(self) -> interrupt_scope:
        if self._scratch is not None:
            self._scratch.counter = 0
            self._token = _scope.set(self._scratch)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _scope.reset(self._token)
            self._token = None


_MISSING: Any = object()
_EMPTY: Any = {}  # shared empty default of Run's dict slots; code rebinds, never mutates it
_NO_OUT: Any = ()  # Run.out without a stream mode: appending would be a bug


class _Failure(Exception):
    """Internal: carries a task failure out of the step with its task index."""

    def __init__(self, index: int, exc: BaseException) -> None:
        super().__init__(index, exc)
        self.index = index
        self.exc = exc


class Run:
    """The mutable state of one run. Built by the compiled graph, consumed by :func:`run_loop`.

    Slotted and lazy (no random generator until a weighted edge or jittered retry needs one):
    a million concurrent runs each keep one of these alive.
    """

    __slots__ = (
        "_rng",
        "_run_id",
        "_seed",
        "asked_at",
        "astore",
        "barriers",
        "buffer",
        "checkpoint_id",
        "counter",
        "debug_log",
        "durability",
        "emit",
        "ev_thread",
        "fork_of",
        "head",
        "index",
        "interrupt_after",
        "interrupt_before",
        "interrupts",
        "listeners",
        "max_steps",
        "namespace",
        "node",
        "out",
        "parent_task",
        "pending",
        "plan",
        "planned_at",
        "recursion_limit",
        "resume_values",
        "runtime",
        "saga_done",
        "saga_resume",
        "schema",
        "scoped",
        "since_snapshot",
        "skip_before",
        "start_input",
        "step",
        "step_timeout",
        "store",
        "stream_events",
        "stream_updates",
        "stream_values",
        "sub_modes",
        "sync",
        "t0",
        "tags",
        "task_exec",
        "tasks",
        "thread_id",
        "tx_base",
        "values",
    )

    def __init__(
        self,
        plan: Plan,
        *,
        thread_id: str | None,
        store: BaseCheckpointer | None,
        durability: str,
        listeners: list[Callable[[Event], Any]],
        modes: frozenset[str],
        seed: int | None,
        sync: bool,
        recursion_limit: int,
        interrupt_before: frozenset[str],
        interrupt_after: frozenset[str],
    ) -> None:
        self.plan = plan
        self.schema = plan.schema
        self._run_id: str | None = None  # drawn when first read (events, logs, checkpoints)
        self.thread_id = thread_id
        self.store = store
        # the store, when this run must await its async methods (a network store driven on an
        # event loop); None on the sync path and for stores whose sync methods never wait. A store
        # from before the concurrency check is called as it always was: the engine's own check
        # and the write must not be split by an await (see _check_newest)
        self.astore: BaseCheckpointer | None = (
            store if (store is not None and not sync and not store.inline_ok and store.checks_conflicts) else None)
        self.durability = durability
        self.listeners = listeners
        self.emit: Callable[..., None] | None = self._emit if (listeners or "events" in modes) else None
        self.stream_updates = "updates" in modes
        self.stream_values = "values" in modes
        self.stream_events = "events" in modes
        # stream items waiting to be yielded; nothing is ever appended without a stream mode
        self.out: list[tuple[str, Any]] = [] if modes else _NO_OUT  # type: ignore[assignment]
        self._seed = seed
        self._rng: random.Random | None = None
        self.sync = sync
        self.recursion_limit = recursion_limit
        self.interrupt_before = interrupt_before
        self.interrupt_after = interrupt_after
        self.debug_log = logger.isEnabledFor(logging.DEBUG)
        # position
        self.values: dict[str, Any] = _EMPTY
        self.tasks: list[tuple[PNode, Any]] = []
        self.barriers: _Barriers = _EMPTY  # replaced, never mutated in place (frozensets: _freeze)
        self.step = 0
        self.checkpoint_id: str | None = None
        # the thread's newest checkpoint as this run last saw it (when it loaded the thread, then
        # its own last write): each write expects it still is (optimistic concurrency, see
        # checkpoint/base.py); differs from checkpoint_id only before a fork's first write
        self.head: str | None = None
        self.since_snapshot = 0
        self.pending: dict[int, tuple[Any, Any]] = _EMPTY  # task index -> (update, goto) already done
        self.resume_values: dict[str, Any] = _EMPTY
        self.asked_at: dict[str, int] = _EMPTY  # interrupt id -> index of the task that asked
        self.skip_before = False
        # a replay of an older checkpoint: its id, until the replay's first checkpoint is saved
        self.fork_of: str | None = None
        # the checkpoint that planned the pending step, when it is not ``checkpoint_id`` (a fork):
        # interrupt ids hash it, so the questions of a step keep their ids in every fork of it
        self.planned_at: str | None = None
        self.buffer: list[CheckpointRecord] | None = None  # durability="exit"
        self.interrupts: tuple[Interrupt, ...] = ()
        self.t0 = time.perf_counter()
        self.start_input: dict[str, Any] | None = None  # set: route from START and save the input first
        self.max_steps: int | None = None  # stop (without error) after this many supersteps
        self.step_timeout: float | None = None  # seconds a superstep may take (StepTimeoutError)
        # the run is its own scratch for inline tasks (one at a time): interrupt() reads these
        self.node = ""
        self.index = 0
        self.counter = 0
        # True for invoke/ainvoke (see CompiledGraph._enter): inline tasks then set no context
        # variable per node (interrupt() finds them up the stack)
        self.scoped = False
        # a subgraph's run (see graph/_subgraph.py): its namespace ("team", "team|inner"), the
        # thread its events name (the parent's), and what its checkpoints' metadata carry
        self.namespace = ""
        self.ev_thread: str | None = None
        self.tags: dict[str, Any] | None = None
        self.parent_task: tuple[str, str] | None = None  # (parent run id, task id) running this subgraph
        # stream(..., subgraphs=True): the modes subgraph runs stream into this run's ``out``
        self.sub_modes: frozenset[str] | None = None
        # sagas (engine/_recover.py): completions with a compensation (runs without a thread),
        # and the compensation records of a thread whose compensating a stopped process began
        self.saga_done: list[tuple[str, str]] | None = None
        self.saga_resume: dict[str, Any] | None = None
        self.tx_base: dict[str, dict[str, Any]] | None = None  # transaction -> the state before it
        # what nodes taking ``runtime`` get (agentgraph_nb.runtime.Runtime: context, resources), or None
        self.runtime: Any = None
        # where node functions run when not here: an executor (agentgraph_nb.distributed) whose
        # ``sync_fn``/``async_fn`` give the callable that runs one execution there; None: in-process
        self.task_exec: Any = None

    @property
    def run(self) -> Run:
        """The run (as for a :class:`_Scratch`)."""
        return self

    @property
    def run_id(self) -> str:
        """A random id of this run, drawn when first read."""
        if self._run_id is None:
            self._run_id = os.urandom(16).hex()
        return self._run_id

    def reset_scratch(self, node: str, index: int) -> Run:
        """The run as the scratch of its next inline task."""
        self.node = node
        self.index = index
        self.counter = 0
        return self

    @property
    def seed(self) -> int:
        """The run's seed (drawn at random when the caller gave none), for reproducing it."""
        if self._seed is None:
            self._seed = random.getrandbits(63)
        return self._seed

    @property
    def rng(self) -> random.Random:
        """The run's random generator: weighted edges and retry jitter draw from it."""
        if self._rng is None:
            self._rng = random.Random(self.seed)
        return self._rng

    # -- events -----------------------------------------------------------------------------------
    def _emit(self, kind: str, step: int, node: str = "", duration: float = 0.0, attempt: int = 0,
              task_id: str = "", data: Any = None) -> None:
        if self.namespace:
            ev = Event(kind, self.run_id, self.ev_thread, step, node, time.perf_counter(), duration, attempt, task_id,
                       data, self.namespace)
        else:
            ev = Event(kind, self.run_id, self.thread_id, step, node, time.perf_counter(), duration, attempt, task_id,
                       data)
        if self.stream_events:
            self.out.append(("events", ev))
        for cb in self.listeners:
            try:
                cb(ev)
            except Exception:  # a broken listener must not break the run
                logger.exception("agentgraph_nb listener %r failed on %s", cb, kind)

    def _log_extra(self, step: int, node: str = "") -> dict[str, Any]:
        return {"run_id": self.run_id, "thread_id": self.thread_id, "step": step, "node": node}

    def interrupt_id(self, index: int, n: int) -> str:
        raw = f"{self.thread_id}|{self.planned_at or self.checkpoint_id}|{index}|{n}"
        from hashlib import blake2b

        return blake2b(raw.encode(), digest_size=8).hexdigest()

    # -- checkpoints --------------------------------------------------------------------------------
    def save(self, writes: list[tuple[str, Any]], source: str, extra: dict[str, Any] | None = None) -> None:
        """Record a checkpoint of the current position (no-op without a store)."""
        store = self.store
        if store is None:
            return
        rec = self._record(writes, source, extra)
        # the run moves on from the checkpoint it replayed (even if storing this one fails: the
        # position is no longer the replayed one, so no fork of it is saved after all)
        self.fork_of = self.planned_at = None
        d = self.durability
        if d == "sync":
            self._put(store, rec)
        elif d == "async":
            if store.checks_conflicts:
                store.put_nowait(rec, expected=self.head)
            else:
                store.put_nowait(rec)
            self.head = rec.checkpoint_id
        elif self.buffer is None:  # "exit": self.head moves when the buffer is written
            self.buffer = [rec]
        else:
            self.buffer.append(rec)
        self.checkpoint_id = rec.checkpoint_id
        if self.emit is not None:
            self.emit("checkpoint", self.step, data=rec.checkpoint_id)

    def _put(self, store: BaseCheckpointer, rec: CheckpointRecord) -> None:
        """Write ``rec`` now, expecting the thread's newest to be ``head`` (see checkpoint/base.py)."""
        if store.checks_conflicts:
            store.put(rec, expected=self.head)
        else:  # a store from before the check: compare first (narrows the race, cannot close it)
            _check_newest(store, rec, self.head)
            store.put(rec)
        self.head = rec.checkpoint_id

    def _record(self, writes: list[tuple[str, Any]], source: str, extra: dict[str, Any] | None,
                snapshot: bool = False) -> CheckpointRecord:
        """A checkpoint of the current position, child of ``checkpoint_id`` (with the full values
        when ``snapshot``, or when the store's ``snapshot_every`` says so)."""
        store = cast("BaseCheckpointer", self.store)
        snap = snapshot or self.checkpoint_id is None or self.since_snapshot + 1 >= store.snapshot_every
        self.since_snapshot = 0 if snap else self.since_snapshot + 1
        cid, created_at = new_checkpoint_stamp()
        meta: dict[str, Any] = {"source": source, "run_id": self.run_id}
        version = self.plan.state_version
        if version != 1:  # version 1 records nothing: the checkpoints of before versions existed
            meta["state_version"] = version
        if self.tags:
            meta.update(self.tags)
        if extra:
            meta.update(extra)
        return CheckpointRecord(
            thread_id=self.thread_id,  # type: ignore[arg-type]
            checkpoint_id=cid,
            parent_id=self.checkpoint_id,
            step=self.step,
            created_at=created_at,
            writes=[[n, u] for n, u in writes],
            values=self.values if snap else None,
            next=[[t[0].name] if t[1] is NOARG else [t[0].name, t[1]] for t in self.tasks],
            barriers={k: sorted(v) for k, v in self.barriers.items()} if self.barriers else {},
            metadata=meta,
        )

    def save_fork(self) -> None:
        """Save the first checkpoint of a replay of an older checkpoint: a copy of it (source
        ``"fork"``), which becomes the thread's newest. Saved only when the replay must record
        something before its first superstep commits (a finished sibling, an interrupt, a
        failure); a replay whose first step commits hangs that step's checkpoint on the replayed
        one instead. The fork keeps the replayed step's interrupt ids (``planned_at``), so an
        answer given to the fork reaches the node it asked from.
        """
        base = cast(str, self.fork_of)
        self.fork_of = None
        self.planned_at = self.planned_at or base
        # with its values in full: a Command(update=...) may have changed them
        rec = self._record([], "fork", {"fork_of": self.planned_at}, snapshot=True)
        self.flush()
        self._put(cast("BaseCheckpointer", self.store), rec)
        self.checkpoint_id = rec.checkpoint_id
        if self.emit is not None:
            self.emit("checkpoint", self.step, data=rec.checkpoint_id)

    def flush(self) -> None:
        store = self.store
        if store is None:
            return
        if self.buffer:
            if store.checks_conflicts:
                store.put_many(self.buffer, expected=self.head)
            else:
                _check_newest(store, self.buffer[0], self.head)
                store.put_many(self.buffer)
            self.head = self.buffer[-1].checkpoint_id
            self.buffer = None
        if self.durability == "async":
            if store.checks_conflicts:
                store.flush(checkpoint_id=self.head)
            else:
                store.flush()

    def save_pending(self, writes: list[PendingWrite]) -> None:
        if self.store is None or self.checkpoint_id is None or not writes:
            return
        if self.fork_of is not None:  # the replay's step hangs its pending writes on its own fork
            self.save_fork()
        self.flush()
        self.store.put_writes(self.thread_id, self.checkpoint_id, writes)  # type: ignore[arg-type]



    # -- the same, awaiting the store's async methods (see ``astore``) -----------------------------
    async def asave(self, writes: list[tuple[str, Any]], source: str, extra: dict[str, Any] | None = None) -> None:
        """:meth:`save` awaiting the store (for a run with ``astore``)."""
        store = self.store
        if store is None:
            return
        if self.astore is None:
            self.save(writes, source, extra)
            return
        rec = self._record(writes, source, extra)
        self.fork_of = self.planned_at = None
        d = self.durability
        if d == "sync":
            await self._aput(store, rec)
        elif d == "async":
            if store.checks_conflicts:
                await store.aput_nowait(rec, expected=self.head)
            else:
                await store.aput_nowait(rec)
            self.head = rec.checkpoint_id
        elif self.buffer is None:
            self.buffer = [rec]
        else:
            self.buffer.append(rec)
        self.checkpoint_id = rec.checkpoint_id
        if self.emit is not None:
            self.emit("checkpoint", self.step, data=rec.checkpoint_id)

    async def _aput(self, store: BaseCheckpointer, rec: CheckpointRecord) -> None:
        if store.checks_conflicts:
            await store.aput(rec, expected=self.head)
        else:
            newest = await store.aget(rec.thread_id)
            _same_head(store, rec, self.head, newest)
            await store.aput(rec)
        self.head = rec.checkpoint_id

    async def asave_fork(self) -> None:
        """:meth:`save_fork` awaiting the store."""
        if self.astore is None:
            self.save_fork()
            return
        base = cast(str, self.fork_of)
        self.fork_of = None
        self.planned_at = self.planned_at or base
        rec = self._record([], "fork", {"fork_of": self.planned_at}, snapshot=True)
        await self.aflush()
        await self._aput(cast("BaseCheckpointer", self.store), rec)
        self.checkpoint_id = rec.checkpoint_id
        if self.emit is not None:
            self.emit("checkpoint", self.step, data=rec.checkpoint_id)

    async def aflush(self) -> None:
        """:meth:`flush` awaiting the store."""
        store = self.astore
        if store is None:
            self.flush()
            return
        if self.buffer:
            if store.checks_conflicts:
                await store.aput_many(self.buffer, expected=self.head)
            else:
                newest = await store.aget(self.buffer[0].thread_id)
                _same_head(store, self.buffer[0], self.head, newest)
                await store.aput_many(self.buffer)
            self.head = self.buffer[-1].checkpoint_id
            self.buffer = None
        if self.durability == "async":
            await store.aflush(checkpoint_id=self.head if store.checks_conflicts else None)

    async def asave_pending(self, writes: list[PendingWrite]) -> None:
        """:meth:`save_pending` awaiting the store."""
        if self.astore is None:
            self.save_pending(writes)
            return
        if self.store is None or self.checkpoint_id is None or not writes:
            return
        if self.fork_of is not None:
            await self.asave_fork()
        await self.aflush()
        await self.astore.aput_writes(self.thread_id, self.checkpoint_id, writes)  # type: ignore[arg-type]

    async def afinish(self, failed: bool) -> None:
        """The end of a run with ``astore``: save a failed replay's fork, write what is buffered,
        then apply the store's retention policy."""
        if failed and self.fork_of is not None:
            await self.asave_fork()
        await self.aflush()
        store = self.astore
        if store is not None and store.retention is not None and self.head is not None:
            await store.aprune(self.thread_id, store.retention)  # type: ignore[arg-type]


def _same_head(store: BaseCheckpointer, rec: CheckpointRecord, expected: str | None,
               newest: CheckpointRecord | None) -> None:
    actual = newest.checkpoint_id if newest is not None else None
    if actual != expected:
        raise CheckpointConflictError(thread_id=rec.thread_id, expected=expected, actual=actual,
                                      checkpoint_id=rec.checkpoint_id, store=repr(store))


def _check_newest(store: BaseCheckpointer, rec: CheckpointRecord, expected: str | None) -> None:
    """For stores without ``checks_conflicts``: the thread's newest must be ``expected``."""
    newest = store.get(rec.thread_id)
    actual = newest.checkpoint_id if newest is not None else None
    if actual != expected:
        raise CheckpointConflictError(thread_id=rec.thread_id, expected=expected, actual=actual,
                                      checkpoint_id=rec.checkpoint_id, store=repr(store))


# -- executing one task ---------------------------------------------------------------------------
def _error_for(run: Run, node: PNode, step: int, attempt: int, exc: BaseException) -> BaseException:
    """What a node's failure raises: the node's own exception, told where it failed (see
    :func:`_tell_where`); our own errors as they are; a :class:`NodeError` chained to the
    exception only when it refuses new attributes."""
    failure = NodeFailure(node.name, step, attempt, run.plan.name or "", run.ev_thread if run.namespace else run.thread_id,
                          "node", node.fn, _inner_path(node, exc))
    if isinstance(exc, (NodeTimeoutError, InvalidUpdateError)):
        if isinstance(exc, InvalidUpdateError) and exc.step is None:
            exc.step = step
        _tell_where(exc, failure, note=False)
        return exc
    if _tell_where(exc, failure):
        return exc
    return NodeError(
        f"node {failure.where!r} failed at step {step} (attempt {attempt}): {type(exc).__name__}: {exc}",
        node=node.name, step=step, attempt=attempt,
    )


def _inner_path(node: PNode, exc: BaseException) -> tuple[str, ...]:
    """The path down to the node that raised ``exc`` inside the subgraph ``node`` runs (``()``
    when ``node`` is not a subgraph, or the failure was not a node's)."""
    if not getattr(node.fn, "is_subgraph", False):
        return ()
    inner = exc.__dict__.get("agentgraph_failure") if hasattr(exc, "__dict__") else None
    if not isinstance(inner, NodeFailure):
        return ()
    return (node.name, *(inner.path or (inner.node,)))


def _tell_where(exc: BaseException, failure: NodeFailure, note: bool = True) -> bool:
    """Attach ``failure`` to ``exc`` (``exc.agentgraph_failure``, read by
    :func:`~agentgraph_nb.node_failure`) and, with ``note``, say it in a note that tracebacks
    print. The exception keeps its type, so callers catch what the node raised (as in
    LangGraph). An exception passing through nested graphs gets a note per level and the
    outermost failure. False when ``exc`` refuses attributes."""
    try:
        exc.agentgraph_failure = failure  # type: ignore[attr-defined]
        if note:
            text = failure.describe()
            notes = getattr(exc, "__notes__", None)
            if not (isinstance(notes, list) and text in notes):  # the same object re-raised
                if sys.version_info >= (3, 11):
                    exc.add_note(text)
                else:  # 3.10: what add_note does
                    exc.__notes__ = [*(notes or []), text]  # type: ignore[attr-defined]
    except Exception:  # a frozen exception class, a __notes__ that is not a list
        return False
    return True


def _on_retry(run: Run, node: PNode, step: int, attempt: int, exc: BaseException, index: int) -> float:
    delay = node.retry.interval(attempt - 1, run.rng, exc)  # type: ignore[union-attr]
    node.stats.retries += 1
    logger.warning(
        "node %r failed (attempt %d, %s: %s); retrying in %.3gs", node.name, attempt, type(exc).__name__, exc, delay,
        extra=run._log_extra(step, node.name),
    )
    if run.emit is not None:
        run.emit("node_retry", step, node.name, 0.0, attempt, f"{step}:{index}", exc)
    return delay


def _will_retry(retry: RetryPolicy | None, attempt: int, exc: Exception) -> bool:
    """Whether attempt number ``attempt``, which raised ``exc``, gets another one."""
    return retry is not None and attempt < retry.max_attempts and retry.should_retry(exc)


def _timeout_error(node: PNode, step: int, attempt: int) -> NodeTimeoutError:
    return NodeTimeoutError(
        f"node {node.name!r} timed out after {node.timeout:g}s at step {step} (attempt {attempt})",
        node=node.name, step=step, attempt=attempt,
    )


def run_sync_task(run: Run, node: PNode, arg: Any, index: int, values: dict[str, Any], step: int,
                  inline: bool = False) -> tuple[Any, Any]:
    """Run a sync node in this thread (timeouts via a worker thread), with retries. ``inline``:
    the only task of its step, on the loop's thread (reuses the run's scratch object)."""
    inp = node.make_input(values) if arg is NOARG else arg if type(arg) is not CaughtError else (
        handler_input(node, values, arg))
    cache = node.cache
    if cache is not None:  # a cached node (engine/_cache.py): a hit skips it
        key, hit = cache.lookup(run, node, inp, step, index)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
    fn = node.fn if run.task_exec is None else run.task_exec.sync_fn(run, node, index)
    retry = node.retry
    emit = run.emit
    attempt = 1
    while True:
        scratch = run.reset_scratch(node.name, index) if inline else _Scratch(run, node.name, index)
        if emit is not None:
            emit("node_start", step, node.name, 0.0, attempt, f"{step}:{index}", inp)
        t = time.perf_counter()
        # a node with a timeout runs in another thread, whose stack does not lead back here
        token = None if (inline and run.scoped and node.timeout is None) else _current.set(scratch)
        try:
            if node.timeout is None:
                out = fn(inp)  # type: ignore[misc]
            else:
                ctx = contextvars.copy_context()
                fut = _thread_pool().submit(ctx.run, fn, inp)  # type: ignore[arg-type]
                try:
                    out = fut.result(node.timeout)
                except futures.TimeoutError:
                    node.stats.timeouts += 1
                    raise _timeout_error(node, step, attempt) from None
            res = normalize_result(node.name, out, run.schema)
        except (GraphInterrupt, ParentCommand):
            raise
        except Exception as exc:
            if _will_retry(retry, attempt, exc):
                time.sleep(_on_retry(run, node, step, attempt, exc, index))
                attempt += 1
                continue
            return _failed(run, node, step, attempt, index, time.perf_counter() - t, exc)
        finally:
            if token is not None:
                _current.reset(token)
        _finished(run, node, step, attempt, index, time.perf_counter() - t, res)
        if cache is not None and scratch.counter == 0:  # a node that asked a human is not cached
            cache.put(run, node, key, res, step)
        return res


def _finished(run: Run, node: PNode, step: int, attempt: int, index: int, dt: float, res: Any) -> None:
    """Bookkeeping of a node execution that succeeded: metrics, event, debug log."""
    if node.recover is not None:  # error edges, sagas, transactions (engine/_recover.py)
        note_completed(run, node, step, index)
    st = node.stats
    st.count += 1
    st.total += dt
    st.latencies.append(dt)
    if run.emit is not None:
        run.emit("node_end", step, node.name, dt, attempt, f"{step}:{index}", res[0])
    if run.debug_log:
        logger.debug("node %r done in %.6fs", node.name, dt, extra=run._log_extra(step, node.name))


def _failed(run: Run, node: PNode, step: int, attempt: int, index: int, dt: float, exc: Exception) -> tuple[Any, Any]:
    """A node failed for good: record it and raise the typed error (chained to ``exc``); or,
    when an error edge catches it, return the task's result that continues at its handler."""
    _record_failure(run, node, step, attempt, dt, index, exc)
    err = _error_for(run, node, step, attempt, exc)
    if isinstance(err, AgentGraphError) and err._node_fn is None:  # lets a short traceback point at the node's code
        err._node_fn = node.fn
    if node.recover is not None:  # an error edge, or the handler of one (engine/_recover.py)
        res = on_failure(run, node, step, attempt, index, exc, err)
        if res is not None:
            return res
    if err is exc:
        raise exc
    raise err from exc


def _record_failure(run: Run, node: PNode, step: int, attempt: int, dt: float, index: int, exc: BaseException) -> None:
    node.stats.errors += 1
    node.stats.count += 1
    logger.error(
        "node %r failed at step %d after %d attempt(s): %s: %s", node.name, step, attempt, type(exc).__name__, exc,
        extra=run._log_extra(step, node.name),
    )
    if run.emit is not None:
        run.emit("node_error", step, node.name, dt, attempt, f"{step}:{index}", exc)


async def run_async_task(
    run: Run, node: PNode, arg: Any, index: int, values: dict[str, Any], step: int, inline: bool = False,
    attempt: int = 1,
) -> tuple[Any, Any]:
    """Run any node on the event loop: async nodes awaited, sync ones inline or (with a
    timeout) on a worker thread. Retries with ``asyncio.sleep``; ``attempt``: the first one's number."""
    inp = node.make_input(values) if arg is NOARG else arg if type(arg) is not CaughtError else (
        handler_input(node, values, arg))
    cache = node.cache
    if cache is not None:  # a cached node (engine/_cache.py): a hit skips it
        key, hit = await cache.alookup(run, node, inp, step, index)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
    if run.task_exec is None:
        fn = node.fn
        is_async = node.is_async
    else:  # an executor elsewhere (a Ray cluster): awaited like an async node
        fn, is_async = run.task_exec.async_fn(run, node, index)
    retry = node.retry
    emit = run.emit
    while True:
        scratch = run.reset_scratch(node.name, index) if inline else _Scratch(run, node.name, index)
        if emit is not None:
            emit("node_start", step, node.name, 0.0, attempt, f"{step}:{index}", inp)
        t = time.perf_counter()
        # a node with a timeout runs in its own task or thread, whose stack does not lead back here
        token = None if (inline and run.scoped and node.timeout is None) else _current.set(scratch)
        try:
            if is_async:
                if node.timeout is None:
                    out = await fn(inp)  # type: ignore[misc]
                else:
                    try:
                        out = await asyncio.wait_for(fn(inp), node.timeout)  # type: ignore[misc]
                    except asyncio.TimeoutError:
                        node.stats.timeouts += 1
                        raise _timeout_error(node, step, attempt) from None
            elif node.timeout is None:
                out = fn(inp)  # type: ignore[misc]
                if isinstance(out, CoroutineType):  # a proxy that now points at an async function
                    out = await out
            else:
                ctx = contextvars.copy_context()
                loop = asyncio.get_running_loop()
                # fn is only None for START, which never runs as a task
                fut = loop.run_in_executor(_thread_pool(), ctx.run, cast("Callable[..., Any]", fn), inp)
                try:
                    out = await asyncio.wait_for(fut, node.timeout)
                except asyncio.TimeoutError:
                    node.stats.timeouts += 1
                    raise _timeout_error(node, step, attempt) from None
            res = normalize_result(node.name, out, run.schema)
        except (GraphInterrupt, ParentCommand):
            raise
        except Exception as exc:
            if _will_retry(retry, attempt, exc):
                await asyncio.sleep(_on_retry(run, node, step, attempt, exc, index))
                attempt += 1
                continue
            return _failed(run, node, step, attempt, index, time.perf_counter() - t, exc)
        finally:
            if token is not None:
                _current.reset(token)
        _finished(run, node, step, attempt, index, time.perf_counter() - t, res)
        if cache is not None and scratch.counter == 0:  # a node that asked a human is not cached
            await cache.aput(run, node, key, res, step)
        return res


# -- routing ----------------------------------------------------------------------------------------
_Barriers = dict[str, AbstractSet[str]]  # join key -> sources arrived (see _route_rest)


def _freeze(run: Run, barriers: _Barriers) -> _Barriers:
    """The barriers after routing, as ``run.barriers`` keeps them (frozensets, never mutated)."""
    if barriers is run.barriers:
        return run.barriers
    return {k: v if type(v) is frozenset else frozenset(v) for k, v in barriers.items()}


def _route(run: Run, node: PNode, view: dict[str, Any], goto: Any, plain: set[int], sends: list[Any],
           barriers: _Barriers) -> _Barriers:
    """Add the tasks ``node``'s completion triggers; return the (possibly copied) barriers."""
    if node.branches:
        inp = run.schema.make_input(view)
        for b in node.branches:
            _resolve_branch(run, node, b, b.router(inp), plain, sends)
    return _route_rest(run, node, goto, plain, sends, barriers)


async def _route_async(run: Run, node: PNode, view: dict[str, Any], goto: Any, plain: set[int], sends: list[Any],
                       barriers: _Barriers) -> _Barriers:
    if node.branches:
        inp = run.schema.make_input(view)
        for b in node.branches:
            out = b.router(inp)
            if isinstance(out, CoroutineType):
                out = await out
            _resolve_branch(run, node, b, out, plain, sends)
    return _route_rest(run, node, goto, plain, sends, barriers)


def _resolve_branch(run: Run, node: PNode, b: Any, out: Any, plain: set[int], sends: list[Any]) -> None:
    if isinstance(out, CoroutineType):
        out.close()
        raise TypeError(f"router {b.name!r} is async; it can only run under ainvoke/astream or an event loop")
    resolve_targets(run.plan, node.name, out, declared=b.declared, path_map=b.path_map,
                    what=f"router {b.name!r} of node {node.name!r}", plain=plain, sends=sends)


def _route_rest(run: Run, node: PNode, goto: Any, plain: set[int], sends: list[Any],
                barriers: _Barriers) -> _Barriers:
    """Static edges, joins, weighted edges and Command.goto of a finished node.

    ``run.barriers`` is never changed in place: the first join touched copies the dict, and
    each join's arrivals become a set of the copy's own, to which later sources of the same
    step add in place (a join of k sources finishing in one step costs O(k), not O(k^2));
    :func:`_freeze` turns the copy back into frozensets before it becomes ``run.barriers``."""
    plain.update(node.succ)
    for j in node.joins:
        if barriers is run.barriers:
            barriers = dict(barriers)
        seen = barriers.get(j.key)
        if type(seen) is not set:
            seen = set(seen) if seen else set()
            barriers[j.key] = seen
        seen.add(node.name)
        if len(seen) >= len(j.sources):  # only sources of j ever arrive at j
            del barriers[j.key]
            if j.target >= 0:
                plain.add(j.target)
    for names, cum, total in node.weighted:
        name = pick_weighted(names, cum, run.rng.random() * total)
        if name != END:
            plain.add(run.plan.by_name[name].index)
    if goto:
        resolve_targets(run.plan, node.name, goto, declared=None, path_map=None,
                        what=f"Command(goto=...) of node {node.name!r}", plain=plain, sends=sends)
    return barriers


# -- the loop -------------------------------------------------------------------------------------
async def run_loop(run: Run) -> None:
    """Run supersteps until no task is left.

    On return ``run.values`` holds the final state and ``run.interrupts`` any pending interrupts.
    Stream items collect in ``run.out``; when some are waiting the loop awaits :data:`_YIELD`,
    which only :func:`stream_run` (the driver of streams) may see.

    The common case stays in this frame (one task per step, plain successors); wider steps,
    routing and the start go through helpers, so that the frame a million concurrent runs each
    keep alive stays small.
    """
    emit = run.emit
    sync = run.sync
    out = run.out
    run.interrupts = ()
    if run.saga_resume is not None:  # a stopped process was compensating this thread: finish that
        await resume_compensation(run)
    if run.start_input is not None:
        await _start(run)
    if run.stream_values:
        out.append(("values", run.values))
    if out:
        await _YIELD
    limit_step = run.step + run.recursion_limit
    stop_step = run.step + run.max_steps if run.max_steps is not None else None
    while run.tasks:
        tasks = run.tasks
        values = run.values
        step = run.step + 1
        if stop_step is not None and step > stop_step:
            return
        if step > limit_step:
            raise _recursion_error(run, tasks)
        # interrupt_before
        if run.interrupt_before and not run.skip_before:
            intr = _before_interrupts(run, tasks)
            if intr:
                await _stop_for_interrupts(run, intr, [])
                return
        run.skip_before = False
        if emit is not None:
            emit("step_start", step, data=_names(tasks))
        n = len(tasks)
        if n == 1 and not run.pending and run.step_timeout is None:
            node, arg = tasks[0]
            try:
                if sync:
                    res = run_sync_task(run, node, arg, 0, values, step, True)
                elif run.scoped and node.timeout is None and node.cache is None and run.task_exec is None:
                    # the common async case runs right here: no coroutine per step
                    inp = node.make_input(values) if arg is NOARG else arg if type(arg) is not CaughtError else (
                        handler_input(node, values, arg))
                    run.reset_scratch(node.name, 0)
                    if emit is not None:
                        emit("node_start", step, node.name, 0.0, 1, f"{step}:0", inp)
                    t = time.perf_counter()
                    try:
                        if node.is_async:
                            res = await node.fn(inp)  # type: ignore[misc]
                        else:
                            res = node.fn(inp)  # type: ignore[misc]
                            if isinstance(res, CoroutineType):  # a proxy that now points at an async function
                                res = await res
                        res = normalize_result(node.name, res, run.schema)
                    except (GraphInterrupt, ParentCommand):
                        raise
                    except Exception as exc:  # retried (from attempt 2) or raised as the typed error
                        res = await _after_first_failure(run, node, arg, values, step, time.perf_counter() - t, exc)
                    else:
                        _finished(run, node, step, 1, 0, time.perf_counter() - t, res)
                    del inp
                else:
                    res = await run_async_task(run, node, arg, 0, values, step, True)
            except GraphInterrupt as gi:
                await _stop_for_interrupts(run, gi.interrupts, [])
                return
            except ParentCommand:
                raise
            except Exception as exc:
                if run.store is not None:  # get_state().tasks shows the error
                    await _save_failure(run, node, exc)
                raise
            results = [res]
            if run.stream_updates:
                out.append(("updates", {node.name: res[0]}))
            del res
            writes = [(node.name, results[0][0])]
            new_values = _merge(run, values, writes, step)
        else:  # run side by side, merged in the fixed order
            if run.step_timeout is None:
                results, writes, new_values = await _parallel_step(run, tasks, values, step)
            else:
                results, writes, new_values = await _timed_step(run, tasks, values, step)
            if not results:  # paused by interrupts
                return
        # route
        if n == 1 and tasks[0][0].simple and not results[0][1]:
            run.tasks = tasks[0][0].static_next
        else:
            await _route_step(run, tasks, results, values, new_values, writes, step)
        # commit
        run.values = new_values
        run.step = step
        run.pending = _EMPTY
        run.resume_values = _EMPTY
        if emit is not None:
            emit("state_update", step, data=dict(writes) if n > 1 else {writes[0][0]: writes[0][1]})
        if run.store is not None:
            if run.astore is None:
                run.save(writes, "loop")
            else:
                await run.asave(writes, "loop")
        if run.stream_values:
            out.append(("values", new_values))
        # nothing of this step stays referenced from this frame while the next one waits
        # (with a million concurrent runs, every object kept per run counts)
        del results, writes, new_values, values
        if out:
            await _YIELD
        # interrupt_after
        if run.interrupt_after and (run.tasks or run.namespace):  # a subgraph pauses after its last node too
            intr = _after_interrupts(run, tasks)
            if intr:
                await _stop_for_interrupts(run, intr, [])
                return


async def _start(run: Run) -> None:
    """Route from START (the run's input is in ``run.values``) and save the input checkpoint."""
    plan = run.plan
    if plan.start.simple:  # plain edges only
        run.tasks = plan.start.static_next
    else:
        plain: set[int] = set()
        sends: list[Any] = []
        try:
            if run.sync:
                run.barriers = _freeze(run, _route(run, plan.start, run.values, (), plain, sends, run.barriers))
            else:
                run.barriers = _freeze(
                    run, await _route_async(run, plan.start, run.values, (), plain, sends, run.barriers))
        except InvalidUpdateError:
            raise
        except Exception as exc:
            # the router's own exception, as after a node (see _route_step)
            if _tell_where(exc, NodeFailure(START, 0, 1, plan.name or "", run.thread_id, "routing")):
                raise
            raise InvalidUpdateError(
                f"routing from START failed: {type(exc).__name__}: {exc}", node="__start__"
            ) from exc
        run.tasks = _next_tasks(plan.nodes, plain, sends)
    if run.store is not None:
        await run.asave([("__input__", run.start_input)], "input")
    run.start_input = None


def _recursion_error(run: Run, tasks: list[Any]) -> GraphRecursionError:
    return GraphRecursionError(
        f"graph {run.plan.name!r} reached the recursion limit of {run.recursion_limit} supersteps "
        f"without finishing (next: {', '.join(_names(tasks))}). If the loop is intended, "
        "pass a larger recursion_limit=...; otherwise check the routing that keeps it going."
    )


async def _after_first_failure(run: Run, node: PNode, arg: Any, values: dict[str, Any], step: int, dt: float,
                               exc: Exception) -> tuple[Any, Any]:
    """The inline async path's first attempt failed: retry it (from attempt 2) or raise."""
    if not _will_retry(node.retry, 1, exc):
        return _failed(run, node, step, 1, 0, dt, exc)
    await asyncio.sleep(_on_retry(run, node, step, 1, exc, 0))
    return await run_async_task(run, node, arg, 0, values, step, True, attempt=2)


def _merge(run: Run, values: dict[str, Any], writes: list[tuple[str, Any]], step: int) -> dict[str, Any]:
    """The state after a lone task's write (``values`` itself when it wrote nothing)."""
    try:
        upd = writes[0][1]
        return values if not upd else apply_writes(run.schema, values, writes, check=False)
    except InvalidUpdateError as exc:
        _blame(run, exc, step)
        raise


def _blame(run: Run, exc: InvalidUpdateError, step: int) -> None:
    """Give a merge error its step and the writer's function (a short traceback points at its code)."""
    exc.step = step
    writer = run.plan.by_name.get(exc.node or "")
    if writer is not None and exc._node_fn is None:
        exc._node_fn = writer.fn


async def _parallel_step(run: Run, tasks: list[Any], values: dict[str, Any],
                         step: int) -> tuple[list[Any], list[tuple[str, Any]], dict[str, Any]]:
    """Run a step of several tasks (or one resumed with pending writes) side by side and merge
    their writes in the fixed order; return ``(results, writes, new values)``, or empty results
    when interrupts paused the run. Raises the first failure (by task order) after saving what
    the others finished; writes that cannot be merged fail their tasks (see :func:`_merge_failed`)."""
    n = len(tasks)
    results: list[Any] = [None] * n
    for k, done in run.pending.items():
        results[k] = done
    todo = _todo(results)
    errors: list[_Failure] = []
    intrs: list[Interrupt] = []
    # with a store, each finished task's result is saved at once (durability permitting),
    # so a crash mid-step re-runs only the tasks that had not finished; not in the first step of
    # a replay, which records nothing (not even its fork) unless it fails or pauses
    durable: set[int] | None = (
        set() if (run.store is not None and run.durability != "exit" and run.fork_of is None) else None
    )
    if run.sync:
        _run_parallel_sync(run, tasks, todo, values, step, results, errors, intrs, durable)
    else:
        await _run_parallel_async(run, tasks, todo, values, step, results, errors, intrs, durable)
    if errors or intrs:
        saved = _pending_writes(tasks, results, todo, durable)
        if errors:
            await run.asave_pending(saved + [_failure_write(f.index, tasks[f.index][0], f.exc) for f in errors])
            raise errors[0].exc  # as it is: its own cause and context
        await _stop_for_interrupts(run, tuple(intrs), saved)
        return [], [], values
    writes = _writes(tasks, results)
    try:
        return results, writes, apply_writes(run.schema, values, writes)
    except InvalidUpdateError as exc:
        _blame(run, exc, step)
        await _merge_failed(run, tasks, results, writes, todo, durable, exc)
        raise


async def _timed_step(run: Run, tasks: list[Any], values: dict[str, Any],
                      step: int) -> tuple[list[Any], list[tuple[str, Any]], dict[str, Any]]:
    """:func:`_parallel_step` within ``run.step_timeout`` seconds, or :class:`StepTimeoutError`.

    On an event loop the step is cancelled (async nodes stop; sync ones in threads cannot be
    killed and their results are ignored). Without one, the step runs on a worker thread that
    this one stops waiting for. Either way nothing of the step is committed: the results saved
    as it went (nodes that finished in time) stay pending writes of its base checkpoint."""
    limit = cast(float, run.step_timeout)
    if run.sync:
        fut = _thread_pool().submit(contextvars.copy_context().run, _drive, _parallel_step(run, tasks, values, step))
        try:
            return cast("tuple[list[Any], list[tuple[str, Any]], dict[str, Any]]", fut.result(limit))
        except futures.TimeoutError:
            raise _step_timeout(run, tasks, step, limit) from None
    try:
        return await asyncio.wait_for(_parallel_step(run, tasks, values, step), limit)
    except asyncio.TimeoutError:
        raise _step_timeout(run, tasks, step, limit) from None


def _drive(coro: Any) -> Any:
    """Run a coroutine that never suspends (a sync run's step) to its end; return its value."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("a step of a sync run waited on an event loop")


def _step_timeout(run: Run, tasks: list[Any], step: int, limit: float) -> StepTimeoutError:
    names = tuple(dict.fromkeys(_names(tasks)))
    logger.error("step %d timed out after %gs (nodes: %s)", step, limit, ", ".join(names), extra=run._log_extra(step))
    return StepTimeoutError(
        f"graph {run.plan.name!r}: step {step} ({', '.join(names)}) took longer than step_timeout={limit:g}s. "
        "The thread's last checkpoint is the one before the step: invoke(None, thread_id=...) runs it again "
        "(nodes that finished in time are not re-run); raise step_timeout if the step needs longer.",
        step=step, nodes=names, timeout=limit,
    )


async def _save_failure(run: Run, node: PNode, exc: BaseException) -> None:
    """Record the failure of a step's only task; a store that cannot take it (a conflict, a
    full disk) is logged, so that the node's own error is the one raised."""
    try:
        await run.asave_pending([_failure_write(0, node, exc)])
    except Exception as store_exc:
        logger.error("could not record the failure of node %r: %s", node.name, store_exc,
                     extra=run._log_extra(run.step + 1, node.name))


def _failure_write(index: int, node: PNode, exc: BaseException) -> PendingWrite:
    """The mark a failed task leaves on its step's checkpoint: resuming runs it again, and
    ``get_state().tasks`` shows its error (the original exception's type and message)."""
    cause = exc.__cause__ if isinstance(exc, NodeError) and exc.__cause__ is not None else exc
    return PendingWrite(index, _EW, {"node": node.name, "error": f"{type(cause).__name__}: {cause}"}, [])


async def _merge_failed(run: Run, tasks: list[Any], results: list[Any], writes: list[tuple[str, Any]], todo: list[int],
                  durable: set[int] | None, exc: InvalidUpdateError) -> None:
    """A step's writes cannot be merged: the tasks whose writes are at fault failed (their saved
    results are marked so, and resuming runs them again, fixed or not); the others' results
    are kept as pending writes, as when a node fails."""
    key = exc.key
    if key is not None and run.schema.reducers.get(key) is None:
        # a plain key written twice, or an unknown key: every task that wrote it
        bad = [i for i, (_, upd) in enumerate(writes) if isinstance(upd, dict) and key in upd]
    else:
        # two overwrites of a reducer key: the tasks that overwrote it; a reducer or an update
        # that failed on its own: the tasks of the node named
        bad = [i for i, (_, upd) in enumerate(writes)
               if key is not None and isinstance(upd, dict) and key in upd and is_overwrite(upd[key])]
        if len(bad) < 2:
            bad = [i for i, (name, _) in enumerate(writes) if name == exc.node]
    if not bad:
        bad = list(range(len(tasks)))
    keep = [i for i in todo if i not in bad]
    await run.asave_pending(
        _pending_writes(tasks, results, keep, durable)
        + [PendingWrite(i, _EW, {"node": tasks[i][0].name, "error": str(exc)}, []) for i in bad]
    )


async def _route_step(run: Run, tasks: list[Any], results: list[Any], values: dict[str, Any],
                      new_values: dict[str, Any], writes: list[tuple[str, Any]], step: int) -> None:
    """Set ``run.tasks`` and ``run.barriers`` from the step's results: static edges, routers
    (which see the state with their own node's write), joins, weighted edges, ``Command.goto``
    and ``Send``. A failing router saves the other tasks' results as pending writes."""
    n = len(tasks)
    barriers = run.barriers
    plain: set[int] = set()
    sends: list[Any] = []
    for i, (t, r) in enumerate(zip(tasks, results)):
        node = t[0]
        if node.simple and not r[1]:
            plain.update(node.succ)
            continue
        if r[1] and node.recover is not None:
            handler = diverted_task(run, r[1])
            if handler is not None:  # the node failed and its error edge goes on at the handler
                sends.append(handler)
                continue
        view = new_values if n == 1 else (
            apply_writes(run.schema, values, [writes[i]], check=False) if node.branches else values
        )
        try:
            if run.sync:
                barriers = _route(run, node, view, r[1], plain, sends, barriers)
            else:
                barriers = await _route_async(run, node, view, r[1], plain, sends, barriers)
        except Exception as exc:
            others = list(range(n))
            del others[i]
            await run.asave_pending(_pending_writes(tasks, results, others, None))
            if isinstance(exc, InvalidUpdateError):
                exc.step = step
                raise
            # the router's own exception, told where (as a node's is)
            if _tell_where(exc, NodeFailure(node.name, step, 1, run.plan.name or "", run.thread_id, "routing")):
                raise
            raise NodeError(
                f"node {node.name!r} failed at step {step}: routing after it failed: {type(exc).__name__}: {exc}",
                node=node.name, step=step, attempt=1,
            ) from exc
    run.tasks = _next_tasks(run.plan.nodes, plain, sends)
    run.barriers = _freeze(run, barriers)


class _Yield:
    """What :func:`run_loop` awaits when stream items are waiting in ``run.out``."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, None]:
        yield self


_YIELD = _Yield()


class _Pass:
    """Hands one thing :func:`run_loop` yielded (a future, or ``None``) on to the event loop."""

    __slots__ = ("what",)

    def __init__(self, what: Any) -> None:
        self.what = what

    def __await__(self) -> Generator[Any, Any, Any]:
        return (yield self.what)


async def stream_run(run: Run) -> AsyncGenerator[tuple[str, Any], None]:
    """:func:`run_loop` as an async generator of the stream items ``(mode, payload)``.

    The loop coroutine is driven by hand: each :data:`_YIELD` hands ``run.out`` to the consumer;
    everything else it yields (futures it waits on) goes up to the event loop unchanged, and what
    the loop sends or throws back (results, cancellation) goes down to it. Closing the generator
    closes the loop (its ``finally`` blocks run).
    """
    coro = run_loop(run)
    out = run.out
    value: Any = None
    exc: BaseException | None = None
    try:
        while True:
            try:
                got = coro.send(value) if exc is None else coro.throw(exc)
            except StopIteration:
                break
            value = exc = None
            if got is _YIELD:
                items = list(out)
                out.clear()
                for item in items:
                    yield item
            else:
                try:
                    value = await _Pass(got)
                except BaseException as e:  # cancellation and the like belong to the loop
                    exc = e
    finally:
        coro.close()


# Small helpers for run_loop: a comprehension inside the loop would turn the loop's locals into
# cells, several GC-tracked objects per run (which adds up with a million concurrent runs).
def _next_tasks(nodes: list[PNode], plain: set[int], sends: list[Any]) -> list[Any]:
    return [nodes[k].task for k in sorted(plain)] + sends


def _names(tasks: list[Any]) -> list[str]:
    return [t[0].name for t in tasks]


def _todo(results: list[Any]) -> list[int]:
    return [i for i, r in enumerate(results) if r is None]


def _writes(tasks: list[Any], results: list[Any]) -> list[tuple[str, Any]]:
    return [(t[0].name, r[0]) for t, r in zip(tasks, results)]


def _pending_writes(tasks: list[Any], results: list[Any], indexes: list[int], durable: set[int] | None) -> list[PendingWrite]:
    """Results of finished tasks among ``indexes`` not yet saved (``durable``), as pending writes."""
    return [
        PendingWrite(i, tasks[i][0].name, results[i][0], _goto_list(results[i][1]))
        for i in indexes
        if results[i] is not None and (durable is None or i not in durable)
    ]


def _before_interrupts(run: Run, tasks: list[Any]) -> tuple[Interrupt, ...]:
    names = run.interrupt_before
    return tuple(
        Interrupt({"reason": "interrupt_before", "node": t[0].name}, run.interrupt_id(i, -1), t[0].name, "before")
        for i, t in enumerate(tasks)
        if t[0].name in names or "*" in names
    )


def _after_interrupts(run: Run, tasks: list[Any]) -> tuple[Interrupt, ...]:
    names = run.interrupt_after
    hit = dict.fromkeys(t[0].name for t in tasks if t[0].name in names or "*" in names)
    return tuple(
        Interrupt({"reason": "interrupt_after", "node": name}, run.interrupt_id(-1 - k, -1), name, "after")
        for k, name in enumerate(hit)
    )


def _goto_list(goto: Any) -> list[Any]:
    from agentgraph_nb.types import Send

    if not goto:
        return []
    items = (goto,) if isinstance(goto, (str, Send)) else goto
    return [[g.node, g.arg] if isinstance(g, Send) else [g] for g in items]


async def _stop_for_interrupts(run: Run, intrs: tuple[Interrupt, ...], saved: list[PendingWrite]) -> None:
    run.interrupts = intrs
    writes = list(saved)
    asked = await _recorded_interrupts(run)
    for it in intrs:
        if it.id in asked and _same(asked[it.id], it.value):
            continue  # a paused node that ran again (invoke(None)) asked the same question again
        idx = run.asked_at.get(it.id, -1)
        if not (0 <= idx < len(run.tasks) and run.tasks[idx][0].name == it.node):
            idx = next((i for i, t in enumerate(run.tasks) if t[0].name == it.node), -1)
        rec = {"value": it.value, "id": it.id, "node": it.node, "when": it.when}
        if it.path:
            rec["path"] = list(it.path)
            if it.when != "during":  # an inner breakpoint: passed once a later run pauses this task again
                rec["run"] = run.run_id
        writes.append(PendingWrite(idx, _IW, rec, []))
    await run.asave_pending(writes)
    if run.stream_updates or run.stream_values:
        _stream_interrupts(run, intrs)
    if run.emit is not None:
        run.emit("interrupt", run.step, intrs[0].node if intrs else "", data=intrs)
    logger.info("run paused by %d interrupt(s) at step %d", len(intrs), run.step, extra=run._log_extra(run.step))


def _stream_interrupts(run: Run, intrs: tuple[Interrupt, ...]) -> None:
    """What a stream yields when the run pauses, as LangGraph's does: for ``"updates"``,
    ``{"__interrupt__": (interrupt,)}`` per node that called ``interrupt()`` (and for
    ``"values"``, the state with that entry), or ``{"__interrupt__": ()}`` once for a static
    breakpoint (``interrupt_before``/``interrupt_after``; nothing for ``"values"``)."""
    during = [it for it in intrs if it.when == "during"]
    out = run.out
    if not during:
        if run.stream_updates:
            out.append(("updates", {INTERRUPT_KEY: ()}))
        return
    for it in during:
        if run.stream_updates:
            out.append(("updates", {INTERRUPT_KEY: (it,)}))
        if run.stream_values:
            out.append(("values", {**run.values, INTERRUPT_KEY: (it,)}))


async def _recorded_interrupts(run: Run) -> dict[str, Any]:
    """``{id: value}`` of the interrupts already recorded on the run's checkpoint."""
    if run.store is None or run.checkpoint_id is None or run.fork_of is not None:
        return {}  # no thread, or a replay: its fork starts with none
    if run.astore is None:
        run.flush()
        rec = run.store.get(run.thread_id, run.checkpoint_id)  # type: ignore[arg-type]
    else:
        await run.aflush()
        rec = await run.astore.aget(run.thread_id, run.checkpoint_id)  # type: ignore[arg-type]
    return {pw.update["id"]: pw.update["value"] for pw in rec.pending_writes if pw.node == _IW} if rec else {}


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays
        return a is b


def _save_done(run: Run, tasks: list[Any], i: int, res: Any, durable: set[int]) -> None:
    """Save one finished task's result as a pending write of the step's base checkpoint.

    The last task of a step to finish is not saved on its own: its result goes into the step's
    checkpoint, or, when the step fails or pauses, into the pending writes saved then. So the
    store never holds a result for every task of a step whose checkpoint is missing, and a
    thread's ``next`` is empty only when nothing is left to run (a crash between the last
    result and the checkpoint costs a re-run of that one task, as a crash during it would).
    """
    run.save_pending([PendingWrite(i, tasks[i][0].name, res[0], _goto_list(res[1]))])
    durable.add(i)


def _run_parallel_sync(run: Run, tasks: list[Any], todo: list[int], values: dict[str, Any], step: int,
                       results: list[Any], errors: list[_Failure], intrs: list[Interrupt],
                       durable: set[int] | None) -> None:
    """Run a step's sync tasks concurrently: up to ``_POOL_SIZE`` workers (this thread is one of
    them) pull task indexes from one shared iterator, so a wide fan-out of quick nodes does not
    pay for a future per task, and blocking nodes still run side by side."""
    pending = iter(todo)  # list iterators hand out each item once, even across threads
    # one item popped per finished task (list.pop is atomic): the last task to finish pops 0,
    # and is saved with the step (see _save_done)
    left = list(range(len(todo)))
    stream = run.stream_updates
    out = run.out

    def worker() -> None:
        for i in pending:
            node, arg = tasks[i]
            try:
                res = run_sync_task(run, node, arg, i, values, step)
            except GraphInterrupt as gi:
                left.pop()
                intrs.extend(gi.interrupts)
                continue
            except BaseException as exc:  # sync work cannot be cancelled: finish the others
                left.pop()
                errors.append(_Failure(i, exc))
                continue
            results[i] = res
            if left.pop() and durable is not None:
                _save_done(run, tasks, i, res, durable)
            if stream:
                out.append(("updates", {node.name: res[0]}))

    pool = _thread_pool()
    helpers = [
        pool.submit(contextvars.copy_context().run, worker) for _ in range(min(len(todo), _POOL_SIZE) - 1)
    ]
    try:
        worker()
    finally:
        futures.wait(helpers)
    errors.sort(key=lambda f: f.index)


async def _run_parallel_async(run: Run, tasks: list[Any], todo: list[int], values: dict[str, Any], step: int,
                              results: list[Any], errors: list[_Failure], intrs: list[Interrupt],
                              durable: set[int] | None) -> None:
    loop = asyncio.get_running_loop()
    pool = _thread_pool()
    futs: dict[asyncio.Future[Any], int] = {}
    f: asyncio.Future[Any]
    for i in todo:
        node, arg = tasks[i]
        if node.is_async or not node.inline or run.task_exec is not None:
            f = asyncio.ensure_future(run_async_task(run, node, arg, i, values, step))
        else:
            ctx = contextvars.copy_context()
            f = loop.run_in_executor(pool, ctx.run, run_sync_task, run, node, arg, i, values, step)
        futs[f] = i
    pending_f = set(futs)
    left = len(futs)
    try:
        while pending_f:
            done, pending_f = await asyncio.wait(pending_f, return_when=asyncio.FIRST_COMPLETED)
            for f in done:
                i = futs[f]
                left -= 1
                if f.cancelled():
                    continue
                exc = f.exception()
                if exc is None:
                    results[i] = f.result()
                    if durable is not None and left:  # the last one is saved with the step (see _save_done)
                        if run.astore is None:
                            _save_done(run, tasks, i, results[i], durable)
                        else:
                            await run.asave_pending([PendingWrite(i, tasks[i][0].name, results[i][0],
                                                                  _goto_list(results[i][1]))])
                            durable.add(i)
                    if run.stream_updates:
                        run.out.append(("updates", {tasks[i][0].name: results[i][0]}))
                elif isinstance(exc, GraphInterrupt):
                    intrs.extend(exc.interrupts)
                else:
                    errors.append(_Failure(i, exc))
            if errors and pending_f:
                # cancel async siblings; threads cannot be cancelled, so wait for them and keep their writes
                for f in pending_f:
                    if isinstance(f, asyncio.Task):
                        f.cancel()
                await asyncio.wait(pending_f)
                for f in pending_f:
                    i = futs[f]
                    if not f.cancelled() and f.exception() is None:
                        results[i] = f.result()
                pending_f = set()
    except BaseException:
        for f in pending_f:
            if isinstance(f, asyncio.Task):
                f.cancel()
        raise
    errors.sort(key=lambda fl: fl.index)


_LOOP_CODE = run_loop.__code__
_TASK_CODES = frozenset((run_sync_task.__code__, run_async_task.__code__))
