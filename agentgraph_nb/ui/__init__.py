"""Widget classes (the Python side of the front ends in ``widgets/``).

Each widget is imported on first use, so ``import agentgraph_nb.ui`` stays cheap and does not
pull in ipywidgets until a widget is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentgraph_nb.ui.dashboard import Dashboard
    from agentgraph_nb.ui.debugger import Debugger
    from agentgraph_nb.ui.graphview import GraphView
    from agentgraph_nb.ui.timeline import Timeline

__all__ = ["Dashboard", "Debugger", "GraphView", "Timeline"]

_LAZY = {
    "GraphView": "agentgraph_nb.ui.graphview",
    "Debugger": "agentgraph_nb.ui.debugger",
    "Timeline": "agentgraph_nb.ui.timeline",
    "Dashboard": "agentgraph_nb.ui.dashboard",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from agentgraph_nb._lazy import requires_extra

    with requires_extra(f"agentgraph_nb.ui.{name}"):
        return getattr(importlib.import_module(module), name)
