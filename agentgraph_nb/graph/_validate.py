"""Graph checks: errors for definite mistakes, warnings for likely ones."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from agentgraph_nb.constants import END, START
from agentgraph_nb.errors import GraphValidationError, did_you_mean

if TYPE_CHECKING:
    from agentgraph_nb.graph.state import StateGraph

__all__ = ["validate"]


def _reach(starts: set[str], edges: dict[str, set[str]]) -> set[str]:
    """Every name reachable from ``starts`` along ``edges`` (starts included); linear time."""
    seen = set(starts)
    stack = list(starts)
    while stack:
        for t in edges.get(stack.pop(), ()):
            if t not in seen:
                seen.add(t)
                stack.append(t)
    return seen


def _names(names: tuple[str, ...], limit: int = 8) -> str:
    """``['a', 'b', ...]``, shortened to ``limit`` names (with the count) for long lists."""
    if len(names) <= limit:
        return repr(list(names))
    return f"[{', '.join(map(repr, names[:limit]))}, ... ({len(names)} in all)]"


def validate(g: StateGraph) -> list[str]:
    """Raise :class:`GraphValidationError` for a definite mistake; return warning messages."""
    names = set(g.nodes)
    sources_ok = names | {START}
    targets_ok = names | {END}

    def check(name: str, ok: set[str], where: str) -> None:
        if name in ok:
            return
        if name == END and ok is sources_ok:
            raise GraphValidationError(f"{where}: END cannot be the source of an edge")
        if name == START and ok is targets_ok:
            raise GraphValidationError(f"{where}: START cannot be the target of an edge")
        raise GraphValidationError(
            f"{where}: unknown node {name!r}.{did_you_mean(name, ok)} "
            f"Known nodes: {', '.join(sorted(names)) or '(none)'}"
        )

    for s, t in g.edges:
        check(s, sources_ok, f"edge {s!r} -> {t!r}")
        check(t, targets_ok, f"edge {s!r} -> {t!r}")
    for srcs, t in g.joins:
        where = f"join {_names(srcs)} -> {t!r}"  # once per join: a join may have 50,000 sources
        for s in srcs:
            if s == START:
                raise GraphValidationError(f"{where}: START cannot be part of a join")
            check(s, names, where)
        check(t, targets_ok, where)
    for b in g.branches:
        rname = getattr(b.router, "__name__", repr(b.router))
        check(b.source, sources_ok, f"conditional edge from {b.source!r} (router {rname})")
        for t in b.targets or ():
            check(t, targets_ok, f"conditional edge from {b.source!r}: router {rname} declares target {t!r}, which")
    for s, weights in g.weighted:
        check(s, sources_ok, f"weighted edges from {s!r}")
        for t in weights:
            check(t, targets_ok, f"weighted edge {s!r} -> {t!r}")
    for n in g.nodes.values():
        for t in n.destinations or ():
            check(t, targets_ok, f"node {n.name!r}: destinations")
    for s, t, _ in getattr(g, "error_edges", ()):
        check(s, names, f"error edge {s!r} -> {t!r}")
        check(t, names, f"error edge {s!r} -> {t!r}")
    static = set(g.edges)
    for tx, members in getattr(g, "transactions", {}).items():
        for n in members:
            check(n, names, f"transaction {tx!r}")
        for a, b in itertools.pairwise(members):
            if (a, b) not in static:
                raise GraphValidationError(
                    f"transaction {tx!r}: its nodes must form a chain in the order given, but there is no edge "
                    f"{a!r} -> {b!r} (add_edge({a!r}, {b!r}), or list the nodes in the order they run)")

    if getattr(g, "loops", None):
        from agentgraph_nb.graph._loops import check_loops

        check_loops(g)
    has_entry = any(s == START for s, _ in g.edges) or any(b.source == START for b in g.branches) or any(
        s == START for s, _ in g.weighted
    )
    if not has_entry:
        hint = f" e.g. add_edge(START, {next(iter(g.nodes))!r})" if g.nodes else ""
        raise GraphValidationError(f"graph {g.name!r} has no entry point: add an edge from START{hint}")

    # -- warnings: reachability -------------------------------------------------------------------
    succ: dict[str, set[str]] = {n: set() for n in [START, *g.nodes]}
    dynamic: set[str] = set()
    for s, t in g.edges:
        succ[s].add(t)
    for srcs, t in g.joins:
        for s in srcs:
            succ[s].add(t)
    for b in g.branches:
        if b.targets is None:
            dynamic.add(b.source)
        else:
            succ[b.source].update(b.targets)
    for s, weights in g.weighted:
        succ[s].update(weights)
    for n in g.nodes.values():
        if n.destinations:
            succ[n.name].update(n.destinations)
    for s, t, _ in getattr(g, "error_edges", ()):
        succ[s].add(t)

    warnings: list[str] = []
    if not dynamic:
        seen = _reach({START}, succ)
        unreachable = [n for n in g.nodes if n not in seen]
        if unreachable:
            warnings.append(
                f"graph {g.name!r}: node(s) {', '.join(map(repr, unreachable))} cannot be reached from START "
                "(if a node reaches them with Command(goto=...), declare add_node(..., destinations=[...]))"
            )
    # a node can finish if it reaches END, a node without outgoing edges, or a dynamic router:
    # walk the edges backwards from those
    preds: dict[str, set[str]] = {}
    for src, ts in succ.items():
        for t in ts:
            preds.setdefault(t, set()).add(src)
    can_end = _reach({END} | dynamic | {n for n in g.nodes if not succ[n]}, preds)
    stuck = [n for n in g.nodes if n not in can_end]
    if stuck:
        warnings.append(
            f"graph {g.name!r}: node(s) {', '.join(map(repr, stuck))} have no path to END; "
            "a run that gets there only stops at the recursion limit"
        )
    return warnings
