"""(2) A 3-node graph invoked in a loop: runs per second."""

from __future__ import annotations

from benchmarks._common import Config, Row, chain, compare, sync_batch, systems, timed_row

NAME = "runs"
TITLE = "3-node graph, runs per second"


def run(cfg: Config) -> list[Row]:
    batches = {}
    for s in systems():
        app = chain(s, 3)
        assert app.invoke({"x": 0})["x"] == 3
        batches[s.key] = sync_batch(s.invoker(app), lambda: {"x": 0})
    t = compare(batches, cfg, min_time=cfg.min_time * 2)
    return [timed_row(NAME, "3 nodes, invoke() in a loop", "runs per second", "runs/s",
                      1 / t["ours"], 1 / t["lg"], higher_better=True, min_ratio=20, target="≥20x")]
