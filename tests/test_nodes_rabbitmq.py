"""RabbitMQ: the publish/get nodes and RabbitMQTrigger against a real broker (Debian's
rabbitmq-server, started by tests/_servers.py on free loopback ports)."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from typing import Any

import pytest

pytest.importorskip("aio_pika")

import aio_pika

from agentgraph_nb import START, StateGraph
from agentgraph_nb.errors import MessageDecodeError, QueueConnectError, QueueError
from agentgraph_nb.nodes import RabbitMQTrigger, rabbitmq_get, rabbitmq_publish


@pytest.fixture
def url(rabbitmq_server: Any) -> str:
    return str(rabbitmq_server.url)


@pytest.fixture
def q() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


def one(node: Any, state: dict[str, Any]) -> dict[str, Any]:
    app = StateGraph(dict).add_node("n", node).add_edge(START, "n").compile(checkpointer=None)
    return app.invoke(state)


async def _broker(url: str, fn: Any) -> Any:
    conn = await aio_pika.connect(url)
    try:
        return await fn(await conn.channel())
    finally:
        await conn.close()


def put(url: str, queue: str, *bodies: bytes) -> None:
    async def go(ch: Any) -> None:
        await ch.declare_queue(queue, durable=True)
        for b in bodies:
            await ch.default_exchange.publish(aio_pika.Message(b, message_id=uuid.uuid4().hex), routing_key=queue)

    asyncio.run(_broker(url, go))


def drain(url: str, queue: str) -> list[tuple[bytes, dict[str, Any]]]:
    async def go(ch: Any) -> list[tuple[bytes, dict[str, Any]]]:
        qq = await ch.declare_queue(queue, durable=True)
        out = []
        while (m := await qq.get(fail=False)) is not None:
            out.append((m.body, dict(m.headers or {})))
            await m.ack()
        return out

    return asyncio.run(_broker(url, go))


class Worker:
    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.calls: list[Any] = []
        self.lock = threading.Lock()

    def __call__(self, state: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.calls.append(state["message"])
            n = self.calls.count(state["message"])
        if n <= self.fail:
            raise RuntimeError(f"boom {n}")
        return {"out": state["message"]["n"] * 10}

    def app(self) -> Any:
        return StateGraph(dict).add_node("work", self).add_edge(START, "work").compile()


def test_publish_then_get_round_trips_and_acks(url: str, q: str) -> None:
    out = one(rabbitmq_publish("{queue}", {"n": "{n}", "tag": "x"}, url=url, headers={"who": "{who}"}, into="mid"),
              {"queue": q, "n": 3, "who": "ada"})
    one(rabbitmq_publish(q, "{n}", url=url, codec="text"), {"n": 4})
    got = one(rabbitmq_get(q, url=url, count=5, codec="text"), {})["messages"]
    assert [m["data"] for m in got] == ['{"n":3,"tag":"x"}', "4"]
    assert got[0]["id"] == out["mid"]
    assert one(rabbitmq_get(q, url=url), {})["messages"] == []  # acknowledged: gone
    assert drain(url, q) == []


def test_get_of_an_undecodable_message_returns_them_all_to_the_queue(url: str, q: str) -> None:
    put(url, q, b'{"ok": 1}', b"\xff\xfe")
    with pytest.raises(MessageDecodeError) as ei:
        one(rabbitmq_get(q, url=url, count=2), {})
    assert ei.value.node == "n" and ei.value.queue == q and ei.value.message_id
    assert f"(message {ei.value.message_id})" in str(ei.value)
    assert [b for b, _ in drain(url, q)] == [b'{"ok": 1}', b"\xff\xfe"]  # nothing half consumed


def test_missing_queue_without_declare_bad_credentials_and_no_broker(url: str, q: str, rabbitmq_server: Any) -> None:
    with pytest.raises(QueueError, match=f"'n': RabbitMQ get from '{q}'.*does not exist"):
        one(rabbitmq_get(q, url=url, declare=False), {})
    bad = f"amqp://guest:wrong@127.0.0.1:{rabbitmq_server.port}/"
    with pytest.raises(QueueError, match="refused the credentials") as ei:
        one(rabbitmq_publish(q, 1, url=bad), {})
    assert not isinstance(ei.value, QueueConnectError) and "wrong" not in str(ei.value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(QueueConnectError, match=f"cannot reach RabbitMQ at amqp://guest:\\*\\*\\*@127.0.0.1:{port}/"):
        one(rabbitmq_publish(q, 1, url=f"amqp://guest:guest@127.0.0.1:{port}/"), {})


def test_trigger_runs_once_per_message_and_acks_after_the_run(url: str, q: str) -> None:
    w = Worker()
    app = w.app()
    with RabbitMQTrigger(app, q, url=url) as t:
        put(url, q, *[f'{{"n": {n}}}'.encode() for n in range(3)])
        assert t.wait(3, timeout=15)
    assert sorted(c["n"] for c in w.calls) == [0, 1, 2]
    assert t.stats["succeeded"] == 3 and t.stats["failed"] == 0
    ev, out = t.results[0]
    assert out["out"] == ev.input["message"]["n"] * 10
    assert app.get_state(f"rabbitmq:{ev.id}").values["message_id"] == ev.id
    assert drain(url, q) == []  # all acknowledged


def test_failed_runs_are_retried_then_dead_lettered_and_bad_messages_never_run(url: str, q: str) -> None:
    w = Worker(fail=1)
    with RabbitMQTrigger(w.app(), q, url=url, retry_delay=0.05, dead_letter=f"{q}.dead") as t:
        put(url, q, b'{"n": 2}')
        assert t.wait(1, timeout=15)
        assert t.stats["retried"] == 1 and t.stats["succeeded"] == 1
    never = Worker(fail=99)
    with RabbitMQTrigger(never.app(), q, url=url, retry_delay=0.01, max_attempts=2, dead_letter=f"{q}.dead") as t:
        put(url, q, b'{"n": 5}', b"not json")
        assert t.wait(2, timeout=15)
    assert len(never.calls) == 2
    dead = drain(url, f"{q}.dead")
    assert sorted(b for b, _ in dead) == sorted([b'{"n": 5}', b"not json"])
    errors = sorted(h["x-error"] for _, h in dead)
    assert "MessageDecodeError" in errors[0] and "boom 2" in errors[1]
    assert all(h["x-source-queue"] == q for _, h in dead)
    assert drain(url, q) == []


def test_without_dead_letter_a_given_up_message_is_rejected(url: str, q: str) -> None:
    with RabbitMQTrigger(Worker(fail=99).app(), q, url=url, max_attempts=1) as t:
        put(url, q, b'{"n": 1}')
        assert t.wait(1, timeout=15)
    assert drain(url, q) == []


def test_a_message_unacknowledged_when_the_trigger_stops_goes_back_to_the_queue(url: str, q: str) -> None:
    w = Worker(fail=99)
    t = RabbitMQTrigger(w.app(), q, url=url, retry_delay=60, max_attempts=5)
    with t:
        put(url, q, b'{"n": 9}')
        for _ in range(300):
            if t.stats["retried"]:
                break
            threading.Event().wait(0.02)
    assert t.stats["retried"] == 1 and t.stats["given_up"] == 0
    assert [b for b, _ in drain(url, q)] == [b'{"n": 9}']


def test_unreachable_broker_fails_at_start(q: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = RabbitMQTrigger(Worker().app(), q, url=f"amqp://guest:guest@127.0.0.1:{port}/")
    with pytest.raises(QueueConnectError, match="cannot reach RabbitMQ"):
        t.start()


def test_sync_invokes_share_one_connection_closed_by_app_close(url: str, q: str) -> None:
    from agentgraph_nb.nodes import rabbitmq as rmod

    app = StateGraph(dict).add_node("p", rabbitmq_publish(q, "{n}", url=url)).add_edge(START, "p").compile(checkpointer=None)
    app.invoke({"n": 1})
    conn = rmod._held[url][0]
    app.invoke({"n": 2})  # each sync invoke runs on a loop of its own; the connection outlives them
    assert rmod._held[url][0] is conn
    app.close()
    assert url not in rmod._held and conn.is_closed
    app.invoke({"n": 3})
    app.close()
    assert [b for b, _ in drain(url, q)] == [b"1", b"2", b"3"]


def test_the_trigger_reconnects_after_a_broker_restart(url: str, q: str, rabbitmq_server: Any) -> None:
    w = Worker()
    publish = StateGraph(dict).add_node("p", rabbitmq_publish(q, {"n": "{n}"}, url=url)).add_edge(START, "p")
    sender = publish.compile(checkpointer=None)
    with RabbitMQTrigger(w.app(), q, url=url) as t:
        sender.invoke({"n": 1})
        assert t.wait(1, timeout=15)
        rabbitmq_server.stop()
        rabbitmq_server.start()  # the durable queue is still there
        sender.invoke({"n": 2})  # the node's shared connection is made again too
        assert t.wait(2, timeout=30), t.stats
    assert [c["n"] for c in w.calls] == [1, 2]
    assert drain(url, q) == []
    sender.close()
