"""Redis checkpoint store: shared by processes and machines, sync and natively async, with an
optional time to live for threads.

``compile(checkpointer="redis://host:6379/0")`` (extra ``redis``: redis-py). The sync methods use
a ``redis.Redis`` client, the async ones (``ainvoke``/``astream``) a ``redis.asyncio.Redis`` client
of the running loop; one copy of the logic drives both (see ``_network.py``).

Keys (``prefix`` = ``agentgraph`` by default): ``P:threads`` (a sorted set of thread ids, in order
of creation), ``P:seq`` (a counter: the sequence of a thread's first record), and per thread
``P:t:<thread>:order`` (its checkpoint ids by sequence, each one more than the thread's newest), ``:cp`` (checkpoint id -> content), ``:par`` (checkpoint id -> snapshot flag and parent
id, which the chain walk reads on the server) and ``:w:<checkpoint>`` (pending writes). Each write,
read of a chain and deletion is one Lua script: atomic and one round trip.

**Conflicts.** The write script compares the thread's newest checkpoint with ``expected`` and
inserts in one step (Redis runs a script alone), so of two writers of one thread the second gets
a :class:`~agentgraph_nb.errors.CheckpointConflictError` and stores nothing.

**TTL.** ``ttl=`` seconds: every write sets the thread's keys to expire that long after it, so a
thread left alone disappears (``list_threads`` forgets it too).
"""

from __future__ import annotations

import threading
import urllib.parse
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgpack

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

with requires_extra("the Redis checkpoint store"):
    import redis
    import redis.asyncio
    import redis.exceptions
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

try:  # hiredis (in the extra): packs a command in C, ~1 us for a write's 15 arguments
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - redis-py's own packer then
    _hiredis_pack = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import asyncio

# Errors after which a connection is in an unknown state: it is dropped and the command goes again
# through redis-py's own path, which reconnects with the client's retries (a write whose reply was
# lost is recognised by its id on the second try).
_CONN_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)

__all__ = ["SCHEMA_VERSION", "RedisCheckpointer"]

SCHEMA_VERSION = 1
"""Version of the key layout this code writes (in ``P:meta``); a newer one is refused."""
_APP = "agentgraph_nb"

_PAGE = 64
_MISS = object()  # a direct script call that must go through redis-py's path instead

# KEYS: order, cp, par, threads, seq. ARGV: thread, check (1/0), expected ('' = none), ttl, then
# (id, par value, content) per record, all of one thread. Returns {1} all stored, {0, newest}
# refused (nothing stored), {2, newest, id} an id exists already (nothing stored).
_PUT = """
local top = redis.call('ZREVRANGE', KEYS[1], 0, 0)
local head = top[1] or ''
for i = 5, #ARGV, 3 do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 1 then return {2, head, ARGV[i]} end
end
if ARGV[2] == '1' and head ~= ARGV[3] then return {0, head} end
for i = 5, #ARGV, 3 do
  local seq = redis.call('INCR', KEYS[5])
  redis.call('ZADD', KEYS[1], seq, ARGV[i])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  if head == '' and i == 5 then redis.call('ZADD', KEYS[4], 'NX', seq, ARGV[1]) end
end
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end
end
return {1}
"""

# The same for one record (a step's checkpoint: the common write), with fewer server calls: the
# thread's order is the score of its newest checkpoint plus one (the shared counter only for a
# thread's first record, which also dates the thread), and ZADD NX finds an existing id (order and
# cp always hold the same ids). Returns 1 stored, or {0, newest} / {2, newest, id} as _PUT.
_PUT_ONE = """
local top = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local head = top[1] or ''
if head == ARGV[5] then return {2, head, head} end
if ARGV[2] == '1' and head ~= ARGV[3] then return {0, head} end
local seq
if head == '' then seq = redis.call('INCR', KEYS[5]) else seq = tonumber(top[2]) + 1 end
if redis.call('ZADD', KEYS[1], 'NX', seq, ARGV[5]) == 0 then return {2, head, ARGV[5]} end
redis.call('HSET', KEYS[2], ARGV[5], ARGV[7])
redis.call('HSET', KEYS[3], ARGV[5], ARGV[6])
if head == '' then redis.call('ZADD', KEYS[4], 'NX', seq, ARGV[1]) end
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end
end
return 1
"""

