"""The Ray executor at its edges, on a real two-node cluster: processes and machines that die
mid-node, a driver that dies mid-run, bad input (unreachable cluster, resources no machine has,
state that cannot travel), traces that span the cluster, batches."""

from __future__ import annotations

import operator
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

pytest.importorskip("ray")

from ray import cloudpickle

from agentgraph_nb import (
    START,
    ClusterUnreachableError,
    GraphValidationError,
    PlacementError,
    StateGraph,
    UnpicklableStateError,
)

cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.timeout(600)


class S(TypedDict, total=False):
    x: int
    log: Annotated[list[str], operator.add]
    items: list[Any]
    trace: str


def test_a_worker_process_that_dies_mid_node_loses_nothing(ray_executor: Any, tmp_path: Path) -> None:
    marker = str(tmp_path / "died-once")

    def fragile(s: Any) -> Any:
        if not os.path.exists(marker):
            Path(marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)  # the worker process dies in the middle of the node
        return {"log": ["fragile"], "x": s["x"] + 1}

    g = StateGraph(S).add_node("a", lambda s: {"log": ["a"]}).add_node("fragile", fragile)
    g.add_edge(START, "a").add_edge("a", "fragile")
    seen: list[Any] = []
    out = g.compile().invoke({"x": 1}, executor=ray_executor, listeners=[seen.append])
    assert out == {"x": 2, "log": ["a", "fragile"]}
    dead = int(Path(marker).read_text())
    placed = [e.data["pid"] for e in seen if e.kind == "node_worker" and e.node == "fragile"]
    assert placed and placed[-1] != dead  # it ran again, in another process
    assert [e.kind for e in seen].count("node_error") == 0


def test_a_machine_that_dies_mid_node_loses_nothing(ray_cluster: Any, ray_executor: Any, tmp_path: Path) -> None:
    # only machines of 2 CPUs can run the node: one joins, the node starts there, the machine dies,
    # a replacement joins and the node runs again there
    started = tmp_path / "started"

    def heavy(s: Any) -> Any:
        import ray

        with open(started, "a") as f:
            f.write(ray.get_runtime_context().get_node_id() + "\n")
        time.sleep(4 if len(started.read_text().split()) == 1 else 0)
        return {"log": ["heavy"]}

    g = StateGraph(S).add_node("heavy", heavy, resources={"num_cpus": 2}).add_edge(START, "heavy")
    app = g.compile()
    ray_cluster.num_cpus.append(2)
    first = ray_cluster.add_node()
    second = None
    try:
        result: dict[str, Any] = {}
        t = threading.Thread(target=lambda: result.update(out=app.invoke({}, executor=ray_executor)))
        t.start()
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), "the node never started"
        ray_cluster.kill_node(first)  # the whole machine: raylet, object store, workers
        second = ray_cluster.add_node()
        t.join(120)
        assert not t.is_alive(), "the run did not finish after its machine died"
        assert result["out"] == {"log": ["heavy"]}
        ran_on = started.read_text().split()
        assert len(ran_on) == 2 and ran_on[0] != ran_on[1]
    finally:
        ray_cluster.kill_node(first)
        if second is not None:
            ray_cluster.kill_node(second)


def test_a_driver_that_dies_leaves_the_thread_resumable_from_the_shared_store(
        ray_cluster: Any, ray_executor: Any, redis_server: Any, tmp_path: Path) -> None:
    url = f"{redis_server.url}?prefix=driver-{time.time_ns()}"
    hits = tmp_path / "hits"
    script = tmp_path / "driver_graph.py"
    script.write_text(textwrap.dedent(f'''
        import os, sys, time
        from agentgraph_nb import START, StateGraph

        def a(s):
            open({str(hits)!r}, "a").write("a\\n")
            return {{"log": ["a"]}}

        def b(s):
            open({str(hits)!r}, "a").write("b\\n")
            if open({str(hits)!r}).read().split().count("b") == 1:  # the first driver's b: it dies meanwhile
                time.sleep(60)
            return {{"log": ["b"]}}

        def build():
            g = StateGraph(dict).add_node("a", a).add_node("b", b).add_edge(START, "a").add_edge("a", "b")
            return g.compile(checkpointer={url!r})

        if __name__ == "__main__":
            import ray
            from agentgraph_nb.distributed import RayExecutor
            ray.init(address=sys.argv[1], _node_ip_address="127.0.0.1", logging_level="ERROR")
            build().invoke({{"log": []}}, thread_id="job-1", executor=RayExecutor())
    '''))
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    errors = open(tmp_path / "driver.log", "wb")
    driver = subprocess.Popen([sys.executable, str(script), ray_cluster.address], env=env,
                              stdout=errors, stderr=errors)
    sys.path.insert(0, str(tmp_path))
    try:
        import driver_graph  # type: ignore[import-not-found]

        assert driver_graph.__file__ == str(script)
        cloudpickle.register_pickle_by_value(driver_graph)  # the workers cannot import it
        app = driver_graph.build()
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and not (
                    "b" in (hits.read_text().split() if hits.exists() else []) and app.get_state("job-1").next):
                time.sleep(0.2)
            assert "b" in hits.read_text().split(), "the first driver never reached b"
        finally:
            driver.kill()  # the driver dies while b runs on the cluster
            driver.wait()
            errors.close()
        assert app.get_state("job-1").next == ("b",), (tmp_path / "driver.log").read_text()[-3000:]
        out = app.invoke(None, thread_id="job-1", executor=ray_executor)  # another driver takes over
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("driver_graph", None)
    assert out == {"log": ["b"]}  # a plain dict state: each write replaces the key
    assert hits.read_text().split() == ["a", "b", "b"]  # a never ran again


