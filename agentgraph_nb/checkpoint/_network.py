"""What the network stores (Postgres, Redis) share: the public methods, sync and async, over
*operations* written once as generators, a background writer for ``durability="async"``, and the
bookkeeping of refused background writes.

An operation is a generator that yields requests (what to send to the server: a SQL statement, a
Redis command) and receives their results; it returns the method's result or raises. Each store
supplies two drivers that run an operation over one connection: a sync one (a sync connection or
client) and an async one (an asyncio connection or client of the running loop). So every method
is natively async on the async path and natively sync on the sync path, with one copy of the
logic, and neither path hops threads.
"""

from __future__ import annotations

import atexit
import builtins
import logging
import os
import queue
import threading
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Sequence,
)
from typing import Any

from agentgraph_nb.checkpoint._codec import RecordCodec, redact_url
from agentgraph_nb.checkpoint.base import (
    NO_CHECK,
    BaseCheckpointer,
    CheckpointRecord,
    Durability,
    Expected,
    PendingWrite,
    Retention,
    broken_chain_error,
    cycle_error,
)
from agentgraph_nb.checkpoint.serde import Serializer, default_serializer
from agentgraph_nb.errors import CheckpointConflictError, CheckpointError

__all__ = ["NetworkCheckpointer", "Op", "Row", "loop_resource", "typed_options"]

_log = logging.getLogger("agentgraph_nb")

# A record ready to send: thread, id, parent, step, created_at, snapshot (0/1), metadata blob,
# payload blob, whether to check the thread's newest, and against what (None: no checkpoint).
Row = tuple[str, str, "str | None", int, str, int, bytes, bytes, int, "str | None"]
Op = Generator[Any, Any, Any]

_BATCH = 256  # records per background write, at most
_MAX_PENDING = 10_000  # put_nowait waits when the writer is this far behind
_IDLE = 2.0  # seconds without work after which the background writer stops
_MAX_REFUSED = 10_000
_PAGE = 64  # records read at a time by list()
_STOP = object()


