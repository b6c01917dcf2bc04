"""Synthetic graph descriptions of any size, for the GraphView tests and benchmarks.

Shaped like a big agent graph: stages of fan-out and fan-in, conditional loops back to an
earlier stage, weighted choices, joins and the odd dynamic router, from START to END.
"""

from __future__ import annotations

import random
from typing import Any

__all__ = ["synthetic_graph"]


def synthetic_graph(n: int, *, seed: int = 0, name: str = "synthetic") -> dict[str, Any]:
    """A deterministic ``app.to_json()``-style description with ``n`` nodes.

    Example:
        >>> g = synthetic_graph(50)
        >>> len(g["nodes"])
        50
    """
    if n < 1:
        raise ValueError(f"synthetic_graph needs n >= 1, got {n}")
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(n)]
    stages: list[list[str]] = []
    widest = max(6, int(n**0.5))
    i = 0
    while i < n:
        width = min(
            n - i, rng.choice((1, 2, rng.randint(1, widest), rng.randint(widest // 2, widest)))
        )
        stages.append(names[i : i + width])
        i += width

    edges: list[dict[str, str]] = [{"source": "__start__", "target": s} for s in stages[0]]
    joins: list[dict[str, Any]] = []
    branches: list[dict[str, Any]] = []
    weighted: list[dict[str, Any]] = []
    for si, stage in enumerate(stages[:-1]):
        nxt = stages[si + 1]
        first_edge, first_join = len(edges), len(joins)
        first_branch, first_weighted = len(branches), len(weighted)
        if len(stage) >= 2 and si % 5 == 3:
            joins.append({"sources": stage[:2], "target": nxt[0]})
            rest = stage[2:]
        else:
            rest = stage
        for node in rest:
            h = int(node[1:])
            if h % 7 == 3 and si > 0:
                back = rng.choice(stages[max(0, si - 3)])
                branches.append(
                    {
                        "source": node,
                        "router": f"route_{node}",
                        "router_target": f"synthetic:route_{node}",
                        "targets": [rng.choice(nxt), back],
                        "path_map": None,
                    }
                )
            elif h % 11 == 5 and len(nxt) >= 2:
                heavy, light = rng.sample(nxt, 2)
                weighted.append({"source": node, "weights": {heavy: 0.7, light: 0.3}})
            elif h % 97 == 42:
                branches.append(
                    {
                        "source": node,
                        "router": f"pick_{node}",
                        "router_target": f"synthetic:pick_{node}",
                        "targets": None,
                        "path_map": None,
                    }
                )
                edges.append({"source": node, "target": rng.choice(nxt)})
            else:
                for dst in sorted(set(rng.sample(nxt, min(len(nxt), rng.choice((1, 1, 2)))))):
                    edges.append({"source": node, "target": dst})
        # every node of the next stage gets an incoming edge
        fed = {e["target"] for e in edges[first_edge:]} | {j["target"] for j in joins[first_join:]}
        for b in branches[first_branch:]:
            fed.update(b["targets"] or ())
        for wt in weighted[first_weighted:]:
            fed.update(wt["weights"])
        for t in nxt:
            if t not in fed:
                edges.append({"source": rng.choice(stage), "target": t})
    edges.extend({"source": s, "target": "__end__"} for s in stages[-1])
    return {
        "format": "agentgraph_nb/graph",
        "version": 1,
        "name": name,
        "state": {"schema": "State", "keys": {"notes": {"type": "list[str]", "reducer": "add"}}},
        "nodes": [
            {"name": s, "target": f"synthetic:{s}", "async": False, "retry": None, "timeout": None}
            for s in names
        ],
        "edges": edges,
        "joins": joins,
        "branches": branches,
        "weighted": weighted,
    }
