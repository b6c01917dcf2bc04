"""Reserved node names: the virtual entry and exit of every graph."""

from __future__ import annotations

from typing import Final

__all__ = ["END", "START"]

START: Final = "__start__"
"""The virtual first node: ``add_edge(START, "plan")`` makes ``plan`` run first."""

END: Final = "__end__"
"""The virtual last node: an edge to ``END`` ends that branch of the run."""

RESERVED: Final = frozenset({START, END})
