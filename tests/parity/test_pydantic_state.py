"""LangGraph parity: state schemas (pydantic models nested, root states, TypedDict flavours) and
what a node may return as its update. Each test names the LangGraph test it follows."""

from __future__ import annotations

import dataclasses
import operator
from typing import Annotated, Any

import pydantic
import pytest
import typing_extensions

from agentgraph_nb import (
    END,
    START,
    Command,
    GraphValidationError,
    InvalidUpdateError,
    Send,
    StateGraph,
)
from agentgraph_nb.checkpoint.serde import Serializer


class Inner(pydantic.BaseModel):
    value: int
    tags: list[str] = []


class Outer(pydantic.BaseModel):
    top: str = ""
    nested: Inner | None = None
    by_name: dict[str, Inner] = {}
    items: Annotated[list[Inner], operator.add] = []


def test_nested_models_reach_nodes_as_models() -> None:
    """Follows test_pydantic.py::test_nested_pydantic_models: a node receives the nested models
    (from the input and from an earlier node's dict update), not plain dicts."""
    seen: list[tuple[str, str, list[str]]] = []

    def look(s: Outer) -> None:
        seen.append((type(s.nested).__name__, type(s.by_name["k"]).__name__, [type(i).__name__ for i in s.items]))

    def first(s: Outer) -> dict[str, Any]:
        look(s)
        return {"nested": {"value": 2}, "by_name": {"k": {"value": 3}}, "items": [{"value": 4}]}

    def second(s: Outer) -> None:
        look(s)
        assert s.nested is not None and s.nested.value == 2 and s.items[-1].value == 4

    g = StateGraph(Outer).add_node("first", first).add_node("second", second)
    g.add_edge(START, "first").add_edge("first", "second").add_edge("second", END)
    g.compile().invoke({"nested": {"value": 1}, "by_name": {"k": {"value": 1}}, "items": [{"value": 1}]})
    assert seen == [("Inner", "Inner", ["Inner"]), ("Inner", "Inner", ["Inner", "Inner"])]


def test_a_node_write_that_does_not_fit_is_a_typed_error_before_the_next_node() -> None:
    """Follows test_pregel.py::test_pydantic_state_mutation (LangGraph validates the state a node
    receives): a bad nested write fails, naming the key and the model, before the next node runs."""
    ran: list[str] = []
    g = StateGraph(Outer).add_node("bad", lambda s: {"nested": {"value": "not a number"}})
    g.add_node("after", lambda s: ran.append("after"))
    g.add_edge(START, "bad").add_edge("bad", "after")
    with pytest.raises(InvalidUpdateError, match=r"key 'nested' holds dict.*Outer.nested is .*Inner.*at nested\['value'\]") as ei:
        g.compile().invoke({})
    assert ei.value.key == "nested" and ran == []


def test_a_node_may_return_the_state_model_as_its_update() -> None:
    """Follows test_pregel.py::test_pydantic_state_update_command and
    test_pregel.py::test_pydantic_none_state_update: a model instance is an update of its fields,
    leaving out fields that stay at a None default unless set explicitly."""

    class State(pydantic.BaseModel):
        foo: str | None = None
        bar: str | None = None

    g = StateGraph(State)
    g.add_node("node_a", lambda s: State(foo="foo"))
    g.add_node("node_b", lambda s: Command(update=State(bar="bar")))
    g.add_edge(START, "node_a").add_edge("node_a", "node_b").add_edge("node_b", END)
    assert g.compile().invoke(State()) == {"foo": "foo", "bar": "bar"}

    g2 = StateGraph(State).add_node("node_c", lambda s: State(foo=None)).add_edge(START, "node_c")
    assert g2.compile().invoke({"foo": "x", "bar": "y"}) == {"foo": None, "bar": "y"}


def test_a_node_may_return_a_dataclass_instance_and_unknown_fields_are_errors() -> None:
    """Follows test_pregel.py::test_command_pydantic_dataclass (the dataclass half): a dataclass
    instance is an update of all its fields; a field that is not a state key is an error (LangGraph
    drops it)."""

    @dataclasses.dataclass
    class DState:
        foo: str = ""

    @dataclasses.dataclass
    class Other:
        foo: str
        extra: int

    g = StateGraph(DState).add_node("a", lambda s: DState(foo=s.foo + "foo"))
    g.add_node("b", lambda s: Command(update=DState(foo=s.foo + "bar")))
    g.add_edge(START, "a").add_edge("a", "b")
    assert g.compile().invoke(DState()) == {"foo": "foobar"}

    bad = StateGraph(DState).add_node("a", lambda s: Other("x", 1)).add_edge(START, "a")
    with pytest.raises(InvalidUpdateError, match=r"node 'a' returned Other with field 'extra', which is not a state key") as ei:
        bad.compile().invoke({})
    assert ei.value.key == "extra"


def test_a_list_mixing_commands_and_updates() -> None:
    """Follows test_pregel.py::test_dict_mixed_return: the updates merge in order through the
    reducers, and every Command's goto is followed."""

    class State(typing_extensions.TypedDict):
        foo: Annotated[str, operator.add]
        visited: Annotated[list[str], operator.add]

    g = StateGraph(State)
    g.add_node("my_node", lambda s: [Command(update={"foo": "a"}, goto="x"), {"foo": "b"}, Command(goto=[Send("y", {})])],
               destinations=("x", "y"))
    g.add_node("x", lambda s: {"visited": ["x"]})
    g.add_node("y", lambda s: {"visited": ["y"]})
    g.add_edge(START, "my_node")
    assert g.compile().invoke({"foo": ""}) == {"foo": "ab", "visited": ["x", "y"]}


