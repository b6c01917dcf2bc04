"""The timeline (plotly Gantt of node executions) and the dashboard (live metrics), Python side:
what the figures hold after known runs, live updates and their coalescing, and text reprs."""

from __future__ import annotations

import itertools
import operator
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

import numpy as np
import pytest

from agentgraph_nb import END, START, InvalidInputError, RetryPolicy, StateGraph
from agentgraph_nb.ui.timeline import (
    MARK_TRACE,
    STATUSES,
    STEP_TRACE,
    Coalescer,
    Timeline,
    timeline,
)

OK, RETRY, ERROR, RUNNING, CHECKPOINT, PAUSED, STOPPED = range(7)


class S(TypedDict, total=False):
    x: int
    log: Annotated[list[str], operator.add]


def fan(fail_times: int = 1, sleep: float = 0.0) -> Any:
    """plan -> (slow, flaky) in parallel -> join; flaky fails ``fail_times`` times first."""
    calls = {"flaky": 0}

    def slow(s: S) -> S:
        time.sleep(0.01 + sleep)
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


def chain(name: str = "chain") -> Any:
    g = StateGraph(S, name=name)
    for n in ("a", "b", "c"):
        g.add_node(n, lambda s, n=n: {"log": [n]})
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    return g.compile(checkpointer=None)


def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def bars(fig: Any, trace: int) -> list[dict[str, Any]]:
    t = fig.data[trace]
    n = len(t.x)
    return [
        {
            "start": float(t.base[i]),
            "length": float(t.x[i]),
            "lane": float(t.y[i]),
            "node": t.text[i],
            "hover": t.hovertext[i],
        }
        for i in range(n)
    ]


@pytest.fixture
def closing() -> Any:
    made: list[Any] = []
    yield made.append
    for w in made:
        w.close()


# -- timeline after a known run -------------------------------------------------------------------
def test_one_bar_per_execution_with_lanes_retries_and_steps(closing: Any) -> None:
    app = fan(fail_times=1)
    app.record()
    app.invoke({})
    tl = app.timeline()
    closing(tl)
    assert isinstance(tl, Timeline) and tl.mode == "latest"
    assert [t.name for t in tl.data[: len(STATUSES)]] == [v[0] for v in STATUSES.values()]
    ok, retried = bars(tl, OK), bars(tl, RETRY)
    assert sorted(b["node"] for b in ok) == ["flaky", "join", "plan", "slow"]
    assert [b["node"] for b in retried] == ["flaky"]
    assert tl.bars == 5 == tl.executions  # plan, slow, flaky (2 attempts), join
    assert len(tl.data[ERROR].x) == len(tl.data[RUNNING].x) == len(tl.data[CHECKPOINT].x) == 0
    # the parallel branches of step 2 are on separate lanes, the others on lane 0
    lane = {b["node"]: b["lane"] for b in ok}
    assert lane["plan"] == lane["join"] == lane["slow"] == 0 and lane["flaky"] == 1
    assert retried[0]["lane"] == 1
    assert list(tl.layout.yaxis.ticktext) == ["lane 0", "lane 1"]
    # time flows: x from the run's start, steps in order, lengths non-negative
    start = {b["node"]: b["start"] for b in ok}
    assert 0 <= start["plan"] < start["slow"] < start["join"]
    assert all(b["length"] >= 0 for b in ok + retried)
    assert retried[0]["start"] + retried[0]["length"] <= start["flaky"] + 1e-9
    by_node = {b["node"]: b for b in ok}
    assert by_node["slow"]["length"] >= 0.01
    # hover says node, step, attempt and duration
    hover = by_node["slow"]["hover"]
    assert "<b>slow</b>" in hover and "step 2" in hover and "attempt 1" in hover and "ms" in hover
    assert (
        "attempt 1" in retried[0]["hover"] and "ConnectionError: transient" in retried[0]["hover"]
    )
    # the retried attempt is marked at its end
    marks = tl.data[MARK_TRACE]
    assert len(marks.x) == 1 and marks.marker.symbol[0] == "circle-open"
    assert float(marks.x[0]) == pytest.approx(retried[0]["start"] + retried[0]["length"])
    # one dotted line per superstep, spanning the lanes
    steps = tl.data[STEP_TRACE]
    xs = [x for x in steps.x if x is not None]
    assert len(xs) == 2 * 3
    assert [h for h in steps.hovertext if h][::2] == [f"superstep {i} starts" for i in (1, 2, 3)]
    assert repr(tl) == "Timeline(graph 'fan': 5 executions, 3 steps, 1 retried)"


