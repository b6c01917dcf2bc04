"""agentgraph_nb.testing.cassette: record model calls against the real local server, replay them
with the server stopped (invoke, streams, tokens, parallel nodes), and fail with a diff when a
request differs from the recording."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("openai")

from agentgraph_nb import END, START, StateGraph
from agentgraph_nb.errors import CassetteMismatchError, ModelError
from agentgraph_nb.llm import OpenAIChat
from agentgraph_nb.testing import ModelServer, cassette


def weather(city: str) -> str:
    """Current weather in a city."""
    return f"rain in {city}"


def agent_app(model: OpenAIChat) -> Any:
    """A two-turn tool-calling agent written by hand (model -> tool -> model)."""
    bound = model.bind_tools([weather])

    def agent(state: dict[str, Any]) -> dict[str, Any]:
        msg = bound.invoke(state["messages"])
        return {"messages": [*state["messages"], msg]}

    def tools(state: dict[str, Any]) -> dict[str, Any]:
        call = state["messages"][-1]["tool_calls"][0]
        out = weather(**json.loads(call["function"]["arguments"]))
        return {"messages": [*state["messages"], {"role": "tool", "tool_call_id": call["id"], "content": out}]}

    g = StateGraph(dict)
    g.add_node("agent", agent).add_node("tools", tools)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", lambda s: "tools" if s["messages"][-1].get("tool_calls") else END,
                            ["tools", END])
    g.add_edge("tools", "agent")
    return g.compile()


ASK = {"messages": [{"role": "user", "content": "weather in Lyon"}]}


def test_record_then_replay_with_the_server_stopped(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    with ModelServer() as server:
        model = OpenAIChat("test-model", base_url=server.base_url)
        with cassette(path) as cas:
            assert cas.mode == "record"
            recorded = agent_app(model).invoke(ASK)
            tokens = list(agent_app(model).stream(ASK, mode="messages"))
        assert cas.calls == 4
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == 4
    assert "completion" in lines[0]["response"] and "chunks" in lines[2]["response"]
    assert "api_key" not in path.read_text() and "Authorization" not in path.read_text()
    assert recorded["messages"][-1]["content"] == "Result: rain in Lyon"

    # the server is gone: without the cassette a call fails, with it the run replays
    with pytest.raises(ModelError, match="cannot reach"):
        OpenAIChat("test-model", base_url=model.base_url, retry=None).invoke("x")
    with cassette(path) as cas:
        assert cas.mode == "replay"
        replayed = agent_app(model).invoke(ASK)
        tokens2 = list(agent_app(model).stream(ASK, mode="messages"))
        assert cas.unused() == 0
    assert replayed == recorded  # ids included: they come from the recording
    assert [c for c, _ in tokens2] == [c for c, _ in tokens]
    assert [m["node"] for _, m in tokens2] == [m["node"] for _, m in tokens]


def test_replay_async_and_a_recorded_completion_streams_as_one_chunk(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    with ModelServer() as server, cassette(path, mode="record"):
        model = OpenAIChat("test-model", base_url=server.base_url)
        first = model.invoke("hello")
    with cassette(path, mode="replay"):
        again = asyncio.run(model.ainvoke("hello"))
    assert again == first
    with cassette(path, mode="replay"):
        chunks = list(model.stream("hello"))
    assert [c["content"] for c in chunks] == ["You said: hello", "You said: hello"]
    # a recorded tool call replays, streamed, as one chunk with its tool_call_chunks
    with ModelServer() as server, cassette(path, mode="record"):
        model = OpenAIChat("test-model", base_url=server.base_url).bind_tools([weather])
        call = model.invoke("weather in Nice")
    with cassette(path, mode="replay"):
        chunks = list(model.stream("weather in Nice"))
    (tc,) = chunks[0]["tool_call_chunks"]
    assert (tc["name"], tc["id"], tc["arguments"]) == ("weather", call["tool_calls"][0]["id"], '{"city": "Nice"}')
    assert chunks[-1]["tool_calls"] == call["tool_calls"]


def test_a_changed_request_is_a_mismatch_with_a_diff(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    with ModelServer() as server:
        model = OpenAIChat("test-model", base_url=server.base_url)
        with cassette(path):
            model.invoke("what is the capital of France")
    with cassette(path), pytest.raises(CassetteMismatchError) as ei:
        model.invoke("what is the capital of Spain")
    msg = str(ei.value)
    assert str(path) in msg and "closest is call 0" in msg
    assert '-   "content": "what is the capital of France"' in msg
    assert '+   "content": "what is the capital of Spain"' in msg
    assert ei.value.index == 0 and ei.value.path == str(path)


def test_more_calls_than_recorded(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    with ModelServer() as server:
        model = OpenAIChat("test-model", base_url=server.base_url)
        with cassette(path):
            model.invoke("once")
    with cassette(path):
        model.invoke("once")
        with pytest.raises(CassetteMismatchError, match="no recorded call left"):
            model.invoke("once")


def test_parallel_calls_replay_in_any_order(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"

    def app_for(model: OpenAIChat) -> Any:
        g = StateGraph(dict)
        for name in ("a", "b", "c"):
            g.add_node(name, lambda s, n=name: {n: model.invoke(f"node {n}")["content"]}).add_edge(START, name)
        return g.compile()

    with ModelServer() as server:
        model = OpenAIChat("test-model", base_url=server.base_url)
        with cassette(path):
            first = app_for(model).invoke({})
    lines = path.read_text().splitlines()
    path.write_text("\n".join(reversed(lines)) + "\n")
    with cassette(path):
        assert app_for(model).invoke({}) == first


def test_modes(tmp_path: Path) -> None:
    path = tmp_path / "none.jsonl"
    with pytest.raises(FileNotFoundError, match="nothing to replay"), cassette(path, mode="replay"):
        pass
    with pytest.raises(ValueError, match="mode"), cassette(path, mode="rewind"):  # type: ignore[arg-type]
        pass
    with ModelServer() as server:
        model = OpenAIChat("test-model", base_url=server.base_url)
        with cassette(path):
            model.invoke("a")
        with cassette(path, mode="record"):  # overwrites
            model.invoke("b")
            model.invoke("c")
        assert len(path.read_text().splitlines()) == 2
        assert len(server.requests) == 3
        with cassette(path):  # auto: the file exists, so replay (no request reaches the server)
            model.invoke("b")
        assert len(server.requests) == 3
    path.write_text("not json\n")
    with pytest.raises(CassetteMismatchError, match="line 1"), cassette(path):
        pass
