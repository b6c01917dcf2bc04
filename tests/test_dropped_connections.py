"""Connections that drop while the server stays up, on real servers: the server closes the stores'
connections between two steps of a run (``pg_terminate_backend``, ``CLIENT KILL``), and the run
goes on over new ones, each step once, the history whole; and an asyncio Postgres pool that stays
full is a CheckpointError naming the thread, after which the run resumes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentgraph_nb import CheckpointError
from tests.conftest import store_url
from tests.test_network_stores import NETWORK, chain


def _kill_connections(kind: str, server: Any, app_name: str) -> int:
    """Close the connections of the stores under test from the server's side; how many."""
    if kind == "postgres":
        import psycopg

        with psycopg.connect(server.url, autocommit=True) as conn:
            rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                                (app_name,)).fetchall()
        return sum(1 for (ok,) in rows if ok)
    import redis

    client = redis.Redis.from_url(server.url)
    try:
        return int(client.client_kill_filter(_type="normal", skipme=True))
    finally:
        client.close()


@pytest.mark.parametrize("asynchronous", [False, True], ids=["invoke", "ainvoke"])
@pytest.mark.parametrize("kind", NETWORK)
def test_connections_closed_by_the_server_mid_run_are_replaced_and_no_step_runs_twice(
    kind: str, asynchronous: bool, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    app_name = f"agentgraph-drop-{kind}-{int(asynchronous)}"
    if kind == "postgres":
        server = request.getfixturevalue("postgres_server")
        url = store_url("postgres", request, tmp_path) + f"&application_name={app_name}"
    else:  # a server of its own: CLIENT KILL closes every connection but the killer's
        from tests._servers import RedisServer, redis_binaries

        if redis_binaries() is None:
            pytest.skip("redis-server is not installed")
        pytest.importorskip("redis")
        server = RedisServer()
        request.addfinalizer(server.close)
        url = f"{server.url}?timeout=2"
    counts: dict[str, int] = {}
    killed: list[int] = []

    def hook(n: str) -> None:
        if n in ("b", "d"):  # twice: between steps, once after each commit
            killed.append(_kill_connections(kind, server, app_name))

    app = chain(counts, ["a", "b", "c", "d", "e"], hook).compile(checkpointer=url)
    if asynchronous:
        out = asyncio.run(app.ainvoke({"x": 0}, thread_id="job"))
    else:
        out = app.invoke({"x": 0}, thread_id="job")
    assert all(k >= 1 for k in killed) and len(killed) == 2, killed  # the store's connections were closed
    assert out == {"x": 5, "log": ["a", "b", "c", "d", "e"]}
    assert counts == {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}
    assert [h.step for h in app.get_state_history("job")] == [5, 4, 3, 2, 1, 0]
    app.checkpointer.close()  # type: ignore[union-attr]


def test_a_full_asyncio_postgres_pool_is_a_checkpoint_error_and_the_run_resumes(
    request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    from agentgraph_nb.checkpoint import open_checkpointer

    store = open_checkpointer(store_url("postgres", request, tmp_path) + "&pool_size=1&timeout=0.3")
    app = chain({}, ["a", "b"]).compile(checkpointer=store)

    async def scenario() -> None:
        assert (await app.ainvoke({"x": 0}, thread_id="t"))["x"] == 2
        pool = await store._async_pool()  # type: ignore[attr-defined]
        held, _ = await pool.acquire()  # another task holds the loop's only connection
        try:
            with pytest.raises(CheckpointError, match=r"thread 't'.*pool full"):
                await app.ainvoke({"x": 0}, thread_id="t")
        finally:
            await pool.release(held)
        assert (await app.ainvoke(None, thread_id="t"))["x"] == 2  # nothing half-written: the state as it was
        assert (await app.ainvoke({"x": 10}, thread_id="t"))["x"] == 12

    asyncio.run(scenario())
    store.close()
