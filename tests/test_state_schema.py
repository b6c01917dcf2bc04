"""State schemas as LangGraph code writes them."""

from __future__ import annotations

import operator
import typing
from typing import Annotated

import pytest
import typing_extensions

from agentgraph_nb import END, START, StateGraph
from agentgraph_nb.errors import GraphValidationError


class ExtState(typing_extensions.TypedDict, total=False):
    """typing_extensions.TypedDict: what LangGraph's docs, its tests and pydantic (< 3.12) use."""

    topic: str
    notes: Annotated[list[str], operator.add]


def test_typing_extensions_typeddict_state_runs() -> None:
    g = StateGraph(ExtState)
    g.add_node("a", lambda s: {"notes": [s["topic"]]})
    g.add_node("b", lambda s: {"notes": ["b"]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    out = g.compile().invoke({"topic": "t"})
    assert out == {"topic": "t", "notes": ["t", "b"]}


def test_typing_typeddict_still_runs() -> None:
    class Plain(typing.TypedDict):
        x: int

    g = StateGraph(Plain)
    g.add_node("a", lambda s: {"x": s["x"] + 1})
    g.add_edge(START, "a")
    assert g.compile().invoke({"x": 1}) == {"x": 2}


def test_plain_annotated_class_is_rejected_clearly() -> None:
    class NotAState:
        x: int

    with pytest.raises(GraphValidationError, match="unsupported state schema.*TypedDict"):
        StateGraph(NotAState)
