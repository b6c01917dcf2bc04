"""The checkpointer protocol: what a store must do, and the record it stores.

A store keeps, per thread, a tree of :class:`CheckpointRecord` (one per superstep, plus one for
the input; forks make branches). A record holds the *writes* merged at its step and, every so
often, a full snapshot of the values; the engine rebuilds any state from the nearest snapshot by
replaying writes through the reducers (see :meth:`BaseCheckpointer.get_chain`). So a long run
stores bytes proportional to its steps, not to steps times state size.

Writing a new store means subclassing :class:`BaseCheckpointer` in one file and implementing
``put``, ``put_writes``, ``get``, ``list``, ``list_threads`` and ``delete_thread``.
"""

from __future__ import annotations

import builtins
import itertools
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "BaseCheckpointer",
    "CheckpointRecord",
    "Durability",
    "PendingWrite",
    "new_checkpoint_id",
    "new_checkpoint_stamp",
]

Durability = Literal["sync", "async", "exit"]

_counter = itertools.count()
_pid = os.getpid() & 0xFFFF


def new_checkpoint_id() -> str:
    """A new id that sorts by creation time (then by a per-process counter)."""
    return f"{time.time_ns():016x}-{_pid:04x}-{next(_counter) & 0xFFFFFF:06x}"


_second: tuple[int, str] = (-1, "")  # the last second formatted, shared by the threads (swapped whole)


def new_checkpoint_stamp() -> tuple[str, str]:
    """A new checkpoint id (as :func:`new_checkpoint_id`) and its creation time in ISO 8601, UTC
    (``2026-11-24T08:23:45.123456+00:00``), from one clock reading: a step's checkpoint
    formats its date once a second, not once a step."""
    global _second
    ns = time.time_ns()
    sec, frac = divmod(ns, 1_000_000_000)
    cached = _second
    if cached[0] != sec:
        cached = _second = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    return (f"{ns:016x}-{_pid:04x}-{next(_counter) & 0xFFFFFF:06x}",
            f"{cached[1]}.{frac // 1000:06d}+00:00")


@dataclass
class PendingWrite:
    """The saved result of one task of a superstep that has not completed as a whole.

    When one of several parallel nodes fails or interrupts, the others' results are kept as
    pending writes on the checkpoint *before* the step, so resuming runs only the rest. They are
    read in the order saved: a later write of a task replaces an earlier one, and one named
    ``"__error__"`` marks the task's saved result as failed (its write could not be merged), so
    that it runs again. ``"__interrupt__"`` and ``"__resume__"`` writes record the step's
    interrupts and the answers given to them.

    Attributes:
        task_index: the task's position in the checkpoint's ``next`` list.
        node: the node name.
        update: the node's update (a dict or None), as merged later.
        goto: names/`Send` targets chosen by the node (routers, Command.goto), as
            ``[node, arg]`` pairs with ``arg`` None for a plain trigger.
    """

    task_index: int
    node: str
    update: Any
    goto: list[Any] = field(default_factory=list)


