"""AnthropicChat: the real ``anthropic`` SDK against the model server's Messages API route
(real HTTP, real SSE with named events, tool_use / tool_result blocks, usage), inside graphs and
the ReAct agent, streamed, accounted, recorded and replayed, and its failures typed."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("anthropic")

from agentgraph_nb import END, START, StateGraph, node_failure
from agentgraph_nb.errors import ModelError
from agentgraph_nb.llm import AnthropicChat
from agentgraph_nb.prebuilt import create_react_agent
from agentgraph_nb.testing import ModelServer, cassette
from agentgraph_nb.tools import tool


@pytest.fixture
def server() -> Any:
    with ModelServer(token_delay=0.002) as s:
        yield s


@tool
def weather(city: str) -> str:
    """Current weather in a city."""
    return {"Lima": "18 C, cloud", "Rome": "21 C, sun"}.get(city, "unknown")


def model_for(server: ModelServer, **kw: Any) -> AnthropicChat:
    return AnthropicChat("claude-test", base_url=server.anthropic_url, **kw)


def test_system_messages_go_to_the_system_field_and_usage_comes_back(server: ModelServer) -> None:
    msg = model_for(server).invoke([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}])
    assert msg["content"] == "You said: hello" and msg["id"].startswith("msg_")
    assert msg["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
    body = server.requests[-1]
    assert body["system"] == "Be brief." and body["max_tokens"] == 1024
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_the_react_agent_runs_on_it_with_tool_use_and_tool_result_blocks(server: ModelServer) -> None:
    agent = create_react_agent(model_for(server, price={"input": 1.0, "output": 2.0}), [weather],
                               prompt="Use the tools.")
    events: list[Any] = []
    agent.listen(events.append)
    out = agent.invoke({"messages": "weather in Lima"})
    msgs = out["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "assistant"]
    assert msgs[1]["tool_calls"][0]["function"] == {"name": "weather", "arguments": '{"city": "Lima"}'}
    assert msgs[-1]["content"] == "Result: 18 C, cloud"
    second = server.requests[-1]
    assert second["system"] == "Use the tools."
    assert second["tools"] == [{"name": "weather", "description": "Current weather in a city.",
                                "input_schema": weather.schema["function"]["parameters"]}]
    use = second["messages"][1]["content"][0]
    result = second["messages"][2]["content"][0]
    assert use == {"type": "tool_use", "id": msgs[1]["tool_calls"][0]["id"], "name": "weather",
                   "input": {"city": "Lima"}}
    assert result == {"type": "tool_result", "tool_use_id": use["id"], "content": "18 C, cloud"}
    ends = [e.data for e in events if e.kind == "llm_end"]
    assert len(ends) == 2 and ends[0]["model"] == "claude-test" and ends[0]["cost"] is not None
    row = agent.metrics.to_pandas().loc["agent"]
    assert row["llm_calls"] == 2 and row["tokens_in"] == sum(e["tokens_in"] for e in ends) > 0


def test_tokens_stream_through_the_graph_with_metadata(server: ModelServer) -> None:
    agent = create_react_agent(model_for(server), [weather])
    got = list(agent.stream({"messages": "weather in Rome"}, mode="messages"))
    pieces = [c for c, m in got if m["node"] == "agent"]
    calls = [p for c in pieces for p in c.get("tool_call_chunks", ())]
    assert calls[0]["name"] == "weather" and "".join(p["arguments"] for p in calls) == '{"city": "Rome"}'
    text = "".join(c["content"] for c in pieces)
    assert text == "Result: 21 C, sun" and len([c for c in pieces if c["content"]]) == 4
    tools = [c for c, m in got if m["node"] == "tools"]
    assert tools[0]["role"] == "tool" and tools[0]["content"] == "21 C, sun"


def test_the_graphview_shows_its_reply_live(server: ModelServer) -> None:
    pytest.importorskip("anywidget")
    from agentgraph_nb.ui.graphview import GraphView

    model = model_for(server)

    def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"a": model.invoke(state["q"])["content"]}

    app = StateGraph(dict).add_node("agent", agent).add_edge(START, "agent").add_edge("agent", END).compile()
    view = GraphView.from_app(app)
    view.attach(app)
    app.invoke({"q": "one two three"})
    view.flush()
    assert view.details["agent"]["reply"] == "You said: one two three"
    assert server.requests[-1]["stream"] is True


def test_async_graphs_and_sync_invoke_keep_one_connection(server: ModelServer) -> None:
    model = model_for(server)

    async def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"a": (await model.ainvoke(state["q"]))["content"]}

    app = StateGraph(dict).add_node("agent", agent).add_edge(START, "agent").compile()
    for i in range(3):
        assert app.invoke({"q": f"x{i}"})["a"] == f"You said: x{i}"
    assert server.connections == 1

    async def main() -> list[str]:
        outs = await asyncio.gather(*(app.ainvoke({"q": f"y{i}"}) for i in range(3)))
        return [o["a"] for o in outs]

    assert asyncio.run(main()) == ["You said: y0", "You said: y1", "You said: y2"]


def test_429_waits_for_retry_after_and_other_4xx_are_not_retried(server: ModelServer) -> None:
    from agentgraph_nb import RetryPolicy

    model = model_for(server, retry=RetryPolicy(max_attempts=3, initial_interval=5.0))
    server.fail(429, retry_after=0.05)
    assert model.invoke("hi")["content"] == "You said: hi"
    assert len(server.requests) == 2

    def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"a": model.invoke(state["q"])["content"]}

    app = StateGraph(dict).add_node("agent", agent).add_edge(START, "agent").compile(checkpointer="memory")
    server.fail(400, message="bad things")
    n = len(server.requests)
    with pytest.raises(ModelError, match=r"HTTP 400 \(node 'agent'\): .*bad things") as info:
        app.invoke({"q": "x"}, thread_id="t")
    assert info.value.status_code == 400 and len(server.requests) == n + 1
    assert node_failure(info.value).node == "agent"  # type: ignore[union-attr]
    assert app.invoke(None, thread_id="t")["a"] == "You said: x"  # the checkpoint resumes


def test_a_server_that_is_down_and_an_exhausted_context_are_typed(server: ModelServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = AnthropicChat("claude-test", base_url=f"http://127.0.0.1:{port}", retry=None)
    with pytest.raises(ModelError, match="cannot reach the model server"):
        down.invoke("hi")
    server.max_context = 3
    with pytest.raises(ModelError, match="prompt is too long") as info:
        model_for(server, retry=None).invoke("far too many words here")
    assert info.value.status_code == 400


def test_no_key_and_no_base_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    with pytest.raises(ModelError, match="ANTHROPIC_API_KEY"):
        AnthropicChat("claude-test")


def test_a_cassette_records_the_stream_and_replays_it(server: ModelServer, tmp_path: Path) -> None:
    agent = create_react_agent(model_for(server), [weather])
    tape = tmp_path / "claude.jsonl"
    with cassette(tape):
        first = [c["content"] for c, m in agent.stream({"messages": "weather in Lima"}, mode="messages")]
    n = len(server.requests)
    with cassette(tape, mode="replay") as cas:
        again = [c["content"] for c, m in agent.stream({"messages": "weather in Lima"}, mode="messages")]
    assert again == first and cas.calls == 2 and len(server.requests) == n


def test_structured_output_is_a_forced_tool_validated_with_one_repair(server: ModelServer) -> None:
    from pydantic import BaseModel

    from agentgraph_nb.errors import StructuredOutputError

    class Plan(BaseModel):
        city: str
        people: int

    structured = model_for(server).with_structured_output(Plan)
    assert structured.invoke("dinner in Rome") == Plan(city="dinner in Rome", people=1)
    body = server.requests[-1]
    assert body["tool_choice"] == {"type": "tool", "name": "Plan"} and body["tools"][0]["name"] == "Plan"
    # an answer that does not fit is sent back once with the errors, then it is a typed error
    server.script({"tool_calls": [{"name": "Plan", "arguments": {"city": "Rome"}}]})
    assert structured.invoke("for two") == Plan(city="for two", people=1)
    repair = server.requests[-1]["messages"]
    assert repair[-1]["content"][0]["type"] == "tool_result" and "people" in repair[-1]["content"][0]["content"]
    server.script(*[{"tool_calls": [{"name": "Plan", "arguments": {"city": 3}}]}] * 2)
    with pytest.raises(StructuredOutputError, match="does not fit Plan"):
        structured.invoke("x")
    # and through the ReAct agent's response_format, async too
    agent = create_react_agent(model_for(server), [weather], response_format=Plan)
    out = agent.invoke({"messages": "weather in Rome"})
    assert out["structured_response"].people == 1 and out["messages"][-1]["content"] == "Result: 21 C, sun"

    async def main() -> Any:
        return await structured.ainvoke("lunch")

    assert asyncio.run(main()) == Plan(city="lunch", people=1)
