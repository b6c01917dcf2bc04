"""The functional API against LangGraph's: one entrypoint that runs 10 tasks side by side.

    python -m benchmarks.functional            # about 20 s

Per invoke: the floor (the same 10 trivial functions through a bare ThreadPoolExecutor, which
is what any concurrent task runner pays at least), agentgraph_nb's ``@entrypoint``/``@task`` and
LangGraph's, each without a checkpointer, with the in-memory one (a new thread per call, every
task result kept), and with SQLite (agentgraph_nb's file store vs LangGraph's ``SqliteSaver``
when ``langgraph-checkpoint-sqlite`` is installed). Medians of interleaved rounds; prints the
ratio LangGraph / agentgraph_nb (above 1: we are faster) and ours against the floor.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

N_TASKS = 10
ROUNDS = 7
CALLS = 60


def _work(i: int) -> int:
    return i * 2


def ours(checkpointer: Any) -> Callable[[int], Any]:
    from agentgraph_nb import entrypoint, task

    @task
    def double(i: int) -> int:
        return _work(i)

    @entrypoint(checkpointer=checkpointer)
    def flow(n: int) -> int:
        return sum(f.result() for f in [double(i) for i in range(n)])

    def call(k: int) -> Any:
        return flow.invoke(N_TASKS, thread_id=f"t{k}") if checkpointer is not None else flow.invoke(N_TASKS)

    return call


def theirs(checkpointer: Any) -> Callable[[int], Any]:
    from langgraph.func import entrypoint, task

    @task
    def double(i: int) -> int:
        return _work(i)

    @entrypoint(checkpointer=checkpointer)
    def flow(n: int) -> int:
        return sum(f.result() for f in [double(i) for i in range(n)])

    def call(k: int) -> Any:
        return flow.invoke(N_TASKS, {"configurable": {"thread_id": f"t{k}"}})

    return call


def floor() -> Callable[[int], Any]:
    pool = ThreadPoolExecutor(max_workers=N_TASKS)

    def call(k: int) -> Any:
        return sum(f.result() for f in [pool.submit(_work, i) for i in range(N_TASKS)])

    return call


def _time(fn: Callable[[int], Any], start: int) -> float:
    t0 = time.perf_counter()
    for k in range(start, start + CALLS):
        fn(k)
    return (time.perf_counter() - t0) / CALLS


def measure(runners: dict[str, Callable[[int], Any]]) -> dict[str, float]:
    for fn in runners.values():  # warm up (imports, pools)
        assert fn(10_000_000) == sum(_work(i) for i in range(N_TASKS))
    samples: dict[str, list[float]] = {k: [] for k in runners}
    for r in range(ROUNDS):
        for name, fn in runners.items():  # interleaved: drift of a shared machine hits all alike
            samples[name].append(_time(fn, r * CALLS))
    return {k: statistics.median(v) for k, v in samples.items()}


def main() -> int:
    from langgraph.checkpoint.memory import InMemorySaver

    tmp = Path(tempfile.mkdtemp())
    cases: list[tuple[str, Any, Any]] = [
        ("no checkpointer", None, None),
        ("memory", "memory", InMemorySaver()),
    ]
    try:
        import sqlite3

        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(tmp / "lg.db", check_same_thread=False)
        cases.append(("sqlite", f"sqlite:///{tmp / 'ours.db'}", SqliteSaver(conn)))
    except ImportError:
        print("(langgraph-checkpoint-sqlite not installed: no SQLite comparison)")
    print(f"one entrypoint, {N_TASKS} tasks side by side; per invoke, median of {ROUNDS} rounds x {CALLS} calls")
    print(f"{'case':<16} {'floor':>10} {'agentgraph_nb':>14} {'LangGraph':>11} {'LG/ours':>8} {'ours/floor':>11}")
    for label, our_cp, their_cp in cases:
        got = measure({"floor": floor(), "ours": ours(our_cp), "theirs": theirs(their_cp)})
        print(f"{label:<16} {got['floor'] * 1e6:>8.0f}us {got['ours'] * 1e6:>12.0f}us {got['theirs'] * 1e6:>9.0f}us "
              f"{got['theirs'] / got['ours']:>7.2f}x {got['ours'] / got['floor']:>10.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
