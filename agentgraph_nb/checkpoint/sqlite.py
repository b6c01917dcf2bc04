"""SQLite checkpoint store: embedded, one file, no server; the default on-disk store.

The file is in WAL mode, so readers never wait for the writer, and several threads and several
processes can share it: each transaction takes the write lock up front (``BEGIN IMMEDIATE``) and
waits up to ``timeout`` seconds for it. ``put_nowait`` hands records to a background thread that
writes many of them per transaction. A write with ``expected=`` compares the thread's newest
checkpoint inside its own INSERT statement, under that lock (see ``BaseCheckpointer``): two
processes writing one thread cannot both succeed.

Tables: ``meta`` (application name, schema version), ``checkpoints`` (one row per checkpoint,
the record's content as one msgpack blob) and ``writes`` (pending writes). A file that is not
ours, corrupt, or from a newer version is reported with :class:`~agentgraph_nb.errors.CheckpointError`
and never modified; so is a row whose content does not have the shape of a checkpoint (damaged or
edited by hand): the error names the file, the thread, the checkpoint and the field.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import errno
import logging
import os
import queue
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from agentgraph_nb.checkpoint._codec import context
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
    pending_write_problem,
    record_problem,
)
from agentgraph_nb.checkpoint.serde import Serializer, default_serializer
from agentgraph_nb.errors import CheckpointConflictError, CheckpointError

__all__ = ["SCHEMA_VERSION", "SqliteCheckpointer"]

SCHEMA_VERSION = 1
"""Version of the tables this code writes; a file with a higher version is refused."""

_APP = "agentgraph_nb"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_BATCH = 512  # records per background transaction, at most
_MAX_PENDING = 10_000  # put_nowait waits when the writer is this far behind
_PAGE = 64  # rows fetched at a time by list()
_IDLE = 2.0  # seconds without work after which the background writer stops
_MAX_REFUSED = 10_000  # refused background writes remembered for their writers, at most

_log = logging.getLogger("agentgraph_nb")

_SCHEMA = f"""
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('application', '{_APP}'), ('schema_version', '{SCHEMA_VERSION}');
CREATE TABLE checkpoints (
    seq INTEGER PRIMARY KEY,
    thread_id TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    parent_id TEXT,
    step INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    snapshot INTEGER NOT NULL,
    metadata BLOB NOT NULL,
    payload BLOB NOT NULL,
    UNIQUE (thread_id, checkpoint_id)
);
CREATE INDEX checkpoints_thread_seq ON checkpoints (thread_id, seq);
CREATE TABLE writes (
    seq INTEGER PRIMARY KEY,
    thread_id TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    task_index INTEGER NOT NULL,
    node TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX writes_checkpoint ON writes (thread_id, checkpoint_id, seq);
"""

# The optimistic-concurrency check rides in the INSERT: when the thread's newest checkpoint is not
# the expected one (the row's 10th value; its 9th = 1 asks for the check), `step` becomes NULL and
# the NOT NULL constraint refuses the row. One statement, so the comparison and the insert are
# atomic (SQLite takes the write lock before evaluating it). The row's values come in as plain
# ``?`` placeholders in row order through a one-row subquery (numbered ``?NNN`` placeholders with a
# sequence are deprecated from Python 3.12). The numbered form measured +3 µs over a plain INSERT
# (BEGIN/SELECT/INSERT/COMMIT: +6 µs); this form is not re-measured yet.
_INSERT = (
    "INSERT INTO checkpoints (thread_id, checkpoint_id, parent_id, step, created_at, snapshot, "
    "metadata, payload) SELECT v.t, v.c, v.p, CASE WHEN v.chk = 0 OR (SELECT checkpoint_id FROM "
    "checkpoints WHERE thread_id = v.t ORDER BY seq DESC LIMIT 1) IS v.exp THEN v.step END, "
    "v.created, v.snap, v.meta, v.payload FROM (SELECT ? AS t, ? AS c, ? AS p, ? AS step, "
    "? AS created, ? AS snap, ? AS meta, ? AS payload, ? AS chk, ? AS exp) AS v"
)
_NEWEST = "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? ORDER BY seq DESC LIMIT 1"
_UNCHECKED: tuple[int, None] = (0, None)
_COLS = "checkpoint_id, parent_id, step, created_at, metadata, payload"
_C_COLS = ", ".join("c." + col for col in _COLS.split(", "))
# Walk parent links over narrow rows, then fetch the blobs once (not copied through the walk).
# UNION (not UNION ALL) drops a row met twice, so parent links that loop (a damaged file) end the
# walk after at most one row per checkpoint of the thread; get_chain then names the cycle.
_CHAIN = f"""
WITH RECURSIVE chain (anchor, seq, parent_id, snapshot) AS (
    SELECT 1, seq, parent_id, snapshot FROM checkpoints WHERE {{anchor}}
    UNION
    SELECT 0, c.seq, c.parent_id, c.snapshot
    FROM chain JOIN checkpoints AS c ON c.thread_id = :t AND c.checkpoint_id = chain.parent_id
    WHERE chain.snapshot = 0
)
SELECT chain.anchor, c.snapshot, {_C_COLS}
FROM chain JOIN checkpoints AS c ON c.seq = chain.seq
"""
_ANCHOR_ID = "thread_id = :t AND checkpoint_id = :c"
_ANCHOR_NEWEST = "seq = (SELECT MAX(seq) FROM checkpoints WHERE thread_id = :t)"

_STOP = object()


def _kind(value: Any) -> str:
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
_Row = tuple[str, str, "str | None", int, str, int, bytes, bytes]
# a row to insert: the _Row, then whether to check the thread's newest checkpoint, and against what
_Write = tuple[str, str, "str | None", int, str, int, bytes, bytes, int, "str | None"]


def _is_refusal(exc: sqlite3.IntegrityError) -> bool:
    """Whether the INSERT was refused by its concurrency check (NULL step), not a duplicate id."""
    return "NOT NULL" in str(exc)


class SqliteCheckpointer(BaseCheckpointer):
    """Checkpoints in one SQLite file: survives restarts, shareable between processes.

    Args:
        path: the database file (created when missing; its directory must exist), or
            ``":memory:"`` for a private in-memory database.
        serializer: turns values into bytes; defaults to the process-wide
            :func:`~agentgraph_nb.checkpoint.serde.default_serializer`.
        snapshot_every: the engine stores full values every this many steps along a branch and
            only the writes in between (the store stores whatever records it is given).
        durability: default for runs using this store: ``"sync"`` (each checkpoint committed
            before the next step: a crash never loses a completed step; the default),
            ``"async"`` (written in the background, flushed before ``invoke`` returns: faster, but a
            ``kill -9`` may lose the last few steps) or ``"exit"`` (all at the end of the run).
        timeout: seconds to wait for another connection's write lock before giving up.
        retention: old checkpoints to delete after each run (see :class:`Retention`).

    Its async methods (``aput``, ...) run the sync ones on a worker thread; but the engine's
    ``ainvoke`` calls the sync ones in place (:attr:`inline_ok`): a step's write takes a few
    microseconds, less than the hop to a thread and back (see benchmarks/stores.py). The price:
    while another process holds the file's write lock, the event loop waits with this store.

    Raises:
        CheckpointError: the file is not a SQLite database, belongs to another application, is
            corrupt, or was written by a newer agentgraph_nb (the file is left untouched).

    Example:
        >>> store = SqliteCheckpointer("runs.db")     # or compile(checkpointer="sqlite:///runs.db")
        >>> app = graph.compile(checkpointer=store)
    """

    checks_conflicts = True
    inline_ok = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        serializer: Serializer | None = None,
        snapshot_every: int = 32,
        durability: Durability = "sync",
        timeout: float = 30.0,
        retention: Retention | None = None,
    ) -> None:
        if not isinstance(snapshot_every, int) or snapshot_every < 1:
            raise ValueError(f"snapshot_every must be an integer >= 1, got {snapshot_every!r}")
        if durability not in ("sync", "async", "exit"):
            raise ValueError(f"durability must be 'sync', 'async' or 'exit', got {durability!r}")
        raw = os.fspath(path)
        self.in_memory = raw in (":memory:", "")
        self.path = ":memory:" if self.in_memory else os.path.abspath(os.path.expanduser(raw))
        self.serializer = serializer if serializer is not None else default_serializer()
        self.snapshot_every = snapshot_every
        self.durability = durability
        self.timeout = float(timeout)
        self.retention = retention
        self._closed = False
        self._init_process_state()
        conn = self._open()
        self._conn: sqlite3.Connection | None = conn
        _open_stores.add(self)

    def __repr__(self) -> str:
        return f"SqliteCheckpointer({self.path!r})"

    # -- connections ------------------------------------------------------------------------
    def _init_process_state(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.RLock()  # guards the foreground connection
        self._cv = threading.Condition()  # guards _pending, _writer_error and _refused
        self._pending = 0
        self._writer_error: CheckpointError | None = None
        # background writes refused by their concurrency check, by checkpoint id, until their
        # writer hears of it (a later write expecting one, or flush(checkpoint_id=one))
        self._refused: dict[str, CheckpointConflictError] = {}
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None

    def _connect(self) -> sqlite3.Connection:
        """A new connection with this store's settings (one per thread that writes)."""
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _open(self) -> sqlite3.Connection:
        if not self.in_memory and os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            try:
                with open(self.path, "rb") as f:
                    head = f.read(len(_SQLITE_MAGIC))
            except OSError as exc:
                raise self._error(exc, "open the checkpoint store") from exc
            if head != _SQLITE_MAGIC:
                raise CheckpointError(
                    f"{self.path} is not a SQLite database, so it cannot be an agentgraph_nb "
                    "checkpoint store. Pass another path (the file was not modified)."
                )
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise self._error(exc, "open the checkpoint store") from exc
        # Two processes opening a new file at once: switching it to WAL and creating the
        # tables can report "locked" at once, without SQLite's busy handler; retry until timeout.
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                self._check_or_create(conn)
                return conn
            except CheckpointError as exc:
                cause = exc.__cause__
                if (
                    isinstance(cause, sqlite3.OperationalError)
                    and "locked" in str(cause)
                    and time.monotonic() < deadline
                ):
                    time.sleep(delay)
                    delay = min(delay * 2, 0.2)
                    continue
                conn.close()
                raise
            except BaseException:
                conn.close()
                raise

    def _check_or_create(self, conn: sqlite3.Connection) -> None:
        """Validate an existing file (read-only) or create the tables in an empty one."""
        with self._errors("open the checkpoint store"):
            tables = self._tables(conn)
            if not tables:
                # Set WAL before creating (it cannot change inside a transaction); on an empty
                # file this rewrites nothing anyone else owns.
                if not self.in_memory:
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    tables = self._tables(conn)  # another process may have won the race
                    if not tables:
                        for stmt in _SCHEMA.split(";"):
                            if stmt.strip():
                                conn.execute(stmt)
                        conn.execute("COMMIT")
                        return
                    conn.execute("ROLLBACK")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            self._check_ours(conn, tables)
            if not self.in_memory:
                (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
                if str(mode).lower() != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")

    @staticmethod
    def _tables(conn: sqlite3.Connection) -> set[str]:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {r[0] for r in rows}

    def _check_ours(self, conn: sqlite3.Connection, tables: set[str]) -> None:
        meta: dict[str, str] = {}
        if "meta" in tables:
            try:
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            except sqlite3.OperationalError:  # a foreign "meta" table with other columns
                meta = {}
        if meta.get("application") != _APP or not {"checkpoints", "writes"} <= tables:
            shown = ", ".join(sorted(t for t in tables if not t.startswith("sqlite_"))[:8])
            raise CheckpointError(
                f"{self.path} is a SQLite database of another application (tables: {shown}), "
                "not an agentgraph_nb checkpoint store. Pass another path (the file was not "
                "modified)."
            )
        try:
            version = int(meta.get("schema_version", ""))
        except ValueError:
            version = -1
        if version > SCHEMA_VERSION:
            raise CheckpointError(
                f"{self.path} was written by a newer agentgraph_nb (store schema version "
                f"{version}; this version reads up to {SCHEMA_VERSION}). Upgrade agentgraph_nb "
                "to read it, or use another file (this one was not modified)."
            )
        if version < 1:
            raise CheckpointError(
                f"{self.path} has an invalid store schema version {meta.get('schema_version')!r}: "
                "the file is damaged. Move it away to start afresh (it was not modified)."
            )

    def _fg(self) -> sqlite3.Connection:
        """The foreground connection (callers hold ``self._lock``)."""
        if self._closed:
            raise CheckpointError(f"the checkpoint store {self.path} is closed")
        if self._pid != os.getpid():  # forked: the parent's connection and thread are not ours
            # Never close the inherited connection: that could drop this process's file locks.
            _inherited.append(self._conn)
            self._init_process_state()
            self._conn = self._open()
        assert self._conn is not None
        return self._conn

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except CheckpointError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise self._error(exc, action) from exc

    def _error(self, exc: BaseException, action: str) -> CheckpointError:
        """A CheckpointError saying what failed, on which file, and what to do."""
        code = getattr(exc, "sqlite_errorname", "") or ""
        msg = str(exc).lower()
        where = f"cannot {action} ({self.path})"
        if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in msg or "busy" in msg:
            return CheckpointError(
                f"{where}: the database stayed locked by another connection or process for more "
                f"than {self.timeout:g} s. Close the other program or notebook kernel using this "
                "file, or pass a larger timeout=. Nothing was written."
            )
        if (
            code.startswith("SQLITE_FULL")
            or "database or disk is full" in msg
            or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC)
        ):
            return CheckpointError(
                f"{where}: the disk is full. Free some space or move the store to another disk; "
                "this write was not stored, earlier checkpoints are intact."
            )
        if (
            code.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
            or "malformed" in msg
            or "not a database" in msg
        ):
            return CheckpointError(
                f"{where}: the file is corrupt ({exc}). Restore a backup, or move the file away to "
                "start afresh (it was not modified)."
            )
        if code.startswith("SQLITE_READONLY") or "readonly" in msg:
            return CheckpointError(
                f"{where}: the file is read-only ({exc}). Check its permissions, or pass another path."
            )
        if code.startswith("SQLITE_CANTOPEN") or "unable to open" in msg:
            return CheckpointError(
                f"{where}: the file cannot be opened ({exc}). Check that its directory exists and "
                "is writable."
            )
        return CheckpointError(f"{where}: {type(exc).__name__}: {exc}")

    # -- encoding -----------------------------------------------------------------------------
    def _encode(self, rec: CheckpointRecord) -> _Row:
        dumps = self.serializer.dumps
        try:
            t, c = rec.thread_id, rec.checkpoint_id
            payload = dumps(
                [rec.writes, rec.values, rec.next, rec.barriers, rec.interrupts, rec.resume],
                context=context(t, c, "payload"),
            )
            meta = dumps(rec.metadata, root="metadata", context=context(t, c, "metadata"))
        except CheckpointError as exc:
            raise CheckpointError(
                f"cannot store the checkpoint of thread {rec.thread_id!r} at step {rec.step}: "
                f"{self._locate(rec) or exc}"
            ) from exc.__cause__
        return (
            rec.thread_id,
            rec.checkpoint_id,
            rec.parent_id,
            rec.step,
            rec.created_at,
            0 if rec.values is None else 1,
            meta,
            payload,
        )

    def _locate(self, rec: CheckpointRecord) -> str | None:
        """Which part of a record cannot be stored, named in the user's words."""
        parts: list[tuple[str, str, Any]] = [("", "state", rec.values)]
        for w in rec.writes:
            node, update = (
                (w[0], w[1]) if isinstance(w, (list, tuple)) and len(w) == 2 else (None, w)
            )
            if node == "__input__":
                parts.append(("the input: ", "state", update))
            else:
                parts.append((f"node {node!r} wrote ", "state", update))
        for t in rec.next:
            node = t[0] if isinstance(t, (list, tuple)) and t else t
            parts.append(("", f"Send({node!r}).arg", t))
        parts += [
            ("", "interrupt", rec.interrupts),
            ("", "resume", rec.resume),
            ("", "barriers", rec.barriers),
        ]
        parts.append(("", "metadata", rec.metadata))
        for prefix, root, value in parts:
            try:
                self.serializer.dumps(value, root=root)
            except CheckpointError as exc:
                return f"{prefix}{exc}"
        return None

    def _decode(self, thread_id: str, row: Sequence[Any]) -> CheckpointRecord:
        checkpoint_id, parent_id, step, created_at, meta, payload = row
        loads = self.serializer.loads
        try:
            fields = loads(payload, context=context(thread_id, checkpoint_id, "payload"))
            metadata = loads(meta, context=context(thread_id, checkpoint_id, "metadata"))
        except CheckpointError as exc:
            raise CheckpointError(
                f"cannot read checkpoint {checkpoint_id!r} of thread {thread_id!r} from "
                f"{self.path}: {exc}"
            ) from exc
        if type(fields) is not list or len(fields) != 6:
            raise self._malformed(
                thread_id,
                checkpoint_id,
                f"its payload is {_kind(fields)}, not the list of its 6 fields",
            )
        writes, values, next_, barriers, interrupts, resume = fields
        rec = CheckpointRecord(
            thread_id=thread_id,
            checkpoint_id=checkpoint_id,
            parent_id=parent_id,
            step=step,
            created_at=created_at,
            writes=writes,
            values=values,
            next=next_,
            barriers=barriers,
            interrupts=interrupts,
            resume=resume,
            metadata=metadata,
        )
        problem = record_problem(rec)
        if problem is not None:
            raise self._malformed(thread_id, checkpoint_id, problem)
        return rec

    def _malformed(self, thread_id: str, checkpoint_id: Any, problem: str) -> CheckpointError:
        return CheckpointError(
            f"cannot read checkpoint {checkpoint_id!r} of thread {thread_id!r} from {self.path}: "
            f"{problem}. The row is damaged or was edited outside agentgraph_nb (the file was not "
            "modified); delete the thread, or restore the file from a backup"
        )

    def _load_writes(
        self, conn: sqlite3.Connection, thread_id: str, ids: Sequence[str]
    ) -> dict[str, list[PendingWrite]]:
        out: dict[str, list[PendingWrite]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows = conn.execute(
                "SELECT checkpoint_id, task_index, node, payload FROM writes WHERE thread_id = ? "
                f"AND checkpoint_id IN ({', '.join('?' * len(chunk))}) ORDER BY seq",
                (thread_id, *chunk),
            ).fetchall()
            for cid, task_index, node, payload in rows:
                try:
                    pair = self.serializer.loads(payload, context=context(thread_id, cid, "write"))
                except CheckpointError as exc:
                    raise CheckpointError(
                        f"cannot read a pending write of checkpoint {cid!r} of thread "
                        f"{thread_id!r} from {self.path}: {exc}"
                    ) from exc
                if type(pair) is not list or len(pair) != 2:
                    raise self._malformed(
                        thread_id,
                        cid,
                        f"the payload of a pending write of node {node!r} is {_kind(pair)}, "
                        "not an [update, goto] pair",
                    )
                pw = PendingWrite(task_index, node, pair[0], pair[1])
                problem = pending_write_problem(pw)
                if problem is not None:
                    raise self._malformed(thread_id, cid, problem)
                out.setdefault(cid, []).append(pw)
        return out

    # -- writing ------------------------------------------------------------------------------
    def _conflict(self, conn: sqlite3.Connection, row: _Write) -> CheckpointConflictError:
        found = conn.execute(_NEWEST, (row[0],)).fetchone()
        newest = found[0] if found is not None else None
        return CheckpointConflictError(
            thread_id=row[0], expected=row[9], actual=newest, checkpoint_id=row[1], store=repr(self)
        )

    def _duplicate(self, row: _Write) -> CheckpointError:
        return CheckpointError(
            f"cannot store checkpoint {row[1]!r} of thread {row[0]!r} in {self.path}: a checkpoint "
            "with that id already exists (ids are never reused)"
        )

    def _insert_one(self, conn: sqlite3.Connection, row: _Write) -> None:
        """Insert one row in its own (autocommit) statement: the durability="sync" path."""
        try:
            conn.execute(_INSERT, row)
        except sqlite3.IntegrityError as exc:
            if not _is_refusal(exc):
                raise self._duplicate(row) from None
            if row[8]:
                err = self._conflict(conn, row)
                if err.actual != row[9]:
                    raise err from None
            # not the check after all: a NULL step (or the thread was deleted just now)
            raise CheckpointError(
                f"cannot store checkpoint {row[1]!r} of thread {row[0]!r} in {self.path}: {exc}"
            ) from exc

    def _insert(self, conn: sqlite3.Connection, rows: Sequence[_Write], *, atomic: bool) -> None:
        """Insert rows in one transaction; a duplicate id fails alone, the others are stored.

        A row refused by its concurrency check refuses them all when ``atomic`` (``put_many``:
        one writer's records) and raises; otherwise (a background batch of many writers) it is
        refused alone, and so is any later row expecting a refused one: each refusal waits in
        ``_refused`` for its writer.
        """
        if len(rows) == 1 and not atomic:  # a quiet background writer: one autocommit statement
            try:
                self._insert_one(conn, rows[0])
            except CheckpointConflictError as err:
                with self._cv:
                    first = self._refused.get(rows[0][9])  # type: ignore[arg-type]
                self._refuse({rows[0][1]: first or err})
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            try:
                conn.executemany(_INSERT, rows)
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                dupes: list[_Write] = []
                refused: dict[str, CheckpointConflictError] = {}
                with self._cv:
                    earlier = dict(self._refused)
                for row in rows:
                    first = (refused.get(row[9]) or earlier.get(row[9])) if row[8] and row[9] else None
                    if first is not None:  # expects a refused checkpoint: refused with its error
                        refused[row[1]] = first
                        continue
                    try:
                        conn.execute(_INSERT, row)
                    except sqlite3.IntegrityError as e:
                        if _is_refusal(e) and row[8]:
                            refused[row[1]] = self._conflict(conn, row)
                        else:
                            dupes.append(row)
                if atomic and refused:
                    conn.execute("ROLLBACK")
                    raise next(iter(refused.values())) from None
                conn.execute("COMMIT")
                if refused:
                    self._refuse(refused)
                if dupes:
                    raise self._duplicate(dupes[0]) from None
                return
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _refuse(self, refused: dict[str, CheckpointConflictError]) -> None:
        """Keep refused background writes for their writers: a refusal chained on an earlier one
        replaces it (the writer asks about its newest only)."""
        with self._cv:
            for cid, err in refused.items():
                if err.checkpoint_id != cid:
                    for k in [k for k, v in self._refused.items() if v is err]:
                        del self._refused[k]
                self._refused[cid] = err
            while len(self._refused) > _MAX_REFUSED:
                del self._refused[next(iter(self._refused))]

    def _raise_writer_error(self) -> None:
        with self._cv:
            err, self._writer_error = self._writer_error, None
        if err is not None:
            raise err

    def put(self, record: CheckpointRecord, *, expected: Expected = NO_CHECK) -> None:
        """Store a checkpoint and commit it before returning (after anything queued before it).

        Raises:
            CheckpointConflictError: ``expected`` is not the thread's newest checkpoint.
        """
        row = self._encode(record) + (_UNCHECKED if expected is NO_CHECK else (1, expected))
        if self._pending or self._writer_error is not None:
            self.flush()
        # the durability="sync" path of every step: no context managers, one statement
        with self._lock:
            conn = self._fg()
            try:
                self._insert_one(conn, row)
            except CheckpointError:
                raise
            except (sqlite3.Error, OSError) as exc:
                raise self._error(exc, "store checkpoints") from exc

    def put_many(self, records: Sequence[CheckpointRecord], *, expected: Expected = NO_CHECK) -> None:
        """Store several checkpoints in one transaction (after anything queued before them).

        Raises:
            CheckpointConflictError: ``expected`` is not the thread's newest checkpoint; none of
                the records was stored.
        """
        check: tuple[int, str | None] = _UNCHECKED if expected is NO_CHECK else (1, expected)
        rows: list[_Write] = []
        for r in records:  # the first record is checked; the transaction covers the others
            rows.append((*self._encode(r), *check))
            check = _UNCHECKED
        self._put_rows(rows, atomic=True)

    def _put_rows(self, rows: Sequence[_Write], *, atomic: bool) -> None:
        self.flush()
        if not rows:
            return
        with self._lock:
            conn = self._fg()
            with self._errors("store checkpoints"):
                if len(rows) == 1:
                    self._insert_one(conn, rows[0])
                else:
                    self._insert(conn, rows, atomic=atomic)

    def put_nowait(self, record: CheckpointRecord, *, expected: Expected = NO_CHECK) -> None:
        """Queue a checkpoint for the background writer and return at once.

        The record is serialized now (so a value that cannot be stored fails here, at its step);
        :meth:`flush` waits for the queue. An error of an earlier background write is raised by
        the next call of this method or of :meth:`flush`. With ``expected``, the writer checks the
        thread's newest checkpoint when it writes the record; a refusal is raised to this writer
        only: by its next call here (whose ``expected`` is the refused checkpoint) or by
        ``flush(checkpoint_id=...)``, and later records expecting a refused one are refused too.

        Raises:
            CheckpointConflictError: ``expected`` is a checkpoint the background writer refused.
        """
        row = self._encode(record) + (_UNCHECKED if expected is NO_CHECK else (1, expected))
        if self.in_memory:
            self._put_rows([row], atomic=True)
            return
        if self._pid != os.getpid() or self._closed:
            with self._lock:
                self._fg()
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
                    target=self._writer_loop, name="agentgraph_nb-sqlite-writer", daemon=True
                )
                self._writer.start()
        self._queue.put(row)

    def _writer_loop(self) -> None:
        """Write queued rows, many per transaction; exit when idle so an unused store holds
        no thread or connection (``put_nowait`` starts a new writer when needed)."""
        conn: sqlite3.Connection | None = None
        stop = False
        try:
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
                try:
                    with self._errors(f"store {len(batch)} checkpoint(s) in the background"):
                        if conn is None:
                            conn = self._connect()
                        self._insert(conn, batch, atomic=False)
                except CheckpointError as exc:
                    error = exc
                except BaseException as exc:  # never let the writer die silently
                    error = CheckpointError(f"background write to {self.path} failed: {exc!r}")
                with self._cv:
                    if error is not None and self._writer_error is None:
                        self._writer_error = error
                    self._pending -= len(batch)
                    self._cv.notify_all()
        finally:
            if conn is not None:
                conn.close()

    def flush(self, checkpoint_id: str | None = None) -> None:
        """Wait until every queued checkpoint is committed.

        Args:
            checkpoint_id: the last checkpoint this writer handed to :meth:`put_nowait`: raise
                the conflict that refused it (or an earlier one it was chained on), once.

        Raises:
            CheckpointConflictError: the background writer refused ``checkpoint_id``.
            CheckpointError: a background write failed (locked, disk full, ...).
        """
        if self._pid != os.getpid():
            return
        with self._cv:
            while self._pending > 0:
                self._cv.wait()
            refused = self._refused.pop(checkpoint_id, None) if checkpoint_id is not None else None
        if refused is not None:
            raise refused
        self._raise_writer_error()

    def put_writes(
        self, thread_id: str, checkpoint_id: str, writes: Sequence[PendingWrite]
    ) -> None:
        rows = []
        for w in writes:
            try:
                payload = self.serializer.dumps(
                    [w.update, w.goto], root="state",
                    context=context(thread_id, checkpoint_id, "write"),
                )
            except CheckpointError as exc:
                raise CheckpointError(
                    f"cannot store the pending write of node {w.node!r} (thread {thread_id!r}): "
                    f"node {w.node!r} wrote {exc}"
                ) from exc.__cause__
            rows.append((thread_id, checkpoint_id, w.task_index, w.node, payload))
        self.flush()
        with self._lock:
            conn = self._fg()
            with self._errors("store pending writes"):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    found = conn.execute(
                        "SELECT 1 FROM checkpoints WHERE thread_id = ? AND checkpoint_id = ?",
                        (thread_id, checkpoint_id),
                    ).fetchone()
                    if found is None:
                        raise KeyError(f"no checkpoint {checkpoint_id!r} in thread {thread_id!r}")
                    conn.executemany(
                        "INSERT INTO writes (thread_id, checkpoint_id, task_index, node, payload) "
                        "VALUES (?, ?, ?, ?, ?)",
                        rows,
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise

    # -- reading ------------------------------------------------------------------------------
    def _sync_reads(self) -> None:
        if self._pending:  # read your own writes
            self.flush()

    def get(self, thread_id: str, checkpoint_id: str | None = None) -> CheckpointRecord | None:
        self._sync_reads()
        with self._lock:
            conn = self._fg()
            with self._errors("read a checkpoint"):
                if checkpoint_id is None:
                    row = conn.execute(
                        f"SELECT {_COLS} FROM checkpoints WHERE thread_id = ? ORDER BY seq DESC LIMIT 1",
                        (thread_id,),
                    ).fetchone()
                else:
                    row = conn.execute(
                        f"SELECT {_COLS} FROM checkpoints WHERE thread_id = ? AND checkpoint_id = ?",
                        (thread_id, checkpoint_id),
                    ).fetchone()
                if row is None:
                    return None
                pending = self._load_writes(conn, thread_id, [row[0]])
        rec = self._decode(thread_id, row)
        rec.pending_writes = pending.get(rec.checkpoint_id, [])
        return rec

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
        self._sync_reads()
        n = 0
        last_seq: int | None = None
        while True:
            sql = f"SELECT seq, {_COLS} FROM checkpoints WHERE thread_id = ?"
            args: list[Any] = [thread_id]
            if before is not None:
                sql += " AND checkpoint_id < ?"
                args.append(before)
            if last_seq is not None:
                sql += " AND seq < ?"
                args.append(last_seq)
            sql += f" ORDER BY seq DESC LIMIT {_PAGE}"
            with self._lock:
                conn = self._fg()
                with self._errors("list checkpoints"):
                    rows = conn.execute(sql, args).fetchall()
                    if not rows:
                        return
                    last_seq = rows[-1][0]
                    more = len(rows) == _PAGE
                    if metadata_filter:
                        rows = [r for r in rows if self._matches(thread_id, r, metadata_filter)]
                    pending = self._load_writes(conn, thread_id, [r[1] for r in rows])
            for r in rows:
                rec = self._decode(thread_id, r[1:])
                rec.pending_writes = pending.get(rec.checkpoint_id, [])
                yield rec
                n += 1
                if limit is not None and n >= limit:
                    return
            if not more:
                return

    def _matches(self, thread_id: str, row: Sequence[Any], flt: dict[str, Any]) -> bool:
        meta = self._decode_meta(thread_id, row[1], row[5])
        return all(meta.get(k) == v for k, v in flt.items())

    def _decode_meta(self, thread_id: str, checkpoint_id: str, blob: bytes) -> dict[str, Any]:
        try:
            meta = self.serializer.loads(blob, context=context(thread_id, checkpoint_id, "metadata"))
        except CheckpointError as exc:
            raise CheckpointError(
                f"cannot read checkpoint {checkpoint_id!r} of thread {thread_id!r} from "
                f"{self.path}: {exc}"
            ) from exc
        if type(meta) is not dict:
            raise self._malformed(
                thread_id, checkpoint_id, f"metadata is {_kind(meta)}, not a dict"
            )
        return meta

    def list_threads(self) -> builtins.list[str]:
        self._sync_reads()
        with self._lock:
            conn = self._fg()
            with self._errors("list threads"):
                rows = conn.execute(
                    "SELECT thread_id FROM checkpoints GROUP BY thread_id ORDER BY MIN(seq)"
                ).fetchall()
                for (thread_id,) in rows:
                    if type(thread_id) is not str:  # SQLite stores any type in a TEXT column
                        (cid,) = conn.execute(
                            "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? LIMIT 1",
                            (thread_id,),
                        ).fetchone()
                        raise CheckpointError(
                            f"cannot list the threads of {self.path}: checkpoint {cid!r} has "
                            f"thread id {thread_id!r}, {_kind(thread_id)}, not a str. "
                            "The row is damaged or was edited outside agentgraph_nb (the file "
                            "was not modified)"
                        )
        return [r[0] for r in rows]

    def delete_thread(self, thread_id: str) -> None:
        self.flush()
        with self._lock:
            conn = self._fg()
            with self._errors("delete a thread"):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute("DELETE FROM writes WHERE thread_id = ?", (thread_id,))
                    conn.execute("DELETE FROM checkpoints WHERE thread_id = ?", (thread_id,))
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise

    def stored_bytes(self, thread_id: str) -> int | None:
        self._sync_reads()
        with self._lock:
            conn = self._fg()
            with self._errors("measure a thread"):
                (a,) = conn.execute(
                    "SELECT COALESCE(SUM(LENGTH(metadata) + LENGTH(payload)), 0) FROM checkpoints "
                    "WHERE thread_id = ?", (thread_id,)).fetchone()
                (b,) = conn.execute(
                    "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM writes WHERE thread_id = ?",
                    (thread_id,)).fetchone()
        return int(a) + int(b)

    def reencrypt(self, thread_id: str | None = None) -> int:
        self.flush()
        reseal = self.serializer.reseal
        n = 0
        where, args = ("WHERE thread_id = ?", (thread_id,)) if thread_id is not None else ("", ())
        with self._lock:
            conn = self._fg()
            with self._errors("re-encrypt records"):
                # the old bytes (plain ones, after allow_plaintext) are zeroed, not left in free
                # pages; the WAL holding them is truncated after the commit
                conn.execute("PRAGMA secure_delete = ON")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    rows = conn.execute(
                        f"SELECT seq, thread_id, checkpoint_id, metadata, payload FROM checkpoints {where}",
                        args,
                    ).fetchall()
                    for seq, t, c, meta, payload in rows:
                        try:
                            new_meta = reseal(meta, context=context(t, c, "metadata"))
                            new_payload = reseal(payload, context=context(t, c, "payload"))
                        except CheckpointError as exc:
                            raise CheckpointError(
                                f"cannot re-encrypt checkpoint {c!r} of thread {t!r} in {self.path}: {exc}"
                            ) from exc
                        if new_meta is not None or new_payload is not None:
                            conn.execute(
                                "UPDATE checkpoints SET metadata = ?, payload = ? WHERE seq = ?",
                                (new_meta or meta, new_payload or payload, seq),
                            )
                            n += (new_meta is not None) + (new_payload is not None)
                    rows = conn.execute(
                        f"SELECT seq, thread_id, checkpoint_id, payload FROM writes {where}", args
                    ).fetchall()
                    for seq, t, c, payload in rows:
                        try:
                            new = reseal(payload, context=context(t, c, "write"))
                        except CheckpointError as exc:
                            raise CheckpointError(
                                f"cannot re-encrypt a pending write of checkpoint {c!r} of thread "
                                f"{t!r} in {self.path}: {exc}"
                            ) from exc
                        if new is not None:
                            conn.execute("UPDATE writes SET payload = ? WHERE seq = ?", (new, seq))
                            n += 1
                    conn.execute("COMMIT")
                    if n:
                        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                finally:
                    conn.execute("PRAGMA secure_delete = OFF")
        return n

    def delete_checkpoints(self, thread_id: str, checkpoint_ids: Sequence[str]) -> None:
        self.flush()
        ids = builtins.list(checkpoint_ids)
        with self._lock:
            conn = self._fg()
            with self._errors("delete checkpoints"):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for i in range(0, len(ids), 500):
                        chunk = ids[i : i + 500]
                        marks = ", ".join("?" * len(chunk))
                        conn.execute(
                            f"DELETE FROM writes WHERE thread_id = ? AND checkpoint_id IN ({marks})",
                            (thread_id, *chunk),
                        )
                        conn.execute(
                            f"DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id IN ({marks})",
                            (thread_id, *chunk),
                        )
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise

    def get_chain(
        self, thread_id: str, checkpoint_id: str | None = None
    ) -> builtins.list[CheckpointRecord]:
        """Records from the nearest snapshot down to the checkpoint, in one recursive query.

        Raises:
            CheckpointError: the parent links loop, or name a missing checkpoint before a
                snapshot (a damaged file); the query visits each checkpoint of the thread once.
        """
        self._sync_reads()
        sql = _CHAIN.format(anchor=_ANCHOR_NEWEST if checkpoint_id is None else _ANCHOR_ID)
        with self._lock:
            conn = self._fg()
            with self._errors("read a checkpoint chain"):
                found = conn.execute(sql, {"t": thread_id, "c": checkpoint_id}).fetchall()
                rows = self._walk(thread_id, found)
                pending = self._load_writes(conn, thread_id, [r[0] for r in rows]) if rows else {}
        chain = [self._decode(thread_id, r) for r in rows]
        for rec in chain:
            rec.pending_writes = pending.get(rec.checkpoint_id, [])
        return chain

    def _walk(self, thread_id: str, found: Sequence[Any]) -> builtins.list[Any]:
        """Order the rows of the chain query oldest first, following the parent links from the
        anchor; a loop or a missing parent before a snapshot is an error naming them."""
        if not found:
            return []
        by_id = {r[2]: r for r in found}
        for row in found:
            if row[0]:  # the anchor (met again as a plain row when the links loop through it)
                break
        chain = [row]
        most = len(by_id)  # a longer walk has met some checkpoint twice
        while not row[1] and row[3] is not None:
            parent = by_id.get(row[3])
            if parent is None:
                raise broken_chain_error(self, thread_id, chain[0][2], row[2], row[3])
            chain.append(parent)
            if len(chain) > most:
                ids = [r[2] for r in chain]
                first = next(i for i, c in enumerate(ids) if c in ids[:i])
                raise cycle_error(self, thread_id, ids[: first + 1])
            row = parent
        chain.reverse()
        return [r[2:] for r in chain]

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        """Write what is queued, stop the writer thread and close the file. Idempotent."""
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
                with self._lock:
                    if self._conn is not None:
                        self._conn.close()
                        self._conn = None


_open_stores: weakref.WeakSet[SqliteCheckpointer] = weakref.WeakSet()
_inherited: list[sqlite3.Connection | None] = []  # connections a forked child must not close


@atexit.register
def _close_open_stores() -> None:
    """Write what ``put_nowait`` queued before the interpreter exits."""
    for store in list(_open_stores):
        try:
            store.close()
        except Exception as exc:
            _log.error("could not write queued checkpoints to %s at exit: %s", store.path, exc)
