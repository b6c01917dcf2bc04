"""The Redis key/value and hash nodes against a real redis-server (tests/_servers.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

pytest.importorskip("redis")

import redis

from agentgraph_nb import START, RetryPolicy, StateGraph
from agentgraph_nb.errors import (
    KeyValueConnectError,
    KeyValueError,
    MessageDecodeError,
    NodeValueError,
)
from agentgraph_nb.nodes import redis_get, redis_hget, redis_hset, redis_set


@pytest.fixture
def url(redis_server: Any) -> str:
    return str(redis_server.url)


@pytest.fixture
def r(url: str) -> Any:
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield client
    client.close()


def run(*nodes: Any, state: dict[str, Any], aio: bool = False) -> dict[str, Any]:
    g = StateGraph(dict)
    prev = START
    for i, node in enumerate(nodes):
        g.add_node(f"n{i}", node)
        g.add_edge(prev, f"n{i}")
        prev = f"n{i}"
    app = g.compile(checkpointer=None)
    return asyncio.run(app.ainvoke(state)) if aio else app.invoke(state)


@pytest.mark.parametrize("aio", [False, True])
def test_set_then_get_round_trips_json_values_under_a_templated_key(url: str, r: Any, aio: bool) -> None:
    out = run(
        redis_set("answer:{user.id}", "{answer}", url=url, aio=aio),
        redis_get("answer:{user.id}", url=url, into="cached", aio=aio),
        redis_get("answer:{nobody}", url=url, into="missing", default="none", aio=aio),
        state={"user": {"id": 7}, "answer": {"text": "42", "n": [1, 2]}, "nobody": "x"}, aio=aio,
    )
    assert out["cached"] == {"text": "42", "n": [1, 2]}
    assert out["missing"] == "none"
    assert r.get("answer:7") == b'{"text":"42","n":[1,2]}'
    assert r.ttl("answer:7") == -1  # no expiry


def test_values_are_arguments_never_command_text(url: str, r: Any) -> None:
    evil = "x\r\nFLUSHALL\r\n"
    r.set("keep", "1")
    run(redis_set("k:{name}", "{v}", url=url, codec="text"), state={"name": evil, "v": evil})
    assert r.get(f"k:{evil}") == evil.encode()
    assert r.get("keep") == b"1"


def test_ttl_expires_the_key(url: str, r: Any) -> None:
    run(redis_set("t", "{v}", url=url, ttl=0.2), state={"v": 1})
    assert 0 < r.pttl("t") <= 200
    time.sleep(0.3)
    assert r.get("t") is None


@pytest.mark.parametrize("aio", [False, True])
def test_hash_fields_from_templates_all_fields_and_one_field(url: str, r: Any, aio: bool) -> None:
    out = run(
        redis_hset("user:{id}", {"name": "{name}", "age": "{age}", "tags": ["a", "{name}"]}, url=url, ttl=60, aio=aio),
        redis_hget("user:{id}", url=url, into="profile", aio=aio),
        redis_hget("user:{id}", "name", url=url, into="just_name", aio=aio),
        redis_hget("user:{id}", url=url, into=None, aio=aio),
        state={"id": 3, "name": "ada", "age": 36}, aio=aio,
    )
    assert out["profile"] == {"name": "ada", "age": 36, "tags": ["a", "ada"]}
    assert out["just_name"] == "ada"
    assert out["tags"] == ["a", "ada"]  # into=None: each field a state key
    assert 0 < r.ttl("user:3") <= 60
    with pytest.raises(NodeValueError, match="needs a non-empty dict"):
        run(redis_hset("h", "{p}", url=url), state={"p": "not a dict"})


def test_undecodable_value_names_node_and_key(url: str, r: Any) -> None:
    r.set("bad", b"\xff{not json")
    with pytest.raises(MessageDecodeError) as ei:
        run(redis_get("bad", url=url, into="v"), state={})
    assert ei.value.node == "n0" and ei.value.queue == "bad"
    assert "'n0'" in str(ei.value) and "'bad'" in str(ei.value) and "codec='bytes'" in str(ei.value)
    assert run(redis_get("bad", url=url, into="v", codec="bytes"), state={})["v"] == b"\xff{not json"


def test_missing_state_key_and_wrong_type_are_typed_errors(url: str, r: Any) -> None:
    with pytest.raises(NodeValueError, match=r"'n0'.*'usr'.*Did you mean 'user'"):
        run(redis_get("k:{usr}", url=url), state={"user": 1})
    r.rpush("alist", "x")
    with pytest.raises(KeyValueError, match=r"node 'n0': Redis GET 'alist'.*WRONGTYPE"):
        run(redis_get("alist", url=url), state={})


def test_unreachable_server_and_bad_credentials(url: str, redis_server: Any) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = redis_get("k", url=f"redis://127.0.0.1:{port}/0")
    with pytest.raises(KeyValueConnectError, match=f"cannot reach Redis at redis://127.0.0.1:{port}/0") as ei:
        run(down, state={})
    assert isinstance(ei.value, ConnectionError) and ei.value.key == "k"
    bad = f"redis://nobody:secret@127.0.0.1:{redis_server.port}/0"
    with pytest.raises(KeyValueError, match="refused the credentials") as ei2:
        run(redis_set("k", 1, url=bad), state={})
    assert not isinstance(ei2.value, ConnectionError)  # not worth retrying
    assert "secret" not in str(ei2.value) and "nobody:***@" in str(ei2.value)


def test_a_down_server_is_retried_by_the_retry_policy_and_close_reconnects(url: str, r: Any, redis_server: Any) -> None:
    node = redis_get("k", url=url, into="v")
    r.set("k", "1")
    assert run(node, state={})["v"] == 1
    redis_server.stop()
    try:
        g = StateGraph(dict).add_node("get", node, retry=RetryPolicy(max_attempts=2, initial_interval=0.01))
        with pytest.raises(KeyValueConnectError):
            g.add_edge(START, "get").compile(checkpointer=None).invoke({})
    finally:
        redis_server.start()
    redis.Redis.from_url(url).set("k", "2")
    assert run(node, state={})["v"] == 2  # the pool reconnects
    app = StateGraph(dict).add_node("get", node).add_edge(START, "get").compile(checkpointer=None)
    app.close()
    assert app.invoke({})["v"] == 2


def test_bad_arguments_fail_at_build_time() -> None:
    with pytest.raises(ValueError, match="not a Redis URL"):
        redis_get("k", url="http://x")
    with pytest.raises(ValueError, match="ttl must be a positive"):
        redis_set("k", 1, url="redis://h", ttl=0)
    with pytest.raises(ValueError, match="codec must be one of"):
        redis_get("k", url="redis://h", codec="pickle")
