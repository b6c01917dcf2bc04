"""Parity with LangGraph: a compiled graph as a node (subgraphs).

Scenarios of LangGraph's own subgraph tests (libs/langgraph/tests/test_pregel.py,
test_large_cases.py, test_parent_command.py), re-expressed on our API; each test names the one
it follows. Differences, on purpose: a thread is ``thread_id=`` rather than a config dict; the
namespace of a subgraph in ``stream(..., subgraphs=True)`` is ``("inner",)`` (``"node:<task
index>"`` for a ``Send`` task) rather than ``("inner:<task uuid>",)``; a subgraph's state is read
with ``get_state(thread_id, namespace="inner")`` (or ``tasks[i].state``) rather than with a config
carrying ``checkpoint_ns``; ``invoke`` of a paused run returns the state with ``"__interrupt__"``
for breakpoints too.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import END, START, Command, Send, StateGraph, interrupt

pytestmark = pytest.mark.filterwarnings("ignore::agentgraph_nb.errors.GraphValidationWarning")


class Inner(TypedDict):
    my_key: Annotated[str, operator.add]
    my_other_key: str


class Outer(TypedDict):
    my_key: Annotated[str, operator.add]


def _inner_graph(**compile_kw: Any) -> Any:
    def inner_1(s: Inner) -> dict[str, Any]:
        return {"my_key": "got here", "my_other_key": s["my_key"]}

    def inner_2(s: Inner) -> dict[str, Any]:
        return {"my_key": " and there", "my_other_key": s["my_key"]}

    g = StateGraph(Inner, name="inner")
    g.add_node("inner_1", inner_1).add_node("inner_2", inner_2)
    g.add_edge("inner_1", "inner_2").set_entry_point("inner_1").set_finish_point("inner_2")
    return g.compile(**compile_kw)


def _parallel_parent(calls: list[str], **inner_kw: Any) -> StateGraph:
    def outer_1(s: Outer) -> dict[str, Any]:
        calls.append("outer_1")
        return {"my_key": " and parallel"}

    def outer_2(s: Outer) -> dict[str, Any]:
        calls.append("outer_2")
        return {"my_key": " and back again"}

    g = StateGraph(Outer, name="outer")
    g.add_node("inner", _inner_graph(**inner_kw)).add_node("outer_1", outer_1).add_node("outer_2", outer_2)
    g.add_edge(START, "inner").add_edge(START, "outer_1")
    g.add_edge(["inner", "outer_1"], "outer_2").set_finish_point("outer_2")
    return g


def test_nested_graph() -> None:
    """test_pregel.py::test_nested_graph: the subgraph's output goes through the parent's reducer."""

    class InnerS(TypedDict):
        my_key: str
        my_other_key: str

    def up(s: InnerS) -> dict[str, Any]:
        return {"my_key": s["my_key"] + " there", "my_other_key": s["my_key"]}

    inner = StateGraph(InnerS, name="inner")
    inner.add_node("up", up).add_edge(START, "up")

    class S(TypedDict):
        my_key: str
        never_called: Any

    def side(s: S) -> dict[str, Any]:
        return {"my_key": s["my_key"] + " and back again"}

    g = StateGraph(S, name="outer")
    g.add_node("inner", inner.compile()).add_node("side", side)
    g.add_edge(START, "inner").add_edge("inner", "side").add_edge("side", END)
    app = g.compile()
    assert app.invoke({"my_key": "my value", "never_called": None}) == {
        "my_key": "my value there and back again", "never_called": None}
    assert list(app.stream({"my_key": "my value", "never_called": None})) == [
        {"inner": {"my_key": "my value there"}},
        {"side": {"my_key": "my value there and back again"}},
    ]


def test_nested_graph_interrupts_parallel() -> None:
    """test_pregel.py::test_nested_graph_interrupts_parallel: a breakpoint inside the subgraph
    pauses the parent; the parallel sibling is not run again on resume."""
    calls: list[str] = []
    app = _parallel_parent(calls, interrupt_before=["inner_2"]).compile()
    out = app.invoke({"my_key": ""}, thread_id="1")
    # (invoke returns the state before the paused step; get_state shows the finished sibling's write)
    assert out["my_key"] == "" and app.get_state("1").values == {"my_key": " and parallel"}
    assert app.invoke(None, thread_id="1") == {"my_key": "got here and there and parallel and back again"}
    assert calls == ["outer_1", "outer_2"]

    # the two tasks of the step run side by side: their items interleave in any order
    got = list(app.stream({"my_key": ""}, thread_id="2", subgraphs=True))
    assert [c for c in got if c[0] == ("inner",)] == [
        (("inner",), {"inner_1": {"my_key": "got here", "my_other_key": ""}}),
        (("inner",), {"__interrupt__": ()}),
    ]
    assert [c for c in got if c[0] == ()] == [((), {"outer_1": {"my_key": " and parallel"}}), ((), {"__interrupt__": ()})]
    assert list(app.stream(None, thread_id="2")) == [
        {"inner": {"my_key": "got here and there"}},
        {"outer_2": {"my_key": " and back again"}},
    ]

    assert list(app.stream({"my_key": ""}, thread_id="3", mode="values")) == [{"my_key": ""}]
    assert list(app.stream(None, thread_id="3", mode="values")) == [
        {"my_key": ""},
        {"my_key": "got here and there and parallel"},
        {"my_key": "got here and there and parallel and back again"},
    ]


def test_nested_graph_interrupts_parallel_breakpoints_outside() -> None:
    """test_pregel.py::test_nested_graph_interrupts_parallel, its interrupt_before=["outer_1"]
    and interrupt_after=["outer_1"] parts: a parent breakpoint, then the subgraph's."""
    app = _parallel_parent([], interrupt_before=["inner_2"]).compile(interrupt_after=["outer_1"])
    assert list(app.stream({"my_key": ""}, thread_id="5", mode="values")) == [{"my_key": ""}]
    assert list(app.stream(None, thread_id="5", mode="values")) == [
        {"my_key": ""},
        {"my_key": "got here and there and parallel"},
    ]
    assert list(app.stream(None, thread_id="5", mode="values")) == [
        {"my_key": "got here and there and parallel"},
        {"my_key": "got here and there and parallel and back again"},
    ]


