"""The compiled graph's side of runtimes: check a run's ``context=`` against the graph's
``context_schema`` and give the run its :class:`~agentgraph_nb.runtime.Runtime`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentgraph_nb.errors import InvalidInputError

if TYPE_CHECKING:
    from agentgraph_nb.graph.compiled import CompiledGraph
    from agentgraph_nb.runtime import Runtime

__all__ = ["child_runtime", "runtime_for"]


def _check_context(app: CompiledGraph, context: Any) -> None:
    cls = app.context_schema
    if cls is None or context is None:
        return
    if isinstance(cls, type):
        if getattr(cls, "__total__", None) is not None and hasattr(cls, "__annotations__"):  # a TypedDict
            ok = isinstance(context, dict)
        else:
            ok = isinstance(context, cls)
        if not ok:
            raise InvalidInputError(
                f"graph {app.name!r}: context= must be a {cls.__name__} (its context_schema), "
                f"got {type(context).__name__}"
            )


def runtime_for(app: CompiledGraph, context: Any) -> Runtime[Any]:
    """The runtime of a run of ``app`` with ``context``."""
    _check_context(app, context)
    base = app._runtime
    if base is None:
        from agentgraph_nb.runtime import Runtime

        return Runtime(context=context)
    return base if context is None else base.override(context=context)


def child_runtime(parent: Runtime[Any], own: Runtime[Any] | None) -> Runtime[Any]:
    """A subgraph run's runtime: its own resources (if it declared any) with the parent's context."""
    if own is None:
        return parent
    return own if parent.context is None else own.override(context=parent.context)
