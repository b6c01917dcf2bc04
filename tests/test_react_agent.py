"""create_react_agent with a scripted chat model: the loop, prompt, response_format, threads,
interrupts, drawing, and the ScriptedChatModel helper itself."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytest.importorskip("pydantic")

from pydantic import BaseModel

from agentgraph_nb import Command, CompiledGraph, interrupt
from agentgraph_nb.prebuilt import create_react_agent
from agentgraph_nb.testing import FakeChatModel, ScriptedChatModel, tool_call
from agentgraph_nb.tools import ToolNode, tool


@tool
def weather(city: str) -> str:
    """Current weather in a city.

    Args:
        city: the city's name.
    """
    return {"Oslo": "4 C, rain", "Rome": "21 C, sun"}.get(city, "unknown")


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def contents(out: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(m["role"], m.get("content")) for m in out["messages"]]


def test_three_turn_react_loop_reaches_end() -> None:
    model = ScriptedChatModel([
        [tool_call("weather", {"city": "Oslo"}, id="w1")],
        [tool_call("add", {"a": 4, "b": 17}, id="a1")],
        "Oslo is 4 C; plus 17 makes 21.",
    ])
    agent = create_react_agent(model, [weather, add])
    assert isinstance(agent, CompiledGraph)
    out = agent.invoke({"messages": [{"role": "user", "content": "Weather in Oslo, plus 17?"}]})
    assert contents(out) == [
        ("user", "Weather in Oslo, plus 17?"),
        ("assistant", None),
        ("tool", "4 C, rain"),
        ("assistant", None),
        ("tool", "21"),
        ("assistant", "Oslo is 4 C; plus 17 makes 21."),
    ]
    assert model.call_count == 3
    # the model was offered both tools on every call, in the OpenAI format
    assert [[t["function"]["name"] for t in seen] for seen in model.tools_seen] == [["weather", "add"]] * 3
    # and saw the tool answers before its next turn
    assert model.calls[1][-1]["role"] == "tool" and model.calls[1][-1]["tool_call_id"] == "w1"
    assert model.calls[2][-1] == {**out["messages"][4]}


def test_parallel_calls_in_one_turn_run_side_by_side() -> None:
    @tool
    def slow(name: str) -> str:
        """Slow lookup."""
        time.sleep(0.3)
        return name

    model = ScriptedChatModel([[tool_call("slow", {"name": n}, id=n) for n in "abc"], "done"])
    agent = create_react_agent(model, [slow])
    t = time.perf_counter()
    out = agent.invoke({"messages": "go"})
    assert time.perf_counter() - t < 0.8  # three 0.3 s calls, side by side
    assert [m["content"] for m in out["messages"] if m["role"] == "tool"] == ["a", "b", "c"]


def test_tool_errors_go_back_to_the_model_which_recovers() -> None:
    model = ScriptedChatModel([
        [tool_call("wether", {"city": "Oslo"}, id="1")],          # a made-up tool
        [tool_call("weather", '{"city": Oslo}', id="2")],          # broken JSON
        [tool_call("add", {"a": 1}, id="3")],                      # missing argument
        [tool_call("weather", {"city": "Oslo"}, id="4")],
        "Rain in Oslo.",
    ])
    out = create_react_agent(model, [weather, add]).invoke({"messages": "weather?"})
    tool_msgs = [m["content"] for m in out["messages"] if m["role"] == "tool"]
    assert "no tool named 'wether'. Did you mean 'weather'?" in tool_msgs[0]
    assert "not valid JSON" in tool_msgs[1]
    assert "b: Field required" in tool_msgs[2]
    assert tool_msgs[3] == "4 C, rain"
    assert out["messages"][-1]["content"] == "Rain in Oslo."


def test_prompt_as_string_and_as_callable() -> None:
    model = ScriptedChatModel(["hi"])
    create_react_agent(model, [weather], prompt="You are terse.").invoke({"messages": "hello"})
    assert [(m["role"], m["content"]) for m in model.calls[0]] == [("system", "You are terse."), ("user", "hello")]

    model = ScriptedChatModel(["hi"])

    def prompt(state: dict[str, Any]) -> list[Any]:
        return [("system", f"{len(state['messages'])} messages so far"), *state["messages"][-1:]]

    out = create_react_agent(model, [weather], prompt=prompt).invoke({"messages": ["a", "b"]})
    assert [(m["role"], m["content"]) for m in model.calls[0]] == [("system", "2 messages so far"), ("user", "b")]
    # the prompt is sent, never stored
    assert [m["role"] for m in out["messages"]] == ["user", "user", "assistant"]
    with pytest.raises(TypeError, match="prompt must be a string"):
        create_react_agent(model, [weather], prompt=42)  # type: ignore[arg-type]


class Forecast(BaseModel):
    city: str
    temperature_c: float


def test_response_format_fills_structured_response() -> None:
    model = ScriptedChatModel([
        [tool_call("weather", {"city": "Rome"}, id="1")],
        "Rome: 21 C and sunny.",
        {"city": "Rome", "temperature_c": 21},  # the structured answer
    ])
    agent = create_react_agent(model, [weather], response_format=Forecast, prompt="Be exact.")
    out = agent.invoke({"messages": "Rome?"}, thread_id="t")
    assert out["structured_response"] == Forecast(city="Rome", temperature_c=21)
    # the structured call sees the conversation, without the agent's prompt (as in LangGraph)
    assert [m["role"] for m in model.calls[2]] == ["user", "assistant", "tool", "assistant"]
    assert model.calls[2][-1]["content"] == "Rome: 21 C and sunny."
    assert "generate_structured_response" in agent.to_mermaid()
    # checkpointed (the model class is registered with the serializer) and read back as the model
    assert agent.get_state("t").values["structured_response"] == Forecast(city="Rome", temperature_c=21)


def test_response_format_with_its_own_system_prompt() -> None:
    model = ScriptedChatModel(["Oslo: 4 C.", '{"city": "Oslo", "temperature_c": 4}'])
    out = create_react_agent(model, [weather], prompt="Be brief.",
                             response_format=("Extract the forecast.", Forecast)).invoke({"messages": "Oslo?"})
    assert out["structured_response"] == Forecast(city="Oslo", temperature_c=4)
    assert [(m["role"], m["content"]) for m in model.calls[1]] == [
        ("system", "Extract the forecast."), ("user", "Oslo?"), ("assistant", "Oslo: 4 C."),
    ]
    with pytest.raises(TypeError, match=r"pydantic model or \(system_prompt, model\)"):
        create_react_agent(model, [weather], response_format=(Forecast, "x"))  # type: ignore[arg-type]


def test_response_format_on_a_sqlite_checkpointer_round_trips(tmp_path: Any) -> None:
    model = ScriptedChatModel(["ok", {"city": "Oslo", "temperature_c": 4}])
    url = f"sqlite:///{tmp_path / 'a.db'}"
    create_react_agent(model, [weather], response_format=Forecast, checkpointer=url).invoke({"messages": "x"}, thread_id="t")
    again = create_react_agent(ScriptedChatModel([]), [weather], response_format=Forecast, checkpointer=url)
    assert again.get_state("t").values["structured_response"] == Forecast(city="Oslo", temperature_c=4)


def test_models_without_the_needed_methods_are_clear_errors() -> None:
    class Bare:
        def invoke(self, messages: Any) -> dict[str, Any]:
            return {"role": "assistant", "content": "hi"}

    with pytest.raises(TypeError, match="has no bind_tools"):
        create_react_agent(Bare(), [weather])
    with pytest.raises(TypeError, match="response_format='Forecast' needs a model with with_structured_output"):
        create_react_agent(Bare(), [], response_format=Forecast)
    # without tools, a bare model is enough: agent -> END
    out = create_react_agent(Bare(), []).invoke({"messages": "hello"})
    assert contents(out)[-1] == ("assistant", "hi")


def test_a_model_returning_text_or_nonsense() -> None:
    class Texty:  # FakeChatModel-style: returns a string
        def invoke(self, messages: Any) -> str:
            return "plain text"

    assert contents(create_react_agent(Texty(), []).invoke({"messages": "hi"}))[-1] == ("assistant", "plain text")

    class Wrong:
        def invoke(self, messages: Any) -> Any:
            return {"role": "user", "content": "?"}

    with pytest.raises(TypeError, match="must return one assistant message"):
        create_react_agent(Wrong(), []).invoke({"messages": "hi"})
    # the fake chat model of the tutorials works as a model too
    assert create_react_agent(FakeChatModel(["fine"]), []).invoke({"messages": "hi"})["messages"][-1]["content"] == "fine"


def test_checkpointer_threads_continue_the_conversation() -> None:
    model = ScriptedChatModel(["Nice to meet you, Ada.", "Hello, stranger.", "You are Ada."])
    agent = create_react_agent(model, [weather])
    agent.invoke({"messages": "I am Ada."}, thread_id="ada")
    agent.invoke({"messages": "Hello."}, thread_id="bob")  # another thread: the model sees nothing of it
    out = agent.invoke({"messages": "Who am I?"}, thread_id="ada")
    assert [m["content"] for m in out["messages"]] == ["I am Ada.", "Nice to meet you, Ada.", "Who am I?", "You are Ada."]
    assert [m["content"] for m in model.calls[-1]] == ["I am Ada.", "Nice to meet you, Ada.", "Who am I?"]


def test_interrupt_in_a_tool_pauses_the_agent_and_resume_finishes() -> None:
    @tool
    def delete_file(path: str) -> str:
        """Delete a file (asks first)."""
        ok = interrupt(f"delete {path}?")
        return f"deleted {path}" if ok else "kept"

    model = ScriptedChatModel([[tool_call("delete_file", {"path": "/tmp/x"}, id="d")], "Deleted."])
    agent = create_react_agent(model, [delete_file])
    paused = agent.invoke({"messages": "clean up"}, thread_id="t")
    assert [i.value for i in paused["__interrupt__"]] == ["delete /tmp/x?"]
    assert agent.get_state("t").next == ("tools",)
    assert model.call_count == 1
    out = agent.invoke(Command(resume=True), thread_id="t")
    assert contents(out)[-2:] == [("tool", "deleted /tmp/x"), ("assistant", "Deleted.")]
    assert model.call_count == 2  # the model is not asked again for the paused turn


def test_interrupt_before_tools_lets_a_human_review_the_calls() -> None:
    model = ScriptedChatModel([[tool_call("add", {"a": 1, "b": 2}, id="x")], "3"])
    agent = create_react_agent(model, [add], interrupt_before=["tools"])
    agent.invoke({"messages": "1+2"}, thread_id="t")
    snap = agent.get_state("t")
    assert snap.next == ("tools",)
    assert snap.values["messages"][-1]["tool_calls"][0]["function"]["name"] == "add"
    out = agent.invoke(None, thread_id="t")
    assert contents(out)[-2:] == [("tool", "3"), ("assistant", "3")]


async def test_async_model_and_async_tools_under_ainvoke() -> None:
    import asyncio

    @tool
    async def lookup(q: str) -> str:
        """Look it up."""
        await asyncio.sleep(0.01)
        return q.upper()

    model = ScriptedChatModel([[tool_call("lookup", {"q": "a"}, id="1"), tool_call("lookup", {"q": "b"}, id="2")], "AB"])
    agent = create_react_agent(model, [lookup])
    out = await agent.ainvoke({"messages": "go"})
    assert contents(out)[2:] == [("tool", "A"), ("tool", "B"), ("assistant", "AB")]
    # and the same graph under a sync invoke
    model2 = ScriptedChatModel([[tool_call("lookup", {"q": "c"}, id="1")], "C"])
    assert await asyncio.to_thread(lambda: create_react_agent(model2, [lookup]).invoke({"messages": "go"})["messages"][-1]["content"]) == "C"


def test_drawn_like_any_graph() -> None:
    agent = create_react_agent(ScriptedChatModel([]), [weather], name="weather_agent")
    assert agent.name == "weather_agent"
    mermaid = agent.to_mermaid()
    for line in ('n_agent["agent"]', 'n_tools["tools"]', "__start__ --> n_agent", "n_tools --> n_agent",
                 'n_agent -.->|"tools_condition"| n_tools', 'n_agent -.->|"tools_condition"| __end__'):
        assert line in mermaid, mermaid
    dot = agent.to_dot()
    assert '"agent" -> "tools"' in dot or "agent -> tools" in dot, dot
    data = agent.to_json()
    assert {n["name"] if isinstance(n, dict) else n for n in data["nodes"]} >= {"agent", "tools"}


def test_a_tool_node_can_be_passed_with_its_options() -> None:
    model = ScriptedChatModel([[tool_call("add", {"a": "x", "b": 1})], "sorry"])
    agent = create_react_agent(model, ToolNode([add], handle_errors="bad call"))
    out = agent.invoke({"messages": "x"})
    assert [m["content"] for m in out["messages"] if m["role"] == "tool"] == ["bad call"]


def test_scripted_chat_model_runs_out_clearly_and_shares_records() -> None:
    model = ScriptedChatModel(["one"], name="m")
    bound = model.bind_tools([weather])
    assert bound.invoke("hi")["content"] == "one"
    assert model.call_count == 1 and model.tools_seen == [[weather.schema]]
    with pytest.raises(AssertionError, match="ScriptedChatModel 'm': call 2 but the script has only 1 answers"):
        model.invoke("again")
    boom = ScriptedChatModel([ConnectionError("down")])
    with pytest.raises(ConnectionError):
        boom.invoke("x")


def test_readme_agents_example_runs_as_pasted(tmp_path: Any) -> None:
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Tools and ReAct agents", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    script = tmp_path / "agent.py"
    script.write_text(code)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == ["Book for 2 in Rome?", "Rome is sunny: a table for two is booked.", "city='Rome' booked=True"]
    assert "generate_structured_response" in r.stdout and 'n_agent["agent"]' in r.stdout


def test_graphview_shows_the_agent_and_its_run() -> None:
    pytest.importorskip("anywidget")
    model = ScriptedChatModel([[tool_call("weather", {"city": "Oslo"})], "Rain."])
    agent = create_react_agent(model, [weather])
    view = agent.show()
    graph = view.graph
    assert [n["name"] for n in graph["nodes"]] == ["agent", "tools"]
    edges = {(e["source"], e["target"]) for e in graph["edges"]}
    assert {("__start__", "agent"), ("tools", "agent")} <= edges
    agent.invoke({"messages": "weather?"})
    bundle = agent._repr_mimebundle_()
    assert "image/svg+xml" in bundle and ">agent<" in bundle["image/svg+xml"] and ">tools<" in bundle["image/svg+xml"]
