"""PostgreSQL checkpoint store: shared by processes and machines, sync and natively async.

``compile(checkpointer="postgresql://user:pw@host:5432/db")`` (extra ``postgres``: psycopg 3;
PostgreSQL 14 or newer, for the ``CYCLE`` clause of the chain query).
The sync methods use sync connections, the async ones (``ainvoke``/``astream``) asyncio
connections of the running loop, each from a small pool of this store; one copy of the logic
drives both (see ``_network.py``). The pools are our own few lines rather than psycopg_pool's: they
connect in the caller (no background thread, no reconnect backoff, so the first call after a
server restart connects at once) and add nothing per checkout.

Tables (in ``schema``, ``public`` by default): ``agentgraph_meta`` (schema version),
``agentgraph_threads`` (each thread's newest checkpoint: its *head*), ``agentgraph_checkpoints``
(one row per checkpoint, content as two blobs, as in the SQLite store) and ``agentgraph_writes``
(pending writes).

**Conflicts.** A checked write is one statement: it moves the thread's head from ``expected`` to
the new checkpoint (``UPDATE ... WHERE head = expected``, which takes the row's lock, so a second
writer waits and then sees the new head) and inserts the checkpoint only when the head moved. So
of two writers of one thread the second gets a :class:`~agentgraph_nb.errors.CheckpointConflictError`
and stores nothing. One round trip and one commit per ``durability="sync"`` step.

**Speed.** The sync write of a checkpoint goes straight through psycopg's libpq layer
(``psycopg.pq``: two statements prepared per connection, one for a thread's first write and one,
without the branch that creates the thread's row, for the writes that know its head; text and
binary parameters as libpq takes them, the GIL released while the server works), not through a
cursor, whose adaptation machinery cost about 40 µs of a step's ~100 µs of client and server time
here. A step's write takes an idle connection of the pool and that statement directly; only what
is not a plain success goes through the general path. Errors come back as psycopg's own exception
classes (``psycopg.errors.error_from_result``); where a connection cannot keep prepared statements
(a pooler in transaction mode), the store goes back to cursors.

**Failures.** A server that is down or a connection that drops is a
:class:`~agentgraph_nb.errors.CheckpointError` naming the store (its URL without the password)
and the thread; checkpoints committed before are intact, and the next call connects again (a
connection from the pool that died while idle is replaced once, silently: a write that did reach
the server before the drop is recognised as this writer's own, not as a conflict).
"""

from __future__ import annotations

import functools
import re
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from agentgraph_nb._lazy import requires_extra
from agentgraph_nb.checkpoint._network import (
    NetworkCheckpointer,
    Op,
    Row,
    close_loop_resource,
    loop_resource,
    typed_options,
)
from agentgraph_nb.checkpoint.base import (
    NO_CHECK,
    CheckpointRecord,
    Durability,
    Expected,
    Retention,
)
from agentgraph_nb.checkpoint.serde import Serializer
from agentgraph_nb.errors import CheckpointError

with requires_extra("the PostgreSQL checkpoint store"):
    import psycopg

if TYPE_CHECKING:
    import asyncio

__all__ = ["SCHEMA_VERSION", "PostgresCheckpointer"]

SCHEMA_VERSION = 1
_APP = "agentgraph_nb"
_LOCK_KEY = 0x61676E62  # pg_advisory_xact_lock key serialising schema creation ("agnb")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_PAGE = 64
# the checkpoint write's parameters, in the order of a Row, with their SQL types; text format but
# for the two blobs (binary), as libpq takes them (see PostgresCheckpointer._put_pq)
_PUT_PARAMS = (("t", "text"), ("c", "text"), ("p", "text"), ("step", "integer"), ("created", "text"),
               ("snap", "boolean"), ("meta", "bytea"), ("payload", "bytea"), ("chk", "integer"), ("exp", "text"))
_PUT_FORMATS = [0, 0, 0, 0, 0, 0, 1, 1, 0, 0]
_PUT_NAME = b"agentgraph_put"
# a step's write where the thread's head is known (expected): no branch creating the thread's row
_PUT_NEXT_NAME = b"agentgraph_put_next"
_PUT_NEXT_FORMATS = [0, 0, 0, 0, 0, 0, 1, 1, 0]
_COMMAND_OK = psycopg.pq.ExecStatus.COMMAND_OK
_BAD = psycopg.pq.ConnStatus.BAD
_IDLE = psycopg.pq.TransactionStatus.IDLE
_SQLSTATE = psycopg.pq.DiagnosticField.SQLSTATE


