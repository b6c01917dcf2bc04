"""LangGraph parity: builder and state-API features (input/output schemas, node views,
add_sequence, Command[Literal[...]] edges, update_state(as_node="__copy__"), step_timeout) and
the error messages LangGraph tests match on. Each test names the LangGraph test it follows.

No ``from __future__ import annotations`` here: node annotations name classes local to the tests,
which (as in LangGraph) are read from the live annotations."""

import asyncio
import dataclasses
import operator
import threading
import time
from typing import Annotated, Any, Literal

import pydantic
import pytest
from typing_extensions import TypedDict

from agentgraph_nb import (
    END,
    START,
    Command,
    GraphValidationError,
    InvalidInputError,
    InvalidUpdateError,
    StateGraph,
    StepTimeoutError,
    interrupt,
)


class State(TypedDict, total=False):
    hello: str
    bye: str
    messages: Annotated[list[str], operator.add]


class Output(TypedDict):
    messages: list[str]


class StateForB(TypedDict, total=False):
    bye: str
    now: int


class StateForC(TypedDict, total=False):
    hello: str
    now: int


def _schemas_graph(**kw: Any) -> StateGraph:
    seen: list[tuple[str, dict[str, Any]]] = []

    def node_a(state: State) -> None:
        seen.append(("a", dict(state)))

    def node_b(state: StateForB) -> dict[str, Any]:
        seen.append(("b", dict(state)))
        return {"now": 123, "hello": "again"}

    def node_c(state: StateForC) -> None:
        seen.append(("c", dict(state)))

    g = StateGraph(State, output_schema=Output, **kw)
    g.add_node("a", node_a).add_node("b", node_b).add_node("c", node_c)
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c")
    g.seen = seen  # type: ignore[attr-defined]
    return g


def test_output_schema_and_node_views_from_annotations() -> None:
    """Follows test_pregel.py::test_node_schemas_custom_output: invoke returns the output schema's
    keys only; a node annotated with another TypedDict receives only its keys, and keys only such
    a schema declares (``now``) are state keys nodes can write."""
    g = _schemas_graph()
    app = g.compile()
    assert app.invoke({"hello": "there", "bye": "world", "messages": ["hi"]}) == {"messages": ["hi"]}
    assert g.seen == [  # type: ignore[attr-defined]
        ("a", {"hello": "there", "bye": "world", "messages": ["hi"]}),
        ("b", {"bye": "world"}),
        ("c", {"hello": "again", "now": 123}),
    ]
    assert list(app.stream({"messages": ["x"]}, mode="values")) == [{"messages": ["x"]}] * 4
    # updates are not filtered, and get_state shows the whole state
    app.invoke({"hello": "h"}, thread_id="t")
    assert app.get_state("t").values["now"] == 123


def test_input_schema_limits_what_the_input_may_set() -> None:
    """Follows test_pregel.py::test_node_schemas_custom_output (its "ignored because not in input
    schema" input): LangGraph drops such a key silently, we refuse it naming the key."""

    class In(TypedDict, total=False):
        hello: str

    g = _schemas_graph(input_schema=In)
    app = g.compile()
    assert app.invoke({"hello": "there"}) == {"messages": []}
    with pytest.raises(InvalidUpdateError, match=r"the input sets state key 'bye', which is not in the graph's input schema In") as ei:
        app.invoke({"hello": "there", "bye": "world"})
    assert (ei.value.node, ei.value.key) == ("__input__", "bye")


def test_private_keys_through_a_node_schema() -> None:
    """Follows test_state.py::test_input_schema_conditional_edge: a key only a node's annotated
    schema declares (``baz``) carries data between nodes without being in the output."""

    class Overall(TypedDict, total=False):
        foo: Annotated[int, operator.add]
        bar: str

    class Private(TypedDict):
        baz: str

    def node_1(state: Overall) -> dict[str, Any]:
        return {"foo": 1, "baz": "bar"}

    def node_2(state: Private) -> dict[str, Any]:
        assert state == {"baz": "bar"}
        return {"foo": 1, "bar": state["baz"]}

    def router(state: Overall) -> Literal["node_3", "__end__"]:
        return "node_3" if state["foo"] == 2 else "__end__"

    g = StateGraph(Overall, output_schema=Overall)
    g.add_node(node_1).add_node(node_2).add_node("node_3", lambda s: {"foo": 1})
    g.add_edge(START, "node_1").add_edge("node_1", "node_2")
    g.add_conditional_edges("node_2", router)
    assert g.compile().invoke({"foo": 0}) == {"foo": 3, "bar": "bar"}


