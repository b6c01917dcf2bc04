"""For-each over 1,000 items: ``add_foreach`` against the same work as a ``Send`` fan-out with a
join (ours and LangGraph's) and against the floor (a list comprehension in one node).

    python -m benchmarks.loops            # prints the table and the ratios
    python -m benchmarks --only loops     # as one workload of the suite

The item function is trivial (``x * 2``), so the figures are the loop's own overhead per item.
"""

from __future__ import annotations

import operator
import sys
from typing import Annotated, Any, TypedDict

from benchmarks._common import Config, Row, System, compare, sync_batch, system, systems, timed_row

NAME = "loops"
TITLE = "for-each over 1,000 items: add_foreach vs Send fan-out + join"

N = 1000


class LoopState(TypedDict, total=False):
    items: list[int]
    results: Annotated[list[int], operator.add]


def double(x: int) -> int:
    return x * 2


def _noop(s: Any) -> None:
    return None


def foreach_app(s: System, max_concurrency: int) -> Any:
    g = s.graph(LoopState)
    g.add_foreach("each", double, over="items", into="results", max_concurrency=max_concurrency)
    g.add_edge(s.START, "each").add_edge("each", s.END)
    return s.compile(g)


def send_app(s: System) -> Any:
    """``START -> fan``; a router sends one payload per item to ``work``; ``work -> join -> END``.
    (Merged in emission order by both engines, so the results come in input order too.)"""
    Send = s.Send

    def route(state: Any) -> list[Any]:
        return [Send("work", {"x": x}) for x in state["items"]]

    def work(p: Any) -> dict[str, Any]:
        return {"results": [double(p["x"])]}

    g = s.graph(LoopState)
    g.add_node("fan", _noop)
    g.add_node("work", work)
    g.add_node("join", _noop)
    g.add_edge(s.START, "fan")
    g.add_conditional_edges("fan", route, ["work"])
    g.add_edge("work", "join")
    g.add_edge("join", s.END)
    return s.compile(g)


def floor_app(s: System) -> Any:
    g = s.graph(LoopState)
    g.add_node("each", lambda st: {"results": [double(x) for x in st["items"]]})
    g.add_edge(s.START, "each").add_edge("each", s.END)
    return s.compile(g)


def measure(cfg: Config) -> dict[str, float]:
    """Seconds per run of each case, repetitions interleaved."""
    ours = system("ours")
    lg = systems()[1]
    apps = {
        "floor (one node, list comprehension)": floor_app(ours),
        "add_foreach, max_concurrency=1": foreach_app(ours, 1),
        "add_foreach, max_concurrency=4": foreach_app(ours, 4),
        "Send fan-out + join (agentgraph_nb)": send_app(ours),
        "Send fan-out + join (LangGraph)": send_app(lg),
    }
    want = [x * 2 for x in range(N)]
    batches = {}
    for label, app in apps.items():
        call = (lg if "LangGraph" in label else ours).invoker(app)
        out = call({"items": list(range(N))})
        assert out["results"] == want, f"{label}: {out['results'][:5]}..."
        batches[label] = sync_batch(call, lambda: {"items": list(range(N))})
    return compare(batches, cfg)


def run(cfg: Config) -> list[Row]:
    t = measure(cfg)
    lg = t["Send fan-out + join (LangGraph)"]
    return [
        timed_row(NAME, f"{N} items, add_foreach max_concurrency={k}, sync fn, invoke", "per run", "ms",
                  t[f"add_foreach, max_concurrency={k}"] * 1e3, lg * 1e3,
                  note=f"LangGraph: Send fan-out + join; floor {t['floor (one node, list comprehension)'] * 1e3:.2f} ms")
        for k in (1, 4)
    ]


def main(argv: list[str]) -> int:
    cfg = Config(quick="--quick" in argv, repeat=3 if "--quick" in argv else 5)
    t = measure(cfg)
    floor = t["floor (one node, list comprehension)"]
    ours_send = t["Send fan-out + join (agentgraph_nb)"]
    lg_send = t["Send fan-out + join (LangGraph)"]
    print(f"for-each over {N} items (x * 2), sync, invoke(); median of {cfg.repeat} interleaved repetitions")
    print(f"{'case':42} {'ms/run':>9} {'us/item':>8} {'vs floor':>9} {'vs our Send':>12} {'vs LG Send':>11}")
    for label, sec in t.items():
        print(f"{label:42} {sec * 1e3:9.2f} {sec * 1e6 / N:8.2f} {sec / floor:8.1f}x "
              f"{ours_send / sec:11.2f}x {lg_send / sec:10.2f}x")
    print("(vs floor: times slower than the floor; vs ... Send: times faster than that fan-out)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
