"""What only the network stores (PostgreSQL, Redis) do, on real servers: ``ainvoke`` keeps the
event loop free while the server makes it wait; a server that goes away mid-run is a typed error
naming the store (no password) and the thread, and the run resumes when it is back, losing no
completed step; damaged rows are typed errors; Redis threads expire; many concurrent runs share one
small pool; the extras are optional."""

from __future__ import annotations

import asyncio
import operator
import subprocess
import sys
import textwrap
import time
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import END, START, CheckpointError, StateGraph
from tests.conftest import store_url

NETWORK = ["postgres", "redis"]


class S(TypedDict, total=False):
    x: int
    log: Annotated[list[str], operator.add]


def chain(counts: dict[str, int], names: list[str], hook: Any = None) -> StateGraph:
    g = StateGraph(S, name="net")
    prev = START
    for n in names:
        def fn(s: dict[str, Any], n: str = n) -> dict[str, Any]:
            counts[n] = counts.get(n, 0) + 1
            if hook is not None:
                hook(n)
            return {"log": [n], "x": s.get("x", 0) + 1}

        g.add_node(n, fn)
        g.add_edge(prev, n)
        prev = n
    g.add_edge(prev, END)
    return g


# -- the event loop stays free --------------------------------------------------------------------
async def _ticks_while(coro: Any) -> tuple[Any, int]:
    """Run ``coro`` while a ticker counts 10 ms ticks on the same loop."""
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            await asyncio.sleep(0.01)
            ticks += 1

    t = asyncio.ensure_future(ticker())
    try:
        return await coro, ticks
    finally:
        done = True
        await t


