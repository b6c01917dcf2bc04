"""Error edges (``add_error_edge``): a node that fails for good continues at its handler, which
reads the failure; uncaught failures behave as before; parallel branches, subgraphs, async
nodes, events, metrics, checkpoints (a crash in the handler resumes at it in a new process) and
bad input."""

from __future__ import annotations

import asyncio
import operator
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import (
    END,
    START,
    CaughtError,
    ErrorHandlerError,
    GraphValidationError,
    RetryPolicy,
    StateGraph,
    caught_error,
)


class S(TypedDict, total=False):
    out: str
    log: Annotated[list[str], operator.add]


def _fetch_graph(on: Any = ConnectionError, retry: int = 1) -> tuple[StateGraph, list[str]]:
    calls: list[str] = []

    def fetch(s: S) -> S:
        calls.append("fetch")
        raise ConnectionError("refused")

    def fallback(s: dict[str, Any]) -> S:
        err = s["__error__"]
        assert caught_error() is err
        return {"out": f"{err.node}|{err.error_type}|{err.message}|{err.attempt}|{err.step}", "log": ["fallback"]}

    def after(s: S) -> S:
        calls.append("after")
        return {"log": ["after"]}

    g = StateGraph(S)
    g.add_node("fetch", fetch, retry=RetryPolicy(max_attempts=retry, initial_interval=0, jitter=False))
    g.add_node("fallback", fallback).add_node("after", after)
    g.add_edge(START, "fetch").add_edge("fetch", "after").add_edge("after", END).add_edge("fallback", END)
    g.add_error_edge("fetch", "fallback", on=on)
    return g, calls


def test_failure_after_retries_continues_at_the_handler_which_reads_the_error() -> None:
    g, calls = _fetch_graph(retry=3)
    out = g.compile().invoke({"log": []})
    assert out["out"] == "fetch|ConnectionError|refused|3|1"
    # the failed node's own edges are not taken, and it wrote nothing
    assert out["log"] == ["fallback"]
    assert calls == ["fetch"] * 3


def test_an_error_the_edge_does_not_catch_fails_the_run_as_before() -> None:
    g, _ = _fetch_graph(on=(ValueError, KeyError))
    with pytest.raises(ConnectionError, match="refused"):
        g.compile().invoke({})


def test_on_defaults_to_exception_and_caught_error_is_none_outside_a_handler() -> None:
    seen: list[Any] = []

    def boom(s: S) -> S:
        seen.append(caught_error())
        raise KeyError("k")

    def handler(s: S) -> S:
        return {"out": caught_error().error_type}  # type: ignore[union-attr]

    g = StateGraph(S).add_node("boom", boom).add_node("handler", handler)
    g.add_edge(START, "boom").add_edge("handler", END).add_error_edge("boom", "handler")
    assert g.compile().invoke({})["out"] == "KeyError"
    assert seen == [None]
    assert caught_error() is None


def test_dataclass_state_handler_reads_caught_error() -> None:
    @dataclass
    class D:
        out: str = ""

    def boom(s: D) -> dict[str, Any]:
        raise RuntimeError("bad")

    def handler(s: D) -> dict[str, Any]:
        assert isinstance(s, D)
        err = caught_error()
        assert err is not None and isinstance(err.error, RuntimeError)
        return {"out": err.describe()}

    g = StateGraph(D).add_node("boom", boom).add_node("handler", handler)
    g.add_edge(START, "boom").add_edge("handler", END).add_error_edge("boom", "handler")
    assert g.compile().invoke({})["out"] == "node 'boom' failed at step 1 (attempt 1): RuntimeError: bad"


def test_parallel_branches_only_the_failed_branch_is_diverted() -> None:
    def ok(s: S) -> S:
        return {"log": ["ok"]}

    def bad(s: S) -> S:
        raise ConnectionError("down")

    def handler(s: dict[str, Any]) -> S:
        return {"log": [f"handled {s['__error__'].node}"]}

    def next_ok(s: S) -> S:
        return {"log": ["next_ok"]}

    def next_bad(s: S) -> S:
        return {"log": ["next_bad"]}

    g = StateGraph(S)
    for name, fn in [("ok", ok), ("bad", bad), ("handler", handler), ("next_ok", next_ok), ("next_bad", next_bad)]:
        g.add_node(name, fn)
    g.add_edge(START, "ok").add_edge(START, "bad").add_edge("ok", "next_ok").add_edge("bad", "next_bad")
    g.add_error_edge("bad", "handler")
    out = g.compile().invoke({"log": []})
    # the sibling's write merged; the next step ran the sibling's successor and the handler
    assert out["log"] == ["ok", "next_ok", "handled bad"]


