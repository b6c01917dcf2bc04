"""Error edges and saga compensations in the ``%%agentgraph`` language (``a !-> b on E``,
``a [compensate=undo]``) and in the exports: parse, build, ``to_dsl`` round trip, JSON round
trip, DOT and Mermaid drawn dashed red."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentgraph_nb import StateGraph
from agentgraph_nb.export.dot import to_dot
from agentgraph_nb.export.dsl import to_dsl
from agentgraph_nb.export.mermaid import to_mermaid
from agentgraph_nb.notebook._dsl import DslSyntaxError, ErrorEdge, build, parse


class OutOfStock(Exception):
    pass


def reserve(s: dict[str, Any]) -> dict[str, Any]:
    return {"log": [*s.get("log", []), "reserve"]}


def release(s: dict[str, Any]) -> None:
    pass


def charge(s: dict[str, Any]) -> dict[str, Any]:
    raise OutOfStock("none left")


def apologize(s: dict[str, Any]) -> dict[str, Any]:
    return {"note": f"{s['__error__'].node}: {s['__error__'].error_type}"}


NS = {"reserve": reserve, "release": release, "charge": charge, "apologize": apologize, "OutOfStock": OutOfStock}

CELL = """START -> reserve -> charge -> END
charge !-> apologize on OutOfStock, TimeoutError
apologize -> END
reserve [compensate=release]
"""


def _build(text: str) -> StateGraph:
    return build(parse(text), name="shop", schema=dict, namespace=NS, builder_cls=StateGraph)  # type: ignore[no-any-return]


def test_parse_and_build_error_edges_and_compensations() -> None:
    d = parse(CELL)
    assert d.error_edges == (ErrorEdge("charge", "apologize", ("OutOfStock", "TimeoutError")),)
    assert d.node("reserve").compensate == "release"
    g = _build(CELL)
    assert g.error_edges == [("charge", "apologize", (OutOfStock, TimeoutError))]
    assert g.nodes["reserve"].compensate is not None
    assert g.compile().invoke({})["note"] == "charge: OutOfStock"


def test_on_is_optional_and_means_any_exception() -> None:
    g = _build("START -> charge -> END\ncharge !-> apologize\napologize -> END\n")
    assert g.error_edges == [("charge", "apologize", (Exception,))]
    assert "charge !-> apologize\n" in to_dsl(g.to_json())


def test_to_dsl_round_trips() -> None:
    g = _build(CELL)
    text = to_dsl(g.to_json())
    assert "charge !-> apologize on OutOfStock, TimeoutError" in text
    assert "reserve [compensate=release]" in text
    assert _build(text).to_json() == g.to_json()


def test_json_round_trip() -> None:
    g = _build(CELL)
    data = g.to_json()
    assert data["error_edges"] == [{"source": "charge", "target": "apologize",
                                    "on": [f"{__name__}:OutOfStock", "TimeoutError"]}]
    assert data["nodes"][0]["compensate"]["name"] == "release"
    back = StateGraph.from_json(data, namespace=NS)
    assert back.error_edges == [("charge", "apologize", (OutOfStock, TimeoutError))]
    assert back.nodes["reserve"].compensate is release
    assert back.to_json()["error_edges"] == data["error_edges"]
    with pytest.raises(Exception, match="catches .*OutOfStock.*allow_modules"):
        StateGraph.from_json(data, namespace={k: v for k, v in NS.items() if k != "OutOfStock"})
    # a graph without error edges keeps its description as before (no new keys)
    plain = _build("START -> reserve -> END\n").to_json()
    assert "error_edges" not in plain and "compensate" not in plain["nodes"][0]


def test_exports_draw_error_edges_dashed_red() -> None:
    data = _build(CELL).to_json()
    dot = to_dot(data)
    assert '"charge" -> "apologize" [style=dashed, color="#dc2626"' in dot
    assert 'label="on OutOfStock | TimeoutError"' in dot
    mm = to_mermaid(data)
    assert 'n_charge -. "on OutOfStock | TimeoutError" .-> n_apologize' in mm
    links = [ln for ln in mm.splitlines() if "-->" in ln or "-.->" in ln or " -. " in ln]
    index = next(i for i, ln in enumerate(links) if " -. " in ln)
    assert f"linkStyle {index} stroke:#dc2626" in mm


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a !-> END", "an error edge links two nodes"),
        ("START !-> b", "an error edge links two nodes"),
        ("a !-> b on", "only 'on ExcType, ...' may follow"),
        ("a !-> b on X,", "expected an exception name after ','"),
        ("a !-> b c", "only 'on ExcType, ...' may follow"),
        ("a !->", "an error edge is written 'node !-> handler'"),
        ("a [compensate=3]", "compensate names a function"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(DslSyntaxError, match=message):
        parse(text)


def test_unknown_exception_and_compensation_names() -> None:
    with pytest.raises(DslSyntaxError, match="'Nope' is not an exception class"):
        _build("START -> charge -> END\ncharge !-> apologize on Nope\napologize -> END\n")
    with pytest.raises(DslSyntaxError, match="compensation of node 'reserve'.*'relase'"):
        _build("START -> reserve -> END\nreserve [compensate=relase]\n")


def test_static_svg_and_graphview_model_draw_the_error_edge() -> None:
    from agentgraph_nb.export.svg import render_svg

    svg = render_svg(_build(CELL).to_json())
    assert "#d93025" in svg and "on OutOfStock | TimeoutError" in svg
    bundle = (Path(__file__).parent.parent / "agentgraph_nb" / "static" / "graphview.js").read_text()
    assert "error_edges" in bundle and 'error:{color:"#d93025"' in bundle
