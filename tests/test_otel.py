"""OpenTelemetry traces (agentgraph_nb.observe.otel) with the real SDK and an in-memory exporter."""

from __future__ import annotations

import asyncio
import logging
import operator
import subprocess
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agentgraph_nb import END, START, Command, RetryPolicy, StateGraph, interrupt
from agentgraph_nb.observe.otel import instrument


class S(TypedDict, total=False):
    log: Annotated[list, operator.add]
    answer: str


@pytest.fixture
def otel() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def by_name(exporter: InMemorySpanExporter) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for s in exporter.get_finished_spans():
        out.setdefault(s.name, []).append(s)
    return out


def diamond(inner_tracer: Any = None) -> Any:
    def a(s: S) -> dict[str, Any]:
        return {"log": ["a"]}

    def b(s: S) -> dict[str, Any]:
        if inner_tracer is not None:
            with inner_tracer.start_as_current_span("inside b"):
                pass
        return {"log": ["b"]}

    def c(s: S) -> dict[str, Any]:
        return {"log": ["c"]}

    def d(s: S) -> dict[str, Any]:
        return {"answer": "+".join(s["log"])}

    g = StateGraph(S, name="diamond")
    for n, f in (("a", a), ("b", b), ("c", c), ("d", d)):
        g.add_node(n, f)
    g.add_edge(START, "a").add_edge("a", "b").add_edge("a", "c").add_edge(["b", "c"], "d").add_edge("d", END)
    return g.compile()


def test_run_step_node_spans_nest_under_the_callers_span(otel: Any) -> None:
    provider, exporter = otel
    tracer = provider.get_tracer("test")
    app = diamond(inner_tracer=tracer)
    with instrument(app, provider), tracer.start_as_current_span("request") as outer:
        assert app.invoke({}, thread_id="t1")["answer"] == "a+b+c"
    spans = by_name(exporter)
    (run,) = spans["agentgraph.run diamond"]
    assert run.parent.span_id == outer.get_span_context().span_id
    assert run.attributes["agentgraph.thread_id"] == "t1" and run.attributes["agentgraph.status"] == "completed"
    assert run.status.status_code is StatusCode.OK
    steps = sorted((s for k, v in spans.items() if k.startswith("agentgraph.step") for s in v), key=lambda s: s.start_time)
    assert [s.attributes["agentgraph.step"] for s in steps] == [1, 2, 3]
    assert all(s.parent.span_id == run.context.span_id for s in steps)
    assert [list(s.attributes["agentgraph.nodes"]) for s in steps] == [["a"], ["b", "c"], ["d"]]
    nodes = {k.split()[-1]: v[0] for k, v in spans.items() if k.startswith("agentgraph.node")}
    assert set(nodes) == {"a", "b", "c", "d"}
    step_of = {s.context.span_id: s.attributes["agentgraph.step"] for s in steps}
    assert {n: step_of[s.parent.span_id] for n, s in nodes.items()} == {"a": 1, "b": 2, "c": 2, "d": 3}
    for s in nodes.values():
        assert s.status.status_code is StatusCode.OK
        assert s.attributes["agentgraph.node"] in "abcd" and s.attributes["agentgraph.attempt"] == 1
        assert run.start_time <= s.start_time <= s.end_time <= run.end_time
    # the node's own span (made by its code) is a child of the node's span
    (inside,) = spans["inside b"]
    assert inside.parent.span_id == nodes["b"].context.span_id
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached after the run


