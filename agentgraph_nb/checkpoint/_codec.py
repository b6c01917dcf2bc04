"""Records to bytes and back for the stores that keep blobs (Postgres, Redis): the same layout as
the SQLite store's rows (a payload of the record's six content fields and a metadata blob, both
through the :class:`~agentgraph_nb.checkpoint.serde.Serializer`), and the same checks on the way
back, so a damaged row is a ``CheckpointError`` naming the store, the thread, the checkpoint and
the field."""

from __future__ import annotations

from typing import Any

from agentgraph_nb.checkpoint.base import (
    CheckpointRecord,
    PendingWrite,
    pending_write_problem,
    record_problem,
)
from agentgraph_nb.checkpoint.serde import Serializer
from agentgraph_nb.errors import CheckpointError

__all__ = ["RecordCodec", "context", "redact_url"]


def context(thread_id: str, checkpoint_id: str, field: str) -> str:
    """Where a blob is stored, authenticated with it when the serializer encrypts (so a record
    copied to another thread, checkpoint or field fails to decrypt)."""
    return f"{thread_id}\0{checkpoint_id}\0{field}"


def _kind(value: Any) -> str:
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages and reprs)."""
    import urllib.parse

    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class RecordCodec:
    """Encodes and decodes records for one store (``where`` names it in messages)."""

    def __init__(self, serializer: Serializer, where: str) -> None:
        self.serializer = serializer
        self.where = where

    def encode(self, rec: CheckpointRecord) -> tuple[bytes, bytes]:
        """``(metadata blob, payload blob)`` of a record."""
        dumps = self.serializer.dumps
        try:
            t, c = rec.thread_id, rec.checkpoint_id
            payload = dumps([rec.writes, rec.values, rec.next, rec.barriers, rec.interrupts, rec.resume],
                            context=context(t, c, "payload"))
            meta = dumps(rec.metadata, root="metadata", context=context(t, c, "metadata"))
        except CheckpointError as exc:
            raise CheckpointError(
                f"cannot store the checkpoint of thread {rec.thread_id!r} at step {rec.step} in "
                f"{self.where}: {exc}"
            ) from exc.__cause__
        return meta, payload

    def encode_write(self, thread_id: str, checkpoint_id: str, w: PendingWrite) -> bytes:
        try:
            return self.serializer.dumps([w.update, w.goto], root="state",
                                         context=context(thread_id, checkpoint_id, "write"))
        except CheckpointError as exc:
            raise CheckpointError(
                f"cannot store the pending write of node {w.node!r} (thread {thread_id!r}) in "
                f"{self.where}: node {w.node!r} wrote {exc}"
            ) from exc.__cause__

    def malformed(self, thread_id: str, checkpoint_id: Any, problem: str) -> CheckpointError:
        return CheckpointError(
            f"cannot read checkpoint {checkpoint_id!r} of thread {thread_id!r} from {self.where}: "
            f"{problem}. The row is damaged or was edited outside agentgraph_nb (it was not "
            "modified); delete the thread, or restore the database from a backup"
        )

    def decode(
        self, thread_id: str, checkpoint_id: Any, parent_id: Any, step: Any, created_at: Any,
        meta: bytes, payload: bytes,
    ) -> CheckpointRecord:
        loads = self.serializer.loads
        try:
            fields = loads(bytes(payload), context=context(thread_id, checkpoint_id, "payload"))
            metadata = loads(bytes(meta), context=context(thread_id, checkpoint_id, "metadata"))
        except CheckpointError as exc:
            raise CheckpointError(
                f"cannot read checkpoint {checkpoint_id!r} of thread {thread_id!r} from "
                f"{self.where}: {exc}"
            ) from exc
        except Exception as exc:  # bytes that are not ours at all
            raise self.malformed(thread_id, checkpoint_id, f"its bytes do not decode ({exc!r})") from exc
        if type(fields) is not list or len(fields) != 6:
            raise self.malformed(
                thread_id, checkpoint_id, f"its payload is {_kind(fields)}, not the list of its 6 fields"
            )
        writes, values, next_, barriers, interrupts, resume = fields
        rec = CheckpointRecord(
            thread_id=thread_id, checkpoint_id=checkpoint_id, parent_id=parent_id, step=step,
            created_at=created_at, writes=writes, values=values, next=next_, barriers=barriers,
            interrupts=interrupts, resume=resume, metadata=metadata,
        )
        problem = record_problem(rec)
        if problem is not None:
            raise self.malformed(thread_id, checkpoint_id, problem)
        return rec

    def decode_write(self, thread_id: str, checkpoint_id: str, task_index: Any, node: Any,
                     payload: bytes) -> PendingWrite:
        try:
            pair = self.serializer.loads(bytes(payload), context=context(thread_id, checkpoint_id, "write"))
        except CheckpointError as exc:
            raise CheckpointError(
                f"cannot read a pending write of checkpoint {checkpoint_id!r} of thread "
                f"{thread_id!r} from {self.where}: {exc}"
            ) from exc
        except Exception as exc:
            raise self.malformed(thread_id, checkpoint_id, f"a pending write does not decode ({exc!r})") from exc
        if type(pair) is not list or len(pair) != 2:
            raise self.malformed(
                thread_id, checkpoint_id,
                f"the payload of a pending write of node {node!r} is {_kind(pair)}, not an [update, goto] pair",
            )
        pw = PendingWrite(task_index, node, pair[0], pair[1])
        problem = pending_write_problem(pw)
        if problem is not None:
            raise self.malformed(thread_id, checkpoint_id, problem)
        return pw