@dataclass
class CheckpointRecord:
    """One checkpoint, as stored.

    Attributes:
        thread_id: the thread.
        checkpoint_id: sortable id (see :func:`new_checkpoint_id`).
        parent_id: the checkpoint this one was derived from (None for a thread's first).
        step: superstep number; 0 is the input.
        created_at: ISO-8601 UTC time.
        writes: ``[node, update]`` pairs merged into the parent's values, in merge order.
            For the input checkpoint: ``[["__input__", input]]``.
        values: a full snapshot of the values, or None when only ``writes`` are stored.
        next: the tasks to run next, as ``[node, arg]`` pairs; ``arg`` is the ``Send`` payload
            or None for a task that reads the state.
        barriers: progress of joins: ``{join_key: [source nodes seen]}``.
        interrupts: pending interrupts as dicts ``{"value", "id", "node", "when"}``.
        resume: answers given to interrupts of the pending tasks, ``{interrupt_id: value}``,
            plus ``{"task:<i>": [values...]}`` ordered answers per task.
        metadata: ``{"source": "input"|"loop"|"update"|"fork", "run_id": ..., ...}``. A
            ``"fork"`` is the first checkpoint of a replay of an older checkpoint that paused
            or failed before its first step completed: a copy of that position, with
            ``"fork_of"`` naming the checkpoint whose step it runs (its interrupts keep their ids);
            an ``"update"`` of a paused or failed step carries ``"fork_of"`` as well.
        pending_writes: results of tasks in ``next`` that already completed.
    """

    thread_id: str
    checkpoint_id: str
    parent_id: str | None
    step: int
    created_at: str
    writes: list[Any]
    values: dict[str, Any] | None
    next: list[Any]
    barriers: dict[str, list[str]] = field(default_factory=dict)
    interrupts: list[dict[str, Any]] = field(default_factory=list)
    resume: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    pending_writes: list[PendingWrite] = field(default_factory=list)


class BaseCheckpointer:
    """Protocol of a checkpoint store. Subclasses implement the six storage methods.

    Attributes:
        snapshot_every: store full values every this many steps along a branch; records in
            between store only their writes. ``1`` stores a snapshot every step (the in-memory
            store does, since a snapshot there is just a reference).
        durability: default durability for runs using this store (``"sync"``, ``"async"`` or
            ``"exit"``); a call's ``durability=`` overrides it.
    """

    snapshot_every: int = 1
    durability: Durability = "sync"

    # -- storage: implement these -------------------------------------------------------------
    def put(self, record: CheckpointRecord) -> None:
        """Store a new checkpoint (never overwrites: ids are unique)."""
        raise NotImplementedError

    def put_writes(self, thread_id: str, checkpoint_id: str, writes: Sequence[PendingWrite]) -> None:
        """Attach pending writes to an existing checkpoint (appending)."""
        raise NotImplementedError

    def get(self, thread_id: str, checkpoint_id: str | None = None) -> CheckpointRecord | None:
        """The checkpoint with that id (the thread's newest when None), with its pending
        writes; None when there is none."""
        raise NotImplementedError

    def list(
        self,
        thread_id: str,
        *,
        before: str | None = None,
        limit: int | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> Iterator[CheckpointRecord]:
        """A thread's checkpoints, newest first, optionally only those created before the
        checkpoint ``before`` and whose metadata contains ``metadata_filter``."""
        raise NotImplementedError

    def list_threads(self) -> builtins.list[str]:
        """All thread ids with at least one checkpoint."""
        raise NotImplementedError

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread and everything stored for it."""
        raise NotImplementedError

    # -- optional -------------------------------------------------------------------------------
    def put_many(self, records: Sequence[CheckpointRecord]) -> None:
        """Store several records at once (used by ``durability="exit"``); one transaction
        where the store has them."""
        for r in records:
            self.put(r)

    def put_nowait(self, record: CheckpointRecord) -> None:
        """Hand a record over for writing in the background (``durability="async"``).
        Stores without a background writer write it now; :meth:`flush` waits for the rest."""
        self.put(record)

    def get_chain(self, thread_id: str, checkpoint_id: str | None = None) -> builtins.list[CheckpointRecord]:
        """Records from the nearest ancestor with a snapshot down to the requested checkpoint
        (oldest first). Empty when the checkpoint does not exist. Stores may override this with
        a single query."""
        rec = self.get(thread_id, checkpoint_id)
        chain: builtins.list[CheckpointRecord] = []
        while rec is not None:
            chain.append(rec)
            if rec.values is not None or rec.parent_id is None:
                break
            rec = self.get(thread_id, rec.parent_id)
        chain.reverse()
        return chain

    def flush(self) -> None:
        """Wait until everything handed to the store is durably written."""

    def close(self) -> None:
        """Release resources (connections, threads). The store may not be used afterwards."""

    def __enter__(self) -> BaseCheckpointer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