def test_doubly_nested_graph_interrupts() -> None:
    """test_pregel.py::test_doubly_nested_graph_interrupts: a breakpoint two levels down."""

    class S(TypedDict):
        my_key: str

    done: list[str] = []

    def grandchild_1(s: S) -> dict[str, Any]:
        done.append("grandchild_1")
        return {"my_key": s["my_key"] + " here"}

    def grandchild_2(s: S) -> dict[str, Any]:
        done.append("grandchild_2")
        return {"my_key": s["my_key"] + " and there"}

    gc = StateGraph(S, name="grandchild")
    gc.add_node("grandchild_1", grandchild_1).add_node("grandchild_2", grandchild_2)
    gc.add_edge("grandchild_1", "grandchild_2").set_entry_point("grandchild_1").set_finish_point("grandchild_2")
    child = StateGraph(S, name="child")
    child.add_node("child_1", gc.compile(interrupt_before=["grandchild_2"]))
    child.set_entry_point("child_1").set_finish_point("child_1")

    def parent_1(s: S) -> dict[str, Any]:
        done.append("parent_1")
        return {"my_key": "hi " + s["my_key"]}

    def parent_2(s: S) -> dict[str, Any]:
        done.append("parent_2")
        return {"my_key": s["my_key"] + " and back again"}

    g = StateGraph(S, name="parent")
    g.add_node("parent_1", parent_1).add_node("child", child.compile()).add_node("parent_2", parent_2)
    g.set_entry_point("parent_1").add_edge("parent_1", "child").add_edge("child", "parent_2")
    g.set_finish_point("parent_2")
    app = g.compile()
    assert app.invoke({"my_key": "my value"}, thread_id="1")["my_key"] == "hi my value"
    assert app.invoke(None, thread_id="1") == {"my_key": "hi my value here and there and back again"}
    assert done == ["parent_1", "grandchild_1", "grandchild_2", "parent_2"]
    snap = app.get_state("1", namespace="child|child_1")
    assert snap.values == {"my_key": "hi my value here and there"} and snap.next == ()


