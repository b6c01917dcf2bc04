"""Network stores, per-step overhead with ``durability="sync"``, against their floors and LangGraph.

    python -m benchmarks.stores [--steps 50] [--runs 15]

Starts its own throwaway PostgreSQL (fsync on: a commit waits for the disk, as in production) and
Redis servers on free loopback ports (tests/_servers.py; ``apt-get install -y postgresql
redis-server``), then measures, on a chain of ``--steps`` nodes, each run on a fresh thread:

- **ours**: our store's checkpoint overhead per step: (time of the run with the store - time
  without a store) / steps, for ``invoke`` (sync connections) and ``ainvoke`` (asyncio ones);
- **floor**: the same row (the bytes our store sends for such a step) written raw over one
  connection: Postgres ``INSERT`` + ``COMMIT`` (and, for reference, a single autocommitted
  ``INSERT``, which is one round trip like ours); Redis one ``HSET`` of the same bytes;
- **LangGraph**: ``PostgresSaver`` (langgraph-checkpoint-postgres) on the same server, the same
  chain in LangGraph, overhead computed the same way. LangGraph's Redis saver needs the RedisJSON
  and RediSearch modules, which Debian's redis-server lacks: not measured.

It also counts what bounds each store: the requests ours send per checkpoint, and on PostgreSQL the
WAL flushes to disk per step (``pg_stat_wal.wal_sync``) of ours and of ``PostgresSaver``.

Targets (issue 17): Postgres within 1.5x of its floor, and at least 10x lower overhead than
``PostgresSaver``; Redis within 1.5x of its floor. Medians over ``--runs`` runs; the figures
are printed as a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
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


def _median(fn: Callable[[int], float], runs: int) -> float:
    fn(-1)  # warm up (connections, prepared statements, scripts)
    fn(-2)
    return statistics.median(fn(k) for k in range(runs))


def _per_step_run(call: Callable[[int], Any], steps: int) -> Callable[[int], float]:
    def one(k: int) -> float:
        t = time.perf_counter()
        call(k)
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


def _pg_floor(url: str, rows: list[Any], runs: int, *, autocommit: bool) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=autocommit) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_floor")
        conn.execute(
            "CREATE TABLE bench_floor (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, thread_id text NOT NULL, "
            "checkpoint_id text NOT NULL, parent_id text, step integer NOT NULL, created_at text NOT NULL, "
            "snapshot boolean NOT NULL, metadata bytea NOT NULL, payload bytea NOT NULL, "
            "UNIQUE (thread_id, checkpoint_id))")
        if not autocommit:
            conn.commit()
        sql = ("INSERT INTO bench_floor (thread_id, checkpoint_id, parent_id, step, created_at, snapshot, metadata, "
               "payload) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)")

        def one(k: int) -> float:
            t = time.perf_counter()
            for r in rows:
                conn.execute(sql, (f"floor{k}", *r[1:5], bool(r[5]), r[6], r[7]))
                if not autocommit:
                    conn.commit()
            return (time.perf_counter() - t) / len(rows)

        return _median(one, runs)


def _redis_floor(url: str, rows: list[Any], runs: int) -> float:
    import msgpack
    import redis

    client = redis.Redis.from_url(url)
    blobs = [(r[1], msgpack.packb([r[3], r[4], r[6], r[7]], use_bin_type=True)) for r in rows]

    def one(k: int) -> float:
        t = time.perf_counter()
        for cid, blob in blobs:
            client.hset(f"floor:{k}", cid, blob)
        return (time.perf_counter() - t) / len(blobs)

    out = _median(one, runs)
    client.close()
    return out


def measure(pg_url: str, redis_url: str, steps: int, runs: int) -> list[tuple[str, str, float | None, str]]:
    """Rows ``(case, what, µs per step, note)``."""
    from agentgraph_nb.checkpoint.postgres import PostgresCheckpointer
    from agentgraph_nb.checkpoint.redis import RedisCheckpointer

    out: list[tuple[str, str, float | None, str]] = []
    base_app = _ours(steps, None)
    base = _median(_per_step_run(lambda k: base_app.invoke({"x": 0}), steps), runs)

    async def abase_run() -> float:
        return await _amedian(lambda k: base_app.ainvoke({"x": 0}), steps, runs)

    abase = asyncio.run(abase_run())
    results: dict[str, float] = {}
    trips: dict[str, float] = {}
    server_us: dict[str, float] = {}
    for name, store in (("postgres", PostgresCheckpointer(pg_url)), ("redis", RedisCheckpointer(redis_url))):
        app = _ours(steps, store)
        tag = time.time_ns()
        t = _median(_per_step_run(
            lambda k, app=app, tag=tag: app.invoke({"x": 0}, thread_id=f"s{tag}-{k}", durability="sync"), steps), runs)
        results[f"{name} invoke"] = t - base

        async def arun(app: Any = app, tag: int = tag) -> float:
            return await _amedian(lambda k: app.ainvoke({"x": 0}, thread_id=f"a{tag}-{k}", durability="sync"),
                                  steps, runs)

        results[f"{name} ainvoke"] = asyncio.run(arun()) - abase
        trips[name] = _round_trips(store, app, steps)
        if name == "redis":
            server_us.update(_redis_server_time(redis_url, store, app))
        rows = _sample_rows(store, steps)
        if name == "postgres":
            results["postgres floor"] = _pg_floor(pg_url, rows, runs, autocommit=False)
            results["postgres floor autocommit"] = _pg_floor(pg_url, rows, runs, autocommit=True)
        else:
            results["redis floor"] = _redis_floor(redis_url, rows, runs)
        store.close()
    # LangGraph's PostgresSaver, same server, same chain
    lg_overhead: float | None = None
    try:
        from langgraph.checkpoint.postgres import PostgresSaver

        lg_base_app = _lg(steps, None)
        lg_base = _median(_per_step_run(lambda k: lg_base_app.invoke({"x": 0}), steps), runs)
        with PostgresSaver.from_conn_string(pg_url) as saver:
            saver.setup()
            lg_app = _lg(steps, saver)
            tag = time.time_ns()
            lg_t = _median(_per_step_run(
                lambda k: lg_app.invoke({"x": 0}, {"configurable": {"thread_id": f"lg{tag}-{k}"}}, durability="sync"),
                steps), runs)
        lg_overhead = lg_t - lg_base
        wal = {"ours": _pg_wal_syncs(pg_url, steps, langgraph=False),
               "PostgresSaver": _pg_wal_syncs(pg_url, steps, langgraph=True)}
    except ImportError as exc:
        out.append(("postgres", "LangGraph PostgresSaver", None, f"not installed: {exc}"))
        wal = {}
    us = 1e6
    pg, pg_floor = results["postgres invoke"], results["postgres floor"]
    out.append(("postgres", "floor: INSERT + COMMIT, one connection", pg_floor * us, "two round trips, one commit"))
    out.append(("postgres", "floor: one autocommitted INSERT", results["postgres floor autocommit"] * us,
                "one round trip, one commit (what our store sends)"))
    out.append(("postgres", "ours, invoke (sync connections)", pg * us,
                f"{pg / pg_floor:.2f}x the INSERT+COMMIT floor (target <= 1.5x)"))
    out.append(("postgres", "ours, ainvoke (asyncio connections)", results["postgres ainvoke"] * us,
                f"{results['postgres ainvoke'] / pg_floor:.2f}x the floor"))
    if lg_overhead is not None:
        out.append(("postgres", "LangGraph PostgresSaver, invoke", lg_overhead * us,
                    f"{lg_overhead / pg:.1f}x ours (target >= 10x)"))
    for who, n in wal.items():
        out.append(("postgres", f"{who}: WAL flushes (fsync) per step", n,
                    "pg_stat_wal.wal_sync: each is a wait for the disk; the INSERT+COMMIT floor has one"))
    rd, rd_floor = results["redis invoke"], results["redis floor"]
    out.append(("redis", "floor: one HSET of the same bytes", rd_floor * us, "one round trip"))
    out.append(("redis", "ours, invoke (sync client)", rd * us, f"{rd / rd_floor:.2f}x the floor (target <= 1.5x)"))
    out.append(("redis", "ours, ainvoke (asyncio client)", results["redis ainvoke"] * us,
                f"{results['redis ainvoke'] / rd_floor:.2f}x the floor"))
    out.append(("redis", "LangGraph RedisSaver", None, "needs the RedisJSON and RediSearch modules: not measured"))
    for name, n in trips.items():
        out.append((name, "ours: requests to the server per checkpoint", n, "one round trip per step"))
    if server_us:
        out.append(("redis", "server time of our write script (EVALSHA)", server_us["evalsha"],
                    f"HSET: {server_us['hset']:.1f} µs; an empty script: {server_us['empty']:.1f} µs (INFO commandstats)"))
    return out


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


def _round_trips(store: Any, app: Any, steps: int) -> float:
    """Requests our store sends per checkpoint in one run (counted at the driver)."""
    calls = [0]
    orig = store._exec

    def spy(*a: Any) -> Any:
        calls[0] += 1
        return orig(*a)

    store._exec = spy
    try:
        app.invoke({"x": 0}, thread_id=f"count-{time.time_ns()}", durability="sync")
    finally:
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


async def _amedian(call: Callable[[int], Any], steps: int, runs: int) -> float:
    async def one(k: int) -> float:
        t = time.perf_counter()
        await call(k)
        return (time.perf_counter() - t) / steps

    await one(-1)
    await one(-2)
    return statistics.median([await one(k) for k in range(runs)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.stores", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=50, help="nodes in the chain (default 50)")
    ap.add_argument("--runs", type=int, default=15, help="runs per measurement, median reported (default 15)")
    args = ap.parse_args(argv)
    from tests._servers import PostgresServer, RedisServer

    pg = PostgresServer(durable=True)
    try:
        rd = RedisServer()
        try:
            rows = measure(pg.url, rd.url, args.steps, args.runs)
        finally:
            rd.close()
    finally:
        pg.close()
    print(f"Per-step checkpoint overhead, durability='sync', {args.steps}-node chain, median of {args.runs} runs "
          "(PostgreSQL with fsync on; Redis without persistence)\n")
    print("| store | what | µs per step | note |\n|---|---|---:|---|")
    for case, what, value, note in rows:
        print(f"| {case} | {what} | {'-' if value is None else f'{value:.1f}'} | {note} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
