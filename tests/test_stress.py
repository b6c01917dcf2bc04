"""Stress and fault-injection tests (bounded: each finishes in seconds)."""

from __future__ import annotations

import asyncio
import operator
import random
import threading
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import END, START, RetryPolicy, StateGraph


class S(TypedDict, total=False):
    x: int
    log: Annotated[list[str], operator.add]


def three_node_async() -> Any:
    g = StateGraph(S)

    async def step(s: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.001)
        return {"x": s.get("x", 0) + 1}

    for n in ("a", "b", "c"):
        g.add_node(n, step)
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    return g.compile(checkpointer=None)


def test_10000_concurrent_ainvoke_runs() -> None:
    app = three_node_async()

    async def main() -> list[dict[str, Any]]:
        return await asyncio.gather(*(app.ainvoke({"x": i}) for i in range(10_000)))

    results = asyncio.run(main())
    assert [r["x"] for r in results] == [i + 3 for i in range(10_000)]
    assert app.metrics.summary()["runs_completed"] == 10_000
    assert app.metrics.node("b").count == 10_000


def test_10000_node_graph_runs_and_checkpoints() -> None:
    g = StateGraph(S)
    prev = START
    for i in range(10_000):
        g.add_node(f"n{i}", lambda s: {"x": s["x"] + 1})
        g.add_edge(prev, f"n{i}")
        prev = f"n{i}"
    app = g.compile()
    assert app.invoke({"x": 0}, recursion_limit=20_000)["x"] == 10_000
    # checkpointed run: one checkpoint per superstep plus the input
    assert app.invoke({"x": 0}, thread_id="big", recursion_limit=20_000)["x"] == 10_000
    assert app.get_state("big").step == 10_000


def test_10000_node_fan_out() -> None:
    g = StateGraph(S)
    g.add_node("src", lambda s: None)
    g.add_edge(START, "src")
    for i in range(10_000):
        g.add_node(f"b{i}", lambda s, i=i: {"log": [str(i)]})
        g.add_edge("src", f"b{i}")
    out = g.compile(checkpointer=None).invoke({})
    assert out["log"] == [str(i) for i in range(10_000)]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_fault_injection_random_failures_are_retried(mode: str) -> None:
    rng = random.Random(1234)
    lock = threading.Lock()
    injected = {"n": 0}

    def maybe_fail() -> None:
        with lock:
            fail = rng.random() < 0.3
            if fail:
                injected["n"] += 1
        if fail:
            raise ConnectionError("injected")

    if mode == "sync":
        def node(s: dict[str, Any]) -> dict[str, Any]:
            maybe_fail()
            return {"log": ["ok"]}
    else:
        async def node(s: dict[str, Any]) -> dict[str, Any]:  # type: ignore[misc]
            await asyncio.sleep(0)
            maybe_fail()
            return {"log": ["ok"]}

    g = StateGraph(S)
    pol = RetryPolicy(max_attempts=50, initial_interval=0, jitter=False)
    for n in ("a", "b", "c", "d"):
        g.add_node(n, node, retry=pol)
    g.add_edge(START, "a").add_edge("a", "b").add_edge("a", "c").add_edge(["b", "c"], "d")
    app = g.compile(checkpointer=None)
    if mode == "sync":
        results = app.batch([{}] * 200, max_concurrency=8)
    else:
        results = asyncio.run(app.abatch([{}] * 200, max_concurrency=50))
    assert all(r["log"] == ["ok"] * 4 for r in results)
    retries = sum(app.metrics.node(n).retries for n in "abcd")
    assert retries == injected["n"] > 0
    assert sum(app.metrics.node(n).count for n in "abcd") == 800
