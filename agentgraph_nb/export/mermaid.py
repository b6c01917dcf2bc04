"""Mermaid flowchart text of a graph description."""

from __future__ import annotations

import re
from typing import Any

from agentgraph_nb.constants import END, START
from agentgraph_nb.export._edges import edge_specs

__all__ = ["to_mermaid"]


def _id(name: str) -> str:
    if name == START:
        return "__start__"
    if name == END:
        return "__end__"
    return "n_" + re.sub(r"\W", lambda m: f"_{ord(m.group()):x}_", name)


def _label(s: str) -> str:
    return s.replace('"', "#quot;")


def to_mermaid(g: dict[str, Any]) -> str:
    """Mermaid ``flowchart LR`` text."""
    lines = ["flowchart LR"]
    lines.append(f'  {_id(START)}(["START"])')
    lines.append(f'  {_id(END)}(["END"])')
    for n in g["nodes"]:
        lines.append(f'  {_id(n["name"])}["{_label(n["name"])}"]')
    for e in edge_specs(g):
        src = _id(e.source)
        if e.kind == "static":
            lines.append(f"  {src} --> {_id(e.target)}")  # type: ignore[arg-type]
        elif e.kind == "join":
            lines.append(f"  {src} -->|join| {_id(e.target)}")  # type: ignore[arg-type]
        elif e.kind == "conditional":
            lines.append(f'  {src} -.->|"{_label(e.label)}"| {_id(e.target)}')  # type: ignore[arg-type]
        elif e.kind == "dynamic":
            stub = f"{src}_{_id(e.label)}_dyn"
            lines.append(f'  {stub}{{"{_label(e.label)} ?"}}')
            lines.append(f"  {src} -.-> {stub}")
        else:
            lines.append(f'  {src} -->|"{e.label}"| {_id(e.target)}')  # type: ignore[arg-type]
    return "\n".join(lines) + "\n"