async def _close_with_loop(resource: Any, aclose: Callable[[Any], Awaitable[None]]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        try:
            await aclose(resource)
        except Exception:  # the server may be gone already
            pass


async def loop_resource(registry: weakref.WeakKeyDictionary[Any, Any], make: Callable[[], Any],
                        aclose: Callable[[Any], Awaitable[None]]) -> Any:
    """The running loop's instance of a loop-bound resource (an asyncio client or pool), made on
    first use and closed, inside its loop, when the loop shuts down: an async generator started
    here is one that ``asyncio.run`` (``loop.shutdown_asyncgens()``) closes, and its ``finally``
    closes the resource. So ``asyncio.run(app.ainvoke(...))`` called again and again leaves no
    connection behind."""
    import asyncio

    loop = asyncio.get_running_loop()
    entry = registry.get(loop)
    if entry is not None:
        return entry[0]
    resource = make()
    guard = _close_with_loop(resource, aclose)
    await guard.__anext__()  # runs to its yield at once: no other task can slip in
    registry[loop] = (resource, guard)
    return resource


async def close_loop_resource(registry: weakref.WeakKeyDictionary[Any, Any]) -> None:
    """Close the running loop's resource now (``aclose()`` of the store)."""
    import asyncio

    entry = registry.pop(asyncio.get_running_loop(), None)
    if entry is not None:
        await entry[1].aclose()


class NetworkCheckpointer(BaseCheckpointer):
    """Base of the stores that talk to a server. Subclasses write the operations (``_op_*``)
    and the two drivers (:meth:`_drive`, :meth:`_adrive`)."""

    checks_conflicts = True
    inline_ok = False
    _kind = "store"
    _ready = False  # the store's tables / keys are set up (the subclasses' drivers set it)

    def __init__(
        self,
        url: str,
        *,
        serializer: Serializer | None = None,
        snapshot_every: int = 32,
        durability: Durability = "sync",
        retention: Retention | None = None,
    ) -> None:
        if not isinstance(snapshot_every, int) or snapshot_every < 1:
            raise ValueError(f"snapshot_every must be an integer >= 1, got {snapshot_every!r}")
        if durability not in ("sync", "async", "exit"):
            raise ValueError(f"durability must be 'sync', 'async' or 'exit', got {durability!r}")
        self.url = url
        self.where = redact_url(url)
        self.serializer = serializer if serializer is not None else default_serializer()
        self.snapshot_every = snapshot_every
        self.durability = durability
        self.retention = retention
        self._codec = RecordCodec(self.serializer, self.where)
        self._closed = False
        self._init_process_state()
        _open_stores.add(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where!r})"

    def _init_process_state(self) -> None:
        self._pid = os.getpid()
        self._cv = threading.Condition()  # guards _pending, _writer_error, _refused, _writer
        self._pending = 0
        self._writer_error: CheckpointError | None = None
        self._refused: dict[str, CheckpointConflictError] = {}
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None

    # -- to implement -------------------------------------------------------------------------
    def _drive(self, op: Callable[..., Op], args: tuple[Any, ...], action: str, thread_id: str | None) -> Any:
        """Run ``op(*args)`` over a sync connection; server errors become CheckpointError."""
        raise NotImplementedError

    async def _adrive(self, op: Callable[..., Op], args: tuple[Any, ...], action: str, thread_id: str | None) -> Any:
        """Run ``op(*args)`` over an async connection of the running loop."""
        raise NotImplementedError

    def _op_put(self, rows: Sequence[Row], atomic: bool) -> Op:
        """Store rows; the first may be checked. ``atomic``: all or none (raise the conflict);
        else each alone, returning ``{checkpoint_id: conflict}`` of the refused ones."""
        raise NotImplementedError

    def _op_put_writes(self, thread_id: str, checkpoint_id: str, items: Sequence[tuple[int, str, bytes]]) -> Op:
        raise NotImplementedError

    def _op_get(self, thread_id: str, checkpoint_id: str | None) -> Op:
        """Returns the record (with its pending writes) or None."""
        raise NotImplementedError

    def _op_chain(self, thread_id: str, checkpoint_id: str | None) -> Op:
        """Returns raw chain items newest first: ``(row_fields, looped)`` where row_fields is
        ``(checkpoint_id, parent_id, step, created_at, snapshot, meta, payload)``; then pending
        writes are attached by :meth:`_finish_chain`."""
        raise NotImplementedError

    def _op_page(self, thread_id: str, before: str | None, cursor: Any) -> Op:
        """Returns ``(records newest first, next cursor or None)``."""
        raise NotImplementedError

    def _op_threads(self) -> Op:
        raise NotImplementedError

    def _op_delete_thread(self, thread_id: str) -> Op:
        raise NotImplementedError

    def _op_delete_checkpoints(self, thread_id: str, ids: Sequence[str]) -> Op:
        raise NotImplementedError

    # -- shared helpers ---------------------------------------------------------------------
    def _row(self, rec: CheckpointRecord, expected: Expected) -> Row:
        meta, payload = self._codec.encode(rec)
        chk, exp = (0, None) if expected is NO_CHECK else (1, expected)
        return (rec.thread_id, rec.checkpoint_id, rec.parent_id, rec.step, rec.created_at,
                0 if rec.values is None else 1, meta, payload, chk, exp)  # type: ignore[return-value]

    def _conflict(self, row: Row, actual: str | None) -> CheckpointConflictError:
        return CheckpointConflictError(
            thread_id=row[0], expected=row[9], actual=actual, checkpoint_id=row[1], store=repr(self)
        )

    def _duplicate(self, row: Row) -> CheckpointError:
        return CheckpointError(
            f"cannot store checkpoint {row[1]!r} of thread {row[0]!r} in {self.where}: a checkpoint "
            "with that id already exists (ids are never reused)"
        )

    def _server_error(self, exc: BaseException, action: str, thread_id: str | None) -> CheckpointError:
        where = f" of thread {thread_id!r}" if thread_id is not None else ""
        return CheckpointError(
            f"cannot {action}{where} in {self._kind} {self.where}: {type(exc).__name__}: "
            f"{str(exc).strip() or 'connection lost'}. Is the server running and reachable? Every "
            "checkpoint committed before this one is intact: once the server is back, resume with "
            "invoke(None, thread_id=...)."
        )

    def _closed_error(self) -> CheckpointError:
        return CheckpointError(f"the checkpoint store {self.where} is closed")

    def _finish_chain(self, thread_id: str, items: Sequence[Any]) -> builtins.list[CheckpointRecord]:
        """Check the walk of a chain (newest first) and decode it oldest first."""
        if not items:
            return []
        ids = [it[0][0] for it in items]
        for k, (_fields, looped) in enumerate(items):
            if looped:
                raise cycle_error(self, thread_id, ids[: k + 1])
        last = items[-1][0]
        if not last[4] and last[1] is not None:
            raise broken_chain_error(self, thread_id, ids[0], last[0], last[1])
        return [self._codec.decode(thread_id, f[0], f[1], f[2], f[3], f[5], f[6]) for f, _ in reversed(items)]

    def _direct_write_ok(self) -> bool:
        """Whether a step's write may take a store's direct path (its ``put``): the store is set up
        and open, in the process that made its connections, with nothing queued in the background
        (written first, by the general path) and no background failure to report."""
        return (self._ready and not self._pending and not self._closed and self._writer_error is None
                and self._pid == os.getpid())

    def _check_process(self) -> None:
        if self._closed:
            raise self._closed_error()
        if self._pid != os.getpid():  # forked: the parent's connections and thread are not ours
            self._init_process_state()
            self._after_fork()

    def _after_fork(self) -> None:
        """Drop connections inherited from the parent process (without closing them)."""

    # -- writing ------------------------------------------------------------------------------
    def put(self, record: CheckpointRecord, *, expected: Expected = NO_CHECK) -> None:
        """Store a checkpoint and commit it before returning.

        Raises:
            CheckpointConflictError: ``expected`` is not the thread's newest checkpoint.
            CheckpointError: the server cannot be reached, or refused the write.
        """
        row = self._row(record, expected)
        if self._pending or self._writer_error is not None:
            self.flush()
        self._check_process()
        self._drive(self._op_put, ([row], True), "store a checkpoint", record.thread_id)

    async def aput(self, record: CheckpointRecord, *, expected: Expected = NO_CHECK) -> None:
        row = self._row(record, expected)
        if self._pending or self._writer_error is not None:
            await self.aflush()
        self._check_process()
        await self._adrive(self._op_put, ([row], True), "store a checkpoint", record.thread_id)

    def put_many(self, records: Sequence[CheckpointRecord], *, expected: Expected = NO_CHECK) -> None:
        """Store several checkpoints in one transaction: with ``expected``, all or none."""
        if not records:
            return
        rows = [self._row(r, expected if i == 0 else NO_CHECK) for i, r in enumerate(records)]
        self.flush()
        self._check_process()
        self._drive(self._op_put, (rows, True), "store checkpoints", records[0].thread_id)

    async def aput_many(self, records: Sequence[CheckpointRecord], *, expected: Expected = NO_CHECK) -> None:
        if not records:
            return
        rows = [self._row(r, expected if i == 0 else NO_CHECK) for i, r in enumerate(records)]
        await self.aflush()
        self._check_process()
        await self._adrive(self._op_put, (rows, True), "store checkpoints", records[0].thread_id)

    def put_writes(self, thread_id: str, checkpoint_id: str, writes: Sequence[PendingWrite]) -> None:
        items = [(w.task_index, w.node, self._codec.encode_write(thread_id, checkpoint_id, w)) for w in writes]
        self.flush()
        self._check_process()
        self._drive(self._op_put_writes, (thread_id, checkpoint_id, items), "store pending writes", thread_id)

    async def aput_writes(self, thread_id: str, checkpoint_id: str, writes: Sequence[PendingWrite]) -> None:
        items = [(w.task_index, w.node, self._codec.encode_write(thread_id, checkpoint_id, w)) for w in writes]
        await self.aflush()
        self._check_process()
        await self._adrive(self._op_put_writes, (thread_id, checkpoint_id, items), "store pending writes", thread_id)

    def put_nowait(self, record: CheckpointRecord, *, expected: Expected = NO_CHECK) -> None:
        """Queue a checkpoint for the background writer and return at once (it writes up to
        256 queued checkpoints per round trip or transaction).

        Raises:
            CheckpointConflictError: ``expected`` is a checkpoint the background writer refused.
            CheckpointError: an earlier background write failed.
        """
        row = self._row(record, expected)
        self._check_process()
        with self._cv:
            if self._writer_error is not None:
                err, self._writer_error = self._writer_error, None
                raise err
            if self._refused and row[9] in self._refused:
                raise self._refused.pop(row[9])  # type: ignore[arg-type]
            while self._pending >= _MAX_PENDING:
                self._cv.wait()
            self._pending += 1
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._writer_loop, name=f"agentgraph_nb-{self._kind}-writer", daemon=True
                )
                self._writer.start()
        self._queue.put(row)

    async def aput_nowait(self, record: CheckpointRecord, *, expected: Expected = NO_CHECK) -> None:
        self.put_nowait(record, expected=expected)  # only queues: nothing here waits on the server

    def _writer_loop(self) -> None:
        stop = False
        while not stop:
            try:
                item = self._queue.get(timeout=_IDLE)
            except queue.Empty:
                with self._cv:
                    if self._pending == 0:
                        self._writer = None
                        return
                continue
            if item is _STOP:
                return
            batch = [item]
            while len(batch) < _BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            error: CheckpointError | None = None
            refused: dict[str, CheckpointConflictError] = {}
            try:
                with self._cv:
                    earlier = dict(self._refused)
                send: list[Row] = []
                for row in batch:  # expecting a refused checkpoint: refused with its error
                    first = (refused.get(row[9]) or earlier.get(row[9])) if row[8] and row[9] else None  # type: ignore[arg-type]
                    if first is not None:
                        refused[row[1]] = first
                    else:
                        send.append(row)
                if send:
                    for cid, err in self._drive(
                        self._op_put, (send, False), f"store {len(send)} checkpoint(s) in the background", None
                    ).items():
                        exp = next(r[9] for r in send if r[1] == cid)
                        refused[cid] = refused.get(exp) or earlier.get(exp) or err  # type: ignore[arg-type]
            except CheckpointError as exc:
                error = exc
            except BaseException as exc:  # never let the writer die silently
                error = CheckpointError(f"background write to {self.where} failed: {exc!r}")
            with self._cv:
                if error is not None and self._writer_error is None:
                    self._writer_error = error
                for cid, err in refused.items():
                    if err.checkpoint_id != cid:
                        for k in [k for k, v in self._refused.items() if v is err]:
                            del self._refused[k]
                    self._refused[cid] = err
                while len(self._refused) > _MAX_REFUSED:
                    del self._refused[next(iter(self._refused))]
                self._pending -= len(batch)
                self._cv.notify_all()

    def flush(self, checkpoint_id: str | None = None) -> None:
        """Wait until every queued checkpoint is written.

        Raises:
            CheckpointConflictError: the background writer refused ``checkpoint_id``.
            CheckpointError: a background write failed (server down, ...).
        """
        if self._pid != os.getpid():
            return
        with self._cv:
            while self._pending > 0:
                self._cv.wait()
            refused = self._refused.pop(checkpoint_id, None) if checkpoint_id is not None else None
            err, self._writer_error = self._writer_error, None
        if refused is not None:
            raise refused
        if err is not None:
            raise err

    async def aflush(self, checkpoint_id: str | None = None) -> None:
        if self._pending:
            import asyncio

            await asyncio.to_thread(self.flush, checkpoint_id)  # waits for the writer thread
        else:
            self.flush(checkpoint_id)

    # -- reading ------------------------------------------------------------------------------
    def get(self, thread_id: str, checkpoint_id: str | None = None) -> CheckpointRecord | None:
        if self._pending:
            self.flush()
        self._check_process()
        return self._drive(self._op_get, (thread_id, checkpoint_id), "read a checkpoint", thread_id)  # type: ignore[no-any-return]

    async def aget(self, thread_id: str, checkpoint_id: str | None = None) -> CheckpointRecord | None:
        if self._pending:
            await self.aflush()
        self._check_process()
        return await self._adrive(self._op_get, (thread_id, checkpoint_id), "read a checkpoint", thread_id)  # type: ignore[no-any-return]

    def get_chain(self, thread_id: str, checkpoint_id: str | None = None) -> builtins.list[CheckpointRecord]:
        """Records from the nearest snapshot down to the checkpoint, in one round trip."""
        if self._pending:
            self.flush()
        self._check_process()
        return self._drive(self._op_chain, (thread_id, checkpoint_id), "read a checkpoint chain", thread_id)  # type: ignore[no-any-return]

    async def aget_chain(self, thread_id: str, checkpoint_id: str | None = None) -> builtins.list[CheckpointRecord]:
        if self._pending:
            await self.aflush()
        self._check_process()
        return await self._adrive(self._op_chain, (thread_id, checkpoint_id), "read a checkpoint chain", thread_id)  # type: ignore[no-any-return]

    def list(
        self,
        thread_id: str,
        *,
        before: str | None = None,
        limit: int | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> Iterator[CheckpointRecord]:
        if limit is not None and limit <= 0:
            return
        if self._pending:
            self.flush()
        self._check_process()
        n = 0
        cursor: Any = None
        while True:
            recs, cursor = self._drive(self._op_page, (thread_id, before, cursor), "list checkpoints", thread_id)
            for rec in recs:
                if metadata_filter and any(rec.metadata.get(k) != v for k, v in metadata_filter.items()):
                    continue
                yield rec
                n += 1
                if limit is not None and n >= limit:
                    return
            if cursor is None:
                return

    async def alist(
        self,
        thread_id: str,
        *,
        before: str | None = None,
        limit: int | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> AsyncIterator[CheckpointRecord]:
        if limit is not None and limit <= 0:
            return
        if self._pending:
            await self.aflush()
        self._check_process()
        n = 0
        cursor: Any = None
        while True:
            recs, cursor = await self._adrive(self._op_page, (thread_id, before, cursor), "list checkpoints", thread_id)
            for rec in recs:
                if metadata_filter and any(rec.metadata.get(k) != v for k, v in metadata_filter.items()):
                    continue
                yield rec
                n += 1
                if limit is not None and n >= limit:
                    return
            if cursor is None:
                return

    def list_threads(self) -> builtins.list[str]:
        if self._pending:
            self.flush()
        self._check_process()
        return self._drive(self._op_threads, (), "list threads", None)  # type: ignore[no-any-return]

    async def alist_threads(self) -> builtins.list[str]:
        if self._pending:
            await self.aflush()
        self._check_process()
        return await self._adrive(self._op_threads, (), "list threads", None)  # type: ignore[no-any-return]

    def stored_bytes(self, thread_id: str) -> int | None:
        if self._pending:
            self.flush()
        self._check_process()
        return self._drive(self._op_stored_bytes, (thread_id,), "measure a thread", thread_id)  # type: ignore[no-any-return]

    def _op_stored_bytes(self, thread_id: str) -> Op:
        raise NotImplementedError

    def reencrypt(self, thread_id: str | None = None) -> int:
        self.flush()
        self._check_process()
        threads = [thread_id] if thread_id is not None else self.list_threads()
        return sum(self._drive(self._op_reencrypt, (t,), "re-encrypt records", t) for t in threads)

    def _reseal(self, thread_id: str, checkpoint_id: str, field: str, blob: bytes) -> bytes | None:
        from agentgraph_nb.checkpoint._codec import context

        try:
            return self.serializer.reseal(bytes(blob), context=context(thread_id, checkpoint_id, field))
        except CheckpointError as exc:
            raise CheckpointError(
                f"cannot re-encrypt checkpoint {checkpoint_id!r} of thread {thread_id!r} in {self.where}: {exc}"
            ) from exc

    def _op_reencrypt(self, thread_id: str) -> Op:
        raise NotImplementedError

    def delete_thread(self, thread_id: str) -> None:
        self.flush()
        self._check_process()
        self._drive(self._op_delete_thread, (thread_id,), "delete a thread", thread_id)

    async def adelete_thread(self, thread_id: str) -> None:
        await self.aflush()
        self._check_process()
        await self._adrive(self._op_delete_thread, (thread_id,), "delete a thread", thread_id)

    def delete_checkpoints(self, thread_id: str, checkpoint_ids: Sequence[str]) -> None:
        self.flush()
        self._check_process()
        self._drive(self._op_delete_checkpoints, (thread_id, builtins.list(checkpoint_ids)),
                    "delete checkpoints", thread_id)

    async def aprune(self, thread_id: str, retention: Retention | None = None) -> int:
        policy = retention if retention is not None else self.retention
        if policy is None:
            return 0
        await self.aflush()
        recs = [r async for r in self.alist(thread_id)]
        doomed = policy.doomed(recs)
        if doomed:
            self._check_process()
            await self._adrive(self._op_delete_checkpoints, (thread_id, doomed), "delete checkpoints", thread_id)
        return len(doomed)

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        """Write what is queued, stop the writer thread and close the connections. Idempotent."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            _open_stores.discard(self)
            if self._pid == os.getpid():
                with self._cv:
                    writer = self._writer
                if writer is not None:
                    self._queue.put(_STOP)
                    writer.join()
                self._close_connections()

    async def aclose(self) -> None:
        if self._closed:
            return
        try:
            await self.aflush()
        finally:
            self._closed = True
            _open_stores.discard(self)
            with self._cv:
                writer = self._writer
            if writer is not None:
                self._queue.put(_STOP)
            await self._aclose_connections()
            self._close_connections()

    def _close_connections(self) -> None:
        raise NotImplementedError

    async def _aclose_connections(self) -> None:
        """Close the async connections of the running loop (others go with their loops)."""


def typed_options(opts: dict[str, str], types: dict[str, type]) -> dict[str, Any]:
    """A store URL's query options converted by ``types`` (``{"ttl": float, ...}``).

    Raises:
        ValueError: naming the option whose value does not convert.
    """
    values: dict[str, Any] = {}
    for k, v in opts.items():
        try:
            values[k] = types[k](v)
        except ValueError:
            raise ValueError(f"option {k}={v!r} is not a valid {types[k].__name__}") from None
    return values


_open_stores: weakref.WeakSet[NetworkCheckpointer] = weakref.WeakSet()


@atexit.register
def _close_open_stores() -> None:
    """Write what ``put_nowait`` queued before the interpreter exits."""
    for store in builtins.list(_open_stores):
        try:
            store.close()
        except Exception as exc:
            _log.error("could not write queued checkpoints to %s at exit: %s", store.where, exc)
