"""(10) Subgraphs: the engine's cost per node inside a subgraph against a top-level node (target
at most 2x) and against LangGraph's on the same nested graph (target at least 20x lower), the
cost of entering a subgraph, and the bytes a nested run's checkpoints take as its steps grow
(target: linear).

    python -m benchmarks --only subgraphs            # in the table with the other workloads
    python -m benchmarks.subgraphs [--quick] [--repeat N]   # this workload alone, printed
"""

from __future__ import annotations

import itertools
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import (
    ChainState,
    Config,
    Row,
    chain_builder,
    compare,
    inc,
    sync_batch,
    system,
    systems,
    timed_row,
)

NAME = "subgraphs"
TITLE = "nodes inside subgraphs; checkpoint bytes of nested runs"


def nested(sys_: Any, n: int, depth: int = 1, checkpointer: Any = None) -> Any:
    """``START -> sub -> END`` where ``sub`` is a chain of ``n`` nodes (``depth`` levels of such
    wrapping), every level over ``ChainState``."""
    app = sys_.compile(chain_builder(sys_, n, inc), None)
    for level in range(depth):
        g = sys_.graph(ChainState)
        g.add_node(f"sub{level}", app)
        g.add_edge(sys_.START, f"sub{level}")
        g.add_edge(f"sub{level}", sys_.END)
        app = sys_.compile(g, checkpointer if level == depth - 1 else None)
    return app


def _timings(cfg: Config, sizes: tuple[int, ...], depth: int) -> dict[str, float]:
    """Seconds per run of chains of each size, nested ``depth`` deep and at top level, for both
    systems, timed interleaved (keys ``"<system>/<nested|top>/<n>"``)."""
    batches: dict[str, Any] = {}
    for s in systems():
        for n in sizes:
            for kind in ("nested", "top"):
                app = nested(s, n, depth) if kind == "nested" else s.compile(chain_builder(s, n, inc))
                call = s.invoker(app, limit=n + 10)
                assert call({"x": 0})["x"] == n, f"{s.label}: {kind} chain of {n} did not run every node"
                batches[f"{s.key}/{kind}/{n}"] = sync_batch(call, lambda: {"x": 0})
    return compare(batches, cfg)


def checkpoint_bytes(steps: int, tmp: Path) -> int:
    """Bytes of every checkpoint and pending write a run of a ``steps``-node chain inside a
    subgraph stores (SQLite: the sum of its stored blobs and ids)."""
    ours = system("ours")
    path = tmp / f"subgraph-bytes-{steps}.db"
    path.unlink(missing_ok=True)
    app = nested(ours, steps, 1, checkpointer=f"sqlite:///{path}")
    app.invoke({"x": 0}, thread_id="t", recursion_limit=steps + 10)
    app.checkpointer.close()
    with sqlite3.connect(path) as db:
        cp = db.execute("SELECT COALESCE(SUM(LENGTH(metadata) + LENGTH(payload) + LENGTH(thread_id) + "
                        "LENGTH(checkpoint_id) + COALESCE(LENGTH(parent_id), 0)), 0) FROM checkpoints").fetchone()[0]
        wr = db.execute("SELECT COALESCE(SUM(LENGTH(payload) + LENGTH(thread_id) + LENGTH(checkpoint_id)), 0) "
                        "FROM writes").fetchone()[0]
    path.unlink(missing_ok=True)
    return int(cp + wr)


def run(cfg: Config) -> list[Row]:
    """Per node inside a subgraph is the marginal cost of a node (runs of ``small`` and ``large``
    nodes, the difference over the nodes added), so the one-time cost of entering the subgraph
    (a run of its own; measured on one-node chains) is a row of its own; the plain average over
    a ``small`` chain is shown too."""
    rows: list[Row] = []
    small, large = (10, 50) if cfg.quick else (10, 200)
    for depth in (1, 2):
        t = _timings(cfg, (1, small, large), depth)
        where = "a subgraph" if depth == 1 else "a subgraph of a subgraph"

        def marginal(sys_key: str, kind: str, t: dict[str, float] = t) -> float:
            return (t[f"{sys_key}/{kind}/{large}"] - t[f"{sys_key}/{kind}/{small}"]) / (large - small) * 1e6

        inside, top, lg_inside = marginal("ours", "nested"), marginal("ours", "top"), marginal("lg", "nested")
        rows.append(timed_row(
            NAME, f"node inside {where} vs a top-level node (invoke, {small}->{large} nodes)", "per node", "µs",
            inside, None, max_ours=2 * top, target=f"≤2x top level ({top:.2f} µs)", note=f"{inside / top:.2f}x top level",
        ))
        rows.append(timed_row(
            NAME, f"node inside {where} (invoke, {small}->{large} nodes)", "per node", "µs",
            inside, lg_inside, min_ratio=20, target="≥20x",
        ))
        enter = (t["ours/nested/1"] - t["ours/top/1"]) * 1e6  # one-node chains: the least noise
        lg_enter = (t["lg/nested/1"] - t["lg/top/1"]) * 1e6
        rows.append(timed_row(
            NAME, f"entering {where} ({depth} extra run{'s' if depth > 1 else ''} and node{'s' if depth > 1 else ''})",
            "per call", "µs", enter, lg_enter,
        ))
        avg = t[f"ours/nested/{small}"] / small * 1e6
        rows.append(timed_row(
            NAME, f"{small} nodes inside {where}, entry included (invoke)", "per node", "µs",
            avg, t[f"lg/nested/{small}"] / small * 1e6,
            note=f"{avg / (t[f'ours/top/{small}'] / small * 1e6):.2f}x a top-level chain of {small}",
        ))
    # bytes of a nested run's checkpoints against its steps: linear means a constant per step
    tmp = Path(tempfile.mkdtemp(prefix="agentgraph-bench-", dir=cfg.tmp))
    steps = (10, 20, 40) if cfg.quick else (10, 50, 100, 200)
    sizes_b = {k: checkpoint_bytes(k, tmp) for k in steps}
    per_step = [(sizes_b[b] - sizes_b[a]) / (b - a) for a, b in itertools.pairwise(steps)]
    linear = max(per_step) <= 1.25 * min(per_step)
    rows.append(Row(
        NAME, f"checkpoint bytes of a nested run, {' / '.join(map(str, steps))} steps", "bytes", "B",
        float(sizes_b[steps[-1]]), None, None, "linear in steps (bytes per added step constant within 25%)",
        linear, "bytes: " + ", ".join(f"{k} steps {v}" for k, v in sizes_b.items())
        + "; per added step: " + ", ".join(f"{x:.0f}" for x in per_step),
    ))
    return rows


def main(argv: list[str]) -> int:
    repeat = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else (3 if "--quick" in argv else 5)
    cfg = Config(quick="--quick" in argv, repeat=repeat)
    for r in run(cfg):
        mark = "" if r.passed is None else ("pass" if r.passed else "FAIL")
        lg = f"{r.lg:.2f}" if r.lg is not None else "-"
        ratio = f"{r.ratio:.1f}x" if r.ratio is not None else "-"
        print(f"{r.case:<66} {r.ours:>10.2f} {r.unit:<3} LangGraph {lg:>9} ratio {ratio:>7} "
              f"target {r.target or '-'}: {mark or '-'} {r.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
