"""The checkpointer protocol: what a store must do, and the record it stores.

A store keeps, per thread, a tree of :class:`CheckpointRecord` (one per superstep, plus one for
the input; forks make branches). A record holds the *writes* merged at its step and, every so
often, a full snapshot of the values; the engine rebuilds any state from the nearest snapshot by
replaying writes through the reducers (see :meth:`BaseCheckpointer.get_chain`). So a long run
stores bytes proportional to its steps, not to steps times state size.

Writing a new store means subclassing :class:`BaseCheckpointer` in one file and implementing
``put``, ``put_writes``, ``get``, ``list``, ``list_threads`` and ``delete_thread`` (and
``delete_checkpoints`` for retention); the async twins come for free, and
:func:`agentgraph_nb.testing.store_conformance` checks the result. A store that
decodes records from bytes checks them with :func:`record_problem` and
:func:`pending_write_problem`, so a damaged row is a ``CheckpointError`` naming the field.

**One writer per thread at a time** (optimistic concurrency). A thread's *newest* checkpoint is
the one stored last. Every writer (a run, ``update_state``) remembers which checkpoint it last saw
as the thread's newest: the newest when it loaded the thread (``None`` for a thread without
checkpoints), then each checkpoint it wrote itself. It passes that as ``expected=`` to each write,
and the store compares it with the thread's newest and inserts *in one atomic step*, or raises
:class:`~agentgraph_nb.errors.CheckpointConflictError` and stores nothing. The record's
``parent_id`` need not be ``expected``: a fork (``invoke(None, checkpoint_id=older)``,
``update_state(..., checkpoint_id=older)``) writes a child of an older checkpoint, and is checked
against the newest all the same. So of two writers racing on one thread, the first to write wins
and goes on; the other's write fails, its earlier checkpoints stay stored (a branch of the
history), and its caller gets the error. A store that checks sets
:attr:`BaseCheckpointer.checks_conflicts`; see there for what it must do. ``put_writes`` is not
checked: it attaches results to an existing checkpoint, which forks nothing (pending writes count
only on the thread's newest checkpoint, and the writer's next ``put`` meets the conflict).

**Async beside sync.** Every storage method has an ``a``-prefixed coroutine twin (``aput``,
``aput_writes``, ``aget``, ``alist``, ...), which ``ainvoke``/``astream`` await so that a store
never blocks the event loop. The defaults here run the sync method on a worker thread
(:func:`asyncio.to_thread`), so a sync-only store works unchanged; network stores (Postgres,
Redis) override them with native async I/O. A store whose sync methods are quick and never wait
on a network sets :attr:`BaseCheckpointer.inline_ok`: the engine's async path then calls its sync
methods directly, since a thread hop would cost more than the write (memory, SQLite).

**Retention.** :meth:`BaseCheckpointer.prune` deletes a thread's old checkpoints by a
:class:`Retention` policy (keep the last N, or those newer than T), never one that a kept
checkpoint needs to rebuild its state; a store's ``retention=`` applies it after each run.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import enum
import itertools
import os
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from agentgraph_nb.errors import CheckpointError

__all__ = [
    "NO_CHECK",
    "BaseCheckpointer",
    "CheckpointRecord",
    "Durability",
    "Expected",
    "PendingWrite",
    "Retention",
    "broken_chain_error",
    "cycle_error",
    "find_parent_cycle",
    "new_checkpoint_id",
    "new_checkpoint_stamp",
    "pending_write_problem",
    "record_problem",
]

Durability = Literal["sync", "async", "exit"]


class _NoCheck(enum.Enum):
    NO_CHECK = "NO_CHECK"


NO_CHECK: Final = _NoCheck.NO_CHECK
"""``expected=NO_CHECK`` (the default): write without comparing the thread's newest checkpoint."""

