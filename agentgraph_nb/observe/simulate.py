"""Monte-Carlo runs of a graph: how often was each route taken?

:func:`simulate` runs a copy of the graph ``n`` times (nodes optionally swapped for stubs, seed
``seed + i`` for run ``i``) and counts, per edge, how often it was taken; :func:`route_counts`
turns the result into the ``"src->dst" -> count`` mapping that ``GraphView.edge_counts`` draws
as edge thickness.

How routes are counted: static edges, joins and weighted edges from the run's events (which
node finished in which superstep, and which ran in the next), conditional edges, ``Send`` and
``Command(goto=...)`` from what the routers and nodes of the copy returned (they are wrapped to
note it). Only supersteps that completed count.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

from agentgraph_nb._lazy import requires_extra
from agentgraph_nb.constants import END, START
from agentgraph_nb.errors import GraphValidationWarning, InvalidInputError, did_you_mean
from agentgraph_nb.types import Command, Send

__all__ = ["KINDS", "route_counts", "simulate", "stub_graph"]

logger = logging.getLogger("agentgraph_nb")

#: Edge kinds, in the order rows are listed per source.
KINDS = ("static", "join", "conditional", "weighted", "send", "goto")
_COLUMNS = ["source", "target", "kind", "count", "share"]


class _Notes:
    """What the wrapped routers and nodes of the copy returned, in order, for the current run.
    Runs are sequential; appends are atomic, so parallel nodes may note concurrently."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[tuple[Any, ...]] = []


def _wrap_router(
    router: Callable[..., Any], source: str, path_map: Mapping[Hashable, str] | None, notes: _Notes
) -> Callable[..., Any]:
    from agentgraph_nb._callables import is_async_callable

    if is_async_callable(router):

        async def aroute(state: Any) -> Any:
            out = await router(state)
            notes.items.append(("route", source, out, path_map))
            return out

        wrapped: Callable[..., Any] = aroute
    else:

        def route(state: Any) -> Any:
            out = router(state)
            notes.items.append(("route", source, out, path_map))
            return out

        wrapped = route
    wrapped.__name__ = getattr(router, "__name__", None) or type(router).__name__
    wrapped.__qualname__ = getattr(router, "__qualname__", wrapped.__name__)
    wrapped.__module__ = getattr(router, "__module__", None) or __name__
    wrapped.__doc__ = getattr(router, "__doc__", None)
    return wrapped


def _wrap_node(fn: Callable[..., Any], name: str, notes: _Notes) -> Callable[..., Any]:
    from agentgraph_nb._callables import is_async_callable

    def note(out: Any) -> None:
        if isinstance(out, Command) and out.goto:
            notes.items.append(("goto", name, out.goto, None))

    if is_async_callable(fn):

        async def anode(state: Any) -> Any:
            out = await fn(state)
            note(out)
            return out

        wrapped: Callable[..., Any] = anode
    else:

        def node(state: Any) -> Any:
            out = fn(state)
            note(out)
            return out

        wrapped = node
    wrapped.__name__ = getattr(fn, "__name__", None) or type(fn).__name__
    wrapped.__qualname__ = getattr(fn, "__qualname__", wrapped.__name__)
    wrapped.__module__ = getattr(fn, "__module__", None) or __name__
    wrapped.__doc__ = getattr(fn, "__doc__", None)
    return wrapped


