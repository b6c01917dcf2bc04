"""RabbitMQ (extra ``rabbitmq``, on aio-pika): a publishing node, a consuming node, and a
trigger that starts one run per message.

Example:
    >>> from agentgraph_nb.nodes.rabbitmq import rabbitmq_publish, RabbitMQTrigger
    >>> publish = rabbitmq_publish("orders", "{order}", url="amqp://guest:guest@localhost/")
    >>> with RabbitMQTrigger(app, "orders", url="amqp://guest:guest@localhost/") as t:  # doctest: +SKIP
    ...     t.wait(10)

Bodies are JSON by default (``codec="text"``/``"bytes"``). Publishing waits for the broker's
confirmation, so a node that returned has its message in the queue. The nodes are async (aio-pika
is); a sync ``invoke`` runs them too. One connection per URL is shared by the process's nodes: it
lives on the node library's I/O thread, so it outlives each run's event loop, and is closed by
``app.close()`` and at exit.

The trigger consumes with manual acknowledgements: a message is acknowledged after its run
ends; a failed run keeps it unacknowledged (a crash returns it to the queue) and tries again
(``max_attempts``); then it is published to ``dead_letter`` (a queue) and acknowledged, or, with
no ``dead_letter``, rejected without requeueing, which sends it to the queue's own dead-letter
exchange when the queue has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import aio_pika
import aio_pika.exceptions as amqp_errors
from aio_pika.abc import AbstractIncomingMessage

from agentgraph_nb.errors import MessageDecodeError, QueueConnectError, QueueError
from agentgraph_nb.nodes._base import LibraryNode, Template, compile_templates, fill, node_name
from agentgraph_nb.nodes._conn import check_codec, decode, encode, hide_password, io_loop
from agentgraph_nb.nodes._trigger import Event, Trigger, as_input

__all__ = ["RabbitMQNode", "RabbitMQTrigger", "rabbitmq_get", "rabbitmq_publish"]

_CONTENT_TYPE = {"json": "application/json", "text": "text/plain", "bytes": "application/octet-stream"}

# one connection and channel per URL, living on the node library's I/O loop (_conn.io_loop)
_held: dict[str, tuple[Any, Any]] = {}


def _error(exc: BaseException, *, node: str, url: str, queue: str, op: str, message_id: str | None = None) -> QueueError:
    shown = hide_password(url)
    if isinstance(exc, amqp_errors.ProbableAuthenticationError):
        return QueueError(
            f"{node!r}: RabbitMQ at {shown} refused the credentials ({exc}). Check the user and password in the URL.",
            node=node, resource=queue, queue=queue, url=shown, message_id=message_id,
        )
    if isinstance(exc, (OSError, amqp_errors.AMQPConnectionError, asyncio.TimeoutError)):
        return QueueConnectError(
            f"{node!r}: cannot reach RabbitMQ at {shown} ({type(exc).__name__}: {exc}) to {op} {queue!r}.",
            node=node, resource=queue, queue=queue, url=shown, message_id=message_id,
        )
    what = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, amqp_errors.ChannelNotFoundEntity):
        what += " (the queue does not exist: declare it, or leave declare=True)"
    return QueueError(
        f"{node!r}: RabbitMQ {op} {queue!r} at {shown} failed: {what}",
        node=node, resource=queue, queue=queue, url=shown, message_id=message_id,
    )


async def _channel(url: str) -> Any:
    """The URL's shared channel (with publisher confirms); call on the I/O loop."""
    held = _held.get(url)
    if held is None or held[1].is_closed or not held[0].connected.is_set():  # closed, or the broker went away
        if held is not None:
            with contextlib.suppress(Exception):
                await held[0].close()
        conn = await aio_pika.connect(url, timeout=10)
        held = _held[url] = (conn, await conn.channel(publisher_confirms=True))
        io_loop.on_close(("rabbitmq", url), conn.close)
    return held[1]


