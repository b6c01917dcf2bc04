"""The edges of a graph description as one flat list, for the text exporters (DOT, Mermaid)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, NamedTuple

__all__ = ["EdgeSpec", "edge_specs", "loop_label"]


class EdgeSpec(NamedTuple):
    """One drawn edge. ``target`` is None for a dynamic router's stub (no declared targets)."""

    kind: Literal["static", "join", "conditional", "dynamic", "weighted", "loop", "error"]
    source: str
    target: str | None
    label: str


def edge_specs(g: dict[str, Any]) -> Iterator[EdgeSpec]:
    """Static edges, join inputs, router routes (``router`` or ``router: key`` labels), dynamic
    router stubs, weighted alternatives (the weight as label) and the ``Command(goto=...)``
    destinations of nodes (``destinations=`` or ``-> Command[Literal[...]]``, labelled ``goto``)
    and the self-edges of loop nodes (labelled with :func:`loop_label`), in that order; then the
    error edges (``on error`` or the exception names as label)."""
    for e in g["edges"]:
        yield EdgeSpec("static", e["source"], e["target"], "")
    for j in g["joins"]:
        for s in j["sources"]:
            yield EdgeSpec("join", s, j["target"], "join")
    for b in g["branches"]:
        if b["path_map"]:
            for k, t in b["path_map"].items():
                yield EdgeSpec("conditional", b["source"], t, f"{b['router']}: {k}")
        elif b["targets"]:
            for t in b["targets"]:
                yield EdgeSpec("conditional", b["source"], t, b["router"])
        else:
            yield EdgeSpec("dynamic", b["source"], None, b["router"])
    for w in g["weighted"]:
        for t, wt in w["weights"].items():
            yield EdgeSpec("weighted", w["source"], t, f"{wt:g}")
    for n in g["nodes"]:
        for t in n.get("destinations") or ():
            yield EdgeSpec("conditional", n["name"], t, "goto")
    for n in g["nodes"]:
        if n.get("loop"):
            yield EdgeSpec("loop", n["name"], n["name"], loop_label(n["loop"]))
    for e in g.get("error_edges") or ():
        on = [x.rpartition(":")[2] for x in e["on"]]
        yield EdgeSpec("error", e["source"], e["target"], "on error" if on == ["Exception"] else "on " + " | ".join(on))


def loop_label(loop: dict[str, Any]) -> str:
    """What a loop node's self-edge says: ``for each in items, 4 at once`` / ``while small, max 50``."""
    if loop.get("kind") == "foreach":
        return f"for each in {loop.get('over')}, {loop.get('max_concurrency', 4)} at once"
    return f"while {loop.get('condition', '?')}, max {loop.get('max_iterations', 50)}"
