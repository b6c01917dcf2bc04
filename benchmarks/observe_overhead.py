"""What watching a batch costs: a 10,000-run batch of a 3-node graph with nothing attached,
then with a live timeline and a live dashboard attached (and each part alone).

    python benchmarks/observe_overhead.py                 # 10,000 runs, 5 rounds
    python benchmarks/observe_overhead.py --runs 2000 --rounds 3

Configurations: ``nothing``; ``listener`` (one listener that does nothing: what the engine
pays to build and deliver events); ``recorder`` (``app.record()``); ``timeline``, ``dashboard``
and ``both`` (live widgets; the timeline records too). They are interleaved round by round (the machine's load drifts) and the median and
the best of the rounds are printed, with the ratio to the bare batch and the number of
front-end updates per second the widgets sent. The widgets run without a kernel (their comm
messages go nowhere), which is also where their Python-side cost is.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, TypedDict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agentgraph_nb import END, START, StateGraph  # noqa: E402


class S(TypedDict, total=False):
    x: int


def build() -> Any:
    g = StateGraph(S, name="three")
    g.add_node("a", lambda s: {"x": s.get("x", 0) + 1})
    g.add_node("b", lambda s: {"x": s["x"] + 1})
    g.add_node("c", lambda s: {"x": s["x"] + 1})
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    return g.compile(checkpointer=None)


def attach(app: Any, what: str) -> list[Any]:
    from agentgraph_nb.ui.dashboard import Dashboard
    from agentgraph_nb.ui.timeline import Timeline

    made: list[Any] = []
    if what == "listener":
        app.listen(lambda event: None)
    if what in ("recorder",):
        app.record()
    if what in ("timeline", "both"):
        made.append(Timeline(app))
    if what in ("dashboard", "both"):
        made.append(Dashboard(app))
    return made


def detach(app: Any, made: list[Any]) -> None:
    for w in made:
        w.close()
    if app._recorder is not None:
        app._recorder.detach()
        app._recorder = None


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--configs",
        nargs="*",
        default=["nothing", "listener", "recorder", "timeline", "dashboard", "both"],
    )
    ap.add_argument("--max-concurrency", type=int, default=None)
    args = ap.parse_args()
    inputs = [{"x": i} for i in range(args.runs)]
    times: dict[str, list[float]] = {c: [] for c in args.configs}
    cpu: dict[str, list[float]] = {c: [] for c in args.configs}
    rates: dict[str, list[float]] = {c: [] for c in args.configs}
    app = build()
    app.batch(inputs[:500])  # warm up threads and imports
    # the first FigureWidget of a process costs ~1.5 s (plotly loads its validators): not timed
    detach(app, attach(app, "both"))
    for _ in range(args.rounds):
        for c in args.configs:
            app = build()
            made = attach(app, c)
            t, c0 = time.perf_counter(), time.process_time()
            app.batch(inputs, max_concurrency=args.max_concurrency)
            dt = time.perf_counter() - t
            cpu[c].append(time.process_time() - c0)
            sent = sum(w.updates_sent for w in made)
            times[c].append(dt)
            rates[c].append(sent / dt)
            detach(app, made)
    base = statistics.median(times[args.configs[0]])
    base_cpu = statistics.median(cpu[args.configs[0]])
    print(
        f"{args.runs:,} runs of a 3-node graph, batch(max_concurrency={args.max_concurrency}), "
        f"{args.rounds} rounds; wall and CPU (all threads) seconds"
    )
    print(
        f"{'attached':<12}{'wall med':>9}{'best':>8}{'x bare':>8}{'cpu med':>9}{'x bare':>8}{'updates/s':>11}"
    )
    for c in args.configs:
        med = statistics.median(times[c])
        cm = statistics.median(cpu[c])
        print(
            f"{c:<12}{med:>9.3f}{min(times[c]):>8.3f}{med / base:>8.2f}{cm:>9.3f}{cm / base_cpu:>8.2f}"
            f"{statistics.median(rates[c]):>11.1f}"
        )


if __name__ == "__main__":
    main()
