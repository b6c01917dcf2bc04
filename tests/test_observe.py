"""Observing runs: the event recorder, the pandas frames, and Monte-Carlo route counts."""

from __future__ import annotations

import operator
import subprocess
import sys
import threading
import time
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import END, START, Command, InvalidInputError, RetryPolicy, Send, StateGraph
from agentgraph_nb.observe.frames import (
    EVENT_COLUMNS,
    EXECUTION_COLUMNS,
    ExecutionLog,
    executions_frame,
)
from agentgraph_nb.observe.recorder import EventRecorder, as_record
from agentgraph_nb.observe.simulate import route_counts, simulate, stub_graph


class S(TypedDict, total=False):
    x: int
    log: Annotated[list[str], operator.add]


def chain(name: str = "chain") -> Any:
    g = StateGraph(S, name=name)
    g.add_node("a", lambda s: {"x": s.get("x", 0) + 1})
    g.add_node("b", lambda s: {"x": s["x"] + 1})
    g.add_node("c", lambda s: {"x": s["x"] + 1})
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    return g.compile()


def fan(fail_times: int = 1) -> Any:
    """plan -> (slow, flaky) in parallel -> join; flaky fails ``fail_times`` times, then works."""
    calls = {"flaky": 0}

    def slow(s: S) -> S:
        time.sleep(0.01)
        return {"log": ["slow"]}

    def flaky(s: S) -> S:
        calls["flaky"] += 1
        if calls["flaky"] <= fail_times:
            raise ConnectionError("transient")
        return {"log": ["flaky"]}

    g = StateGraph(S, name="fan")
    g.add_node("plan", lambda s: {"log": ["plan"]})
    g.add_node("slow", slow)
    g.add_node(
        "flaky", flaky, retry=RetryPolicy(max_attempts=3, initial_interval=0.001, jitter=False)
    )
    g.add_node("join", lambda s: {"log": ["join"]})
    g.add_edge(START, "plan").add_edge("plan", "slow").add_edge("plan", "flaky")
    g.add_edge(["slow", "flaky"], "join").add_edge("join", END)
    return g.compile()


# -- recorder -------------------------------------------------------------------------------------
def test_recorder_keeps_every_event_of_a_run_in_order() -> None:
    app = chain()
    rec = app.record()
    assert app.record() is rec  # one recorder per graph
    app.invoke({"x": 0})
    events = rec.for_run(app.last_run_id)
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert kinds.count("node_start") == kinds.count("node_end") == 3
    assert [e.node for e in events if e.kind == "node_end"] == ["a", "b", "c"]
    assert rec.runs() == [app.last_run_id]
    ts = [e.ts for e in events]
    assert ts == sorted(ts)


def test_recorder_is_bounded_and_drops_the_oldest() -> None:
    app = chain()
    rec = EventRecorder(max_events=50).attach(app)
    for i in range(20):
        app.invoke({"x": i})
    assert len(rec) == 50
    events = rec.events()
    assert events[-1].kind == "run_end" and events[-1].run_id == app.last_run_id
    assert app.last_run_id in rec.runs() and len(rec.runs()) < 20


def test_recorder_detach_stops_recording_and_keeps_what_it_has() -> None:
    app = chain()
    rec = EventRecorder().attach(app)
    app.invoke({"x": 0})
    n = len(rec)
    rec.detach()
    assert not rec.attached and app._listeners == []
    app.invoke({"x": 0})
    assert len(rec) == n
    rec.clear()
    assert len(rec) == 0


def test_recorder_rejects_a_bad_bound() -> None:
    with pytest.raises(ValueError, match="max_events"):
        EventRecorder(max_events=0)


def test_recorder_keeps_small_data_only() -> None:
    app = fan()
    rec = app.record()
    app.invoke({}, thread_id="t1")
    by_kind = {e.kind: e for e in rec.for_thread("t1")}
    assert by_kind["node_end"].data is None and by_kind["node_start"].data is None  # no old states
    assert isinstance(by_kind["node_retry"].data, ConnectionError)
    assert by_kind["run_end"].data == {"status": "completed", "error": None}
    assert rec.threads() == ["t1"]
    ev = rec.for_thread("t1")[0]
    assert as_record(ev) == (
        ev.kind,
        ev.run_id,
        ev.thread_id,
        ev.step,
        ev.node,
        ev.ts,
        ev.duration,
        ev.attempt,
        ev.task_id,
        ev.data,
        ev.namespace,
    )


