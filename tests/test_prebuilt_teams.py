"""create_supervisor / create_swarm: handoffs through Command(graph=PARENT) from handoff tools,
with scripted models, a real model server (the openai SDK over HTTP) and plain functions."""

from __future__ import annotations

from typing import Any

import pytest

from agentgraph_nb import END, Command, interrupt
from agentgraph_nb.errors import GraphValidationError, InvalidUpdateError
from agentgraph_nb.prebuilt import (
    create_handoff_tool,
    create_react_agent,
    create_supervisor,
    create_swarm,
)
from agentgraph_nb.testing import ScriptedChatModel, tool_call
from agentgraph_nb.tools import tool


def _summary(messages: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(m["role"], m.get("content") or [c["function"]["name"] for c in m["tool_calls"]]) for m in messages]


def test_supervisor_hands_off_to_agent_subgraphs_and_finishes() -> None:
    boss = ScriptedChatModel([[tool_call("transfer_to_researcher", {}, id="h1")],
                              [tool_call("transfer_to_writer", {}, id="h2")], "Done."], name="boss")
    researcher = create_react_agent(ScriptedChatModel(["tides: facts"]), [], name="researcher", checkpointer=None)
    writer = create_react_agent(ScriptedChatModel(["a report"]), [], name="writer", checkpointer=None)
    app = create_supervisor([researcher, writer], boss).compile(checkpointer="memory")
    out = app.invoke({"messages": "tides"}, thread_id="t")
    assert _summary(out["messages"]) == [
        ("user", "tides"), ("assistant", ["transfer_to_researcher"]), ("tool", "Successfully transferred to researcher"),
        ("assistant", "tides: facts"), ("assistant", ["transfer_to_writer"]), ("tool", "Successfully transferred to writer"),
        ("assistant", "a report"), ("assistant", "Done."),
    ]
    # the supervisor was offered one handoff tool per agent, and saw the researcher's answer
    assert [t["function"]["name"] for t in boss.tools_seen[0]] == ["transfer_to_researcher", "transfer_to_writer"]
    assert boss.calls[1][-1]["content"] == "tides: facts"
    # each agent is a subgraph with its own namespaced history on the team's thread
    assert app.get_state_history("t", namespace="researcher")[0].values["messages"][-1]["content"] == "tides: facts"
    j = app.to_json()
    kinds = {n["name"]: bool(n.get("subgraph")) for n in j["nodes"]}
    assert kinds["supervisor"] and kinds["researcher"] and kinds["writer"]


def test_supervisor_with_plain_function_agents_and_router() -> None:
    def researcher(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [("ai", "facts")]}

    def writer(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [("ai", "report from " + state["messages"][-1]["content"])]}

    def route(state: dict[str, Any]) -> str:
        said = [m["content"] for m in state["messages"]]
        return "researcher" if "facts" not in said else ("writer" if len(said) < 3 else END)

    app = create_supervisor({"researcher": researcher, "writer": writer}, route).compile()
    assert [m["content"] for m in app.invoke({"messages": "go"})["messages"]] == ["go", "facts", "report from facts"]

    def lost(state: dict[str, Any]) -> str:
        return "writter"

    with pytest.raises(InvalidUpdateError, match=r"'writter', which is not an agent.*Did you mean 'writer'"):
        create_supervisor([researcher, writer], lost).compile().invoke({"messages": "go"})


def test_interrupt_inside_an_agent_pauses_the_team_and_resumes_from_its_thread(tmp_path: Any) -> None:
    calls = {"publish": 0}

    @tool
    def publish(text: str) -> str:
        """Publish a text after a human approves it."""
        calls["publish"] += 1
        answer = interrupt({"approve": text})
        return f"published: {text}" if answer == "yes" else "rejected"

    boss = ScriptedChatModel([[tool_call("transfer_to_publisher", {}, id="h1")], "All done."], name="boss")
    pub_model = ScriptedChatModel([[tool_call("publish", {"text": "tides"}, id="p1")], "It is out."], name="pub")
    publisher = create_react_agent(pub_model, [publish], name="publisher", checkpointer=None)
    app = create_supervisor([publisher], boss).compile(checkpointer=f"sqlite:///{tmp_path / 'team.db'}")
    out = app.invoke({"messages": "publish tides"}, thread_id="t1")
    (intr,) = out["__interrupt__"]
    assert intr.value == {"approve": "tides"}
    assert tuple(intr.path)[:2] == ("publisher", "tools")
    inner = app.get_state("t1", subgraphs=True).tasks[0].state
    assert inner.values["messages"][-1]["tool_calls"][0]["function"]["name"] == "publish"
    out = app.invoke(Command(resume="yes"), thread_id="t1")
    assert [m.get("content") for m in out["messages"][-3:]] == ["published: tides", "It is out.", "All done."]
    assert boss.call_count == 2 and pub_model.call_count == 2  # nothing finished ran again