def test_a_failing_subgraph_node_is_caught_by_the_parent() -> None:
    def inner(s: S) -> S:
        raise TimeoutError("slow service")

    sub = StateGraph(S, name="team").add_node("inner", inner).add_edge(START, "inner").compile(checkpointer=None)

    def handler(s: dict[str, Any]) -> S:
        err = s["__error__"]
        return {"out": f"{err.node}: {err.error_type}"}

    g = StateGraph(S).add_node("team", sub).add_node("handler", handler)
    g.add_edge(START, "team").add_edge("handler", END).add_error_edge("team", "handler", on=TimeoutError)
    assert g.compile().invoke({}, thread_id="t")["out"] == "team > inner: TimeoutError"


def test_async_nodes_and_stream_events_and_metrics() -> None:
    async def fetch(s: S) -> S:
        await asyncio.sleep(0)
        raise ConnectionError("refused")

    async def fallback(s: dict[str, Any]) -> S:
        return {"out": s["__error__"].message}

    g = StateGraph(S).add_node("fetch", fetch).add_node("fallback", fallback)
    g.add_edge(START, "fetch").add_edge("fallback", END).add_error_edge("fetch", "fallback")
    app = g.compile()
    assert asyncio.run(app.ainvoke({}))["out"] == "refused"
    events = list(app.stream({}, mode="events"))
    caught = [e for e in events if e.kind == "error_caught"]
    assert len(caught) == 1
    assert caught[0].node == "fetch" and caught[0].data["handler"] == "fallback"
    assert isinstance(caught[0].data["error"], CaughtError)
    kinds = [e.kind for e in events if e.node in ("fetch", "fallback")]
    assert kinds == ["node_start", "node_error", "error_caught", "node_start", "node_end"]
    assert app.metrics.node("fetch").caught == 2
    assert app.metrics.node("fetch").errors == 2
    updates = list(app.stream({}))
    assert updates[-1] == {"fallback": {"out": "refused"}}


def test_the_failed_step_checkpoints_the_handler_with_the_error() -> None:
    g, _ = _fetch_graph()
    app = g.compile()
    app.invoke({}, thread_id="t1", max_steps=1)
    snap = app.get_state("t1")
    assert snap.next == ("fallback",)
    app2 = g.compile(checkpointer=app.checkpointer)
    assert app2.invoke(None, thread_id="t1")["out"] == "fetch|ConnectionError|refused|1|1"


def test_a_handler_that_fails_raises_error_handler_error_naming_both_nodes() -> None:
    original: list[BaseException] = []

    def fetch(s: S) -> S:
        exc = ConnectionError("refused")
        original.append(exc)
        raise exc

    def fallback(s: S) -> S:
        raise ValueError("no cache either")

    g = StateGraph(S).add_node("fetch", fetch).add_node("fallback", fallback)
    g.add_edge(START, "fetch").add_edge("fallback", END).add_error_edge("fetch", "fallback")
    with pytest.raises(ErrorHandlerError) as info:
        g.compile().invoke({}, thread_id="t")
    err = info.value
    assert "'fallback'" in str(err) and "'fetch'" in str(err) and "no cache either" in str(err)
    assert err.node == "fallback" and err.failed_node == "fetch"
    assert isinstance(err.__cause__, ValueError)
    assert err.__cause__.__context__ is original[0]


def test_a_handler_may_have_an_error_edge_of_its_own() -> None:
    def a(s: S) -> S:
        raise ConnectionError("a")

    def b(s: S) -> S:
        raise ConnectionError("b")

    def c(s: dict[str, Any]) -> S:
        return {"out": s["__error__"].node}

    g = StateGraph(S).add_node("a", a).add_node("b", b).add_node("c", c)
    g.add_edge(START, "a").add_edge("c", END).add_error_edge("a", "b").add_error_edge("b", "c")
    assert g.compile().invoke({})["out"] == "b"


def test_bad_input() -> None:
    g, _ = _fetch_graph()
    g.add_error_edge("after", "fallbak")
    with pytest.raises(GraphValidationError, match=r"error edge 'after' -> 'fallbak'.*Did you mean 'fallback'"):
        g.compile()
    g, _ = _fetch_graph()
    with pytest.raises(GraphValidationError, match="on= takes exception classes"):
        g.add_error_edge("after", "fallback", on="ConnectionError")  # type: ignore[arg-type]
    with pytest.raises(GraphValidationError, match="on= takes exception classes"):
        g.add_error_edge("after", "fallback", on=(ValueError, int))  # type: ignore[arg-type]
    with pytest.raises(GraphValidationError, match="already has an error edge"):
        g.add_error_edge("fetch", "after")
    g2, _ = _fetch_graph()
    g2.add_error_edge("nope", "fallback")
    with pytest.raises(GraphValidationError, match="unknown node 'nope'"):
        g2.compile()


