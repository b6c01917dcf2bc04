"""In-memory checkpoint store: fast, per process, gone when the process ends."""

from __future__ import annotations

import builtins
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from agentgraph_nb.checkpoint.base import (
    NO_CHECK,
    BaseCheckpointer,
    CheckpointRecord,
    Expected,
    PendingWrite,
    Retention,
)
from agentgraph_nb.errors import CheckpointConflictError

__all__ = ["MemoryCheckpointer"]


class MemoryCheckpointer(BaseCheckpointer):
    """Keeps checkpoints in a dict. Values are stored by reference: the engine never mutates a
    state it has checkpointed, so a snapshot per step costs no copy.

    Its async methods (``aput``, ``aget``, ...) call the sync ones: nothing here waits.

    Args:
        retention: old checkpoints to delete after each run (see :class:`Retention`).

    Example:
        >>> app = graph.compile(checkpointer=MemoryCheckpointer())  # or checkpointer="memory"
    """

    snapshot_every = 1
    checks_conflicts = True
    inline_ok = True

    def __init__(self, *, retention: Retention | None = None) -> None:
        self.retention = retention
        self._threads: dict[str, dict[str, CheckpointRecord]] = {}
        self._lock = threading.Lock()  # every write compares and inserts under it

    def __repr__(self) -> str:
        return "MemoryCheckpointer()"

    def reencrypt(self, thread_id: str | None = None) -> int:
        """Nothing to do: this store keeps objects, never bytes. Returns 0."""
        return 0

    def _check(self, thread_id: str, record: CheckpointRecord, expected: Expected) -> None:
        recs = self._threads.get(thread_id)
        newest = next(reversed(recs)) if recs else None
        if newest != expected:
            raise CheckpointConflictError(
                thread_id=thread_id, expected=expected, actual=newest,  # type: ignore[arg-type]
                checkpoint_id=record.checkpoint_id, store=repr(self),
            )

    def put(self, record: CheckpointRecord, *, expected: Expected = NO_CHECK) -> None:
        with self._lock:
            if expected is not NO_CHECK:
                self._check(record.thread_id, record, expected)
            self._threads.setdefault(record.thread_id, {})[record.checkpoint_id] = record

    def put_many(self, records: Sequence[CheckpointRecord], *, expected: Expected = NO_CHECK) -> None:
        """Store the records all at once: with ``expected``, all or none."""
        with self._lock:
            if expected is not NO_CHECK and records:
                self._check(records[0].thread_id, records[0], expected)
            for r in records:
                self._threads.setdefault(r.thread_id, {})[r.checkpoint_id] = r

    def put_writes(self, thread_id: str, checkpoint_id: str, writes: Sequence[PendingWrite]) -> None:
        with self._lock:
            rec = self._threads.get(thread_id, {}).get(checkpoint_id)
            if rec is None:
                raise KeyError(f"no checkpoint {checkpoint_id!r} in thread {thread_id!r}")
            rec.pending_writes = [*rec.pending_writes, *writes]

    def get(self, thread_id: str, checkpoint_id: str | None = None) -> CheckpointRecord | None:
        with self._lock:
            recs = self._threads.get(thread_id)
            if not recs:
                return None
            if checkpoint_id is None:
                return recs[next(reversed(recs))]
            return recs.get(checkpoint_id)

    def list(
        self,
        thread_id: str,
        *,
        before: str | None = None,
        limit: int | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> Iterator[CheckpointRecord]:
        with self._lock:
            recs = list(self._threads.get(thread_id, {}).values())
        n = 0
        for rec in reversed(recs):
            if before is not None and rec.checkpoint_id >= before:
                continue
            if metadata_filter and any(rec.metadata.get(k) != v for k, v in metadata_filter.items()):
                continue
            if limit is not None and n >= limit:
                return
            n += 1
            yield rec

    def list_threads(self) -> builtins.list[str]:
        with self._lock:
            return list(self._threads)

    def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            self._threads.pop(thread_id, None)

    def delete_checkpoints(self, thread_id: str, checkpoint_ids: Sequence[str]) -> None:
        with self._lock:
            recs = self._threads.get(thread_id)
            if recs:
                for cid in checkpoint_ids:
                    recs.pop(cid, None)

    # nothing here waits: the async twins run the sync methods in place (no thread hop)
    async def aput(self, record: CheckpointRecord, *, expected: Expected = NO_CHECK) -> None:
        self.put(record, expected=expected)

    async def aput_many(self, records: Sequence[CheckpointRecord], *, expected: Expected = NO_CHECK) -> None:
        self.put_many(records, expected=expected)

    async def aput_nowait(self, record: CheckpointRecord, *, expected: Expected = NO_CHECK) -> None:
        self.put_nowait(record, expected=expected)

    async def aput_writes(self, thread_id: str, checkpoint_id: str, writes: Sequence[PendingWrite]) -> None:
        self.put_writes(thread_id, checkpoint_id, writes)

    async def aget(self, thread_id: str, checkpoint_id: str | None = None) -> CheckpointRecord | None:
        return self.get(thread_id, checkpoint_id)

    async def aget_chain(self, thread_id: str, checkpoint_id: str | None = None) -> builtins.list[CheckpointRecord]:
        return self.get_chain(thread_id, checkpoint_id)

    async def alist(
        self,
        thread_id: str,
        *,
        before: str | None = None,
        limit: int | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> AsyncIterator[CheckpointRecord]:
        for r in self.list(thread_id, before=before, limit=limit, metadata_filter=metadata_filter):
            yield r

    async def alist_threads(self) -> builtins.list[str]:
        return self.list_threads()

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    async def aflush(self, checkpoint_id: str | None = None) -> None:
        self.flush(checkpoint_id)

    async def aprune(self, thread_id: str, retention: Retention | None = None) -> int:
        return self.prune(thread_id, retention)

    async def aclose(self) -> None:
        self.close()