def test_interrupt_subgraph() -> None:
    """test_pregel.py::test_interrupt_subgraph: interrupt() in a subgraph, answered on the parent thread."""

    class S(TypedDict):
        baz: str

    def foo(s: S) -> dict[str, Any]:
        return {"baz": "foo"}

    def bar(s: S) -> dict[str, Any]:
        return {"baz": interrupt("Please provide baz value:")}

    child = StateGraph(S, name="child")
    child.add_node(bar).add_edge(START, "bar")
    g = StateGraph(S, name="parent")
    g.add_node(foo).add_node("bar", child.compile()).add_edge(START, "foo").add_edge("foo", "bar")
    app = g.compile()
    first = app.invoke({"baz": ""}, thread_id="1")
    (it,) = first["__interrupt__"]
    assert it.value == "Please provide baz value:" and it.node == "bar" and it.path == ("bar", "bar")
    assert app.invoke(Command(resume="bar"), thread_id="1") == {"baz": "bar"}


def test_double_interrupt_subgraph() -> None:
    """test_pregel.py::test_double_interrupt_subgraph: two interrupts in a row inside a
    subgraph, each answered through the parent."""

    class S(TypedDict):
        input: str

    def node_1(s: S) -> dict[str, Any]:
        return {"input": interrupt("interrupt node 1")}

    def node_2(s: S) -> dict[str, Any]:
        return {"input": interrupt("interrupt node 2")}

    sub = StateGraph(S, name="sub")
    sub.add_node("node_1", node_1).add_node("node_2", node_2)
    sub.add_edge(START, "node_1").add_edge("node_1", "node_2").add_edge("node_2", END)
    g = StateGraph(S, name="parent")
    g.add_node("invoke_sub_agent", sub.compile()).add_edge(START, "invoke_sub_agent").add_edge("invoke_sub_agent", END)
    app = g.compile()
    [c] = list(app.stream({"input": "test"}, thread_id="t"))
    assert [i.value for i in c["__interrupt__"]] == ["interrupt node 1"]
    [c] = list(app.stream(Command(resume=True), thread_id="t"))
    assert [i.value for i in c["__interrupt__"]] == ["interrupt node 2"]
    assert list(app.stream(Command(resume=True), thread_id="t")) == [{"invoke_sub_agent": {"input": True}}]


def test_multiple_subgraphs() -> None:
    """test_pregel.py::test_multiple_subgraphs: the same compiled graph as two nodes, each
    with its own namespace and interrupt."""

    class S(TypedDict):
        a: int
        b: int

    def ask(s: S) -> dict[str, Any]:
        return {"b": interrupt("b?")}

    sub = StateGraph(S, name="sub")
    sub.add_node("ask", ask).add_edge(START, "ask")
    sub_app = sub.compile()
    g = StateGraph(S, name="parent")
    g.add_node("sub1", sub_app).add_node("sub2", sub_app)
    g.add_edge(START, "sub1").add_edge("sub1", "sub2")
    app = g.compile()
    assert app.invoke({"a": 1, "b": 0}, thread_id="t")["__interrupt__"][0].node == "sub1"
    assert app.invoke(Command(resume=10), thread_id="t")["__interrupt__"][0].node == "sub2"
    assert app.invoke(Command(resume=20), thread_id="t") == {"a": 1, "b": 20}
    assert app.get_state("t", namespace="sub1").values == {"a": 1, "b": 10}
    assert app.get_state("t", namespace="sub2").values == {"a": 1, "b": 20}


