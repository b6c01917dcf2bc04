"""What error edges and sagas cost: ``python -m benchmarks.recover [--repeat N]``.

Prints µs per node of a 100-node chain of trivial sync nodes under ``invoke``, three ways, in
one interleaved run: LangGraph (the peer), ours with none of the features (the floor), and ours
with every node declaring a compensation and an error edge that never fires (what declaring
them costs while nothing fails); then µs per run of a 2-node graph whose first node fails and
is caught by an error edge, against LangGraph doing the same by hand (try/except in the node
and a router on a state flag).
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks._common import Config, chain, compare, inc, sync_batch, system


def _ours_chain(n: int, features: bool) -> Any:
    from agentgraph_nb import END, START, StateGraph

    g = StateGraph(dict)
    if features:
        g.add_node("handler", lambda s: None).add_edge("handler", END)
    for i in range(n):
        g.add_node(f"n{i}", inc, compensate=(lambda s: None) if features else None)
        if features:
            g.add_error_edge(f"n{i}", "handler")
    g.add_edge(START, "n0")
    for i in range(n - 1):
        g.add_edge(f"n{i}", f"n{i + 1}")
    g.add_edge(f"n{n - 1}", END)
    return g.compile(checkpointer=None)


def _fail(s: Any) -> Any:
    raise ConnectionError("down")


def _ours_caught() -> Any:
    from agentgraph_nb import END, START, StateGraph

    g = StateGraph(dict).add_node("fetch", _fail).add_node("fallback", lambda s: {"x": 1})
    g.add_edge(START, "fetch").add_edge("fallback", END).add_error_edge("fetch", "fallback")
    return g.compile(checkpointer=None)


def _lg_caught() -> Any:
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class S(TypedDict, total=False):
        x: int
        error: str

    def fetch(s: S) -> S:
        try:
            _fail(s)
        except ConnectionError as exc:
            return {"error": str(exc)}
        return {}

    g = StateGraph(S)
    g.add_node("fetch", fetch)
    g.add_node("fallback", lambda s: {"x": 1})
    g.add_edge(START, "fetch")
    g.add_conditional_edges("fetch", lambda s: "fallback" if s.get("error") else END, ["fallback", END])
    g.add_edge("fallback", END)
    return g.compile()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    cfg = Config(quick=False, repeat=args.repeat)
    n = 100
    lg, ours_sys = system("lg"), system("ours")
    calls = {
        "lg": lg.invoker(chain(lg, n), limit=n + 10),
        "floor": ours_sys.invoker(_ours_chain(n, False), limit=n + 10),
        "features": ours_sys.invoker(_ours_chain(n, True), limit=n + 10),
    }
    batches = {k: sync_batch(c, lambda: {"x": 0}) for k, c in calls.items()}
    t = compare(batches, cfg)
    us = {k: v / n * 1e6 for k, v in t.items()}
    print(f"100-node chain, µs per node: LangGraph {us['lg']:.2f}, ours {us['floor']:.2f} (floor), "
          f"ours with compensations and error edges declared {us['features']:.2f}")
    print(f"  declared features vs floor: {us['features'] / us['floor']:.3f}x; LangGraph / ours: "
          f"{us['lg'] / us['floor']:.1f}x (floor), {us['lg'] / us['features']:.1f}x (features)")
    ours, peer = _ours_caught(), _lg_caught()
    t = compare({"ours": sync_batch(ours.invoke, dict), "lg": sync_batch(peer.invoke, dict)}, cfg)
    print(f"a failure caught by an error edge, µs per run: ours {t['ours'] * 1e6:.1f}, LangGraph by hand "
          f"(try/except + router) {t['lg'] * 1e6:.1f} ({t['lg'] / t['ours']:.1f}x)")


if __name__ == "__main__":
    main()
