"""Prometheus metrics, the StatsD sink and health checks (agentgraph_nb.observe), against real
endpoints: prometheus_client's HTTP server scraped over HTTP, a real UDP socket standing as the
StatsD server, health endpoints probed over HTTP with real Postgres and Redis servers."""

from __future__ import annotations

import json
import operator
import socket
import time
import urllib.error
import urllib.request
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from agentgraph_nb import START, Command, RetryPolicy, StateGraph, interrupt


class S(TypedDict, total=False):
    log: Annotated[list, operator.add]
    answer: str


def graph(name: str = "shop", checkpointer: Any = "memory") -> Any:
    tries = {"n": 0}

    def fetch(s: S) -> dict[str, Any]:
        tries["n"] += 1
        if tries["n"] % 2:  # every other call fails once, then the retry succeeds
            raise ConnectionError("flaky")
        return {"log": ["fetched"]}

    def decide(s: S) -> dict[str, Any]:
        if s.get("answer") == "boom":
            raise ValueError("bad order")
        return {"log": ["decided"]}

    def ask(s: S) -> dict[str, Any]:
        return {"answer": interrupt("ok?")}

    g = StateGraph(S, name=name)
    g.add_node("fetch", fetch, retry=RetryPolicy(max_attempts=2, initial_interval=0.0, jitter=False))
    g.add_node("decide", decide).add_node("ask", ask)
    g.add_edge(START, "fetch").add_edge("fetch", "decide").add_edge("decide", "ask")
    return g.compile(checkpointer=checkpointer)


def scrape(url: str) -> dict[str, float]:
    """Prometheus' text format, as {sample with labels: value}."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_prometheus_counts_and_times_runs_and_nodes_over_http() -> None:
    pytest.importorskip("prometheus_client")
    from prometheus_client import CollectorRegistry

    from agentgraph_nb.observe import prometheus

    registry = CollectorRegistry()
    app = graph()
    other = graph("other")
    with prometheus.instrument(app, registry), prometheus.instrument(other, registry), \
            prometheus.serve(registry=registry) as server:
        app.invoke({}, thread_id="a")                            # pauses at ask
        app.invoke(Command(resume="fine"), thread_id="a")        # completes
        with pytest.raises(ValueError):
            app.invoke({"answer": "boom"}, thread_id="b")       # fails in decide
        other.invoke({}, thread_id="c")
        m = scrape(server.url)
    g = 'graph="shop"'
    assert m[f'agentgraph_runs_total{{{g},status="interrupted"}}'] == 1
    assert m[f'agentgraph_runs_total{{{g},status="completed"}}'] == 1
    assert m[f'agentgraph_runs_total{{{g},status="failed"}}'] == 1
    assert m['agentgraph_runs_total{graph="other",status="interrupted"}'] == 1
    assert m[f"agentgraph_runs_in_flight{{{g}}}"] == 0
    assert m[f"agentgraph_run_duration_seconds_count{{{g}}}"] == 3
    assert m[f'agentgraph_node_executions_total{{{g},node="fetch",status="ok"}}'] == 2
    assert m[f'agentgraph_node_retries_total{{{g},node="fetch"}}'] == 2
    assert m[f'agentgraph_node_executions_total{{{g},node="decide",status="error"}}'] == 1
    assert m[f'agentgraph_node_executions_total{{{g},node="decide",status="ok"}}'] == 1
    assert m[f'agentgraph_node_executions_total{{{g},node="ask",status="ok"}}'] == 1  # the resumed run
    assert m[f'agentgraph_interrupts_total{{{g},node="ask"}}'] == 1
    assert m[f'agentgraph_node_duration_seconds_count{{{g},node="fetch"}}'] == 2
    assert m[f'agentgraph_node_duration_seconds_bucket{{{g},le="+Inf",node="fetch"}}'] == 2
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url, timeout=2)  # stopped with the block


def test_prometheus_counts_model_tokens() -> None:
    pytest.importorskip("prometheus_client")
    pytest.importorskip("openai")
    from prometheus_client import CollectorRegistry

    from agentgraph_nb.llm import OpenAIChat
    from agentgraph_nb.observe import prometheus
    from agentgraph_nb.testing import ModelServer

    registry = CollectorRegistry()
    with ModelServer() as server:
        model = OpenAIChat(model="m", base_url=server.base_url, api_key="k", price={"input": 1.0, "output": 2.0})

        def talk(s: S) -> dict[str, Any]:
            return {"answer": model.invoke([{"role": "user", "content": "hello"}])["content"]}

        app = StateGraph(S, name="chat").add_node("talk", talk).add_edge(START, "talk").compile()
        prometheus.instrument(app, registry)
        app.invoke({})
    tin = registry.get_sample_value("agentgraph_llm_tokens_total", {"graph": "chat", "node": "talk", "kind": "in"})
    tout = registry.get_sample_value("agentgraph_llm_tokens_total", {"graph": "chat", "node": "talk", "kind": "out"})
    assert tin and tin > 0 and tout and tout > 0
    stats = app.metrics.node("talk")
    assert (tin, tout) == (stats.tokens_in, stats.tokens_out)
    cost = registry.get_sample_value("agentgraph_llm_cost_total", {"graph": "chat", "node": "talk"})
    assert cost == pytest.approx((tin * 1.0 + tout * 2.0) / 1e6)


class UdpServer:
    """A real UDP socket, where a StatsD server would listen."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]

    def lines(self) -> list[str]:
        out: list[str] = []
        while True:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return out
            out.extend(data.decode().splitlines())