# KEYS: cp, w. ARGV: id, ttl, write... Returns 0 when the checkpoint does not exist.
_PUT_WRITES = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
for i = 3, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
local ttl = tonumber(ARGV[2])
if ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
return 1
"""

# KEYS: order, cp, par. ARGV: w-key prefix, id ('' = newest), mode ('one' | 'chain').
# Returns items {id, par, content, writes, looped}; a chain walks parents while the record holds
# no snapshot, and stops at a missing parent or at the first id met twice (looped = 1).
_FETCH = """
local cid = ARGV[2]
if cid == '' then
  local top = redis.call('ZREVRANGE', KEYS[1], 0, 0)
  cid = top[1]
  if not cid then return {} end
end
local out, seen = {}, {}
while cid do
  if seen[cid] then
    table.insert(out, {cid, '', '', {}, 1})
    break
  end
  seen[cid] = true
  local par = redis.call('HGET', KEYS[3], cid)
  if not par then break end
  local content = redis.call('HGET', KEYS[2], cid) or ''
  table.insert(out, {cid, par, content, redis.call('LRANGE', ARGV[1] .. cid, 0, -1), 0})
  if ARGV[3] ~= 'chain' or string.sub(par, 1, 1) == '1' or string.len(par) == 1 then break end
  cid = string.sub(par, 2)
end
return out
"""

# KEYS: order, cp, par. ARGV: w-key prefix, cursor (max sequence, exclusive; '' = newest), count.
_PAGE_SCRIPT = """
local maxs = ARGV[2] == '' and '+inf' or ('(' .. ARGV[2])
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], maxs, '-inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for i = 1, #ids, 2 do
  local cid = ids[i]
  table.insert(out, {cid, redis.call('HGET', KEYS[3], cid) or '', redis.call('HGET', KEYS[2], cid) or '',
                     redis.call('LRANGE', ARGV[1] .. cid, 0, -1), ids[i + 1]})
end
return out
"""

# KEYS: order, cp, par, threads. ARGV: w-key prefix, thread, ids to delete ('*' = all).
_DELETE = """
local all = ARGV[3] == '*'
local ids
if all then ids = redis.call('ZRANGE', KEYS[1], 0, -1) else
  ids = {}
  local top = redis.call('ZREVRANGE', KEYS[1], 0, 0)
  for i = 3, #ARGV do if ARGV[i] ~= top[1] then table.insert(ids, ARGV[i]) end end
end
for _, cid in ipairs(ids) do
  redis.call('DEL', ARGV[1] .. cid)
  if not all then
    redis.call('ZREM', KEYS[1], cid)
    redis.call('HDEL', KEYS[2], cid)
    redis.call('HDEL', KEYS[3], cid)
  end
end
if all then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  redis.call('ZREM', KEYS[4], ARGV[2])
end
return #ids
"""

# Compare and set one hash field (ARGV[1] 'h') or list item (ARGV[1] 'l'): ARGV[2] field or index,
# ARGV[3] the value read, ARGV[4] the new value. Re-encryption never resurrects a deleted record.
_CAS = """
if ARGV[1] == 'h' then
  if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[3] then return 0 end
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
else
  if redis.call('LINDEX', KEYS[1], tonumber(ARGV[2])) ~= ARGV[3] then return 0 end
  redis.call('LSET', KEYS[1], tonumber(ARGV[2]), ARGV[4])
end
return 1
"""

_SCRIPTS = {"cas": _CAS, "put": _PUT, "put_one": _PUT_ONE, "put_writes": _PUT_WRITES, "fetch": _FETCH, "page": _PAGE_SCRIPT, "delete": _DELETE}
_OPTIONS: dict[str, type] = {"prefix": str, "snapshot_every": int, "durability": str, "ttl": float, "timeout": float,
                             "pool_size": int}


class _Direct:
    """A connection of the store's own beside a client, with the client's settings (see
    ``RedisCheckpointer._pack``), and whether a call is on it now (``lock`` for the sync client's
    threads, ``busy`` for the tasks of an asyncio client's loop)."""

    __slots__ = ("busy", "conn", "lock")

    def __init__(self, client: Any) -> None:
        pool = client.connection_pool
        self.conn = pool.connection_class(**pool.connection_kwargs)
        self.lock = threading.Lock()
        self.busy = False


def _parse(url: str) -> tuple[str, dict[str, str]]:
    parts = urllib.parse.urlsplit(url)
    ours: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        (ours.__setitem__(k, v) if k in _OPTIONS else rest.append((k, v)))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(rest))), ours