def test_multiple_subgraphs_checkpointer() -> None:
    """test_pregel.py::test_multiple_subgraphs_checkpointer: each run of the parent runs its
    subgraph afresh (the subgraph keeps no state of its own between the parent's steps), while
    the namespace's history lists every execution."""

    class S(TypedDict):
        parent_counter: int

    class Sub(TypedDict):
        sub_counter: Annotated[int, operator.add]
        parent_counter: int

    def inc(s: Sub) -> dict[str, Any]:
        return {"sub_counter": 1, "parent_counter": s["parent_counter"] + s["sub_counter"] + 1}

    sub = StateGraph(Sub, name="sub")
    sub.add_node("inc", inc).add_edge(START, "inc")
    g = StateGraph(S, name="parent")
    g.add_node("sub", sub.compile()).add_edge(START, "sub")
    app = g.compile()
    assert app.invoke({"parent_counter": 0}, thread_id="t") == {"parent_counter": 1}
    assert app.invoke({"parent_counter": 0}, thread_id="t") == {"parent_counter": 1}
    runs = [h for h in app.get_state_history("t", namespace="sub") if h.metadata["source"] == "input"]
    assert len(runs) == 2


def test_send_to_nested_graphs() -> None:
    """test_large_cases.py::test_send_to_nested_graphs: Send maps over a subgraph; each
    instance pauses at a breakpoint, one instance's state is edited, both resume."""

    class Overall(TypedDict):
        subjects: list[str]
        jokes: Annotated[list[str], operator.add]

    class Joke(TypedDict):
        subject: str

    def edit(s: Joke) -> dict[str, Any]:
        return {"subject": f"{s['subject']} - hohoho"}

    sub = StateGraph(Joke, output_schema=Overall, name="joke")
    sub.add_node("edit", edit).add_node("generate", lambda s: {"jokes": [f"Joke about {s['subject']}"]})
    sub.set_entry_point("edit").add_edge("edit", "generate").set_finish_point("generate")
    g = StateGraph(Overall, name="jokes")
    g.add_node("generate_joke", sub.compile(interrupt_before=["generate"]))
    g.add_conditional_edges(START, lambda s: [Send("generate_joke", {"subject": x}) for x in s["subjects"]])
    g.add_edge("generate_joke", END)
    app = g.compile()
    out = app.invoke({"subjects": ["cats", "dogs"]}, thread_id="1")
    assert out["jokes"] == [] and len(out["__interrupt__"]) == 2
    snap = app.get_state("1", subgraphs=True)
    assert [t.state.values["subject"] for t in snap.tasks] == ["cats - hohoho", "dogs - hohoho"]
    app.update_state("1", {"subject": "turtles - hohoho"}, namespace="generate_joke:1")
    assert sorted(app.stream(None, thread_id="1"), key=lambda d: d["generate_joke"]["jokes"][0]) == [
        {"generate_joke": {"jokes": ["Joke about cats - hohoho"]}},
        {"generate_joke": {"jokes": ["Joke about turtles - hohoho"]}},
    ]


def test_nested_graph_state() -> None:
    """test_large_cases.py::test_nested_graph_state: get_state(subgraphs=True) shows the paused
    subgraph's own state in tasks[0].state; its history is read by namespace."""
    app = _parallel_parent([], interrupt_before=["inner_2"]).compile()
    app.invoke({"my_key": "my value"}, thread_id="1")
    snap = app.get_state("1", subgraphs=True)
    assert snap.next == ("inner",)
    (task,) = [t for t in snap.tasks if t.name == "inner"]
    assert task.state.values == {"my_key": "my valuegot here", "my_other_key": "my value"}
    assert task.state.next == ("inner_2",)
    assert app.get_state("1").tasks[0].state is None  # only with subgraphs=True
    hist = app.get_state_history("1", namespace="inner")
    assert [h.metadata["source"] for h in hist] == ["loop", "input"]
    # the subgraph returns its whole my_key, which the parent's reducer (str +) appends, as in LangGraph
    assert app.invoke(None, thread_id="1")["my_key"] == "my value" + "my valuegot here and there" + \
        " and parallel and back again"