def test_recorder_is_thread_safe_and_records_since_misses_nothing() -> None:
    app = chain()
    rec = app.record()
    pulled: list[Any] = []
    stop = threading.Event()

    def reader() -> None:
        cursor = None
        while True:
            done = stop.is_set()
            new, cursor = rec.records_since(cursor)
            pulled.extend(new)
            if done:
                return

    t = threading.Thread(target=reader)
    t.start()
    app.batch([{"x": i} for i in range(300)], max_concurrency=8)
    stop.set()
    t.join()
    records = rec.records()
    # run_start, run_end, 3 x (step_start, node_start, node_end, state_update)
    assert len(records) == 300 * 14
    assert pulled == records  # every record exactly once, in order
    assert len(rec.runs()) == 300


def test_records_since_after_drops_returns_what_is_kept() -> None:
    app = chain()
    rec = EventRecorder(max_events=30).attach(app)
    app.invoke({"x": 0})
    _, cursor = rec.records_since(None)
    for i in range(5):
        app.invoke({"x": i})
    new, _ = rec.records_since(cursor)
    assert new == rec.records()  # the cursor was dropped: everything kept is new


# -- frames ---------------------------------------------------------------------------------------
def test_events_frame_needs_recording() -> None:
    app = chain()
    app.invoke({"x": 0})
    with pytest.raises(InvalidInputError, match=r"app\.record\(\)"):
        app.events()
    with pytest.raises(InvalidInputError, match="%%agentgraph"):
        executions_frame(app)


def test_events_frame_columns_and_contents_match_the_run() -> None:
    app = chain()
    app.record()
    app.invoke({"x": 0}, thread_id="t")
    first = app.last_run_id
    app.invoke({"x": 5})
    df = app.events(run_id=first)
    assert tuple(df.columns) == EVENT_COLUMNS
    assert len(df) == 18  # 14 + a checkpoint for the input and after each of the 3 steps
    assert (df["kind"] == "checkpoint").sum() == 4
    kinds = list(df["kind"])
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert set(df["run"]) == {first} and set(df["thread"]) == {"t"}
    ends = df[df["kind"] == "node_end"]
    assert list(ends["node"]) == ["a", "b", "c"]
    assert list(ends["step"]) == [1, 2, 3]
    assert (df["duration"] >= 0).all()
    assert (df["end"] >= df["start"]).all()
    assert df["start"].is_monotonic_increasing or (df["start"].diff().dropna() >= -1e-3).all()
    starts = df[df["kind"] == "node_start"].reset_index(drop=True)
    # node_start and node_end rows of one execution carry the same interval
    assert (starts["start"].to_numpy() == ends["start"].to_numpy()).all()
    assert (starts["end"].to_numpy() == ends["end"].to_numpy()).all()
    run_end = df[df["kind"] == "run_end"].iloc[0]
    assert run_end["start"] == pytest.approx(0.0, abs=1e-3)
    assert run_end["end"] >= ends["end"].max()
    assert len(app.events()) == 18 + 14
    assert len(app.events(thread_id="t")) == 18
    assert set(app.events(thread_id="t")["run"]) == {first}


def test_frames_count_retries_and_errors() -> None:
    app = fan(fail_times=1)
    app.record()
    app.invoke({})
    df = app.events()
    assert (df["kind"] == "node_retry").sum() == 1
    retry = df[df["kind"] == "node_retry"].iloc[0]
    assert retry["node"] == "flaky" and retry["attempt"] == 1
    assert retry["error"] == "ConnectionError: transient"
    ex = executions_frame(app)
    assert tuple(ex.columns) == EXECUTION_COLUMNS
    assert len(ex) == 5  # plan, slow, flaky x2 (one retried), join
    assert sorted(ex["status"]) == ["ok", "ok", "ok", "ok", "retry"]
    flaky = ex[ex["node"] == "flaky"].sort_values("attempt")
    assert list(flaky["attempt"]) == [1, 2] and list(flaky["status"]) == ["retry", "ok"]
    assert (ex["duration"] >= 0).all() and (ex["end"] >= ex["start"]).all()
    assert list(ex["start"]) == sorted(ex["start"])
    # parallel branches are in different lanes of their superstep
    step2 = ex[(ex["step"] == 2) & (ex["attempt"] == 1)]
    assert sorted(step2["lane"]) == [0, 1]
    assert set(step2["task"]) == {"2:0", "2:1"}


