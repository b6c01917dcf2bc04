"""stream(mode="messages") and mode="custom": a model's tokens reach the consumer while the node
runs (sync and async graphs, sync and async consumers, parallel nodes), with metadata naming
the node; get_stream_writer feeds "custom". Real openai SDK against the real local server."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

pytest.importorskip("openai")

import itertools

from agentgraph_nb import END, START, StateGraph, get_stream_writer, interrupt, node_failure
from agentgraph_nb.errors import ModelError
from agentgraph_nb.llm import OpenAIChat
from agentgraph_nb.testing import ModelServer

TOKEN_DELAY = 0.02


@pytest.fixture
def server() -> Any:
    with ModelServer(token_delay=TOKEN_DELAY) as s:
        yield s


@pytest.fixture
def model(server: ModelServer) -> OpenAIChat:
    return OpenAIChat("test-model", base_url=server.base_url)



def sync_graph(model: OpenAIChat) -> Any:
    def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"answer": model.invoke(state["question"])["content"]}

    g = StateGraph(dict)
    g.add_node("agent", agent).add_edge(START, "agent").add_edge("agent", END)
    return g.compile()


def async_graph(model: OpenAIChat) -> Any:
    async def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"answer": (await model.ainvoke(state["question"]))["content"]}

    g = StateGraph(dict)
    g.add_node("agent", agent).add_edge(START, "agent").add_edge("agent", END)
    return g.compile()


def _check_live(items: list[tuple[float, Any]], text: str) -> None:
    """Tokens arrive one by one, spread over the answer (not in one burst at the node's end)."""
    tokens = [(t, it[1]) for t, it in items if it[0] == "messages"]
    (t_update,) = [t for t, it in items if it[0] == "updates"]
    assert "".join(c["content"] for _, (c, _) in tokens) == text
    assert len(tokens) == len(text.split())
    first, last = tokens[0][0], tokens[-1][0]
    assert last - first >= TOKEN_DELAY * (len(tokens) - 2)  # the server spaces them
    assert first < t_update - TOKEN_DELAY  # the first token came well before the node ended
    meta = tokens[0][1][1]
    assert meta["node"] == meta["langgraph_node"] == "agent"
    assert meta["step"] == meta["langgraph_step"] == 1
    assert meta["model"] == "test-model" and len(meta["run_id"]) == 32


QUESTION = "one two three four five"
ANSWER = "You said: one two three four five"


def test_sync_graph_sync_stream_is_token_by_token(model: OpenAIChat) -> None:
    app = sync_graph(model)
    items = [(time.perf_counter(), it) for it in app.stream({"question": QUESTION}, mode=["messages", "updates"])]
    _check_live(items, ANSWER)
    assert items[-1][1] == ("updates", {"agent": {"answer": ANSWER}})


def test_single_mode_yields_bare_pairs_with_thread(model: OpenAIChat) -> None:
    app = sync_graph(model)
    got = list(app.stream({"question": "hi"}, mode="messages", thread_id="th"))
    chunk, meta = got[0]
    assert chunk == {"role": "assistant", "content": "You ", "id": chunk["id"]}
    assert meta["thread_id"] == "th"
    assert app.get_state("th").values["answer"] == "You said: hi"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_astream_is_token_by_token(model: OpenAIChat, kind: str) -> None:
    app = sync_graph(model) if kind == "sync" else async_graph(model)

    async def main() -> list[tuple[float, Any]]:
        return [(time.perf_counter(), it) async for it in app.astream({"question": QUESTION},
                                                                      mode=["messages", "updates"])]

    _check_live(asyncio.run(main()), ANSWER)


def test_async_graph_sync_stream_is_token_by_token(model: OpenAIChat) -> None:
    app = async_graph(model)
    items = [(time.perf_counter(), it) for it in app.stream({"question": QUESTION}, mode=["messages", "updates"])]
    _check_live(items, ANSWER)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_parallel_nodes_interleave_and_are_named(model: OpenAIChat, kind: str) -> None:
    g = StateGraph(dict)
    for name in ("left", "right"):
        if kind == "sync":
            def node(state: dict[str, Any], name: str = name) -> dict[str, Any]:
                return {name: model.invoke(f"{name} a b c")["content"]}
        else:
            async def node(state: dict[str, Any], name: str = name) -> dict[str, Any]:  # type: ignore[misc]
                return {name: (await model.ainvoke(f"{name} a b c"))["content"]}
        g.add_node(name, node).add_edge(START, name)
    app = g.compile()
    got = list(app.stream({}, mode="messages"))
    by_node: dict[str, str] = {}
    order = []
    for chunk, meta in got:
        by_node[meta["node"]] = by_node.get(meta["node"], "") + chunk["content"]
        order.append(meta["node"])
    assert by_node == {"left": "You said: left a b c", "right": "You said: right a b c"}
    # both ran at once: the stream switches between them, not all of one then all of the other
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    assert switches >= 2, order


def test_tool_call_chunks_stream(model: OpenAIChat) -> None:
    def weather(city: str) -> str:
        """Weather."""
        return "sunny"

    bound = model.bind_tools([weather])

    def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"msg": bound.invoke(state["q"])}

    g = StateGraph(dict)
    g.add_node("agent", agent).add_edge(START, "agent")
    got = [c for c, _ in g.compile().stream({"q": "weather in Lima"}, mode="messages")]
    pieces = [p for c in got for p in c["tool_call_chunks"]]
    assert pieces[0]["name"] == "weather"
    assert "".join(p["arguments"] for p in pieces) == '{"city": "Lima"}'


