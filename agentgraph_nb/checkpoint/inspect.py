"""A store's threads at a glance: ``inspect_store(url)`` in a notebook (a pandas DataFrame), the
same rows as ``agentgraph inspect URL`` prints on the command line."""

from __future__ import annotations

import builtins
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentgraph_nb.checkpoint.base import BaseCheckpointer

__all__ = ["inspect_store", "thread_rows"]

COLUMNS = ("thread", "checkpoints", "step", "updated", "next", "interrupted", "bytes")


def thread_rows(store: BaseCheckpointer) -> builtins.list[dict[str, Any]]:
    """One dict per thread, oldest thread first: ``thread``, ``checkpoints`` (how many are stored),
    ``step`` and ``updated`` (of its newest checkpoint: the step and when it was written, ISO
    8601 UTC), ``next`` (the nodes it would run next; empty when done), ``interrupted`` (it waits
    for an answer to an ``interrupt``) and ``bytes`` (content stored for it; None for the
    in-memory store)."""
    from agentgraph_nb.graph._subgraph import is_derived

    rows = []
    for t in store.list_threads():
        if is_derived(t):  # a subgraph's checkpoints (graph/_subgraph.py): part of its parent thread
            continue
        recs = builtins.list(store.list(t))
        newest = recs[0] if recs else None
        waiting = newest is not None and (
            bool(newest.interrupts) or any(pw.node == "__interrupt__" for pw in newest.pending_writes))
        rows.append({
            "thread": t,
            "checkpoints": len(recs),
            "step": newest.step if newest else None,
            "updated": newest.created_at if newest else None,
            "next": [n[0] for n in newest.next] if newest else [],
            "interrupted": waiting,
            "bytes": store.stored_bytes(t),
        })
    return rows


def inspect_store(store: str | os.PathLike[str] | BaseCheckpointer) -> Any:
    """A store's threads as a pandas DataFrame, one row per thread (index: the thread id): how
    many checkpoints, the last step, when it was written (``updated``, a UTC timestamp), what
    runs next, whether it waits on an interrupt, and the bytes stored. The notebook's view of
    ``agentgraph inspect URL``; works on every store (memory, SQLite, PostgreSQL, Redis, or
    yours).

    Args:
        store: a store URL as ``compile(checkpointer=...)`` takes it, or a store object.

    Returns:
        A ``pandas.DataFrame`` with columns ``checkpoints``, ``step``, ``updated``, ``next``,
        ``interrupted``, ``bytes`` (empty when the store has no threads).

    Raises:
        MissingDependencyError: pandas is not installed (extra ``notebook``).
        CheckpointError: the store cannot be read (the message names it).

    Example:
        >>> inspect_store("postgresql://me:pw@db:5432/agents")
                 checkpoints  step                          updated    next  interrupted  bytes
        thread
        t-1                4     3 2026-12-05 08:00:01.123456+00:00      []        False   1822
    """
    from agentgraph_nb._lazy import requires_extra
    from agentgraph_nb.checkpoint import open_checkpointer

    with requires_extra("inspect_store()"):
        import pandas as pd

    opened = open_checkpointer(store)
    try:
        rows = thread_rows(opened)
    finally:
        if opened is not store:
            opened.close()
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["updated"] = pd.to_datetime(df["updated"], utc=True, format="ISO8601")
    df["bytes"] = df["bytes"].astype("Int64")
    df["step"] = df["step"].astype("Int64")
    return df.set_index("thread")