def stub_graph(
    app: Any, stubs: Mapping[str, Callable[..., Any]] | None = None, *, notes: Any = None
) -> Any:
    """A copy of a compiled graph with some nodes swapped for stubs, compiled without a
    checkpointer and without interrupts: same schema, nodes (retry and timeout included), edges,
    joins, conditional and weighted edges.

    Args:
        app: the compiled graph (its builder, ``app.builder``, is copied).
        stubs: node name -> callable to run instead.

    Raises:
        InvalidInputError: a stub names a node the graph does not have.
    """
    from agentgraph_nb.graph.state import StateGraph

    g = app.builder
    stubs = dict(stubs or {})
    for name in stubs:
        if name not in g.nodes:
            raise InvalidInputError(
                f"stubs: graph {app.name!r} has no node {name!r}.{did_you_mean(name, g.nodes)}"
            )
        if not callable(stubs[name]):
            raise InvalidInputError(
                f"stubs: the stub for {name!r} is not callable: {stubs[name]!r}"
            )
    copy = StateGraph(g.schema, name=app.name)
    for spec in g.nodes.values():
        fn = stubs.get(spec.name, spec.fn)
        if notes is not None:
            fn = _wrap_node(fn, spec.name, notes)
        copy.add_node(
            spec.name,
            fn,
            retry=spec.retry,
            timeout=spec.timeout,
            destinations=spec.destinations,
            metadata=spec.metadata,
        )
    for s, t in g.edges:
        copy.add_edge(s, t)
    for sources, t in g.joins:
        copy.add_edge(list(sources), t)
    for b in g.branches:
        router = (
            _wrap_router(b.router, b.source, b.path_map, notes) if notes is not None else b.router
        )
        copy.add_conditional_edges(
            b.source, router, b.path_map if b.path_map is not None else b.targets
        )
    for s, weights in g.weighted:
        copy.add_weighted_edges(s, weights)
    with warnings.catch_warnings():  # the original already warned about its own shape
        warnings.simplefilter("ignore", GraphValidationWarning)
        return copy.compile(checkpointer=None, name=app.name)


def _targets(out: Any, path_map: Mapping[Hashable, str] | None) -> Iterable[tuple[str, str]]:
    """(target, kind) for what a router or ``Command.goto`` returned."""
    items = [out] if isinstance(out, (str, Send)) or not isinstance(out, Sequence) else list(out)
    for item in items:
        if isinstance(item, Send):
            yield item.node, "send"
        elif item is None:
            continue
        elif path_map is not None:
            try:
                yield path_map[item], "conditional"
            except (KeyError, TypeError):
                continue
        else:
            yield str(item), "conditional"


