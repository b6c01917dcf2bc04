"""Node caching: what a memory-cache hit costs, side by side with running a trivial node and
with the same chain without caching, and with LangGraph's ``InMemoryCache`` when installed.

``python -m benchmarks.cache [--nodes 100] [--repeat 7]`` prints microseconds per node (median
of the repeats) for a chain of ``--nodes`` nodes:

- no cache: the plain chain (today's per-node overhead, the floor);
- cached, all hits: every node has ``CachePolicy()`` and its result is in the memory cache;
- cached, all misses: the same with the cache cleared before each run (lookup + run + store);
- the lookup alone: ``NodeCache.lookup`` on a hit (key digest + store read + counters);
- LangGraph: the same chain with ``cache_policy=CachePolicy()`` and ``InMemoryCache``, all hits.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from typing import Any, TypedDict


class S(TypedDict, total=False):
    x: int
    q: str


def inc(s: dict[str, Any]) -> dict[str, Any]:
    return {"x": s["x"] + 1}


def _ours(n: int, cached: bool) -> Any:
    from agentgraph_nb import END, START, CachePolicy, StateGraph

    g = StateGraph(S)
    names = [f"n{i}" for i in range(n)]
    for name in names:
        g.add_node(name, inc, cache=CachePolicy() if cached else None)
    g.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        g.add_edge(a, b)
    g.add_edge(names[-1], END)
    return g.compile(checkpointer=None, cache="memory" if cached else False)


def _lg(n: int) -> Any:
    from langgraph.cache.memory import InMemoryCache
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import CachePolicy

    g = StateGraph(S)
    names = [f"n{i}" for i in range(n)]
    for name in names:
        g.add_node(name, inc, cache_policy=CachePolicy())
    g.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        g.add_edge(a, b)
    g.add_edge(names[-1], END)
    return g.compile(cache=InMemoryCache())


def _per_node(fn: Any, n: int, repeat: int, min_time: float = 0.2) -> float:
    fn()  # warm (and fill the cache)
    out = []
    for _ in range(repeat):
        k = 0
        t0 = time.perf_counter()
        while True:
            fn()
            k += 1
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        out.append(dt / k / n * 1e6)
    return statistics.median(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cache", description=__doc__)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args(argv)
    n, rep = a.nodes, a.repeat
    plain = _ours(n, False)
    cached = _ours(n, True)
    missing = _ours(n, True)
    inp = {"x": 0, "q": "what is the capital of Norway?"}
    assert plain.invoke(inp)["x"] == n and cached.invoke(inp)["x"] == n

    floor = _per_node(lambda: plain.invoke(inp), n, rep)
    hit = _per_node(lambda: cached.invoke(inp), n, rep)
    hits = cached.metrics.node("n0").cache_hits
    assert hits > 0, "the cached chain never hit"

    def miss_run() -> None:
        missing.clear_cache()
        missing.invoke(inp)

    miss = _per_node(miss_run, n, rep)

    node = cached.plan.by_name["n0"]
    run = type("R", (), {"emit": None})()
    state = {"x": 0, "q": inp["q"]}
    lookup = _per_node(lambda: [node.cache.lookup(run, node, state, 1, 0) for _ in range(1000)], 1000, rep)

    print(f"chain of {n} nodes, sync invoke, µs per node (median of {rep})")
    print(f"  {'no cache (floor)':<34}{floor:8.2f}")
    print(f"  {'cached, all hits':<34}{hit:8.2f}   ({hit - floor:+.2f} vs floor)")
    print(f"  {'cached, all misses':<34}{miss:8.2f}   ({miss - floor:+.2f} vs floor)")
    print(f"  {'lookup alone (a hit)':<34}{lookup:8.2f}   (target: a memory hit <= 5 µs)")
    try:
        lg = _lg(n)
    except ImportError:
        print("  LangGraph: not installed")
        return
    assert lg.invoke(inp)["x"] == n
    lgt = _per_node(lambda: lg.invoke(inp), n, rep)
    print(f"  {'LangGraph InMemoryCache, all hits':<34}{lgt:8.2f}   (ours {lgt / hit:.1f}x faster)")


if __name__ == "__main__":
    main()
