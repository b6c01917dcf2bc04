"""agentgraph_nb.llm: OpenAIChat through the real ``openai`` SDK against a real local HTTP server
(agentgraph_nb.testing.ModelServer): calls, tools, structured output, retries, typed errors,
usage and cost. No mocked clients."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("openai")
pydantic = pytest.importorskip("pydantic")

from agentgraph_nb import END, START, RetryPolicy, StateGraph, node_failure  # noqa: E402
from agentgraph_nb.errors import ModelError, ModelResponseError, StructuredOutputError  # noqa: E402
from agentgraph_nb.llm import ChatModel, OpenAIChat, get_prices, set_prices, tool_schema  # noqa: E402
from agentgraph_nb.testing import ModelServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NO_RETRY_WAIT = RetryPolicy(max_attempts=3, initial_interval=0.0, jitter=False)


@pytest.fixture
def server() -> Any:
    with ModelServer() as s:
        yield s


@pytest.fixture
def model(server: ModelServer) -> OpenAIChat:
    return OpenAIChat("test-model", base_url=server.base_url, api_key="x", retry=NO_RETRY_WAIT)


def weather(city: str, days: int = 1) -> str:
    """Current weather in a city.

    Args:
        city: the city's name.
        days: how many days ahead.
    """
    return f"sunny in {city}"


class Person(pydantic.BaseModel):
    name: str
    age: int


# -- calls ------------------------------------------------------------------------------------------
def test_invoke_returns_one_assistant_message_with_id_and_usage(model: OpenAIChat, server: ModelServer) -> None:
    msg = model.invoke("hello there")
    assert msg["role"] == "assistant" and msg["content"] == "You said: hello there"
    assert msg["id"].startswith("chatcmpl-")
    assert msg["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert "tool_calls" not in msg
    assert isinstance(model, ChatModel)
    assert server.requests[-1]["model"] == "test-model"


def test_messages_going_back_lose_private_keys(model: OpenAIChat, server: ModelServer) -> None:
    first = model.invoke([{"role": "system", "content": "be brief", "id": "s1"}, {"role": "user", "content": "a"}])
    # the server rejects unknown message keys as OpenAI does: our id and usage must not be sent
    second = model.invoke([{"role": "user", "content": "a", "id": "u1"}, first, {"role": "user", "content": "b"}])
    assert second["content"] == "You said: b"
    sent = server.requests[-1]["messages"]
    assert all("id" not in m and "usage" not in m for m in sent)
    assert sent[1] == {"role": "assistant", "content": "You said: a"}


def test_input_forms(model: OpenAIChat) -> None:
    assert model.invoke(("user", "x"))["content"] == "You said: x"
    assert model.invoke({"role": "user", "content": "y"})["content"] == "You said: y"
    assert model.invoke({"messages": [{"role": "user", "content": "z"}]})["content"] == "You said: z"
    with pytest.raises(TypeError, match="role"):
        model.invoke([{"content": "no role"}])


def test_langchain_messages_are_accepted(model: OpenAIChat) -> None:
    lc = pytest.importorskip("langchain_core.messages")
    msg = model.invoke([lc.SystemMessage("sys"), lc.HumanMessage("from langchain")])
    assert msg["content"] == "You said: from langchain"


def test_ainvoke(model: OpenAIChat) -> None:
    async def main() -> list[Any]:
        return await asyncio.gather(model.ainvoke("one"), model.ainvoke("two"))

    a, b = asyncio.run(main())
    assert (a["content"], b["content"]) == ("You said: one", "You said: two")
    assert a["id"] != b["id"]


def test_stream_yields_tokens_then_the_whole_message(model: OpenAIChat, server: ModelServer) -> None:
    chunks = list(model.stream("a b c"))
    assert [c["content"] for c in chunks[:-1]] == ["You ", "said: ", "a ", "b ", "c"]
    last = chunks[-1]
    assert last["done"] is True and last["content"] == "You said: a b c"
    assert last["usage"]["completion_tokens"] == 5
    body = server.requests[-1]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_astream(model: OpenAIChat) -> None:
    async def main() -> list[Any]:
        return [c async for c in model.astream("x y")]

    chunks = asyncio.run(main())
    assert "".join(c["content"] for c in chunks[:-1]) == chunks[-1]["content"] == "You said: x y"


# -- tools ------------------------------------------------------------------------------------------
def test_tool_schema_from_a_function_dict_and_schema_object() -> None:
    s = tool_schema(weather)
    fn = s["function"]
    assert s["type"] == "function" and fn["name"] == "weather"
    assert fn["description"] == "Current weather in a city."
    assert fn["parameters"]["required"] == ["city"]
    assert fn["parameters"]["properties"]["city"] == {"type": "string", "description": "the city's name."}
    assert fn["parameters"]["properties"]["days"]["type"] == "integer"

    class WithSchema:
        schema = {"type": "function", "function": {"name": "t", "description": "d", "parameters": {}}}

    assert tool_schema(WithSchema())["function"]["name"] == "t"
    assert tool_schema({"name": "bare", "parameters": {}}) == {"type": "function",
                                                               "function": {"name": "bare", "parameters": {}}}
    assert tool_schema(Person)["function"]["name"] == "Person"


def test_bind_tools_calls_a_tool_and_answers_from_its_result(model: OpenAIChat, server: ModelServer) -> None:
    bound = model.bind_tools([weather])
    assert model.tools == [] and bound.tools[0]["function"]["name"] == "weather"
    ask = {"role": "user", "content": "what is the weather in Paris"}
    call = bound.invoke([ask])
    assert call["content"] is None
    (tc,) = call["tool_calls"]
    assert tc["type"] == "function" and tc["function"]["name"] == "weather"
    assert json.loads(tc["function"]["arguments"]) == {"city": "Paris", "days": 0}
    result = {"role": "tool", "tool_call_id": tc["id"], "content": weather("Paris")}
    answer = bound.invoke([ask, call, result])
    assert answer["content"] == "Result: sunny in Paris"
    assert server.requests[-1]["tools"][0]["function"]["name"] == "weather"


def test_streamed_tool_calls_are_assembled(model: OpenAIChat) -> None:
    chunks = list(model.bind_tools([weather]).stream("weather in Oslo"))
    msg = chunks[-1]
    assert json.loads(msg["tool_calls"][0]["function"]["arguments"])["city"] == "Oslo"
    pieces = [p for c in chunks[:-1] for p in c.get("tool_call_chunks", ())]
    assert pieces[0]["name"] == "weather" and pieces[0]["id"] == msg["tool_calls"][0]["id"]
    assert "".join(p["arguments"] for p in pieces) == msg["tool_calls"][0]["function"]["arguments"]


def test_tool_choice_by_name(model: OpenAIChat, server: ModelServer) -> None:
    model.bind_tools([weather], tool_choice="weather").invoke("weather in Rome")
    assert server.requests[-1]["tool_choice"] == {"type": "function", "function": {"name": "weather"}}


def test_malformed_tool_call_json_is_repaired_once(model: OpenAIChat, server: ModelServer) -> None:
    server.script({"tool_calls": [{"name": "weather", "arguments": '{"city": "Par'}]})
    msg = model.bind_tools([weather]).invoke("weather in Paris")
    assert json.loads(msg["tool_calls"][0]["function"]["arguments"])  # the repaired call parses
    assert len(server.requests) == 2
    assert "not valid JSON" in server.requests[1]["messages"][-1]["content"]


def test_malformed_tool_call_json_twice_is_a_typed_error(model: OpenAIChat, server: ModelServer) -> None:
    bad = {"tool_calls": [{"name": "weather", "arguments": "{city: Paris"}]}
    server.script(bad, bad)
    with pytest.raises(ModelResponseError, match=r"tool 'weather'.*not valid JSON") as ei:
        model.bind_tools([weather]).invoke("weather in Paris")
    assert ei.value.raw == "{city: Paris" and ei.value.model == "test-model"
    assert not RetryPolicy().should_retry(ei.value)


# -- structured output ------------------------------------------------------------------------------
def test_structured_output(model: OpenAIChat, server: ModelServer) -> None:
    p = model.with_structured_output(Person).invoke("Ada")
    assert p == Person(name="Ada", age=1)
    fmt = server.requests[-1]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Person"
    raw = model.with_structured_output(Person, include_raw=True).invoke("Bo")
    assert raw["parsed"].name == "Bo" and raw["raw"]["role"] == "assistant"


def test_structured_output_repair_then_success(model: OpenAIChat, server: ModelServer) -> None:
    server.script('{"name": "Ada", "age": "old"}')
    assert model.with_structured_output(Person).invoke("Ada").age == 1
    assert len(server.requests) == 2
    assert "age" in server.requests[1]["messages"][-1]["content"]


def test_structured_output_that_never_fits_is_a_typed_error(model: OpenAIChat, server: ModelServer) -> None:
    server.script('{"name": "Ada"}', "not json at all")
    with pytest.raises(StructuredOutputError, match="does not fit Person") as ei:
        model.with_structured_output(Person).invoke("Ada")
    assert ei.value.schema == "Person" and ei.value.raw == "not json at all" and ei.value.errors
    assert len(server.requests) == 2


def test_structured_output_async_and_json_mode(model: OpenAIChat, server: ModelServer) -> None:
    p = asyncio.run(model.with_structured_output(Person).ainvoke("Cy"))
    assert p.name == "Cy"
    server.script('```json\n{"name": "Di", "age": 3}\n```')
    assert model.with_structured_output(Person, method="json_mode").invoke("Di") == Person(name="Di", age=3)
    assert server.requests[-1]["response_format"] == {"type": "json_object"}
    assert "JSON schema" in server.requests[-1]["messages"][0]["content"]


# -- failures ---------------------------------------------------------------------------------------
def test_429_honours_retry_after(model: OpenAIChat, server: ModelServer) -> None:
    server.fail(429, retry_after=0.3)
    t = time.perf_counter()
    assert model.invoke("hi")["content"] == "You said: hi"
    assert time.perf_counter() - t >= 0.3  # the policy's own wait is 0: the server's asked 0.3 s
    assert len(server.requests) == 2


def test_400_is_not_retried(model: OpenAIChat, server: ModelServer) -> None:
    server.fail(400, message="bad thing")
    with pytest.raises(ModelError, match=r"answered HTTP 400.*bad thing") as ei:
        model.invoke("hi")
    assert ei.value.status_code == 400 and ei.value.attempts == 1 and ei.value.base_url == server.base_url
    assert len(server.requests) == 1
    assert not RetryPolicy().should_retry(ei.value)  # a node's own retry policy leaves it alone too


def test_an_exhausted_context_is_a_typed_error_not_retried() -> None:
    with ModelServer(max_context=5) as server:
        model = OpenAIChat("m", base_url=server.base_url)
        assert model.invoke("short")["content"] == "You said: short"
        with pytest.raises(ModelError, match=r"HTTP 400.*maximum context length is 5 tokens") as ei:
            model.invoke("one two three four five six seven")
        assert ei.value.status_code == 400 and len(server.requests) == 2


def test_500_is_retried_until_the_policy_gives_up(server: ModelServer) -> None:
    model = OpenAIChat("m", base_url=server.base_url, retry=RetryPolicy(max_attempts=2, initial_interval=0))
    server.fail(500, times=5)
    with pytest.raises(ModelError, match="HTTP 500 after 2 attempt") as ei:
        model.invoke("hi")
    assert ei.value.status_code == 500 and len(server.requests) == 2
    assert RetryPolicy().should_retry(ei.value)


def test_timeout_is_a_typed_error(server: ModelServer) -> None:
    server.delay = 1.0
    model = OpenAIChat("m", base_url=server.base_url, timeout=0.2, retry=None)
    with pytest.raises(ModelError, match=r"did not answer within 0\.2s"):
        model.invoke("hi")


def test_async_errors_are_typed_too(server: ModelServer) -> None:
    model = OpenAIChat("m", base_url=server.base_url, retry=None)
    server.fail(404, message="no such model")
    with pytest.raises(ModelError, match="HTTP 404"):
        asyncio.run(model.ainvoke("hi"))


class Chat(dict):  # type: ignore[type-arg]
    pass


def _agent_graph(model: OpenAIChat) -> Any:
    def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"answer": model.invoke(state["question"])["content"]}

    g = StateGraph(dict, name="agent")
    g.add_node("prepare", lambda s: {"question": s["question"].strip()})
    g.add_node("agent", agent)
    g.add_edge(START, "prepare").add_edge("prepare", "agent").add_edge("agent", END)
    return g.compile()


def test_server_down_names_the_node_and_the_run_resumes(server: ModelServer) -> None:
    port = server.port
    model = OpenAIChat("m", base_url=server.base_url, retry=RetryPolicy(max_attempts=2, initial_interval=0))
    app = _agent_graph(model)
    server.stop()
    with pytest.raises(ModelError, match="cannot reach the model server") as ei:  # the node's own error
        app.invoke({"question": " hi "}, thread_id="t1")
    cause = ei.value
    assert node_failure(cause) is not None and node_failure(cause).node == "agent"
    assert isinstance(cause, ModelError) and cause.node == "agent" and cause.status_code is None
    assert "cannot reach the model server" in str(cause) and f":{port}/v1" in str(cause)
    snap = app.get_state("t1")
    assert snap.next == ("agent",) and snap.values["question"] == "hi"
    with ModelServer(port=port):
        out = app.invoke(None, thread_id="t1")
    assert out["answer"] == "You said: hi"


# -- usage and cost ---------------------------------------------------------------------------------
def test_usage_and_cost_in_events_and_metrics(server: ModelServer) -> None:
    model = OpenAIChat("priced", base_url=server.base_url, price={"input": 2.0, "output": 10.0})
    app = _agent_graph(model)
    events: list[Any] = []
    app.listen(events.append)
    app.invoke({"question": "one two"})
    app.invoke({"question": "three"})
    llm = [e for e in events if e.kind == "llm_end"]
    assert [e.node for e in llm] == ["agent", "agent"]
    d = llm[0].data
    assert d["model"] == "priced" and d["base_url"] == server.base_url
    assert (d["tokens_in"], d["tokens_out"]) == (3, 4)
    assert d["cost"] == pytest.approx((3 * 2.0 + 4 * 10.0) / 1e6)
    assert d["latency"] > 0 and llm[0].duration == d["latency"]
    df = app.metrics.to_pandas()
    assert df.loc["agent", "tokens_in"] == 3 + 2 and df.loc["agent", "tokens_out"] == 4 + 3
    assert df.loc["agent", "llm_calls"] == 2
    assert df.loc["agent", "cost"] == pytest.approx((5 * 2.0 + 7 * 10.0) / 1e6)
    assert df.loc["prepare", "tokens_in"] == 0 and df.loc["prepare", "cost"] == 0


def test_price_table(server: ModelServer) -> None:
    before = get_prices()
    try:
        set_prices({"tabled": {"input": 1, "output": 1}})
        app = _agent_graph(OpenAIChat("tabled", base_url=server.base_url))
        events: list[Any] = []
        app.invoke({"question": "q"}, listeners=[events.append])
        (e,) = [e for e in events if e.kind == "llm_end"]
        assert e.data["cost"] == pytest.approx((2 + 3) / 1e6)  # 2 tokens in, 3 out, 1 each per million
        app2 = _agent_graph(OpenAIChat("unpriced", base_url=server.base_url))
        events.clear()
        app2.invoke({"question": "q"}, listeners=[events.append])
        assert [e.data["cost"] for e in events if e.kind == "llm_end"] == [None]
        with pytest.raises(ValueError, match="per_million"):
            set_prices({"x": {"input": 1}})
    finally:
        set_prices(before, replace=True)


def test_calls_outside_a_graph_account_nothing(model: OpenAIChat) -> None:
    assert model.invoke("free")["usage"]["total_tokens"] > 0  # no run: no event, no error


# -- packaging ---------------------------------------------------------------------------------------
def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-X", "dev", "-c", code], capture_output=True, text=True, env=env,
                          timeout=60)


def test_import_agentgraph_nb_does_not_import_openai() -> None:
    r = _run("import sys, agentgraph_nb, agentgraph_nb.llm, agentgraph_nb.testing; "
             "print('openai' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_missing_openai_names_the_extra() -> None:
    r = _run("import sys; sys.modules['openai'] = None\n"
             "from agentgraph_nb.errors import MissingDependencyError\n"
             "try:\n    from agentgraph_nb.llm import OpenAIChat\n"
             "except MissingDependencyError as e:\n    print(e)\n")
    assert r.returncode == 0, r.stderr
    assert 'pip install "agentgraph_nb[llm]"' in r.stdout and "openai" in r.stdout


def test_no_key_and_no_server_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ModelError, match="no API key"):
        OpenAIChat("gpt-4o-mini")


@pytest.mark.skipif(not (os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY")),
                    reason="set OPENAI_BASE_URL and/or OPENAI_API_KEY (and OPENAI_MODEL) for a real server")
def test_smoke_against_a_real_server() -> None:
    model = OpenAIChat(os.environ.get("OPENAI_MODEL", "gpt-4o-mini"), temperature=0, max_tokens=20)
    msg = model.invoke("Answer with one word: what colour is the sky on a clear day?")
    assert msg["role"] == "assistant" and msg["content"]
    assert msg["usage"]["total_tokens"] > 0
    chunks = list(model.stream("Say hi"))
    assert chunks[-1]["done"] and chunks[-1]["content"]


def test_dashboard_shows_tokens_and_cost_of_real_model_calls(server: ModelServer) -> None:
    pytest.importorskip("plotly")
    pytest.importorskip("ipywidgets")
    import xml.etree.ElementTree as ET

    import numpy as np

    from agentgraph_nb.ui.dashboard import PANELS, T_TIN, T_TOUT, Dashboard

    model = OpenAIChat("priced", base_url=server.base_url, price={"input": 1000.0, "output": 2000.0})
    app = _agent_graph(model)
    dash = Dashboard(app)
    try:
        app.invoke({"question": "one two three"})
        dash.refresh()
        fig = dash.figure
        assert fig.data[T_TIN].visible and fig.data[T_TOUT].visible
        assert np.asarray(fig.data[T_TIN].y).tolist() == [0, 4]  # prepare, agent
        assert np.asarray(fig.data[T_TOUT].y).tolist() == [0, 5]
        cost = (4 * 1000.0 + 5 * 2000.0) / 1e6
        assert list(fig.data[T_TOUT].text) == ["", f"${cost:.3g}"]
        assert "9 tokens" in dash._header.value and f"${cost:.3g}" in dash._header.value
        texts = [t.text for t in ET.fromstring(dash.to_svg()).iter("{http://www.w3.org/2000/svg}text")]
        assert PANELS[3] in texts and f"${cost:.3g}" in texts  # the static twin shows them too
    finally:
        dash.close()


def test_readme_chat_models_section_runs_as_pasted(tmp_path: Path) -> None:
    import re

    text = (ROOT / "README.md").read_text()
    section = text.split("### Chat models and streaming", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    script = tmp_path / "agents.py"
    script.write_text(code)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("You |said: |hello|\n")
    assert "agent" in r.stdout and "tokens_in" in r.stdout


def test_the_model_server_is_as_strict_as_openai_about_messages(server: ModelServer) -> None:
    import openai

    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="'id' were unexpected"):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x", "id": "1"}])  # type: ignore[misc,list-item]
    with pytest.raises(openai.BadRequestError, match="tool_call_id is required"):
        client.chat.completions.create(model="m", messages=[{"role": "tool", "content": "x"}])  # type: ignore[misc,list-item]
    ok = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "plain"}])
    assert ok.choices[0].message.content == "You said: plain" and ok.usage is not None
    chunks = list(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "a b"}],
                                                 stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: a b"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


def test_sync_invoke_of_an_async_graph_closes_its_connections() -> None:
    # each sync invoke() of an async graph runs on an event loop of its own, which the engine
    # closes after the run: the model's client on that loop must be closed first, not collected open
    r = _run(
        "import gc\n"
        "from agentgraph_nb import StateGraph, START\n"
        "from agentgraph_nb.testing import ModelServer\n"
        "from agentgraph_nb.llm import OpenAIChat\n"
        "with ModelServer() as s:\n"
        "    m = OpenAIChat('m', base_url=s.base_url)\n"
        "    async def node(state):\n"
        "        return {'a': (await m.ainvoke('x'))['content']}\n"
        "    g = StateGraph(dict); g.add_node('n', node).add_edge(START, 'n'); app = g.compile()\n"
        "    for _ in range(3):\n"
        "        assert app.invoke({}) == {'a': 'You said: x'}\n"
        "    gc.collect()\n"
        "print('ok')\n"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
    assert "unclosed" not in r.stderr, r.stderr


def test_graphview_details_show_the_model_tokens_and_cost_of_a_node(server: ModelServer) -> None:
    pytest.importorskip("anywidget")
    from agentgraph_nb.ui.graphview import GraphView

    model = OpenAIChat("priced", base_url=server.base_url, price={"input": 1000.0, "output": 1000.0})

    def agent(state: dict[str, Any]) -> dict[str, Any]:
        first = model.invoke(state["question"])
        return {"answer": model.invoke([first, {"role": "user", "content": "again"}])["content"]}

    g = StateGraph(dict, name="agent")
    g.add_node("agent", agent).add_edge(START, "agent")
    app = g.compile()
    view = GraphView.from_app(app)
    view.attach(app)
    try:
        app.invoke({"question": "one two"})
        view.flush()
        det = view.details["agent"]
        # two calls: 3 in + 4 out, then 7 in + 3 out (the server counts words and roles)
        assert det["model"] == "priced" and det["tokens"] == "10 in, 7 out (2 calls)"
        assert det["cost"] == f"${17 * 1000.0 / 1e6:.3g}"
        app.invoke({"question": "x"})  # a new execution starts counting afresh
        view.flush()
        assert view.details["agent"]["tokens"].endswith("(2 calls)")
        assert view.details["agent"]["tokens"] != det["tokens"]
    finally:
        view.close()


def test_closing_a_model_stream_early_ends_the_call() -> None:
    with ModelServer(token_delay=0.05) as server:
        model = OpenAIChat("m", base_url=server.base_url)
        t = time.perf_counter()
        chunks = model.stream(" ".join(["w"] * 60))
        assert next(chunks)["content"] == "You "
        chunks.close()
        assert time.perf_counter() - t < 1.0  # 62 tokens at 50 ms would take 3 s
        assert model.invoke("after")["content"] == "You said: after"  # the model still works


def test_docstring_examples_run() -> None:
    import doctest

    import agentgraph_nb._model_server
    import agentgraph_nb.engine._stream
    import agentgraph_nb.llm
    import agentgraph_nb.llm._cassette
    import agentgraph_nb.llm._openai

    for mod in (agentgraph_nb._model_server, agentgraph_nb.engine._stream, agentgraph_nb.llm,
                agentgraph_nb.llm._openai, agentgraph_nb.llm._cassette):
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, mod.__name__
        assert result.attempted > 0, mod.__name__


def test_a_stream_cut_mid_answer_is_retried_or_a_typed_error(server: ModelServer) -> None:
    model = OpenAIChat("m", base_url=server.base_url, retry=None)
    server.cut(after=3)
    with pytest.raises(ModelError, match="broke while the answer streamed") as ei:
        list(model.stream("a b c d e"))
    assert ei.value.status_code is None
    server.cut(after=3)
    with pytest.raises(ModelError, match="broke while the answer streamed"):
        asyncio.run(_astream_all(model, "a b c"))
    retrying = OpenAIChat("m", base_url=server.base_url, retry=NO_RETRY_WAIT)
    server.cut(after=3)
    chunks = list(retrying.stream("a b c d e"))
    assert chunks[-1]["content"] == "You said: a b c d e"  # the second attempt streamed it whole


async def _astream_all(model: OpenAIChat, text: str) -> list[Any]:
    return [c async for c in model.astream(text)]


def test_a_stream_event_that_is_not_json_is_a_typed_error() -> None:
    # a server that is not OpenAI-compatible: text/event-stream with garbage in its events
    import http.server
    import threading

    class Bad(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            return None

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b"data: <html>oops</html>\n\ndata: [DONE]\n\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Bad)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        model = OpenAIChat("m", base_url=f"http://127.0.0.1:{httpd.server_address[1]}/v1")
        with pytest.raises(ModelResponseError, match="not a JSON object") as ei:
            list(model.stream("x"))
        assert ei.value.raw == "<html>oops</html>"
        with pytest.raises(ModelResponseError, match="not a JSON object"):
            asyncio.run(_astream_all(model, "x"))
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_readme_agent_against_your_own_server_runs_as_pasted(tmp_path: Path, server: ModelServer) -> None:
    """The README's agent block, pointed at a server only through the environment, as a user does."""
    import re

    text = (ROOT / "README.md").read_text()
    section = text.split("A tool-calling agent against your own server", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    script = tmp_path / "my_agent.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(PYTHONPATH=str(ROOT), OPENAI_BASE_URL=server.base_url, OPENAI_MODEL="test-model")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                       env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Result: 21 C, sun"
    assert re.search(r"agent\s+2\s+\d+\s+\d+", r.stdout), r.stdout  # two model calls, tokens counted
    bodies = server.requests
    assert [b["model"] for b in bodies] == ["test-model", "test-model"] and bodies[0]["stream"] is True
    assert bodies[0]["tools"][0]["function"]["name"] == "weather"


def test_async_nodes_under_a_sync_invoke_keep_one_connection(server: ModelServer, tmp_path: Path) -> None:
    """A graph with async nodes run by invoke() gets a new event loop per run; the model's calls
    there go through the sync client (kept alive), not a new async client and connection per run,
    and still stream, account their tokens and record to / replay from a cassette."""
    from agentgraph_nb.testing import cassette

    model = OpenAIChat("test-model", base_url=server.base_url)

    async def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"a": (await model.ainvoke(state["q"]))["content"]}

    app = StateGraph(dict).add_node("agent", agent).add_edge(START, "agent").compile()
    for i in range(3):
        assert app.invoke({"q": f"hi {i}"})["a"] == f"You said: hi {i}"
    assert server.connections == 1
    got = [(c["content"], m["node"]) for c, m in app.stream({"q": "a b"}, mode="messages")]
    assert "".join(c for c, _ in got) == "You said: a b" and {n for _, n in got} == {"agent"}
    assert app.metrics.to_pandas().loc["agent", "llm_calls"] == 4
    with cassette(tmp_path / "calls.jsonl"):
        assert app.invoke({"q": "taped"})["a"] == "You said: taped"
    server.reset()
    with cassette(tmp_path / "calls.jsonl", mode="replay") as cas:
        assert app.invoke({"q": "taped"})["a"] == "You said: taped"
    assert cas.calls == 1 and server.requests == []

    async def main() -> str:  # a loop of the caller's own: the async client
        return (await app.ainvoke({"q": "async"}))["a"]  # type: ignore[no-any-return]

    assert asyncio.run(main()) == "You said: async"
    assert server.connections == 2


def test_a_model_error_under_a_sync_invoke_of_an_async_graph_names_the_node(server: ModelServer) -> None:
    model = OpenAIChat("test-model", base_url=server.base_url, retry=None)

    async def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"a": (await model.ainvoke(state["q"]))["content"]}

    app = StateGraph(dict).add_node("agent", agent).add_edge(START, "agent").compile(checkpointer="memory")
    server.fail(400)
    with pytest.raises(ModelError, match="node 'agent'") as info:
        app.invoke({"q": "x"}, thread_id="t")
    assert info.value.status_code == 400 and node_failure(info.value).node == "agent"  # type: ignore[union-attr]
    assert app.invoke(None, thread_id="t")["a"] == "You said: x"  # resumable
