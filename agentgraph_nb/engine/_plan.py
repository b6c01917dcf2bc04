"""The immutable plan a graph compiles to: integer node ids, successor tuples, joins, routers.

The hot loop reads these slots directly: no name lookups, no per-step allocation for the
common case of static edges.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentgraph_nb._callables import is_async_callable
from agentgraph_nb.constants import END, START
from agentgraph_nb.engine._algo import NOARG
from agentgraph_nb.engine._recover import setup_recovery
from agentgraph_nb.observe.metrics import NodeStats

if TYPE_CHECKING:
    from agentgraph_nb.state._schema import StateSchema
    from agentgraph_nb.types import RetryPolicy

__all__ = ["BranchDef", "GraphDef", "NodeDef", "PBranch", "PJoin", "PNode", "Plan"]


# -- what compile() hands the engine: plain data, no builder ------------------------------------------
@dataclass(frozen=True)
class NodeDef:
    """A node as the engine needs it: its function, retry policy, timeout and input builder."""

    name: str
    fn: Callable[..., Any] | None
    retry: RetryPolicy | None
    timeout: float | None
    make_input: Callable[[dict[str, Any]], Any]
    # error edge (add_error_edge): (exception types, handler node); compensation of a saga step
    catch: tuple[tuple[type[BaseException], ...], str] | None = None
    compensate: Callable[..., Any] | None = None
    transaction: tuple[str, int] | None = None  # (add_transaction's name, position in its chain)
    cache: Any = None  # a NodeCache (engine/_cache.py) when the node's results are cached
    # where the node runs under an executor beyond this process (add_node(..., resources=)):
    # {"num_cpus": 2, "num_gpus": 1, "memory": bytes, "resources": {"custom": 1}}, or None
    resources: dict[str, Any] | None = None


@dataclass(frozen=True)
class BranchDef:
    """A conditional edge: ``router(state)`` picks among ``targets`` (None: any node), through
    ``path_map`` when given."""

    source: str
    router: Callable[..., Any]
    targets: Sequence[str] | None
    path_map: dict[Hashable, str] | None


@dataclass(frozen=True)
class GraphDef:
    """A validated graph as plain data: what :class:`Plan` compiles. ``edges`` are
    ``(source, target)`` pairs, ``joins`` ``(sources, target)``, ``weighted``
    ``(source, {target: weight})``."""

    name: str
    schema: StateSchema
    nodes: Sequence[NodeDef]
    edges: Sequence[tuple[str, str]]
    joins: Sequence[tuple[tuple[str, ...], str]]
    branches: Sequence[BranchDef]
    weighted: Sequence[tuple[str, Mapping[str, float]]]
    state_version: int = 1


def _no_input(values: dict[str, Any]) -> Any:
    raise AssertionError("START takes no input")


class PBranch:
    """A conditional edge, compiled."""

    __slots__ = ("declared", "is_async", "name", "path_map", "router")

    def __init__(
        self, router: Callable[..., Any], declared: frozenset[str] | None, path_map: dict[Hashable, str] | None
    ) -> None:
        self.router = router
        self.declared = declared
        self.path_map = path_map
        self.is_async = is_async_callable(router)
        self.name = getattr(router, "__name__", None) or type(router).__name__


class PJoin:
    """A join: ``target`` runs once every source has run since it last ran."""

    __slots__ = ("index", "key", "sources", "target")

    def __init__(self, index: int, sources: tuple[str, ...], target: int) -> None:
        self.index = index
        self.sources = frozenset(sources)
        self.target = target  # node index, or -1 for END
        self.key = f"{'+'.join(sources)}"


class PNode:
    """A node, compiled. ``START`` compiles to a PNode with index -1 and no function."""

    __slots__ = (
        "branches",
        "cache",
        "fn",
        "index",
        "inline",
        "is_async",
        "joins",
        "make_input",
        "name",
        "recover",
        "resources",
        "retry",
        "simple",
        "static_next",
        "stats",
        "succ",
        "task",
        "timeout",
        "weighted",
    )

    def __init__(self, index: int, name: str, fn: Callable[..., Any] | None, retry: RetryPolicy | None,
                 timeout: float | None) -> None:
        self.index = index
        self.name = name
        self.fn = fn
        self.retry = retry
        self.timeout = timeout
        self.is_async = False  # set by Plan.refresh()
        self.inline = timeout is None
        self.succ: tuple[int, ...] = ()
        self.joins: tuple[PJoin, ...] = ()
        self.branches: tuple[PBranch, ...] = ()
        self.weighted: tuple[tuple[tuple[str, ...], list[float], float], ...] = ()
        self.static_next: list[tuple[PNode, Any]] = []
        self.simple = True  # only static successors: next tasks are static_next
        self.stats = NodeStats(name)
        self.task: tuple[PNode, Any] = (self, NOARG)
        # what the node receives, built from the state values (its input_schema's view, or the state)
        self.make_input: Callable[[dict[str, Any]], Any] = _no_input
        # error edges and sagas (engine/_recover.py): None for a node with neither, and not a handler
        self.recover: Any = None
        self.cache: Any = None  # a NodeCache: looked up before the node runs, stored after
        self.resources: dict[str, Any] | None = None  # add_node(..., resources=): placement by an executor

    def __repr__(self) -> str:
        return f"<node {self.name}>"


class Plan:
    """Everything the loop needs, frozen at compile time."""

    def __init__(self, g: GraphDef) -> None:
        self.name = g.name
        self.schema: StateSchema = g.schema
        self.state_version = g.state_version
        self.nodes: list[PNode] = [PNode(i, s.name, s.fn, s.retry, s.timeout) for i, s in enumerate(g.nodes)]
        for n, spec in zip(self.nodes, g.nodes):
            n.make_input = spec.make_input
            n.cache = spec.cache
            n.resources = spec.resources
        self.by_name: dict[str, PNode] = {n.name: n for n in self.nodes}
        # error edges and compensations (engine/_recover.py); False: a graph without either
        self.compensating = setup_recovery(self, g.nodes)
        self.start = PNode(-1, START, None, None, None)
        idx = {n.name: n.index for n in self.nodes}

        def node(name: str) -> PNode:
            return self.start if name == START else self.by_name[name]

        succ: dict[int, list[int]] = {}
        for s, t in g.edges:
            if t != END:
                succ.setdefault(node(s).index, []).append(idx[t])
        self.joins: list[PJoin] = []
        joins_of: dict[int, list[PJoin]] = {}
        for i, (srcs, t) in enumerate(g.joins):
            j = PJoin(i, srcs, -1 if t == END else idx[t])
            self.joins.append(j)
            for s in dict.fromkeys(srcs):
                joins_of.setdefault(idx[s], []).append(j)
        branches: dict[int, list[PBranch]] = {}
        for b in g.branches:
            declared = frozenset(b.targets) if b.targets is not None else None
            branches.setdefault(node(b.source).index, []).append(PBranch(b.router, declared, b.path_map))
        weighted: dict[int, list[Any]] = {}
        for s, weights in g.weighted:
            # zero weights are never picked; dropping them keeps the last slot a real choice
            live = {t: w for t, w in weights.items() if w > 0}
            names = tuple(live)
            cum = list(itertools.accumulate(live.values()))
            weighted.setdefault(node(s).index, []).append((names, cum, cum[-1]))
        self.joins_by_key = {j.key: j for j in self.joins}

        for n in [self.start, *self.nodes]:
            n.succ = tuple(sorted(set(succ.get(n.index, ()))))
            n.joins = tuple(joins_of.get(n.index, ()))
            n.branches = tuple(branches.get(n.index, ()))
            n.weighted = tuple(weighted.get(n.index, ()))
            n.static_next = [self.nodes[i].task for i in n.succ]
            n.simple = not (n.joins or n.branches or n.weighted)
        # nodes bound by name (the notebook's hot-reload proxies) may change sync <-> async
        self.dynamic = any(hasattr(type(n.fn), "is_async") for n in self.nodes) or any(
            hasattr(type(b.router), "is_async") for n in [self.start, *self.nodes] for b in n.branches
        )
        self.all_sync = True
        self.refresh()

    def refresh(self) -> bool:
        """Re-read which nodes are async (cheap; only needed when :attr:`dynamic`)."""
        for n in self.nodes:
            n.is_async = is_async_callable(n.fn)
            n.inline = not n.is_async and n.timeout is None
            for b in n.branches:
                b.is_async = is_async_callable(b.router)
        for b in self.start.branches:
            b.is_async = is_async_callable(b.router)
        self.all_sync = all(not n.is_async for n in self.nodes) and all(
            not b.is_async for n in [self.start, *self.nodes] for b in n.branches
        )
        return self.all_sync
