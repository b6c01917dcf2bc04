"""Nodes given as "package.module:function": located when added (a missing module fails at once),
imported when the graph is compiled, typed errors naming the node and the path."""

from __future__ import annotations

import asyncio
import itertools
import sys
import textwrap
from pathlib import Path
from typing import Any, TypedDict

import pytest

from agentgraph_nb import START, CachePolicy, GraphValidationError, NodeImportError, StateGraph


class S(TypedDict, total=False):
    x: int


@pytest.fixture
def pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A real package on sys.path, unique per test (so imports are fresh)."""
    name = f"lazypkg_{tmp_path.name.replace('-', '_')}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "steps.py").write_text(textwrap.dedent("""
        CALLS = []

        def double(s):
            CALLS.append(s["x"])
            return {"x": s["x"] * 2}

        async def add_one(s):
            return {"x": s["x"] + 1}

        class Tools:
            @staticmethod
            def triple(s):
                return {"x": s["x"] * 3}

        NOT_A_FUNCTION = 42
    """))
    (root / "broken.py").write_text("raise RuntimeError('no config file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for m in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[m]


def _chain(*nodes: tuple[str, Any]) -> StateGraph:
    g = StateGraph(S, name="lazy")
    for name, fn in nodes:
        g.add_node(name, fn)
    g.add_edge(START, nodes[0][0])
    for (a, _), (b, _) in itertools.pairwise(nodes):
        g.add_edge(a, b)
    return g


def test_a_node_from_an_import_path_runs_and_is_imported_at_compile(pkg: str) -> None:
    g = _chain(("d", f"{pkg}.steps:double"), ("t", f"{pkg}.steps:Tools.triple"))
    assert f"{pkg}.steps" not in sys.modules  # adding it only located the module
    app = g.compile()
    assert f"{pkg}.steps" in sys.modules
    assert app.invoke({"x": 2}) == {"x": 12}
    assert sys.modules[f"{pkg}.steps"].CALLS == [2]


def test_async_targets_and_the_short_form(pkg: str) -> None:
    g = StateGraph(S, name="lazy")
    g.add_node(f"{pkg}.steps:add_one")  # named after the function
    g.add_edge(START, "add_one")
    app = g.compile()
    assert asyncio.run(app.ainvoke({"x": 1})) == {"x": 2}
    assert app.invoke({"x": 1}) == {"x": 2}


def test_a_missing_module_fails_when_the_node_is_added(pkg: str) -> None:
    g = StateGraph(S, name="lazy")
    with pytest.raises(NodeImportError, match=rf"node 'f': no module named '{pkg}.stepz'") as ei:
        g.add_node("f", f"{pkg}.stepz:double")
    assert (ei.value.node, ei.value.target) == ("f", f"{pkg}.stepz:double")
    assert isinstance(ei.value, GraphValidationError) and isinstance(ei.value, ImportError)
    with pytest.raises(NodeImportError, match="node 'f': cannot locate module 'nopkg_x.mod'"):
        g.add_node("f", "nopkg_x.mod:fn")
    with pytest.raises(NodeImportError, match="node 'f': 'steps.double' is not an import path"):
        g.add_node("f", "steps.double")


def test_a_missing_attribute_is_named_with_a_did_you_mean(pkg: str) -> None:
    g = _chain(("d", f"{pkg}.steps:dubble"))
    with pytest.raises(NodeImportError, match=r"node 'd': .* has no attribute 'dubble' .*Did you mean 'double'"):
        g.compile()


def test_a_module_that_fails_to_import_is_chained(pkg: str) -> None:
    g = _chain(("b", f"{pkg}.broken:fn"))
    with pytest.raises(NodeImportError, match=r"node 'b': importing .*broken.* failed: RuntimeError: no config file") as ei:
        g.compile()
    assert isinstance(ei.value.__cause__, RuntimeError)


def test_a_target_that_is_not_callable(pkg: str) -> None:
    with pytest.raises(NodeImportError, match="node 'n': .*NOT_A_FUNCTION' is int, not a function"):
        _chain(("n", f"{pkg}.steps:NOT_A_FUNCTION")).compile()


def test_exports_name_the_target_and_from_json_imports_it_when_allowed(pkg: str) -> None:
    app = _chain(("d", f"{pkg}.steps:double")).compile()
    data = app.to_json()
    assert data["nodes"][0]["target"] == f"{pkg}.steps:double"
    again = StateGraph.from_json(data, schema=S, allow_modules=[pkg]).compile()
    assert again.invoke({"x": 5}) == {"x": 10}


def test_a_lazy_node_can_be_cached(pkg: str) -> None:
    g = StateGraph(S, name="lazy")
    g.add_node("d", f"{pkg}.steps:double", cache=CachePolicy())
    g.add_edge(START, "d")
    app = g.compile()
    app.invoke({"x": 4})
    app.invoke({"x": 4})
    assert sys.modules[f"{pkg}.steps"].CALLS == [4]