def test_a_list_writing_a_plain_key_twice_is_an_error() -> None:
    """Follows test_pregel.py::test_multiple_updates (LangGraph: 'Can receive only one value per
    step'): two updates of a key without a reducer in one returned list fail, naming the key."""

    class State(typing_extensions.TypedDict, total=False):
        foo: str

    g = StateGraph(State).add_node("a", lambda s: [Command(update={"foo": "1"}), {"foo": "2"}]).add_edge(START, "a")
    with pytest.raises(InvalidUpdateError, match=r"node 'a' returned a list of updates that writes state key 'foo' twice") as ei:
        g.compile().invoke({})
    assert (ei.value.node, ei.value.key) == ("a", "foo")


def test_root_state_is_one_reduced_value() -> None:
    """Follows test_pregel.py::test_cond_edge_after_send: StateGraph(Annotated[list, operator.add])
    hands nodes and routers the list, merges returned lists, and invoke returns the list."""

    def node(name: str) -> Any:
        return lambda state: [name]

    def send_twice(state: list[str]) -> list[Send]:
        assert isinstance(state, list)
        return [Send("2", state), Send("2", state)]

    g = StateGraph(Annotated[list, operator.add])
    g.add_node("1", node("1")).add_node("2", node("2")).add_node("3", node("3"))
    g.add_edge(START, "1")
    g.add_conditional_edges("1", send_twice)
    g.add_conditional_edges("2", lambda s: "3", ["3"])
    app = g.compile()
    assert app.invoke(["0"]) == ["0", "1", "2", "2", "3"]
    assert list(app.stream(["0"], mode="values"))[-1] == ["0", "1", "2", "2", "3"]
    assert list(app.stream(["0"], mode="updates")) == [{"1": ["1"]}, {"2": ["2"]}, {"2": ["2"]}, {"3": ["3"]}]
    app.invoke(["0"], thread_id="t")
    assert app.get_state("t").values == ["0", "1", "2", "2", "3"]
    first = app.get_state_history("t")[-1]  # writes and task results show the bare values too
    assert first.writes == {"__input__": ["0"]} and first.tasks[0].result == ["1"]
    app.update_state("t", ["edit"])
    assert app.get_state("t").values[-1] == "edit"


def test_root_state_mixed_return() -> None:
    """Follows test_pregel.py::test_root_mixed_return."""
    g = StateGraph(Annotated[list[str], operator.add])
    g.add_node("my_node", lambda s: [Command(update=["a"]), ["b"]]).add_edge(START, "my_node")
    assert g.compile().invoke([]) == ["a", "b"]


def test_root_state_needs_a_reducer_and_plain_annotated_classes_are_refused() -> None:
    """Follows test_pregel.py::test_graph_validation (bad schemas): Annotated without a reducer,
    and a plain class with annotations (which LangGraph reads, we do not), are typed errors that
    say what to write instead."""
    with pytest.raises(GraphValidationError, match=r"root state Annotated\[T, reducer\] needs a reducer"):
        StateGraph(Annotated[list, "not callable"])

    class Plain:
        foo: str
        bar: int

    with pytest.raises(GraphValidationError, match=r"Plain: a plain class with annotations \(foo: str, bar: int\).*@dataclass"):
        StateGraph(Plain)


@dataclasses.dataclass
class Doc:
    text: str


class TEState(typing_extensions.TypedDict, total=False):
    doc: Doc
    docs: Annotated[list[Doc], operator.add]


def test_typing_extensions_typeddict_keys_are_registered_with_the_serializer(tmp_path: Any) -> None:
    """Follows test_state.py (LangGraph's state tests declare typing_extensions.TypedDict): the
    serializer finds the classes inside such a schema, so a SQLite thread stores and reads them."""
    assert Doc in Serializer().register_from_annotations(TEState)
    g = StateGraph(TEState).add_node("a", lambda s: {"doc": Doc("b"), "docs": [Doc("c")]}).add_edge(START, "a")
    app = g.compile(checkpointer=f"sqlite:///{tmp_path / 'te.db'}")
    app.invoke({"docs": [Doc("a")]}, thread_id="t")
    reopened = g.compile(checkpointer=f"sqlite:///{tmp_path / 'te.db'}")
    assert reopened.get_state("t").values == {"doc": Doc("b"), "docs": [Doc("a"), Doc("c")]}


class Counter(pydantic.BaseModel):
    n: int = 0


class Secret(typing_extensions.TypedDict, total=False):
    secret: str


def _writes_secret(state: Counter) -> dict[str, Any]:
    return {"secret": "xyz", "n": state.n + 1}


def _reads_secret(state: Secret) -> dict[str, Any]:
    return {"n": len(state["secret"])}


def test_pydantic_state_with_a_private_key() -> None:
    """Follows test_state.py::test_private_input_schema_conditional_edge with a pydantic state: a
    key only a node's schema declares is kept outside the model (its nodes still receive Counter
    instances), and update_state validates only the model's fields."""
    seen: list[str] = []
    g = StateGraph(Counter).add_node("a", _writes_secret).add_node("b", _reads_secret)
    g.add_node("c", lambda s: seen.append(type(s).__name__))
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c")
    app = g.compile()
    assert app.invoke({"n": 0}, thread_id="t") == {"n": 3}
    assert seen == ["Counter"]
    app.update_state("t", {"secret": "yy", "n": "5"})
    assert app.get_state("t").values == {"n": 5, "secret": "yy"}