def test_frames_of_a_failed_run() -> None:
    app = fan(fail_times=5)  # more than max_attempts: fails for good
    app.record()
    with pytest.raises(Exception, match="flaky"):
        app.invoke({})
    ex = executions_frame(app)
    assert list(ex[ex["node"] == "flaky"]["status"]) == ["retry", "retry", "error"]
    df = app.events()
    end = df[df["kind"] == "run_end"].iloc[0]
    assert end["error"] == "ConnectionError: transient"  # the node's own error
    assert (df["kind"] == "node_error").sum() == 1


def test_empty_frames_have_the_columns() -> None:
    app = chain()
    app.record()
    assert tuple(app.events().columns) == EVENT_COLUMNS and len(app.events()) == 0
    assert tuple(executions_frame(app).columns) == EXECUTION_COLUMNS


def test_execution_log_ignores_repeats_and_stays_bounded() -> None:
    app = chain()
    rec = app.record()
    for i in range(50):
        app.invoke({"x": i})
    records = rec.records()
    log = ExecutionLog().feed_all(records).feed_all(records)
    assert log.started == 150 and len(log) == 150
    small = ExecutionLog(max_executions=20).feed_all(records)
    assert small.started == 150
    assert 20 <= len(small) <= 20 + 64
    assert all(x.status == "ok" for x in small.executions.values())


# -- simulate -------------------------------------------------------------------------------------
def weighted_graph() -> Any:
    g = StateGraph(S, name="explore")
    g.add_node("explore", lambda s: {"log": ["explore"]})
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_node("done", lambda s: {"log": ["done"]})
    g.add_edge(START, "explore")
    g.add_weighted_edges("explore", {"a": 0.7, "b": 0.3})
    g.add_edge("a", "done").add_edge("b", "done").add_edge("done", END)
    return g.compile()


def test_simulate_counts_weighted_routes_reproducibly() -> None:
    app = weighted_graph()
    df = simulate(app, {"x": 0}, 2000, seed=7)
    assert list(df.columns) == ["source", "target", "kind", "count", "share"]
    rows = {(r.source, r.target, r.kind): (r.count, r.share) for r in df.itertuples()}
    a, b = rows[("explore", "a", "weighted")][0], rows[("explore", "b", "weighted")][0]
    assert a + b == 2000
    assert 0.65 < a / 2000 < 0.75
    assert rows[(START, "explore", "static")] == (2000, 1.0)
    assert rows[("a", "done", "static")][0] == a and rows[("b", "done", "static")][0] == b
    assert rows[("done", END, "static")] == (2000, 1.0)
    assert rows[("explore", "a", "weighted")][1] == pytest.approx(a / 2000)
    assert df.attrs["runs"] == 2000 and df.attrs["failed"] == 0
    again = app.simulate({"x": 0}, n=2000, seed=7)  # through the mixin
    assert again.equals(df)
    other = simulate(app, {"x": 0}, 2000, seed=10_000)  # seeds seed..seed+n-1: no overlap
    assert not other.equals(df)
    # each run is the same as invoke(seed=seed + i) on the real graph
    picks = []
    for i in range(20):
        log = app.invoke({"x": 0}, seed=7 + i)["log"]
        picks.append(log[1])
    first20 = simulate(app, {"x": 0}, 20, seed=7)
    counted = {r.target: r.count for r in first20.itertuples() if r.kind == "weighted"}
    assert counted == {"a": picks.count("a"), "b": picks.count("b")}


def test_simulate_uses_stubs_on_a_copy() -> None:
    calls = {"real": 0, "stub": 0}

    def expensive(s: S) -> S:
        calls["real"] += 1
        return {"log": ["real"]}

    def cheap(s: S) -> S:
        calls["stub"] += 1
        return {"log": ["stub"]}

    g = StateGraph(S, name="stubbed")
    g.add_node("llm", expensive).add_edge(START, "llm").add_edge("llm", END)
    app = g.compile()
    df = simulate(app, {}, 10, stubs={"llm": cheap})
    assert calls == {"real": 0, "stub": 10}
    assert df[df["source"] == "llm"]["count"].tolist() == [10]
    assert app.builder.nodes["llm"].fn is expensive  # the original graph is untouched
    with pytest.raises(InvalidInputError, match="Did you mean 'llm'"):
        simulate(app, {}, 1, stubs={"lm": cheap})
    copy = stub_graph(app, {"llm": cheap})
    assert copy.checkpointer is None and copy.invoke({})["log"] == ["stub"]


