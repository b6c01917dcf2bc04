"""The compiled graph: run it (``invoke``/``stream``/``batch`` and async twins), inspect and edit
its checkpoints (``get_state``, ``get_state_history``, ``update_state``), observe it
(``listen``, ``metrics``) and export it (``to_json``, ``to_dot``, ``to_mermaid``)."""

from __future__ import annotations

import contextvars
import functools
import logging
import time
from collections import Counter
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, cast

from agentgraph_nb.checkpoint.base import (
    BaseCheckpointer,
    CheckpointRecord,
    PendingWrite,
    cycle_error,
    find_parent_cycle,
)
from agentgraph_nb.constants import END
from agentgraph_nb.engine import (
    ERROR_WRITE,
    INTERRUPT_KEY,
    INTERRUPT_WRITE,
    LIVE_MODES,
    NOARG,
    RESUME_WRITE,
    BranchDef,
    GraphDef,
    NodeDef,
    Plan,
    Run,
    apply_writes,
    compensate_failed,
    current_task_var,
    freeze_barriers,
    iterate_sync,
    live_stream,
    live_stream_async,
    resolve_targets,
    route_node,
    run_loop,
    run_sync,
    running_loop,
    saga_progress,
    stream_run,
)
from agentgraph_nb.errors import (
    CheckpointError,
    GraphValidationError,
    InvalidInputError,
    InvalidUpdateError,
    ParentCommand,
    did_you_mean,
    node_failure,
)
from agentgraph_nb.graph._views import ViewsMixin
from agentgraph_nb.observe.metrics import Metrics, RunStats
from agentgraph_nb.state._schema import ROOT
from agentgraph_nb.types import (
    CaughtError,
    Command,
    Event,
    Interrupt,
    Send,
    SnapshotTask,
    StateSnapshot,
)

if TYPE_CHECKING:

    from agentgraph_nb.graph.state import StateGraph

__all__ = ["CompiledGraph"]

logger = logging.getLogger("agentgraph_nb")

_MODES = frozenset({"values", "updates", "events", "messages", "custom"})
COPY = "__copy__"  # update_state's as_node that copies a checkpoint (LangGraph's name)
_BLANK: Any = object()  # _prepare's input for update_state: no input at all (any schema)
_DURABILITY = ("sync", "async", "exit")


def _input_label(thread_id: str | None) -> str:
    return "the input" if thread_id is None else f"the input of thread {thread_id!r}"


def _update_dict(values: Any, who: str, node: str) -> dict[str, Any]:
    """A caller's update as a dict; anything else is an :class:`InvalidUpdateError` saying what to pass."""
    if isinstance(values, Mapping):
        return dict(values)
    r = repr(values)
    raise InvalidUpdateError(
        f"{who}: the values must be a dict of state keys to new values (or None), got "
        f"{type(values).__name__} {r if len(r) <= 60 else r[:57] + '...'}",
        node=node,
    )


def _open_store(spec: Any, serializer: Any = None) -> BaseCheckpointer | None:
    if serializer is not None:
        from agentgraph_nb.checkpoint import open_checkpointer

        if spec is None:
            raise GraphValidationError("serializer= was given with checkpointer=None, which keeps no state")
        return open_checkpointer(spec, serializer=serializer)
    if spec is None:
        return None
    if isinstance(spec, BaseCheckpointer):
        return spec
    if spec == "memory":
        from agentgraph_nb.checkpoint.memory import MemoryCheckpointer

        return MemoryCheckpointer()
    from agentgraph_nb.checkpoint import open_checkpointer

    return open_checkpointer(spec)


def _caught_out(c: CaughtError) -> list[Any]:
    return [c.node, c.error_type, c.message, c.attempt, c.step]


def _caught_in(d: list[Any]) -> CaughtError:
    return CaughtError(*d)


def _graph_def(builder: StateGraph, name: str, state_version: int, caches: Mapping[str, Any] | None = None) -> GraphDef:
    """The builder as the plain data the engine compiles (the engine never sees the builder)."""
    from agentgraph_nb.runtime import takes_runtime, with_runtime

    caches = caches or {}
    inputs: dict[str, Any] = {}
    whiles: Any = ()
    if builder.loops:  # loop nodes read their own inputs; while loops take over their outgoing edges
        from agentgraph_nb.graph._loops import loop_node_defs

        inputs, whiles = loop_node_defs(
            builder, lambda n: (builder.nodes[n].input_view or builder.state).input_builder())
    catch = {n: (types, h) for n, h, types in getattr(builder, "error_edges", ())}
    tx = {n: (name, i) for name, members in getattr(builder, "transactions", {}).items() for i, n in enumerate(members)}
    return GraphDef(
        name=name,
        schema=builder.state,
        nodes=tuple(
            NodeDef(s.name, with_runtime(s.fn) if takes_runtime(s.fn) else s.fn,
                    None if getattr(s.fn, "per_item_retry", False) else s.retry, s.timeout,
                    inputs.get(s.name) or (s.input_view or builder.state).input_builder(),
                    catch.get(s.name), s.compensate, tx.get(s.name), cache=caches.get(s.name),
                    resources=s.resources)
            for s in builder.nodes.values()
        ),
        edges=tuple(e for e in builder.edges if e[0] not in whiles),
        joins=tuple(builder.joins),
        branches=tuple(BranchDef(b.source, b.router, b.targets, b.path_map) for b in builder.branches
                       if b.source not in whiles),
        weighted=tuple(builder.weighted),
        state_version=state_version,
    )