def test_doubly_nested_graph_state() -> None:
    """test_large_cases.py::test_doubly_nested_graph_state: an interrupt() two levels down,
    seen through nested tasks[i].state, then answered."""

    class S(TypedDict):
        my_key: str

    def grandchild_1(s: S) -> dict[str, Any]:
        return {"my_key": s["my_key"] + " " + interrupt("ok?")}

    gc = StateGraph(S, name="grandchild")
    gc.add_node("grandchild_1", grandchild_1).add_edge(START, "grandchild_1")
    child = StateGraph(S, name="child")
    child.add_node("child_1", gc.compile()).add_edge(START, "child_1")
    g = StateGraph(S, name="parent")
    g.add_node("child", child.compile()).add_edge(START, "child")
    app = g.compile()
    out = app.invoke({"my_key": "hi"}, thread_id="1")
    assert out["__interrupt__"][0].path == ("child", "child_1", "grandchild_1")
    top = app.get_state("1", subgraphs=True)
    mid = top.tasks[0].state
    low = mid.tasks[0].state
    assert mid.next == ("child_1",) and low.next == ("grandchild_1",)
    assert low.interrupts[0].value == "ok?"
    assert app.invoke(Command(resume="there"), thread_id="1") == {"my_key": "hi there"}


def test_parent_command() -> None:
    """test_pregel.py::test_parent_command: a subgraph's node updates a parent key the
    subgraph does not have, with Command(graph=Command.PARENT)."""

    class Child(TypedDict):
        messages: Annotated[list[str], operator.add]

    class Parent(TypedDict):
        messages: Annotated[list[str], operator.add]
        user_name: str

    sub = StateGraph(Child, name="sub")
    sub.add_node("tool", lambda s: Command(update={"user_name": "Meow"}, graph=Command.PARENT))
    sub.add_edge(START, "tool")
    g = StateGraph(Parent, name="parent")
    g.add_node("alice", sub.compile()).add_edge(START, "alice")
    app = g.compile()
    assert app.invoke({"messages": ["get user name"]}, thread_id="1") == {
        "messages": ["get user name"], "user_name": "Meow"}
    assert app.get_state("1").next == ()


class Dialog(TypedDict):
    dialog_state: Annotated[list[str], operator.add]


def test_parent_command_goto() -> None:
    """test_pregel.py::test_parent_command_goto: a handoff to a parent's node."""

    def node_b_child(s: Dialog) -> Command:
        return Command(graph=Command.PARENT, goto="node_b_parent", update={"dialog_state": ["b_child_state"]})

    sub = StateGraph(Dialog, name="sub")
    sub.add_node("node_a_child", lambda s: {"dialog_state": ["a_child_state"]}).add_node("node_b_child", node_b_child)
    sub.add_edge(START, "node_a_child").add_edge("node_a_child", "node_b_child")
    g = StateGraph(Dialog, name="parent")
    g.add_node("node_b_parent", lambda s: {"dialog_state": ["node_b_parent"]})
    g.add_node("subgraph_node", sub.compile(), destinations=("node_b_parent",))
    g.add_edge(START, "subgraph_node")
    app = g.compile()
    assert app.invoke({"dialog_state": ["init_state"]}, thread_id="1") == {
        "dialog_state": ["init_state", "b_child_state", "node_b_parent"]}


def test_parent_command_goto_deeply_nested() -> None:
    """test_pregel.py::test_parent_command_goto_deeply_nested: Command.PARENT goes to the
    immediate parent, three levels down."""
    sub_sub = StateGraph(Dialog, name="sub_sub_graph")
    sub_sub.add_node("sub_sub_child", lambda s: Command(
        graph=Command.PARENT, goto="sub_child_3", update={"dialog_state": ["sub_sub_child"]}))
    sub_sub.add_edge(START, "sub_sub_child")
    sub = StateGraph(Dialog, name="sub_graph")
    sub.add_node("sub_child_1", lambda s: {"dialog_state": ["sub_child_1"]})
    sub.add_node("sub_child_2", sub_sub.compile(), destinations=("sub_child_3",))
    sub.add_node("sub_child_3", lambda s: {"dialog_state": ["sub_child_3"]})
    sub.add_edge(START, "sub_child_1").add_edge("sub_child_1", "sub_child_2")
    g = StateGraph(Dialog, name="main_graph")
    g.add_node("child_1", lambda s: {"dialog_state": ["child_1"]}).add_node("child_2", sub.compile())
    g.add_edge(START, "child_1").add_edge("child_1", "child_2")
    app = g.compile()
    assert app.invoke({"dialog_state": ["init"]}, thread_id="1") == {"dialog_state": [
        "init", "child_1", "init", "child_1", "sub_child_1", "sub_sub_child", "sub_child_3"]}


