"""Graphviz DOT text of a graph description."""

from __future__ import annotations

from typing import Any

from agentgraph_nb.constants import END, START
from agentgraph_nb.export._edges import edge_specs

__all__ = ["to_dot"]


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(g: dict[str, Any]) -> str:
    """DOT text: left to right; conditional edges dashed and labelled, weighted ones labelled.
    A subgraph node is a cluster holding its own graph (node ids prefixed with its path,
    ``"team/search"``): the parent's edges into it reach its START, those out of it leave its END."""
    lines = [f"digraph {_q(g['name'])} {{", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fillcolor="#eef2ff"];']
    _body(g, "", lines, "  ")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _body(g: dict[str, Any], prefix: str, lines: list[str], pad: str) -> None:
    subs = {n["name"]: n["subgraph"] for n in g["nodes"] if n.get("subgraph")}

    def into(name: str) -> str:
        return _q(f"{prefix}{name}/{START}") if name in subs else _q(prefix + name)

    def out_of(name: str) -> str:
        return _q(f"{prefix}{name}/{END}") if name in subs else _q(prefix + name)

    edges = list(edge_specs(g))
    used = {e.source for e in edges} | {e.target for e in edges if e.target is not None}
    if START in used:
        lines.append(f'{pad}{_q(prefix + START)} [label="START", shape=circle, fillcolor="#d1fae5"];')
    if END in used:
        lines.append(f'{pad}{_q(prefix + END)} [label="END", shape=doublecircle, fillcolor="#fee2e2"];')
    for n in g["nodes"]:
        name = n["name"]
        if name in subs:
            sub = subs[name]
            lines.append(f"{pad}subgraph {_q('cluster_' + prefix + name)} {{")
            lines.append(f'{pad}  label={_q(name + ": " + str(sub.get("name")))}; style="rounded,dashed";')
            _body(sub, f"{prefix}{name}/", lines, pad + "  ")
            lines.append(f"{pad}}}")
        else:
            lines.append(f"{pad}{_q(prefix + name)} [label={_q(name)}];" if prefix else f"{pad}{_q(name)};")
    for t in g.get("transactions") or ():  # a transaction's nodes in a dotted box of their own
        lines.append(f"{pad}subgraph {_q('cluster_tx_' + prefix + t['name'])} {{")
        lines.append(f'{pad}  label={_q("transaction " + t["name"])}; style="rounded,dotted"; color="#9467bd";')
        lines.extend(f"{pad}  {_q(prefix + m)};" for m in t["nodes"] if m not in subs)
        lines.append(f"{pad}}}")
    for e in edges:
        src = out_of(e.source)
        if e.kind == "static":
            lines.append(f"{pad}{src} -> {into(e.target)};")  # type: ignore[arg-type]
        elif e.kind == "join":
            lines.append(f"{pad}{src} -> {into(e.target)} [arrowhead=diamond, label=\"join\"];")  # type: ignore[arg-type]
        elif e.kind == "conditional":
            lines.append(f"{pad}{src} -> {into(e.target)} [style=dashed, label={_q(e.label)}];")  # type: ignore[arg-type]
        elif e.kind == "dynamic":
            stub = _q(f"{prefix}{e.source}?{e.label}")
            lines.append(f"{pad}{stub} [label={_q(e.label + ' ?')}, shape=diamond, fillcolor=white];")
            lines.append(f"{pad}{src} -> {stub} [style=dashed];")
        elif e.kind == "loop":  # a for-each or while node: a self-edge saying how it loops
            lines.append(f"{pad}{src} -> {src} [style=bold, color=\"#0891b2\", label={_q('↻ ' + e.label)}];")
        elif e.kind == "error":
            lines.append(f"{pad}{src} -> {into(e.target)} [style=dashed, color=\"#dc2626\", "  # type: ignore[arg-type]
                         f"fontcolor=\"#dc2626\", label={_q(e.label)}];")
        else:
            lines.append(f"{pad}{src} -> {into(e.target)} [label={_q(e.label)}, color=\"#6366f1\"];")  # type: ignore[arg-type]
