"""Live tokens in the notebook views: a chat model called inside a node streams its answer to the
GraphView's details panel (``reply``) and to the Debugger while it steps, coalesced like the
other live updates; listeners that did not ask for tokens never see them, and a run nobody
watches for tokens does not stream. Real openai SDK against the real local model server."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

pytest.importorskip("openai")
pytest.importorskip("anywidget")

from agentgraph_nb import END, START, StateGraph
from agentgraph_nb.llm import OpenAIChat
from agentgraph_nb.testing import ModelServer
from agentgraph_nb.types import EVENT_KINDS
from agentgraph_nb.ui.debugger import Debugger
from agentgraph_nb.ui.graphview import _REPLY_LIMIT, GraphView, _Reply

TOKEN_DELAY = 0.03
QUESTION = "one two three four five six"
ANSWER = "You said: one two three four five six"


@pytest.fixture
def server() -> Any:
    with ModelServer(token_delay=TOKEN_DELAY) as s:
        yield s


def agent_graph(model: OpenAIChat, *, checkpointer: Any = None) -> Any:
    def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"answer": model.invoke(state["question"])["content"]}

    g = StateGraph(dict, name="live")
    g.add_node("agent", agent).add_node("after", lambda s: {"done": True})
    g.add_edge(START, "agent").add_edge("agent", "after").add_edge("after", END)
    return g.compile(checkpointer=checkpointer)


def replies_seen(view: GraphView, node: str) -> list[str]:
    """Every ``reply`` of ``node`` the view sent to the browser, in order."""
    seen: list[str] = []

    def on_details(change: dict[str, Any]) -> None:
        r = (change["new"].get(node) or {}).get("reply")
        if r and (not seen or seen[-1] != r):
            seen.append(r)

    view.observe(on_details, names="details")
    return seen


def test_llm_token_is_an_event_kind() -> None:
    assert "llm_token" in EVENT_KINDS


def test_graphview_shows_the_answer_as_it_streams(server: ModelServer) -> None:
    app = agent_graph(OpenAIChat("test-model", base_url=server.base_url))
    view = GraphView.from_app(app)
    seen = replies_seen(view, "agent")
    running_with_reply: list[bool] = []
    view.observe(
        lambda c: running_with_reply.append(
            view.status.get("agent") == "running" and bool((c["new"].get("agent") or {}).get("reply"))
        ),
        names="details",
    )
    view.attach(app)
    out = app.invoke({"question": QUESTION})
    assert out["answer"] == ANSWER
    # several partial answers reached the browser while the node ran, each a prefix of the next
    assert len(seen) >= 3, seen
    assert all(b.startswith(a) for a, b in itertools.pairwise(seen))
    assert seen[-1] == ANSWER and any(running_with_reply)
    # coalesced: fewer sends than tokens (8 tokens 30 ms apart, sends at most every 50 ms)
    assert len(seen) < len(ANSWER.split())
    d = view.details["agent"]
    assert d["reply"] == ANSWER and d["model"] == "test-model"
    assert d["tokens"].endswith(f"{len(ANSWER.split())} out")
    assert "reply" not in view.details["after"]
    assert server.requests[-1]["stream"] is True  # the view asked for tokens: the call streamed


def test_only_listeners_that_ask_get_tokens_and_nobody_asking_means_no_stream(server: ModelServer) -> None:
    app = agent_graph(OpenAIChat("test-model", base_url=server.base_url))
    kinds: list[str] = []
    app.listen(lambda e: kinds.append(e.kind))
    app.invoke({"question": QUESTION})
    assert "llm_end" in kinds and "llm_token" not in kinds
    assert not server.requests[-1].get("stream")  # no token listener, no messages stream: one JSON answer

    tokens: list[Any] = []

    def wants(e: Any) -> None:
        if e.kind == "llm_token":
            tokens.append(e)

    wants.llm_tokens = True  # type: ignore[attr-defined]
    app.listen(wants)
    kinds.clear()
    app.invoke({"question": QUESTION}, thread_id="t9")
    assert "llm_token" not in kinds
    assert "".join(e.data["content"] for e in tokens) == ANSWER
    assert {(e.node, e.step, e.thread_id) for e in tokens} == {("agent", 1, "t9")}


def test_a_broken_token_listener_does_not_break_the_run(server: ModelServer) -> None:
    app = agent_graph(OpenAIChat("test-model", base_url=server.base_url))

    def broken(e: Any) -> None:
        raise RuntimeError("listener bug")

    broken.llm_tokens = True  # type: ignore[attr-defined]
    app.listen(broken)
    assert app.invoke({"question": "hi"})["answer"] == "You said: hi"


def test_messages_stream_and_graphview_both_get_the_tokens(server: ModelServer) -> None:
    app = agent_graph(OpenAIChat("test-model", base_url=server.base_url))
    view = GraphView.from_app(app)
    view.attach(app)
    streamed = "".join(c["content"] for c, meta in app.stream({"question": QUESTION}, mode="messages")
                       if meta["node"] == "agent")
    assert streamed == ANSWER
    view.flush()
    assert view.details["agent"]["reply"] == ANSWER


def test_tool_calls_stream_into_the_reply(server: ModelServer) -> None:
    def weather(city: str) -> str:
        """Current weather in a city."""
        return "sunny"

    bound = OpenAIChat("test-model", base_url=server.base_url).bind_tools([weather])

    def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"msg": bound.invoke(state["q"])}

    app = StateGraph(dict).add_node("agent", agent).add_edge(START, "agent").compile()
    view = GraphView.from_app(app)
    view.attach(app)
    app.invoke({"q": "weather in Lima"})
    view.flush()
    assert view.details["agent"]["reply"] == '\u2192 weather({"city": "Lima"})'


def test_async_node_tokens_reach_the_view(server: ModelServer) -> None:
    model = OpenAIChat("test-model", base_url=server.base_url)

    async def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"answer": (await model.ainvoke(state["question"]))["content"]}

    app = StateGraph(dict).add_node("agent", agent).add_edge(START, "agent").compile()
    view = GraphView.from_app(app)
    seen = replies_seen(view, "agent")
    view.attach(app)
    app.invoke({"question": QUESTION})
    view.flush()
    assert len(seen) >= 3 and seen[-1] == ANSWER


def test_a_new_run_of_the_node_starts_a_new_reply(server: ModelServer) -> None:
    app = agent_graph(OpenAIChat("test-model", base_url=server.base_url))
    view = GraphView.from_app(app)
    view.attach(app)
    app.invoke({"question": "first"})
    seen = replies_seen(view, "agent")
    app.invoke({"question": "second"})
    assert seen[-1] == "You said: second"
    assert not any("first" in r for r in seen)


def test_reply_folding() -> None:
    r = _Reply()
    r.add({"role": "assistant", "content": "Hel", "id": "a"})
    r.add({"role": "assistant", "content": "lo", "id": "a"})
    assert r.text() == "Hello"
    r.add({"role": "assistant", "content": "", "id": "a",
           "tool_call_chunks": [{"index": 0, "id": "c1", "name": "f", "arguments": '{"x"'}]})
    r.add({"role": "assistant", "content": "", "id": "a",
           "tool_call_chunks": [{"index": 0, "id": None, "name": None, "arguments": ": 1}"}]})
    assert r.text() == 'Hello\n\u2192 f({"x": 1})'
    r.add({"role": "assistant", "content": "again", "id": "b"})  # the node's next call
    assert r.text() == "again"
    r.add("not a chunk")
    for _ in range(1000):
        r.add({"role": "assistant", "content": "word ", "id": "b"})
    text = r.text()
    assert len(text) == _REPLY_LIMIT and text.startswith("\u2026") and text.endswith("word ")


def test_debugger_shows_the_answer_while_stepping(server: ModelServer) -> None:
    app = agent_graph(OpenAIChat("test-model", base_url=server.base_url), checkpointer="memory")
    dbg = Debugger(app, {"question": QUESTION}, thread_id="d1")
    seen = replies_seen(dbg.graphview, "agent")
    assert dbg.graphview.selected == ""
    dbg.step()
    assert dbg.state.values["answer"] == ANSWER
    assert len(seen) >= 3 and seen[-1] == ANSWER
    # the node whose model answered was opened, and its reply stays after the step
    assert dbg.graphview.selected == "agent"
    assert dbg.graphview.details["agent"]["reply"] == ANSWER
    assert dbg.graphview.status["agent"] == "done"
    dbg.graphview.selected = "after"  # the user's choice is kept on the next step
    dbg.step()
    assert dbg.graphview.selected == "after"
    dbg.close()


def test_debugger_listens_for_tokens_only_while_it_runs(server: ModelServer) -> None:
    app = agent_graph(OpenAIChat("test-model", base_url=server.base_url), checkpointer="memory")
    dbg = Debugger(app, {"question": QUESTION}, thread_id="d2")
    assert app._listeners == []
    done = threading.Event()
    app.listen(lambda e: done.set() if e.kind == "run_end" else None)
    app.invoke({"question": "x"}, thread_id="other")
    assert done.is_set() and not server.requests[-1].get("stream")
    dbg.close()
