"""A compiled graph as a node of another graph (``g.add_node("team", team_app)``).

The subgraph runs as its own :class:`~agentgraph_nb.engine._loop.Run` inside the parent's node
execution: its input is the keys the two schemas share (a ``Send``'s argument, for a task a
``Send`` started), its reducers apply inside, and its output (the keys its output schema shares
with the parent) is the node's update, merged by the parent's reducers.

Checkpoints. A subgraph run shares the parent's store and thread: its checkpoints are stored
under the *derived thread* ``f"{thread_id}\\x1f{namespace}"``, namespace ``"team"`` for the node
``team`` (``"team:2"`` for the task at index 2 of a step that sends to it with ``Send``, ``"team|inner"``
one level down). A derived thread is an ordinary thread to the store, so every store and the
conformance kit work unchanged; ``list_threads`` hides them and ``delete_thread`` deletes them with
their parent. Each checkpoint of a subgraph run carries ``metadata["call"]``: the parent
checkpoint that planned the step and the task's index. When the parent runs that task again
(resuming after an ``interrupt()``, or after a crash inside), the subgraph resumes from its newest
checkpoint instead of starting over; a later step (another call) starts a fresh run on the same
derived thread (a new root checkpoint), so the namespace's history lists every execution.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agentgraph_nb.engine import LIVE_MODES, NOARG, NS_ITEM, current_task, iterate_sync, run_sync
from agentgraph_nb.errors import (
    GraphInterrupt,
    GraphValidationError,
    InvalidUpdateError,
    ParentCommand,
    UnknownNamespaceError,
    did_you_mean,
)
from agentgraph_nb.types import Command, Interrupt

if TYPE_CHECKING:
    from agentgraph_nb.checkpoint.base import BaseCheckpointer, CheckpointRecord
    from agentgraph_nb.engine import Run
    from agentgraph_nb.graph.compiled import CompiledGraph
    from agentgraph_nb.graph.state import StateGraph

__all__ = ["NS_ITEM", "SEP", "SubgraphNode", "check_subgraph", "derived_thread", "is_derived", "make_subgraph_node",
           "resolve_namespace", "task_namespace"]

SEP = "\x1f"  # between a thread id and a namespace in a derived thread key (no sane thread id holds it)
_NO_MODES: frozenset[str] = frozenset()


def derived_thread(thread_id: str, namespace: str) -> str:
    """The store key of the checkpoints of ``namespace`` in ``thread_id`` (itself a derived key,
    for a subgraph of a subgraph: ``namespace`` is then relative to it)."""
    return f"{thread_id}|{namespace}" if SEP in thread_id else f"{thread_id}{SEP}{namespace}"


def is_derived(thread_id: str) -> bool:
    return SEP in thread_id


def task_namespace(node: str, index: int, pushed: bool) -> str:
    """The namespace of one task running subgraph node ``node``: its name, or ``name:index`` for
    a task a ``Send`` started (several of them may run in one step)."""
    return f"{node}:{index}" if pushed else node


def _keys(app: CompiledGraph, side: str) -> frozenset[str] | None:
    """The keys of ``app``'s input (``side="in"``) or output side; None for a ``dict`` state (any key)."""
    schema = app.schema
    if schema.kind == "dict":
        return None
    if side == "in":
        view = app._input_view
        return frozenset(view.key_set if view is not None else schema.key_set)
    out = app._output_keys
    return frozenset(out if out is not None else schema.key_set)