def test_simulate_counts_conditional_send_goto_and_join() -> None:
    def route(s: S) -> Any:
        n = s.get("x", 0)
        if n % 3 == 0:
            return [Send("work", {"x": 1}), Send("work", {"x": 2})]
        return "left" if n % 3 == 1 else END

    g = StateGraph(S, name="kinds")
    g.add_node("start", lambda s: {"log": ["start"]})
    g.add_node("work", lambda s: {"log": ["work"]})
    g.add_node("left", lambda s: Command(goto="right"), destinations=["right"])
    g.add_node("right", lambda s: {"log": ["right"]})
    g.add_node("p", lambda s: {"log": ["p"]})
    g.add_node("q", lambda s: {"log": ["q"]})
    g.add_node("joined", lambda s: {"log": ["joined"]})
    g.add_edge(START, "start")
    g.add_conditional_edges("start", route, ["work", "left", END])
    g.add_edge("right", "p").add_edge("right", "q").add_edge(["p", "q"], "joined")
    app = g.compile()
    df = simulate(app, lambda i: {"x": i}, 9)
    rows = {(r.source, r.target, r.kind): r.count for r in df.itertuples()}
    assert rows[("start", "work", "send")] == 6  # x = 0, 3, 6: two sends each
    assert rows[("start", "work", "conditional")] == 0  # declared, never returned by name
    assert rows[("start", "left", "conditional")] == 3
    assert rows[("start", END, "conditional")] == 3
    assert rows[("left", "right", "goto")] == 3
    assert rows[("right", "p", "static")] == 3
    assert rows[("p", "joined", "join")] == 3 and rows[("q", "joined", "join")] == 3
    share = df[(df["source"] == "start") & (df["kind"] == "send")]["share"].iloc[0]
    assert share == pytest.approx(6 / 9)
    counts = route_counts(df)
    assert counts["start->work"] == 6 and counts["left->right"] == 3
    assert counts[f"{START}->start"] == 9
    assert all("->" in k for k in counts)
    assert df.attrs["edge_counts"] == counts


def test_simulate_inputs_forms_failures_and_progress(capsys: pytest.CaptureFixture[str]) -> None:
    g = StateGraph(S, name="boom")

    def maybe(s: S) -> S:
        if s["x"] == 2:
            raise ValueError("two")
        return {"log": ["ok"]}

    g.add_node("n", maybe).add_edge(START, "n").add_edge("n", END)
    app = g.compile()
    df = simulate(app, [{"x": i} for i in range(4)], 4, progress=True)
    assert df.attrs["failed"] == 1 and "ValueError: two" in df.attrs["errors"][0]
    assert df[df["source"] == "n"]["count"].tolist() == [3]
    assert "4/4" in capsys.readouterr().err
    with pytest.raises(InvalidInputError, match="3 inputs for n=4"):
        simulate(app, [{"x": 1}] * 3, 4)
    with pytest.raises(InvalidInputError, match="n must be"):
        simulate(app, {}, -1)


def test_route_counts_sums_kinds() -> None:
    import pandas as pd

    df = pd.DataFrame(
        [
            ("a", "b", "static", 3, 1.0),
            ("a", "b", "weighted", 2, 0.5),
            ("b", END, "static", 5, 1.0),
        ],
        columns=["source", "target", "kind", "count", "share"],
    )
    assert route_counts(df) == {"a->b": 5, f"b->{END}": 5}


# -- imports --------------------------------------------------------------------------------------
def test_heavy_modules_are_imported_lazily() -> None:
    code = (
        "import sys, agentgraph_nb\n"
        "import agentgraph_nb.observe.recorder, agentgraph_nb.observe.frames, agentgraph_nb.observe.simulate\n"
        "heavy = [m for m in ('pandas', 'plotly', 'tqdm', 'ipywidgets', 'IPython') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
