"""Ray workers in the notebook front, on a real two-node Ray cluster (1 CPU each): a fan-out run
shows two workers of two Ray nodes in the executions frame, the Timeline's lanes and the
Dashboard's worker panel (live: nodes in flight while they run); ``batch(executor=...,
progress=True)`` runs through the async batch and shows a progress bar."""

from __future__ import annotations

import itertools
import operator
import sys
import threading
import time
import xml.etree.ElementTree as ET
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import END, START, Send, StateGraph

ray_cloudpickle = pytest.importorskip("ray.cloudpickle", reason="ray is not installed (pip install 'agentgraph_nb[ray]')")
# Ray workers cannot import this test module: its node functions travel by value
ray_cloudpickle.register_pickle_by_value(sys.modules[__name__])

SVG = "{http://www.w3.org/2000/svg}"


class S(TypedDict, total=False):
    n: int
    seconds: float
    i: int
    out: Annotated[list[int], operator.add]


def work(s: S) -> S:
    time.sleep(s.get("seconds", 0.3))
    return {"out": [s["i"]]}


def fan_out(name: str = "fan") -> Any:
    """START sends ``n`` items to "work" (each sleeps ``seconds``), then END."""
    g = StateGraph(S, name=name)
    g.add_node("work", work)
    g.add_conditional_edges(
        START, lambda s: [Send("work", {"i": i, "seconds": s.get("seconds", 0.3)}) for i in range(s["n"])]
    )
    g.add_edge("work", END)
    return g.compile(checkpointer=None)


@pytest.fixture(scope="module")
def warm(ray_executor: Any) -> Any:
    """The module's executor once both Ray nodes have a worker process up (a node's first
    worker takes seconds to start here; the tests are about what is shown, not that wait)."""
    app = fan_out("warmup")
    deadline = time.monotonic() + 90
    while len({w["node_id"] for w in ray_executor.workers.values()}) < 2:
        assert time.monotonic() < deadline, f"one Ray node never ran a task: {ray_executor.workers}"
        app.invoke({"n": 4, "seconds": 0.2}, executor=ray_executor)
    yield ray_executor
    ray_executor.unwatch()


@pytest.fixture
def closing() -> Any:
    made: list[Any] = []
    yield made.append
    for w in made:
        w.close()


def test_a_fan_out_shows_two_workers_in_the_frame_timeline_and_dashboard(warm: Any, closing: Any) -> None:
    app = fan_out()
    app.record()
    dash = app.dashboard(workers=warm)
    closing(dash)
    assert warm.watching
    tl = app.timeline()
    closing(tl)
    out = app.invoke({"n": 6}, executor=warm)
    assert sorted(out["out"]) == list(range(6))

    # the executions frame: every "work" ran on a Ray worker, on both Ray nodes
    from agentgraph_nb.observe.frames import executions_frame

    df = executions_frame(app)
    assert len(df) == 6 and df.worker.notna().all() and df.host.notna().all()
    assert df.ray_node.nunique() == 2 and df.worker.nunique() >= 2
    nodes = set(df.ray_node)
    assert nodes <= {w["node_id"] for w in warm.workers.values()}

    # the Timeline: a lane per worker, labelled with its host and Ray node
    tl.refresh()
    assert tl.lanes_used == "worker"
    labels = list(tl.layout.yaxis.ticktext)
    assert len(labels) == df.worker.nunique()
    for worker, host, node in set(zip(df.worker, df.host, df.ray_node)):
        pid = worker.rpartition(":")[2]
        assert f"{host[:19]} · node {node[:6]} · pid {pid}" in labels
    drawn = sorted(float(y) for t in tl.data[:1] for y in t.y)
    assert len(drawn) == 6 and len(set(drawn)) == len(labels)
    # one worker runs one node at a time: its bars (time on the worker) do not overlap
    for lane in set(drawn):
        spans = sorted((float(b), float(b) + float(x)) for b, x, y in zip(tl.data[0].base, tl.data[0].x, tl.data[0].y)
                       if float(y) == lane)
        # (bars end when the driver hears back: on a loaded machine that lags the worker by up to ~0.1 s)
        assert all(a[1] <= b[0] + 0.15 for a, b in itertools.pairwise(spans)), spans
        assert all(0.28 <= e - s <= 0.6 for s, e in spans), spans
    texts = [t.text for t in ET.fromstring(tl.to_svg()).iter(f"{SVG}text")]
    assert set(labels) <= set(texts)  # the static picture shows the worker lanes too

    # the Dashboard: one row per worker, executions done per worker as the executor counts them
    dash.refresh()
    w = dash._picture["workers"]
    assert len(w["labels"]) >= 2 and w["machines"] == 2
    done = dict(zip(w["workers"], w["done"].tolist()))
    assert done == {k: float(v["done"]) for k, v in warm.workers.items()}
    assert list(dash.worker_figure.data[2].x) == list(w["done"])
    assert "Ray workers on 2 nodes" in dash._header.value
    assert w["nodes_in_flight"].sum() == 0
    texts = [t.text for t in ET.fromstring(dash.to_svg()).iter(f"{SVG}text")]
    assert "Ray workers" in texts and set(w["labels"]) <= set(texts)


