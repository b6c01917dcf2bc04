"""Ray workers in the notebook front, fed with events (no cluster): ``node_worker`` events place
executions on workers in the executions frame and in the Timeline (one lane per worker, its
static picture too), and the Dashboard's worker panel draws what an executor reports.
The same views on a real two-node cluster: tests/test_worker_views_ray.py."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_timeline import chain

from agentgraph_nb import InvalidInputError
from agentgraph_nb.observe.frames import EXECUTION_COLUMNS, executions_frame
from agentgraph_nb.types import Event
from agentgraph_nb.ui._pictures import dashboard_svg
from agentgraph_nb.ui._workers import worker_arrays
from agentgraph_nb.ui.timeline import STATUSES

OK, RETRY = 0, 1
SVG = "{http://www.w3.org/2000/svg}"
W1 = {"worker": "alpha:101", "host": "alpha", "pid": 101, "node_id": "aaaa11112222", "ip": "10.0.0.1"}
W2 = {"worker": "beta:202", "host": "beta", "pid": 202, "node_id": "bbbb33334444", "ip": "10.0.0.2"}
W3 = {"worker": "alpha:103", "host": "alpha", "pid": 103, "node_id": "aaaa11112222", "ip": "10.0.0.1"}


def ev(kind: str, step: int = 0, node: str = "", ts: float = 0.0, duration: float = 0.0, attempt: int = 0,
       task: str = "", data: Any = None, run: str = "r1") -> Event:
    return Event(kind, run, None, step, node, 100.0 + ts, duration, attempt, task, data)


def fan_out_events(run: str = "r1", t: float = 0.0) -> list[Event]:
    """One run, as a Ray executor reports it: step 1 sends "work" four times; the tasks run
    0.3 s each on two workers of two Ray nodes (two at a time); task 1:3 fails once on the
    second worker, and its retry runs on a third; step 2 runs "join" on the driver (no
    ``node_worker``)."""
    out = [ev("run_start", 0, ts=t, run=run), ev("step_start", 1, ts=t, run=run)]
    out += [ev("node_start", 1, "work", t + 0.01 * i, 0.0, 1, f"1:{i}", run=run) for i in range(4)]
    placed = [(0, W1, 0.40), (1, W2, 0.42), (2, W1, 0.80)]
    for i, w, back in placed:
        out.append(ev("node_worker", 1, "work", t + back, 0.3, 0, f"1:{i}", dict(w), run=run))
        out.append(ev("node_end", 1, "work", t + back + 0.001, back + 0.001 - 0.01 * i, 1, f"1:{i}", run=run))
    out.append(ev("node_worker", 1, "work", t + 0.70, 0.25, 0, "1:3", dict(W2), run=run))
    out.append(ev("node_retry", 1, "work", t + 0.701, 0.671, 1, "1:3", ConnectionError("lost"), run=run))
    out.append(ev("node_start", 1, "work", t + 0.71, 0.0, 2, "1:3", run=run))
    out.append(ev("node_worker", 1, "work", t + 1.05, 0.3, 0, "1:3", dict(W3), run=run))
    out.append(ev("node_end", 1, "work", t + 1.051, 0.341, 2, "1:3", run=run))
    out.append(ev("step_start", 2, ts=t + 1.06, run=run))
    out.append(ev("node_start", 2, "join", t + 1.06, 0.0, 1, "2:0", run=run))
    out.append(ev("node_end", 2, "join", t + 1.07, 0.01, 1, "2:0", run=run))
    out.append(ev("run_end", 2, ts=t + 1.1, duration=1.1, data={"status": "completed"}, run=run))
    return out


@pytest.fixture
def closing() -> Any:
    made: list[Any] = []
    yield made.append
    for w in made:
        w.close()


def lanes_of(tl: Any) -> dict[str, list[tuple[str, float, float]]]:
    """Lane label -> [(node, start, length)] of the bars drawn there (every status)."""
    ticks = list(tl.layout.yaxis.ticktext)
    out: dict[str, list[tuple[str, float, float]]] = {t: [] for t in ticks}
    for trace in tl.data[: len(STATUSES)]:
        for y, text, base, x in zip(trace.y, trace.text, trace.base, trace.x):
            out[ticks[int(y)]].append((str(text), float(base), float(x)))
    return out


# -- the data ---------------------------------------------------------------------------------------
def test_node_worker_events_say_where_each_attempt_ran() -> None:
    app = chain("fan")
    app.record().extend(fan_out_events())
    df = executions_frame(app)
    assert tuple(df.columns) == EXECUTION_COLUMNS
    assert EXECUTION_COLUMNS[-3:] == ("worker", "host", "ray_node")
    rows = {(r.task, r.attempt): r for r in df.itertuples()}
    assert rows[("1:0", 1)].worker == "alpha:101" and rows[("1:0", 1)].host == "alpha"
    assert rows[("1:1", 1)].worker == "beta:202" and rows[("1:1", 1)].ray_node == "bbbb33334444"
    # node_worker carries attempt 0: it belongs to the attempt running then, the failed one...
    assert rows[("1:3", 1)].status == "retry" and rows[("1:3", 1)].worker == "beta:202"
    # ... and its retry, elsewhere
    assert rows[("1:3", 2)].worker == "alpha:103" and rows[("1:3", 2)].status == "ok"
    assert pd.isna(rows[("2:0", 1)].worker) and pd.isna(rows[("2:0", 1)].host)  # ran on the driver
    assert df.groupby("worker").size().to_dict() == {"alpha:101": 2, "alpha:103": 1, "beta:202": 2}
    # the event itself: an instant whose duration is the time on the worker
    events = app.events()
    placed = events[events.kind == "node_worker"]
    assert sorted(placed.duration.tolist()) == pytest.approx([0.25, 0.3, 0.3, 0.3, 0.3])


def test_the_recorder_keeps_one_small_dict_per_worker() -> None:
    app = chain("fan")
    rec = app.record()
    rec.extend(fan_out_events("r1") + fan_out_events("r2", 2.0))
    kept = [r[9] for r in rec.records() if r[0] == "node_worker"]
    assert len(kept) == 10
    assert kept[0] == W1
    assert {id(d) for d in kept if d["worker"] == "alpha:101"} == {id(kept[0])}  # shared, not copied


# -- the Timeline ------------------------------------------------------------------------------------
def test_timeline_gets_a_lane_per_worker_labelled_with_host_and_ray_node(closing: Any) -> None:
    app = chain("fan")
    app.record().extend(fan_out_events())
    tl = app.timeline()
    closing(tl)
    assert tl.lanes == "auto" and tl.lanes_used == "worker"
    lanes = lanes_of(tl)
    # workers of one Ray node together, in the order first seen; then the node run on the driver
    assert list(lanes) == [
        "alpha · node aaaa11 · pid 101",
        "alpha · node aaaa11 · pid 103",
        "beta · node bbbb33 · pid 202",
        "driver (or worker unknown)",
    ]
    assert [b[0] for b in lanes["alpha · node aaaa11 · pid 101"]] == ["work", "work"]
    assert [b[0] for b in lanes["driver (or worker unknown)"]] == ["join"]
    assert len(lanes["beta · node bbbb33 · pid 202"]) == 2
    assert len(tl.data[RETRY].x) == 1 and tl.data[RETRY].y[0] == 2  # the failed attempt, on beta
    # a bar spans the time on the worker, ending when its result (or error) came back
    for bars in list(lanes.values())[:3]:
        for _, _start, length in bars:
            assert length == pytest.approx(0.3, abs=1e-6) or length == pytest.approx(0.25, abs=1e-6)
    first = sorted(lanes["alpha · node aaaa11 · pid 101"])
    assert first[0][1] == pytest.approx(0.1, abs=1e-6) and first[1][1] == pytest.approx(0.5, abs=1e-6)
    assert all(b1[1] + b1[2] <= b2[1] + 1e-9 for b1, b2 in itertools.pairwise(first))  # one at a time
    hover = [h for h in tl.data[OK].hovertext if "beta:202" in h]
    assert len(hover) == 1 and "on Ray worker beta:202 (node bbbb3333): 300 ms there" in hover[0]
    assert "one lane per Ray worker" in tl.layout.title.subtitle.text
    assert repr(tl) == "Timeline(graph 'fan': 6 executions, 2 steps, 1 retried)"  # no ids, no times


def test_lanes_option_task_keeps_task_lanes_and_worker_forces_worker_lanes(closing: Any) -> None:
    app = chain("fan")
    app.record().extend(fan_out_events())
    by_task = app.timeline(lanes="task")
    closing(by_task)
    assert by_task.lanes_used == "task"
    assert list(by_task.layout.yaxis.ticktext) == ["lane 0", "lane 1", "lane 2", "lane 3"]
    plain = chain("plain")
    plain.record()
    plain.invoke({})
    local = plain.timeline()
    closing(local)
    assert local.lanes_used == "task"  # nothing ran on Ray: lanes as always
    forced = plain.timeline(lanes="worker")
    closing(forced)
    assert forced.lanes_used == "worker"
    assert list(forced.layout.yaxis.ticktext) == ["driver (or worker unknown)"]
    assert sorted(b[0] for b in lanes_of(forced)["driver (or worker unknown)"]) == ["a", "b", "c"]
    with pytest.raises(InvalidInputError, match="lanes must be one of 'auto', 'task', 'worker'"):
        plain.timeline(lanes="workers")


def test_a_running_execution_waits_in_its_own_lane_until_its_worker_is_known(closing: Any) -> None:
    app = chain("fan")
    rec = app.record()
    events = fan_out_events()
    cut = next(i for i, e in enumerate(events) if e.kind == "node_worker" and e.task_id == "1:2")
    rec.extend(events[:cut])  # task 1:2 runs and the retry of 1:3 too: their worker is unknown
    tl = app.timeline()
    closing(tl)
    assert list(lanes_of(tl))[-1] == "in flight: worker known at its end"
    assert len(lanes_of(tl)["in flight: worker known at its end"]) == 2
    rec.extend(events[cut:])
    tl.refresh()
    assert "in flight: worker known at its end" not in lanes_of(tl)
    assert len(lanes_of(tl)["alpha · node aaaa11 · pid 101"]) == 2


def test_runs_of_a_batch_share_the_worker_lanes_without_superstep_lines(closing: Any) -> None:
    app = chain("fan")
    rec = app.record()
    tl = app.timeline()  # open before the runs: they are drawn live, side by side
    closing(tl)
    rec.extend(fan_out_events("r1") + fan_out_events("r2", 0.05))
    tl.refresh()
    assert tl.lanes_used == "worker"
    lanes = lanes_of(tl)
    assert len(lanes) == 4 and sum(len(v) for v in lanes.values()) == 12
    assert len(lanes["alpha · node aaaa11 · pid 101"]) == 4  # two of each run
    step_lines = tl.data[len(STATUSES)]
    assert [x for x in step_lines.x if x is not None] == []  # superstep lines of which run?
    one = app.timeline("r1")
    closing(one)
    assert one.lanes_used == "worker"
    assert len([x for x in one.data[len(STATUSES)].x if x is not None]) == 4  # its two steps


def test_static_picture_of_the_timeline_shows_the_worker_lanes(closing: Any) -> None:
    app = chain("fan")
    app.record().extend(fan_out_events())
    tl = app.timeline()
    closing(tl)
    root = ET.fromstring(tl.to_svg())
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for label in ("alpha · node aaaa11 · pid 101", "beta · node bbbb33 · pid 202", "driver (or worker unknown)"):
        assert label in texts
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 6
    assert 'data-agentgraph-static="timeline"' in tl._repr_mimebundle_()["text/html"]


# -- the Dashboard's worker panel (what it draws from an executor's worker_stats()) ----------------
ROWS = [
    {"worker": "alpha:101", "host": "alpha", "node_id": "aaaa11112222", "done": 7, "busy_s": 2.1,
     "nodes_in_flight": 1, "runs_in_flight": 1},
    {"worker": "beta:202", "host": "beta", "node_id": "bbbb33334444", "done": 5, "busy_s": 1.5,
     "nodes_in_flight": 1, "runs_in_flight": 1},
    {"worker": "alpha:103", "host": "alpha", "node_id": "aaaa11112222", "done": 0, "busy_s": 0.0,
     "nodes_in_flight": 2, "runs_in_flight": 1},
]


def test_worker_panel_rows_are_grouped_by_ray_node() -> None:
    w = worker_arrays(ROWS, unplaced=3)
    assert w["labels"] == ["alpha · node aaaa11 · pid 101", "alpha · node aaaa11 · pid 103",
                           "beta · node bbbb33 · pid 202"]
    assert w["nodes_in_flight"].tolist() == [1, 2, 1] and w["runs_in_flight"].tolist() == [1, 1, 1]
    assert w["done"].tolist() == [7, 0, 5] and w["busy"].tolist() == pytest.approx([2.1, 0.0, 1.5])
    assert w["machines"] == 2 and w["unplaced"] == 3
    assert worker_arrays([], 0)["labels"] == [] and not worker_arrays([], 0)["done"].size


def test_static_picture_of_the_dashboard_has_the_worker_panel() -> None:
    base = {"name": "fan", "nodes": ["work"], "lat": np.full((3, 1), np.nan), "errors": np.zeros(1),
            "retries": np.zeros(1), "tokens_in": np.zeros(1), "tokens_out": np.zeros(1), "cost": np.zeros(1),
            "throughput": (np.zeros(0), np.zeros(0), 1.0), "durations": (np.zeros(0), np.zeros(0)),
            "usage": False}
    plain = ET.fromstring(dashboard_svg({**base, "workers": None}))
    root = ET.fromstring(dashboard_svg({**base, "workers": worker_arrays(ROWS, 3)}))
    assert float(root.get("height")) > float(plain.get("height"))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Ray workers" in texts and "in flight now" in texts and "node executions done" in texts
    assert "alpha · node aaaa11 · pid 103" in texts and "beta · node bbbb33 · pid 202" in texts
    assert any(t and "3 in flight with no worker known yet" in t for t in texts)
    assert "2.1 s" in texts and "7" in texts  # busy seconds and executions done, as numbers
    tips = [r.find(f"{SVG}title").text for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert "alpha · node aaaa11 · pid 103: nodes in flight 2" in tips
    assert "Ray workers" not in [t.text for t in plain.iter(f"{SVG}text")]


def test_dashboard_refuses_workers_that_are_not_an_executor() -> None:
    from agentgraph_nb.ui.dashboard import Dashboard

    with pytest.raises(InvalidInputError, match="workers= takes the Ray executor"):
        Dashboard(chain(), workers="ray")