async def test_ainvoke_does_not_block_the_loop_while_postgres_waits_on_a_lock(
    request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    import psycopg

    url = store_url("postgres", request, tmp_path)
    counts: dict[str, int] = {}
    app = chain(counts, ["a", "b"]).compile(checkpointer=url)
    await app.ainvoke({"x": 0}, thread_id="t")
    schema = url.rsplit("schema=", 1)[1]
    server = request.getfixturevalue("postgres_server")
    with psycopg.connect(server.url) as other:  # holds the thread's head row for 0.5 s
        other.execute(f'SELECT * FROM "{schema}".agentgraph_threads WHERE thread_id = %s FOR UPDATE', ("t",))

        async def release() -> None:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(other.commit)

        rel = asyncio.ensure_future(release())
        t0 = time.perf_counter()
        out, ticks = await _ticks_while(app.ainvoke({"x": 0}, thread_id="t"))
        await rel
    assert out["x"] == 2 and time.perf_counter() - t0 >= 0.45  # it did wait for the lock...
    assert ticks >= 20, f"the loop ticked {ticks} times in 0.5 s: ainvoke blocked it"  # ...without blocking


async def test_an_ainvoke_cancelled_while_its_postgres_write_waits_leaves_the_store_whole(
    request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """The asyncio write goes through libpq; cancelling the run while its write waits on a lock
    cancels the statement in the server (psycopg's way), and the pool's only connection serves
    the next runs; the thread's history is intact and the thread runs on."""
    import psycopg

    url = store_url("postgres", request, tmp_path) + "&pool_size=1"
    app = chain({}, ["a", "b"]).compile(checkpointer=url)
    await app.ainvoke({"x": 0}, thread_id="t")
    before = [h.checkpoint_id for h in app.get_state_history("t")]
    schema = url.split("schema=", 1)[1].split("&", 1)[0]
    server = request.getfixturevalue("postgres_server")
    with psycopg.connect(server.url) as other:  # holds the thread's head row
        other.execute(f'SELECT * FROM "{schema}".agentgraph_threads WHERE thread_id = %s FOR UPDATE', ("t",))
        task = asyncio.ensure_future(app.ainvoke({"x": 10}, thread_id="t"))
        await asyncio.sleep(0.4)
        assert not task.done()  # its first write waits for the lock
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        other.commit()
    assert [h.checkpoint_id for h in app.get_state_history("t")] == before  # the cancelled write left nothing
    assert (await app.ainvoke({"x": 20}, thread_id="u"))["x"] == 22  # over the pool's one connection
    assert (await app.ainvoke({"x": 30}, thread_id="t"))["x"] == 32
    after = list(app.get_state_history("t"))
    assert [h.checkpoint_id for h in after[3:]] == before  # the new run went on from the same head
    assert [h.step for h in after] == [5, 4, 3, 2, 1, 0]
    await app.checkpointer.aclose()  # type: ignore[union-attr]


async def test_postgres_async_writes_use_the_prepared_statements_too(
    request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    from agentgraph_nb.checkpoint import open_checkpointer

    store = open_checkpointer(store_url("postgres", request, tmp_path) + "&pool_size=1")
    counts: dict[str, int] = {}
    app = chain(counts, ["a", "b", "c"]).compile(checkpointer=store)
    await app.ainvoke({"x": 0}, thread_id="t")
    pool = store._apools[asyncio.get_running_loop()][0]  # type: ignore[attr-defined]
    conn, _ = await pool.acquire()
    try:
        names = await (await conn.execute("SELECT name FROM pg_prepared_statements "
                                          "WHERE name LIKE 'agentgraph_put%' ORDER BY name")).fetchall()
        assert [n for (n,) in names] == ["agentgraph_put", "agentgraph_put_next"]
        await conn.execute("DEALLOCATE ALL")  # as a pooler's DISCARD ALL does
    finally:
        await pool.release(conn)
    assert (await app.ainvoke({"x": 10}, thread_id="t2"))["x"] == 13
    assert [s.values.get("x") for s in app.get_state_history(thread_id="t2")] == [13, 12, 11, 10]
    assert counts == {"a": 2, "b": 2, "c": 2}
    rec = await store.aget("t2")
    rec.parent_id, rec.step = rec.checkpoint_id, rec.step + 1  # the same id again
    with pytest.raises(CheckpointError, match="already exists"):
        await store.aput(rec)
    await store.aclose()


async def test_ainvoke_does_not_block_the_loop_while_redis_is_paused(
    request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    import redis

    url = store_url("redis", request, tmp_path)
    counts: dict[str, int] = {}
    app = chain(counts, ["a", "b"]).compile(checkpointer=url)
    await app.ainvoke({"x": 0}, thread_id="t")  # connects and loads the scripts
    server = request.getfixturevalue("redis_server")
    redis.Redis.from_url(server.url).client_pause(500, all=True)
    t0 = time.perf_counter()
    out, ticks = await _ticks_while(app.ainvoke({"x": 0}, thread_id="t"))
    assert out["x"] == 2 and time.perf_counter() - t0 >= 0.4
    assert ticks >= 20, f"the loop ticked {ticks} times in 0.5 s: ainvoke blocked it"


@pytest.mark.parametrize("kind", NETWORK)
async def test_ainvoke_uses_only_the_async_connections(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> None:
    from agentgraph_nb.checkpoint import open_checkpointer

    store = open_checkpointer(store_url(kind, request, tmp_path))
    sync_calls: list[str] = []
    drive = store._drive  # type: ignore[attr-defined]

    def spy(op: Any, args: Any, action: str, thread_id: Any) -> Any:
        sync_calls.append(action)
        return drive(op, args, action, thread_id)

    store._drive = spy  # type: ignore[attr-defined]
    counts: dict[str, int] = {}
    app = chain(counts, ["a", "b", "c"]).compile(checkpointer=store)
    for durability in ("sync", "exit"):
        assert (await app.ainvoke({"x": 0}, thread_id=durability, durability=durability))["x"] == 3
        assert (await app.ainvoke(None, thread_id=durability))["x"] == 3
    assert sync_calls == [], f"ainvoke called the sync driver on the loop: {sync_calls}"


# -- a server that goes away ----------------------------------------------------------------------
def _down_mid_run(kind: str, request: pytest.FixtureRequest, tmp_path: Any, asynchronous: bool) -> None:
    if kind == "postgres":
        server = request.getfixturevalue("postgres_server")
        url = store_url("postgres", request, tmp_path)
    else:
        from tests._servers import RedisServer, redis_binaries

        if redis_binaries() is None:
            pytest.skip("redis-server is not installed")
        server = RedisServer(persistent=True)
        request.addfinalizer(server.close)
        url = f"{server.url}?timeout=2"
    counts: dict[str, int] = {}

    def hook(n: str) -> None:
        if n == "c" and counts["c"] == 1:
            server.stop()  # the server goes away while node c runs

    app = chain(counts, ["a", "b", "c", "d"], hook).compile(checkpointer=url)
    with pytest.raises(CheckpointError) as info:
        if asynchronous:
            asyncio.run(app.ainvoke({"x": 0}, thread_id="job"))
        else:
            app.invoke({"x": 0}, thread_id="job")
    msg = str(info.value)
    assert "thread 'job'" in msg and f"127.0.0.1:{server.port}" in msg, msg
    assert "agentgraph-test-pw" not in msg, "the error shows the password"
    assert "resume with invoke(None" in msg
    server.start()
    out = asyncio.run(app.ainvoke(None, thread_id="job")) if asynchronous else app.invoke(None, thread_id="job")
    assert out == {"x": 4, "log": ["a", "b", "c", "d"]}
    # a, b were committed before the server went away: not run again; c ran again, d once
    assert counts == {"a": 1, "b": 1, "c": 2, "d": 1}
    assert [h.step for h in app.get_state_history("job")] == [4, 3, 2, 1, 0]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["invoke", "ainvoke"])
@pytest.mark.parametrize("kind", NETWORK)
def test_server_down_mid_run_is_a_typed_error_and_the_run_resumes_when_it_is_back(
    kind: str, asynchronous: bool, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    _down_mid_run(kind, request, tmp_path, asynchronous)


@pytest.mark.parametrize("kind", NETWORK)
def test_a_store_whose_server_is_not_there_names_it(kind: str) -> None:
    from tests._servers import _free_port

    port = _free_port()
    url = (f"postgresql://me:hunter2@127.0.0.1:{port}/db?timeout=2" if kind == "postgres"
           else f"redis://:hunter2@127.0.0.1:{port}/0?timeout=2")
    pytest.importorskip("psycopg" if kind == "postgres" else "redis")
    app = chain({}, ["a"]).compile(checkpointer=url)
    with pytest.raises(CheckpointError) as info:
        app.invoke({"x": 0}, thread_id="t1")
    msg = str(info.value)
    assert f"127.0.0.1:{port}" in msg and "thread 't1'" in msg and "hunter2" not in msg and "***" in msg, msg
    assert "hunter2" not in repr(app.checkpointer)


# -- damaged rows ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", NETWORK)
def test_a_damaged_row_is_a_checkpoint_error_naming_store_thread_and_checkpoint(
    kind: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    url = store_url(kind, request, tmp_path)
    app = chain({}, ["a", "b"]).compile(checkpointer=url)
    app.invoke({"x": 0}, thread_id="t")
    cid = app.get_state("t").checkpoint_id
    if kind == "postgres":
        import psycopg

        schema = url.rsplit("schema=", 1)[1]
        with psycopg.connect(request.getfixturevalue("postgres_server").url, autocommit=True) as conn:
            conn.execute(f'UPDATE "{schema}".agentgraph_checkpoints SET payload = %s WHERE checkpoint_id = %s',
                         (b"\x93\x01\x02", cid))
    else:
        import redis

        prefix = url.rsplit("prefix=", 1)[1]
        redis.Redis.from_url(request.getfixturevalue("redis_server").url).hset(f"{prefix}:t:t:cp", cid, b"\xc1junk")
    with pytest.raises(CheckpointError) as info:
        app.get_state("t")
    msg = str(info.value)
    assert cid in msg and "thread 't'" in msg and "127.0.0.1" in msg, msg


# -- Redis: threads that expire --------------------------------------------------------------------
def test_redis_threads_expire_after_their_ttl(request: pytest.FixtureRequest, tmp_path: Any) -> None:
    url = store_url("redis", request, tmp_path) + "&ttl=1"
    app = chain({}, ["a"]).compile(checkpointer=url)
    app.invoke({"x": 0}, thread_id="short")
    assert app.list_threads() == ["short"]
    assert app.get_state("short").values["x"] == 1
    time.sleep(2.2)
    assert app.checkpointer.get("short") is None  # type: ignore[union-attr]
    assert "short" not in app.checkpointer.list_threads()  # type: ignore[union-attr]


# -- many concurrent runs on one small pool --------------------------------------------------------
async def test_1000_concurrent_ainvoke_runs_on_a_pool_of_10_connections(
    request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    url = store_url("postgres", request, tmp_path) + "&pool_size=10"

    async def step(s: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"x": s.get("x", 0) + 1, "log": ["s"]}

    g = StateGraph(S, name="many")
    g.add_node("a", step).add_node("b", step).add_edge(START, "a").add_edge("a", "b").add_edge("b", END)
    app = g.compile(checkpointer=url)
    outs = await asyncio.gather(*(app.ainvoke({"x": i}, thread_id=f"t{i}") for i in range(1000)))
    assert [o["x"] for o in outs] == [i + 2 for i in range(1000)]
    store = app.checkpointer
    for i in (0, 499, 999):
        assert (await store.aget(f"t{i}")).step == 2  # type: ignore[union-attr]
    assert len(store.list_threads()) == 1000  # type: ignore[union-attr]
    pool = store._apools[asyncio.get_running_loop()][0]  # type: ignore[union-attr]
    assert len(pool._idle) <= 10


# -- Redis: the store's own connection for its scripts ---------------------------------------------
def _redis_concurrency_app(url: str) -> Any:
    async def astep(s: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"x": s.get("x", 0) + 1, "log": ["s"]}

    def step(s: dict[str, Any]) -> dict[str, Any]:
        return {"x": s.get("x", 0) + 1, "log": ["s"]}

    g = StateGraph(S, name="many")
    g.add_node("a", step).add_node("b", astep).add_node("c", step)
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    return g.compile(checkpointer=url)


def test_redis_runs_in_many_threads_and_tasks_at_once_share_one_store(
    request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """The store writes over a connection of its own (one call at a time); the runs of other
    threads and tasks that meet it busy take redis-py's pool. Every thread's history is whole."""
    from concurrent.futures import ThreadPoolExecutor

    app = _redis_concurrency_app(store_url("redis", request, tmp_path))
    with ThreadPoolExecutor(8) as ex:
        outs = list(ex.map(lambda i: app.invoke({"x": i}, thread_id=f"s{i}"), range(200)))
    assert [o["x"] for o in outs] == [i + 3 for i in range(200)]

    async def many() -> list[Any]:
        return await asyncio.gather(*(app.ainvoke({"x": i}, thread_id=f"a{i}") for i in range(200)))

    assert [o["x"] for o in asyncio.run(many())] == [i + 3 for i in range(200)]
    for t in ("s0", "s117", "a0", "a199"):
        assert [h.step for h in app.get_state_history(t)] == [3, 2, 1, 0], t
    assert len(app.checkpointer.list_threads()) == 400  # type: ignore[union-attr]
    app.checkpointer.close()  # type: ignore[union-attr]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["invoke", "ainvoke"])
def test_redis_scripts_flushed_from_the_server_mid_run_are_loaded_again(
    asynchronous: bool, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """SCRIPT FLUSH (a restart, a failover to a replica without them) between two steps: the next
    write finds its script missing, loads it and goes on; no step runs twice."""
    import redis

    server = request.getfixturevalue("redis_server")
    flushed: list[bool] = []

    def hook(n: str) -> None:
        if n in ("b", "d"):
            with redis.Redis.from_url(server.url) as client:
                flushed.append(bool(client.script_flush()))

    counts: dict[str, int] = {}
    app = chain(counts, ["a", "b", "c", "d", "e"], hook).compile(checkpointer=store_url("redis", request, tmp_path))
    run = app.ainvoke({"x": 0}, thread_id="job") if asynchronous else None
    out = asyncio.run(run) if run is not None else app.invoke({"x": 0}, thread_id="job")
    assert flushed == [True, True]
    assert out == {"x": 5, "log": ["a", "b", "c", "d", "e"]}
    assert counts == {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}
    assert [h.step for h in app.get_state_history("job")] == [5, 4, 3, 2, 1, 0]
    app.checkpointer.close()  # type: ignore[union-attr]


async def test_1000_concurrent_ainvoke_runs_on_a_redis_pool_of_10_connections(
    request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """redis-py's own pool would refuse the 101st concurrent call; the store's waits for a free
    connection, so any number of runs share ``pool_size`` connections (and the store's own)."""
    import redis

    server = request.getfixturevalue("redis_server")
    name = f"agentgraph-many-{id(request)}"  # (redis-py names every connection of the store so)
    app = _redis_concurrency_app(store_url("redis", request, tmp_path) + f"&pool_size=10&client_name={name}")
    outs = await asyncio.gather(*(app.ainvoke({"x": i}, thread_id=f"t{i}") for i in range(1000)))
    with redis.Redis.from_url(server.url) as admin:
        opened = sum(1 for c in admin.client_list() if c["name"] == name)
    assert [o["x"] for o in outs] == [i + 3 for i in range(1000)]
    for i in (0, 499, 999):
        assert (await app.checkpointer.aget(f"t{i}")).step == 3  # type: ignore[union-attr]
    assert len(await app.checkpointer.alist_threads()) == 1000  # type: ignore[union-attr]
    assert 1 <= opened <= 11, opened
    await app.checkpointer.aclose()  # type: ignore[union-attr]


def test_a_full_redis_pool_is_a_checkpoint_error_after_its_timeout(
    request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    from agentgraph_nb.checkpoint import open_checkpointer

    store = open_checkpointer(store_url("redis", request, tmp_path) + "&pool_size=1&timeout=0.3")
    app = chain({}, ["a"]).compile(checkpointer=store)
    app.invoke({"x": 0}, thread_id="t")
    pool = store._sync_client().connection_pool  # type: ignore[attr-defined]
    held = pool.get_connection()  # another caller holds the only connection of the pool
    try:
        t0 = time.monotonic()
        with pytest.raises(CheckpointError, match=r"no connection of the pool freed up within 0.3 s \(pool full\)"):
            store.list_threads()
        assert 0.25 <= time.monotonic() - t0 < 5
        assert app.invoke({"x": 5}, thread_id="u")["x"] == 6  # the writes go over the store's own one
    finally:
        pool.release(held)
    assert sorted(store.list_threads()) == ["t", "u"]  # and the pool serves again once it is free
    store.close()


# -- bytes per step ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sqlite", *NETWORK])
def test_bytes_stored_per_step_do_not_grow_with_the_length_of_the_run(
    kind: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """A step of a 300-step run is stored in as many bytes as a step of a 30-step run (full values
    every ``snapshot_every`` steps, the writes in between): the history grows linearly."""
    from agentgraph_nb.checkpoint import open_checkpointer

    def inc(s: dict[str, Any]) -> dict[str, Any]:
        return {"x": s["x"] + 1}

    store = open_checkpointer(store_url(kind, request, tmp_path))
    per_step = []
    for n in (30, 300):
        g = StateGraph(S, name="long")
        for i in range(n):
            g.add_node(f"n{i}", inc).add_edge(START if i == 0 else f"n{i - 1}", f"n{i}")
        app = g.add_edge(f"n{n - 1}", END).compile(checkpointer=store)
        app.invoke({"x": 0}, thread_id=f"run{n}")
        assert app.get_state(f"run{n}").values["x"] == n
        per_step.append(store.stored_bytes(f"run{n}") / n)  # type: ignore[operator]
    assert per_step[0] > 0
    assert per_step[1] <= 1.5 * per_step[0], per_step  # (quadratic storage would be ~10x)
    store.close()


# -- the extras are optional ----------------------------------------------------------------------
def test_import_agentgraph_nb_imports_neither_driver_and_a_missing_extra_names_the_pip_install() -> None:
    code = textwrap.dedent(
        """
        import sys
        import agentgraph_nb
        from agentgraph_nb import StateGraph
        assert "psycopg" not in sys.modules and "redis" not in sys.modules, "a driver was imported"
        sys.modules["psycopg"] = None
        sys.modules["redis"] = None
        from agentgraph_nb import MissingDependencyError
        from agentgraph_nb.checkpoint import open_checkpointer
        for url, extra in (("postgresql://u:pw@h/db", "postgres"), ("redis://h:6379/0", "redis")):
            try:
                open_checkpointer(url)
            except MissingDependencyError as e:
                assert f'pip install "agentgraph_nb[{extra}]"' in str(e), str(e)
                assert "pw@" not in str(e), str(e)
            else:
                raise AssertionError("no error for " + url)
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("kind", NETWORK)
def test_asyncio_run_again_and_again_leaves_no_connection_behind(
    kind: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    import gc

    url = store_url(kind, request, tmp_path)
    server = request.getfixturevalue(f"{kind}_server")

    def connections() -> int:
        if kind == "postgres":
            import psycopg

            with psycopg.connect(server.url) as conn:
                return int(conn.execute("SELECT count(*) - 1 FROM pg_stat_activity "
                                        "WHERE backend_type = 'client backend'").fetchone()[0])
        import redis

        with redis.Redis.from_url(server.url) as client:
            return len(client.client_list()) - 1

    async def step(s: dict[str, Any]) -> dict[str, Any]:
        return {"x": s.get("x", 0) + 1}

    g = StateGraph(S, name="loops")
    g.add_node("a", step).add_edge(START, "a").add_edge("a", END)
    app = g.compile(checkpointer=url)
    before = connections()
    def run_on_a_new_loop(coro: Any) -> Any:  # what asyncio.run does (which nest_asyncio may patch)
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    for i in range(6):  # each run on a new loop: its connections close with it
        assert run_on_a_new_loop(app.ainvoke({"x": i}, thread_id=f"t{i}"))["x"] == i + 1
        assert app.invoke({"x": i}, thread_id=f"s{i}")["x"] == i + 1  # a private loop, sync connections
    gc.collect()

    def settled(most: int) -> int:  # the server sees a closed socket a moment later
        deadline = time.monotonic() + 5
        while (extra := connections() - before) > most and time.monotonic() < deadline:
            time.sleep(0.05)
        return extra

    assert settled(2) <= 2  # the store's sync ones: its client's pool's and its own for the scripts
    app.checkpointer.close()  # type: ignore[union-attr]
    assert settled(0) <= 0


def test_a_full_postgres_pool_is_a_checkpoint_error_after_its_timeout(
    request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    from agentgraph_nb.checkpoint import open_checkpointer

    store = open_checkpointer(store_url("postgres", request, tmp_path) + "&pool_size=1&timeout=0.3")
    app = chain({}, ["a"]).compile(checkpointer=store)
    app.invoke({"x": 0}, thread_id="t")
    pool = store._sync_pool()  # type: ignore[attr-defined]
    held, _ = pool.acquire()  # another caller holds the only connection
    try:
        with pytest.raises(CheckpointError, match=r"thread 't'.*pool full"):
            app.invoke({"x": 0}, thread_id="t")
    finally:
        pool.release(held)
    assert app.invoke(None, thread_id="t")["x"] == 1  # and works again once it is free


@pytest.mark.parametrize("kind", NETWORK)
def test_a_store_written_by_a_newer_version_is_refused_untouched(
    kind: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    from agentgraph_nb.checkpoint import open_checkpointer

    url = store_url(kind, request, tmp_path)
    app = chain({}, ["a"]).compile(checkpointer=url)
    app.invoke({"x": 0}, thread_id="t")
    server = request.getfixturevalue(f"{kind}_server")
    if kind == "postgres":
        import psycopg

        schema = url.rsplit("schema=", 1)[1]
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(f"UPDATE \"{schema}\".agentgraph_meta SET value = '99' WHERE key = 'schema_version'")
    else:
        import redis

        prefix = url.rsplit("prefix=", 1)[1]
        redis.Redis.from_url(server.url).hset(f"{prefix}:meta", "schema_version", "99")
    newer = chain({}, ["a"]).compile(checkpointer=open_checkpointer(url))
    with pytest.raises(CheckpointError, match=r"newer agentgraph_nb \(store schema version 99"):
        newer.get_state("t")


def test_postgres_writes_through_one_prepared_statement_and_prepares_it_again_when_it_went_away(
    request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """The sync write goes through libpq (psycopg.pq) with a statement prepared once per
    connection; a statement dropped under it (DEALLOCATE ALL, as a pooler's DISCARD ALL does)
    is prepared again without failing the step; a duplicate id is still psycopg's UniqueViolation,
    reported as the store's duplicate error."""
    from agentgraph_nb.checkpoint import open_checkpointer

    store = open_checkpointer(store_url("postgres", request, tmp_path) + "&pool_size=1")
    counts: dict[str, int] = {}
    app = chain(counts, ["a", "b", "c"]).compile(checkpointer=store)
    app.invoke({"x": 0}, thread_id="t")
    pool = store._sync_pool()  # type: ignore[attr-defined]
    conn, _ = pool.acquire()
    prepared = ("SELECT name FROM pg_prepared_statements WHERE name LIKE 'agentgraph_put%' ORDER BY name")
    try:
        # the first write of a thread, and the others (which know the head)
        assert [r[0] for r in conn.execute(prepared).fetchall()] == ["agentgraph_put", "agentgraph_put_next"]
        conn.execute("DEALLOCATE ALL")
    finally:
        pool.release(conn)
    app.invoke({"x": 10}, thread_id="t2")
    assert app.get_state(thread_id="t2").values["x"] == 13
    assert [s.values.get("x") for s in app.get_state_history(thread_id="t2")] == [13, 12, 11, 10]
    conn, _ = pool.acquire()
    try:  # only one of the two went away: the other is kept
        conn.execute("DEALLOCATE agentgraph_put_next")
    finally:
        pool.release(conn)
    app.invoke({"x": 20}, thread_id="t3")
    assert [s.values.get("x") for s in app.get_state_history(thread_id="t3")] == [23, 22, 21, 20]
    assert counts == {"a": 3, "b": 3, "c": 3}
    rec = store.get("t2")
    rec.parent_id, rec.step = rec.checkpoint_id, rec.step + 1  # same id again
    with pytest.raises(CheckpointError, match="already exists"):
        store.put(rec)
    store.close()


def test_postgres_goes_back_to_cursors_where_the_write_cannot_be_prepared(
    request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """Where the connection refuses to prepare the write (as a pooler in transaction mode can),
    the store writes through psycopg's cursors from then on, and every step is still stored."""
    from agentgraph_nb.checkpoint import open_checkpointer

    store = open_checkpointer(store_url("postgres", request, tmp_path))
    store._sql_put_pq = b"PREPARE THIS IS NOT SQL"  # type: ignore[attr-defined]  # the server refuses it
    counts: dict[str, int] = {}
    app = chain(counts, ["a", "b"]).compile(checkpointer=store)
    assert app.invoke({"x": 0}, thread_id="t")["x"] == 2
    assert store._pq_put is False  # type: ignore[attr-defined]
    assert [s.values.get("x") for s in app.get_state_history(thread_id="t")] == [2, 1, 0]
    store.close()
