"""Sagas (``add_node(..., compensate=fn)``): when a run fails for good, the compensations of the
steps that completed run newest first, once each; a failing compensation does not stop the
others (CompensationError); progress is durable: a process killed while compensating leaves a
thread that the next run on it finishes compensating (real subprocess, real SQLite file)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, TypedDict

import pytest

from agentgraph_nb import END, START, CompensationError, GraphValidationError, StateGraph


class S(TypedDict, total=False):
    order: str
    reserved: bool
    charged: int
    fail_at: str


def _saga(log: list[str], *, fail: str = "ship", refund_fails: bool = False) -> StateGraph:
    def step(name: str, update: dict[str, Any]) -> Any:
        def fn(s: S) -> dict[str, Any]:
            log.append(name)
            if name == fail:
                raise RuntimeError(f"{name} failed")
            return update
        fn.__name__ = name
        return fn

    def release(s: S) -> None:
        log.append(f"release(reserved={s.get('reserved')})")

    def refund(s: S) -> None:
        log.append(f"refund({s.get('charged')})")
        if refund_fails:
            raise ConnectionError("bank down")

    g = StateGraph(S, name="order")
    g.add_node("reserve", step("reserve", {"reserved": True}), compensate=release)
    g.add_node("charge", step("charge", {"charged": 42}), compensate=refund)
    g.add_node("notify", step("notify", {}))  # no compensation: nothing to undo
    g.add_node("ship", step("ship", {}))
    g.add_edge(START, "reserve").add_edge("reserve", "charge").add_edge("charge", "notify")
    g.add_edge("notify", "ship").add_edge("ship", END)
    return g


@pytest.mark.parametrize("thread", [None, "t1"])
def test_compensations_run_newest_first_with_the_current_state_and_the_error_is_raised(thread: str | None) -> None:
    log: list[str] = []
    app = _saga(log).compile()
    with pytest.raises(RuntimeError, match="ship failed") as info:
        app.invoke({"order": "o1"}, thread_id=thread)
    assert log == ["reserve", "charge", "notify", "ship", "refund(42)", "release(reserved=True)"]
    notes = getattr(info.value, "__notes__", [])
    assert any("compensations ran" in n and "'charge', 'reserve'" in n for n in notes)
    assert app.metrics.node("charge").compensations == 1
    assert app.metrics.node("reserve").compensations == 1


def test_a_failed_saga_on_a_thread_ends_finished_and_is_compensated_once() -> None:
    log: list[str] = []
    app = _saga(log).compile()
    with pytest.raises(RuntimeError):
        app.invoke({"order": "o1"}, thread_id="t1")
    snap = app.get_state("t1")
    assert snap.next == ()
    assert snap.metadata["source"] == "compensate"
    assert snap.metadata["compensated"] == ["charge", "reserve"]
    assert "ship failed" in snap.metadata["error"]
    log.clear()
    # resuming the finished thread runs nothing and compensates nothing again
    assert app.invoke(None, thread_id="t1")["charged"] == 42
    assert log == []


def test_only_this_runs_steps_are_compensated() -> None:
    log: list[str] = []
    app = _saga(log, fail="nothing").compile()
    app.invoke({"order": "o1"}, thread_id="t1")  # a first run finishes
    app2 = _saga(log, fail="ship").compile(checkpointer=app.checkpointer)
    log.clear()
    with pytest.raises(RuntimeError):
        app2.invoke({"order": "o2"}, thread_id="t1")
    assert log == ["reserve", "charge", "notify", "ship", "refund(42)", "release(reserved=True)"]


def test_a_failing_compensation_does_not_stop_the_others() -> None:
    log: list[str] = []
    app = _saga(log, refund_fails=True).compile()
    with pytest.raises(CompensationError) as info:
        app.invoke({"order": "o1"}, thread_id="t1")
    err = info.value
    assert log[-2:] == ["refund(42)", "release(reserved=True)"]
    assert err.failed == [("charge", "ConnectionError: bank down")]
    assert err.compensated == ["reserve"]
    assert isinstance(err.__cause__, RuntimeError) and "ship failed" in str(err.__cause__)
    assert "'charge': ConnectionError: bank down" in str(err) and "thread 't1'" in str(err)
    assert app.get_state("t1").metadata["compensation_failed"] == [["charge", "ConnectionError: bank down"]]


def test_compensate_events_and_stream() -> None:
    log: list[str] = []
    app = _saga(log).compile()
    events: list[Any] = []
    with pytest.raises(RuntimeError):
        for _ in app.stream({"order": "o"}, thread_id="t", mode="events", listeners=[events.append]):
            pass
    comp = [e for e in events if e.kind == "compensate"]
    assert [(e.node, e.data["fn"], e.data["ok"]) for e in comp] == [("charge", "refund", True),
                                                                     ("reserve", "release", True)]
    assert all(e.duration >= 0 for e in comp)


def test_async_compensations_and_parallel_siblings() -> None:
    log: list[str] = []

    async def a(s: S) -> dict[str, Any]:
        log.append("a")
        return {"reserved": True}

    async def b(s: S) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        log.append("b")
        raise RuntimeError("b failed")

    async def undo_a(s: S) -> None:
        await asyncio.sleep(0)
        log.append("undo_a")

    g = StateGraph(S).add_node("a", a, compensate=undo_a).add_node("b", b)
    g.add_edge(START, "a").add_edge(START, "b")
    app = g.compile()
    with pytest.raises(RuntimeError, match="b failed"):
        asyncio.run(app.ainvoke({}, thread_id="p"))
    # the sibling that completed in the failed step is compensated too
    assert log == ["a", "b", "undo_a"]
    log.clear()
    with pytest.raises(RuntimeError, match="b failed"):
        app.invoke({})  # sync driver, async compensation
    assert log == ["a", "b", "undo_a"]


def test_a_caught_failure_compensates_nothing() -> None:
    log: list[str] = []
    g = _saga(log)
    g.add_node("cancel", lambda s: {"order": "cancelled"})
    g.add_error_edge("ship", "cancel")
    out = g.compile().invoke({"order": "o"})
    assert out["order"] == "cancelled"
    assert log == ["reserve", "charge", "notify", "ship"]


def test_bad_compensation() -> None:
    with pytest.raises(GraphValidationError, match="node 'x': compensate= must be a function"):
        StateGraph(S).add_node("x", lambda s: None, compensate="refund")  # type: ignore[arg-type]


CRASH = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from typing import TypedDict
    from agentgraph_nb import START, END, StateGraph

    db, log, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]

    class S(TypedDict, total=False):
        done: list

    def write(line):
        with log.open("a") as f:
            f.write(line + "\\n")

    def step(name):
        def fn(s):
            write(name)
            if name == "ship":
                raise RuntimeError("no truck")
            return {"done": [*s.get("done", []), name]}
        return fn

    def undo(name):
        def fn(s):
            write(f"undo {name} start")
            if name == "reserve" and not log.with_suffix(".killed").exists():
                log.with_suffix(".killed").write_text("1")
                os.kill(os.getpid(), 9)  # die while compensating, as kill -9 would
            write(f"undo {name} end")
        return fn

    g = StateGraph(S, name="order")
    for name in ("reserve", "charge", "ship"):
        g.add_node(name, step(name), compensate=undo(name) if name != "ship" else None)
    g.add_edge(START, "reserve").add_edge("reserve", "charge").add_edge("charge", "ship").add_edge("ship", END)
    app = g.compile(checkpointer=f"sqlite:///{db}")
    try:
        app.invoke({"done": []} if mode == "start" else None, thread_id="t1")
        print("finished")
    except Exception as exc:
        print(type(exc).__name__, exc)
    """
)


