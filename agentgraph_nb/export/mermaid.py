"""Mermaid flowchart text of a graph description."""

from __future__ import annotations

import re
from typing import Any

from agentgraph_nb.constants import END, START

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
    for e in g["edges"]:
        lines.append(f"  {_id(e['source'])} --> {_id(e['target'])}")
    for j in g["joins"]:
        for s in j["sources"]:
            lines.append(f"  {_id(s)} -->|join| {_id(j['target'])}")
    for b in g["branches"]:
        src = _id(b["source"])
        if b["path_map"]:
            for k, t in b["path_map"].items():
                lines.append(f'  {src} -.->|"{_label(b["router"] + ": " + k)}"| {_id(t)}')
        elif b["targets"]:
            for t in b["targets"]:
                lines.append(f'  {src} -.->|"{_label(b["router"])}"| {_id(t)}')
        else:
            stub = f"{src}_{_id(b['router'])}_dyn"
            lines.append(f'  {stub}{{"{_label(b["router"])} ?"}}')
            lines.append(f"  {src} -.-> {stub}")
    for w in g["weighted"]:
        for t, wt in w["weights"].items():
            lines.append(f'  {_id(w["source"])} -->|"{wt:g}"| {_id(t)}')
    return "\n".join(lines) + "\n"