def test_parallel_sync_nodes_in_threads_and_async_nodes_nest_their_own_spans(otel: Any) -> None:
    provider, exporter = otel
    tracer = provider.get_tracer("test")

    def slow(name: str) -> Any:
        def fn(s: S) -> dict[str, Any]:
            with tracer.start_as_current_span(f"work {name}"):
                return {"log": [name]}
        return fn

    async def anode(s: S) -> dict[str, Any]:
        with tracer.start_as_current_span("work async"):
            await asyncio.sleep(0)
        return {"log": ["z"]}

    g = StateGraph(S, name="par")
    for n in ("x", "y"):
        g.add_node(n, slow(n))
    g.add_node("z", anode)
    g.add_edge(START, "x").add_edge(START, "y").add_edge(START, "z")
    app = g.compile()
    with instrument(app, provider):
        app.invoke({})
        asyncio.run(app.ainvoke({}))
    spans = by_name(exporter)
    for n in ("x", "y", "z"):
        nodes = spans[f"agentgraph.node {n}"]
        work = spans["work async" if n == "z" else f"work {n}"]
        assert len(nodes) == len(work) == 2
        assert {w.parent.span_id for w in work} == {s.context.span_id for s in nodes}


def test_retries_are_events_and_failures_are_errors(otel: Any, caplog: Any) -> None:
    provider, exporter = otel
    tries = {"n": 0}

    def flaky(s: S) -> dict[str, Any]:
        tries["n"] += 1
        if tries["n"] < 3:
            raise ConnectionError(f"try {tries['n']}")
        return {"log": ["ok"]}

    def broken(s: S) -> dict[str, Any]:
        raise ValueError("bad row 7")

    g = StateGraph(S, name="flaky").add_node("flaky", flaky, retry=RetryPolicy(max_attempts=3, initial_interval=0.0, jitter=False))
    g.add_node("broken", broken).add_edge(START, "flaky").add_edge("flaky", "broken")
    app = g.compile()
    with instrument(app, provider), pytest.raises(ValueError, match="bad row 7"):
        app.invoke({})
    spans = by_name(exporter)
    (fl,) = spans["agentgraph.node flaky"]
    assert [e.name for e in fl.events] == ["retry", "retry"]
    assert [e.attributes["exception.message"] for e in fl.events] == ["try 1", "try 2"]
    assert fl.attributes["agentgraph.attempt"] == 3 and fl.status.status_code is StatusCode.OK
    (br,) = spans["agentgraph.node broken"]
    assert br.status.status_code is StatusCode.ERROR and "ValueError: bad row 7" in br.status.description
    assert [e.name for e in br.events] == ["exception"]
    assert br.events[0].attributes["exception.type"] == "ValueError"
    (run,) = spans["agentgraph.run flaky"]
    assert run.status.status_code is StatusCode.ERROR and run.attributes["agentgraph.status"] == "failed"


def test_interrupt_is_an_event_and_resume_is_a_new_run(otel: Any) -> None:
    provider, exporter = otel

    def ask(s: S) -> dict[str, Any]:
        return {"answer": interrupt("approve?")}

    app = StateGraph(S, name="hitl").add_node("ask", ask).add_edge(START, "ask").compile()
    with instrument(app, provider):
        app.invoke({}, thread_id="h")
        assert trace.get_current_span() is trace.INVALID_SPAN  # the paused node's span is not left current
        assert app.invoke(Command(resume="yes"), thread_id="h")["answer"] == "yes"
    spans = by_name(exporter)
    first, second = sorted(spans["agentgraph.run hitl"], key=lambda s: s.start_time)
    assert first.attributes["agentgraph.status"] == "interrupted"
    (ev,) = [e for e in first.events if e.name == "interrupt"]
    assert ev.attributes["agentgraph.node"] == "ask" and "approve?" in ev.attributes["agentgraph.interrupts"][0]
    paused, done = sorted(spans["agentgraph.node ask"], key=lambda s: s.start_time)
    assert paused.attributes["agentgraph.interrupted"] is True
    assert second.attributes["agentgraph.status"] == "completed" and done.status.status_code is StatusCode.OK
    ids = {snap.checkpoint_id for snap in app.get_state_history("h")}
    # the input's checkpoint is written before the first step; the paused step writes none
    assert first.attributes["agentgraph.checkpoint_id"] in ids
    paused_step, done_step = sorted(spans["agentgraph.step 1"], key=lambda s: s.start_time)
    assert "agentgraph.checkpoint_id" not in paused_step.attributes
    assert done_step.attributes["agentgraph.checkpoint_id"] == app.get_state("h").checkpoint_id


