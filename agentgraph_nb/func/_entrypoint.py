"""The entrypoint of the functional API: :class:`entrypoint` and the :class:`Entrypoint` it makes,
a one-node graph that runs like a compiled graph (see the package docstring for the design)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from agentgraph_nb.constants import END, START
from agentgraph_nb.engine import get_stream_writer, task_context
from agentgraph_nb.errors import GraphValidationError, TaskCallError
from agentgraph_nb.func._task import (
    TASK_WRITE,
    _await_started,
    _callable_name,
    _Exec,
    _exec,
    _Frame,
    _frame,
    _is_async,
    _wait_started,
)
from agentgraph_nb.types import Command, RetryPolicy, StateSnapshot

__all__ = ["Entrypoint", "entrypoint"]

R = TypeVar("R")
S = TypeVar("S")
_INJECTED = ("previous", "writer", "config")  # keyword parameters an entrypoint may declare


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