Expected = str | None | Literal[_NoCheck.NO_CHECK]
"""What a write expects the thread's newest checkpoint to be: its id, ``None`` (no checkpoint
yet) or :data:`NO_CHECK`."""

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

    Interrupts raised by the step and the answers given to them are pending writes too, of the
    reserved nodes ``"__interrupt__"`` (update ``{"value", "id", "node", "when"}``) and
    ``"__resume__"`` (update ``{"id", "value"}``).

    Attributes:
        task_index: the task's position in the checkpoint's ``next`` list.
        node: the node name.
        update: the node's update (a dict or None), as merged later.
        goto: names/`Send` targets chosen by the node (routers, Command.goto), as
            ``[node, arg]`` pairs, or ``[node]`` for a plain trigger.
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


def _what(value: Any) -> str:
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"


def _task_problem(field_: str, items: Any) -> str | None:
    """``items`` must be a list of ``[node]`` or ``[node, arg]`` lists."""
    if type(items) is not list:
        return f"{field_} is {_what(items)}, not a list of [node, arg] pairs"
    for i, t in enumerate(items):
        if type(t) is not list or not 1 <= len(t) <= 2 or type(t[0]) is not str:
            return f"{field_}[{i}] is {_what(t)}, not a [node, arg] pair naming a node"
    return None


def record_problem(rec: CheckpointRecord) -> str | None:
    """What is wrong with the shape of a record read back from a store, or None.

    Stored bytes can be damaged or edited into values that decode but are not what the engine
    reads (``writes`` not a list of ``[node, update]`` pairs, ``values`` not a dict, ...); a
    store that decodes records calls this on each, so that such a row is a ``CheckpointError``
    naming the field instead of an ``IndexError`` deep in the engine. A few type checks per
    field: cheap enough for every read.

    Returns:
        The offending field and what it holds, e.g. ``"writes[1] is an int, not a [node,
        update] pair"``; None for a well-formed record.

    Example:
        >>> problem = record_problem(rec)
        >>> if problem:
        ...     raise CheckpointError(f"checkpoint {rec.checkpoint_id!r} of {path}: {problem}")
    """
    # Read on every record a store decodes: each field once, messages only for a bad one.
    cid, step, parent, created = rec.checkpoint_id, rec.step, rec.parent_id, rec.created_at
    writes, values, barriers, interrupts = rec.writes, rec.values, rec.barriers, rec.interrupts
    if type(cid) is not str:
        return f"checkpoint_id is {_what(cid)}, not a str"
    if type(step) is not int:
        return f"step is {_what(step)}, not an int"
    if parent is not None and type(parent) is not str:
        return f"parent_id is {_what(parent)}, not a str"
    if type(created) is not str:
        return f"created_at is {_what(created)}, not a str"
    if type(writes) is not list:
        return f"writes is {_what(writes)}, not a list of [node, update] pairs"
    for i, w in enumerate(writes):
        if type(w) is not list or len(w) != 2 or type(w[0]) is not str:
            return f"writes[{i}] is {_what(w)}, not a [node, update] pair"
        if w[1] is not None and type(w[1]) is not dict:
            return f"writes[{i}] holds {_what(w[1])} where the update dict should be"
    if values is not None and type(values) is not dict:
        return f"values is {_what(values)}, not a dict"
    problem = _task_problem("next", rec.next)
    if problem is not None:
        return problem
    if type(barriers) is not dict:
        return f"barriers is {_what(barriers)}, not a dict"
    for key, seen in barriers.items():
        if type(seen) is not list or not all(type(n) is str for n in seen):
            return f"barriers[{key!r}] is {_what(seen)}, not a list of node names"
    if type(interrupts) is not list or (
        interrupts and not all(type(i) is dict for i in interrupts)
    ):
        return f"interrupts is {_what(interrupts)}, not a list of dicts"
    if type(rec.resume) is not dict:
        return f"resume is {_what(rec.resume)}, not a dict"
    if type(rec.metadata) is not dict:
        return f"metadata is {_what(rec.metadata)}, not a dict"
    return None