def test_the_dashboard_shows_nodes_in_flight_per_worker_while_they_run(warm: Any, closing: Any) -> None:
    app = fan_out("live")
    dash = app.dashboard(workers=warm)
    closing(dash)
    seen: list[dict[str, Any]] = []
    # 3 s a node: long enough that a node whose worker is slow to take its task on a loaded
    # machine still overlaps the other (with 1.5 s, CI once saw them run one after the other)
    run = threading.Thread(target=app.invoke, args=({"n": 4, "seconds": 3.0},), kwargs={"executor": warm})
    run.start()
    try:
        deadline = time.monotonic() + 30
        while run.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)  # the dashboard redraws by itself (every 0.25 s while nodes run)
            w = dash._picture.get("workers")
            if w is not None:
                seen.append({"running": dict(zip(w["workers"], w["nodes_in_flight"].tolist())),
                             "runs": w["runs_in_flight"].sum(), "waiting": w["unplaced"],
                             "header": dash._header.value})
    finally:
        run.join(30)
    both = [s for s in seen if sum(1 for v in s["running"].values() if v == 1) == 2]
    assert both, seen  # at some moment, one node running on each of two workers
    assert any(s["waiting"] >= 1 for s in seen), seen  # 4 nodes, 2 CPUs: some wait for a worker
    assert all(max(s["running"].values(), default=0) <= 1 for s in seen)  # 1 CPU per node
    assert any("2 executions running" in s["header"] for s in seen)
    dash.refresh()
    w = dash._picture["workers"]
    assert w["nodes_in_flight"].sum() == 0 and w["unplaced"] == 0
    frame = warm.worker_frame()
    assert list(frame.columns) == ["worker", "host", "node_id", "done", "busy_s", "nodes_in_flight",
                                   "runs_in_flight"]
    assert frame.nodes_in_flight.sum() == 0 and frame.busy_s.sum() > 4 * 3.0


def test_batch_with_an_executor_runs_through_abatch_with_a_progress_bar(warm: Any, capfd: Any) -> None:
    app = fan_out("batch")
    threads: set[str] = set()
    app.listen(lambda e: threads.add(threading.current_thread().name) if e.kind == "node_start" else None)
    out = app.batch([{"n": 2, "seconds": 0.05}] * 5, executor=warm, progress=True)
    assert [sorted(o["out"]) for o in out] == [[0, 1]] * 5
    # the runs shared one event loop (abatch), not the thread pool of sync batches
    assert threads and not any(t.startswith("agentgraph_nb-batch") for t in threads), threads
    err = capfd.readouterr().err
    assert "batch" in err and "5/5" in err and "failed=0" in err


def test_an_attempt_that_fails_on_a_worker_says_where_it_ran(warm: Any, tmp_path: Any, closing: Any) -> None:
    from agentgraph_nb import RetryPolicy
    from agentgraph_nb.observe.frames import executions_frame

    marker = str(tmp_path / "failed-once")

    def flaky(s: S) -> S:  # fails on its first attempt, wherever that runs
        import os

        if not os.path.exists(marker):
            open(marker, "w").close()
            raise ConnectionError("first attempt fails")
        return {"out": [1]}

    g = StateGraph(S, name="flaky")
    g.add_node("flaky", flaky, retry=RetryPolicy(max_attempts=2, initial_interval=0.01, jitter=False))
    g.add_edge(START, "flaky").add_edge("flaky", END)
    app = g.compile(checkpointer=None)
    app.record()
    before = sum(w["done"] for w in warm.workers.values())
    assert app.invoke({}, executor=warm)["out"] == [1]
    df = executions_frame(app)
    assert df.status.tolist() == ["retry", "ok"]
    assert df.worker.notna().all() and df.ray_node.notna().all()  # the failed attempt too
    assert "ConnectionError: first attempt fails" in df.error.iloc[0]
    kinds = [k for k in app.events().kind if k in ("node_worker", "node_retry", "node_end")]
    assert kinds == ["node_worker", "node_retry", "node_worker", "node_end"]
    assert sum(w["done"] for w in warm.workers.values()) == before + 2
    tl = app.timeline()
    closing(tl)
    assert tl.lanes_used == "worker" and len(tl.data[1].x) == 1  # the retried attempt, on its worker
    assert "driver (or worker unknown)" not in list(tl.layout.yaxis.ticktext)
