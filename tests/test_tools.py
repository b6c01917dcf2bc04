"""Tools: ``@tool`` schemas and calls, ``ToolNode`` (parallel calls, error messages, interrupts),
``tools_condition``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from typing import Annotated, Any, Literal

import pytest

pytest.importorskip("pydantic")

from pydantic import BaseModel, Field

from agentgraph_nb import (
    END,
    START,
    Command,
    MessagesState,
    StateGraph,
    ToolArgumentsError,
    ToolError,
    UnknownToolError,
    interrupt,
    node_failure,
)
from agentgraph_nb.testing import tool_call
from agentgraph_nb.tools import (
    InjectedState,
    InjectedToolCallId,
    Tool,
    ToolNode,
    tool,
    tool_content,
    tools_condition,
)


def calls_message(*calls: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": list(calls), "id": "ai-1"}


def state_with(*calls: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "go", "id": "u"}, calls_message(*calls)]}


# -- @tool --------------------------------------------------------------------------------------------
class Place(BaseModel):
    city: str
    country: str = "NO"


@tool
def weather(city: str, unit: Literal["C", "F"] = "C", days: int = 1) -> str:
    """Current weather in a city.

    Longer explanation that stays in the description.

    Args:
        city: the city's name,
            e.g. "Paris".
        unit (str): the temperature unit.
        days: how many days ahead.

    Returns:
        A sentence.
    """
    return f"18 {unit} in {city} for {days} day(s)"


def test_tool_schema_from_hints_and_docstring() -> None:
    s = weather.schema
    assert s["type"] == "function"
    fn = s["function"]
    assert fn["name"] == "weather"
    assert fn["description"] == "Current weather in a city.\n\nLonger explanation that stays in the description."
    params = fn["parameters"]
    assert params["type"] == "object" and params["required"] == ["city"]
    assert params["properties"]["city"] == {"type": "string", "description": 'the city\'s name, e.g. "Paris".'}
    assert params["properties"]["unit"] == {
        "type": "string", "enum": ["C", "F"], "default": "C", "description": "the temperature unit.",
    }
    assert params["properties"]["days"]["type"] == "integer"
    assert params["additionalProperties"] is False
    assert "title" not in params and all("title" not in p for p in params["properties"].values())


def test_tool_forms_and_names() -> None:
    @tool("lookup")
    def f(q: str) -> str:
        """Look up."""
        return q

    @tool(name="search_web", description="Search the web.")
    def g(q: str) -> str:
        return q

    h = tool(lambda q: q, name="echo")
    assert (f.name, g.name, g.description, h.name) == ("lookup", "search_web", "Search the web.", "echo")
    assert isinstance(f, Tool) and tool(f) is f
    assert f("x") == "x"  # still callable as the function
    with pytest.raises(ValueError, match="1-64 letters"):
        tool(lambda q: q, name="has space")
    with pytest.raises(TypeError, match=r"\*args"):
        tool(lambda *args: args, name="varargs")


def test_nested_models_and_constraints_in_schema_and_validation() -> None:
    @tool
    def book(place: Place, nights: Annotated[int, Field(ge=1, le=30)], tags: list[str] | None = None) -> dict[str, Any]:
        """Book a stay."""
        return {"city": place.city, "nights": nights, "tags": tags or []}

    params = book.schema["function"]["parameters"]
    assert params["properties"]["nights"]["minimum"] == 1
    assert "$defs" in params and "Place" in params["$defs"]
    assert book.invoke({"place": {"city": "Oslo"}, "nights": 2}) == {"city": "Oslo", "nights": 2, "tags": []}
    with pytest.raises(ToolArgumentsError, match=r"tool 'book': invalid arguments .*nights: Input should be less than or equal to 30"):
        book.invoke({"place": {"city": "Oslo"}, "nights": 99})


def test_invoke_checks_arguments_with_clear_errors() -> None:
    assert weather.invoke({"city": "Oslo"}) == "18 C in Oslo for 1 day(s)"
    assert weather.invoke('{"city": "Rome", "days": "3"}') == "18 C in Rome for 3 day(s)"  # JSON text, coerced
    with pytest.raises(ToolArgumentsError, match="city: Field required") as info:
        weather.invoke({"cty": "Oslo"})
    assert info.value.tool == "weather"
    assert "cty: Extra inputs are not permitted" in str(info.value)
    with pytest.raises(ToolArgumentsError, match="not valid JSON"):
        weather.invoke('{"city": "Oslo"')
    with pytest.raises(ToolArgumentsError, match="must be a JSON object, got list"):
        weather.invoke([1, 2])  # type: ignore[arg-type]


async def test_async_tool_invoke_and_ainvoke() -> None:
    @tool
    async def slow(x: int) -> int:
        """Double later."""
        await asyncio.sleep(0.01)
        return 2 * x

    assert slow.is_async
    assert await slow.ainvoke({"x": 2}) == 4
    assert await asyncio.to_thread(slow.invoke, {"x": 3}) == 6  # sync invoke of an async tool from a thread
    assert await weather.ainvoke({"city": "Oslo"}) == "18 C in Oslo for 1 day(s)"  # a sync tool, in a worker thread


def test_injected_state_and_tool_call_id_are_hidden_from_the_model_and_filled_in() -> None:
    @tool
    def remember(
        note: str,
        state: Annotated[dict, InjectedState],
        msgs: Annotated[list, InjectedState("messages")],
        call_id: Annotated[str, InjectedToolCallId],
    ) -> str:
        """Remember a note."""
        return f"{note}|{len(state['messages'])}|{len(msgs)}|{call_id}"

    assert list(remember.schema["function"]["parameters"]["properties"]) == ["note"]
    out = ToolNode([remember])(state_with(tool_call("remember", {"note": "n"}, id="c9")))
    assert out["messages"][0]["content"] == "n|2|2|c9"


def test_tool_content() -> None:
    assert tool_content("text") == "text"
    assert tool_content(None) == ""
    assert tool_content({"a": [1, "é"]}) == '{"a": [1, "é"]}'
    assert tool_content(Place(city="Oslo")) == '{"city":"Oslo","country":"NO"}'
    assert tool_content([{"type": "text", "text": "hi"}]) == [{"type": "text", "text": "hi"}]
    assert tool_content(object) == "<class 'object'>"
    assert tool_content((1, 2.5, True)) == "[1, 2.5, true]"


# -- ToolNode: parallel, ordered ----------------------------------------------------------------------
def test_sync_tool_calls_run_in_parallel_and_answer_in_call_order() -> None:
    barrier = threading.Barrier(3, timeout=10)  # passes only if all three calls run at once
    finished: list[str] = []

    @tool
    def work(name: str, delay: float) -> str:
        """Work a while."""
        barrier.wait()
        time.sleep(delay)
        finished.append(name)
        return f"done {name}"

    node = ToolNode([work])
    out = node(state_with(
        tool_call("work", {"name": "a", "delay": 0.2}, id="1"),
        tool_call("work", {"name": "b", "delay": 0.1}, id="2"),
        tool_call("work", {"name": "c", "delay": 0.0}, id="3"),
    ))
    assert finished == ["c", "b", "a"]  # they finished in reverse ...
    assert [(m["tool_call_id"], m["content"]) for m in out["messages"]] == [  # ... and answer in call order
        ("1", "done a"), ("2", "done b"), ("3", "done c"),
    ]
    assert all(m["role"] == "tool" and m["name"] == "work" for m in out["messages"])


async def test_async_tool_calls_overlap() -> None:
    running = 0
    peak = 0

    @tool
    async def fetch(url: str) -> str:
        """Fetch a page."""
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.1)
        running -= 1
        return f"page {url}"

    @tool
    def local(path: str) -> str:
        """Read a local file."""
        time.sleep(0.1)
        return f"file {path}"

    node = ToolNode([fetch, local])
    assert node.is_async
    t = time.perf_counter()
    out = await node(state_with(*(tool_call("fetch", {"url": f"u{i}"}, id=f"f{i}") for i in range(4)),
                                tool_call("local", {"path": "p"}, id="l")))
    elapsed = time.perf_counter() - t
    assert peak == 4
    assert elapsed < 0.35, elapsed  # 5 calls of 0.1 s each, side by side
    assert [m["content"] for m in out["messages"]] == ["page u0", "page u1", "page u2", "page u3", "file p"]


# -- ToolNode: errors become messages -----------------------------------------------------------------
@tool
def divide(a: float, b: float) -> float:
    """Divide a by b."""
    return a / b


def test_errors_become_tool_messages_naming_tool_and_problem() -> None:
    out = ToolNode([divide, weather])(state_with(
        tool_call("divide", {"a": 1, "b": 0}, id="raise"),
        tool_call("divid", {"a": 1, "b": 2}, id="unknown"),
        tool_call("divide", '{"a": 1, "b": ', id="badjson"),
        tool_call("divide", {"a": "one", "b": 2}, id="badargs"),
        tool_call("divide", {"a": 6, "b": 3}, id="ok"),
    ))
    by_id = {m["tool_call_id"]: m["content"] for m in out["messages"]}
    assert list(by_id) == ["raise", "unknown", "badjson", "badargs", "ok"]
    assert by_id["raise"] == "Error: tool 'divide' raised ZeroDivisionError: float division by zero. Fix the call or try another way."
    assert "there is no tool named 'divid'. Did you mean 'divide'? The tools are: 'divide', 'weather'" in by_id["unknown"]
    assert "the arguments of the call to tool 'divide' are not valid JSON" in by_id["badjson"]
    assert "tool 'divide': invalid arguments {'a': 'one', 'b': 2}: a: Input should be a valid number" in by_id["badargs"]
    assert by_id["ok"] == "2.0"


def test_handle_errors_false_raises_typed_errors_naming_node_tool_and_call() -> None:
    def graph(tools: list[Any], calls: list[dict[str, Any]]) -> Any:
        g = StateGraph(MessagesState)
        g.add_node("agent", lambda s: {"messages": [calls_message(*calls)]})
        g.add_node(ToolNode(tools, name="act", handle_errors=False))
        return g.add_edge(START, "agent").add_edge("agent", "act").compile()

    # the node's own exception reaches the caller (node_failure() tells where it failed)
    with pytest.raises(ToolError) as info:
        graph([divide], [tool_call("divide", {"a": 1, "b": 0}, id="c1")]).invoke({"messages": "hi"})
    err = info.value
    assert node_failure(err) is not None and node_failure(err).node == "act"
    assert (err.tool, err.tool_call_id, err.node) == ("divide", "c1", "act")
    assert "node 'act': tool 'divide' (call 'c1') raised ZeroDivisionError" in str(err)
    assert isinstance(err.__cause__, ZeroDivisionError)

    with pytest.raises(UnknownToolError) as info2:
        graph([divide], [tool_call("nope", {}, id="c2")]).invoke({"messages": "hi"})
    assert (info2.value.tool, info2.value.tool_call_id, info2.value.node) == ("nope", "c2", "act")

    with pytest.raises(ToolArgumentsError):
        graph([divide], [tool_call("divide", "{", id="c3")]).invoke({"messages": "hi"})


def test_handle_errors_as_text_callable_or_exception_types() -> None:
    calls = [tool_call("divide", {"a": 1, "b": 0}, id="z"), tool_call("divide", {"a": "x", "b": 1}, id="v")]
    out = ToolNode([divide], handle_errors="Something went wrong.")(state_with(*calls))
    assert [m["content"] for m in out["messages"]] == ["Something went wrong."] * 2
    out = ToolNode([divide], handle_errors=lambda e: f"<{type(e).__name__}>")(state_with(*calls))
    assert [m["content"] for m in out["messages"]] == ["<ZeroDivisionError>", "<ToolArgumentsError>"]
    node = ToolNode([divide], handle_errors=(ToolArgumentsError,))
    with pytest.raises(ToolError, match="ZeroDivisionError"):  # not one of the handled types
        node(state_with(*calls))
    assert node(state_with(calls[1]))["messages"][0]["content"].startswith("Error: tool 'divide': invalid arguments")


def test_tool_node_needs_an_assistant_message_last() -> None:
    with pytest.raises(ToolError, match="ToolNode 'tools': the conversation ends with a 'user' message"):
        ToolNode([divide])({"messages": [{"role": "user", "content": "hi"}]})
    with pytest.raises(ToolError, match="ends with no messages"):
        ToolNode([divide])({"messages": []})
    with pytest.raises(ValueError, match="two tools are named 'divide'"):
        ToolNode([divide, divide])


def test_langchain_style_tool_calls_and_list_input() -> None:
    msg = {"role": "assistant", "content": "", "tool_calls": [{"name": "divide", "args": {"a": 4, "b": 2}, "id": "lc"}]}
    out = ToolNode([divide])([msg])
    assert out == [{"role": "tool", "tool_call_id": "lc", "name": "divide", "content": "2.0"}]


def test_tools_condition() -> None:
    assert tools_condition(state_with(tool_call("divide", {}))) == "tools"
    assert tools_condition({"messages": [{"role": "assistant", "content": "done"}]}) == END
    assert tools_condition({"messages": [{"role": "assistant", "content": "", "tool_calls": []}]}) == END
    assert tools_condition([{"role": "user", "content": "hi"}]) == END


def test_plain_functions_are_made_tools() -> None:
    def shout(text: str) -> str:
        """Shout it."""
        return text.upper()

    node = ToolNode([shout])
    assert node.tools[0].schema["function"]["description"] == "Shout it."
    assert node(state_with(tool_call("shout", {"text": "hi"})))["messages"][0]["content"] == "HI"


# -- interrupts inside tools ----------------------------------------------------------------------------
def _approval_graph(tools: list[Any], calls: list[dict[str, Any]]) -> Any:
    g = StateGraph(MessagesState)
    g.add_node("agent", lambda s: None if s["messages"][-1]["role"] == "tool" else {"messages": [calls_message(*calls)]})
    g.add_node(ToolNode(tools))
    g.add_edge(START, "agent").add_conditional_edges("agent", tools_condition, ["tools", END]).add_edge("tools", "agent")
    return g.compile()


def test_interrupt_inside_a_tool_pauses_and_resumes() -> None:
    ran: list[str] = []

    @tool
    def transfer(amount: int) -> str:
        """Transfer money (asks a human first)."""
        answer = interrupt({"approve": amount})
        ran.append(answer)
        return f"transferred {amount}" if answer == "yes" else "cancelled"

    app = _approval_graph([transfer], [tool_call("transfer", {"amount": 5}, id="t1")])
    paused = app.invoke({"messages": "pay"}, thread_id="th")
    [intr] = paused["__interrupt__"]
    assert intr.value == {"approve": 5}
    assert app.get_state("th").next == ("tools",)
    done = app.invoke(Command(resume="yes"), thread_id="th")
    assert ran == ["yes"]
    assert done["messages"][-1] == {
        "role": "tool", "tool_call_id": "t1", "name": "transfer", "content": "transferred 5", "id": done["messages"][-1]["id"],
    }


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_parallel_tools_interrupting_are_answered_each_by_id(kind: str) -> None:
    runs = {"first": 0, "second": 0}

    def delay(q: str) -> float:
        # the calls reach interrupt() in one order on the first run and in the other on resume:
        # their answers must follow the calls, not the timing
        runs[q] += 1
        return 0.1 if (q == "first") == (runs[q] == 1) else 0.0

    if kind == "sync":
        @tool
        def ask(q: str) -> str:
            """Ask a human."""
            time.sleep(delay(q))
            return f"{q}={interrupt(q)}"
    else:
        @tool
        async def ask(q: str) -> str:
            """Ask a human."""
            await asyncio.sleep(delay(q))
            return f"{q}={interrupt(q)}"

    calls = [tool_call("ask", {"q": "first"}, id="a"), tool_call("ask", {"q": "second"}, id="b")]
    app = _approval_graph([ask], calls)
    paused = app.invoke({"messages": "go"}, thread_id="t")
    intrs = {i.value: i for i in paused["__interrupt__"]}
    assert set(intrs) == {"first", "second"} and len({i.id for i in intrs.values()}) == 2
    done = app.invoke(Command(resume={intrs["first"].id: 1, intrs["second"].id: 2}), thread_id="t")
    assert [m["content"] for m in done["messages"] if m["role"] == "tool"] == ["first=1", "second=2"]


# -- optional dependencies -------------------------------------------------------------------------------
@pytest.mark.parametrize(("blocked", "module", "extra"), [
    ("pydantic", "agentgraph_nb.tools", "pydantic"),
    ("mcp", "agentgraph_nb.tools.mcp", "mcp"),
])
def test_missing_dependency_names_the_pip_install(blocked: str, module: str, extra: str) -> None:
    code = (
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "from agentgraph_nb import MissingDependencyError\n"
        f"try:\n    __import__({module!r})\n"
        "except MissingDependencyError as e:\n    print(e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f'needs {blocked}' in r.stdout and f'pip install "agentgraph_nb[{extra}]"' in r.stdout, r.stdout


# -- tools that return a Command -------------------------------------------------------------------------
def test_a_tool_returning_a_command_updates_state_and_routes() -> None:
    from agentgraph_nb import Command

    class State(MessagesState):
        city: str

    @tool
    def pick_city(city: str, call_id: Annotated[str, InjectedToolCallId]) -> Command:
        """Pick the city and hand over to the planner."""
        return Command(
            update={"city": city, "messages": [{"role": "tool", "tool_call_id": call_id, "content": f"picked {city}"}]},
            goto="planner",
        )

    g = StateGraph(State)
    g.add_node("agent", lambda s: {"messages": [calls_message(
        tool_call("weather", {"city": "Oslo"}, id="w"), tool_call("pick_city", {"city": "Oslo"}, id="p"))]})
    g.add_node(ToolNode([weather, pick_city]), destinations=["planner"])
    g.add_node("planner", lambda s: {"messages": [("ai", f"planning for {s['city']}")]})
    g.add_edge(START, "agent").add_edge("agent", "tools")
    out = g.compile().invoke({"messages": "go"})
    assert out["city"] == "Oslo"
    assert [(m["role"], m.get("tool_call_id"), m["content"]) for m in out["messages"][2:]] == [
        ("tool", "w", "18 C in Oslo for 1 day(s)"),
        ("tool", "p", "picked Oslo"),
        ("assistant", None, "planning for Oslo"),
    ]


def test_a_command_without_its_tool_message_or_with_conflicting_keys_is_an_error() -> None:
    from agentgraph_nb import Command

    @tool
    def silent(x: int) -> Command:
        """Forgets to answer."""
        return Command(update={"n": x})

    with pytest.raises(ToolError, match="tool 'silent' returned a Command whose update has no tool message answering its call 'c1'"):
        ToolNode([silent])(state_with(tool_call("silent", {"x": 1}, id="c1")))

    @tool
    def setter(x: int, call_id: Annotated[str, InjectedToolCallId]) -> Command:
        """Sets n."""
        return Command(update={"n": x, "messages": {"role": "tool", "tool_call_id": call_id, "content": "ok"}})

    with pytest.raises(ToolError, match="tools 'setter' and 'setter' both update state key 'n'"):
        ToolNode([setter])(state_with(tool_call("setter", {"x": 1}, id="a"), tool_call("setter", {"x": 2}, id="b")))
    out = ToolNode([setter])(state_with(tool_call("setter", {"x": 1}, id="a")))
    assert isinstance(out, Command) and out.update == {"messages": [{"role": "tool", "tool_call_id": "a", "content": "ok"}], "n": 1}


def test_docstring_examples_run() -> None:
    import doctest

    import agentgraph_nb.messages
    import agentgraph_nb.prebuilt._react
    import agentgraph_nb.testing
    import agentgraph_nb.tools
    import agentgraph_nb.tools._node
    import agentgraph_nb.tools._tool

    for mod in (agentgraph_nb.messages, agentgraph_nb.tools, agentgraph_nb.tools._tool, agentgraph_nb.tools._node,
                agentgraph_nb.testing, agentgraph_nb.prebuilt._react):
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, mod.__name__
        assert result.attempted > 0, mod.__name__


# -- LangChain tools ---------------------------------------------------------------------------------------
def test_langchain_tools_work_in_a_tool_node() -> None:
    lc_tools = pytest.importorskip("langchain_core.tools")

    @lc_tools.tool
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    @lc_tools.tool
    async def shout(text: str) -> str:
        """Shout the text."""
        return text.upper()

    node = ToolNode([multiply, weather])
    assert node.tools[0].schema["function"] == {
        "name": "multiply", "description": "Multiply two integers.",
        "parameters": {"properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"], "type": "object"},
    }
    out = node(state_with(tool_call("multiply", {"a": 6, "b": 7}, id="1"), tool_call("multiply", {"a": "x"}, id="2")))
    assert out["messages"][0]["content"] == "42"
    assert out["messages"][1]["content"].startswith("Error: tool 'multiply': invalid arguments: a: Input should be a valid integer")
    anode = ToolNode([shout])
    assert anode.is_async
    out = asyncio.run(anode(state_with(tool_call("shout", {"text": "hi"}, id="s"))))
    assert out["messages"][0]["content"] == "HI"
