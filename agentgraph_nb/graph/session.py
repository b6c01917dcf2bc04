"""Step-through debugging without a browser: :class:`DebugSession` drives a run one superstep at
a time over a thread's checkpoints. The Debugger widget is a view over one of these; notebooks and
tests use it directly (``dbg.step()``, ``dbg.cont()``, ``dbg.back()``, ``dbg.fork(...)``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentgraph_nb.constants import END
from agentgraph_nb.errors import InvalidInputError, did_you_mean
from agentgraph_nb.types import Command, StateSnapshot

if TYPE_CHECKING:
    from agentgraph_nb.graph.compiled import CompiledGraph

__all__ = ["DebugSession", "KeyChange", "StateDiff"]

_ABSENT: Any = type("_Absent", (), {"__repr__": lambda self: "<absent>"})()


@dataclass(frozen=True)
class KeyChange:
    """How one state key differs between two checkpoints.

    Attributes:
        key: the state key.
        status: ``"added"``, ``"removed"`` or ``"changed"``.
        before: the value in the first (older) state, or ``ABSENT``.
        after: the value in the second state, or ``ABSENT``.
        writers: the nodes whose writes produced the change (for a step diff).
        reducer: the name of the key's reducer, or None for "last value wins".
    """

    key: str
    status: str
    before: Any
    after: Any
    writers: tuple[str, ...] = ()
    reducer: str | None = None


@dataclass(frozen=True)
class StateDiff:
    """The differences between two states, key by key (unchanged keys left out)."""

    a: str | None
    b: str | None
    changes: tuple[KeyChange, ...] = field(default_factory=tuple)

    @property
    def changed_keys(self) -> list[str]:
        return [c.key for c in self.changes]

    def to_pandas(self) -> Any:
        """One row per changed key: key, status, before, after, writers, reducer."""
        from agentgraph_nb._lazy import requires_extra

        with requires_extra("StateDiff.to_pandas()"):
            import pandas as pd

        return pd.DataFrame(
            [
                {
                    "key": c.key,
                    "status": c.status,
                    "before": None if c.before is _ABSENT else c.before,
                    "after": None if c.after is _ABSENT else c.after,
                    "writers": ", ".join(c.writers),
                    "reducer": c.reducer,
                }
                for c in self.changes
            ],
            columns=["key", "status", "before", "after", "writers", "reducer"],
        )

    def __repr__(self) -> str:
        body = ", ".join(f"{c.key}: {c.status}" for c in self.changes) or "no changes"
        return f"StateDiff({body})"


def diff_values(
    before: dict[str, Any], after: dict[str, Any], *, writes: dict[str, Any] | None = None,
    reducers: dict[str, str | None] | None = None, a: str | None = None, b: str | None = None,
) -> StateDiff:
    """Key-by-key differences from ``before`` to ``after``. ``writes`` ({node: update}) names
    the writers of each changed key."""
    changes = []
    keys = list(dict.fromkeys([*before, *after]))
    for k in keys:
        x = before.get(k, _ABSENT)
        y = after.get(k, _ABSENT)
        if x is not _ABSENT and y is not _ABSENT:
            try:
                same = bool(x == y)
            except Exception:  # e.g. numpy arrays
                same = x is y
            if same:
                continue
            status = "changed"
        elif x is _ABSENT:
            status = "added"
        else:
            status = "removed"
        writers: list[str] = []
        for node, upd in (writes or {}).items():
            ups = upd if isinstance(upd, list) else [upd]
            if any(isinstance(u, dict) and k in u for u in ups):
                writers.append(node)
        changes.append(KeyChange(k, status, x, y, tuple(writers), (reducers or {}).get(k)))
    return StateDiff(a, b, tuple(changes))


class DebugSession:
    """Drive a run of ``app`` one superstep at a time on its own thread.

    Args:
        app: a graph compiled with a checkpointer (the default in-memory one will do).
        inputs: the run's input; None to attach to an existing ``thread_id``.
        thread_id: the thread to use (default: a new ``debug-...`` thread).
        breakpoints: node names to stop before; ``"name:after"`` stops after that node.

    Example:
        >>> dbg = DebugSession(app, {"question": "q"}, breakpoints=["write"])
        >>> dbg.step()            # one superstep; returns the new snapshot
        >>> dbg.cont()            # to the next breakpoint, interrupt or the end
        >>> dbg.back()            # select the previous checkpoint; the next step forks from it
        >>> dbg.fork({"question": "other"})
        >>> dbg.compare(a_id, b_id)
    """

    def __init__(
        self,
        app: CompiledGraph,
        inputs: Any = None,
        *,
        thread_id: str | None = None,
        breakpoints: Sequence[str] = (),
    ) -> None:
        if app.checkpointer is None:
            raise InvalidInputError("debugging needs checkpoints: compile the graph with a checkpointer (e.g. 'memory')")
        self.app = app
        self.thread_id = thread_id or f"debug-{os.urandom(4).hex()}"
        self.before: set[str] = set()
        self.after: set[str] = set()
        for bp in breakpoints:
            self.toggle_breakpoint(bp)
        self.selected: str | None = None
        self.last_error: BaseException | None = None
        if inputs is not None:
            app.invoke(inputs, self.thread_id, max_steps=0)
        self.selected = app.get_state(self.thread_id).checkpoint_id

    # -- breakpoints ------------------------------------------------------------------------------
    def toggle_breakpoint(self, spec: str, *, when: str | None = None) -> bool:
        """Toggle a breakpoint before (default) or after a node (``"name:after"`` or
        ``when="after"``). Returns whether it is now set."""
        name, _, w = spec.partition(":")
        w = when or w or "before"
        self._check_node(name, "breakpoint")
        if w not in ("before", "after"):
            raise InvalidInputError(f"breakpoint {spec!r}: say 'before' or 'after'")
        target = self.before if w == "before" else self.after
        if name in target:
            target.discard(name)
            return False
        target.add(name)
        return True

    def _check_node(self, name: str, what: str) -> None:
        """``name`` is a node, or a node inside a subgraph by path (``"team|approve"``,
        ``"team|*"`` for every node of ``team``); else an error naming the graph it is not in."""
        app: Any = self.app
        parts = name.split("|")
        for i, part in enumerate(parts):
            by_name = app.plan.by_name
            if part == "*" and i == len(parts) - 1 and i > 0:
                return
            if part not in by_name:
                where = f" in subgraph {'|'.join(parts[:i])!r} (graph {app.name!r}) of graph {self.app.name!r}" if i else ""
                raise InvalidInputError(f"{what}: unknown node {part!r}{where}.{did_you_mean(part, by_name)}")
            if i < len(parts) - 1:
                fn = app.builder.nodes[part].fn
                if not getattr(fn, "is_subgraph", False):
                    raise InvalidInputError(
                        f"{what} {name!r}: node {part!r} of graph {app.name!r} is not a subgraph, so it has no "
                        f"node {parts[i + 1]!r}"
                    )
                app = fn.app

    def subgraph_paths(self) -> list[str]:
        """The paths of every subgraph of the graph, outer ones first (``["team", "team|inner"]``)."""
        out: list[str] = []

        def walk(app: Any, prefix: str) -> None:
            for name, spec in app.builder.nodes.items():
                if getattr(spec.fn, "is_subgraph", False):
                    out.append(prefix + name)
                    walk(spec.fn.app, f"{prefix}{name}|")

        walk(self.app, "")
        return out

    @property
    def where(self) -> str:
        """The subgraph the run is paused inside, by path (``"team|inner"``), or ``""`` when it
        is paused between nodes of the graph itself."""
        path: list[str] = []
        st = self.app.get_state(self.thread_id, self.selected, subgraphs=True)
        while True:
            inner = next((t for t in st.tasks if t.state is not None and t.state.next), None)
            if inner is None:
                return "|".join(path)
            path.append(inner.name)
            st = inner.state

    @property
    def breakpoints(self) -> list[str]:
        """Breakpoints as ``name`` (before) and ``name:after``, sorted."""
        return sorted(self.before) + sorted(f"{n}:after" for n in self.after)

    # -- moving -----------------------------------------------------------------------------------
    def _latest(self) -> str | None:
        return self.app.get_state(self.thread_id).checkpoint_id

    def _run(self, inp: Any, **kw: Any) -> StateSnapshot:
        cid = self.selected if self.selected != self._latest() else None
        self.last_error = None
        try:
            self.app.invoke(inp, self.thread_id, checkpoint_id=cid, **kw)
        except Exception as exc:  # the failed step leaves the last checkpoint; show it
            self.last_error = exc
            self.selected = self._latest()
            raise
        self.selected = self._latest()
        return self.state

    async def _arun(self, inp: Any, **kw: Any) -> StateSnapshot:
        cid = self.selected if self.selected != self._latest() else None
        self.last_error = None
        try:
            await self.app.ainvoke(inp, self.thread_id, checkpoint_id=cid, **kw)
        except BaseException as exc:  # cancelled (Stop) or failed: select what was saved
            self.last_error = exc
            self.selected = self._latest()
            raise
        self.selected = self._latest()
        return self.state

    async def astep(self) -> StateSnapshot:
        """Async :meth:`step`: runs on the caller's loop, so a widget can cancel it (Stop)."""
        if self.done:
            raise InvalidInputError(f"thread {self.thread_id!r}: the run is finished; nothing to step")
        return await self._arun(None, max_steps=1, interrupt_before=(), interrupt_after=())

    async def acont(self) -> StateSnapshot:
        """Async :meth:`cont` (cancel the task to stop: in-flight async nodes are cancelled and
        the last checkpoint stays selected)."""
        if self.done:
            raise InvalidInputError(f"thread {self.thread_id!r}: the run is finished; nothing to continue")
        return await self._arun(None, interrupt_before=sorted(self.before), interrupt_after=sorted(self.after))

    async def arun_to(self, node: str) -> StateSnapshot:
        """Async :meth:`run_to`."""
        self._check_node(node, "run_to")
        return await self._arun(None, interrupt_before=sorted(self.before | {node}), interrupt_after=sorted(self.after))

    async def aresume(self, value: Any) -> StateSnapshot:
        """Async :meth:`resume`."""
        return await self._arun(Command(resume=value), interrupt_before=sorted(self.before),
                                interrupt_after=sorted(self.after))

    @property
    def done(self) -> bool:
        """True when nothing is left to run from the selected checkpoint."""
        return not self.state.next

    def step(self) -> StateSnapshot:
        """Run one superstep (all the nodes that are ready, in parallel) and select its checkpoint."""
        if self.done:
            raise InvalidInputError(f"thread {self.thread_id!r}: the run is finished; nothing to step")
        return self._run(None, max_steps=1, interrupt_before=(), interrupt_after=())

    def cont(self) -> StateSnapshot:
        """Continue to the next breakpoint, interrupt, or the end."""
        if self.done:
            raise InvalidInputError(f"thread {self.thread_id!r}: the run is finished; nothing to continue")
        return self._run(None, interrupt_before=sorted(self.before), interrupt_after=sorted(self.after))

    def run_to(self, node: str) -> StateSnapshot:
        """Continue until ``node`` (``"team|approve"`` inside a subgraph) is about to run (or a
        breakpoint, interrupt, or the end)."""
        self._check_node(node, "run_to")
        return self._run(None, interrupt_before=sorted(self.before | {node}), interrupt_after=sorted(self.after))

    def _step_in_kw(self) -> dict[str, Any]:
        subs = self.subgraph_paths()
        if not subs:
            raise InvalidInputError(f"step in: graph {self.app.name!r} has no subgraphs; use step()")
        return {"interrupt_before": sorted(self.before | {f"{p}|*" for p in subs}), "interrupt_after": sorted(self.after)}

    def _step_out_kw(self) -> dict[str, Any]:
        where = self.where
        if not where:
            raise InvalidInputError(f"step out: the run of graph {self.app.name!r} is not paused inside a subgraph")
        inside = {b for b in self.before if b.startswith(f"{where}|")}  # stepping out skips those
        # pause before the next node that runs outside `where`: in the graph around it, or (when
        # `where` was that graph's last node) further out
        parts = where.split("|")
        outside = {f"{'|'.join(parts[:i])}|*" for i in range(1, len(parts))} | set(self.app.plan.by_name)
        return {"interrupt_before": sorted((self.before - inside) | outside), "interrupt_after": sorted(self.after)}

    def step_in(self) -> StateSnapshot:
        """Run until the next node inside a subgraph (at any depth) is about to run, and pause
        there: one node at a time inside a subgraph (``where`` says which)."""
        if self.done:
            raise InvalidInputError(f"thread {self.thread_id!r}: the run is finished; nothing to step")
        return self._run(None, **self._step_in_kw())

    async def astep_in(self) -> StateSnapshot:
        """Async :meth:`step_in`."""
        if self.done:
            raise InvalidInputError(f"thread {self.thread_id!r}: the run is finished; nothing to step")
        return await self._arun(None, **self._step_in_kw())

    def step_out(self) -> StateSnapshot:
        """Finish the subgraph the run is paused inside (:attr:`where`) and pause before the
        next node that runs outside it (in the graph around it, or further out)."""
        return self._run(None, **self._step_out_kw())

    async def astep_out(self) -> StateSnapshot:
        """Async :meth:`step_out`."""
        return await self._arun(None, **self._step_out_kw())

    def subgraph_state(self, namespace: str | None = None) -> StateSnapshot:
        """A subgraph's own newest snapshot on this thread (default: where the run is paused)."""
        return self.app.get_state(self.thread_id, namespace=self._namespace(namespace))

    def subgraph_history(self, namespace: str | None = None) -> list[StateSnapshot]:
        """A subgraph's checkpoints on this thread, newest first, every execution of it."""
        return self.app.get_state_history(self.thread_id, namespace=self._namespace(namespace))

    def _namespace(self, namespace: str | None) -> str:
        ns = namespace or self.where
        if not ns:
            raise InvalidInputError(
                f"thread {self.thread_id!r}: the run of graph {self.app.name!r} is not paused inside a subgraph; "
                f"name one: {self.subgraph_paths()}"
            )
        return ns

    def resume(self, value: Any) -> StateSnapshot:
        """Answer the pending ``interrupt()`` and continue (to a breakpoint, interrupt or the end)."""
        return self._run(Command(resume=value), interrupt_before=sorted(self.before), interrupt_after=sorted(self.after))

    def back(self) -> StateSnapshot:
        """Select the previous checkpoint (time travel). The next step forks from it."""
        st = self.state
        if st.parent_id is None:
            raise InvalidInputError("already at the first checkpoint of the thread")
        self.selected = st.parent_id
        return self.state

    def select(self, checkpoint_id: str) -> StateSnapshot:
        """Select any checkpoint of the thread (e.g. from the history slider)."""
        snap = self.app.get_state(self.thread_id, checkpoint_id)
        self.selected = snap.checkpoint_id
        return snap

    def fork(self, values: dict[str, Any], *, as_node: str | None = None) -> StateSnapshot:
        """Edit the selected state (values merge through the reducers) into a new branch and
        select it; the original timeline is untouched."""
        self.selected = self.app.update_state(self.thread_id, values, as_node=as_node, checkpoint_id=self.selected)
        return self.state

    # -- looking ------------------------------------------------------------------------------------
    @property
    def state(self) -> StateSnapshot:
        """The snapshot at the selected checkpoint."""
        return self.app.get_state(self.thread_id, self.selected)

    @property
    def history(self) -> list[StateSnapshot]:
        """Every checkpoint of the thread, newest first, all branches."""
        return self.app.get_state_history(self.thread_id)

    def diff(self, checkpoint_id: str | None = None) -> StateDiff:
        """What the step that produced a checkpoint (default: the selected one) changed, key by
        key, with the nodes that wrote each key and the key's reducer. At the newest checkpoint
        of an unfinished step, the results its finished nodes saved count too (the snapshot
        shows them applied)."""
        snap = self.app.get_state(self.thread_id, checkpoint_id or self.selected)
        if snap.parent_id is None:
            before: dict[str, Any] = {}
        else:
            before = self.app.get_state(self.thread_id, snap.parent_id).values
        writes = dict(snap.writes)
        for node, upd in snap.pending_writes.items():
            if node in writes:  # the node also wrote in the step before (a loop)
                prev = writes[node]
                writes[node] = [*(prev if isinstance(prev, list) else [prev]), upd]
            else:
                writes[node] = upd
        return diff_values(before, snap.values, writes=writes, reducers=self.app.schema.reducer_names,
                           a=snap.parent_id, b=snap.checkpoint_id)

    def compare(self, a: str, b: str) -> StateDiff:
        """Diff two checkpoints (any branches) of the thread side by side: ``a`` -> ``b``."""
        va = self.app.get_state(self.thread_id, a).values
        vb = self.app.get_state(self.thread_id, b).values
        return diff_values(va, vb, reducers=self.app.schema.reducer_names, a=a, b=b)

    def branches(self) -> list[list[str]]:
        """The thread's branches as lists of checkpoint ids, root to leaf."""
        hist = self.history
        children: dict[str | None, list[str]] = {}
        for s in reversed(hist):
            children.setdefault(s.parent_id, []).append(s.checkpoint_id)  # type: ignore[arg-type]
        leaves = [s.checkpoint_id for s in hist if s.checkpoint_id not in children]
        parent = {s.checkpoint_id: s.parent_id for s in hist}
        out = []
        for leaf in reversed(leaves):
            path: list[str] = []
            cur: str | None = leaf
            while cur is not None:
                path.append(cur)
                cur = parent.get(cur)
            out.append(path[::-1])
        return out

    def summary(self) -> str:
        """A deterministic one-line summary: thread, step, next nodes, interrupts, breakpoints."""
        st = self.state
        nxt = ", ".join(st.next) if st.next else END
        intr = f", waiting on {len(st.interrupts)} interrupt(s)" if st.interrupts else ""
        bps = f", breakpoints: {', '.join(self.breakpoints)}" if self.breakpoints else ""
        return f"Debugger(graph {self.app.name!r}, thread {self.thread_id!r}, step {st.step}, next: {nxt}{intr}{bps})"

    def __repr__(self) -> str:
        return self.summary()
