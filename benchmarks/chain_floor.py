"""The per-node overhead of a plain 100-node chain (sync ``invoke`` and async ``ainvoke``), with no
LangGraph run beside it: quick enough to run on two trees in turn and compare a change's cost on
runs that use none of its features::

    PYTHONPATH=/path/to/tree python -m benchmarks.chain_floor LABEL

It uses only the API every version has (no caching, resources or lazy nodes)."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import sys
import time
from typing import Any, TypedDict


class S(TypedDict):
    x: int


def inc(s: dict[str, Any]) -> dict[str, Any]:
    return {"x": s["x"] + 1}


async def ainc(s: dict[str, Any]) -> dict[str, Any]:
    return {"x": s["x"] + 1}


def build(fn: Any, n: int = 100) -> Any:
    from agentgraph_nb import END, START, StateGraph

    g = StateGraph(S)
    names = [f"n{i}" for i in range(n)]
    for name in names:
        g.add_node(name, fn)
    g.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        g.add_edge(a, b)
    g.add_edge(names[-1], END)
    return g.compile(checkpointer=None)


def per_node(fn: Any, nodes: int, repeat: int = 7, min_time: float = 0.3) -> float:
    out = []
    for _ in range(repeat):
        k = 0
        t = time.perf_counter()
        while time.perf_counter() - t < min_time:
            fn()
            k += 1
        out.append((time.perf_counter() - t) / k / nodes * 1e6)
    return statistics.median(out)


def main() -> None:
    label = sys.argv[1] if len(sys.argv) > 1 else ""
    app, aapp = build(inc), build(ainc)
    sync = per_node(lambda: app.invoke({"x": 0}), 100)

    async def twenty() -> None:
        for _ in range(20):
            await aapp.ainvoke({"x": 0})

    asy = per_node(lambda: asyncio.run(twenty()), 100 * 20)
    print(f"{label}: sync {sync:.2f} µs/node, async {asy:.2f} µs/node")


if __name__ == "__main__":
    main()