def test_failed_execution_is_red_and_marked(closing: Any) -> None:
    app = fan(fail_times=5)
    app.record()
    with pytest.raises(Exception, match="flaky"):
        app.invoke({})
    tl = timeline(app, app.last_run_id)
    closing(tl)
    assert tl.mode == "run"
    assert [b["node"] for b in bars(tl, ERROR)] == ["flaky"]
    assert len(bars(tl, RETRY)) == 2
    assert sorted(tl.data[MARK_TRACE].marker.symbol) == ["circle-open", "circle-open", "x-thin"]
    assert repr(tl) == "Timeline(graph 'fan': 5 executions, 2 steps, 2 retried, 1 failed)"


def test_text_repr_and_mimebundle(closing: Any) -> None:
    app = chain()
    tl = app.timeline()
    closing(tl)
    assert repr(tl) == "Timeline(graph 'chain': no runs yet)"
    app.invoke({})
    bundle = tl._repr_mimebundle_()
    assert bundle["text/plain"] == "Timeline(graph 'chain': 3 executions, 3 steps)"
    assert "application/vnd.jupyter.widget-view+json" in bundle
    app.batch([{}] * 4, max_concurrency=1)
    wait_until(lambda: tl.executions == 15)
    assert repr(tl) == "Timeline(graph 'chain': 15 executions in 5 runs, up to 3 steps)"
    dash = app.dashboard()
    closing(dash)
    assert repr(dash) == "Dashboard(graph 'chain': 3 nodes, 5 runs completed, 0 failed)"
    assert dash._repr_mimebundle_()["text/plain"] == repr(dash)


def test_latest_run_then_live_runs_replace_it(closing: Any) -> None:
    app = chain()
    app.record()
    app.invoke({})
    app.invoke({})
    tl = app.timeline()
    closing(tl)
    assert tl.executions == 3  # the last run only
    app.invoke({})  # a new run replaces it
    wait_until(lambda: tl.bars == 3 and tl.updates_sent >= 2)
    assert repr(tl) == "Timeline(graph 'chain': 3 executions, 3 steps)"
    app.invoke({})  # and later ones are added
    tl.refresh()
    assert tl.bars == 6 and tl.executions == 6


def test_unrecorded_run_is_a_clear_error() -> None:
    app = chain()
    app.invoke({})
    with pytest.raises(InvalidInputError, match=r"was not recorded: call app\.record\(\)"):
        app.timeline(app.last_run_id)


def test_thread_runs_get_a_lane_group_each(closing: Any) -> None:
    app = fan(fail_times=0)
    app.record()
    app.invoke({}, thread_id="t1")
    app.invoke({}, thread_id="other")
    app.invoke({}, thread_id="t1")
    tl = app.timeline("t1")
    closing(tl)
    assert tl.mode == "thread"
    assert repr(tl) == "Timeline(graph 'fan', thread 't1': 8 executions in 2 runs, up to 3 steps)"
    assert list(tl.layout.yaxis.ticktext) == [
        "run 1 · lane 0",
        "run 1 · lane 1",
        "run 2 · lane 0",
        "run 2 · lane 1",
    ]
    plans = sorted(b["start"] for b in bars(tl, OK) if b["node"] == "plan")
    assert plans[0] < 0.005 and plans[1] < 0.005  # each run from its own start
    assert tl.layout.xaxis.title.text.startswith("time since each run's start")