def test_model_usage_lands_on_the_node_span(otel: Any) -> None:
    pytest.importorskip("openai")
    from agentgraph_nb.llm import OpenAIChat
    from agentgraph_nb.testing import ModelServer

    provider, exporter = otel
    with ModelServer() as server:
        model = OpenAIChat(model="m", base_url=server.base_url, api_key="k")
        server.script("hello there", "second answer")

        def talk(s: S) -> dict[str, Any]:
            a = model.invoke([{"role": "user", "content": "hi"}])
            b = model.invoke([{"role": "user", "content": "again"}])
            return {"answer": a["content"] + " / " + b["content"]}

        app = StateGraph(S, name="chat").add_node("talk", talk).add_edge(START, "talk").compile()
        with instrument(app, provider):
            app.invoke({})
    (node,) = by_name(exporter)["agentgraph.node talk"]
    calls = [e for e in node.events if e.name == "llm_end"]
    assert len(calls) == 2 and calls[0].attributes["gen_ai.request.model"] == "m"
    total_in = sum(e.attributes["gen_ai.usage.input_tokens"] for e in calls)
    assert total_in > 0 and node.attributes["gen_ai.usage.input_tokens"] == total_in
    assert node.attributes["gen_ai.usage.output_tokens"] == sum(e.attributes["gen_ai.usage.output_tokens"] for e in calls) > 0


def test_a_failing_exporter_does_not_stop_runs(caplog: Any) -> None:
    class Broken(SpanExporter):
        calls = 0

        def export(self, spans: Any) -> SpanExportResult:
            Broken.calls += 1
            raise OSError("collector unreachable")

        def shutdown(self) -> None:
            pass

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Broken()))
    app = diamond()
    with caplog.at_level(logging.ERROR), instrument(app, provider):
        for _ in range(3):
            assert app.invoke({})["answer"] == "a+b+c"
    assert Broken.calls >= 3 * 8  # every span was offered to it, and each failure was contained
    ours = [r for r in caplog.records if r.name == "agentgraph_nb.observe"]
    assert len(ours) <= 1


def test_uninstrument_stops_spans_and_inputs_are_opt_in(otel: Any) -> None:
    provider, exporter = otel
    app = diamond()
    inst = instrument(app, provider, record_inputs=True)
    app.invoke({"log": ["secret"]})
    (a,) = by_name(exporter)["agentgraph.node a"]
    assert "secret" in a.attributes["agentgraph.input"]
    inst.uninstrument()
    exporter.clear()
    app.invoke({})
    assert exporter.get_finished_spans() == ()
    with instrument(app, provider):
        app.invoke({"log": ["secret"]})
    assert all("agentgraph.input" not in s.attributes for s in exporter.get_finished_spans())


def test_without_the_extra_the_error_names_the_install() -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from agentgraph_nb import StateGraph, START\n"
        "from agentgraph_nb.observe.otel import instrument\n"
        "app = StateGraph(dict).add_node('n', lambda s: {}).add_edge(START, 'n').compile()\n"
        "try:\n    instrument(app)\nexcept ImportError as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("MissingDependencyError") and 'pip install "agentgraph_nb[otel]"' in out


def test_importing_agentgraph_nb_does_not_import_opentelemetry() -> None:
    code = "import sys, agentgraph_nb, agentgraph_nb.observe.otel; print('opentelemetry' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_unsampled_runs_make_no_spans_and_nest_nothing() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = diamond(inner_tracer=provider.get_tracer("t"))
    with instrument(app, provider) as inst:
        assert app.invoke({})["answer"] == "a+b+c"
        assert inst._runs == {}
    assert exporter.get_finished_spans() == ()
