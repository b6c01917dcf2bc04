"""(1) A chain of trivial nodes: microseconds per node, sync nodes under ``invoke`` and async
nodes under ``ainvoke``."""

from __future__ import annotations

from benchmarks._common import (
    Config,
    Row,
    ainc,
    async_batch,
    chain,
    compare,
    inc,
    sync_batch,
    systems,
    timed_row,
)

NAME = "chain"
TITLE = "chain of trivial nodes"


def run(cfg: Config) -> list[Row]:
    rows: list[Row] = []
    sizes = (10, 100) if cfg.quick else (10, 100, 1000)
    for kind in ("sync", "async"):
        for n in sizes:
            batches = {}
            for s in systems():
                app = chain(s, n, ainc if kind == "async" else inc)
                call = s.invoker(app, aio=kind == "async", limit=n + 10)
                make = lambda: {"x": 0}  # noqa: E731
                batches[s.key] = (async_batch if kind == "async" else sync_batch)(call, make)
                out = _check(call, kind)
                assert out == n, f"{s.label} chain of {n} returned x={out}"
            t = compare(batches, cfg, min_time=cfg.min_time if n < 1000 else cfg.min_time * 2)
            rows.append(timed_row(
                NAME, f"{n} nodes, {kind} ({'ainvoke' if kind == 'async' else 'invoke'})", "per node", "µs",
                t["ours"] / n * 1e6, t["lg"] / n * 1e6,
                min_ratio=20, max_ours=5.0, target="≥20x and ≤5 µs",
            ))
    return rows


def _check(call, kind: str) -> int:
    import asyncio

    if kind == "async":
        return asyncio.run(call({"x": 0}))["x"]
    return call({"x": 0})["x"]