class SubgraphNode:
    """The callable a compiled graph becomes as a node (see the module's docstring)."""

    is_subgraph = True

    def __init__(self, app: CompiledGraph, name: str, parent: StateGraph) -> None:
        self.app = app
        self.name = name
        self.parent_name = str(parent.name)
        pkeys = None if parent.state.kind == "dict" else parent.state.key_set
        cin, cout = _keys(app, "in"), _keys(app, "out")
        self.in_keys = cin if pkeys is None else (pkeys if cin is None else cin & pkeys)
        self.out_keys = cout if pkeys is None else (pkeys if cout is None else cout & pkeys)
        self._bound: dict[int, CompiledGraph] = {}
        self.__name__ = name  # exports and reprs name the node
        self.__qualname__ = name

    def __repr__(self) -> str:
        return f"<subgraph {self.app.name!r} as node {self.name!r}>"

    # -- the child graph on the parent's store ----------------------------------------------------
    def bind(self, store: BaseCheckpointer) -> CompiledGraph:
        """The subgraph writing to ``store`` (the parent's): a shallow copy sharing its plan."""
        got = self._bound.get(id(store))
        if got is None or got.checkpointer is not store:
            got = bind_store(self.app, store)
            self._bound[id(store)] = got
        return got

    def _input(self, state: Any) -> dict[str, Any]:
        """The child's input: the shared keys of the state the parent's node receives (a dict,
        or a dataclass or pydantic instance)."""
        keys = self.in_keys
        if isinstance(state, Mapping):
            return dict(state) if keys is None else {k: state[k] for k in keys if k in state}
        if keys is None:
            keys = frozenset(getattr(state, "__dict__", {}))
        missing = object()
        out = {}
        for k in keys:
            v = getattr(state, k, missing)
            if v is not missing:
                out[k] = v
        return out

    def _output(self, values: Any) -> Any:
        """The node's update: the child's output (``app._output``) limited to the shared keys."""
        if not isinstance(values, dict):
            return values
        keys = self.out_keys
        return values if keys is None else {k: v for k, v in values.items() if k in keys}

    def _plan_call(self, state: Any) -> tuple[Any, Run | None, str, str | None, str]:
        """``(child input, parent run, namespace, derived thread, call key)`` of this execution."""
        task = current_task()
        if task is None:  # called by hand, outside a run
            return self._input(state), None, self.name, None, ""
        prun = task.run
        index = task.index if isinstance(task.index, int) else 0
        pushed = 0 <= index < len(prun.tasks) and prun.tasks[index][1] is not NOARG and prun.tasks[index][0].name == self.name
        local = task_namespace(self.name, index, pushed)
        ns = f"{prun.namespace}|{local}" if prun.namespace else local
        child_input = state if pushed else self._input(state)
        tid = None
        if prun.store is not None and prun.thread_id is not None:
            root = prun.ev_thread if prun.namespace else prun.thread_id
            tid = derived_thread(root, ns)  # type: ignore[arg-type]
        call = f"{prun.planned_at or prun.checkpoint_id}:{index}"
        return child_input, prun, ns, tid, call

    def _child_run(self, child_input: Any, prun: Run | None, ns: str, tid: str | None, call: str,
                   newest: CheckpointRecord | None, sync: bool, resume: bool) -> tuple[CompiledGraph, Run]:
        listeners = prun.listeners if prun is not None else None
        modes = prun.sub_modes - LIVE_MODES if prun is not None and prun.sub_modes else _NO_MODES
        if prun is None or tid is None:
            app = self.app
            run = app._prepare(child_input, None, sync=sync, modes=modes, listeners=listeners)
        else:
            app = self.bind(prun.store)  # type: ignore[arg-type]
            if resume:
                run = app._prepare(None, tid, sync=sync, modes=modes, listeners=listeners,
                                   durability=prun.durability)
                if prun.resume_values:
                    run.resume_values = {**run.resume_values, **prun.resume_values}
            else:
                run = app._prepare(child_input, None, sync=sync, modes=modes, listeners=listeners)
                run.store = prun.store
                run.thread_id = tid
                run.durability = prun.durability
                run.head = newest.checkpoint_id if newest is not None else None
            # a sync subgraph runs without an event loop: it writes through the store's sync methods
            run.astore = prun.astore if not sync else None
            run.tags = {"call": call}
        if prun is not None:
            run.namespace = ns
            run.ev_thread = prun.ev_thread if prun.namespace else prun.thread_id
            run.sub_modes = prun.sub_modes
            if prun._seed is not None:  # a child of a seeded run is reproducible too
                run._seed = prun._seed
            run.recursion_limit = prun.recursion_limit
            if prun.interrupt_before or prun.interrupt_after:  # "team|ask": breakpoints inside
                run.interrupt_before = self._inner_breakpoints(prun.interrupt_before, run.interrupt_before)
                run.interrupt_after = self._inner_breakpoints(prun.interrupt_after, run.interrupt_after)
            run.parent_task = (prun.run_id, f"{prun.step + 1}:{call.rsplit(':', 1)[1]}")
            run.task_exec = prun.task_exec  # the subgraph's nodes run where the parent's do (a Ray cluster)
            if prun.runtime is not None:  # the parent's context reaches the subgraph's nodes
                from agentgraph_nb.graph._runtime import child_runtime

                run.runtime = child_runtime(prun.runtime, run.runtime)
        return app, run

    def _inner_breakpoints(self, outer: frozenset[str], own: frozenset[str]) -> frozenset[str]:
        """The child's breakpoints: its own, plus the parent's ``"<this node>|<path>"`` ones."""
        head = self.name + "|"
        extra = [n[len(head):] for n in outer if n.startswith(head)]
        return own.union(extra) if extra else own

    def _resumable(self, newest: CheckpointRecord | None, prun: Run | None, call: str) -> str:
        """``"fresh"``, ``"resume"`` (the same call paused or failed inside) or ``"done"`` (the
        same call finished: the parent crashed before recording it)."""
        if newest is None or prun is None or prun.fork_of is not None or newest.metadata.get("call") != call:
            return "fresh"
        return "resume" if newest.next else "done"

    def _done_output(self, app: CompiledGraph, tid: str) -> Any:
        loaded = app._load(tid, None)
        return self._output(app._output(loaded[1])) if loaded is not None else None

    def _after(self, app: CompiledGraph, run: Run, prun: Run | None) -> Any:
        """The node's result once the child run returned: its output, or the parent pauses."""
        if run.interrupts:
            if prun is not None:
                asked = prun.asked_at if prun.asked_at else {}
                task = current_task()
                idx = task.index if task is not None and isinstance(task.index, int) else -1
                for it in run.interrupts:
                    asked[it.id] = idx
                prun.asked_at = asked
            raise GraphInterrupt(tuple(
                Interrupt(it.value, it.id, self.name, it.when, (self.name, *(it.path or (it.node,))))
                for it in run.interrupts
            ))
        return self._output(app._output(run.values))

    def _forward(self, prun: Run | None, local: str, m: str, payload: Any, app: CompiledGraph) -> None:
        if prun is None or not prun.sub_modes:
            return
        if m == NS_ITEM:
            ns, m2, p2 = payload
            prun.out.append((NS_ITEM, ((local, *ns), m2, p2)))
        else:
            prun.out.append((NS_ITEM, ((local,), m, app._stream_item(m, payload))))

    @staticmethod
    def _handoff(pc: ParentCommand) -> Command:
        cmd = pc.command
        return Command(update=cmd.update, goto=cmd.goto)