class _Tally:
    """Route counts over many runs of one graph."""

    def __init__(self, builder: Any) -> None:
        self.g = builder
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.ran: Counter[str] = Counter()
        self.static: dict[str, list[str]] = {}
        for s, t in builder.edges:
            self.static.setdefault(s, []).append(t)
        self.joins = [(frozenset(srcs), tuple(srcs), t) for srcs, t in builder.joins]
        self.joins_of: dict[str, list[int]] = {}
        for i, (_, srcs, _) in enumerate(self.joins):
            for s in dict.fromkeys(srcs):
                self.joins_of.setdefault(s, []).append(i)
        self.weighted: dict[str, list[dict[str, float]]] = {}
        for s, w in builder.weighted:
            self.weighted.setdefault(s, []).append(w)

    def add_run(self, items: list[tuple[Any, ...]]) -> None:
        """Count one run from its notes: events (``("ev", kind, step, node, task, data)``) and
        router/goto notes, in the order they happened."""
        counts = self.counts
        # per step: finished nodes (task order), names started, notes made while routing it
        done: dict[int, list[tuple[int, str]]] = {}
        started: dict[int, list[str]] = {}
        committed: set[int] = set()
        notes_of: dict[int, list[tuple[Any, ...]]] = {}
        step = 0  # routing notes belong to the last step that finished (0: routing from START)
        for it in items:
            if it[0] == "ev":
                _, kind, s, node, task, data = it
                if kind == "node_end":
                    _, _, idx = task.partition(":")
                    done.setdefault(s, []).append((int(idx) if idx.isdigit() else 0, node))
                elif kind == "step_start":
                    started[s] = list(data or ())
                    step = s
                elif kind == "state_update":
                    committed.add(s)
                    step = s
            else:
                notes_of.setdefault(step, []).append(it)
        # routing from START (step 0 notes: START's routers), then each committed step
        self.ran[START] += 1
        for t in self.static.get(START, ()):
            counts[(START, t, "static")] += 1
        first = min(started) if started else 1
        self._route(START, notes_of.get(0, []), started.get(first, []), [START])
        barriers: dict[int, set[str]] = {}
        for s in sorted(committed):
            nodes = [n for _, n in sorted(done.get(s, []))]
            for n in nodes:
                self.ran[n] += 1
            for n in nodes:
                for t in self.static.get(n, ()):
                    counts[(n, t, "static")] += 1
                for j in self.joins_of.get(n, ()):
                    seen = barriers.setdefault(j, set())
                    seen.add(n)
                    sources, ordered, target = self.joins[j]
                    if seen >= sources:
                        for src in ordered:
                            counts[(src, target, "join")] += 1
                        seen.clear()
            self._route(None, notes_of.get(s, []), started.get(s + 1, []), nodes)

    def _route(
        self,
        only: str | None,
        notes: list[tuple[Any, ...]],
        next_names: list[str],
        sources: list[str],
    ) -> None:
        counts = self.counts
        explained: set[str] = set()
        for n in sources:
            explained.update(self.static.get(n, ()))
        for note in notes:
            what, src, out, path_map = note
            if only is not None and src != only:
                continue
            for target, kind in _targets(out, path_map):
                kind = "goto" if what == "goto" and kind == "conditional" else kind
                counts[(src, target, kind)] += 1
                explained.add(target)
        # weighted picks: the target that ran next (END when none of them did)
        running = set(next_names)
        for n in sources:
            for weights in self.weighted.get(n, ()):
                cands = [t for t in weights if t != END and t in running]
                if not cands:
                    if END in weights:
                        counts[(n, END, "weighted")] += 1
                    continue
                fresh = [t for t in cands if t not in explained]
                pick = (fresh or cands)[0]
                counts[(n, pick, "weighted")] += 1
                explained.add(pick)

    def frame(self) -> Any:
        with requires_extra("app.simulate()"):
            import pandas as pd

        g = self.g
        order = {START: 0, **{n: i + 1 for i, n in enumerate(g.nodes)}, END: len(g.nodes) + 1}
        rows: dict[tuple[str, str, str], int] = {}
        for s, t in g.edges:
            rows.setdefault((s, t, "static"), 0)
        for srcs, t in g.joins:
            for s in srcs:
                rows.setdefault((s, t, "join"), 0)
        for b in g.branches:
            for t in b.path_map.values() if b.path_map is not None else (b.targets or ()):
                rows.setdefault((b.source, t, "conditional"), 0)
        for s, w in g.weighted:
            for t in w:
                rows.setdefault((s, t, "weighted"), 0)
        for key, c in self.counts.items():
            rows[key] = rows.get(key, 0) + c
        kind_rank = {k: i for i, k in enumerate(KINDS)}
        keys = sorted(
            rows,
            key=lambda k: (
                order.get(k[0], len(order)),
                kind_rank.get(k[2], 99),
                order.get(k[1], len(order)),
                k[1],
            ),
        )
        data = []
        for s, t, k in keys:
            ran = self.ran.get(s, 0)
            data.append((s, t, k, rows[(s, t, k)], rows[(s, t, k)] / ran if ran else float("nan")))
        df = pd.DataFrame.from_records(data, columns=_COLUMNS)
        return df.astype({"count": "int64", "share": "float64"})