def _s(b: Any) -> str:
    return b.decode() if isinstance(b, bytes) else str(b)


class RedisCheckpointer(NetworkCheckpointer):
    """Checkpoints in Redis: shared by processes and machines, threads optionally expiring.

    Args:
        url: ``redis://[:password@]host:port/db`` (or ``rediss://`` for TLS). Our own options
            can follow: ``?prefix=...&ttl=...&snapshot_every=...&durability=...&timeout=...&pool_size=...``.
        prefix: the prefix of every key this store writes.
        ttl: seconds a thread lives after its last write (``None``: forever).
        serializer: turns values into bytes (default: the process-wide serializer).
        snapshot_every: full values every this many steps along a branch, writes in between.
        durability: default for runs using this store (``"sync"``, ``"async"``, ``"exit"``).
        timeout: seconds to wait for the server to connect or answer, or for a connection of the
            pool.
        pool_size: connections at most in the pool of the sync client and in that of each event
            loop's asyncio client (default 10; the store keeps one more of its own beside each for
            its writes); a call waiting longer than ``timeout`` for one is an error.
        retention: old checkpoints to delete after each run (see :class:`Retention`).

    Raises:
        MissingDependencyError: redis-py is not installed (``pip install "agentgraph_nb[redis]"``).

    Example:
        >>> app = graph.compile(checkpointer="redis://localhost:6379/0?ttl=86400")
    """

    _kind = "Redis store"

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        ttl: float | None = None,
        serializer: Serializer | None = None,
        snapshot_every: int | None = None,
        durability: Durability | None = None,
        timeout: float | None = None,
        retention: Retention | None = None,
        pool_size: int | None = None,
    ) -> None:
        clean, opts = _parse(url)
        values = typed_options(opts, _OPTIONS)
        super().__init__(
            url, serializer=serializer,
            snapshot_every=snapshot_every if snapshot_every is not None else values.get("snapshot_every", 32),
            durability=durability if durability is not None else values.get("durability", "sync"),
            retention=retention,
        )
        self.prefix = prefix if prefix is not None else values.get("prefix", "agentgraph")
        self.ttl = ttl if ttl is not None else values.get("ttl")
        if self.ttl is not None and not self.ttl > 0:
            raise ValueError(f"ttl must be a number of seconds > 0, got {self.ttl!r}")
        self.timeout = float(timeout if timeout is not None else values.get("timeout", 10.0))
        self.pool_size = pool_size if pool_size is not None else values.get("pool_size", 10)
        if not isinstance(self.pool_size, int) or self.pool_size < 1:
            raise ValueError(f"pool_size must be an int >= 1, got {self.pool_size!r}")
        self._client_url = clean
        self._ttl_arg = str(int(max(1, round(self.ttl)))) if self.ttl is not None else "0"
        self._client: Any = None
        self._direct: _Direct | None = None
        self._lock = threading.Lock()
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._shas: dict[str, str] = {}
        self._ready = False

    # -- keys -------------------------------------------------------------------------------
    def _keys(self, thread_id: str) -> list[str]:
        base = f"{self.prefix}:t:{thread_id}"
        return [f"{base}:order", f"{base}:cp", f"{base}:par"]

    def _wprefix(self, thread_id: str) -> str:
        return f"{self.prefix}:t:{thread_id}:w:"

    # -- clients ----------------------------------------------------------------------------
    def _new_client(self, asynchronous: bool = False) -> Any:
        """A client over a pool of ``pool_size`` connections, where a call waits up to ``timeout``
        for a free one (redis-py's default pool refuses the 101st concurrent call at once)."""
        # a dropped connection is retried twice, quickly; a server that stays away is an error
        retry = (AsyncRetry if asynchronous else Retry)(ExponentialBackoff(cap=0.2, base=0.02), 2)
        lib = redis.asyncio if asynchronous else redis
        pool = lib.BlockingConnectionPool.from_url(
            self._client_url, max_connections=self.pool_size, timeout=self.timeout,
            socket_connect_timeout=self.timeout, socket_timeout=self.timeout, retry=retry)
        return lib.Redis.from_pool(pool)

    def _server_error(self, exc: BaseException, action: str, thread_id: str | None) -> CheckpointError:
        if isinstance(exc, redis.exceptions.ConnectionError) and "No connection available" in str(exc):
            exc = TimeoutError(f"no connection of the pool freed up within {self.timeout:g} s (pool full)")
        return super()._server_error(exc, action, thread_id)

    def _sync_client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    client = self._new_client()
                    self._direct = _Direct(client)
                    self._client = client
        return self._client

    async def _async_client(self) -> tuple[Any, _Direct]:
        """The running loop's client and the store's own connection beside it."""
        def make() -> tuple[Any, _Direct]:
            client = self._new_client(asynchronous=True)
            return client, _Direct(client)

        async def aclose(pair: tuple[Any, _Direct]) -> None:
            try:
                await pair[1].conn.disconnect()
            finally:
                await pair[0].aclose()

        return await loop_resource(self._aclients, make, aclose)  # type: ignore[no-any-return]

    def _after_fork(self) -> None:
        self._client = None
        self._direct = None
        self._aclients = weakref.WeakKeyDictionary()

    def _close_connections(self) -> None:
        if self._client is not None:
            if self._direct is not None:
                self._direct.conn.disconnect()
                self._direct = None
            self._client.close()
            self._client = None

    async def _aclose_connections(self) -> None:
        await close_loop_resource(self._aclients)

    # -- drivers ----------------------------------------------------------------------------
    def _sha(self, name: str) -> str:
        sha = self._shas.get(name)
        if sha is None:
            import hashlib

            sha = self._shas[name] = hashlib.sha1(_SCRIPTS[name].encode()).hexdigest()
        return sha

    # A script call is the store's every request on the hot path. redis-py's command layer around
    # it (arguments encoded one by one in Python, the pool's checkout with its observability hooks,
    # retry wrappers, response callbacks) costs ~25 us of a ~45 us round trip here, so the store
    # keeps one connection of its own per client (same settings as the client's pool) and sends
    # each call packed by hiredis on it. Anything unusual goes through redis-py's own path instead:
    # the connection in use by another thread or task, the server without the script (it loads it),
    # a dropped connection (it reconnects and retries; a write whose reply was lost is recognised by
    # its id on the second try).
    @staticmethod
    def _pack(conn: Any, sha: str, keys: Sequence[str], args: Sequence[Any]) -> list[bytes]:
        if _hiredis_pack is not None:
            return [_hiredis_pack(("EVALSHA", sha, len(keys), *keys, *args))]
        return conn.pack_command("EVALSHA", sha, len(keys), *keys, *args)  # pragma: no cover

    def _evalsha_direct(self, direct: _Direct | None, sha: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        if direct is None or not direct.lock.acquire(blocking=False):
            return _MISS  # in use by another thread: that call takes redis-py's path
        conn = direct.conn
        try:
            conn.send_packed_command(self._pack(conn, sha, keys, args), check_health=False)
            return conn.read_response()
        except redis.exceptions.NoScriptError:
            return _MISS
        except _CONN_ERRORS:
            conn.disconnect()
            return _MISS
        except BaseException:  # interrupted mid-reply: the connection's state is unknown
            conn.disconnect()
            raise
        finally:
            direct.lock.release()

    async def _aevalsha_direct(self, direct: _Direct | None, sha: str, keys: Sequence[str],
                               args: Sequence[Any]) -> Any:
        if direct is None or direct.busy:
            return _MISS  # in use by another task of the loop
        direct.busy = True
        conn = direct.conn
        try:
            await conn.send_packed_command(self._pack(conn, sha, keys, args), check_health=False)
            return await conn.read_response()
        except redis.exceptions.NoScriptError:
            return _MISS
        except _CONN_ERRORS:
            await conn.disconnect()
            return _MISS
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            direct.busy = False

    def _exec(self, client: Any, req: tuple[Any, ...]) -> Any:
        if req[0] == "script":
            _, name, keys, args = req
            sha = self._sha(name)
            res = self._evalsha_direct(self._direct, sha, keys, args)
            if res is not _MISS:
                return res
            try:
                return client.evalsha(sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                client.script_load(_SCRIPTS[name])
                return client.evalsha(sha, len(keys), *keys, *args)
        if req[0] == "pipeline":
            missing = [r for r in req[1] if r[0] == "script"]
            for name in {r[1] for r in missing}:
                client.script_load(_SCRIPTS[name])
            with client.pipeline(transaction=False) as pipe:
                for r in req[1]:
                    if r[0] == "script":
                        pipe.evalsha(self._sha(r[1]), len(r[2]), *r[2], *r[3])
                    else:
                        getattr(pipe, r[1])(*r[2:])
                return pipe.execute(raise_on_error=False)
        return getattr(client, req[1])(*req[2:])

    async def _aexec(self, client: Any, req: tuple[Any, ...], direct: _Direct | None = None) -> Any:
        if req[0] == "script":
            _, name, keys, args = req
            sha = self._sha(name)
            res = await self._aevalsha_direct(direct, sha, keys, args)
            if res is not _MISS:
                return res
            try:
                return await client.evalsha(sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                await client.script_load(_SCRIPTS[name])
                return await client.evalsha(sha, len(keys), *keys, *args)
        if req[0] == "pipeline":
            for name in {r[1] for r in req[1] if r[0] == "script"}:
                await client.script_load(_SCRIPTS[name])
            async with client.pipeline(transaction=False) as pipe:
                for r in req[1]:
                    if r[0] == "script":
                        pipe.evalsha(self._sha(r[1]), len(r[2]), *r[2], *r[3])
                    else:
                        getattr(pipe, r[1])(*r[2:])
                return await pipe.execute(raise_on_error=False)
        return await getattr(client, req[1])(*req[2:])

    def _drive(self, op: Callable[..., Op], args: tuple[Any, ...], action: str, thread_id: str | None) -> Any:
        if not self._ready:
            self._ready = True  # before running it: the setup is driven here too
            try:
                self._drive(self._op_setup, (), action, thread_id)
            except BaseException:
                self._ready = False
                raise
        gen = op(*args)
        res: Any = None
        try:
            client = self._sync_client()
            while True:
                try:
                    req = gen.send(res)
                except StopIteration as stop:
                    return stop.value
                res = self._exec(client, req)
        except redis.exceptions.RedisError as exc:
            raise self._server_error(exc, action, thread_id) from exc

    async def _adrive(self, op: Callable[..., Op], args: tuple[Any, ...], action: str, thread_id: str | None) -> Any:
        if not self._ready:
            self._ready = True
            try:
                await self._adrive(self._op_setup, (), action, thread_id)
            except BaseException:
                self._ready = False
                raise
        gen = op(*args)
        res: Any = None
        try:
            client, direct = await self._async_client()
            while True:
                try:
                    req = gen.send(res)
                except StopIteration as stop:
                    return stop.value
                res = await self._aexec(client, req, direct)
        except redis.exceptions.RedisError as exc:
            raise self._server_error(exc, action, thread_id) from exc

    # -- writing: the common case first ------------------------------------------------------
    def put(self, record: CheckpointRecord, *, expected: Expected = NO_CHECK) -> None:
        """Store a checkpoint before returning (one script call: the conflict check and the write).

        A step's write, once the store is set up, goes straight to the store's own connection
        (see :meth:`_pack`); anything else takes the general path.

        Raises:
            CheckpointConflictError: ``expected`` is not the thread's newest checkpoint.
            CheckpointError: the server cannot be reached, or refused the write.
        """
        direct = self._direct
        if direct is None or not self._direct_write_ok():
            return super().put(record, expected=expected)
        row = self._row(record, expected)
        _, name, keys, args = self._put_request([row])
        try:
            res = self._evalsha_direct(direct, self._sha(name), keys, args)
        except redis.exceptions.RedisError as exc:
            raise self._server_error(exc, "store a checkpoint", record.thread_id) from exc
        if res is _MISS:  # busy, script missing, connection dropped: redis-py's path
            self._drive(self._op_put, ([row], True), "store a checkpoint", record.thread_id)
        elif res != 1:
            self._put_result([row], res, raise_=True)
        return None

    # -- encoding ---------------------------------------------------------------------------
    def _put_request(self, rows: Sequence[Row]) -> tuple[Any, ...]:
        """One script call storing ``rows`` (one thread's; the first decides the check)."""
        t, chk, exp = rows[0][0], rows[0][8], rows[0][9]
        args: list[Any] = [t, chk, exp or "", self._ttl_arg]
        for _, cid, parent, step, created, snap, meta, payload, _c, _e in rows:
            args += [cid, ("1" if snap else "0") + (parent or ""),
                     msgpack.packb([step, created, meta, payload], use_bin_type=True)]
        keys = [*self._keys(t), f"{self.prefix}:threads", f"{self.prefix}:seq"]
        return ("script", "put_one" if len(rows) == 1 else "put", keys, args)

    def _decode_item(self, thread_id: str, item: Sequence[Any]) -> CheckpointRecord:
        cid, par, content, writes = _s(item[0]), _s(item[1]), item[2], item[3]
        try:
            step, created, meta, payload = msgpack.unpackb(content, raw=False)
        except Exception as exc:
            raise self._codec.malformed(thread_id, cid, f"its stored content does not decode ({exc!r})") from exc
        rec = self._codec.decode(thread_id, cid, par[1:] or None, step, created, meta, payload)
        pending = []
        for w in writes:
            try:
                task_index, node, blob = msgpack.unpackb(w, raw=False)
            except Exception as exc:
                raise self._codec.malformed(thread_id, cid, f"a pending write does not decode ({exc!r})") from exc
            pending.append(self._codec.decode_write(thread_id, cid, task_index, node, blob))
        rec.pending_writes = pending
        return rec

    # -- operations -------------------------------------------------------------------------
    def _op_setup(self) -> Op:
        key = f"{self.prefix}:meta"
        yield ("cmd", "hsetnx", key, "application", _APP)
        yield ("cmd", "hsetnx", key, "schema_version", str(SCHEMA_VERSION))
        meta = {_s(k): _s(v) for k, v in (yield ("cmd", "hgetall", key)).items()}
        if meta.get("application") != _APP:
            raise CheckpointError(
                f"{self.where}: key {key!r} belongs to another application ({meta.get('application')!r}); "
                "pass another prefix= (nothing was modified)")
        try:
            version = int(meta.get("schema_version", ""))
        except ValueError:
            version = -1
        if version > SCHEMA_VERSION:
            raise CheckpointError(
                f"{self.where} (prefix {self.prefix!r}) was written by a newer agentgraph_nb (store schema "
                f"version {version}; this version reads up to {SCHEMA_VERSION}). Upgrade agentgraph_nb to read "
                "it, or use another prefix= (nothing was modified).")
        return None

    def _op_put(self, rows: Sequence[Row], atomic: bool) -> Op:
        if atomic:  # one writer's records of one thread: one script, all or none
            res = yield self._put_request(rows)
            self._put_result(rows, res, raise_=True)
            return None
        # a background batch of many writers: one script per record, one round trip for all
        results = yield ("pipeline", [self._put_request([r]) for r in rows])
        refused = {}
        for row, res in zip(rows, results):
            if isinstance(res, Exception):
                raise res
            err = self._put_result([row], res, raise_=False)
            if err is not None:
                refused[row[1]] = err
        return refused

    def _put_result(self, rows: Sequence[Row], res: Any, *, raise_: bool) -> Any:
        code = res if type(res) is int else int(res[0])
        if code == 1:
            return None
        head = _s(res[1]) or None
        if code == 2:
            if head == rows[-1][1]:
                return None  # stored by an attempt whose reply was lost (the client retried)
            raise self._duplicate(next(r for r in rows if r[1] == _s(res[2])))
        err = self._conflict(rows[0], head)
        if raise_:
            raise err
        return err

    def _op_put_writes(self, thread_id: str, checkpoint_id: str, items: Sequence[tuple[int, str, bytes]]) -> Op:
        if not items:
            return None
        blobs = [msgpack.packb([i, n, p], use_bin_type=True) for i, n, p in items]
        keys = [self._keys(thread_id)[1], self._wprefix(thread_id) + checkpoint_id]
        found = yield ("script", "put_writes", keys, [checkpoint_id, self._ttl_arg, *blobs])
        if not int(found):
            raise KeyError(f"no checkpoint {checkpoint_id!r} in thread {thread_id!r}")
        return None

    def _op_get(self, thread_id: str, checkpoint_id: str | None) -> Op:
        items = yield ("script", "fetch", self._keys(thread_id), [self._wprefix(thread_id), checkpoint_id or "", "one"])
        if not items:
            return None
        return self._decode_item(thread_id, items[0])

    def _op_chain(self, thread_id: str, checkpoint_id: str | None) -> Op:
        items = yield ("script", "fetch", self._keys(thread_id),
                       [self._wprefix(thread_id), checkpoint_id or "", "chain"])
        walk: list[Any] = []
        for it in items:
            cid, par = _s(it[0]), _s(it[1])
            walk.append(((cid, par[1:] or None, 0, "", par[:1] == "1", b"", b""), int(it[4])))
        self._finish_chain_check(thread_id, walk)
        chain = [self._decode_item(thread_id, it) for it in items]
        chain.reverse()
        return chain

    def _finish_chain_check(self, thread_id: str, walk: list[Any]) -> None:
        from agentgraph_nb.checkpoint.base import broken_chain_error, cycle_error

        if not walk:
            return
        ids = [w[0][0] for w in walk]
        if walk[-1][1]:
            raise cycle_error(self, thread_id, ids)
        last = walk[-1][0]
        if not last[4] and last[1] is not None:
            raise broken_chain_error(self, thread_id, ids[0], last[0], last[1])

    def _op_page(self, thread_id: str, before: str | None, cursor: Any) -> Op:
        items = yield ("script", "page", self._keys(thread_id),
                       [self._wprefix(thread_id), "" if cursor is None else str(cursor), str(_PAGE)])
        recs = []
        for it in items:
            if before is not None and _s(it[0]) >= before:
                continue
            recs.append(self._decode_item(thread_id, it))
        nxt = int(float(_s(items[-1][4]))) if len(items) == _PAGE else None
        return recs, nxt

    def _op_threads(self) -> Op:
        names = yield ("cmd", "zrange", f"{self.prefix}:threads", 0, -1)
        if not names:
            return []
        ids = [_s(n) for n in names]
        alive = yield ("pipeline", [("cmd", "exists", self._keys(t)[0]) for t in ids])
        gone = [t for t, a in zip(ids, alive) if not int(a)]
        if gone:  # expired (ttl) or deleted elsewhere: forget them
            yield ("cmd", "zrem", f"{self.prefix}:threads", *gone)
        return [t for t, a in zip(ids, alive) if int(a)]

    def _op_stored_bytes(self, thread_id: str) -> Op:
        contents = yield ("cmd", "hgetall", self._keys(thread_id)[1])
        n = 0
        for cid_b, content in (contents or {}).items():
            n += len(content)
            items = yield ("cmd", "lrange", self._wprefix(thread_id) + _s(cid_b), 0, -1)
            n += sum(len(i) for i in items or [])
        return n

    def _op_reencrypt(self, thread_id: str) -> Op:
        cp_key = self._keys(thread_id)[1]
        contents = yield ("cmd", "hgetall", cp_key)
        n = 0
        for cid_b, content in (contents or {}).items():
            cid = _s(cid_b)
            try:
                step, created, meta, payload = msgpack.unpackb(content, raw=False)
            except Exception as exc:
                raise self._codec.malformed(thread_id, cid, f"its stored content does not decode ({exc!r})") from exc
            new_meta = self._reseal(thread_id, cid, "metadata", meta)
            new_payload = self._reseal(thread_id, cid, "payload", payload)
            if new_meta is not None or new_payload is not None:
                new = msgpack.packb([step, created, new_meta or meta, new_payload or payload], use_bin_type=True)
                done = yield ("script", "cas", [cp_key], ["h", cid, content, new])
                n += int(done) * ((new_meta is not None) + (new_payload is not None))
            wkey = self._wprefix(thread_id) + cid
            items = yield ("cmd", "lrange", wkey, 0, -1)
            for i, item in enumerate(items or []):
                try:
                    task_index, node, blob = msgpack.unpackb(item, raw=False)
                except Exception as exc:
                    raise self._codec.malformed(thread_id, cid, f"a pending write does not decode ({exc!r})") from exc
                new_blob = self._reseal(thread_id, cid, "write", blob)
                if new_blob is not None:
                    new = msgpack.packb([task_index, node, new_blob], use_bin_type=True)
                    n += int((yield ("script", "cas", [wkey], ["l", str(i), item, new])))
        return n

    def _op_delete_thread(self, thread_id: str) -> Op:
        yield ("script", "delete", [*self._keys(thread_id), f"{self.prefix}:threads"],
               [self._wprefix(thread_id), thread_id, "*"])

    def _op_delete_checkpoints(self, thread_id: str, ids: Sequence[str]) -> Op:
        for i in range(0, len(ids), 500):
            yield ("script", "delete", [*self._keys(thread_id), f"{self.prefix}:threads"],
                   [self._wprefix(thread_id), thread_id, *ids[i:i + 500]])