def test_an_unreachable_cluster_is_a_clear_error_naming_it_and_how_long(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = textwrap.dedent(f"""
        from agentgraph_nb import StateGraph, START, ClusterUnreachableError
        from agentgraph_nb.distributed import RayExecutor
        app = StateGraph(dict).add_node("a", lambda s: {{}}).add_edge(START, "a").compile()
        try:
            app.invoke({{}}, executor=RayExecutor(address="127.0.0.1:{port}", connect_timeout=1.5))
        except ClusterUnreachableError as e:
            print("ERR", e)
    """)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("ERR")), "")
    assert f"127.0.0.1:{port}" in line and "tried for 1." in line, out.stdout + out.stderr
    assert issubclass(ClusterUnreachableError, ConnectionError)


def test_resources_no_machine_has_fail_after_the_placement_timeout(ray_executor: Any) -> None:
    g = StateGraph(S).add_node("train", lambda s: {"log": ["x"]}, resources={"num_gpus": 4, "num_cpus": 1})
    app = g.add_edge(START, "train").compile()
    t = time.monotonic()
    with pytest.raises(PlacementError) as err:
        app.invoke({}, executor=ray_executor)
    waited = time.monotonic() - t
    assert 2.5 <= waited < 30
    msg = str(err.value)
    assert "'train'" in msg and "GPU=4" in msg and "waited 3." in msg and "CPU=1" in msg
    assert err.value.node == "train"


def test_state_that_cannot_travel_names_the_node_and_the_path(ray_executor: Any) -> None:
    g = StateGraph(S).add_node("use", lambda s: {"log": ["used"]}).add_edge(START, "use")
    with pytest.raises(UnpicklableStateError) as err:
        g.compile().invoke({"items": [1, {"handle": threading.Lock()}]}, executor=ray_executor)
    assert err.value.path == "state['items'][1]['handle']"
    assert "'use'" in str(err.value) and "lock" in str(err.value).lower()


def test_resources_are_checked_when_the_graph_is_built() -> None:
    g = StateGraph(S)
    with pytest.raises(GraphValidationError, match=r"unknown resource 'num_gpu'.*num_gpus"):
        g.add_node("a", lambda s: {}, resources={"num_gpu": 1})
    with pytest.raises(GraphValidationError, match=r"resources\['num_cpus'\] must be a number >= 0"):
        g.add_node("b", lambda s: {}, resources={"num_cpus": -1})
    g.add_node("c", lambda s: {"log": ["c"]}, resources={"num_cpus": 0.5, "memory": 1e6})
    # without an executor the graph runs here, resources or not
    assert g.add_edge(START, "c").compile().invoke({}) == {"log": ["c"]}


def test_one_trace_spans_the_driver_and_the_workers(ray_executor: Any) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from agentgraph_nb.observe.otel import instrument

    def work(s: Any) -> Any:
        from opentelemetry import trace  # in the worker: the context the driver sent

        return {"trace": format(trace.get_current_span().get_span_context().trace_id, "032x")}

    app = StateGraph(S).add_node("work", work).add_edge(START, "work").compile()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with instrument(app, tracer_provider=provider):
        out = app.invoke({}, executor=ray_executor)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    node = spans["agentgraph.node work"]
    task = next(s for n, s in spans.items() if n.startswith("ray.task"))
    assert out["trace"] == format(node.context.trace_id, "032x")  # the worker's code saw the run's trace
    assert task.parent is not None and task.parent.span_id == node.context.span_id
    assert task.attributes["process.pid"] != os.getpid()


def test_batch_with_executor_ray_uses_the_joined_cluster(ray_executor: Any) -> None:
    def square(s: Any) -> Any:
        return {"x": s["x"] ** 2, "log": [str(os.getpid())]}

    app = StateGraph(S).add_node("square", square).add_edge(START, "square").compile()
    out = app.batch([{"x": i} for i in range(6)], executor="ray")
    assert [o["x"] for o in out] == [i * i for i in range(6)]
    assert all(int(o["log"][0]) != os.getpid() for o in out)
