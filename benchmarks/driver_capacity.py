"""What one driver process carries: node executions and checkpoints per second with many runs at
once (``abatch``), locally and under the Ray executor, with no store and with PostgreSQL (fsync
on) and Redis. The engine of every run lives in the driver (one Python process), so these are
the ceilings ``docs/scaling.md`` extrapolates from.

    python -m benchmarks.driver_capacity [--runs 64] [--concurrency 32]

Starts throwaway PostgreSQL and Redis servers (tests/_servers.py; skipped when not installed) and a
two-node ``LocalRayCluster`` (nodes ask for a quarter CPU each, so each Ray node runs four at once;
8 worker processes are warmed up first).
On a small machine the servers, the Ray nodes and the driver share the same cores: the figures are
lower bounds for a driver with cores of its own. Each figure is the best of ``--repeat`` batches
(the configurations taking turns).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from typing import Any

from benchmarks.ray_exec import chain


def steps_per_s(app: Any, runs: int, concurrency: int, nodes: int, **kw: Any) -> tuple[float, float]:
    """``(node executions per second, the driver's CPU share)`` of ``runs`` runs of ``app`` (a
    chain of ``nodes``), at most ``concurrency`` at once, each on a fresh thread when the app has
    a store. The CPU share is the driver process's CPU seconds (all threads) per second: near 1.0,
    one core's worth, the driver is what bounds the rate."""
    tag = time.time_ns()

    async def batch() -> tuple[float, float]:
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                tid = f"cap-{tag}-{i}" if app.checkpointer is not None else None
                await app.ainvoke({"x": 0}, thread_id=tid, **kw)

        t, c = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(i) for i in range(runs)))
        wall = time.perf_counter() - t
        return runs * nodes / wall, (time.process_time() - c) / wall

    return asyncio.run(batch())


def best(configs: list[tuple[str, str, Any, dict[str, Any]]], runs: int, concurrency: int, nodes: int,
         repeat: int) -> list[tuple[str, str, tuple[float, float]]]:
    """The best of ``repeat`` batches of each configuration ``(where, store, app, invoke kwargs)``,
    the configurations taking turns (the shared machine's load drifts)."""
    for _, _, app, kw in configs:  # warm: connections, tables
        steps_per_s(app, max(2, runs // 8), concurrency, nodes, **kw)
    got: list[list[tuple[float, float]]] = [[] for _ in configs]
    for _ in range(repeat):
        for i, (_, _, app, kw) in enumerate(configs):
            got[i].append(steps_per_s(app, runs, concurrency, nodes, **kw))
    return [(where, store, max(g)) for (where, store, _, _), g in zip(configs, got)]


def warm_workers(ex: Any, app: Any, want: int, timeout: float = 120.0) -> None:
    """Run batches until ``want`` Ray worker processes have run a node (a Ray node starts its
    workers one at a time, seconds each on a small machine: not what is measured here)."""
    deadline = time.monotonic() + timeout
    while len(ex.workers) < want and time.monotonic() < deadline:
        steps_per_s(app, want * 2, want * 2, 1, executor=ex)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.driver_capacity", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--nodes", type=int, default=10, help="nodes per run (a chain)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.pop("RAY_ADDRESS", None)
    from tests._servers import PostgresServer, RedisServer, ServerUnavailableError

    servers: list[Any] = []
    stores: dict[str, str | None] = {"no store": None}
    for name, cls, kw in (("PostgreSQL", PostgresServer, {"durable": True}), ("Redis", RedisServer, {})):
        try:
            srv = cls(**kw)
        except ServerUnavailableError as exc:
            print(f"{name}: not measured ({exc})", file=sys.stderr)
            continue
        servers.append(srv)
        stores[name] = srv.url
    n, conc = args.nodes, args.concurrency
    rows: list[tuple[str, str, tuple[float, float]]] = []
    try:
        local = [("local nodes", store, chain(n, checkpointer=url), {} if url is None else {"durability": "sync"})
                 for store, url in stores.items()]
        rows += best(local, args.runs, conc, n, args.repeat)
        import ray
        from ray import cloudpickle

        from agentgraph_nb.distributed import LocalRayCluster, RayExecutor

        cloudpickle.register_pickle_by_value(sys.modules["benchmarks.ray_exec"])
        with LocalRayCluster(2, num_cpus=1) as cluster:
            ray.init(address=cluster.address, _node_ip_address="127.0.0.1", logging_level=logging.ERROR,
                     log_to_driver=False)
            try:
                ex = RayExecutor(address=cluster.address, default_resources={"num_cpus": 0.25})
                warm_workers(ex, chain(1), 8)
                on_ray = [("Ray executor, 2 nodes", store, chain(n, checkpointer=url),
                           {"executor": ex} if url is None else {"executor": ex, "durability": "sync"})
                          for store, url in stores.items()]
                rows += best(on_ray, args.runs, conc, n, args.repeat)
            finally:
                ray.shutdown()
    finally:
        for srv in servers:
            srv.close()
    print(f"One driver process, {args.runs} runs of a {n}-node chain, {conc} at once (ainvoke), "
          f"best of {args.repeat}; {os.cpu_count()} CPUs shared by everything\n")
    print("| nodes run by | state | node executions/s | µs per node (1 / rate) | driver CPU (cores) |\n"
          "|---|---|---:|---:|---:|")
    for where, store, (rate, share) in rows:
        print(f"| {where} | {store} | {rate:,.0f} | {1e6 / rate:,.0f} | {share:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
