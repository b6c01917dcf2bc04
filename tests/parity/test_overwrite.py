"""Parity with LangGraph: ``Overwrite`` of a reducer key, alone and in a parallel superstep.

LangGraph's scenarios (libs/langgraph/tests/test_pregel.py) re-expressed on our API.
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import END, START, InvalidUpdateError, Overwrite, StateGraph


class State(TypedDict, total=False):
    messages: Annotated[list[str], operator.add]
    title: str


def _overwrite(value: Any, as_json: bool) -> Any:
    return {"__overwrite__": value} if as_json else Overwrite(value)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory" if request.param == "memory" else f"sqlite:///{tmp_path / 'ow.db'}"


@pytest.mark.parametrize("as_json", [False, True])
def test_overwrite_after_a_sequential_append(store: str, as_json: bool) -> None:
    """Follows test_pregel.py::test_overwrite_sequential: the second node's overwrite replaces the
    input's and the first node's appends."""
    g = StateGraph(State)
    g.add_node("node_a", lambda s: {"messages": ["a"]})
    g.add_node("node_b", lambda s: {"messages": _overwrite(["b"], as_json)})
    g.add_edge(START, "node_a").add_edge("node_a", "node_b")
    app = g.compile(checkpointer=store)
    assert app.invoke({"messages": ["START"]}, thread_id="1") == {"messages": ["b"]}
    # the stored history replays to the same state (the overwrite is kept as written)
    assert app.get_state("1").values == {"messages": ["b"]}
    assert [h.values["messages"] for h in app.get_state_history("1")] == [["b"], ["START", "a"], ["START"]]


@pytest.mark.parametrize("as_json", [False, True])
def test_overwrite_wins_its_parallel_step(store: str, as_json: bool) -> None:
    """Follows test_pregel.py::test_overwrite_parallel: b overwrites while its sibling c appends in
    the same superstep; the overwrite wins the step (c's append is dropped although c merges
    after b), then d appends: ``["b", "d"]``."""
    g = StateGraph(State)
    g.add_node("node_a", lambda s: {"messages": ["a"]})
    g.add_node("node_b", lambda s: {"messages": _overwrite(["b"], as_json)})
    g.add_node("node_c", lambda s: {"messages": ["c"]})
    g.add_node("node_d", lambda s: {"messages": ["d"]})
    g.add_edge(START, "node_a")
    g.add_edge("node_a", "node_b").add_edge("node_a", "node_c")
    g.add_edge("node_b", "node_d").add_edge("node_c", "node_d")
    app = g.compile(checkpointer=store)
    assert app.invoke({"messages": ["START"]}, thread_id="1") == {"messages": ["b", "d"]}
    hist = app.get_state_history("1")
    assert [h.values["messages"] for h in hist] == [["b", "d"], ["b"], ["START", "a"], ["START"]]


def test_overwrite_wins_whatever_the_merge_order() -> None:
    """Follows test_pregel.py::test_overwrite_parallel with the overwriting node merged last: the
    appends merged before it are replaced too."""
    g = StateGraph(State)
    g.add_node("append", lambda s: {"messages": ["c"]})
    g.add_node("reset", lambda s: {"messages": Overwrite(["b"])})
    g.add_edge(START, "append").add_edge(START, "reset")
    assert g.compile().invoke({"messages": ["START"]}) == {"messages": ["b"]}


@pytest.mark.parametrize("as_json", [False, True])
def test_two_overwrites_in_one_step_are_an_error(store: str, as_json: bool) -> None:
    """Follows test_pregel.py::test_overwrite_parallel_error: two nodes of one superstep overwrite
    the same key: InvalidUpdateError naming both nodes and the key; the last checkpoint is kept
    and the step can run again."""
    calls = {"n": 0}

    def node_c(s: State) -> dict[str, Any]:
        calls["n"] += 1
        return {"messages": _overwrite(["c"], as_json) if calls["n"] == 1 else ["c"]}

    g = StateGraph(State)
    g.add_node("node_a", lambda s: {"messages": ["a"]})
    g.add_node("node_b", lambda s: {"messages": _overwrite(["b"], as_json)})
    g.add_node("node_c", node_c)
    g.add_edge(START, "node_a")
    g.add_edge("node_a", "node_b").add_edge("node_a", "node_c")
    g.add_edge("node_b", END).add_edge("node_c", END)
    app = g.compile(checkpointer=store)
    with pytest.raises(InvalidUpdateError, match="only one Overwrite per superstep") as ei:
        app.invoke({"messages": ["START"]}, thread_id="1")
    assert ei.value.key == "messages" and ei.value.step == 2
    assert "'node_b'" in str(ei.value) and "'node_c'" in str(ei.value)
    st = app.get_state("1")
    assert st.values == {"messages": ["START", "a"]} and set(st.next) == {"node_b", "node_c"}
    # both overwriting tasks run again (node_c now appends): b's overwrite wins the step
    assert app.invoke(None, thread_id="1") == {"messages": ["b"]}


def test_json_overwrite_in_the_input_and_update_state() -> None:
    """Follows test_pregel.py::test_overwrite_sequential (as_json): the JSON spelling works
    wherever an update does, here the input and update_state."""
    g = StateGraph(State)
    g.add_node("a", lambda s: {"messages": ["a"]}).add_edge(START, "a")
    app = g.compile()
    assert app.invoke({"messages": {"__overwrite__": ["in"]}}, thread_id="1") == {"messages": ["in", "a"]}
    app.update_state("1", {"messages": {"__overwrite__": []}})
    assert app.get_state("1").values == {"messages": []}
    # the form LangGraph's Overwrite dataclass takes in JSON
    app.update_state("1", {"messages": {"type": "__overwrite__", "value": ["x"]}})
    assert app.get_state("1").values == {"messages": ["x"]}


def test_overwrite_of_a_plain_key_is_a_plain_write() -> None:
    """Follows test_pregel.py::test_overwrite_parallel for a key without a reducer: the value is
    unwrapped (LangGraph stores the Overwrite object itself), and it conflicts with another write
    of the key in the same step like any plain write. A dict spelled like an overwrite is an
    ordinary value of a plain key."""
    g = StateGraph(State)
    g.add_node("a", lambda s: {"title": Overwrite("x")})
    g.add_edge(START, "a")
    assert g.compile().invoke({"title": "0"}) == {"title": "x", "messages": []}

    g2 = StateGraph(State)
    g2.add_node("a", lambda s: {"title": Overwrite("x")}).add_node("b", lambda s: {"title": "y"})
    g2.add_edge(START, "a").add_edge(START, "b")
    with pytest.raises(InvalidUpdateError, match="nodes 'a' and 'b' both wrote state key 'title'"):
        g2.compile().invoke({})

    class Open(TypedDict, total=False):
        meta: dict[str, Any]

    g3 = StateGraph(Open).add_node("a", lambda s: {"meta": {"__overwrite__": 1}}).add_edge(START, "a")
    assert g3.compile().invoke({}) == {"meta": {"__overwrite__": 1}}


def test_overwrite_wins_its_parallel_step_async() -> None:
    """Follows test_pregel.py::test_overwrite_parallel with async nodes under ainvoke (LangGraph
    has no async twin of it): the overwriting node finishes last, its sibling's append is still
    dropped."""
    import asyncio

    async def node_b(s: State) -> dict[str, Any]:
        await asyncio.sleep(0.02)
        return {"messages": Overwrite(["b"])}

    async def node_c(s: State) -> dict[str, Any]:
        return {"messages": ["c"]}

    g = StateGraph(State).add_node("node_b", node_b).add_node("node_c", node_c)
    g.add_node("node_d", lambda s: {"messages": ["d"]})
    g.add_edge(START, "node_b").add_edge(START, "node_c")
    g.add_edge(["node_b", "node_c"], "node_d")
    out = asyncio.run(g.compile().ainvoke({"messages": ["START"]}))
    assert out == {"messages": ["b", "d"]}