def test_thread_without_events_is_drawn_from_checkpoints(closing: Any) -> None:
    app = fan(fail_times=0)
    app.invoke({}, thread_id="old")  # before anything records
    tl = app.timeline("old")
    closing(tl)
    assert tl.mode == "checkpoints"
    coarse = bars(tl, CHECKPOINT)
    assert sorted(b["node"] for b in coarse) == ["flaky", "join", "plan", "slow"]
    assert all(b["length"] > 0 for b in coarse)
    lane = {b["node"]: b["lane"] for b in coarse}
    assert lane["slow"] != lane["flaky"]
    assert "from checkpoints" in coarse[0]["hover"]
    assert (
        repr(tl) == "Timeline(graph 'fan', thread 'old' from checkpoints: 4 node writes, 3 steps)"
    )
    app.invoke({}, thread_id="old")  # recorded now: live events replace the coarse picture
    tl.refresh()
    assert tl.mode == "thread" and len(tl.data[CHECKPOINT].x) == 0 and tl.bars == 4


def test_concurrent_runs_get_separate_lane_groups(closing: Any) -> None:
    g = StateGraph(S, name="slowchain")
    # the first batch's four runs wait for each other, so they overlap however loaded the machine
    gate: list[threading.Barrier | None] = [threading.Barrier(4, timeout=60)]

    def a(s: S) -> S:
        if gate[0] is not None:
            gate[0].wait()
        time.sleep(0.03)
        return {"log": ["a"]}

    g.add_node("a", a)
    g.add_edge(START, "a").add_edge("a", END)
    app = g.compile(checkpointer=None)
    tl = app.timeline()
    closing(tl)
    app.batch([{}] * 4, max_concurrency=4)
    tl.refresh()
    ys = sorted(b["lane"] for b in bars(tl, OK))
    assert ys == [0, 1, 2, 3]  # four runs at once: four slots
    assert tl.layout.yaxis.ticktext[0] == "slot 1 · lane 0"
    gate[0] = None
    app.batch([{}] * 4, max_concurrency=1)  # one at a time: slots are reused
    tl.refresh()
    assert tl.bars == 8 and max(b["lane"] for b in bars(tl, OK)) == 3


def test_max_bars_bounds_the_figure(closing: Any) -> None:
    app = chain()
    tl = timeline(app, max_bars=10)
    closing(tl)
    app.batch([{}] * 20)
    tl.refresh()
    assert tl.bars == 10 and tl.executions == 60
    assert repr(tl) == "Timeline(graph 'chain': 60 executions in 20 runs, up to 3 steps)"


def test_a_long_backlog_is_skimmed_but_counted_exactly(closing: Any) -> None:
    app = fan(fail_times=2)
    tl = timeline(app, max_bars=5, interval=60.0)  # one redraw a minute: all comes at once
    closing(tl)
    app.batch([{}] * 200, max_concurrency=4)
    assert tl.refresh()
    assert tl.bars == 5 and tl.executions == 200 * 4 + 2
    assert repr(tl) == (
        "Timeline(graph 'fan': 802 executions in 200 runs, up to 3 steps, 2 retried)"
    )
    assert all(b["node"] in ("join", "slow", "flaky", "plan") for b in bars(tl, OK))


def test_running_execution_is_drawn_growing(closing: Any) -> None:
    import threading

    gate = threading.Event()
    g = StateGraph(S, name="wait")
    g.add_node("w", lambda s: (gate.wait(5), {"log": ["w"]})[1])
    g.add_edge(START, "w").add_edge("w", END)
    app = g.compile(checkpointer=None)
    tl = app.timeline()
    closing(tl)
    t = threading.Thread(target=app.invoke, args=({},))
    t.start()
    try:
        wait_until(lambda: tl.refresh() is not None and len(tl.data[RUNNING].x) == 1)
        first = float(tl.data[RUNNING].x[0])
        time.sleep(0.05)
        tl.refresh()
        assert float(tl.data[RUNNING].x[0]) > first
    finally:
        gate.set()
        t.join()
    tl.refresh()
    assert len(tl.data[RUNNING].x) == 0 and tl.bars == 1


