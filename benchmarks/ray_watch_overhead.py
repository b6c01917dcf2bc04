"""What the Dashboard's live worker panel costs a run on Ray: ``RayExecutor.watch()`` (each node
execution reports its start from the worker) against the same executor not watching, and the
floor under both, a bare Ray task round trip, on a local two-node cluster (1 CPU each).

    RAY_AUTH_MODE=disabled python benchmarks/ray_watch_overhead.py            # 20 nodes x 10 runs, 5 rounds
    RAY_AUTH_MODE=disabled python benchmarks/ray_watch_overhead.py --runs 5 --rounds 3

A 20-node chain runs sequentially (one Ray task at a time: the per-node round trip, not
throughput). Configurations are interleaved round by round (the machine's load drifts); the
median time per node of each is printed, and the extra of watching over not watching.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, TypedDict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from agentgraph_nb import END, START, StateGraph  # noqa: E402

CONFIGS = ("ray_task", "executor", "executor_watched")


class S(TypedDict, total=False):
    x: int


def build(n: int) -> Any:
    g = StateGraph(S, name="chain")
    prev = START
    for i in range(n):
        g.add_node(f"n{i}", lambda s: {"x": s.get("x", 0) + 1})
        g.add_edge(prev, f"n{i}")
        prev = f"n{i}"
    g.add_edge(prev, END)
    return g.compile(checkpointer=None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    import ray

    from agentgraph_nb.distributed import LocalRayCluster, RayExecutor

    with LocalRayCluster(2, num_cpus=1) as cluster:
        ray.init(address=cluster.address, _node_ip_address="127.0.0.1", logging_level="ERROR", log_to_driver=False)
        try:
            app = build(a.nodes)
            plain, watched = RayExecutor(address=cluster.address), RayExecutor(address=cluster.address).watch()

            @ray.remote
            def bare(x: int) -> int:
                return x + 1

            def one(config: str) -> float:
                t = time.perf_counter()
                for _ in range(a.runs):
                    if config == "ray_task":
                        for i in range(a.nodes):
                            ray.get(bare.remote(i))
                    else:
                        app.invoke({}, executor=plain if config == "executor" else watched)
                return (time.perf_counter() - t) / (a.runs * a.nodes)

            for config in CONFIGS:  # warm: worker processes up, functions in the object store
                one(config)
            per: dict[str, list[float]] = {c: [] for c in CONFIGS}
            for _ in range(a.rounds):
                for config in CONFIGS:
                    per[config].append(one(config))
            med = {c: statistics.median(v) for c, v in per.items()}
            print(f"{a.nodes}-node chain x {a.runs} runs, {a.rounds} rounds, median per node:")
            for c in CONFIGS:
                extra = "" if c == "ray_task" else f"  ({med[c] / med['ray_task']:.2f}x the bare task)"
                print(f"  {c:18s} {med[c] * 1e3:8.3f} ms{extra}")
            print(f"  watching adds {(med['executor_watched'] - med['executor']) * 1e6:+.0f} µs per node")
            watched.unwatch()
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