class CompiledGraph(ViewsMixin):
    """A validated, runnable graph. Made by :meth:`StateGraph.compile`.

    Example:
        >>> app = g.compile(checkpointer="sqlite:///runs.db")
        >>> app.invoke({"question": "q"}, thread_id="t1")
        >>> for update in app.stream({"question": "q"}, mode="updates"):
        ...     print(update)
    """

    def __init__(
        self,
        builder: StateGraph,
        *,
        checkpointer: Any = "memory",
        interrupt_before: Sequence[str] | str | None = (),
        interrupt_after: Sequence[str] | str | None = (),
        name: str | None = None,
        step_timeout: float | None = None,
        serializer: Any = None,
        cache: Any = None,
        resources: Mapping[str, Any] | None = None,
    ) -> None:
        self.builder = builder
        self.step_timeout = step_timeout
        # StateGraph.name is always a str (its name, the schema's __name__ or "graph"); mypy infers Optional
        self.name: str = name or cast(str, builder.name)
        self.schema = builder.state
        self.state_version: int = getattr(builder, "version", 1)
        self.migrations: dict[int, Any] = dict(getattr(builder, "migrations", {}))
        from agentgraph_nb.graph._cache import node_caches, open_node_cache

        self.cache = open_node_cache(cache, builder)  # the store of cached node results (None: no caching)
        self.plan = Plan(_graph_def(builder, self.name, self.state_version, node_caches(builder, self.name, self.cache)))
        self.context_schema = getattr(builder, "context_schema", None)
        self.resources: Any = None  # a ResourcePool (agentgraph_nb.runtime) when resources were declared
        self._runtime: Any = None  # the Runtime runs get when no context is given
        if resources:
            from agentgraph_nb.runtime import ResourcePool, Runtime

            self.resources = ResourcePool(resources, self.name)
            self._runtime = Runtime(resources=self.resources)
        self._open_schema: Any = None  # the schema with open keys, for replaying older versions' writes
        self.checkpointer = _open_store(checkpointer, serializer)
        ser = getattr(self.checkpointer, "serializer", None)
        reg = getattr(ser, "register_from_annotations", None)
        if callable(reg) and self.schema.kind != "dict":
            reg(self.schema.cls)
        if ser is not None and hasattr(ser, "register"):
            from agentgraph_nb.messages import RemoveMessage
            from agentgraph_nb.types import Overwrite

            ser.register(Overwrite, name="agentgraph_nb.Overwrite")
            # a node's update may hold one; the state is rebuilt from stored updates
            ser.register(RemoveMessage, name="agentgraph_nb.RemoveMessage")
            if builder.loops:  # a for-each's failed items (on_error="skip"/"collect")
                from agentgraph_nb.graph._loops import ItemError

                ser.register(ItemError, name="agentgraph_nb.ItemError")
            # the failure a handler's task carries (error edges); the exception stays in memory
            ser.register(CaughtError, name="agentgraph_nb.CaughtError", encode=_caught_out, decode=_caught_in)
        # StateGraph.compile() checked the names; None (as LangGraph code passes) means none
        self.interrupt_before = frozenset(
            () if interrupt_before is None else [interrupt_before] if isinstance(interrupt_before, str) else interrupt_before
        )
        self.interrupt_after = frozenset(
            () if interrupt_after is None else [interrupt_after] if isinstance(interrupt_after, str) else interrupt_after
        )
        self._listeners: list[Callable[[Event], Any]] = []
        self._run_stats = RunStats()
        self.metrics = Metrics((n.stats for n in self.plan.nodes), self._run_stats,
                               [(n.name, cast(Any, n.fn).app.metrics) for n in self.plan.nodes
                                if getattr(n.fn, "is_subgraph", False)])
        self._last_run: Run | None = None
        # keys invoke returns and streams show (None: all of them), from the output schema
        out_view = getattr(builder, "output_state", None)
        # (a state whose keys other schemas extended returns its own keys, as in LangGraph)
        self._output_keys: frozenset[str] | None = out_view.key_set if out_view is not None else self.schema.own_keys
        # the keys a run's input may set (None: any state key), from the input schema
        self._input_view = getattr(builder, "input_state", None)
        # stream items need no conversion (no output schema, no root state)
        self._plain_stream = self.schema.kind != "root" and self._output_keys is None

    @property
    def step_timeout(self) -> float | None:
        """Seconds a superstep may take, or None (the default) for no limit. A step that takes
        longer raises :class:`~agentgraph_nb.StepTimeoutError` (a ``TimeoutError``) and leaves
        the thread resumable from the checkpoint before it. Set it as in LangGraph
        (``app.step_timeout = 30``) or with ``compile(step_timeout=30)``.

        Steps run on a worker thread (sync graphs) or as one awaited task while it is set, so a
        graph without one pays nothing for it.
        """
        return self._step_timeout

    @step_timeout.setter
    def step_timeout(self, value: float | None) -> None:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf")
        ):
            raise GraphValidationError(f"step_timeout must be a positive number of seconds or None, got {value!r}")
        self._step_timeout = float(value) if value is not None else None

    @property
    def last_run_id(self) -> str | None:
        """The id of the most recently started run (``None`` before the first)."""
        return self._last_run.run_id if self._last_run is not None else None

    @property
    def last_thread_id(self) -> str | None:
        """The thread of the most recently started run (``None`` without one)."""
        return self._last_run.thread_id if self._last_run is not None else None

    # -- listeners --------------------------------------------------------------------------------
    def listen(self, callback: Callable[[Event], Any]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event of every run; returns a function that stops it.

        Callbacks run on the engine's thread (or a worker thread, for retries of parallel sync
        nodes); a failing callback is logged and never breaks the run.
        """
        self._listeners = [*self._listeners, callback]

        def unsubscribe() -> None:
            self._listeners = [c for c in self._listeners if c is not callback]

        return unsubscribe

    # -- preparing a run --------------------------------------------------------------------------
    def _prepare(
        self,
        input: Any,
        thread_id: str | None,
        *,
        sync: bool,
        modes: frozenset[str] = frozenset(),
        checkpoint_id: str | None = None,
        seed: int | None = None,
        recursion_limit: int = 10_000,
        durability: str | None = None,
        interrupt_before: Sequence[str] | None = None,
        interrupt_after: Sequence[str] | None = None,
        listeners: Sequence[Callable[[Event], Any]] | None = None,
        max_steps: int | None = None,
        context: Any = None,
        executor: Any = None,
        _fetched: tuple[CheckpointRecord | None, list[CheckpointRecord]] | None = None,
    ) -> Run:
        if not isinstance(recursion_limit, int) or recursion_limit < 1:
            raise InvalidInputError(f"recursion_limit must be a positive int, got {recursion_limit!r}")
        store = self.checkpointer if thread_id is not None else None
        if thread_id is not None and not isinstance(thread_id, str):
            thread_id = str(thread_id)
        if durability is None:
            durability = store.durability if store is not None else "sync"
        if durability not in _DURABILITY:
            raise InvalidInputError(f"durability must be one of {_DURABILITY}, got {durability!r}")
        if checkpoint_id is not None and store is None:
            raise InvalidInputError("checkpoint_id= needs a thread_id= (and a graph compiled with a checkpointer)")
        lst = self._listeners
        if listeners:
            lst = [*lst, *listeners]
        run = Run(
            self.plan,
            thread_id=thread_id,
            store=store,
            durability=durability,
            listeners=lst,
            modes=modes,
            seed=seed,
            sync=sync,
            recursion_limit=recursion_limit,
            interrupt_before=(self._call_breakpoints("interrupt_before", interrupt_before)
                              if interrupt_before is not None else self.interrupt_before),
            interrupt_after=(self._call_breakpoints("interrupt_after", interrupt_after)
                             if interrupt_after is not None else self.interrupt_after),
        )
        run.step_timeout = self._step_timeout
        if executor is not None:  # nodes run elsewhere (agentgraph_nb.distributed)
            from agentgraph_nb.distributed import resolve_executor

            run.task_exec = resolve_executor(executor)
        if context is not None or self._runtime is not None:
            from agentgraph_nb.graph._runtime import runtime_for

            run.runtime = runtime_for(self, context)
        if max_steps is not None:
            if not isinstance(max_steps, int) or max_steps < 0:
                raise InvalidInputError(f"max_steps must be an int >= 0, got {max_steps!r}")
            run.max_steps = max_steps
        schema = self.schema
        if isinstance(input, Command):
            self._prepare_resume(run, input, checkpoint_id)
        elif input is None:
            loaded = self._load_into(run, checkpoint_id, _fetched) if store is not None else None
            if loaded is None:
                where = f"thread {thread_id!r}" if thread_id is not None else "a run without thread_id"
                raise InvalidInputError(
                    f"invoke(None) resumes a paused or failed run, but {where} has no checkpoint. "
                    "Pass an input dict to start a run."
                )
            # A finished thread (or a final checkpoint) leaves no tasks: the run returns the state
            # and runs nothing, so "resume if needed" is one call. As in LangGraph, the first step
            # does not stop at a breakpoint (that is how a run paused before a node goes on, and
            # a replay from there goes on too); later ones do, and interrupt() always asks.
            run.skip_before = True
        else:
            update = {} if input is _BLANK else self._coerce_input(input)
            base = self._load_into(run, checkpoint_id, _fetched, upgrade=False) if store is not None else None
            if base is None:
                if checkpoint_id is not None:
                    raise InvalidInputError(f"thread {thread_id!r} has no checkpoint {checkpoint_id!r}")
                run.values = apply_writes(schema, schema.initial, [("__input__", update)], check=False)
            else:
                run.values = apply_writes(schema, run.values, [("__input__", update)], check=False)
                run.step += 1
                run.pending = {}
                run.resume_values = {}
                run.fork_of = run.planned_at = None  # the input checkpoint comes first
            run.values = schema.validate(run.values, update, _input_label(thread_id), "__input__")
            run.tasks = []
            run.start_input = update
        return run

    def _coerce_input(self, input: Any) -> dict[str, Any]:
        """A run's input as an update dict; with an input schema, only its keys may be set."""
        view = self._input_view
        if view is None:
            return self.schema.coerce_input(input)
        update = view.coerce_input(input)
        for k in update:
            if k not in view.key_set:
                raise InvalidUpdateError(
                    f"the input sets state key {k!r}, which is not in the graph's input schema {view.name}."
                    f"{did_you_mean(str(k), view.keys)} {view.name} has keys: {', '.join(view.keys)}",
                    node="__input__",
                    key=str(k),
                )
        return update

    def _call_breakpoints(self, label: str, names: Sequence[str] | str) -> frozenset[str]:
        """A call's ``interrupt_before``/``interrupt_after``: one name, several or ``"*"``, checked
        against the graph's nodes (as ``compile()`` checks its own)."""
        from agentgraph_nb.graph.state import _node_list

        out = _node_list(label, names)
        for n in out:
            if isinstance(n, str) and "|" in n:  # a breakpoint inside a subgraph
                from agentgraph_nb.graph._subgraph import check_breakpoint_path

                check_breakpoint_path(self.builder, n, label, InvalidInputError)
            elif n != "*" and n not in self.plan.by_name:
                raise InvalidInputError(f"{label}: unknown node {n!r}.{did_you_mean(n, self.plan.by_name)}")
        return frozenset(out)

    async def _aprepare(self, input: Any, thread_id: str | None, *, sync: bool,
                        modes: frozenset[str] = frozenset(), **kwargs: Any) -> Run:
        """:meth:`_prepare` for the async path: a store that is not :attr:`inline_ok` is read with
        its async methods (a resume with ``Command`` writes through the sync ones, off the loop)."""
        store = self.checkpointer
        if thread_id is None or store is None or store.inline_ok or not store.checks_conflicts:
            return self._prepare(input, thread_id, sync=sync, modes=modes, **kwargs)
        if isinstance(input, Command):
            import asyncio

            return await asyncio.to_thread(
                functools.partial(self._prepare, input, thread_id, sync=sync, modes=modes, **kwargs))
        tid = str(thread_id)
        cid = kwargs.get("checkpoint_id")
        newest = await store.aget(tid) if cid is not None else None
        chain = await store.aget_chain(tid, cid)
        if input is None and chain and chain[-1].pending_writes and (
                chain[-1].metadata.get("state_version", 1) != self.state_version):
            # saved results of an older state version: resuming writes a checkpoint that carries
            # them upgraded (see _load_into), through the sync methods: off the loop
            import asyncio

            return await asyncio.to_thread(
                functools.partial(self._prepare, input, thread_id, sync=sync, modes=modes, **kwargs))
        return self._prepare(input, thread_id, sync=sync, modes=modes, _fetched=(newest, chain), **kwargs)

    def _load(self, thread_id: str, checkpoint_id: str | None,
              chain: list[CheckpointRecord] | None = None) -> tuple[CheckpointRecord, dict[str, Any], int] | None:
        raw = self._load_raw(thread_id, checkpoint_id, chain)
        if raw is None:
            return None
        chain, values, ver = raw
        if ver != self.state_version:
            values = self._migrate(values, ver, self.state_version, thread_id, chain[-1])
        return chain[-1], values, len(chain) - 1

    def _load_raw(self, thread_id: str, checkpoint_id: str | None, chain: list[CheckpointRecord] | None = None,
                  ) -> tuple[list[CheckpointRecord], dict[str, Any], Any] | None:
        """The chain to a checkpoint and its values as written: under the state version of its
        last record (the third item), not yet migrated to the graph's."""
        store = self.checkpointer
        if store is None:
            return None
        if chain is None:
            chain = store.get_chain(thread_id, checkpoint_id)
        if not chain:
            return None
        if chain[0].values is None:
            raise CheckpointError(
                f"thread {thread_id!r}: checkpoint {chain[0].checkpoint_id!r} has neither values nor a parent; "
                "the store is incomplete"
            )
        values = chain[0].values
        schema = self.schema
        target = self.state_version
        ver = chain[0].metadata.get("state_version", 1)
        for rec in chain[1:]:
            rv = rec.metadata.get("state_version", 1)
            if rv != ver:
                values = self._migrate(values, ver, rv, thread_id, rec)
                ver = rv
            values = apply_writes(schema if ver == target else self._replay_schema(), values,
                                  [(w[0], w[1]) for w in rec.writes], check=False)
        return chain, values, ver

    def _replay_schema(self) -> Any:
        """The state schema with open keys: writes of an older state version may name keys the
        state no longer has; they are kept as written, for the migrations to rename or drop."""
        if self._open_schema is None:
            import copy

            open_ = copy.copy(self.schema)
            if open_.kind != "root":
                open_.kind = "dict"
            self._open_schema = open_
        return self._open_schema

    def _migrate(self, values: dict[str, Any], frm: Any, to: int, thread_id: str,
                 rec: CheckpointRecord) -> dict[str, Any]:
        """``values`` of state version ``frm`` brought to version ``to`` by the graph's migrations."""
        from agentgraph_nb.errors import StateMigrationError

        target = self.state_version
        where = f"checkpoint {rec.checkpoint_id!r} of thread {thread_id!r}"
        kw = {"thread_id": thread_id, "checkpoint_id": rec.checkpoint_id, "stored_version": frm,
              "graph_version": target}
        newer = to if type(to) is int and to > target else frm
        store = f" (store: {self.checkpointer!r})"
        if type(frm) is not int or type(to) is not int or frm < 1 or to < 1:
            raise StateMigrationError(
                f"{where} records state version {newer!r}, which is not a version number: the store is "
                "damaged or was edited outside agentgraph_nb" + store, **kw)
        if newer > target:
            raise StateMigrationError(
                f"{where} was written under state version {newer} of graph {self.name!r}, newer than this "
                f"graph's version {target}: run it with the code that wrote it (or a newer one); older code "
                "cannot read a newer state" + store, **{**kw, "stored_version": newer})
        if to < frm:
            raise StateMigrationError(
                f"{where} follows a checkpoint of state version {frm} but was written under the older "
                f"version {to}: an older copy of the graph wrote to a thread that a newer one had upgraded"
                + store, **kw)
        for k in range(frm, to):
            fn = self.migrations.get(k)
            if fn is None:
                raise StateMigrationError(
                    f"{where} holds state version {frm}, graph {self.name!r} is at version {target}, and "
                    f"there is no migration from version {k} to {k + 1}: add it, "
                    f"StateGraph(..., version={target}, migrations={{{k}: upgrade_v{k}, ...}})" + store, **kw)
            try:
                out = fn(dict(values))
            except Exception as exc:
                raise StateMigrationError(
                    f"{where}: the migration from state version {k} to {k + 1} "
                    f"({getattr(fn, '__qualname__', fn)!s}) failed: {type(exc).__name__}: {exc}" + store, **kw) from exc
            if not isinstance(out, dict):
                raise StateMigrationError(
                    f"{where}: the migration from state version {k} to {k + 1} returned "
                    f"{type(out).__name__}, not the values as a dict" + store, **kw)
            values = out
        return values

    def _load_into(self, run: Run, checkpoint_id: str | None,
                   fetched: tuple[CheckpointRecord | None, list[CheckpointRecord]] | None = None,
                   upgrade: bool = True) -> CheckpointRecord | None:
        """Position ``run`` at the thread's newest checkpoint (or at ``checkpoint_id``); None when
        the thread has none.

        At the newest checkpoint the run resumes: the step's saved results, answers and
        interrupts are loaded. An older one is replayed (time travel): its step runs afresh,
        with none of the answers given on the branches that grew from it, and the run's first
        checkpoint is a child of it (``run.fork_of``)."""
        # The thread's newest checkpoint, which the run's first write will expect: read before
        # the chain, so that a write landing in between shows as a conflict, never as a fork.
        if fetched is not None:  # read by _aprepare, in this order
            newest, chain = fetched
            loaded = self._load(run.thread_id, checkpoint_id, chain)  # type: ignore[arg-type]
        else:
            newest = None if checkpoint_id is None else self.checkpointer.get(run.thread_id)  # type: ignore[union-attr, arg-type]
            loaded = self._load(run.thread_id, checkpoint_id)  # type: ignore[arg-type]
        if loaded is None:
            if checkpoint_id is not None:
                raise InvalidInputError(f"thread {run.thread_id!r} has no checkpoint {checkpoint_id!r}")
            run.head = None
            return None
        rec, values, since = loaded
        if checkpoint_id is None:  # the chain ends at the newest checkpoint
            run.head = rec.checkpoint_id
        else:
            run.head = newest.checkpoint_id if newest is not None else None
        by_name = self.plan.by_name

        def node(name: str) -> Any:
            try:
                return by_name[name]
            except KeyError:
                raise CheckpointError(
                    f"checkpoint {rec.checkpoint_id!r} of thread {run.thread_id!r} names node {name!r}, which "
                    f"graph {self.name!r} does not have.{did_you_mean(name, by_name)}"
                ) from None

        run.values = values
        run.step = rec.step
        run.checkpoint_id = rec.checkpoint_id
        run.since_snapshot = since
        run.barriers = {k: frozenset(v) for k, v in rec.barriers.items()}
        run.tasks = [node(t[0]).task if len(t) == 1 else (node(t[0]), t[1]) for t in rec.next]
        run.planned_at = rec.metadata.get("fork_of")
        if "call" in rec.metadata:  # a subgraph's checkpoint: its edits and resumes keep its call
            run.tags = {"call": rec.metadata["call"]}
        # Pending writes belong to a step that has not completed: they resume the thread's newest
        # checkpoint. Re-running an older one (time travel) runs its step afresh.
        tip = run.head == rec.checkpoint_id
        if not tip:
            run.fork_of = rec.checkpoint_id
            # what the step asked there (Command(resume=...) may answer it on the new branch)
            run.interrupts = _read_pending(rec.pending_writes, answered=False)[1]
            return rec
        done, intrs, answers = _read_pending(rec.pending_writes)
        if done and upgrade and rec.metadata.get("state_version", 1) != self.state_version:
            # saved results of an older state version: resume from a checkpoint of this version
            # that carries them migrated (graph/_upgrade.py), so what the step saves next, and
            # any later resume, finds results of one version only
            upgraded = self._write_update(cast(str, run.thread_id), None, None, rec.checkpoint_id,
                                          f"resuming thread {run.thread_id!r}", "__input__")
            return self._load_into(run, upgraded, upgrade=False)
        run.pending = {
            i: (pw.update, [Send(g[0], g[1]) if len(g) > 1 else g[0] for g in (pw.goto or [])])
            for i, pw in done.items()
            if i < len(run.tasks)
        }
        run.resume_values = answers
        run.interrupts = intrs
        if self.plan.compensating:  # a process that stopped while compensating (engine/_recover.py)
            run.saga_resume = saga_progress(rec.pending_writes)
        return rec

    def _prepare_resume(self, run: Run, cmd: Command, checkpoint_id: str | None) -> None:
        if run.store is None:
            raise InvalidInputError("Command(resume=...) needs the thread_id= of the paused run")
        rec = self._load_into(run, checkpoint_id)
        if rec is None:
            raise InvalidInputError(
                f"thread {run.thread_id!r} is not paused: it has no checkpoint, and a Command continues "
                "a thread (pass an input dict to start one)"
            )
        if not run.tasks and not cmd.goto:
            raise InvalidInputError(f"thread {run.thread_id!r} is not paused: there is nothing to resume")
        pending = [i for i in run.interrupts if i.when == "during"]
        answers: dict[str, Any] = {}
        # a Command that only redirects (goto, no resume) answers nothing: the paused node asks again
        if cmd.resume is not None or (pending and not cmd.goto):
            if isinstance(cmd.resume, dict) and cmd.resume and all(k in {i.id for i in pending} for k in cmd.resume):
                answers = dict(cmd.resume)
            elif len(pending) == 1:
                answers = {pending[0].id: cmd.resume}
            elif len(pending) > 1:
                ids = ", ".join(f"{i.id} ({i.node})" for i in pending)
                raise InvalidInputError(
                    f"thread {run.thread_id!r} has {len(pending)} pending interrupts ({ids}); answer them with "
                    "Command(resume={interrupt_id: value, ...})"
                )
        if cmd.update or cmd.goto:
            # Stored first, as update_state stores an edit (a checkpoint of its own with the same
            # next tasks plus the goto targets, the step's saved results and its questions' ids),
            # so the edit survives whatever the resumed step does (pause again, fail, crash); the
            # run resumes from it. Stores that keep only writes between snapshots would otherwise
            # never see it.
            what = "update" if cmd.update else "goto"
            edited = self._write_update(cast(str, run.thread_id), cmd.update, None, rec.checkpoint_id,
                                        f"Command({what}=...) resuming thread {run.thread_id!r}", "__input__",
                                        goto=cmd.goto)
            self._load_into(run, edited)
        if answers:
            run.resume_values = {**run.resume_values, **answers}  # a new dict: the default is shared
            run.save_pending([PendingWrite(-1, RESUME_WRITE, {"id": k, "value": v}, []) for k, v in answers.items()])
        run.skip_before = True

    # -- running ----------------------------------------------------------------------------------
    def _begin(self, run: Run) -> None:
        self._run_stats.started += 1
        self._last_run = run
        if run.emit is not None:
            data = {"graph": self.name, "seed": run.seed}
            if run.parent_task is not None:  # a subgraph's run: the parent's run and task that run it
                data["parent_run_id"], data["parent_task_id"] = run.parent_task
            run.emit("run_start", run.step, data=data)
        if logger.isEnabledFor(logging.INFO):
            logger.info("run %s of graph %r started (thread %s)", run.run_id, self.name, run.thread_id,
                        extra=run._log_extra(run.step))

    def _end(self, run: Run, outcome: str, err: BaseException | None) -> None:
        if type(err) is ParentCommand and run.namespace:
            outcome, err = "completed", None  # a subgraph's run that handed off to its parent ended well
        stats = self._run_stats
        dt = time.perf_counter() - run.t0
        try:
            if run.astore is None:  # else done by Run.afinish (awaited before this)
                if err is not None and run.fork_of is not None:
                    # a replay that failed (or was stopped) before its first checkpoint: save where it
                    # stands as the thread's newest checkpoint, so get_state shows it and
                    # invoke(None) resumes it rather than the branch it replayed
                    run.save_fork()
                run.flush()
                store = run.store
                if store is not None and store.retention is not None and run.head is not None:
                    store.prune(run.thread_id, store.retention)  # type: ignore[arg-type]
        except Exception as exc:
            if err is None:
                raise
            logger.error("could not flush checkpoints after a failed run: %s", exc)
        finally:
            if outcome == "completed":
                stats.completed += 1
            elif outcome == "interrupted":
                stats.interrupted += 1
            else:
                stats.failed += 1
            stats.durations.append(dt)
            stats.ends.append(time.perf_counter())
            if run.emit is not None:
                run.emit("run_end", run.step, duration=dt, data={"status": outcome, "values": run.values, "error": err})
            level = logging.INFO if outcome != "failed" else logging.ERROR
            if logger.isEnabledFor(level):
                failure = node_failure(err)
                at = failure.step if failure is not None else run.step
                logger.log(level, "run %s of graph %r %s in %.6fs at step %d", run.run_id, self.name, outcome, dt, at,
                           extra=run._log_extra(at))

    async def _lifecycle(self, run: Run) -> AsyncGenerator[tuple[str, Any], None]:
        """The run as a stream of ``(mode, payload)`` items (for stream/astream)."""
        self._begin(run)
        outcome = "failed"
        err: BaseException | None = None
        try:
            async with aclosing(stream_run(run)) as items:  # leaving the stream early closes the run now
                async for item in items:
                    yield item
            if run.astore is not None:
                await run.afinish(False)
            outcome = "interrupted" if run.interrupts else "completed"
        except BaseException as exc:
            err = await compensate_failed(run, exc) if run.plan.compensating and isinstance(exc, Exception) else exc
            if run.astore is not None:
                await self._afinish_failed(run)
            if type(exc) is ParentCommand and not run.namespace:
                from agentgraph_nb.graph._subgraph import handoff_error

                raise handoff_error(self, exc) from None
            if err is not exc:
                raise err  # noqa: B904 (its __cause__ is exc)
            raise
        finally:
            self._end(run, outcome, err)
        if run.out:  # events emitted after the last step (run_end)
            for item in run.out:
                yield item
            run.out.clear()

    def _enter(self, run: Run) -> contextvars.Token[Any] | None:
        """Start an invoke/ainvoke run: its events and counters. Its inline nodes need no context
        variable (interrupt() finds the loop up the stack); a run with a thread sets it once, for
        tasks its nodes start themselves."""
        self._begin(run)
        run.scoped = True
        return current_task_var.set(run) if run.thread_id is not None else None

    def _exit(self, run: Run, token: contextvars.Token[Any] | None, err: BaseException | None) -> dict[str, Any]:
        """End an invoke/ainvoke run (``err``: what it raised) and return its final state."""
        if token is not None:
            current_task_var.reset(token)
        self._end(run, "failed" if err is not None else "interrupted" if run.interrupts else "completed", err)
        return self._result(run) if err is None else {}

    def _result(self, run: Run) -> Any:
        """What invoke returns: the state (only the output schema's keys, when the graph has one;
        the bare value of a root state), plus ``"__interrupt__"`` when paused."""
        values = self._output(run.values)
        if run.interrupts and isinstance(values, dict):
            values[INTERRUPT_KEY] = list(run.interrupts)
        return values

    def _output(self, values: dict[str, Any]) -> Any:
        """``values`` as callers receive them (see :meth:`_result`)."""
        keys = self._output_keys
        if keys is not None:
            return {k: v for k, v in values.items() if k in keys}
        return self.schema.output(values)

    def _stream_item(self, mode: str, payload: Any) -> Any:
        """A stream item as callers receive it: ``values`` through :meth:`_output`; with a root
        state, each node's update as the bare value it returned."""
        if mode == "values":
            return self._output(payload)
        if mode == "updates" and self.schema.kind == "root":
            return {n: (u.get(ROOT) if isinstance(u, dict) else u) for n, u in payload.items()}
        return payload

    def _all_sync(self) -> bool:
        plan = self.plan
        return plan.refresh() if plan.dynamic else plan.all_sync

    def invoke(self, input: Any, thread_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Run the graph to the end (or to an interrupt) and return the final state as a dict
        (only the output schema's keys when the graph has one; the value itself for a root state
        ``StateGraph(Annotated[list, operator.add])``).

        Args:
            input: a dict of initial values (through the reducers), ``None`` to resume a paused
                or failed thread (on a finished one it runs nothing and returns the state), or
                ``Command(resume=..., update=..., goto=...)`` to continue a thread: ``resume``
                answers an interrupt, ``update`` edits the state first, ``goto`` adds nodes to the
                pending step (next to the ones its edges chose; on a finished thread, they run next).
            thread_id: the thread whose checkpoints this run reads and extends. Without it, the
                run is independent and not checkpointed.
            checkpoint_id: start from this checkpoint instead of the thread's newest (a fork:
                its step runs afresh, interrupts included).
            seed: seeds weighted routing and retry jitter (reproducible runs).
            recursion_limit: maximum supersteps in this call (default 10,000).
            durability: ``"sync"``, ``"async"`` or ``"exit"`` (default: the store's).
            interrupt_before, interrupt_after: override the compiled ones for this call.
            listeners: extra event callbacks for this call only.
            max_steps: stop quietly after this many supersteps (the thread stays resumable with
                ``invoke(None, thread_id=...)``; used for stepping through a run).

        Works in scripts and inside a running event loop (a notebook cell).

        Raises:
            CheckpointConflictError: another run or ``update_state`` wrote the thread while this
                run was writing it (see the README's "One writer per thread at a time").
        """
        run = self._prepare(input, thread_id, sync=self._all_sync(), **kwargs)
        # a sync call writes through the store's sync connections, even when async nodes run on
        # a loop of their own: that loop lives for this call only (no pool of connections per call)
        run.astore = None
        return run_sync(self.ainvoke(run), needs_loop=not run.sync)  # type: ignore[no-any-return]

    async def ainvoke(self, input: Any, thread_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Async :meth:`invoke`: runs on the caller's event loop (``await app.ainvoke(...)``)."""
        # invoke() passes a run it prepared (sync or not) and drives this coroutine itself: one
        # implementation, and one coroutine frame per run (which counts with a million of them)
        run = input if type(input) is Run else await self._aprepare(input, thread_id, sync=False, **kwargs)
        token = self._enter(run)
        try:
            await run_loop(run)
            if run.astore is not None:  # a network store: buffered checkpoints written without blocking
                await run.afinish(False)
        except BaseException as exc:
            err = await compensate_failed(run, exc) if run.plan.compensating and isinstance(exc, Exception) else exc
            if run.astore is not None:
                await self._afinish_failed(run)
            self._exit(run, token, err)
            if type(exc) is ParentCommand and not run.namespace:
                from agentgraph_nb.graph._subgraph import handoff_error

                raise handoff_error(self, exc) from None
            if err is not exc:
                raise err  # noqa: B904 (its __cause__ is exc)
            raise
        return self._exit(run, token, None)

    @staticmethod
    async def _afinish_failed(run: Run) -> None:
        """Write what a failed run with an async store still holds (see :meth:`_end`)."""
        try:
            await run.afinish(True)
        except Exception as exc:
            logger.error("could not flush checkpoints after a failed run: %s", exc)

    @staticmethod
    def _modes(mode: str | Sequence[str]) -> tuple[frozenset[str], bool]:
        modes = [mode] if isinstance(mode, str) else list(mode)
        bad = [m for m in modes if m not in _MODES]
        if bad or not modes:
            raise InvalidInputError(
                f"unknown stream mode {bad[0] if bad else mode!r}.{did_you_mean(bad[0], _MODES) if bad else ''} "
                f"Modes: {', '.join(sorted(_MODES))}"
            )
        return frozenset(modes), not isinstance(mode, str)

    def stream(
        self, input: Any, thread_id: str | None = None, *, mode: str | Sequence[str] = "updates",
        subgraphs: bool = False, **kwargs: Any
    ) -> Iterator[Any]:
        """Run the graph and yield as it goes.

        ``mode="updates"``: ``{node: update}`` once per node as it finishes; ``"values"``: the
        state after the input (or the state resumed from) and after every superstep;
        ``"events"``: every :class:`Event`; ``"messages"``: ``(chunk, metadata)`` for every token
        of every chat-model call made inside a node, as it arrives (``metadata["node"]``,
        ``"step"``, ``"run_id"``, ``"thread_id"``; see :mod:`agentgraph_nb.llm`), and, whole,
        the messages a node returns that were neither streamed nor already in the state (tool
        results, answers of models that do not stream);
        ``"custom"``: what nodes pass to :func:`~agentgraph_nb.get_stream_writer`'s writer.
        ``stream(None, thread_id=...)`` on a finished thread
        yields no update and the state once for ``"values"``, as LangGraph does.

        When the run pauses, the stream ends as LangGraph's does: ``"updates"`` yields
        ``{"__interrupt__": (Interrupt(...),)}`` for each node that called ``interrupt()`` and
        ``{"__interrupt__": ()}`` for a breakpoint (``interrupt_before``/``interrupt_after``);
        ``"values"`` yields the state with an ``"__interrupt__"`` entry for ``interrupt()``.
        A list of modes yields ``(mode, payload)`` pairs. Takes the keywords of :meth:`invoke`.

        ``subgraphs=True`` also yields what the subgraphs run inside the graph stream, each item
        with its namespace as in LangGraph: ``(namespace, payload)`` (``(namespace, mode,
        payload)`` for a list of modes), where ``namespace`` is ``()`` for this graph's own items
        and e.g. ``("team",)`` or ``("team", "inner")`` for a subgraph's (``"team:2"`` for the
        ``Send`` task at index 2 of its step). A subgraph's items come before its node's own update.
        ``"messages"`` items also carry ``metadata["namespace"]`` (``"team|inner"``).
        """
        modes, tagged = self._modes(mode)
        run = self._prepare(input, thread_id, sync=self._all_sync(), modes=modes, **kwargs)
        if subgraphs:
            run.sub_modes = modes
        plain = self._plain_stream
        run.astore = None  # the store's sync connections, as in invoke()
        items: Iterator[tuple[str, Any]]
        if not modes & LIVE_MODES:
            items = iterate_sync(self._lifecycle(run), needs_loop=not run.sync)
        elif run.sync:
            items = live_stream(run, self._lifecycle(run), modes)
        else:
            items = iterate_sync(live_stream_async(run, self._lifecycle(run), modes), needs_loop=True)
        if subgraphs:
            yield from map(functools.partial(self._ns_item, tagged), items)
            return
        for m, payload in items:
            if not plain:
                payload = self._stream_item(m, payload)
            yield (m, payload) if tagged else payload

    def _ns_item(self, tagged: bool, item: tuple[str, Any]) -> Any:
        """A ``stream(..., subgraphs=True)`` item: ``(namespace, payload)`` or ``(namespace, mode, payload)``."""
        from agentgraph_nb.graph._subgraph import NS_ITEM

        m, payload = item
        if m == NS_ITEM:
            ns, m, payload = payload
        else:
            ns = ()
            if m == "messages" and isinstance(payload, tuple) and len(payload) == 2 and isinstance(payload[1], dict):
                where = payload[1].get("namespace")
                if where:
                    ns = tuple(where.split("|"))
            elif not self._plain_stream:
                payload = self._stream_item(m, payload)
        return (ns, m, payload) if tagged else (ns, payload)

    async def astream(
        self, input: Any, thread_id: str | None = None, *, mode: str | Sequence[str] = "updates",
        subgraphs: bool = False, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Async :meth:`stream`."""
        modes, tagged = self._modes(mode)
        if modes & LIVE_MODES and self._all_sync():
            # a graph of sync nodes runs on a worker thread, so its tokens reach this loop live;
            # that thread uses the store's sync connections, as in invoke()
            run = self._prepare(input, thread_id, sync=True, modes=modes, **kwargs)
            run.astore = None
            agen = live_stream_async(run, self._lifecycle(run), modes)
        else:
            run = await self._aprepare(input, thread_id, sync=False, modes=modes, **kwargs)
            agen = self._lifecycle(run) if not modes & LIVE_MODES else live_stream_async(run, self._lifecycle(run), modes)
        if subgraphs:
            run.sub_modes = modes
        plain = self._plain_stream
        async with aclosing(agen) as items:  # leaving the stream early closes the run now
            if subgraphs:
                async for item in items:
                    yield self._ns_item(tagged, item)
                return
            async for m, payload in items:
                if not plain:
                    payload = self._stream_item(m, payload)
                yield (m, payload) if tagged else payload

    def batch(
        self,
        inputs: Iterable[Any],
        *,
        thread_ids: Sequence[str | None] | None = None,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        progress: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """Run many inputs; results in input order. Sync graphs run on a thread pool of
        ``max_concurrency`` workers (default: one run at a time per core, at least 4); async
        graphs run concurrently on an event loop, and so do the runs of any graph whose nodes run
        elsewhere (``executor="ray"``: each run awaits its Ray tasks; default: no limit, Ray
        queues what the cluster cannot run yet). ``progress=True`` shows a progress bar (tqdm).
        With ``return_exceptions=True`` a failed run's exception takes its place in the list."""
        items = list(inputs)
        if not self._all_sync() or kwargs.get("executor") not in (None, "local"):
            import asyncio

            coro = self.abatch(items, thread_ids=thread_ids, max_concurrency=max_concurrency,
                               return_exceptions=return_exceptions, progress=progress, **kwargs)

            if running_loop() is None:
                return asyncio.run(coro)
            return run_sync(coro, needs_loop=True)  # type: ignore[no-any-return]
        import concurrent.futures

        tids = list(thread_ids) if thread_ids is not None else [None] * len(items)
        bar = _progress(len(items), progress, self.name)
        results: list[Any] = [None] * len(items)
        workers = max_concurrency or 4
        failed = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agentgraph_nb-batch") as ex:
            futs = {ex.submit(self.invoke, x, t, **kwargs): i for i, (x, t) in enumerate(zip(items, tids))}
            try:
                for f in concurrent.futures.as_completed(futs):
                    i = futs[f]
                    try:
                        results[i] = f.result()
                    except Exception as exc:
                        failed += 1
                        if bar is not None:
                            bar.set_postfix(failed=failed, refresh=False)
                        if not return_exceptions:
                            raise
                        results[i] = exc
                    if bar is not None:
                        bar.update(1)
            finally:
                if bar is not None:
                    bar.close()
                for f in futs:
                    f.cancel()
        return results

    async def abatch(
        self,
        inputs: Iterable[Any],
        *,
        thread_ids: Sequence[str | None] | None = None,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        progress: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """Async :meth:`batch`: at most ``max_concurrency`` runs at once (default: unlimited)."""
        import asyncio

        items = list(inputs)
        tids = list(thread_ids) if thread_ids is not None else [None] * len(items)
        sem = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        bar = _progress(len(items), progress, self.name)
        failed = 0

        async def one(x: Any, t: str | None) -> Any:
            nonlocal failed
            try:
                if sem is None:
                    return await self.ainvoke(x, t, **kwargs)
                async with sem:
                    return await self.ainvoke(x, t, **kwargs)
            except Exception:
                failed += 1
                if bar is not None:
                    bar.set_postfix(failed=failed, refresh=False)
                raise
            finally:
                if bar is not None:
                    bar.update(1)

        try:
            return list(await asyncio.gather(*(one(x, t) for x, t in zip(items, tids)),
                                             return_exceptions=return_exceptions))
        finally:
            if bar is not None:
                bar.close()

    # -- state ------------------------------------------------------------------------------------
    def _store(self) -> BaseCheckpointer:
        if self.checkpointer is None:
            raise InvalidInputError(f"graph {self.name!r} was compiled with checkpointer=None: it keeps no state")
        return self.checkpointer

    def _is_tip(self, thread_id: str, rec: CheckpointRecord) -> bool:
        """Whether ``rec`` is the thread's newest checkpoint: only there do pending writes and
        interrupts describe work still to do (older ones were superseded by their children)."""
        latest = self.checkpointer.get(thread_id)  # type: ignore[union-attr]
        return latest is not None and latest.checkpoint_id == rec.checkpoint_id

    def _snapshot(self, rec: CheckpointRecord, values: dict[str, Any], tip: bool = True,
                  results: list[Any] | None = None) -> StateSnapshot:
        """The snapshot of ``rec`` (whose values are ``values``).

        At the thread's newest checkpoint (``tip``) a step that did not complete (a node failed,
        an interrupt paused it, the process died) shows as LangGraph shows it: the results of
        its finished nodes applied to ``values``, and ``next`` naming only the nodes still to
        run. The stored checkpoint is unchanged: resuming merges those results with the rest.
        ``results``: the writes of the checkpoint's next step (``[node, update]`` in task order),
        when the caller knows them (history: the next checkpoint of the branch)."""
        done, intrs, _ = _read_pending(rec.pending_writes if tip else ())
        nxt = tuple(t[0] for i, t in enumerate(rec.next) if i not in done)
        if done:
            if not nxt:
                # every node of the step finished but its checkpoint was never written (stores
                # written before the last result was kept for the checkpoint): the step still
                # has to merge and route, so it is next
                nxt = tuple(t[0] for t in rec.next)
            try:
                values = apply_writes(self.schema, values, [(done[i].node, done[i].update) for i in sorted(done)])
            except InvalidUpdateError:
                pass  # results that cannot be merged: resuming reports it; show the values before the step
        bare = _bare if self.schema.kind == "root" else _same_update
        counts = Counter(w[0] for w in rec.writes)
        writes: dict[str, Any] = {}
        for w in rec.writes:
            if counts[w[0]] > 1:
                writes.setdefault(w[0], []).append(bare(w[1]))
            else:
                writes[w[0]] = bare(w[1])
        return StateSnapshot(
            pending_writes={pw.node: bare(pw.update) for pw in done.values()},
            values=self.schema.output(values),
            next=nxt,
            step=rec.step,
            checkpoint_id=rec.checkpoint_id,
            parent_id=rec.parent_id,
            created_at=rec.created_at,
            writes=writes,
            interrupts=intrs,
            thread_id=rec.thread_id,
            metadata=dict(rec.metadata),
            tasks=_tasks(rec, done, intrs, rec.pending_writes if tip else (), results, bare),
        )

    def get_state(self, thread_id: str, checkpoint_id: str | None = None, *, subgraphs: bool = False,
                  namespace: str | None = None) -> StateSnapshot:
        """The thread's state at its newest checkpoint (or at ``checkpoint_id``).

        At the newest checkpoint of a thread whose superstep did not complete (a node failed or
        paused, the process died), ``values`` shows the finished nodes' results applied and
        ``next`` names only the nodes still to run, as LangGraph shows it. An unknown thread
        gives an empty snapshot (no values, nothing next, ``checkpoint_id`` None).

        Args:
            subgraphs: fill ``tasks[i].state`` of each pending task that runs a subgraph with
                that subgraph's own snapshot (recursively), as LangGraph does.
            namespace: the state of a subgraph instead (``"team"``, ``"team|inner"``,
                ``"team:2"`` for a ``Send`` task at index 2): its newest checkpoint in this thread
                (``checkpoint_id`` then names one of its checkpoints).

        Raises:
            UnknownNamespaceError: ``namespace`` names no subgraph, or the thread never ran it.
        """
        if namespace is not None:
            from agentgraph_nb.graph._subgraph import require_run, resolve_namespace

            child, tid = resolve_namespace(self, str(thread_id), namespace)
            require_run(self, child, str(thread_id), namespace, tid)
            return child.get_state(tid, checkpoint_id, subgraphs=subgraphs)
        self._store()
        loaded = self._load(str(thread_id), checkpoint_id)
        if loaded is None:
            if checkpoint_id is not None:
                raise InvalidInputError(f"thread {thread_id!r} has no checkpoint {checkpoint_id!r}")
            return StateSnapshot({}, (), -1, None, None, None, {}, (), str(thread_id), {})
        rec, values, _ = loaded
        snap = self._snapshot(rec, values, checkpoint_id is None or self._is_tip(str(thread_id), rec))
        if subgraphs and snap.tasks and self._has_subgraphs():
            from agentgraph_nb.graph._subgraph import subgraph_tasks

            snap = subgraph_tasks(self, snap, rec)
        return snap

    def get_state_history(
        self,
        thread_id: str,
        *,
        limit: int | None = None,
        before: str | None = None,
        filter: dict[str, Any] | None = None,
        namespace: str | None = None,
    ) -> list[StateSnapshot]:
        """Every checkpoint of the thread, newest first, all branches included.

        With ``namespace="team"`` (see :meth:`get_state`), the checkpoints of that subgraph in
        this thread: every execution of it (each starts with a checkpoint of source ``"input"``).

        Args:
            limit: at most this many.
            before: only checkpoints created before this checkpoint id.
            filter: only checkpoints whose metadata contains these items (e.g. ``{"source": "update"}``).
        """
        if namespace is not None:
            from agentgraph_nb.graph._subgraph import require_run, resolve_namespace

            child, tid = resolve_namespace(self, str(thread_id), namespace)
            require_run(self, child, str(thread_id), namespace, tid)
            return child.get_state_history(tid, limit=limit, before=before, filter=filter)
        store = self._store()
        recs = list(store.list(str(thread_id), before=before, limit=limit, metadata_filter=filter))
        loop = find_parent_cycle(recs)  # a damaged store: walks over the history would never end
        if loop is not None:
            raise cycle_error(store, str(thread_id), loop)
        newest = store.get(str(thread_id))
        tip_id = newest.checkpoint_id if newest is not None else None
        if limit is not None or before is not None or filter:
            out = []
            later: dict[str, list[Any]] = {}  # within the listed ones: a checkpoint's next step's writes
            for rec in reversed(recs):
                if rec.parent_id is not None and rec.metadata.get("source") == "loop":
                    later.setdefault(rec.parent_id, rec.writes)
            for rec in recs:
                loaded = self._load(str(thread_id), rec.checkpoint_id)
                if loaded is not None:
                    out.append(self._snapshot(loaded[0], loaded[1], rec.checkpoint_id == tip_id,
                                              later.get(rec.checkpoint_id)))
            return out
        values_of: dict[str, dict[str, Any]] = {}
        schema = self.schema
        out = []
        step_writes: dict[str, list[Any]] = {}  # checkpoint -> the writes of its next step
        for rec in reversed(recs):
            if rec.parent_id is not None and rec.metadata.get("source") == "loop":
                step_writes.setdefault(rec.parent_id, rec.writes)
        target = self.state_version
        versions: dict[str, Any] = {}
        for rec in reversed(recs):  # oldest first: parents come before children
            rv = rec.metadata.get("state_version", 1)
            if rec.values is not None:
                v = rec.values
            elif rec.parent_id in values_of:
                v, pv = values_of[rec.parent_id], versions[rec.parent_id]
                if pv != rv:
                    v = self._migrate(v, pv, rv, str(thread_id), rec)
                v = apply_writes(schema if rv == target else self._replay_schema(), v,
                                 [(w[0], w[1]) for w in rec.writes], check=False)
            else:
                loaded = self._load(str(thread_id), rec.checkpoint_id)
                v, rv = (loaded[1] if loaded else {}), target
            values_of[rec.checkpoint_id] = v
            versions[rec.checkpoint_id] = rv
            if rv != target:
                v = self._migrate(v, rv, target, str(thread_id), rec)
            out.append(self._snapshot(rec, v, rec.checkpoint_id == tip_id, step_writes.get(rec.checkpoint_id)))
        out.reverse()
        return out

    def update_state(
        self,
        thread_id: str,
        values: dict[str, Any] | None,
        as_node: str | None = None,
        checkpoint_id: str | None = None,
        *,
        namespace: str | None = None,
    ) -> str:
        """Edit a thread's state: a new checkpoint, child of the newest (or of ``checkpoint_id``),
        with ``values`` merged through the reducers. Returns the new checkpoint id.

        With ``namespace="team"``, edit that subgraph's state instead (``checkpoint_id`` then
        names one of its checkpoints: a fork inside the subgraph): when the parent resumes the
        paused or failed step that runs it (``invoke(None, ...)`` or ``Command(resume=...)``),
        the subgraph goes on from the edited checkpoint.

        Without ``as_node`` what runs next is unchanged; with ``as_node="x"`` the update counts as
        ``x``'s and ``x``'s successors run next; ``as_node=END`` clears pending work;
        ``as_node="__copy__"`` (with ``values=None``) copies the checkpoint forward: the same
        values and next nodes, none of its saved results, so its step runs afresh from the copy. History is
        never rewritten: run ``invoke(None, thread_id=..., checkpoint_id=new_id)`` to continue.

        Raises:
            CheckpointConflictError: a run wrote the thread between this call's read and its write;
                nothing was stored.
            InvalidUpdateError: ``values`` is not a dict, names an unknown key, or (pydantic
                state) a value does not fit its field.
        """
        thread_id = str(thread_id)
        if namespace is not None:
            from agentgraph_nb.graph._subgraph import require_run, resolve_namespace

            child, tid = resolve_namespace(self, thread_id, namespace)
            require_run(self, child, thread_id, namespace, tid)
            return child.update_state(tid, values, as_node, checkpoint_id)
        if as_node == COPY:
            if values is not None:
                raise InvalidUpdateError(
                    f"update_state(thread {thread_id!r}, as_node='__copy__') copies a checkpoint as it is; "
                    f"pass values=None (got {type(values).__name__}), or edit the copy with a second update_state",
                    node=COPY,
                )
            return self._copy_checkpoint(thread_id, checkpoint_id)
        if as_node is not None and as_node != END and as_node not in self.plan.by_name:
            raise InvalidInputError(f"update_state: unknown as_node {as_node!r}.{did_you_mean(as_node, self.plan.by_name)}")
        name = as_node if as_node not in (None, END) else "__update__"
        return self._write_update(thread_id, values, as_node, checkpoint_id, f"update_state(thread {thread_id!r})", name)

    def _copy_checkpoint(self, thread_id: str, checkpoint_id: str | None) -> str:
        """``update_state(..., as_node="__copy__")``: a child of the checkpoint with its values and
        its next tasks, none of its pending writes (the step runs afresh from the copy), source
        ``"fork"``. Returns the copy's id."""
        store = self._store()
        run = self._prepare(_BLANK, None, sync=True)
        run.store = store
        run.thread_id = thread_id
        run.durability = "sync"
        base = self._load_into(run, checkpoint_id, upgrade=False)
        if base is None:
            raise InvalidInputError(
                f"update_state(thread {thread_id!r}, as_node='__copy__'): the thread has no checkpoint to copy"
            )
        run.step = base.step + 1
        run.save([], "fork", {"copy_of": base.checkpoint_id})
        return run.checkpoint_id  # type: ignore[return-value]

    def _write_update(self, thread_id: str, values: Any, as_node: str | None, checkpoint_id: str | None,
                      who: str, name: str, goto: Any = ()) -> str:
        """Store ``values`` as a checkpoint of their own (see :meth:`update_state`); ``who`` and
        ``name`` say in errors who wrote them. ``goto`` (a resuming ``Command``'s) adds tasks to
        the pending step, after its own (so its saved results and questions keep their task
        indexes); a node already pending by name runs once."""
        store = self._store()
        if self.schema.kind == "root":
            update = {ROOT: values} if values is not None else {}
        else:
            update = _update_dict(values, who, name) if values is not None else {}
        run = self._prepare(_BLANK, None, sync=True)
        run.store = store
        run.thread_id = thread_id
        run.durability = "sync"
        base = self._load_into(run, checkpoint_id, upgrade=False)
        if base is None:
            run.values = dict(self.schema.initial)
            run.tasks = []
            run.step = 0
        run.values = apply_writes(self.schema, run.values, [(name, update)], check=False)
        run.values = self.schema.validate(run.values, update, who, name)
        carried: list[PendingWrite] = (
            list(base.pending_writes)
            if base is not None and as_node is None and run.head == base.checkpoint_id
            else []
        )
        if carried and base is not None and base.metadata.get("state_version", 1) != self.state_version:
            from agentgraph_nb.graph._upgrade import upgrade_pending

            carried = upgrade_pending(self, thread_id, base, carried)
        if as_node == END:
            run.tasks = []
        elif as_node is not None:
            plain: set[int] = set()
            sends: list[Any] = []
            node = self.plan.by_name[as_node]
            run.barriers = freeze_barriers(run, route_node(run, node, run.values, (), plain, sends, run.barriers))
            run.tasks = [self.plan.nodes[i].task for i in sorted(plain)] + sends
        if goto:
            plain = set()
            sends = []
            resolve_targets(self.plan, name, goto, declared=None, path_map=None, what=f"Command(goto=...) resuming thread {thread_id!r}",
                            plain=plain, sends=sends)
            have = {t[0].index for t in run.tasks if t[1] is NOARG}
            run.tasks = [*run.tasks, *(self.plan.nodes[i].task for i in sorted(plain) if i not in have), *sends]
        if base is not None:
            run.step = base.step + 1
        extra: dict[str, Any] = {"as_node": as_node} if as_node else {}
        if base is not None and as_node is None and run.tasks:
            # the same step goes on from here: its interrupts keep their ids, so a Command(resume=...)
            # answers the node that asked (which runs again here and must find its answer)
            extra["fork_of"] = base.metadata.get("fork_of", base.checkpoint_id)
        run.save([(name, update)], "update", extra or None)
        if carried:
            store.put_writes(thread_id, run.checkpoint_id, carried)  # type: ignore[arg-type]
        return run.checkpoint_id  # type: ignore[return-value]

    def list_threads(self) -> list[str]:
        """Ids of every thread the store holds (not the keys its subgraphs' checkpoints live
        under: see ``get_state(..., namespace=...)``)."""
        from agentgraph_nb.graph._subgraph import is_derived

        return [t for t in self._store().list_threads() if not is_derived(t)]

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread and every checkpoint and pending write it has, its subgraphs' too."""
        from agentgraph_nb.graph._subgraph import SEP

        store = self._store()
        tid = str(thread_id)
        store.delete_thread(tid)
        if self._has_subgraphs():
            for t in store.list_threads():
                if t.startswith(tid + SEP):
                    store.delete_thread(t)

    def _has_subgraphs(self) -> bool:
        return any(getattr(spec.fn, "is_subgraph", False) for spec in self.builder.nodes.values())

    def clear_cache(self, nodes: Iterable[str] | str | None = None) -> int:
        """Forget the cached results of ``nodes`` (default: every cached node of this graph),
        in the cache store (shared stores: for every process); return how many were deleted.

        Raises:
            GraphValidationError: a name that is not a cached node of this graph.
        """
        from agentgraph_nb.graph._cache import clear_cache

        cached = [n.name for n in self.plan.nodes if n.cache is not None]
        return clear_cache(self.cache, self.name, cached, nodes)

    # -- resources --------------------------------------------------------------------------------
    def close(self) -> None:
        """Close what the graph's nodes hold: the pooled connections of the node library's
        nodes (:mod:`agentgraph_nb.nodes`), in subgraphs too, the node cache's connection and the
        resources opened (``compile(resources=...)``; they reopen on next use).
        The checkpointer stays open (it may be shared). The graph can still run: the nodes reconnect on their next call.

        Example:
            >>> with g.compile() as app:
            ...     app.invoke({"city": "Oslo"})  # doctest: +SKIP
        """
        if self.cache is not None:
            self.cache.close()
        if self.resources is not None:
            self.resources.close()
        for spec in self.builder.nodes.values():
            fn: Any = spec.fn
            resolve = getattr(fn, "resolve", None)
            if resolve is not None and hasattr(type(fn), "is_async"):  # a notebook cell's hot-reload proxy
                try:
                    fn = resolve()
                except Exception:
                    continue
            if getattr(fn, "is_subgraph", False):  # a compiled graph as a node (graph/_subgraph.py)
                fn = fn.app
            if isinstance(fn, CompiledGraph):
                fn.close()
                continue
            # only the library's nodes: an arbitrary callable's close() may mean something else
            if type(fn).__module__.startswith("agentgraph_nb.nodes."):
                fn.close()

    async def aclose(self) -> None:
        """:meth:`close`, awaiting the async closers of resources (``aclose()`` of async clients)."""
        if self.resources is not None:
            await self.resources.aclose()
        self.close()

    async def __aenter__(self) -> CompiledGraph:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> CompiledGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- export -----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The graph as a JSON-able dict (format ``agentgraph_nb/graph`` v1); see
        :meth:`StateGraph.from_json`."""
        data = self.builder.to_json()
        data["name"] = self.name
        return data

    def to_dot(self) -> str:
        """Graphviz DOT text of the graph."""
        from agentgraph_nb.export.dot import to_dot

        return to_dot(self.to_json())

    def to_mermaid(self) -> str:
        """Mermaid flowchart text of the graph."""
        from agentgraph_nb.export.mermaid import to_mermaid

        return to_mermaid(self.to_json())

    def to_dsl(self) -> str:
        """``%%agentgraph`` cell text that builds the same graph."""
        from agentgraph_nb.export.dsl import to_dsl

        return to_dsl(self.to_json())

    def get_graph(self) -> dict[str, Any]:
        """Alias of :meth:`to_json` (LangGraph users look for it)."""
        return self.to_json()

    def __repr__(self) -> str:
        p = self.plan
        edges = sum(len(n.succ) for n in [p.start, *p.nodes])
        extra = sum(len(n.branches) + len(n.weighted) for n in [p.start, *p.nodes]) + len(p.joins)
        store = type(self.checkpointer).__name__ if self.checkpointer is not None else "no checkpointer"
        return f"<CompiledGraph {self.name!r}: {len(p.nodes)} nodes, {edges} edges, {extra} routers/joins, {store}>"


def _read_pending(
    writes: Iterable[PendingWrite], *, answered: bool = True,
) -> tuple[dict[int, PendingWrite], tuple[Interrupt, ...], dict[str, Any]]:
    """Decode a checkpoint's pending writes, in the order they were saved: finished tasks by
    index (a later result or failure mark of a task replaces an earlier one), the interrupts
    still unanswered (all of them with ``answered=False``; one per id, the latest), and the
    answers given so far (``{interrupt_id: value}``)."""
    done: dict[int, PendingWrite] = {}
    asked: dict[str, Interrupt] = {}
    answers: dict[str, Any] = {}
    # task index -> (the run that paused there, ids of its breakpoints): a subgraph node stopped at
    # an inner breakpoint, resumed by a later run and paused again has that breakpoint behind it
    static: dict[int, tuple[Any, list[str]]] = {}
    for pw in writes:
        if pw.node == INTERRUPT_WRITE:
            d = pw.update
            if pw.task_index >= 0:
                by = d.get("run")
                seen = static.get(pw.task_index)
                if seen is not None and seen[0] != by:
                    for old in static.pop(pw.task_index)[1]:
                        asked.pop(old, None)
                if d.get("when", "during") != "during":
                    static.setdefault(pw.task_index, (by, []))[1].append(d["id"])
            asked.pop(d["id"], None)  # keeps the order of the latest asking
            asked[d["id"]] = Interrupt(d["value"], d["id"], d.get("node", ""), d.get("when", "during"),
                                       tuple(d.get("path", ())))
        elif pw.node == RESUME_WRITE:
            answers[pw.update["id"]] = pw.update["value"]
        elif pw.node == ERROR_WRITE:
            done.pop(pw.task_index, None)  # its result could not be merged: the task runs again
        elif pw.task_index >= 0:
            done[pw.task_index] = pw
    return done, tuple(i for k, i in asked.items() if not answered or k not in answers), answers


def _same_update(update: Any) -> Any:
    return update


def _bare(update: Any) -> Any:
    """A root state's update as callers see it: the value itself, not ``{"__root__": value}``."""
    return update.get(ROOT) if isinstance(update, dict) else update


def _tasks(rec: CheckpointRecord, done: dict[int, PendingWrite], intrs: tuple[Interrupt, ...],
           writes: Iterable[PendingWrite], results: list[Any] | None,
           bare: Callable[[Any], Any] = _same_update) -> tuple[SnapshotTask, ...]:
    """The :class:`SnapshotTask` objects of a checkpoint's next step (``bare``: how an update is
    shown)."""
    if not rec.next:
        return ()
    errors: dict[int, str] = {}
    asked_at: dict[str, int] = {}
    for pw in writes:
        if pw.node == ERROR_WRITE:
            errors[pw.task_index] = str(pw.update.get("error", "")) if isinstance(pw.update, dict) else ""
        elif pw.task_index in errors and pw.node != INTERRUPT_WRITE and pw.node != RESUME_WRITE:
            del errors[pw.task_index]  # it ran again and finished
        elif pw.node == INTERRUPT_WRITE and isinstance(pw.update, dict):
            asked_at[str(pw.update.get("id"))] = pw.task_index
    names = [t[0] for t in rec.next]
    by_task: dict[int, list[Interrupt]] = {}
    for it in intrs:
        i = asked_at.get(it.id, -1)
        if not (0 <= i < len(names) and names[i] == it.node):
            i = names.index(it.node) if it.node in names else -1
        if i >= 0:
            by_task.setdefault(i, []).append(it)
    step = rec.step + 1
    out = []
    for i, t in enumerate(rec.next):
        if i in done:
            result = bare(done[i].update)
        elif results is not None and i < len(results) and results[i][0] == t[0]:
            result = bare(results[i][1])
        else:
            result = None
        out.append(SnapshotTask(
            id=f"{step}:{i}",
            name=t[0],
            path=("pull", t[0]) if len(t) == 1 else ("push", i),
            error=errors.get(i) if i not in done else None,
            interrupts=tuple(by_task.get(i, ())),
            result=result,
            caught=t[1] if len(t) > 1 and type(t[1]) is CaughtError else None,
        ))
    return tuple(out)


def _progress(total: int, enabled: bool, name: str) -> Any:
    if not enabled:
        return None
    from agentgraph_nb._lazy import requires_extra

    with requires_extra("batch(progress=True)"):
        from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=f"{name}", unit="run")
    bar.set_postfix(failed=0, refresh=False)
    return bar