def test_statsd_sends_counters_and_timers_over_udp() -> None:
    pytest.importorskip("statsd")
    from agentgraph_nb.observe import statsd

    udp = UdpServer()
    app = graph("web shop")  # a space: StatsD would split on it
    with statsd.instrument(app, port=udp.port, prefix="ag"):
        app.invoke({}, thread_id="s")
        app.invoke(Command(resume="y"), thread_id="s")
    app.invoke({}, thread_id="t")  # after the block: nothing more is sent
    lines = udp.lines()
    udp.sock.close()
    counts: dict[str, int] = {}
    timers: dict[str, int] = {}
    for ln in lines:
        name, _, rest = ln.partition(":")
        value, _, kind = rest.partition("|")
        if kind.startswith("c"):
            counts[name] = counts.get(name, 0) + int(value)
        elif kind.startswith("ms"):
            timers[name] = timers.get(name, 0) + 1
    assert counts["ag.web_shop.fetch.ok"] == 1 and counts["ag.web_shop.fetch.retry"] == 1
    assert counts["ag.web_shop.ask.interrupt"] == 1 and counts["ag.web_shop.ask.ok"] == 1
    assert counts["ag.web_shop.runs.interrupted"] == 1 and counts["ag.web_shop.runs.completed"] == 1
    assert timers["ag.web_shop.fetch"] == 1 and timers["ag.web_shop.run"] == 2


def test_statsd_server_down_costs_nothing() -> None:
    pytest.importorskip("statsd")
    from agentgraph_nb.observe import statsd

    udp = UdpServer()
    port = udp.port
    udp.sock.close()  # nobody listens there now
    app = graph()
    with statsd.instrument(app, port=port):
        app.invoke({}, thread_id="x")
        assert app.invoke(Command(resume="y"), thread_id="x")["answer"] == "y"


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_health_endpoints_follow_a_real_postgres_server(postgres_server: Any, redis_server: Any, tmp_path: Any) -> None:
    from agentgraph_nb.observe.health import Health

    app = graph(checkpointer=postgres_server.url)
    lite = graph("lite", checkpointer=f"sqlite:///{tmp_path / 'h.db'}")
    health = Health([app, lite], stores=[redis_server.url], timeout=3)
    report = health.check()
    assert report.ok and [c.ok for c in report.checks] == [True, True, True]
    assert "PostgresCheckpointer" in report.checks[0].name and "secret" not in report.checks[0].name
    app.invoke({}, thread_id="p")  # paused: not in flight
    with health.serve() as server:
        assert get(server.url + "/livez") == (200, {"ok": True, "runs_in_flight": 0})
        assert get(server.url + "/readyz") == (200, {"ok": True, "failed": []})
        code, body = get(server.url + "/healthz")
        assert code == 200 and body["graphs"] == ["shop", "lite"] and len(body["checks"]) == 3
        postgres_server.stop()
        try:
            code, body = get(server.url + "/readyz")
            assert code == 503 and body["failed"] == [report.checks[0].name]
            assert get(server.url + "/livez")[0] == 200  # alive, just not ready
            code, body = get(server.url + "/healthz")
            failed = [c for c in body["checks"] if not c["ok"]]
            assert len(failed) == 1 and failed[0]["detail"]
        finally:
            postgres_server.start()
        deadline = time.monotonic() + 30
        while get(server.url + "/readyz")[0] != 200:
            assert time.monotonic() < deadline, "the store came back but /readyz stayed 503"
            time.sleep(0.2)
        assert get(server.url + "/nope")[0] == 404
    app.checkpointer.close()


def test_health_check_of_a_hung_store_times_out() -> None:
    from agentgraph_nb.checkpoint.memory import MemoryCheckpointer
    from agentgraph_nb.observe.health import Health

    class Hung(MemoryCheckpointer):
        def get(self, *a: Any, **k: Any) -> Any:
            time.sleep(3)

    t = time.perf_counter()
    report = Health(stores=[Hung()], timeout=0.3).check()
    assert time.perf_counter() - t < 2
    assert not report.ok and report.checks[0].detail == "no answer within 0.3 s"


def test_health_counts_runs_in_flight() -> None:
    import threading

    from agentgraph_nb.observe.health import Health

    gate = threading.Event()

    def wait(s: S) -> dict[str, Any]:
        gate.wait(10)
        return {"answer": "done"}

    app = StateGraph(S, name="slow").add_node("wait", wait).add_edge(START, "wait").compile()
    health = Health(app)
    threads = [threading.Thread(target=app.invoke, args=({},)) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while health.check().runs_in_flight != 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    gate.set()
    for t in threads:
        t.join()
    assert health.check().runs_in_flight == 0


def test_health_ray_check_without_a_cluster_fails_clearly() -> None:
    from agentgraph_nb.observe.health import Health

    report = Health(ray=True).check()
    (ray,) = report.checks
    assert not report.ok and ray.name == "ray"
    assert "ray" in ray.detail.lower()