def pending_write_problem(pw: PendingWrite) -> str | None:
    """What is wrong with the shape of a pending write read back from a store, or None.

    The companion of :func:`record_problem`, e.g. ``"pending write of node 'a': goto is a
    dict, not a list of [node, arg] pairs"``.
    """
    node, update = pw.node, pw.update
    if type(node) is not str:
        return f"a pending write's node is {_what(node)}, not a str"
    problem = None
    if type(pw.task_index) is not int:
        problem = f"task_index is {_what(pw.task_index)}, not an int"
    elif update is not None and type(update) is not dict:
        problem = f"update is {_what(update)}, not a dict"
    elif node in _RESERVED and (
        update is None or type(update.get("id")) is not str or "value" not in update
    ):
        problem = "update is not a dict with an 'id' and a 'value'"
    else:
        problem = _task_problem("goto", pw.goto)
    return None if problem is None else f"pending write of node {node!r}: {problem}"


_RESERVED = frozenset({"__interrupt__", "__resume__"})  # pending writes of interrupts, answers


async def _to_thread(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    import asyncio  # imported on first use: ``import agentgraph_nb`` stays fast

    return await asyncio.to_thread(fn, *args, **kwargs)


@dataclass(frozen=True)
class Retention:
    """Which of a thread's checkpoints to keep: the newest ``keep_last``, and/or those newer
    than ``max_age`` seconds. With both, a checkpoint goes only when it is outside the last
    ``keep_last`` *and* older than ``max_age``. The thread's newest checkpoint always stays, and
    so does every checkpoint a kept one needs to rebuild its state (its ancestors up to the
    nearest full snapshot), so pruning never breaks ``get_state`` of a kept checkpoint.

    Attributes:
        keep_last: keep at least this many of the newest checkpoints (``None``: no count limit).
        max_age: keep checkpoints created less than this many seconds ago (``None``: no age limit).

    Example:
        >>> store = SqliteCheckpointer("runs.db", retention=Retention(keep_last=100))
        >>> store.prune("t1", Retention(max_age=7 * 86400))   # or once, by hand
    """

    keep_last: int | None = None
    max_age: float | None = None

    def __post_init__(self) -> None:
        if self.keep_last is None and self.max_age is None:
            raise ValueError("Retention needs keep_last=, max_age= or both")
        if self.keep_last is not None and (not isinstance(self.keep_last, int) or self.keep_last < 1):
            raise ValueError(f"Retention(keep_last=...) must be an int >= 1, got {self.keep_last!r}")
        if self.max_age is not None and not (isinstance(self.max_age, (int, float)) and self.max_age > 0):
            raise ValueError(f"Retention(max_age=...) must be a number of seconds > 0, got {self.max_age!r}")

    def doomed(self, records: Sequence[CheckpointRecord], now: float | None = None) -> builtins.list[str]:
        """The ids among ``records`` (a thread's, newest first) that this policy deletes."""
        if not records:
            return []
        cutoff = None
        if self.max_age is not None:
            t = time.time() if now is None else now
            cutoff = _dt.datetime.fromtimestamp(t - self.max_age, _dt.timezone.utc).isoformat()
        keep: set[str] = {records[0].checkpoint_id}
        for i, r in enumerate(records):
            by_count = self.keep_last is not None and i < self.keep_last
            by_age = cutoff is not None and r.created_at >= cutoff
            if self.keep_last is not None and cutoff is not None:
                if by_count or by_age:
                    keep.add(r.checkpoint_id)
            elif by_count or by_age:
                keep.add(r.checkpoint_id)
        by_id = {r.checkpoint_id: r for r in records}
        for cid in list(keep):  # a kept checkpoint keeps its chain down to a snapshot
            rec = by_id[cid]
            seen = 0
            while rec.values is None and rec.parent_id in by_id and seen <= len(by_id):
                rec = by_id[rec.parent_id]
                keep.add(rec.checkpoint_id)
                seen += 1
        return [r.checkpoint_id for r in records if r.checkpoint_id not in keep]


class BaseCheckpointer:
    """Protocol of a checkpoint store. Subclasses implement the six storage methods.

    Attributes:
        snapshot_every: store full values every this many steps along a branch; records in
            between store only their writes. ``1`` stores a snapshot every step (the in-memory
            store does, since a snapshot there is just a reference).
        durability: default durability for runs using this store (``"sync"``, ``"async"`` or
            ``"exit"``); a call's ``durability=`` overrides it.
        checks_conflicts: the store takes ``expected=`` in :meth:`put`, :meth:`put_many` and
            :meth:`put_nowait` and ``checkpoint_id=`` in :meth:`flush` (see the module's
            docstring for the rule). Such a store must:

            - compare ``expected`` with the thread's newest checkpoint and insert atomically
              (one transaction, or a lock every writer of the store takes, across processes for
              a store processes share), raising ``CheckpointConflictError(thread_id=...,
              expected=..., actual=<the newest found>, checkpoint_id=<the record's>)`` and
              storing nothing when they differ; ``expected=NO_CHECK`` writes unchecked;
            - in :meth:`put_many`, compare once, before the first record, and store all the
              records or none;
            - in :meth:`put_nowait`, when it checks later (in the background), refuse any later
              record whose ``expected`` is a refused checkpoint (with the first error), and report
              the error to that writer only: from its next :meth:`put_nowait` (whose ``expected``
              is the refused checkpoint) or from ``flush(checkpoint_id=<a refused one>)``,
              never from another writer's calls.

            A store without it (written before it existed) still works: the engine calls it as
            before, and checks the newest with :meth:`get` just before each ``"sync"`` write and
            each ``"exit"`` batch, which narrows the race without closing it; its ``"async"``
            writes go unchecked.
    """

    snapshot_every: int = 1
    durability: Durability = "sync"
    checks_conflicts: bool = False
    inline_ok: bool = False
    """The sync methods are quick and never wait on a network: the engine's async path calls
    them on the event loop instead of awaiting the ``a``-methods (memory, SQLite)."""
    retention: Retention | None = None
    """Applied to a thread by :meth:`prune` at the end of each run that wrote it."""

    # -- storage: implement these -------------------------------------------------------------
    def put(self, record: CheckpointRecord, *, expected: Expected = NO_CHECK) -> None:
        """Store a new checkpoint (never overwrites: ids are unique).

        Args:
            record: the checkpoint.
            expected: the thread's newest checkpoint as the writer last saw it (``None``: the
                thread has none); the default writes without checking.

        Raises:
            CheckpointConflictError: the thread's newest checkpoint is not ``expected``; nothing
                was stored.
        """
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
    def put_many(self, records: Sequence[CheckpointRecord], *, expected: Expected = NO_CHECK) -> None:
        """Store several records at once (used by ``durability="exit"``); one transaction
        where the store has them.

        With ``expected``, the records are one writer's, of one thread, in order: the thread's
        newest must be ``expected`` before the first. This default implementation checks each
        record against the one before it (all or nothing needs the store's transactions).
        """
        for r in records:
            if expected is NO_CHECK:
                self.put(r)
            else:
                self.put(r, expected=expected)
                expected = r.checkpoint_id

    def put_nowait(self, record: CheckpointRecord, *, expected: Expected = NO_CHECK) -> None:
        """Hand a record over for writing in the background (``durability="async"``).
        Stores without a background writer write it now; :meth:`flush` waits for the rest."""
        if expected is NO_CHECK:
            self.put(record)
        else:
            self.put(record, expected=expected)

    def get_chain(self, thread_id: str, checkpoint_id: str | None = None) -> builtins.list[CheckpointRecord]:
        """Records from the nearest ancestor with a snapshot down to the requested checkpoint
        (oldest first). Empty when the checkpoint does not exist. Stores may override this with
        a single query.

        Raises:
            CheckpointError: the parent links form a cycle, or name a missing checkpoint before
                a snapshot was found (a damaged store); found within as many reads as the
                chain has records.
        """
        rec = self.get(thread_id, checkpoint_id)
        chain: builtins.list[CheckpointRecord] = []
        seen: set[str] = set()
        while rec is not None:
            if rec.checkpoint_id in seen:
                raise cycle_error(self, thread_id, [*(r.checkpoint_id for r in chain), rec.checkpoint_id])
            seen.add(rec.checkpoint_id)
            chain.append(rec)
            if rec.values is not None or rec.parent_id is None:
                break
            parent = self.get(thread_id, rec.parent_id)
            if parent is None:
                raise broken_chain_error(self, thread_id, chain[0].checkpoint_id, rec.checkpoint_id, rec.parent_id)
            rec = parent
        chain.reverse()
        return chain

    def flush(self, checkpoint_id: str | None = None) -> None:
        """Wait until everything handed to the store is durably written.

        Args:
            checkpoint_id: a checkpoint this writer handed to :meth:`put_nowait` (its last):
                raise the :class:`~agentgraph_nb.errors.CheckpointConflictError` that refused
                it, if one did (stores with :attr:`checks_conflicts` only).
        """

    def delete_checkpoints(self, thread_id: str, checkpoint_ids: Sequence[str]) -> None:
        """Delete some checkpoints of a thread, with their pending writes (used by
        :meth:`prune`). Stores that support retention implement it."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete single checkpoints")

    def prune(self, thread_id: str, retention: Retention | None = None) -> int:
        """Delete the checkpoints of a thread that ``retention`` (default: the store's
        :attr:`retention`) does not keep; returns how many were deleted.

        Example:
            >>> store.prune("t1", Retention(keep_last=10))
            42
        """
        policy = retention if retention is not None else self.retention
        if policy is None:
            return 0
        self.flush()
        doomed = policy.doomed(builtins.list(self.list(thread_id)))
        if doomed:
            self.delete_checkpoints(thread_id, doomed)
        return len(doomed)

    def stored_bytes(self, thread_id: str) -> int | None:
        """How many bytes of content the store keeps for a thread (its checkpoints' and pending
        writes' blobs; None for a store that keeps objects, not bytes). ``inspect_store`` shows it."""
        return None

    def reencrypt(self, thread_id: str | None = None) -> int:
        """Rewrite stored records with the serializer's active key (and its compression), after
        a key rotation: ``Serializer(keys={"k2": new, "k1": old}, active_key="k2")``. Records
        already under the active key are left alone, so it can be run again after an
        interruption. Writers may keep running meanwhile (their new records use the active key).

        Args:
            thread_id: just this thread; None: every thread of the store.

        Returns:
            How many blobs were rewritten.

        Raises:
            CheckpointError: a record cannot be decrypted (its key is missing: the message names
                the key id and the thread).
            NotImplementedError: the store keeps no bytes it could rewrite.

        Example:
            >>> store = SqliteCheckpointer("runs.db", serializer=Serializer(
            ...     keys={"k2": new_key, "k1": old_key}, active_key="k2"))
            >>> store.reencrypt()       # now "k1" can be retired
            128
        """
        raise NotImplementedError(f"{type(self).__name__} cannot re-encrypt its records")

    def close(self) -> None:
        """Release resources (connections, threads). The store may not be used afterwards."""

    # -- async twins: a worker thread by default; network stores override them -----------------
    async def aput(self, record: CheckpointRecord, *, expected: Expected = NO_CHECK) -> None:
        """Async :meth:`put`."""
        if expected is NO_CHECK:  # a store from before the check takes no expected=
            await _to_thread(self.put, record)
        else:
            await _to_thread(self.put, record, expected=expected)

    async def aput_many(self, records: Sequence[CheckpointRecord], *, expected: Expected = NO_CHECK) -> None:
        """Async :meth:`put_many`."""
        if expected is NO_CHECK:  # a store from before the check takes no expected=
            await _to_thread(self.put_many, records)
        else:
            await _to_thread(self.put_many, records, expected=expected)

    async def aput_nowait(self, record: CheckpointRecord, *, expected: Expected = NO_CHECK) -> None:
        """Async :meth:`put_nowait`."""
        if expected is NO_CHECK:  # a store from before the check takes no expected=
            await _to_thread(self.put_nowait, record)
        else:
            await _to_thread(self.put_nowait, record, expected=expected)

    async def aput_writes(self, thread_id: str, checkpoint_id: str, writes: Sequence[PendingWrite]) -> None:
        """Async :meth:`put_writes`."""
        await _to_thread(self.put_writes, thread_id, checkpoint_id, writes)

    async def aget(self, thread_id: str, checkpoint_id: str | None = None) -> CheckpointRecord | None:
        """Async :meth:`get`."""
        return await _to_thread(self.get, thread_id, checkpoint_id)

    async def aget_chain(self, thread_id: str, checkpoint_id: str | None = None) -> builtins.list[CheckpointRecord]:
        """Async :meth:`get_chain`."""
        return await _to_thread(self.get_chain, thread_id, checkpoint_id)

    async def alist(
        self,
        thread_id: str,
        *,
        before: str | None = None,
        limit: int | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> AsyncIterator[CheckpointRecord]:
        """Async :meth:`list` (this default reads the whole list on a worker thread first)."""
        recs = await _to_thread(
            lambda: builtins.list(self.list(thread_id, before=before, limit=limit, metadata_filter=metadata_filter))
        )
        for r in recs:
            yield r

    async def alist_threads(self) -> builtins.list[str]:
        """Async :meth:`list_threads`."""
        return await _to_thread(self.list_threads)

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread`."""
        await _to_thread(self.delete_thread, thread_id)

    async def aflush(self, checkpoint_id: str | None = None) -> None:
        """Async :meth:`flush`."""
        if checkpoint_id is None:  # a store from before the check takes no checkpoint_id
            await _to_thread(self.flush)
        else:
            await _to_thread(self.flush, checkpoint_id)

    async def aprune(self, thread_id: str, retention: Retention | None = None) -> int:
        """Async :meth:`prune`."""
        return await _to_thread(self.prune, thread_id, retention)

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await _to_thread(self.close)

    def __enter__(self) -> BaseCheckpointer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- damaged parent links ---------------------------------------------------------------------------
_DAMAGED = (
    "A hand edit or a damaged file? Restore a backup, or delete the thread (delete_thread) to start "
    "it afresh."
)


def cycle_error(store: object, thread_id: str, path: Sequence[str]) -> CheckpointError:
    """The error for parent links that loop: ``path`` is the walk, ending with the first id seen
    twice."""
    loop = [*path[path.index(path[-1]) :]]
    return CheckpointError(
        f"checkpoint store {store!r} is damaged: the parent links of thread {thread_id!r} form a "
        f"cycle ({' -> '.join(repr(c) for c in loop)}), so the thread's history (and the state at "
        f"{path[0]!r}) cannot be read. {_DAMAGED}"
    )


def broken_chain_error(
    store: object, thread_id: str, start: str, checkpoint_id: str, parent_id: str
) -> CheckpointError:
    """The error for a parent link naming a missing checkpoint before any snapshot was found."""
    way = f"from {start!r} to it" if start != checkpoint_id else "on the way"
    return CheckpointError(
        f"checkpoint store {store!r} is damaged: checkpoint {checkpoint_id!r} of thread {thread_id!r} "
        f"names parent {parent_id!r}, which is missing, and no checkpoint {way} holds full values, "
        f"so the state at {start!r} cannot be rebuilt. {_DAMAGED}"
    )


def find_parent_cycle(parents: Mapping[str, str | None] | Iterable[CheckpointRecord]) -> list[str] | None:
    """A cycle of parent links among a thread's checkpoints, as the walk that closes it (the
    first id repeated at the end), or None. Linear in the number of checkpoints.

    Args:
        parents: ``{checkpoint_id: parent_id}``, or the thread's records.
    """
    if not isinstance(parents, Mapping):
        parents = {r.checkpoint_id: r.parent_id for r in parents}
    done: dict[str, bool] = {}  # False: on the current walk; True: leads to no cycle
    for start in parents:
        path: list[str] = []
        cur: str | None = start
        while cur is not None and cur in parents and cur not in done:
            done[cur] = False
            path.append(cur)
            cur = parents[cur]
        if cur is not None and done.get(cur) is False:
            return [*path[path.index(cur) :], cur]
        for c in path:
            done[c] = True
    return None