def test_node_input_schema_keyword_with_a_pydantic_view() -> None:
    """Follows test_pregel.py::test_in_one_fan_out_state_graph_waiting_edge_custom_state_class_pydantic_input:
    ``add_node(..., input_schema=Model)`` gives the node a model of those keys."""

    class View(pydantic.BaseModel):
        hello: str

    got: list[Any] = []
    g = StateGraph(State).add_node("a", lambda s: got.append(s), input_schema=View).add_edge(START, "a")
    g.compile().invoke({"hello": "there", "bye": "world"})
    assert got == [View(hello="there")]

    class Clash(TypedDict):
        messages: Annotated[list[str], lambda a, b: b]

    with pytest.raises(GraphValidationError, match=r"node 'x': input_schema Clash.messages has reducer .*State.messages has add"):
        StateGraph(State).add_node("x", lambda s: None, input_schema=Clash)


def test_add_sequence() -> None:
    """Follows test_pregel.py::test_add_sequence."""

    class S(TypedDict, total=False):
        foo: Annotated[list[str], operator.add]
        bar: str

    def step1(state: S) -> dict[str, Any]:
        return {"foo": ["step1"], "bar": "baz"}

    def step2(state: S) -> dict[str, Any]:
        return {"foo": ["step2"]}

    with pytest.raises(GraphValidationError, match=r"add_sequence\(\[\]\): a sequence needs at least one node"):
        StateGraph(S).add_sequence([])
    with pytest.raises(GraphValidationError, match=r"node 'step1' appears twice"):
        StateGraph(S).add_sequence([step1, step1])
    with pytest.raises(GraphValidationError, match=r"node 'foo' appears twice"):
        StateGraph(S).add_sequence([("foo", step1), ("foo", step1)])
    with pytest.raises(GraphValidationError, match=r"item 1 is int 3"):
        StateGraph(S).add_sequence([step1, 3])  # type: ignore[list-item]

    app = StateGraph(S).add_sequence([step1, step2]).add_edge(START, "step1").compile()
    assert app.invoke({"foo": []}) == {"foo": ["step1", "step2"], "bar": "baz"}
    assert list(app.stream({"foo": []})) == [{"step1": {"foo": ["step1"], "bar": "baz"}}, {"step2": {"foo": ["step2"]}}]
    named = StateGraph(S).add_sequence([("meow1", step1), ("meow2", step2)]).add_edge(START, "meow1").compile()
    assert [next(iter(u)) for u in named.stream({"foo": []})] == ["meow1", "meow2"]


def test_command_literal_annotation_declares_and_draws_the_edges() -> None:
    """Follows test_pregel.py::test_command_pydantic_dataclass: a node annotated
    ``-> Command[Literal["node_b"]]`` needs no edge to node_b; the annotation declares it (no
    unreachable-node warning, which our suite turns into an error) and the exports draw it."""

    @dataclasses.dataclass
    class DState:
        foo: str

    def node_a(state: DState) -> Command[Literal["node_b", "__end__"]]:
        return Command(update=DState(foo="foo"), goto="node_b")

    def node_b(state: DState) -> dict[str, Any]:
        return {"foo": state.foo + "bar"}

    g = StateGraph(DState).add_edge(START, "node_a").add_node(node_a).add_node(node_b)
    app = g.compile()
    assert app.invoke(DState(foo="")) == {"foo": "foobar"}
    assert app.to_json()["nodes"][0]["destinations"] == ["node_b", END]  # what GraphView draws
    assert "n_node_a -.->|\"goto\"| n_node_b" in app.to_mermaid()
    assert '"node_a" -> "node_b" [style=dashed, label="goto"]' in app.to_dot()
    from agentgraph_nb.export.svg import render_svg  # the static picture GraphView shows offline

    assert ">goto</text>" in render_svg(app.to_json())


def test_router_literal_annotation_declares_its_targets() -> None:
    """Follows test_pregel.py::test_cond_edge_after_send (``route_to_three(state) -> Literal["3"]``):
    the annotation declares the router's targets, which are then drawn and enforced."""

    class S(TypedDict, total=False):
        n: int

    def route(state: S) -> Literal["three"]:
        return "three" if state.get("n", 0) >= 0 else "nope"  # type: ignore[return-value]

    g = StateGraph(S).add_node("one", lambda s: None).add_node("three", lambda s: None)
    g.add_edge(START, "one").add_conditional_edges("one", route)
    app = g.compile()
    assert app.to_json()["branches"][0]["targets"] == ["three"]
    app.invoke({"n": 1})
    with pytest.raises(InvalidUpdateError, match=r"returned 'nope', which is not one of its declared targets \['three'\]"):
        app.invoke({"n": -1})