def test_custom_mode_and_get_stream_writer() -> None:
    def node(state: dict[str, Any]) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(3):
            write({"i": i})
        return {"done": True}

    g = StateGraph(dict)
    g.add_node("n", node).add_edge(START, "n")
    app = g.compile()
    assert list(app.stream({}, mode="custom")) == [{"i": 0}, {"i": 1}, {"i": 2}]
    both = list(app.stream({}, mode=["custom", "updates"]))
    assert both == [("custom", {"i": 0}), ("custom", {"i": 1}), ("custom", {"i": 2}), ("updates", {"n": {"done": True}})]
    # outside a "custom" stream the writer is a no-op
    assert app.invoke({}) == {"done": True}
    assert list(app.stream({}, mode="updates")) == [{"n": {"done": True}}]
    get_stream_writer()("ignored outside a run")


def test_custom_mode_async_node() -> None:
    async def node(state: dict[str, Any]) -> dict[str, Any]:
        get_stream_writer()("a")
        await asyncio.sleep(0)
        get_stream_writer()("b")
        return {}

    g = StateGraph(dict)
    g.add_node("n", node).add_edge(START, "n")
    app = g.compile()

    async def main() -> list[Any]:
        return [x async for x in app.astream({}, mode="custom")]

    assert asyncio.run(main()) == ["a", "b"]
    assert list(app.stream({}, mode="custom")) == ["a", "b"]


def test_closing_the_stream_early_stops_the_run(server: ModelServer, model: OpenAIChat) -> None:
    server.token_delay = 0.05
    app = sync_graph(model)
    t = time.perf_counter()
    stream = app.stream({"question": " ".join(["w"] * 60)}, mode="messages")
    next(stream)
    stream.close()
    assert time.perf_counter() - t < 1.0  # 60 tokens at 50 ms would take 3 s
    assert not [th for th in threading.enumerate() if th.name == "agentgraph_nb-stream"]  # the worker ended


def test_a_failing_node_in_a_messages_stream_raises_the_typed_error(server: ModelServer) -> None:
    model = OpenAIChat("m", base_url=server.base_url, retry=None)
    app = sync_graph(model)
    server.fail(400, message="nope")
    with pytest.raises(ModelError, match="nope") as ei:  # the node's own error, told where it failed
        list(app.stream({"question": "x"}, mode="messages"))
    where = node_failure(ei.value)
    assert where is not None and where.node == "agent"