# -- live updates are coalesced -------------------------------------------------------------------
def test_coalescer_bounds_flushes_and_keeps_the_last() -> None:
    flushed: list[float] = []

    def flush() -> bool:
        flushed.append(time.perf_counter())
        return True

    c = Coalescer(flush, 0.05)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.5:
        c.poke()
    wait_until(lambda: c._timer is None)
    elapsed = time.perf_counter() - t0
    assert 2 <= len(flushed) <= elapsed / 0.05 + 2
    gaps = np.diff(flushed)
    assert (gaps >= 0.05 - 0.005).all()
    last = flushed[-1]
    c.poke()  # a request after a quiet spell is served, not lost
    wait_until(lambda: flushed[-1] != last)
    c.close()
    c.poke()
    assert c._timer is None


def test_burst_of_runs_sends_at_most_20_updates_a_second(closing: Any) -> None:
    app = chain()
    tl = app.timeline()
    dash = app.dashboard()
    closing(tl)
    closing(dash)
    sent0 = tl.updates_sent, dash.updates_sent
    t0 = time.perf_counter()
    app.batch([{}] * 3000)
    for _ in range(3):
        app.invoke({})
    time.sleep(0.15)  # the trailing update
    elapsed = time.perf_counter() - t0
    budget = elapsed / 0.05 + 2
    assert 1 <= tl.updates_sent - sent0[0] <= budget
    assert 1 <= dash.updates_sent - sent0[1] <= budget
    # nothing was lost on the way: the last update shows everything
    assert tl.executions == 3 * 3003
    assert repr(tl) == "Timeline(graph 'chain': 9009 executions in 3003 runs, up to 3 steps)"
    assert list(dash.figure.data[0].x) == ["a", "b", "c"]


def test_close_detaches(closing: Any) -> None:
    app = chain()
    tl = app.timeline()
    dash = app.dashboard()
    assert len(app._listeners) == 3  # recorder, timeline, dashboard
    tl.close()
    dash.close()
    assert app._listeners == [app._recorder.on_event]
    app.invoke({})  # nothing breaks after close


# -- a 10,000x spread of durations: every bar visible ---------------------------------------------
def spread_app() -> Any:
    """plan, tool_a/tool_b in parallel, parse, write: ~50 µs each; llm: 0.5 s (10,000x)."""

    def node(name: str, seconds: float) -> Callable[[S], S]:
        def run(s: S) -> S:
            t = time.perf_counter()
            while time.perf_counter() - t < seconds:
                pass
            return {"log": [name]}

        return run

    g = StateGraph(S, name="spread")
    for name, seconds in (("plan", 5e-5), ("llm", 0.5), ("parse", 5e-5), ("tool_a", 5e-5), ("tool_b", 5e-5), ("write", 5e-5)):
        g.add_node(name, node(name, seconds))
    g.add_edge(START, "plan").add_edge("plan", "llm").add_edge("llm", "parse")
    g.add_edge("parse", "tool_a").add_edge("parse", "tool_b")
    g.add_edge(["tool_a", "tool_b"], "write").add_edge("write", END)
    app = g.compile(checkpointer=None)
    app.record()
    app.invoke({})
    return app


@pytest.fixture(scope="module")
def spread() -> Any:
    return spread_app()


def widths(tl: Timeline) -> dict[str, float]:
    """node -> drawn width as a share of the x axis."""
    d = tl.data[OK]
    xmax = max(float(b) + float(x) for b, x in zip(d.base, d.x))
    return {n: float(x) / xmax for n, x in zip(d.text, d.x)}