class _SyncSubgraph(SubgraphNode):
    def __call__(self, state: Any) -> Any:
        child_input, prun, ns, tid, call = self._plan_call(state)
        newest = prun.store.get(tid) if prun is not None and tid is not None else None  # type: ignore[union-attr]
        how = self._resumable(newest, prun, call)
        if how == "done":
            return self._done_output(self.bind(prun.store), tid)  # type: ignore[arg-type, union-attr]
        app, run = self._child_run(child_input, prun, ns, tid, call, newest, True, how == "resume")
        local = ns.rsplit("|", 1)[-1]
        try:
            if prun is not None and prun.sub_modes and (prun.sub_modes - LIVE_MODES):
                for m, payload in iterate_sync(app._lifecycle(run), needs_loop=False):
                    self._forward(prun, local, m, payload, app)
            else:
                run_sync(app.ainvoke(run), needs_loop=False)
        except ParentCommand as pc:
            return self._handoff(pc)
        return self._after(app, run, prun)


class _AsyncSubgraph(SubgraphNode):
    async def __call__(self, state: Any) -> Any:
        child_input, prun, ns, tid, call = self._plan_call(state)
        newest = None
        if prun is not None and tid is not None:
            newest = await prun.astore.aget(tid) if prun.astore is not None else prun.store.get(tid)  # type: ignore[union-attr]
        how = self._resumable(newest, prun, call)
        if how == "done":
            return self._done_output(self.bind(prun.store), tid)  # type: ignore[arg-type, union-attr]
        app, run = self._child_run(child_input, prun, ns, tid, call, newest, False, how == "resume")
        local = ns.rsplit("|", 1)[-1]
        try:
            if prun is not None and prun.sub_modes and (prun.sub_modes - LIVE_MODES):
                async for m, payload in app._lifecycle(run):
                    self._forward(prun, local, m, payload, app)
            else:
                await app.ainvoke(run)
        except ParentCommand as pc:
            return self._handoff(pc)
        return self._after(app, run, prun)