def simulate(
    app: Any,
    inputs: Any,
    n: int = 1000,
    seed: int | None = None,
    stubs: Mapping[str, Callable[..., Any]] | None = None,
    progress: bool = False,
) -> Any:
    """Run the graph ``n`` times and count how often each route was taken.

    Runs use a copy of the graph (no checkpointer, no interrupts), with the nodes named in
    ``stubs`` replaced: stub the slow or costly ones (LLM calls) with functions returning
    plausible updates, and keep the routers, to see where traffic goes.

    Args:
        app: the compiled graph.
        inputs: the input of every run (a dict), a sequence of ``n`` inputs, or a callable
            ``i -> input``.
        n: how many runs.
        seed: run ``i`` uses seed ``seed + i`` (weighted edges and retry jitter are
            reproducible); None: random.
        stubs: node name -> callable to run instead of the node.
        progress: show a progress bar (``tqdm.auto``).

    Returns:
        A pandas DataFrame, one row per edge and kind, declared edges first even if never taken:
        ``source``, ``target``, ``kind`` (``static``, ``join``, ``conditional``, ``weighted``,
        ``send``, ``goto``), ``count`` (times taken) and ``share`` (count / times ``source``
        ran, NaN if it never ran; a join counts once per firing for each of its sources). ``df.attrs`` holds
        ``runs``, ``failed`` (runs that raised; the steps they completed still count),
        ``errors`` (the first few, as text) and ``edge_counts`` (:func:`route_counts`).

    Raises:
        InvalidInputError: bad ``n``, ``inputs`` or ``stubs``.

    Example:
        >>> df = app.simulate({"question": "q"}, n=1000, seed=0,          # doctest: +SKIP
        ...                   stubs={"search": lambda s: {"notes": ["x"]}})
        >>> view = app.show(); view.edge_counts = df.attrs["edge_counts"]  # doctest: +SKIP
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise InvalidInputError(f"simulate: n must be an int >= 0, got {n!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise InvalidInputError(f"simulate: seed must be an int or None, got {seed!r}")
    if callable(inputs):
        input_of: Callable[[int], Any] = inputs
    elif isinstance(inputs, Sequence) and not isinstance(inputs, (str, bytes)):
        if len(inputs) != n:
            raise InvalidInputError(
                f"simulate: got {len(inputs)} inputs for n={n} runs; pass one input "
                "(used for every run), n inputs, or a function i -> input"
            )
        seq = list(inputs)

        def input_of(i: int) -> Any:
            return seq[i]
    else:

        def input_of(i: int) -> Any:
            return dict(inputs) if isinstance(inputs, dict) else inputs

    notes = _Notes()
    copy = stub_graph(app, stubs, notes=notes)
    items = notes.items

    def on_event(ev: Any) -> None:
        kind = ev.kind
        if kind == "node_end" or kind == "step_start" or kind == "state_update":
            items.append(
                (
                    "ev",
                    kind,
                    ev.step,
                    ev.node,
                    ev.task_id,
                    ev.data if kind == "step_start" else None,
                )
            )

    copy.listen(on_event)
    tally = _Tally(app.builder)
    bar = None
    if progress:
        with requires_extra("app.simulate(progress=True)"):
            from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=f"simulate {app.name}", unit="run")
    failed = 0
    errors: list[str] = []
    try:
        for i in range(n):
            items.clear()
            try:
                copy.invoke(input_of(i), seed=None if seed is None else seed + i)
            except Exception as exc:
                failed += 1
                if len(errors) < 5:
                    errors.append(f"run {i}: {type(exc).__name__}: {exc}")
            tally.add_run(list(items))
            if bar is not None:
                bar.update(1)
                if failed:
                    bar.set_postfix(failed=failed, refresh=False)
    finally:
        if bar is not None:
            bar.close()
    if failed:
        logger.warning(
            "simulate: %d of %d runs of graph %r failed; first: %s", failed, n, app.name, errors[0]
        )
    df = tally.frame()
    df.attrs["runs"] = n
    df.attrs["failed"] = failed
    df.attrs["errors"] = errors
    df.attrs["edge_counts"] = route_counts(df)
    return df


def route_counts(df: Any) -> dict[str, int]:
    """``"src->dst"`` -> times taken (all kinds together), from a :func:`simulate` frame: what
    ``GraphView.edge_counts`` takes to draw edge thickness.

    Example:
        >>> view.edge_counts = route_counts(app.simulate(inputs, n=500))   # doctest: +SKIP
    """
    out: dict[str, int] = {}
    for s, t, c in zip(df["source"], df["target"], df["count"]):
        key = f"{s}->{t}"
        out[key] = out.get(key, 0) + int(c)
    return out
