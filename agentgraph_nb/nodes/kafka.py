"""Kafka (extra ``kafka``, on aiokafka): a producing node, a consuming node, and a trigger that
starts one run per record. Any broker that speaks the Kafka protocol works (Apache Kafka,
Redpanda, Tansu: the tests run against Tansu).

Example:
    >>> from agentgraph_nb.nodes.kafka import kafka_send, KafkaTrigger
    >>> send = kafka_send("orders", "{order}", url="kafka://localhost:9092", key="{order.id}")
    >>> with KafkaTrigger(app, "orders", url="kafka://localhost:9092", group="workers") as t:  # doctest: +SKIP
    ...     t.wait(10)

Values are JSON by default (``codec="text"``/``"bytes"``); keys are text. Sending waits for the
broker's acknowledgement. The nodes are async (aiokafka is); a sync ``invoke`` runs them too. One
producer per URL is shared by the process's nodes: it lives on the node library's I/O thread, so it
outlives each run's event loop, and is stopped by ``app.close()`` and at exit.

The trigger is a member of a consumer group (``group``) and commits a record's offset only after
its run ends; records of a partition run in order. A failed run is tried again from the same
offset after ``retry_delay`` (the partition waits meanwhile), up to ``max_attempts``; then the
record goes to ``dead_letter`` (another topic, with an ``x-error`` header) and its offset is
committed. A record that cannot be decoded never starts a run and is dead-lettered (or skipped).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka import errors as kerr

from agentgraph_nb.errors import MessageDecodeError, QueueConnectError, QueueError
from agentgraph_nb.nodes._base import LibraryNode, Template, compile_templates, fill, node_name
from agentgraph_nb.nodes._conn import check_codec, decode, encode, io_loop
from agentgraph_nb.nodes._trigger import Event, Trigger, as_input

__all__ = ["KafkaNode", "KafkaTrigger", "kafka_read", "kafka_send"]

# one producer per URL, living on the node library's I/O loop (_conn.io_loop)
_producers: dict[str, AIOKafkaProducer] = {}


def bootstrap(url: str) -> str:
    """``host:port[,host:port]`` from ``kafka://host:port`` (or the same without the scheme)."""
    return url.removeprefix("kafka://").rstrip("/")


def _error(exc: BaseException, *, node: str, url: str, topic: str, op: str, message_id: str | None = None) -> QueueError:
    if isinstance(exc, (kerr.KafkaConnectionError, kerr.KafkaTimeoutError, OSError, asyncio.TimeoutError)):
        return QueueConnectError(
            f"{node!r}: cannot reach the Kafka broker at {url} ({type(exc).__name__}: {exc}) to {op} {topic!r}.",
            node=node, resource=topic, queue=topic, url=url, message_id=message_id,
        )
    return QueueError(
        f"{node!r}: Kafka {op} {topic!r} at {url} failed: {type(exc).__name__}: {exc}",
        node=node, resource=topic, queue=topic, url=url, message_id=message_id,
    )


def _record_id(topic: str, partition: int, offset: int) -> str:
    return f"{topic}:{partition}:{offset}"


async def _producer(url: str) -> AIOKafkaProducer:
    """The URL's shared producer; call on the I/O loop."""
    p = _producers.get(url)
    if p is None:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap(url), acks="all", request_timeout_ms=10_000)
        try:
            await p.start()
        except BaseException:
            await p.stop()
            raise
        _producers[url] = p
        io_loop.on_close(("kafka", url), p.stop)
    return p


async def _drop(url: str) -> None:
    p = _producers.pop(url, None)
    io_loop.on_close(("kafka", url), None)
    if p is not None:
        await p.stop()