def test_kill_9_while_compensating_resumes_compensating_in_a_new_process(tmp_path: Path) -> None:
    script = tmp_path / "saga.py"
    script.write_text(CRASH)
    db, log = tmp_path / "runs.db", tmp_path / "log.txt"

    def run(mode: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(script), str(db), str(log), mode], capture_output=True, text=True,
                              timeout=120)

    first = run("start")
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert log.read_text().splitlines() == ["reserve", "charge", "ship", "undo charge start", "undo charge end",
                                            "undo reserve start"]
    second = run("resume")
    assert second.returncode == 0, second.stderr
    # the finished compensation did not run again, the interrupted one ran, ship did not re-run
    assert log.read_text().splitlines()[6:] == ["undo reserve start", "undo reserve end"]
    assert second.stdout.startswith("NodeError") and "'ship'" in second.stdout and "no truck" in second.stdout
    third = run("resume")
    assert third.stdout.strip() == "finished"
    assert len(log.read_text().splitlines()) == 8




def test_timeline_shows_compensations_as_bars_of_their_own_and_caught_errors_in_the_hover() -> None:
    pytest.importorskip("plotly")
    from agentgraph_nb.ui.timeline import STATUSES

    comp_trace = list(STATUSES).index("compensate")
    log: list[str] = []
    app = _saga(log).compile()
    app.record()
    with pytest.raises(RuntimeError):
        app.invoke({"order": "o"})
    tl = app.timeline()
    try:
        trace = tl.data[comp_trace]
        assert trace.name == "compensation (saga)"
        hover = list(trace.hovertext)
        assert len(hover) == 2
        assert "<b>charge</b>" in hover[0] and "<b>reserve</b>" in hover[1]
    finally:
        tl.close()
    g = _saga(log)
    g.add_node("cancel", lambda s: {"order": "cancelled"})
    g.add_error_edge("ship", "cancel")
    app2 = g.compile()
    app2.record()
    app2.invoke({"order": "o"})
    tl = app2.timeline()
    try:
        error_trace = list(STATUSES).index("error")
        assert any("caught by 'cancel'" in h for h in tl.data[error_trace].hovertext)
    finally:
        tl.close()


@pytest.mark.parametrize("thread", [None, "t"])
def test_a_failing_subgraph_compensates_its_own_steps_then_the_parent_its_own(thread: str | None) -> None:
    log: list[str] = []

    def a(s: dict[str, Any]) -> dict[str, Any]:
        log.append("a")
        return {"x": 1}

    def b(s: dict[str, Any]) -> dict[str, Any]:
        log.append("b")
        raise RuntimeError("b failed")

    def p(s: dict[str, Any]) -> dict[str, Any]:
        log.append("p")
        return {"x": 0}

    sub = (StateGraph(dict, name="team").add_node("a", a, compensate=lambda s: log.append("undo a"))
           .add_node("b", b).add_edge(START, "a").add_edge("a", "b").compile(checkpointer=None))
    g = StateGraph(dict).add_node("p", p, compensate=lambda s: log.append("undo p")).add_node("team", sub)
    g.add_edge(START, "p").add_edge("p", "team")
    with pytest.raises(RuntimeError, match="b failed"):
        g.compile().invoke({}, thread_id=thread)
    assert log == ["p", "a", "b", "undo a", "undo p"]