def test_swarm_agents_hand_off_and_the_thread_remembers_who_is_active() -> None:
    alice_model = ScriptedChatModel([[tool_call("transfer_to_bob", {}, id="a1")]], name="alice")
    bob_model = ScriptedChatModel(["bob: 42", "bob again"], name="bob")
    alice = create_react_agent(alice_model, [create_handoff_tool("bob", active_key="active_agent")], name="alice",
                               checkpointer=None)
    bob = create_react_agent(bob_model, [create_handoff_tool("alice", active_key="active_agent")], name="bob",
                             checkpointer=None)
    app = create_swarm([alice, bob], default_active_agent="alice").compile(checkpointer="memory")
    out = app.invoke({"messages": "what is six times seven"}, thread_id="s")
    assert out["active_agent"] == "bob"
    assert _summary(out["messages"])[-3:] == [("assistant", ["transfer_to_bob"]),
                                              ("tool", "Successfully transferred to bob"), ("assistant", "bob: 42")]
    out = app.invoke({"messages": "and again?"}, thread_id="s")  # bob has the conversation now
    assert out["messages"][-1]["content"] == "bob again" and alice_model.call_count == 1


def test_swarm_of_plain_functions() -> None:
    def alice(state: dict[str, Any]) -> Command:
        return Command(goto="bob", update={"messages": [("ai", "over to bob")], "active_agent": "bob"})

    def bob(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [("ai", "bob here")]}

    out = create_swarm([alice, bob]).compile().invoke({"messages": "hi"})
    assert [m["content"] for m in out["messages"]] == ["hi", "over to bob", "bob here"]


def test_teams_with_the_openai_sdk_against_the_model_server() -> None:
    from agentgraph_nb.llm import OpenAIChat
    from agentgraph_nb.testing import ModelServer

    with ModelServer(token_delay=0.0) as server:
        model = OpenAIChat("test-model", base_url=server.base_url, api_key="x")
        researcher = create_react_agent(model, [], name="researcher", checkpointer=None)
        # supervisor: a handoff, then a final answer; the researcher answers by the server's rules
        server.script({"tool_calls": [{"name": "transfer_to_researcher", "arguments": "{}"}]})
        app = create_supervisor([researcher], model, prompt="You manage a researcher.").compile(checkpointer="memory")
        out = app.invoke({"messages": "find tides"}, thread_id="m")
        roles = _summary(out["messages"])
        assert roles[1:3] == [("assistant", ["transfer_to_researcher"]), ("tool", "Successfully transferred to researcher")]
        assert roles[3][0] == "assistant" and roles[-1][0] == "assistant"
        assert len(out["messages"]) == 5  # user, handoff, tool answer, researcher, supervisor's last word

        alice = create_react_agent(model, [create_handoff_tool("bob", active_key="active_agent")], name="alice",
                                   checkpointer=None)
        bob = create_react_agent(model, [], name="bob", checkpointer=None)
        swarm = create_swarm([alice, bob]).compile(checkpointer="memory")
        # the server calls a tool the user's message names
        out = swarm.invoke({"messages": "please transfer_to_bob"}, thread_id="w")
        assert out["active_agent"] == "bob" and out["messages"][-1]["role"] == "assistant"


def test_bad_team_input_names_what_is_wrong() -> None:
    def a(state: dict[str, Any]) -> dict[str, Any]:
        return {}

    with pytest.raises(GraphValidationError, match="no agents"):
        create_swarm([])
    with pytest.raises(GraphValidationError, match="two agents are named 'a'"):
        create_swarm([a, a])
    with pytest.raises(GraphValidationError, match=r"agent 0 .* has no name"):
        create_swarm([lambda s: {}])
    with pytest.raises(GraphValidationError, match=r"default_active_agent 'b' is not one of the agents \['a'\]"):
        create_swarm([a], default_active_agent="b")
    with pytest.raises(GraphValidationError, match="named 'supervisor', like the supervisor"):
        create_supervisor({"supervisor": a}, lambda s: END)
    with pytest.raises(TypeError, match="model must be a chat model"):
        create_supervisor([a], 42)
