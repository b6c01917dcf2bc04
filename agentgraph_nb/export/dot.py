"""Graphviz DOT text of a graph description."""

from __future__ import annotations

from typing import Any

from agentgraph_nb.constants import END, START

__all__ = ["to_dot"]


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(g: dict[str, Any]) -> str:
    """DOT text: left to right; conditional edges dashed and labelled, weighted ones labelled."""
    lines = [f"digraph {_q(g['name'])} {{", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fillcolor="#eef2ff"];']
    used = {e["source"] for e in g["edges"]} | {e["target"] for e in g["edges"]}
    for b in g["branches"]:
        used.add(b["source"])
        used.update(b["targets"] or [])
        used.update((b["path_map"] or {}).values())
    for w in g["weighted"]:
        used.add(w["source"])
        used.update(w["weights"])
    for j in g["joins"]:
        used.add(j["target"])
    if START in used:
        lines.append(f'  {_q(START)} [label="START", shape=circle, fillcolor="#d1fae5"];')
    if END in used:
        lines.append(f'  {_q(END)} [label="END", shape=doublecircle, fillcolor="#fee2e2"];')
    for n in g["nodes"]:
        lines.append(f"  {_q(n['name'])};")
    for e in g["edges"]:
        lines.append(f"  {_q(e['source'])} -> {_q(e['target'])};")
    for j in g["joins"]:
        for s in j["sources"]:
            lines.append(f"  {_q(s)} -> {_q(j['target'])} [arrowhead=diamond, label=\"join\"];")
    for b in g["branches"]:
        if b["path_map"]:
            for k, t in b["path_map"].items():
                lines.append(f"  {_q(b['source'])} -> {_q(t)} [style=dashed, label={_q(b['router'] + ': ' + k)}];")
        elif b["targets"]:
            for t in b["targets"]:
                lines.append(f"  {_q(b['source'])} -> {_q(t)} [style=dashed, label={_q(b['router'])}];")
        else:
            stub = f"{b['source']}?{b['router']}"
            lines.append(f"  {_q(stub)} [label={_q(b['router'] + ' ?')}, shape=diamond, fillcolor=white];")
            lines.append(f"  {_q(b['source'])} -> {_q(stub)} [style=dashed];")
    for w in g["weighted"]:
        for t, wt in w["weights"].items():
            lines.append(f"  {_q(w['source'])} -> {_q(t)} [label={_q(f'{wt:g}')}, color=\"#6366f1\"];")
    lines.append("}")
    return "\n".join(lines) + "\n"