async def _drop(url: str) -> None:
    held = _held.pop(url, None)
    io_loop.on_close(("rabbitmq", url), None)
    if held is not None:
        await held[0].close()


def _message_id(m: AbstractIncomingMessage) -> str:
    return m.message_id or f"delivery-{m.delivery_tag}"


class RabbitMQNode(LibraryNode):
    """A node that publishes to or gets from a RabbitMQ queue; made by :func:`rabbitmq_publish`
    and :func:`rabbitmq_get`."""

    kind = "rabbitmq"

    def __init__(
        self,
        op: str,
        queue: str,
        *,
        url: str,
        body: Any = None,
        exchange: str = "",
        headers: dict[str, Any] | None = None,
        count: int = 1,
        declare: bool = True,
        persistent: bool = True,
        into: str | None = None,
        codec: str = "json",
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.kind = f"rabbitmq_{op}"
        if not isinstance(url, str) or not url.startswith(("amqp://", "amqps://")):
            raise ValueError(f"{self.kind}: {url!r} is not an AMQP URL; e.g. 'amqp://guest:guest@localhost:5672/'")
        if count < 1:
            raise ValueError(f"{self.kind}: count must be at least 1, got {count!r}")
        self.op = op
        self.url = url
        self.shown = hide_password(url)
        self.queue = Template(queue)
        self._body_fn = body if callable(body) else None
        self._body = None if callable(body) else compile_templates(body)
        self.exchange = exchange
        self._headers = compile_templates(headers or {})
        self.count = count
        self.declare = declare
        self.persistent = persistent
        self.into = into
        self.codec = check_codec(codec, self.kind)

    async def _queue(self, ch: Any, name: str) -> Any:
        return await ch.declare_queue(name, durable=True, passive=not self.declare)

    async def __call__(self, state: Any) -> dict[str, Any] | None:
        queue = self.queue.render(state, who=self.who)
        name = node_name(self.who)  # here: the I/O loop's thread cannot see which node runs
        if self.op == "publish":
            value = self._body_fn(state) if self._body_fn is not None else fill(self._body, state, who=self.who)
            data = encode(value, self.codec, node=name, resource=queue)
            headers = fill(self._headers, state, who=self.who) or None
            work = self._publish(queue, data, headers)
        else:
            work = self._get(queue, name)
        try:
            return await io_loop.run(work)
        except (amqp_errors.AMQPError, OSError, asyncio.TimeoutError) as exc:
            op = "publish to" if self.op == "publish" else "get from"
            raise _error(exc, node=name, url=self.url, queue=queue, op=op) from exc

    async def _publish(self, queue: str, data: bytes, headers: dict[str, Any] | None) -> dict[str, Any] | None:
        ch = await _channel(self.url)
        msg = aio_pika.Message(
            data,
            content_type=_CONTENT_TYPE[self.codec],
            message_id=uuid.uuid4().hex,
            headers=headers,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT if self.persistent else aio_pika.DeliveryMode.NOT_PERSISTENT,
        )
        if self.exchange:
            ex = await ch.get_exchange(self.exchange, ensure=True)
        else:
            if self.declare:
                await self._queue(ch, queue)
            ex = ch.default_exchange
        await ex.publish(msg, routing_key=queue)  # returns once the broker confirmed it
        return None if self.into is None else {self.into: msg.message_id}

    async def _get(self, queue: str, name: str) -> dict[str, Any] | None:
        ch = await _channel(self.url)
        q = await self._queue(ch, queue)
        got: list[AbstractIncomingMessage] = []
        for _ in range(self.count):
            m = await q.get(no_ack=False, fail=False)
            if m is None:
                break
            got.append(m)
        try:
            out = [{"id": _message_id(m), "data": decode(m.body, self.codec, node=name, queue=queue,
                                                         message_id=_message_id(m), url=self.shown)}
                   for m in got]
        except MessageDecodeError:
            for m in got:  # back to the queue, all of them: nothing half consumed
                await m.nack(requeue=True)
            raise
        for m in got:
            await m.ack()
        return None if self.into is None else {self.into: out}

    async def aclose(self) -> None:
        """Close the shared connection to the node's broker (shared per URL; it reopens on use)."""
        await io_loop.run(_drop(self.url))

    def close(self) -> None:
        """Close the shared connection to the node's broker (it reopens on next use)."""
        if self.url in _held:
            io_loop.call(_drop(self.url))


def rabbitmq_publish(
    queue: str, body: Any, *, url: str, exchange: str = "", headers: dict[str, Any] | None = None,
    declare: bool = True, persistent: bool = True, into: str | None = None, codec: str = "json",
    name: str | None = None,
) -> RabbitMQNode:
    """A node that publishes one message and waits for the broker's confirmation.

    Args:
        queue: the queue (the routing key with ``exchange``), a template of state keys.
        body: ``"{order}"`` (a state value itself), a template, a dict of templates, or ``body(state)``.
        url: the broker (``amqp://user:password@host:5672/vhost``).
        exchange: publish to this exchange (which must exist) instead of straight to the queue.
        headers: message headers (templates allowed).
        declare: declare the queue (durable) if missing; False: it must exist.
        persistent: delivery mode 2 (survives a broker restart in a durable queue).
        into: a state key for the message id.
        codec: ``"json"`` (default), ``"text"`` or ``"bytes"``.
        name: the node's name in errors raised outside a run.
    """
    return RabbitMQNode("publish", queue, url=url, body=body, exchange=exchange, headers=headers, declare=declare,
                        persistent=persistent, into=into, codec=codec, name=name)


def rabbitmq_get(
    queue: str, *, url: str, count: int = 1, declare: bool = True, into: str | None = "messages",
    codec: str = "json", name: str | None = None,
) -> RabbitMQNode:
    """A node that takes up to ``count`` waiting messages into the state as
    ``[{"id": ..., "data": ...}]`` (an empty list when the queue is empty), acknowledged once all
    are decoded; one that cannot be decoded raises
    :class:`~agentgraph_nb.errors.MessageDecodeError` and returns them all to the queue. To run
    the graph once per message, use :class:`RabbitMQTrigger`."""
    return RabbitMQNode("get", queue, url=url, count=count, declare=declare, into=into, codec=codec, name=name)


class RabbitMQTrigger(Trigger):
    """Runs a graph once per message of a RabbitMQ queue.

    Args:
        app: the compiled graph.
        queue: the queue (declared durable if missing, unless ``declare=False``).
        url: the broker.
        into: the input key for the body (``{"message": body}``); None: the body, a JSON object,
            is the input.
        codec: how bodies are written.
        dead_letter: a queue that receives the messages given up (headers ``x-error``,
            ``x-source-queue``); None: they are rejected without requeueing.
        retry_delay: seconds before a failed message is tried again.
        prefetch: messages the broker sends ahead (unacknowledged at once).
        **kwargs: ``thread_id``, ``max_attempts``, ``on_result``, ``on_error``.

    The run's input also has ``message_id`` unless ``message_id_key=None``.
    """

    kind = "rabbitmq"

    def __init__(
        self,
        app: Any,
        queue: str,
        *,
        url: str,
        into: str | None = "message",
        codec: str = "json",
        dead_letter: str | None = None,
        retry_delay: float = 0.5,
        prefetch: int = 10,
        declare: bool = True,
        message_id_key: str | None = "message_id",
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.queue = queue
        self.url = url
        self.shown = hide_password(url)
        self.into = into
        self.codec = check_codec(codec, "RabbitMQTrigger")
        self.dead_letter = dead_letter
        self.retry_delay = retry_delay
        self.prefetch = prefetch
        self.declare = declare
        self.message_id_key = message_id_key
        self._conn: Any = None
        self._ch: Any = None
        self._inbox: asyncio.Queue[AbstractIncomingMessage] | None = None
        self._later: list[tuple[float, Event]] = []

    @property
    def _who(self) -> str:
        return f"RabbitMQTrigger {self.queue}"

    async def _open(self) -> None:
        await self._connect()
        self._later = []

    async def _connect(self) -> None:
        try:
            self._conn = await aio_pika.connect(self.url, timeout=10)
            self._ch = await self._conn.channel(publisher_confirms=True)
            await self._ch.set_qos(prefetch_count=self.prefetch)
            q = await self._ch.declare_queue(self.queue, durable=True, passive=not self.declare)
            if self.dead_letter is not None:
                await self._ch.declare_queue(self.dead_letter, durable=True)
            self._inbox = asyncio.Queue()
            await q.consume(self._inbox.put, no_ack=False)
        except (amqp_errors.AMQPError, OSError, asyncio.TimeoutError) as exc:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
            raise _error(exc, node=self._who, url=self.url, queue=self.queue, op="consume from") from exc

    def _event(self, m: AbstractIncomingMessage) -> Event:
        mid = _message_id(m)
        meta = {self.message_id_key: mid} if self.message_id_key else None
        try:
            body = decode(m.body, self.codec, node=self._who, queue=self.queue, message_id=mid, url=self.shown)
            return Event(mid, as_input(body, self.into, meta), raw=m)
        except MessageDecodeError as exc:
            return Event(mid, None, error=exc, raw=m)
        except TypeError as exc:
            err = MessageDecodeError(f"{self._who}: message {mid}: {exc}", node=self._who, resource=self.queue,
                                     queue=self.queue, message_id=mid, url=self.shown)
            return Event(mid, None, error=err, raw=m)

    async def _next(self) -> list[Event]:
        if self._conn is None or not self._conn.connected.is_set():  # the broker went away: connect again
            # what this connection had not acknowledged, the broker delivers again
            self._later = []
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    await self._conn.close()
                self._conn = None
            try:
                await self._connect()
            except QueueError as exc:
                self.stats["source_errors"] += 1
                self.failures.append((Event("-", None, error=exc), exc))
                await asyncio.sleep(0.5)
                return []
        now = time.monotonic()
        due = [e for t, e in self._later if t <= now]
        if due:
            self._later = [(t, e) for t, e in self._later if t > now]
            return due
        assert self._inbox is not None
        wait = 0.2
        if self._later:
            wait = max(0.001, min(wait, min(t for t, _ in self._later) - now))
        try:
            m = await asyncio.wait_for(self._inbox.get(), wait)
        except asyncio.TimeoutError:
            return []
        out = [self._event(m)]
        while not self._inbox.empty():
            out.append(self._event(self._inbox.get_nowait()))
        return out

    async def _ack(self, event: Event) -> None:
        await event.raw.ack()

    async def _retry(self, event: Event) -> None:
        # kept unacknowledged meanwhile: if the process dies, the broker delivers it again
        self._later.append((time.monotonic() + self.retry_delay, Event(event.id, event.input, event.attempt + 1, raw=event.raw)))

    async def _give_up(self, event: Event, exc: BaseException) -> None:
        m: AbstractIncomingMessage = event.raw
        if self.dead_letter is None:
            await m.reject(requeue=False)
            return
        headers = dict(m.headers or {})
        headers.update({"x-error": f"{type(exc).__name__}: {exc}"[:2000], "x-source-queue": self.queue})
        dead = aio_pika.Message(m.body, headers=headers, content_type=m.content_type, message_id=m.message_id,
                                delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await self._ch.default_exchange.publish(dead, routing_key=self.dead_letter)  # confirmed, then acked
        await m.ack()

    async def _close(self) -> None:
        for _, e in self._later:  # not tried again here: back to the queue for the next consumer
            with contextlib.suppress(Exception):
                await e.raw.nack(requeue=True)
        self._later = []
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