def test_parent_command_from_nested_subgraph() -> None:
    """test_parent_command.py::test_parent_command_from_nested_subgraph: a handoff from the
    inner graph reaches the middle graph, whose own routing then goes on."""

    class S(TypedDict):
        log: Annotated[list[str], operator.add]

    inner = StateGraph(S, name="inner")
    inner.add_node("jump", lambda s: Command(graph=Command.PARENT, goto="landing", update={"log": ["jump"]}))
    inner.add_edge(START, "jump")
    middle = StateGraph(S, name="middle")
    middle.add_node("inner", inner.compile(), destinations=("landing",))
    middle.add_node("landing", lambda s: {"log": ["landing"]})
    middle.add_edge(START, "inner")
    g = StateGraph(S, name="outer")
    g.add_node("middle", middle.compile()).add_edge(START, "middle")
    out = g.compile().invoke({"log": []})
    assert out == {"log": ["jump", "landing"]}


def test_stream_subgraphs_during_execution() -> None:
    """test_pregel.py::test_stream_subgraphs_during_execution: subgraphs=True streams the
    subgraph's updates with their namespace, before the parent's update of its node."""
    app = _parallel_parent([]).compile()
    chunks = list(app.stream({"my_key": ""}, thread_id="2", subgraphs=True))
    inner = [(("inner",), {"inner_1": {"my_key": "got here", "my_other_key": ""}}),
             (("inner",), {"inner_2": {"my_key": " and there", "my_other_key": "got here"}})]
    assert [c for c in chunks if c[0] == ("inner",)] == inner
    # the subgraph's items come before its node's update (outer_1 runs beside it, in any order)
    assert chunks.index(inner[1]) < chunks.index(((), {"inner": {"my_key": "got here and there"}}))
    assert chunks[-1] == ((), {"outer_2": {"my_key": " and back again"}})
    assert ((), {"outer_1": {"my_key": " and parallel"}}) in chunks and len(chunks) == 5


def test_subgraph_streaming_sync() -> None:
    """test_pregel.py::test_subgraph_streaming_sync: several modes with subgraphs=True yield
    (namespace, mode, payload)."""
    app = _parallel_parent([]).compile()
    items = list(app.stream({"my_key": ""}, mode=["updates", "values"], subgraphs=True))
    assert items[0] == ((), "values", {"my_key": ""})
    assert (("inner",), "values", {"my_key": ""}) in items
    assert (("inner",), "updates", {"inner_1": {"my_key": "got here", "my_other_key": ""}}) in items
    assert items[-1] == ((), "values", {"my_key": "got here and there and parallel and back again"})


@pytest.mark.asyncio
async def test_nested_graph_async() -> None:
    """test_pregel_async.py::test_nested_graph (async nodes inside the subgraph, astream)."""

    class S(TypedDict):
        my_key: str

    async def up(s: S) -> dict[str, Any]:
        return {"my_key": s["my_key"] + " there"}

    inner = StateGraph(S, name="inner")
    inner.add_node("up", up).add_edge(START, "up")
    g = StateGraph(S, name="outer")
    g.add_node("inner", inner.compile()).add_node("side", lambda s: {"my_key": s["my_key"] + " and back again"})
    g.add_edge(START, "inner").add_edge("inner", "side")
    app = g.compile()
    assert await app.ainvoke({"my_key": "my value"}) == {"my_key": "my value there and back again"}
    assert app.invoke({"my_key": "my value"}) == {"my_key": "my value there and back again"}
    got = [c async for c in app.astream({"my_key": "v"}, subgraphs=True)]
    assert got == [(("inner",), {"up": {"my_key": "v there"}}), ((), {"inner": {"my_key": "v there"}}),
                   ((), {"side": {"my_key": "v there and back again"}})]