def test_auto_scale_stretches_a_10000x_spread_so_every_bar_shows(spread: Any, closing: Any) -> None:
    tl = spread.timeline()
    closing(tl)
    assert tl.scale == "auto" and tl.scale_used == "stretched"
    w = widths(tl)
    assert len(w) == 6
    assert min(w.values()) >= 0.02  # >= ~18 px of a 900 px plot
    assert w["llm"] > 0.5  # the slow one still dominates
    # order and parallel lanes are kept; real times stay in customdata and hover
    d = tl.data[OK]
    start = dict(zip(d.text, (float(b) for b in d.base)))
    assert start["plan"] < start["llm"] < start["parse"] < start["tool_a"] <= start["write"]
    real = {n: tuple(map(float, c)) for n, c in zip(d.text, d.customdata)}
    assert real["llm"][1] >= 0.5 and real["plan"][1] < 0.01
    assert "ms" in dict(zip(d.text, d.hovertext))["llm"]
    # ticks are labelled with real times, in order, at increasing positions
    ticks = list(zip(tl.layout.xaxis.tickvals, tl.layout.xaxis.ticktext))
    assert ticks[0] == (0, "0") and len(ticks) >= 3
    assert all(a[0] < b[0] for a, b in itertools.pairwise(ticks))
    assert "widened" in tl.layout.xaxis.title.text


def test_linear_scale_keeps_seconds_and_a_minimum_width(spread: Any, closing: Any) -> None:
    tl = spread.timeline(scale="linear")
    closing(tl)
    assert tl.scale_used == "linear" and tl.layout.xaxis.tickmode == "auto"
    w = widths(tl)
    assert w["llm"] > 0.9 and min(w.values()) >= 0.0029  # ~3 px at least
    d = tl.data[OK]
    llm = list(d.text).index("llm")
    assert float(d.x[llm]) == pytest.approx(float(d.customdata[llm][1]), rel=1e-6)  # seconds
    with pytest.raises(InvalidInputError, match="scale must be one of"):
        spread.timeline(scale="log")