def _ask_graph() -> tuple[StateGraph, list[str]]:
    called: list[str] = []

    class V(TypedDict, total=False):
        value: Annotated[list[str], operator.add]

    def node_a(state: V) -> dict[str, Any]:
        called.append("node_a")
        return {"value": ["a"]}

    def ask_human(state: V) -> dict[str, Any]:
        called.append("ask_human")
        return {"value": [f"human:{interrupt('What is your input?')}"]}

    def node_b(state: V) -> dict[str, Any]:
        called.append("node_b")
        return {"value": ["b"]}

    g = StateGraph(V).add_sequence([node_a, ask_human, node_b]).add_edge(START, "node_a")
    return g, called


def test_copy_checkpoint_retriggers_the_interrupt() -> None:
    """Follows test_time_travel.py::test_copy_fork_retriggers_interrupt and
    test_time_travel.py::test_copy_fork_creates_sibling_checkpoint: ``as_node="__copy__"``
    copies a checkpoint (same values and next nodes, source "fork"); running from the copy asks
    again and takes a new answer. Ours is a child of the copied checkpoint (LangGraph: a sibling)."""
    g, called = _ask_graph()
    app = g.compile()
    app.invoke({"value": []}, thread_id="1")
    app.invoke(Command(resume="hello"), thread_id="1")
    before_ask = [s for s in app.get_state_history("1") if s.next == ("ask_human",)][-1]
    called.clear()
    copy_id = app.update_state("1", None, as_node="__copy__", checkpoint_id=before_ask.checkpoint_id)
    copy = app.get_state("1", copy_id)
    assert copy.metadata["source"] == "fork" and copy.metadata["copy_of"] == before_ask.checkpoint_id
    assert (copy.values, copy.next, copy.parent_id) == (before_ask.values, ("ask_human",), before_ask.checkpoint_id)
    assert copy.step == before_ask.step + 1 and called == []
    paused = app.invoke(None, thread_id="1", checkpoint_id=copy_id)
    assert paused["__interrupt__"][0].value == "What is your input?"
    assert app.invoke(Command(resume="new_answer"), thread_id="1") == {"value": ["a", "human:new_answer", "b"]}
    assert called == ["ask_human", "ask_human", "node_b"]
    regular = app.update_state("1", {"value": ["x"]}, checkpoint_id=before_ask.checkpoint_id)
    assert app.get_state("1", regular).metadata["source"] == "update"


def test_copy_checkpoint_errors() -> None:
    """Follows test_pregel_async.py (its "__end__ or __copy__ update applied in bulk" errors):
    a copy takes no values, and needs a checkpoint."""
    g, _ = _ask_graph()
    app = g.compile()
    with pytest.raises(InvalidInputError, match=r"update_state\(thread 'none', as_node='__copy__'\): the thread has no checkpoint to copy"):
        app.update_state("none", None, as_node="__copy__")
    app.invoke({"value": []}, thread_id="1")
    with pytest.raises(InvalidUpdateError, match=r"as_node='__copy__'\) copies a checkpoint as it is; pass values=None"):
        app.update_state("1", {"value": ["x"]}, as_node="__copy__")