def test_interrupts_work_in_a_messages_stream(model: OpenAIChat) -> None:
    def ask(state: dict[str, Any]) -> dict[str, Any]:
        return {"q": interrupt("question?")}

    def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"a": model.invoke(state["q"])["content"]}

    g = StateGraph(dict)
    g.add_node("ask", ask).add_node("agent", agent).add_edge(START, "ask").add_edge("ask", "agent")
    app = g.compile()
    assert list(app.stream({}, mode="messages", thread_id="i")) == []
    from agentgraph_nb import Command

    got = list(app.stream(Command(resume="x y"), mode="messages", thread_id="i"))
    assert "".join(c["content"] for c, _ in got) == "You said: x y"
    assert got[0][1]["node"] == "agent" and got[0][1]["step"] == 2


def test_no_live_mode_means_no_sink_and_no_thread(model: OpenAIChat) -> None:
    from agentgraph_nb.engine._stream import stream_sink

    seen = []

    def node(state: dict[str, Any]) -> dict[str, Any]:
        seen.append((stream_sink(), threading.current_thread() is threading.main_thread()))
        return {}

    g = StateGraph(dict)
    g.add_node("n", node).add_edge(START, "n")
    app = g.compile()
    list(app.stream({}, mode="updates"))
    app.invoke({})
    assert seen == [(None, True), (None, True)]




def test_messages_a_node_returns_come_whole_once(model: OpenAIChat) -> None:
    import json

    def weather(city: str) -> str:
        """Weather."""
        return f"fog in {city}"

    bound = model.bind_tools([weather])

    def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [*state["messages"], bound.invoke(state["messages"])]}

    def tools(state: dict[str, Any]) -> dict[str, Any]:
        call = state["messages"][-1]["tool_calls"][0]
        out = {"role": "tool", "tool_call_id": call["id"], "content": weather(**json.loads(call["function"]["arguments"]))}
        return {"messages": [*state["messages"], out]}

    def polite(state: dict[str, Any]) -> dict[str, Any]:  # a "model" that does not stream
        return {"messages": [*state["messages"], {"role": "assistant", "content": "Anything else?", "id": "p1"}]}

    g = StateGraph(dict)
    g.add_node("agent", agent).add_node("tools", tools).add_node("polite", polite)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", lambda s: "tools" if s["messages"][-1].get("tool_calls") else "polite",
                            ["tools", "polite"])
    g.add_edge("tools", "agent").add_edge("polite", END)
    app = g.compile()
    ask = {"role": "user", "content": "weather in Bergen"}
    got = list(app.stream({"messages": [ask]}, mode="messages"))
    whole = [(c, m["node"], m["step"]) for c, m in got if m["node"] != "agent"]
    assert whole == [
        ({"role": "tool", "tool_call_id": got[0][0]["tool_call_chunks"][0]["id"], "content": "fog in Bergen"}, "tools", 2),
        ({"role": "assistant", "content": "Anything else?", "id": "p1"}, "polite", 4),
    ]
    text = "".join(c["content"] for c, m in got if m["node"] == "agent")
    assert text == "Result: fog in Bergen"  # the model's tokens, each once; the user's message never
    # asking for updates too keeps them, after the node's messages
    both = list(app.stream({"messages": [ask]}, mode=["messages", "updates"]))
    kinds = [k for k, _ in both]
    assert kinds.count("updates") == 4 and kinds.index("updates") > 0


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_model_stream_inside_a_node_is_attributed_to_it(model: OpenAIChat, kind: str) -> None:
    if kind == "sync":
        def node(state: dict[str, Any]) -> dict[str, Any]:
            return {"parts": [c["content"] for c in model.stream("p q")]}
    else:
        async def node(state: dict[str, Any]) -> dict[str, Any]:  # type: ignore[misc]
            return {"parts": [c["content"] async for c in model.astream("p q")]}
    g = StateGraph(dict)
    g.add_node("writer", node).add_edge(START, "writer")
    app = g.compile()
    events: list[Any] = []
    out = app.invoke({}, listeners=[events.append])
    assert out["parts"][-1] == "You said: p q"
    assert [(e.kind, e.node) for e in events if e.kind == "llm_end"] == [("llm_end", "writer")]
    assert app.metrics.to_pandas().loc["writer", "tokens_out"] == 4
    got = list(app.stream({}, mode="messages"))
    assert {m["node"] for _, m in got} == {"writer"} and len(got) == 4