class KafkaNode(LibraryNode):
    """A node that sends to or reads from a Kafka topic; made by :func:`kafka_send` and
    :func:`kafka_read`."""

    kind = "kafka"

    def __init__(
        self,
        op: str,
        topic: str,
        *,
        url: str,
        value: Any = None,
        key: str | None = None,
        headers: dict[str, Any] | None = None,
        group: str | None = None,
        count: int = 10,
        timeout: float = 1.0,
        into: str | None = None,
        codec: str = "json",
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.kind = f"kafka_{op}"
        if not isinstance(url, str) or not bootstrap(url) or "://" in bootstrap(url):
            raise ValueError(f"{self.kind}: {url!r} is not a Kafka address; e.g. 'kafka://localhost:9092'")
        if count < 1:
            raise ValueError(f"{self.kind}: count must be at least 1, got {count!r}")
        if op == "read" and not group:
            raise ValueError("kafka_read: give group= (the consumer group whose committed offsets it reads from)")
        self.op = op
        self.url = url
        self.topic = Template(topic)
        self._value_fn = value if callable(value) else None
        self._value = None if callable(value) else compile_templates(value)
        self.key = Template(key) if key is not None else None
        self._headers = compile_templates(headers or {})
        self.group = group
        self.count = count
        self.timeout = timeout
        self.into = into
        self.codec = check_codec(codec, self.kind)

    async def __call__(self, state: Any) -> dict[str, Any] | None:
        topic = self.topic.render(state, who=self.who)
        name = node_name(self.who)  # here: the I/O loop's thread cannot see which node runs
        if self.op == "send":
            value = self._value_fn(state) if self._value_fn is not None else fill(self._value, state, who=self.who)
            data = encode(value, self.codec, node=name, resource=topic)
            key = self.key.render(state, who=self.who).encode() if self.key is not None else None
            headers = [(str(k), str(v).encode()) for k, v in fill(self._headers, state, who=self.who).items()] or None
            work = self._send(topic, data, key, headers)
        else:
            work = self._read(topic, name)
        try:
            return await io_loop.run(work)
        except kerr.KafkaError as exc:
            raise _error(exc, node=name, url=self.url, topic=topic, op=self.op) from exc

    async def _send(self, topic: str, data: bytes, key: bytes | None, headers: Any) -> dict[str, Any] | None:
        p = await _producer(self.url)
        md = await p.send_and_wait(topic, data, key=key, headers=headers)  # acknowledged by the broker
        return None if self.into is None else {self.into: _record_id(md.topic, md.partition, md.offset)}

    async def _read(self, topic: str, name: str) -> dict[str, Any] | None:
        # partitions assigned by hand: no group join (seconds), yet offsets committed to the group
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap(self.url), group_id=self.group, enable_auto_commit=False,
                             auto_offset_reset="earliest", request_timeout_ms=10_000)
        await c.start()
        try:
            parts = c.partitions_for_topic(topic)
            if parts is None:
                await c._client.force_metadata_update()  # a topic this client has not seen yet
                parts = c.partitions_for_topic(topic) or set()
            if not parts:
                return None if self.into is None else {self.into: []}
            c.assign([TopicPartition(topic, p) for p in sorted(parts)])
            got = await c.getmany(timeout_ms=int(self.timeout * 1000), max_records=self.count)
            out = []
            for tp, records in got.items():
                for r in records:
                    rid = _record_id(tp.topic, tp.partition, r.offset)
                    out.append({"id": rid, "key": r.key.decode(errors="replace") if r.key is not None else None,
                                "data": decode(r.value, self.codec, node=name, queue=topic, message_id=rid, url=self.url)})
            if got:  # all decoded: commit them together (one that is not leaves every offset as it was)
                await c.commit({tp: records[-1].offset + 1 for tp, records in got.items()})
            return None if self.into is None else {self.into: out}
        finally:
            await c.stop()

    async def aclose(self) -> None:
        """Stop the shared producer of the node's broker (it starts again on use)."""
        await io_loop.run(_drop(self.url))

    def close(self) -> None:
        """Stop the shared producer of the node's broker (it starts again on next use)."""
        if self.url in _producers:
            io_loop.call(_drop(self.url))


def kafka_send(
    topic: str, value: Any, *, url: str, key: str | None = None, headers: dict[str, Any] | None = None,
    into: str | None = None, codec: str = "json", name: str | None = None,
) -> KafkaNode:
    """A node that sends one record and waits for the broker's acknowledgement (``acks=all``).

    Args:
        topic: the topic, a template of state keys.
        value: ``"{order}"`` (a state value itself), a template, a dict of templates, or ``value(state)``.
        url: the broker (``kafka://host:9092``, several comma-separated).
        key: the record key, a template (records of one key keep their order).
        headers: record headers (templates allowed; sent as UTF-8).
        into: a state key for the record id ``"topic:partition:offset"``.
        codec: ``"json"`` (default), ``"text"`` or ``"bytes"``.
        name: the node's name in errors raised outside a run.
    """
    return KafkaNode("send", topic, url=url, value=value, key=key, headers=headers, into=into, codec=codec, name=name)


def kafka_read(
    topic: str, *, url: str, group: str, count: int = 10, timeout: float = 1.0, into: str | None = "messages",
    codec: str = "json", name: str | None = None,
) -> KafkaNode:
    """A node that reads up to ``count`` records after the group's committed offsets (waiting at
    most ``timeout`` seconds) into the state as ``[{"id", "key", "data"}]``, and commits them once
    all are decoded; one that cannot be decoded raises
    :class:`~agentgraph_nb.errors.MessageDecodeError` and commits nothing. To run the graph once
    per record, use :class:`KafkaTrigger`."""
    return KafkaNode("read", topic, url=url, group=group, count=count, timeout=timeout, into=into, codec=codec, name=name)