def test_the_handler_counts_as_reachable() -> None:
    import warnings

    g, _ = _fetch_graph()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g.compile()


CRASH = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from typing import TypedDict
    from agentgraph_nb import START, END, StateGraph

    db, log = sys.argv[1], Path(sys.argv[2])

    class S(TypedDict, total=False):
        out: str

    def fetch(s):
        with log.open("a") as f:
            f.write("fetch\\n")
        raise ConnectionError("refused")

    def fallback(s):
        err = s["__error__"]
        with log.open("a") as f:
            f.write(f"fallback {err.node} {err.error_type} {err.error is None}\\n")
        if not log.with_suffix(".killed").exists():
            log.with_suffix(".killed").write_text("1")
            os.kill(os.getpid(), 9)
        return {"out": err.message}

    g = StateGraph(S).add_node("fetch", fetch).add_node("fallback", fallback)
    g.add_edge(START, "fetch").add_edge("fallback", END).add_error_edge("fetch", "fallback")
    app = g.compile(checkpointer=f"sqlite:///{db}")
    print(app.invoke({} if sys.argv[3] == "start" else None, thread_id="t1")["out"])
    """
)


def test_kill_9_in_the_handler_resumes_at_the_handler_in_a_new_process(tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text(CRASH)
    db, log = tmp_path / "runs.db", tmp_path / "log.txt"
    first = subprocess.run([sys.executable, str(script), str(db), str(log), "start"], capture_output=True, text=True,
                           timeout=120)
    assert first.returncode == -signal.SIGKILL, first.stderr
    second = subprocess.run([sys.executable, str(script), str(db), str(log), "resume"], capture_output=True,
                            text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "refused"
    # fetch never ran again; the resumed handler read the stored error (without the exception object)
    assert log.read_text().splitlines() == [
        "fetch", "fallback fetch ConnectionError False", "fallback fetch ConnectionError True",
    ]


def test_get_state_tasks_and_the_debugger_show_the_caught_error() -> None:
    pytest.importorskip("ipywidgets")
    from agentgraph_nb.ui.debugger import Debugger

    g, _ = _fetch_graph()
    app = g.compile()
    dbg = Debugger(app, {}, thread_id="dbg")
    try:
        dbg.step()  # fetch fails; its error edge sends the run to fallback
        snap = app.get_state("dbg")
        assert [t.name for t in snap.tasks] == ["fallback"]
        caught = snap.tasks[0].caught
        assert isinstance(caught, CaughtError) and caught.node == "fetch" and caught.message == "refused"
        assert dbg.error is None
        html = dbg.error_html.value
        assert 'data-testid="debugger-caught"' in html
        assert "node &#x27;fetch&#x27; failed at step 1" in html or "node 'fetch' failed at step 1" in html
        assert "ConnectionError: refused" in html and "runs next" in html
        dbg.step()
        assert "debugger-caught" not in dbg.error_html.value
        assert app.get_state("dbg").values["out"].startswith("fetch|ConnectionError")
    finally:
        dbg.close()


def test_a_caught_failure_saved_as_a_pending_write_still_goes_to_its_handler_on_resume() -> None:
    broken = {"c": True}
    runs: list[str] = []

    def a(s: S) -> S:
        runs.append("a")
        raise ConnectionError("a down")

    def b(s: S) -> S:
        return {"log": ["b"]}

    def c(s: S) -> S:
        if broken["c"]:
            raise ValueError("c broken")
        return {"log": ["c"]}

    def handler(s: dict[str, Any]) -> S:
        return {"log": [f"handled {s['__error__'].node}: {s['__error__'].message}"]}

    def after_a(s: S) -> S:
        return {"log": ["after_a"]}

    g = StateGraph(S)
    for name, fn in [("a", a), ("b", b), ("c", c), ("handler", handler), ("after_a", after_a)]:
        g.add_node(name, fn)
    for n in "abc":
        g.add_edge(START, n)
    g.add_edge("a", "after_a").add_error_edge("a", "handler")
    app = g.compile()
    with pytest.raises(ValueError, match="c broken"):
        app.invoke({"log": []}, thread_id="p")
    # a's caught failure and b's result were kept as pending writes of the failed step
    assert {t.name: t.result for t in app.get_state("p").tasks if t.result is not None or t.name == "a"}["b"] == {
        "log": ["b"]}
    broken["c"] = False
    out = app.invoke(None, thread_id="p")
    assert out["log"] == ["b", "c", "handled a: a down"]
    assert runs == ["a"]  # not run again: its saved (caught) result went to the handler
