"""Executors beyond one process (extra ``ray``).

``app.invoke(input, executor="ray")`` runs each node execution as a Ray task while the engine
(merging, retries, timeouts, interrupts, checkpoints, events) stays in this process;
``app.batch(inputs, executor="ray")`` runs many such runs at once. ``RayExecutor(address=...)``
joins a given cluster; :class:`LocalRayCluster` starts a throwaway one of several nodes on this
machine (notebooks, tests). Importing this package imports no Ray.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LocalRayCluster", "RayExecutor", "default_executor", "resolve_executor"]

_NAMES = {
    "RayExecutor": "agentgraph_nb.distributed._ray",
    "default_executor": "agentgraph_nb.distributed._ray",
    "resolve_executor": "agentgraph_nb.distributed._ray",
    "LocalRayCluster": "agentgraph_nb.distributed._local",
}


def __getattr__(name: str) -> Any:
    mod = _NAMES.get(name)
    if mod is None:
        raise AttributeError(f"module 'agentgraph_nb.distributed' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value