def bind_store(app: CompiledGraph, store: BaseCheckpointer) -> CompiledGraph:
    """``app`` writing its checkpoints to ``store``: a shallow copy sharing plan, listeners and metrics."""
    got = copy.copy(app)
    got.checkpointer = store
    ser = getattr(store, "serializer", None)
    reg = getattr(ser, "register_from_annotations", None)
    if callable(reg) and app.schema.kind not in ("dict", "root"):
        reg(app.schema.cls)
    return got


def _contains(app: CompiledGraph, builder: Any, seen: set[int]) -> list[str] | None:
    """The chain of graph names from ``app`` down to a node that is a graph built by ``builder``."""
    if app.builder is builder:
        return [app.name]
    if id(app) in seen:
        return None
    seen.add(id(app))
    for spec in app.builder.nodes.values():
        fn = spec.fn
        if isinstance(fn, SubgraphNode):
            found = _contains(fn.app, builder, seen)
            if found is not None:
                return [app.name, *found]
    return None


def check_subgraph(parent: StateGraph, name: str, app: CompiledGraph) -> None:
    """The checks of ``parent.add_node(name, app)``: no cycle of graphs, a key in common."""
    chain = _contains(app, parent, set())
    if chain is not None:
        path = " > ".join([str(parent.name), *chain])
        raise GraphValidationError(
            f"node {name!r}: graph {app.name!r} cannot be a node of graph {parent.name!r}, which it contains "
            f"(graphs containing each other: {path}); a graph cannot run inside itself"
        )
    ps, cs = parent.state, app.schema
    if "root" in (ps.kind, cs.kind):
        raise GraphValidationError(
            f"node {name!r}: subgraph {app.name!r} and graph {parent.name!r} need keyed state schemas to share "
            f"keys ({ps.name} and {cs.name}); call {app.name}.invoke(...) inside a node function instead"
        )
    if "dict" in (ps.kind, cs.kind):
        return
    cin, cout = _keys(app, "in"), _keys(app, "out")
    shared_in = (cin or frozenset()) & ps.key_set
    shared_out = (cout or frozenset()) & ps.key_set
    if not shared_in and not shared_out:
        raise GraphValidationError(
            f"node {name!r}: subgraph {app.name!r} (keys: {', '.join(sorted(cs.keys))}) shares no state key with "
            f"graph {parent.name!r} (keys: {', '.join(ps.keys)}), so nothing could flow in or out. Give them a "
            f"key in common, or call {app.name}.invoke(...) inside a node function that maps the keys"
        )


def make_subgraph_node(parent: StateGraph, name: str, app: CompiledGraph) -> SubgraphNode:
    check_subgraph(parent, name, app)
    cls = _SyncSubgraph if app._all_sync() else _AsyncSubgraph
    return cls(app, name, parent)


