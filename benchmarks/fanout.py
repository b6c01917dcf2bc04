"""(3) Fan-out to 100 branches whose writes meet in a list reducer
(``Annotated[list, operator.add]``): static edges and ``Send``; milliseconds per run."""

from __future__ import annotations

from typing import Any

from benchmarks._common import (
    Config,
    ListState,
    Row,
    System,
    async_batch,
    compare,
    sync_batch,
    systems,
    timed_row,
)

NAME = "fanout"
TITLE = "fan-out to 100 branches into a list reducer"

WIDTH = 100


def _branch(i: int, aio: bool) -> Any:
    if aio:
        async def f(s: Any) -> dict[str, Any]:
            return {"items": [i]}
    else:
        def f(s: Any) -> dict[str, Any]:
            return {"items": [i]}
    return f


def _worker(aio: bool) -> Any:
    if aio:
        async def work(p: Any) -> dict[str, Any]:
            return {"items": [p["i"]]}
    else:
        def work(p: Any) -> dict[str, Any]:
            return {"items": [p["i"]]}
    return work


def _noop(s: Any) -> None:
    return None


def static_fanout(s: System, width: int, aio: bool = False, state: Any = ListState, branch: Any = None) -> Any:
    """``START -> fan -> b0..b{width-1} -> join -> END``, compiled."""
    return s.compile(static_fanout_builder(s, width, aio, state, branch))


def static_fanout_builder(s: System, width: int, aio: bool = False, state: Any = ListState,
                          branch: Any = None) -> Any:
    g = s.graph(state)
    g.add_node("fan", _noop)
    for i in range(width):
        g.add_node(f"b{i}", (branch or _branch)(i, aio))
    g.add_node("join", _noop)
    g.add_edge(s.START, "fan")
    for i in range(width):
        g.add_edge("fan", f"b{i}")
        g.add_edge(f"b{i}", "join")
    g.add_edge("join", s.END)
    return g


def send_fanout(s: System, width: int, aio: bool = False) -> Any:
    """``START -> fan``; a router sends ``width`` payloads to ``work``; ``work -> join -> END``."""
    Send = s.Send

    def route(state: Any) -> list[Any]:
        return [Send("work", {"i": i}) for i in range(width)]

    g = s.graph(ListState)
    g.add_node("fan", _noop)
    g.add_node("work", _worker(aio))
    g.add_node("join", _noop)
    g.add_edge(s.START, "fan")
    g.add_conditional_edges("fan", route, ["work"])
    g.add_edge("work", "join")
    g.add_edge("join", s.END)
    return s.compile(g)


def run(cfg: Config) -> list[Row]:
    import asyncio

    rows: list[Row] = []
    for how, build in (("static edges", static_fanout), ("Send", send_fanout)):
        for aio in (False, True):
            batches = {}
            for s in systems():
                app = build(s, WIDTH, aio)
                call = s.invoker(app, aio=aio)
                out = asyncio.run(call({"items": []})) if aio else call({"items": []})
                assert sorted(out["items"]) == list(range(WIDTH)), f"{s.label} {how}: {out['items'][:5]}..."
                batches[s.key] = (async_batch if aio else sync_batch)(call, lambda: {"items": []})
            t = compare(batches, cfg)
            mode = "async nodes, ainvoke" if aio else "sync nodes, invoke"
            rows.append(timed_row(NAME, f"{WIDTH} branches, {how}, {mode}", "per run", "ms",
                                  t["ours"] * 1e3, t["lg"] * 1e3, min_ratio=10, target="≥10x"))
    return rows