class KafkaTrigger(Trigger):
    """Runs a graph once per record of a Kafka topic, as a member of a consumer group.

    Args:
        app: the compiled graph.
        topic: the topic.
        url: the broker (``kafka://host:9092``).
        group: the consumer group (members share the partitions).
        into: the input key for the value (``{"message": value}``); None: the value, a JSON
            object, is the input.
        codec: how values are written.
        dead_letter: a topic that receives the records given up (same key and value, headers
            ``x-error`` and ``x-source``); None: they are skipped (their offset committed).
        retry_delay: seconds before a failed record is tried again.
        batch: records fetched at a time.
        **kwargs: ``thread_id``, ``max_attempts``, ``on_result``, ``on_error``.

    The run's input also has ``message_id`` (``"topic:partition:offset"``) unless
    ``message_id_key=None``.
    """

    kind = "kafka"

    def __init__(
        self,
        app: Any,
        topic: str,
        *,
        url: str,
        group: str,
        into: str | None = "message",
        codec: str = "json",
        dead_letter: str | None = None,
        retry_delay: float = 0.5,
        batch: int = 10,
        message_id_key: str | None = "message_id",
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.topic = topic
        self.url = url
        self.group = group
        self.into = into
        self.codec = check_codec(codec, "KafkaTrigger")
        self.dead_letter = dead_letter
        self.retry_delay = retry_delay
        self.batch = batch
        self.message_id_key = message_id_key
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        # per partition being retried: (offset, attempt, when)
        self._retrying: dict[TopicPartition, tuple[int, int, float]] = {}

    @property
    def _who(self) -> str:
        return f"KafkaTrigger {self.topic}"

    async def _open(self) -> None:
        boot = bootstrap(self.url)
        self._consumer = AIOKafkaConsumer(
            self.topic, bootstrap_servers=boot, group_id=self.group, enable_auto_commit=False,
            auto_offset_reset="earliest", request_timeout_ms=10_000,
        )
        try:
            await self._consumer.start()
            if self.dead_letter is not None:
                self._producer = AIOKafkaProducer(bootstrap_servers=boot, acks="all", request_timeout_ms=10_000)
                await self._producer.start()
        except kerr.KafkaError as exc:
            await self._close()
            raise _error(exc, node=self._who, url=self.url, topic=self.topic, op="consume from") from exc
        self._retrying = {}

    def _event(self, tp: TopicPartition, r: Any) -> Event:
        rid = _record_id(tp.topic, tp.partition, r.offset)
        attempt = 1
        again = self._retrying.get(tp)
        if again is not None and again[0] == r.offset:
            attempt = again[1]
        meta = {self.message_id_key: rid} if self.message_id_key else None
        raw = (tp, r)
        try:
            body = decode(r.value, self.codec, node=self._who, queue=self.topic, message_id=rid, url=self.url)
            return Event(rid, as_input(body, self.into, meta), attempt, raw=raw)
        except MessageDecodeError as exc:
            return Event(rid, None, attempt, error=exc, raw=raw)
        except TypeError as exc:
            err = MessageDecodeError(f"{self._who}: record {rid}: {exc}", node=self._who, resource=self.topic,
                                     queue=self.topic, message_id=rid, url=self.url)
            return Event(rid, None, attempt, error=err, raw=raw)

    async def _next(self) -> list[Event]:
        c = self._consumer
        assert c is not None
        now = time.monotonic()
        for tp, (_, _, when) in self._retrying.items():  # a partition waits for its retry
            if tp not in c.assignment():
                continue
            if when > now:
                c.pause(tp)
            elif tp in c.paused():
                c.resume(tp)
        try:
            got = await c.getmany(timeout_ms=200, max_records=self.batch)
        except kerr.KafkaError as exc:
            err = _error(exc, node=self._who, url=self.url, topic=self.topic, op="consume from")
            self.failures.append((Event("-", None, error=err), err))
            self.stats["source_errors"] += 1
            await asyncio.sleep(0.5)
            return []
        return [self._event(tp, r) for tp, records in got.items() for r in records]

    def _skip(self, event: Event) -> bool:
        tp, r = event.raw
        again = self._retrying.get(tp)
        return again is not None and r.offset > again[0]  # fetched again after the retried one

    async def _commit(self, event: Event) -> None:
        tp, r = event.raw
        assert self._consumer is not None
        await self._consumer.commit({tp: r.offset + 1})
        again = self._retrying.get(tp)
        if again is not None and again[0] == r.offset:
            del self._retrying[tp]
            if tp in self._consumer.paused():
                self._consumer.resume(tp)

    async def _ack(self, event: Event) -> None:
        await self._commit(event)

    async def _retry(self, event: Event) -> None:
        tp, r = event.raw
        self._retrying[tp] = (r.offset, event.attempt + 1, time.monotonic() + self.retry_delay)
        assert self._consumer is not None
        self._consumer.seek(tp, r.offset)  # the partition starts again from the failed record

    async def _give_up(self, event: Event, exc: BaseException) -> None:
        _tp, r = event.raw
        if self._producer is not None and self.dead_letter is not None:
            headers = [
                *(r.headers or ()),
                ("x-error", f"{type(exc).__name__}: {exc}"[:2000].encode()),
                ("x-source", event.id.encode()),
            ]
            await self._producer.send_and_wait(self.dead_letter, r.value, key=r.key, headers=headers)
        await self._commit(event)

    async def _close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