def _message(res: Any) -> str:
    return bytes(res.error_message or b"").decode("utf-8", "replace").strip()


class _Pool:
    """Sync connections, at most ``size`` open; idle ones are reused. Connecting happens in
    the caller (no background thread), so a restarted server is reached by the next call. A
    checkout is one uncontended lock when a connection is idle (a semaphore with a timeout cost
    several µs of a step here); a caller waits only when ``size`` are out."""

    def __init__(self, connect: Callable[[], Any], size: int, timeout: float) -> None:
        self._connect = connect
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self._open = 0  # connections made and not yet closed (idle or out)
        self._waiting = 0
        self._size = size
        self.timeout = timeout

    def acquire(self) -> tuple[Any, bool]:
        deadline = None
        with self._lock:
            while True:
                if self._idle:
                    return self._idle.pop(), True
                if self._open < self._size:
                    self._open += 1
                    break
                if deadline is None:
                    deadline = time.monotonic() + self.timeout
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no connection of the pool freed up within {self.timeout:g} s (pool full)")
                self._waiting += 1
                try:
                    self._freed.wait(left)
                finally:
                    self._waiting -= 1
        try:
            return self._connect(), False
        except BaseException:
            self._forget()
            raise

    def _forget(self) -> None:
        with self._lock:
            self._open -= 1
            if self._waiting:
                self._freed.notify()

    def take_idle(self) -> Any:
        """An idle connection, or None (then the caller goes through :meth:`acquire`)."""
        with self._lock:
            return self._idle.pop() if self._idle else None

    def give_back(self, conn: Any) -> None:
        """Return a connection known to be idle and sound (its last command succeeded outside a
        transaction): :meth:`release` without its checks."""
        with self._lock:
            self._idle.append(conn)
            if self._waiting:
                self._freed.notify()

    def release(self, conn: Any) -> None:
        if not conn.closed and conn.pgconn.transaction_status != _IDLE:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
                conn.close()
        if conn.closed or conn.broken:
            conn.close()
            self._forget()
            return
        with self._lock:
            self._idle.append(conn)
            if self._waiting:
                self._freed.notify()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
        for conn in idle:
            conn.close()


