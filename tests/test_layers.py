"""The builder/engine line (STYLE.md, "The house today"): the engine imports nothing of the
builder, the notebook front or an integration, and everything outside the engine reaches it
through its public surface (``agentgraph_nb.engine``), never its private modules."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "agentgraph_nb"


def imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
    return out


def test_the_engine_imports_no_builder_front_or_integration() -> None:
    banned = ("agentgraph_nb.graph", "agentgraph_nb.ui", "agentgraph_nb.notebook", "agentgraph_nb.llm",
              "agentgraph_nb.tools", "agentgraph_nb.nodes", "agentgraph_nb.func", "agentgraph_nb.prebuilt",
              "agentgraph_nb.cli", "agentgraph_nb.distributed", "IPython", "ipywidgets", "pandas", "openai")
    found = [f"{p.name}:{line} imports {mod}" for p in sorted((PKG / "engine").glob("*.py"))
             for line, mod in imports(p) if mod.startswith(banned)]
    assert not found, found


def test_nothing_outside_the_engine_imports_its_private_modules() -> None:
    found = [f"{p.relative_to(PKG)}:{line} imports {mod}" for p in sorted(PKG.rglob("*.py"))
             if "engine" not in p.relative_to(PKG).parts[:1]
             for line, mod in imports(p) if mod.startswith("agentgraph_nb.engine._")]
    assert not found, found


def test_the_public_surface_is_what_it_says() -> None:
    import agentgraph_nb.engine as engine

    assert sorted(engine.__all__) == sorted(set(engine.__all__))
    missing = [n for n in engine.__all__ if not hasattr(engine, n)]
    assert not missing, missing
