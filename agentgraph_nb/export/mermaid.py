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
    """Mermaid ``flowchart LR`` text; a subgraph node is a ``subgraph ... end`` block holding
    its own graph (ids prefixed with its path), which the parent's edges enter and leave."""
    lines = ["flowchart LR"]
    _body(g, "", lines, "  ")
    # error edges dashed red: linkStyle counts the links in the order they are written
    links = [ln for ln in lines if _LINK.search(ln)]
    red = [i for i, ln in enumerate(links) if _ERROR_LINK.search(ln)]
    if red:
        lines.append(f"  linkStyle {','.join(map(str, red))} stroke:#dc2626,stroke-dasharray:5 5,color:#dc2626")
    return "\n".join(lines) + "\n"


_LINK = re.compile(r" (-->|-\.->|-\. )")
_ERROR_LINK = re.compile(r" -\. ")


def _body(g: dict[str, Any], prefix: str, lines: list[str], pad: str) -> None:
    def nid(name: str) -> str:
        return prefix + _id(name)

    lines.append(f'{pad}{nid(START)}(["START"])')
    lines.append(f'{pad}{nid(END)}(["END"])')
    for n in g["nodes"]:
        sub = n.get("subgraph")
        if sub:
            lines.append(f'{pad}subgraph {nid(n["name"])} ["{_label(n["name"])}: {_label(str(sub.get("name")))}"]')
            _body(sub, nid(n["name"]) + "__", lines, pad + "  ")
            lines.append(f"{pad}end")
        else:
            lines.append(f'{pad}{nid(n["name"])}["{_label(n["name"])}"]')
    subs = {n["name"] for n in g["nodes"] if n.get("subgraph")}
    for t in g.get("transactions") or ():  # a transaction's nodes in a block of their own
        lines.append(f'{pad}subgraph {nid("tx " + t["name"])} ["transaction {_label(t["name"])}"]')
        lines.extend(f"{pad}  {nid(m)}" for m in t["nodes"] if m not in subs)
        lines.append(f"{pad}end")
    for e in edge_specs(g):
        src = nid(e.source)
        if e.kind == "static":
            lines.append(f"{pad}{src} --> {nid(e.target)}")  # type: ignore[arg-type]
        elif e.kind == "join":
            lines.append(f"{pad}{src} -->|join| {nid(e.target)}")  # type: ignore[arg-type]
        elif e.kind == "conditional":
            lines.append(f'{pad}{src} -.->|"{_label(e.label)}"| {nid(e.target)}')  # type: ignore[arg-type]
        elif e.kind == "dynamic":
            stub = f"{src}_{_id(e.label)}_dyn"
            lines.append(f'{pad}{stub}{{"{_label(e.label)} ?"}}')
            lines.append(f"{pad}{src} -.-> {stub}")
        elif e.kind == "loop":  # a for-each or while node: a self-edge saying how it loops
            lines.append(f'{pad}{src} -.->|"↻ {_label(e.label)}"| {src}')
        elif e.kind == "error":
            lines.append(f'{pad}{src} -. "{_label(e.label)}" .-> {nid(e.target)}')  # type: ignore[arg-type]
        else:
            lines.append(f'{pad}{src} -->|"{e.label}"| {nid(e.target)}')  # type: ignore[arg-type]
