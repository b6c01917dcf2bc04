"""Many :class:`~agentgraph_nb.engine.interrupt_scope` objects at once (a for-each's items): one
look up the stack for the running node instead of one per scope."""

from __future__ import annotations

from collections.abc import Sequence

from agentgraph_nb.engine._loop import Run, _find_scratch, _ScopedScratch, interrupt_scope

__all__ = ["interrupt_scopes"]


def interrupt_scopes(keys: Sequence[str]) -> list[interrupt_scope] | None:
    """``[interrupt_scope(k) for k in keys]``, made in the running node (None outside one)."""
    parent = _find_scratch(2)
    if parent is None:
        return None
    run = parent if isinstance(parent, Run) else parent.run
    base = parent.parent if isinstance(parent, _ScopedScratch) else parent
    node = parent.node
    out: list[interrupt_scope] = []
    new = interrupt_scope.__new__
    for key in keys:
        s = new(interrupt_scope)
        s._scratch = _ScopedScratch(run, node, f"{parent.index}/{key}", base)
        s._token = None
        out.append(s)
    return out