def test_static_picture_has_every_bar_and_its_axis(spread: Any, closing: Any) -> None:
    import xml.etree.ElementTree as ET

    tl = spread.timeline()
    closing(tl)
    root = ET.fromstring(tl.to_svg())
    ns = "{http://www.w3.org/2000/svg}"
    bars = [r for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert len(bars) == 6
    assert all(float(r.get("width")) >= 15 for r in bars)  # px, in a 920 px picture
    tips = sorted(r.find(f"{ns}title").text.split(":")[0] for r in bars)
    assert tips == ["llm", "parse", "plan", "tool_a", "tool_b", "write"]
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert "spread: 6 executions, 5 steps" in texts and "lane 1" in texts
    bundle = tl._repr_mimebundle_()
    assert bundle["text/plain"] == "Timeline(graph 'spread': 6 executions, 5 steps)"
    assert 'data-agentgraph-static="timeline"' in bundle["text/html"]


def test_title_leaves_room_for_the_toolbar(spread: Any, closing: Any) -> None:
    tl = spread.timeline()
    closing(tl)
    layout = tl.layout
    assert layout.modebar.orientation == "v" and layout.margin.r >= 40
    assert layout.title.xanchor == "left" and layout.title.yref == "container"
    assert layout.title.text == "spread: 6 executions, 5 steps"


# -- what timeline() shows with no argument ----------------------------------------------------------
def test_after_debug_it_shows_the_thread_that_last_ran_a_node(closing: Any) -> None:
    app = fan(fail_times=0)
    app.record()
    app.invoke({}, thread_id="earlier")
    dbg = app.debug({}, thread_id="dbg")  # a run that ran no node yet (waits at step 0)
    closing(dbg)
    tl = app.timeline()
    closing(tl)
    assert repr(tl) == "Timeline(graph 'fan', thread 'earlier': 4 executions, 3 steps)"
    dbg.step()
    dbg.step()
    tl2 = app.timeline()
    closing(tl2)
    # the debugger's steps are runs of its thread: all of them are shown, one group each
    assert repr(tl2) == "Timeline(graph 'fan', thread 'dbg': 3 executions in 2 runs, up to 1 step)"
    assert list(tl2.layout.yaxis.ticktext) == ["run 1 · lane 0", "run 2 · lane 0", "run 2 · lane 1"]
    dbg.cont()  # a timeline on a thread follows its next runs
    tl2.refresh()
    assert tl2.executions == 4 and "in 3 runs" in repr(tl2)
    # a new debugger waiting at step 0 does not blank the chart; its first step replaces it
    dbg2 = app.debug({}, thread_id="dbg2")
    closing(dbg2)
    tl2.refresh()
    assert tl2.executions == 4
    dbg2.step()
    tl2.refresh()
    assert repr(tl2) == "Timeline(graph 'fan': 1 execution, 1 step)"


def test_nothing_recorded_says_what_to_pass(closing: Any) -> None:
    app = fan(fail_times=0)
    app.invoke({}, thread_id="before-recording")
    tl = app.timeline()
    closing(tl)
    assert repr(tl) == "Timeline(graph 'fan': no runs yet)"
    hint = tl.layout.title.subtitle.text
    assert "run the graph" in hint and "fan.timeline('before-recording')" in hint
    assert "run the graph" in tl.to_svg()
    app.invoke({})
    tl.refresh()
    assert tl.layout.title.subtitle.text == "" and tl.bars == 4


# -- the first timeline in a fresh interpreter ---------------------------------------------------------
FIRST_DISPLAY = r"""
import sys, time
t = time.perf_counter()
from typing import TypedDict
from agentgraph_nb import END, START, StateGraph
class S(TypedDict, total=False):
    x: int
g = StateGraph(S, name="g").add_node("a", lambda s: {"x": 1}).add_edge(START, "a").add_edge("a", END)
app = g.compile(checkpointer=None)
app.record()
app.invoke({})
import agentgraph_nb.ui.dashboard  # imports plotly the way app.timeline() does
import plotly.basewidget
def refuse():
    raise AssertionError("plotly's Jupyter version check ran (it imports jupyterlab)")
plotly.basewidget.display_jupyter_version_warnings = refuse
tl = app.timeline()
bundle = tl._repr_mimebundle_()
dash = app.dashboard()
dash._repr_mimebundle_()
assert "application/vnd.jupyter.widget-view+json" in bundle
print(sorted(m for m in ("nbformat", "jsonschema", "jupyterlab") if m in sys.modules))
import plotly.io._renderers as r
print(bool(r.nbformat), r.nbformat.__version__ > "4.2")  # fig.show() still finds nbformat
"""


def test_first_timeline_imports_neither_nbformat_nor_jupyterlab() -> None:
    """The first timeline in a fresh kernel took 13 s: plotly imported nbformat -> jsonschema ->
    rfc3987_syntax (grammar compiled at import) and, under JupyterLab, the jupyterlab server
    package, for a version warning. Neither happens now; ``fig.show()`` still works."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", FIRST_DISPLAY], cwd=root, capture_output=True, text=True,
        timeout=120, env={**__import__("os").environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-2] == "[]" and lines[-1] == "True True"


def test_a_node_that_paused_the_run_or_handed_off_is_not_left_running(closing: Any) -> None:
    from agentgraph_nb import Command, interrupt

    def ask(s: S) -> S:
        return {"log": [interrupt("ok?")]}

    inner = StateGraph(S, name="inner")
    inner.add_node("hand", lambda s: Command(goto="ask", graph=Command.PARENT, update={"log": ["hand"]}))
    inner.add_edge(START, "hand")
    g = StateGraph(S, name="desk")
    g.add_node("agent", inner.compile(), destinations=("ask",)).add_node("ask", ask)
    g.add_edge(START, "agent").add_edge("ask", END)
    app = g.compile(checkpointer="memory")
    app.record()
    app.invoke({"log": []}, thread_id="t")
    tl = app.timeline("t")
    closing(tl)
    assert not bars(tl, RUNNING)
    assert [b["node"] for b in bars(tl, PAUSED)] == ["ask"]  # paused by interrupt() until the run ended
    assert "agent" in [b["node"] for b in bars(tl, OK)]  # its subgraph handed off: done
    assert any(b["node"].endswith("hand") for b in bars(tl, OK))
    app.invoke(Command(resume="yes"), thread_id="t")
    tl2 = app.timeline("t")
    closing(tl2)
    assert [b["node"] for b in bars(tl2, PAUSED)] == ["ask"] and not bars(tl2, RUNNING)
    assert [b["node"] for b in bars(tl2, OK)].count("ask") == 1  # the resumed run's ask finished