class _APool:
    """The async counterpart of :class:`_Pool`, for one event loop."""

    def __init__(self, connect: Callable[[], Any], size: int, timeout: float) -> None:
        import asyncio

        self._connect = connect
        self._idle: list[Any] = []
        self._slots = asyncio.Semaphore(size)
        self.timeout = timeout

    async def acquire(self) -> tuple[Any, bool]:
        import asyncio

        if not self._slots.locked():
            await self._slots.acquire()  # a free slot: taken at once (wait_for would make a task and a timer)
        else:
            try:
                await asyncio.wait_for(self._slots.acquire(), self.timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(
                    f"no connection of the pool freed up within {self.timeout:g} s (pool full)") from None
        if self._idle:
            return self._idle.pop(), True
        try:
            return await self._connect(), False
        except BaseException:
            self._slots.release()
            raise

    async def release(self, conn: Any) -> None:
        try:
            if not conn.closed and conn.pgconn.transaction_status != _IDLE:
                try:
                    await conn.execute("ROLLBACK")
                except psycopg.Error:
                    await conn.close()
            if conn.closed or conn.broken:
                await conn.close()
            else:
                self._idle.append(conn)
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    def __del__(self) -> None:  # its loop went away without closing it: close the sockets
        self.close_now()

    def close_now(self) -> None:
        """Close the idle connections without awaiting (from any thread: closes the sockets)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            try:
                conn.pgconn.finish()
            except Exception:  # already gone
                pass


def _parse(url: str) -> tuple[str, dict[str, str]]:
    """Split our options (``?schema=...&pool_size=...``) from the connection string's."""
    parts = urllib.parse.urlsplit(url)
    ours: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if k in _OPTIONS:
            ours[k] = v
        else:
            rest.append((k, v))
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql") else parts.scheme
    conninfo = urllib.parse.urlunsplit(parts._replace(scheme=scheme, query=urllib.parse.urlencode(rest)))
    return conninfo, ours


_OPTIONS: dict[str, type] = {
    "schema": str, "snapshot_every": int, "durability": str, "pool_size": int, "timeout": float,
}


class PostgresCheckpointer(NetworkCheckpointer):
    """Checkpoints in a PostgreSQL database: shared by processes and machines.

    Args:
        url: ``postgresql://user:password@host:port/dbname``; libpq options may follow
            (``?sslmode=require``). Our own options can go there too: ``schema``,
            ``snapshot_every``, ``durability``, ``pool_size``, ``timeout``.
        schema: the Postgres schema holding the tables (created when missing).
        serializer: turns values into bytes (default: the process-wide serializer).
        snapshot_every: full values every this many steps along a branch, writes in between.
        durability: default for runs using this store (``"sync"``, ``"async"``, ``"exit"``).
        pool_size: connections at most, per event loop for the async methods and for the sync
            ones; a call waiting longer than ``timeout`` for one is an error.
        timeout: seconds to wait for a connection (to connect, or for one of the pool).
        retention: old checkpoints to delete after each run (see :class:`Retention`).

    Raises:
        MissingDependencyError: psycopg is not installed (``pip install "agentgraph_nb[postgres]"``).

    Example:
        >>> app = graph.compile(checkpointer="postgresql://me:pw@db:5432/agents")
        >>> await app.ainvoke({"question": "q"}, thread_id="t1")   # never blocks the loop
    """

    _kind = "PostgreSQL store"

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        serializer: Serializer | None = None,
        snapshot_every: int | None = None,
        durability: Durability | None = None,
        pool_size: int | None = None,
        timeout: float | None = None,
        retention: Retention | None = None,
    ) -> None:
        conninfo, opts = _parse(url)
        values = typed_options(opts, _OPTIONS)
        super().__init__(
            url, serializer=serializer,
            snapshot_every=snapshot_every if snapshot_every is not None else values.get("snapshot_every", 32),
            durability=durability if durability is not None else values.get("durability", "sync"),
            retention=retention,
        )
        self.schema = schema if schema is not None else values.get("schema", "public")
        if not _NAME.match(self.schema):
            raise ValueError(f"schema {self.schema!r} is not a plain SQL name (letters, digits, _)")
        self.pool_size = pool_size if pool_size is not None else values.get("pool_size", 10)
        if not isinstance(self.pool_size, int) or self.pool_size < 1:
            raise ValueError(f"pool_size must be an int >= 1, got {self.pool_size!r}")
        self.timeout = float(timeout if timeout is not None else values.get("timeout", 10.0))
        self._conninfo = conninfo
        self._ready = False
        s = f'"{self.schema}"'
        self._th, self._cp, self._wr, self._meta = (
            f"{s}.agentgraph_threads", f"{s}.agentgraph_checkpoints", f"{s}.agentgraph_writes", f"{s}.agentgraph_meta")
        self._sql_put = f"""
WITH upd AS (
  UPDATE {self._th} SET head = %(c)s WHERE thread_id = %(t)s AND (%(chk)s = 0 OR head = %(exp)s) RETURNING 1
), ins AS (
  INSERT INTO {self._th} (thread_id, head) SELECT %(t)s, %(c)s
  WHERE NOT EXISTS (SELECT 1 FROM upd) AND (%(chk)s = 0 OR %(exp)s::text IS NULL)
  ON CONFLICT (thread_id) DO NOTHING RETURNING 1
)
INSERT INTO {self._cp} (thread_id, checkpoint_id, parent_id, step, created_at, snapshot, metadata, payload)
SELECT %(t)s, %(c)s, %(p)s, %(step)s, %(created)s, %(snap)s, %(meta)s, %(payload)s
WHERE EXISTS (SELECT 1 FROM upd) OR EXISTS (SELECT 1 FROM ins)"""
        sql_pq = self._sql_put
        for i, (name, cast) in enumerate(_PUT_PARAMS, 1):
            sql_pq = sql_pq.replace(f"%({name})s::text", f"%({name})s").replace(f"%({name})s", f"${i}::{cast}")
        self._sql_put_pq = sql_pq.encode()
        # the same when the writer expects a head (a thread's every write but its first): the CTE
        # that creates the thread's row cannot apply, and leaving it out saves ~3 us of server time
        self._sql_put_next_pq = f"""
WITH upd AS (UPDATE {self._th} SET head = $2::text WHERE thread_id = $1::text AND head = $9::text RETURNING 1)
INSERT INTO {self._cp} (thread_id, checkpoint_id, parent_id, step, created_at, snapshot, metadata, payload)
SELECT $1::text, $2::text, $3::text, $4::integer, $5::text, $6::boolean, $7::bytea, $8::bytea
WHERE EXISTS (SELECT 1 FROM upd)""".encode()
        # connections on which the write is prepared (-> their text encoding)
        self._prepared: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._pq_put = True  # False once a connection could not prepare it: cursors from then on
        self._sql_head = f"SELECT head FROM {self._th} WHERE thread_id = %s"
        self._sql_writes = (f"SELECT checkpoint_id, task_index, node, payload FROM {self._wr} "
                            "WHERE thread_id = %s AND checkpoint_id = ANY(%s) ORDER BY seq")
        cols = "c.checkpoint_id, c.parent_id, c.step, c.created_at, c.snapshot, c.metadata, c.payload"
        self._cols = cols
        self._sql_get = (f"SELECT {cols} FROM {self._cp} c WHERE c.thread_id = %(t)s AND c.checkpoint_id = "
                         f"COALESCE(%(c)s, (SELECT head FROM {self._th} WHERE thread_id = %(t)s))")
        self._sql_chain = f"""
WITH RECURSIVE chain (checkpoint_id, parent_id, snapshot, depth) AS (
  SELECT checkpoint_id, parent_id, snapshot, 0 FROM {self._cp}
  WHERE thread_id = %(t)s AND checkpoint_id = COALESCE(%(c)s, (SELECT head FROM {self._th} WHERE thread_id = %(t)s))
  UNION ALL
  SELECT p.checkpoint_id, p.parent_id, p.snapshot, chain.depth + 1
  FROM chain JOIN {self._cp} p ON p.thread_id = %(t)s AND p.checkpoint_id = chain.parent_id
  WHERE NOT chain.snapshot
) CYCLE checkpoint_id SET looped USING path
SELECT {cols}, chain.looped FROM chain JOIN {self._cp} c
  ON c.thread_id = %(t)s AND c.checkpoint_id = chain.checkpoint_id
ORDER BY chain.depth"""
        self._pool: _Pool | None = None
        self._pool_lock = threading.Lock()
        # per event loop: (its pool, the guard that closes it with the loop; see loop_resource)
        self._apools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    # -- connections ------------------------------------------------------------------------
    def _connect(self) -> Any:
        return psycopg.connect(self._conninfo, autocommit=True, connect_timeout=max(2, int(self.timeout)))

    async def _aconnect(self) -> Any:
        return await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=max(2, int(self.timeout)))

    def _sync_pool(self) -> _Pool:
        pool = self._pool
        if pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = _Pool(self._connect, self.pool_size, self.timeout)
                pool = self._pool
        return pool

    async def _async_pool(self) -> _APool:
        return await loop_resource(  # type: ignore[no-any-return]
            self._apools, lambda: _APool(self._aconnect, self.pool_size, self.timeout), _APool.aclose)

    def _after_fork(self) -> None:
        self._pool = None  # the parent's sockets are left alone
        self._apools = weakref.WeakKeyDictionary()

    def _close_connections(self) -> None:
        if self._pool is not None:
            self._pool.close()
        for pool, _guard in list(self._apools.values()):
            pool.close_now()

    async def _aclose_connections(self) -> None:
        await close_loop_resource(self._apools)

    # -- writing: the common case first ----------------------------------------------------------
    def put(self, record: CheckpointRecord, *, expected: Expected = NO_CHECK) -> None:
        """Store a checkpoint and commit it before returning.

        A step's write, once the store is set up, takes an idle connection and sends the prepared
        statement straight away; whatever is not a plain success (a conflict, a duplicate id, an
        error, no idle connection, a write waiting in the background queue) goes through the
        general path, which sends the write again, reads the head when nothing was stored and
        reports it: a write that did commit is recognised there by its id.

        Raises:
            CheckpointConflictError: ``expected`` is not the thread's newest checkpoint.
            CheckpointError: the server cannot be reached, or refused the write.
        """
        pool = self._pool
        if pool is None or not self._pq_put or not self._direct_write_ok():
            return super().put(record, expected=expected)
        row = self._row(record, expected)
        conn = pool.take_idle()
        if conn is not None:
            try:
                stored = self._put_pq(conn, row)
            except Exception:  # the general path reports it (or succeeds on a new connection)
                pool.release(conn)
            except BaseException:
                pool.release(conn)
                raise
            else:
                if self._pq_put and conn.pgconn.transaction_status == _IDLE:
                    pool.give_back(conn)
                else:  # the write went through a cursor after all: the full checks
                    pool.release(conn)
                if stored == 1:
                    return None
        self._drive(self._op_put, ([row], True), "store a checkpoint", record.thread_id)
        return None

    # -- drivers ----------------------------------------------------------------------------
    def _exec(self, conn: Any, req: tuple[str, Any, str]) -> Any:
        sql, params, kind = req
        if kind == "put":  # params: a Row
            if self._pq_put:
                return self._put_pq(conn, params)
            return conn.execute(sql, self._params(params)).rowcount
        cur = conn.execute(sql, params)
        if kind == "rowcount":
            return cur.rowcount
        if kind == "all":
            return cur.fetchall()
        if kind == "scalar":
            row = cur.fetchone()
            return None if row is None else row[0]
        return None

    # The checkpoint write through libpq (see the module's docstring), sync and asyncio: prepare the
    # two statements on a connection's first write, send the one that fits, and read the outcome.
    def _prepare_failed(self, conn: Any, res: Any) -> bool:
        """A PREPARE refused: True when this connection cannot keep statements (then cursors from
        now on); False when it was prepared already; raises when the connection is gone or inside
        a transaction (put_many's)."""
        pgconn = conn.pgconn
        if pgconn.status == _BAD:
            raise psycopg.OperationalError(_message(res) or "the connection was lost")
        if pgconn.transaction_status != _IDLE:  # inside put_many's transaction: report it
            raise psycopg.errors.error_from_result(res, encoding=conn.info.encoding)
        if res.error_field(_SQLSTATE) == b"42P05":
            return False  # prepared already (only the other one went away): keep it
        self._pq_put = False  # cannot prepare here (a pooler?): cursors from now on
        return True

    @staticmethod
    def _put_call(row: Row, enc: str) -> tuple[bytes, list[Any], list[int]]:
        """The prepared statement that fits ``row`` and its parameters, as libpq takes them."""
        t, c, p, step, created, snap, meta, payload, chk, exp = row
        if chk and exp is not None:
            return _PUT_NEXT_NAME, [
                t.encode(enc), c.encode(enc), None if p is None else p.encode(enc), b"%d" % step,
                created.encode(enc), b"t" if snap else b"f", meta, payload, exp.encode(enc),
            ], _PUT_NEXT_FORMATS
        return _PUT_NAME, [
            t.encode(enc), c.encode(enc), None if p is None else p.encode(enc), b"%d" % step,
            created.encode(enc), b"t" if snap else b"f", meta, payload, b"%d" % chk,
            None if exp is None else exp.encode(enc),
        ], _PUT_FORMATS

    def _put_outcome(self, conn: Any, res: Any, enc: str, again: bool) -> int | None:
        """Rows the write stored, or None when it should be prepared and sent again."""
        if res.status == _COMMAND_OK:
            return int(res.command_tuples or 0)
        pgconn = conn.pgconn
        if pgconn.status == _BAD:
            raise psycopg.OperationalError(_message(res) or "the connection was lost")
        if res.error_field(_SQLSTATE) == b"26000":  # the statement went away (DEALLOCATE, DISCARD ALL)
            self._prepared.pop(conn, None)
            if again and pgconn.transaction_status == _IDLE:  # nothing was written: prepare it again
                return None
        raise psycopg.errors.error_from_result(res, encoding=enc)

    def _put_pq(self, conn: Any, row: Row, again: bool = True) -> int:
        """The sync write: rows it stored."""
        pgconn = conn.pgconn
        enc = self._prepared.get(conn)
        if enc is None:
            for name, sql in ((_PUT_NAME, self._sql_put_pq), (_PUT_NEXT_NAME, self._sql_put_next_pq)):
                res = pgconn.prepare(name, sql)
                if res.status != _COMMAND_OK and self._prepare_failed(conn, res):
                    return self._exec(conn, (self._sql_put, row, "put"))  # type: ignore[no-any-return]
            enc = self._prepared[conn] = conn.info.encoding
        stored = self._put_outcome(conn, pgconn.exec_prepared(*self._put_call(row, enc)), enc, again)
        return self._put_pq(conn, row, again=False) if stored is None else stored

    @staticmethod
    async def _apq(conn: Any, send: Callable[[], None]) -> Any:
        """Send one libpq command on an asyncio connection and await its result without blocking
        the loop (as psycopg's cursors do: ``AsyncConnection.wait`` on ``generators.execute``)."""
        from psycopg import generators

        async with conn.lock:
            send()
            results = await conn.wait(generators.execute(conn.pgconn))
        return results[-1]

    async def _aput_pq(self, conn: Any, row: Row, again: bool = True) -> int:
        """The asyncio write: rows it stored."""
        pgconn = conn.pgconn
        enc = self._prepared.get(conn)
        if enc is None:
            for name, sql in ((_PUT_NAME, self._sql_put_pq), (_PUT_NEXT_NAME, self._sql_put_next_pq)):
                res = await self._apq(conn, functools.partial(pgconn.send_prepare, name, sql))
                if res.status != _COMMAND_OK and self._prepare_failed(conn, res):
                    return await self._aexec(conn, (self._sql_put, row, "put"))  # type: ignore[no-any-return]
            enc = self._prepared[conn] = conn.info.encoding
        name, params, formats = self._put_call(row, enc)
        res = await self._apq(conn, functools.partial(pgconn.send_query_prepared, name, params, formats))
        stored = self._put_outcome(conn, res, enc, again)
        return await self._aput_pq(conn, row, again=False) if stored is None else stored

    async def _aexec(self, conn: Any, req: tuple[str, Any, str]) -> Any:
        sql, params, kind = req
        if kind == "put":
            if self._pq_put:
                return await self._aput_pq(conn, params)
            return (await conn.execute(sql, self._params(params))).rowcount
        cur = await conn.execute(sql, params)
        if kind == "rowcount":
            return cur.rowcount
        if kind == "all":
            return await cur.fetchall()
        if kind == "scalar":
            row = await cur.fetchone()
            return None if row is None else row[0]
        return None

    def _drive(self, op: Callable[..., Op], args: tuple[Any, ...], action: str, thread_id: str | None) -> Any:
        pool = self._sync_pool()
        for attempt in (0, 1):
            try:
                conn, reused = pool.acquire()
            except (psycopg.Error, OSError) as exc:
                raise self._server_error(exc, action, thread_id) from exc
            try:
                if not self._ready:
                    self._run(conn, self._op_setup())
                return self._run(conn, op(*args))
            except psycopg.OperationalError as exc:
                if attempt == 0 and reused and conn.broken:
                    continue  # an idle connection that died (server restarted): once more, afresh
                raise self._server_error(exc, action, thread_id) from exc
            except psycopg.Error as exc:
                raise self._server_error(exc, action, thread_id) from exc
            finally:
                pool.release(conn)
        raise AssertionError("unreachable")

    def _run(self, conn: Any, gen: Op) -> Any:
        res: Any = None
        exc: BaseException | None = None
        while True:
            try:
                req = gen.send(res) if exc is None else gen.throw(exc)
            except StopIteration as stop:
                return stop.value
            exc = None
            try:
                res = self._exec(conn, req)
            except psycopg.errors.IntegrityError as e:
                res, exc = None, e

    async def _adrive(self, op: Callable[..., Op], args: tuple[Any, ...], action: str, thread_id: str | None) -> Any:
        pool = await self._async_pool()
        for attempt in (0, 1):
            try:
                conn, reused = await pool.acquire()
            except (psycopg.Error, OSError) as exc:
                raise self._server_error(exc, action, thread_id) from exc
            try:
                if not self._ready:
                    await self._arun(conn, self._op_setup())
                return await self._arun(conn, op(*args))
            except psycopg.OperationalError as exc:
                if attempt == 0 and reused and conn.broken:
                    continue
                raise self._server_error(exc, action, thread_id) from exc
            except psycopg.Error as exc:
                raise self._server_error(exc, action, thread_id) from exc
            finally:
                await pool.release(conn)
        raise AssertionError("unreachable")

    async def _arun(self, conn: Any, gen: Op) -> Any:
        res: Any = None
        exc: BaseException | None = None
        while True:
            try:
                req = gen.send(res) if exc is None else gen.throw(exc)
            except StopIteration as stop:
                return stop.value
            exc = None
            try:
                res = await self._aexec(conn, req)
            except psycopg.errors.IntegrityError as e:
                res, exc = None, e

    # -- operations -------------------------------------------------------------------------
    def _op_setup(self) -> Op:
        yield ("BEGIN", None, "none")
        yield ("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,), "none")
        yield (f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"', None, "none")
        found = yield (
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'agentgraph_meta'",
            (self.schema,), "scalar")
        if not found:
            for stmt in (
                f"CREATE TABLE {self._meta} (key text PRIMARY KEY, value text NOT NULL)",
                f"INSERT INTO {self._meta} VALUES ('application', '{_APP}'), ('schema_version', '{SCHEMA_VERSION}')",
                f"CREATE TABLE {self._th} (thread_id text PRIMARY KEY, head text NOT NULL, "
                "seq bigint GENERATED ALWAYS AS IDENTITY)",
                f"CREATE TABLE {self._cp} (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                "thread_id text NOT NULL, checkpoint_id text NOT NULL, parent_id text, step integer NOT NULL, "
                "created_at text NOT NULL, snapshot boolean NOT NULL, metadata bytea NOT NULL, "
                "payload bytea NOT NULL, UNIQUE (thread_id, checkpoint_id))",
                f"CREATE INDEX ON {self._cp} (thread_id, seq)",
                f"CREATE TABLE {self._wr} (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                "thread_id text NOT NULL, checkpoint_id text NOT NULL, task_index integer NOT NULL, "
                "node text NOT NULL, payload bytea NOT NULL)",
                f"CREATE INDEX ON {self._wr} (thread_id, checkpoint_id, seq)",
            ):
                yield (stmt, None, "none")
        meta = dict((yield (f"SELECT key, value FROM {self._meta}", None, "all")))
        yield ("COMMIT", None, "none")
        if meta.get("application") != _APP:
            raise CheckpointError(
                f"{self.where}: schema {self.schema!r} holds an agentgraph_meta table of another application; "
                "pass another schema= (nothing was modified)")
        try:
            version = int(meta.get("schema_version", ""))
        except ValueError:
            version = -1
        if version > SCHEMA_VERSION:
            raise CheckpointError(
                f"{self.where} (schema {self.schema!r}) was written by a newer agentgraph_nb (store schema "
                f"version {version}; this version reads up to {SCHEMA_VERSION}). Upgrade agentgraph_nb to read "
                "it, or use another schema= (nothing was modified).")
        self._ready = True

    def _params(self, row: Row) -> dict[str, Any]:
        return {"t": row[0], "c": row[1], "p": row[2], "step": row[3], "created": row[4], "snap": bool(row[5]),
                "meta": row[6], "payload": row[7], "chk": row[8], "exp": row[9]}

    def _op_put(self, rows: Sequence[Row], atomic: bool) -> Op:
        many = len(rows) > 1
        refused = {}
        if many:
            yield ("BEGIN", None, "none")
        for row in rows:
            try:
                n = yield (self._sql_put, row, "put")
            except psycopg.errors.UniqueViolation:
                raise self._duplicate(row) from None
            if n == 0:
                actual = yield (self._sql_head, (row[0],), "scalar")
                if actual == row[1]:
                    continue  # stored by the attempt whose connection dropped before the reply
                err = self._conflict(row, actual)
                if atomic:
                    raise err  # the driver rolls back
                refused[row[1]] = err
        if many:
            yield ("COMMIT", None, "none")
        return None if atomic else refused

    def _op_put_writes(self, thread_id: str, checkpoint_id: str, items: Sequence[tuple[int, str, bytes]]) -> Op:
        if not items:
            return None
        n = yield (
            f"INSERT INTO {self._wr} (thread_id, checkpoint_id, task_index, node, payload) "
            "SELECT %(t)s, %(c)s, x.i, x.n, x.p FROM unnest(%(i)s::integer[], %(n)s::text[], %(p)s::bytea[]) "
            f"WITH ORDINALITY AS x(i, n, p, o) WHERE EXISTS (SELECT 1 FROM {self._cp} "
            "WHERE thread_id = %(t)s AND checkpoint_id = %(c)s) ORDER BY x.o",
            {"t": thread_id, "c": checkpoint_id, "i": [i for i, _, _ in items], "n": [n for _, n, _ in items],
             "p": [p for _, _, p in items]},
            "rowcount")
        if n == 0:
            raise KeyError(f"no checkpoint {checkpoint_id!r} in thread {thread_id!r}")
        return None

    def _op_writes(self, thread_id: str, ids: Sequence[str]) -> Op:
        rows = yield (self._sql_writes, (thread_id, list(ids)), "all")
        out: dict[str, list[Any]] = {}
        for cid, task_index, node, payload in rows:
            out.setdefault(cid, []).append(self._codec.decode_write(thread_id, cid, task_index, node, payload))
        return out

    def _decode_row(self, thread_id: str, r: Sequence[Any]) -> Any:
        return self._codec.decode(thread_id, r[0], r[1], r[2], r[3], r[5], r[6])

    def _op_get(self, thread_id: str, checkpoint_id: str | None) -> Op:
        rows = yield (self._sql_get, {"t": thread_id, "c": checkpoint_id}, "all")
        if not rows:
            return None
        rec = self._decode_row(thread_id, rows[0])
        pending = yield from self._op_writes(thread_id, [rec.checkpoint_id])
        rec.pending_writes = pending.get(rec.checkpoint_id, [])
        return rec

    def _op_chain(self, thread_id: str, checkpoint_id: str | None) -> Op:
        rows = yield (self._sql_chain, {"t": thread_id, "c": checkpoint_id}, "all")
        chain = self._finish_chain(thread_id, [(r[:7], r[7]) for r in rows])
        if chain:
            pending = yield from self._op_writes(thread_id, [r.checkpoint_id for r in chain])
            for rec in chain:
                rec.pending_writes = pending.get(rec.checkpoint_id, [])
        return chain

    def _op_page(self, thread_id: str, before: str | None, cursor: Any) -> Op:
        sql = f"SELECT c.seq, {self._cols} FROM {self._cp} c WHERE c.thread_id = %s"
        args: list[Any] = [thread_id]
        if before is not None:
            sql += " AND c.checkpoint_id < %s"
            args.append(before)
        if cursor is not None:
            sql += " AND c.seq < %s"
            args.append(cursor)
        sql += f" ORDER BY c.seq DESC LIMIT {_PAGE}"
        rows = yield (sql, args, "all")
        recs = [self._decode_row(thread_id, r[1:]) for r in rows]
        if recs:
            pending = yield from self._op_writes(thread_id, [r.checkpoint_id for r in recs])
            for rec in recs:
                rec.pending_writes = pending.get(rec.checkpoint_id, [])
        return recs, (rows[-1][0] if len(rows) == _PAGE else None)

    def _op_threads(self) -> Op:
        rows = yield (f"SELECT thread_id FROM {self._th} ORDER BY seq", None, "all")
        return [r[0] for r in rows]

    def _op_delete_thread(self, thread_id: str) -> Op:
        yield ("BEGIN", None, "none")
        yield (f"DELETE FROM {self._th} WHERE thread_id = %s", (thread_id,), "none")
        yield (f"DELETE FROM {self._wr} WHERE thread_id = %s", (thread_id,), "none")
        yield (f"DELETE FROM {self._cp} WHERE thread_id = %s", (thread_id,), "none")
        yield ("COMMIT", None, "none")

    def _op_stored_bytes(self, thread_id: str) -> Op:
        n = yield (f"SELECT COALESCE((SELECT SUM(length(metadata) + length(payload)) FROM {self._cp} "
                   f"WHERE thread_id = %(t)s), 0) + COALESCE((SELECT SUM(length(payload)) FROM {self._wr} "
                   "WHERE thread_id = %(t)s), 0)", {"t": thread_id}, "scalar")
        return int(n or 0)

    def _op_reencrypt(self, thread_id: str) -> Op:
        n = 0
        yield ("BEGIN", None, "none")
        rows = yield (f"SELECT seq, checkpoint_id, metadata, payload FROM {self._cp} WHERE thread_id = %s "
                      "FOR UPDATE", (thread_id,), "all")
        for seq, cid, meta, payload in rows:
            new_meta = self._reseal(thread_id, cid, "metadata", meta)
            new_payload = self._reseal(thread_id, cid, "payload", payload)
            if new_meta is not None or new_payload is not None:
                yield (f"UPDATE {self._cp} SET metadata = %s, payload = %s WHERE seq = %s",
                       (new_meta or bytes(meta), new_payload or bytes(payload), seq), "none")
                n += (new_meta is not None) + (new_payload is not None)
        rows = yield (f"SELECT seq, checkpoint_id, payload FROM {self._wr} WHERE thread_id = %s FOR UPDATE",
                      (thread_id,), "all")
        for seq, cid, payload in rows:
            new = self._reseal(thread_id, cid, "write", payload)
            if new is not None:
                yield (f"UPDATE {self._wr} SET payload = %s WHERE seq = %s", (new, seq), "none")
                n += 1
        yield ("COMMIT", None, "none")
        return n

    def _op_delete_checkpoints(self, thread_id: str, ids: Sequence[str]) -> Op:
        yield ("BEGIN", None, "none")
        head = yield (self._sql_head + " FOR UPDATE", (thread_id,), "scalar")
        ids = [c for c in ids if c != head]  # the thread's newest always stays
        yield (f"DELETE FROM {self._wr} WHERE thread_id = %s AND checkpoint_id = ANY(%s)", (thread_id, ids), "none")
        yield (f"DELETE FROM {self._cp} WHERE thread_id = %s AND checkpoint_id = ANY(%s)", (thread_id, ids), "none")
        yield ("COMMIT", None, "none")