def resolve_namespace(app: CompiledGraph, thread_id: str, namespace: str) -> tuple[CompiledGraph, str]:
    """The subgraph ``namespace`` names in ``app`` (bound to ``app``'s store) and its derived
    thread; an :class:`UnknownNamespaceError` naming the graph, thread and namespace otherwise."""
    if not isinstance(namespace, str) or not namespace:
        raise UnknownNamespaceError(f"namespace= must be a non-empty string such as 'team' or 'team|inner', got {namespace!r}")
    g = app
    for part in namespace.split("|"):
        node = part.split(":", 1)[0]
        spec = g.builder.nodes.get(node)
        fn = spec.fn if spec is not None else None
        if not isinstance(fn, SubgraphNode):
            subs = [n for n, s in g.builder.nodes.items() if isinstance(s.fn, SubgraphNode)]
            what = "has no node" if spec is None else "has a node that is not a subgraph:"
            raise UnknownNamespaceError(
                f"graph {app.name!r}, thread {thread_id!r}: namespace {namespace!r} names no subgraph: graph "
                f"{g.name!r} {what} {node!r}.{did_you_mean(node, subs)} Subgraph nodes: {', '.join(subs) or 'none'}"
            )
        g = fn.app
    store = app._store()
    return bind_store(g, store), derived_thread(str(thread_id), namespace)


def require_run(app: CompiledGraph, child: CompiledGraph, thread_id: str, namespace: str, tid: str) -> None:
    """An :class:`UnknownNamespaceError` when the thread never ran the subgraph ``namespace``."""
    if app._store().get(tid) is None:
        raise UnknownNamespaceError(
            f"graph {app.name!r}, thread {thread_id!r}: subgraph {child.name!r} at namespace {namespace!r} has no "
            "checkpoint: the thread has not run it (namespaces of Send tasks are 'node:<task index>')"
        )


def check_breakpoint_path(builder: StateGraph, path: str, label: str, error: type[Exception]) -> None:
    """A breakpoint inside a subgraph, ``"team|ask"`` (``"team|*"``: every node of ``team``;
    ``"team|inner|x"`` deeper), names subgraph nodes down to a node of the last one."""
    g = builder
    parts = path.split("|")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if last and part == "*":
            return
        spec = g.nodes.get(part)
        if spec is None:
            raise error(f"{label}: {path!r}: graph {g.name!r} has no node {part!r}.{did_you_mean(part, g.nodes)}")
        if last:
            return
        if not isinstance(spec.fn, SubgraphNode):
            raise error(f"{label}: {path!r}: node {part!r} of graph {g.name!r} is not a subgraph, so "
                        "nothing can stop inside it")
        g = spec.fn.app.builder


def subgraph_tasks(app: CompiledGraph, snap: Any, rec: CheckpointRecord) -> Any:
    """``snap`` with ``tasks[i].state`` set for the tasks that run a subgraph which has started
    in this step (its newest checkpoint's call is this checkpoint's task)."""
    import dataclasses

    store = app._store()
    planned = rec.metadata.get("fork_of") or rec.checkpoint_id
    tasks = []
    changed = False
    for i, t in enumerate(snap.tasks):
        spec = app.builder.nodes.get(t.name)
        fn = spec.fn if spec is not None else None
        if isinstance(fn, SubgraphNode):
            tid = derived_thread(str(snap.thread_id), task_namespace(t.name, i, t.path[0] == "push"))
            newest = store.get(tid)
            if newest is not None and newest.metadata.get("call") == f"{planned}:{i}":
                t = dataclasses.replace(t, state=fn.bind(store).get_state(tid, subgraphs=True))
                changed = True
        tasks.append(t)
    return dataclasses.replace(snap, tasks=tuple(tasks)) if changed else snap


def handoff_error(app: CompiledGraph, pc: ParentCommand) -> InvalidUpdateError:
    """``Command(graph=Command.PARENT)`` from a graph that runs on its own."""
    return InvalidUpdateError(
        f"node {pc.node!r} of graph {app.name!r} returned Command(graph=Command.PARENT, goto={pc.command.goto!r}), "
        f"but graph {app.name!r} is not running as a subgraph (it has no parent graph to hand off to); "
        "return Command(goto=...) without graph= to route inside it",
        node=pc.node,
    )