class Log(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def test_step_timeout_sync_graph_raises_and_stays_resumable() -> None:
    """Follows test_pregel_async.py::test_step_timeout_on_stream_hang: a superstep longer than
    ``step_timeout`` raises a TimeoutError (ours: StepTimeoutError naming the step and nodes);
    the node that finished in time is kept, and resuming runs only the slow one."""
    release = threading.Event()
    calls: list[str] = []

    def slow(state: Log) -> dict[str, Any]:
        calls.append("slow")
        release.wait(5)
        return {"log": ["slow"]}

    def quick(state: Log) -> dict[str, Any]:
        calls.append("quick")
        return {"log": ["quick"]}

    g = StateGraph(Log).add_node("start", lambda s: {"log": ["start"]}).add_node("slow", slow).add_node("quick", quick)
    g.add_edge(START, "start").add_edge("start", "slow").add_edge("start", "quick")
    app = g.compile()
    app.step_timeout = 0.2
    t = time.perf_counter()
    with pytest.raises(TimeoutError) as ei:
        app.invoke({}, thread_id="t")
    assert time.perf_counter() - t < 2
    err = ei.value
    assert isinstance(err, StepTimeoutError) and (err.step, err.nodes, err.timeout) == (2, ("slow", "quick"), 0.2)
    assert "step 2 (slow, quick) took longer than step_timeout=0.2s" in str(err)
    state = app.get_state("t")
    assert state.next == ("slow",) and state.pending_writes == {"quick": {"log": ["quick"]}}
    release.set()
    app.step_timeout = None
    assert app.invoke(None, thread_id="t") == {"log": ["start", "slow", "quick"]}
    assert calls.count("quick") == 1


async def test_step_timeout_async_cancels_the_step() -> None:
    """Follows test_pregel_async.py::test_step_timeout_on_stream_hang (async): the running node
    is cancelled; a single-node step is timed too."""
    started: list[bool] = []
    cancelled: list[bool] = []

    async def hang(state: Log) -> dict[str, Any]:
        started.append(True)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return {"log": ["never"]}

    # long enough for the node to have started on a loaded machine (0.05 s was not, once, in CI)
    app = StateGraph(Log).add_node("hang", hang).add_edge(START, "hang").compile(step_timeout=0.5)
    with pytest.raises(StepTimeoutError, match=r"step 1 \(hang\)"):
        await app.ainvoke({}, thread_id="t")
    # the node's task is cancelled; on Python 3.12+ it finishes unwinding on the loop's next turns
    # (asyncio.wait_for no longer waits for that there)
    for _ in range(5):
        if cancelled:
            break
        await asyncio.sleep(0.01)
    assert started == [True] and cancelled == [True] and app.get_state("t").next == ("hang",)
    fast = StateGraph(Log).add_node("a", lambda s: {"log": ["a"]}).add_edge(START, "a").compile(step_timeout=5)
    assert await fast.ainvoke({}) == {"log": ["a"]} and fast.invoke({}) == {"log": ["a"]}


@pytest.mark.parametrize("bad", [0, -1, float("inf"), "1", True])
def test_step_timeout_must_be_a_positive_number(bad: Any) -> None:
    """Follows test_pregel_async.py::test_step_timeout_on_stream_hang (the setting itself)."""
    g = StateGraph(Log).add_node("a", lambda s: None).add_edge(START, "a")
    with pytest.raises(GraphValidationError, match=r"step_timeout must be a positive number of seconds or None"):
        g.compile(step_timeout=bad)
    app = g.compile()
    with pytest.raises(GraphValidationError, match="step_timeout"):
        app.step_timeout = bad


def test_error_messages_langgraph_tests_match_on() -> None:
    """Follows test_pregel.py::test_graph_validation: a reducer that cannot take two arguments is
    refused when the schema is read ("Invalid reducer"); an edge from an unknown node names it
    (ours reads "edge 'unknown' -> 'start': unknown node 'unknown'", where LangGraph says
    "Found edge starting at unknown node")."""

    def bad_reducer(a: Any) -> Any: ...

    class BadReducerState(TypedDict):
        hello: Annotated[str, bad_reducer]

    with pytest.raises(GraphValidationError, match=r"Invalid reducer bad_reducer for state key 'hello' of BadReducerState.*it takes 1"):
        StateGraph(BadReducerState)

    class Ok(TypedDict):
        a: Annotated[list, operator.add]
        b: Annotated[list, lambda current, update, *more: current + update]

    StateGraph(Ok)
    g = StateGraph(State).add_node("start", lambda s: None).add_edge(START, "start").add_edge("unknown", "start")
    with pytest.raises(GraphValidationError, match=r"edge 'unknown' -> 'start': unknown node 'unknown'"):
        g.compile()


class JIn(TypedDict, total=False):
    hello: str


class JView(TypedDict, total=False):
    bye: str


def j_node(state: Any) -> None:
    return None


def test_schemas_survive_to_json_and_from_json() -> None:
    """Follows test_pregel.py::test_node_schemas_custom_output (the same graph, saved and loaded):
    the graph's input/output schemas and a node's input_schema are named in to_json() and found
    again in the namespace; a missing one is an error naming it."""
    g = StateGraph(State, input_schema=JIn, output_schema=Output).add_node("a", j_node, input_schema=JView)
    g.add_edge(START, "a")
    data = g.to_json()
    assert (data["input_schema"], data["output_schema"], data["nodes"][0]["input_schema"]) == ("JIn", "Output", "JView")
    ns = {"State": State, "JIn": JIn, "Output": Output, "JView": JView, "j_node": j_node}
    back = StateGraph.from_json(data, namespace=ns).compile()
    assert back.invoke({"hello": "h"}) == {"messages": []}
    with pytest.raises(InvalidUpdateError, match="not in the graph's input schema JIn"):
        back.invoke({"bye": "b"})
    with pytest.raises(GraphValidationError, match=r"from_json: the graph's output_schema is 'Output', which the namespace does not hold"):
        StateGraph.from_json(data, namespace={k: v for k, v in ns.items() if k != "Output"})
