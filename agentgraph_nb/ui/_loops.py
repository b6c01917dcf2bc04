"""Live iteration counts of loop nodes for GraphView: ``"3/10"`` in a loop node's details
(``details[node]["loop"]``), which the view draws as the node's loop badge.

A for-each counts its items finished (its ``node_start`` carries the list, each item's
``node_end``/``node_error`` is named ``"each[3]"``); a while loop counts its iterations (each
``node_end`` carries the ``"<name>.iteration"`` count it wrote) against ``max_iterations``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["LoopCounts"]

_ITEM = re.compile(r"(.+)\[(\d+)\]\Z")


class LoopCounts:
    """What the loop nodes of one graph description have counted, per run picture."""

    def __init__(self) -> None:
        self._graph: Any = None
        self.loops: dict[str, Mapping[str, Any]] = {}
        self._done: dict[tuple[Any, str], list[Any]] = {}  # (picture, for-each) -> [finished, total]
        self._text: dict[tuple[Any, str], str] = {}

    def active(self, graph: Mapping[str, Any]) -> bool:
        """Whether ``graph`` has loop nodes (re-read when the description changes)."""
        if graph is not self._graph:
            self._graph = graph
            self.loops = {n["name"]: n["loop"] for n in graph.get("nodes") or () if isinstance(n.get("loop"), Mapping)}
            self._done.clear()
            self._text.clear()
        return bool(self.loops)

    def on_event(self, key: Any, kind: str, node: str, data: Any) -> tuple[str, str | None, bool] | None:
        """``(loop node, its count text or None, whether the event is one of its items)``, or
        None for an event that is not about a loop."""
        loop = self.loops.get(node)
        if loop is None:
            m = _ITEM.match(node)
            parent = m.group(1) if m else None
            if parent is None or (self.loops.get(parent) or {}).get("kind") != "foreach":
                return None
            if kind in ("node_end", "node_error"):
                c = self._done.setdefault((key, parent), [0, None])
                c[0] += 1
                self._text[(key, parent)] = f"{c[0]}/{c[1] if c[1] is not None else '?'}"
            return parent, self._text.get((key, parent)), True
        if loop.get("kind") == "foreach" and kind == "node_start":
            total = len(data) if isinstance(data, (list, tuple)) else None
            self._done[(key, node)] = [0, total]
            self._text[(key, node)] = f"0/{total if total is not None else '?'}"
        elif loop.get("kind") == "while" and kind == "node_end" and isinstance(data, Mapping):
            i = data.get(f"{node}.iteration")
            if isinstance(i, int) and i > 0:
                self._text[(key, node)] = f"{i}/{loop.get('max_iterations', '?')}"
        return node, self._text.get((key, node)), False
