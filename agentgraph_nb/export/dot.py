"""Graphviz DOT text of a graph description."""

from __future__ import annotations

from typing import Any

from agentgraph_nb.constants import END, START
from agentgraph_nb.export._edges import edge_specs

__all__ = ["to_dot"]


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(g: dict[str, Any]) -> str:
    """DOT text: left to right; conditional edges dashed and labelled, weighted ones labelled."""
    lines = [f"digraph {_q(g['name'])} {{", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fillcolor="#eef2ff"];']
    edges = list(edge_specs(g))
    used = {e.source for e in edges} | {e.target for e in edges if e.target is not None}
    if START in used:
        lines.append(f'  {_q(START)} [label="START", shape=circle, fillcolor="#d1fae5"];')
    if END in used:
        lines.append(f'  {_q(END)} [label="END", shape=doublecircle, fillcolor="#fee2e2"];')
    for n in g["nodes"]:
        lines.append(f"  {_q(n['name'])};")
    for e in edges:
        src = _q(e.source)
        if e.kind == "static":
            lines.append(f"  {src} -> {_q(e.target)};")  # type: ignore[arg-type]
        elif e.kind == "join":
            lines.append(f"  {src} -> {_q(e.target)} [arrowhead=diamond, label=\"join\"];")  # type: ignore[arg-type]
        elif e.kind == "conditional":
            lines.append(f"  {src} -> {_q(e.target)} [style=dashed, label={_q(e.label)}];")  # type: ignore[arg-type]
        elif e.kind == "dynamic":
            stub = _q(f"{e.source}?{e.label}")
            lines.append(f"  {stub} [label={_q(e.label + ' ?')}, shape=diamond, fillcolor=white];")
            lines.append(f"  {src} -> {stub} [style=dashed];")
        else:
            lines.append(f"  {src} -> {_q(e.target)} [label={_q(e.label)}, color=\"#6366f1\"];")  # type: ignore[arg-type]
    lines.append("}")
    return "\n".join(lines) + "\n"
