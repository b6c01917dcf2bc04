"""Redis streams (extra ``redis``): a producer node, a consumer node, and a trigger that starts
one run per message.

Example:
    >>> from agentgraph_nb.nodes.streams import stream_add, StreamTrigger
    >>> publish = stream_add("orders", "{order}", url="redis://localhost:6379/0", into="order_id")
    >>> with StreamTrigger(app, "orders", url="redis://localhost:6379/0", group="workers") as t:  # doctest: +SKIP
    ...     t.wait(10)

A message's body is one field, ``data``, JSON by default (``codec="text"``/``"bytes"``); entries
written by other producers, without ``data``, are read as a dict of their fields. The trigger
reads with ``XREADGROUP`` as one consumer of a group, acknowledges (``XACK``) a message only after
its run has ended, and leaves a failed one pending: it is tried again (``max_attempts``), then
acknowledged, or moved to ``dead_letter`` (another stream) and acknowledged in one transaction.
When it starts, the trigger first takes the messages its consumer left pending (a crash mid-run);
with ``claim_idle=``, then also those other consumers of the group left pending that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio
from redis import exceptions as rex

from agentgraph_nb.errors import MessageDecodeError, QueueConnectError, QueueError
from agentgraph_nb.nodes._base import LibraryNode, Template, compile_templates, fill, node_name
from agentgraph_nb.nodes._conn import check_codec, decode, encode, hide_password
from agentgraph_nb.nodes._trigger import Event, Trigger, as_input
from agentgraph_nb.nodes.nosql import redis_client

__all__ = ["StreamNode", "StreamTrigger", "stream_add", "stream_read"]

_DATA = b"data"


def _queue_error(exc: BaseException, *, node: str, url: str, stream: str, op: str) -> QueueError:
    shown = hide_password(url)
    if isinstance(exc, (rex.ConnectionError, rex.TimeoutError)) and not isinstance(exc, rex.AuthenticationError):
        return QueueConnectError(
            f"{node!r}: cannot reach Redis at {shown} ({type(exc).__name__}: {exc}) for {op} on stream {stream!r}.",
            node=node, resource=stream, queue=stream, url=shown, message_id=None,
        )
    return QueueError(
        f"{node!r}: Redis {op} on stream {stream!r} at {shown} failed: {type(exc).__name__}: {exc}",
        node=node, resource=stream, queue=stream, url=shown, message_id=None,
    )


def _body(fields: dict[Any, Any], codec: str, *, node: str | Callable[[], str], stream: str, mid: str, url: str) -> Any:
    if _DATA in fields or "data" in fields:
        raw = fields.get(_DATA, fields.get("data"))
        return decode(raw, codec, node=node, queue=stream, message_id=mid, url=url)
    # an entry of another producer: its fields, as text
    out = {}
    for k, v in fields.items():
        key = decode(k, "text", node=node, queue=stream, message_id=mid, url=url)
        out[key] = decode(v, "text" if codec == "json" else codec, node=node, queue=stream, message_id=mid, url=url)
    return out


def _id(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


async def _ensure_group(client: Any, stream: str, group: str) -> None:
    try:
        await client.xgroup_create(stream, group, id="0", mkstream=True)
    except rex.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class StreamNode(LibraryNode):
    """A node that adds to or reads from a Redis stream; made by :func:`stream_add` and
    :func:`stream_read`."""

    kind = "stream"

    def __init__(
        self,
        op: str,
        stream: str,
        *,
        url: str,
        value: Any = None,
        group: str | None = None,
        consumer: str = "agentgraph",
        count: int = 10,
        after: str = "0",
        maxlen: int | None = None,
        into: str | None = None,
        codec: str = "json",
        aio: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.kind = f"stream_{op}"
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"{self.kind}: {url!r} is not a Redis URL; e.g. 'redis://localhost:6379/0'")
        if count < 1:
            raise ValueError(f"{self.kind}: count must be at least 1, got {count!r}")
        self.op = op
        self.url = url
        self.stream = Template(stream)
        self._value_fn = value if callable(value) else None
        self._value = None if callable(value) else compile_templates(value)
        self.group = group
        self.consumer = consumer
        self.count = count
        self.after = Template(after)
        self.maxlen = maxlen
        self.into = into
        self.codec = check_codec(codec, self.kind)
        self.aio = aio
        self._groups: set[str] = set()

    def _current_name(self) -> str:
        return node_name(self.who)

    def _payload(self, state: Any, stream: str) -> dict[bytes, bytes]:
        value = self._value_fn(state) if self._value_fn is not None else fill(self._value, state, who=self.who)
        return {_DATA: encode(value, self.codec, node=self._current_name, resource=stream)}

    def _messages(self, entries: Any, stream: str) -> list[dict[str, Any]]:
        name = self._current_name
        out = []
        for _, items in entries or []:
            for mid, fields in items:
                if not fields:  # deleted meanwhile
                    continue
                m = _id(mid)
                out.append({"id": m, "data": _body(fields, self.codec, node=name, stream=stream, mid=m, url=self.url)})
        return out

    def _update(self, value: Any) -> dict[str, Any] | None:
        return None if self.into is None else {self.into: value}

    def __call__(self, state: Any) -> dict[str, Any] | None:
        stream = self.stream.render(state, who=self.who)
        client = redis_client(self.url)
        try:
            if self.op == "add":
                mid = client.xadd(stream, self._payload(state, stream), maxlen=self.maxlen, approximate=self.maxlen is not None)
                return self._update(_id(mid))
            if self.group is None:
                entries = client.xread({stream: self.after.render(state, who=self.who)}, count=self.count)
                return self._update(self._messages(entries, stream))
            if stream not in self._groups:
                try:
                    client.xgroup_create(stream, self.group, id="0", mkstream=True)
                except rex.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
                self._groups.add(stream)
            entries = client.xreadgroup(self.group, self.consumer, {stream: ">"}, count=self.count)
            # decoded before the ack: a message that cannot be decoded stays pending, and so do its neighbours
            msgs = self._messages(entries, stream)
            ids = [mid for _, items in entries or [] for mid, _ in items]
            if ids:
                client.xack(stream, self.group, *ids)
            return self._update(msgs)
        except rex.RedisError as exc:
            raise _queue_error(exc, node=node_name(self.who), url=self.url, stream=stream, op=self.op.upper()) from exc

    def close(self) -> None:
        """Close the pooled connections of this node's server (shared per URL; they reconnect)."""
        from agentgraph_nb.nodes.nosql import _async, _sync

        for c in _sync.pop(self.url):
            c.close()
        _async.pop(self.url)


class AsyncStreamNode(StreamNode):
    """The async flavour of :class:`StreamNode` (``aio=True``)."""

    async def __call__(self, state: Any) -> dict[str, Any] | None:  # type: ignore[override]
        stream = self.stream.render(state, who=self.who)
        client = redis_client(self.url, aio=True)
        try:
            if self.op == "add":
                mid = await client.xadd(stream, self._payload(state, stream), maxlen=self.maxlen,
                                        approximate=self.maxlen is not None)
                return self._update(_id(mid))
            if self.group is None:
                entries = await client.xread({stream: self.after.render(state, who=self.who)}, count=self.count)
                return self._update(self._messages(entries, stream))
            if stream not in self._groups:
                await _ensure_group(client, stream, self.group)
                self._groups.add(stream)
            entries = await client.xreadgroup(self.group, self.consumer, {stream: ">"}, count=self.count)
            msgs = self._messages(entries, stream)
            ids = [mid for _, items in entries or [] for mid, _ in items]
            if ids:
                await client.xack(stream, self.group, *ids)
            return self._update(msgs)
        except rex.RedisError as exc:
            raise _queue_error(exc, node=node_name(self.who), url=self.url, stream=stream, op=self.op.upper()) from exc


def stream_add(
    stream: str, value: Any, *, url: str, maxlen: int | None = None, into: str | None = None,
    codec: str = "json", aio: bool = False, name: str | None = None,
) -> StreamNode:
    """A node that adds a message to a Redis stream (``XADD``).

    Args:
        stream: the stream's key, a template of state keys.
        value: the body: ``"{order}"`` (a state value itself), a template, a dict of templates,
            or ``value(state)``.
        url: the server (``redis://host:6379/0``).
        maxlen: keep the stream at about this many entries (``MAXLEN ~``).
        into: a state key for the new entry's id.
        codec: ``"json"`` (default), ``"text"`` or ``"bytes"``.
        aio: an async node.
        name: the node's name in errors raised outside a run.

    Example:
        >>> publish = stream_add("orders", {"id": "{order_id}", "total": "{total}"},
        ...                      url="redis://localhost:6379/0", into="message_id")
    """
    cls = AsyncStreamNode if aio else StreamNode
    return cls("add", stream, url=url, value=value, maxlen=maxlen, into=into, codec=codec, aio=aio, name=name)


def stream_read(
    stream: str, *, url: str, group: str | None = None, consumer: str = "agentgraph", count: int = 10,
    after: str = "0", into: str | None = "messages", codec: str = "json", aio: bool = False,
    name: str | None = None,
) -> StreamNode:
    """A node that reads up to ``count`` messages into the state as ``[{"id": ..., "data": ...}]``.

    With ``group``, it reads as a consumer of that group (created if missing) the messages no
    one has read yet, and acknowledges them once all are decoded (one that cannot be decoded
    raises :class:`~agentgraph_nb.errors.MessageDecodeError` and leaves them all pending). Without,
    it reads the messages after the id ``after`` (a template: ``"{last_id}"``), acknowledging
    nothing. To run the graph once per message, acknowledged after the run, use
    :class:`StreamTrigger`.
    """
    cls = AsyncStreamNode if aio else StreamNode
    return cls("read", stream, url=url, group=group, consumer=consumer, count=count, after=after, into=into,
               codec=codec, aio=aio, name=name)


class StreamTrigger(Trigger):
    """Runs a graph once per message of a Redis stream, as a consumer of a group.

    Args:
        app: the compiled graph.
        stream: the stream's key.
        url: the server.
        group: the consumer group (created at the stream's start if missing; several triggers
            in one group share the messages).
        consumer: this consumer's name in the group (default: host and process id).
        into: the input key for the message body (``{"message": body}``); None: the body, a
            JSON object, is the input.
        codec: how bodies are written: ``"json"``, ``"text"``, ``"bytes"``.
        dead_letter: a stream that receives the messages given up (body, id, error).
        retry_delay: seconds before a failed message is tried again.
        claim_idle: when starting, also claim the messages other consumers of the group left
            pending this many seconds (a consumer that died).
        batch: messages read at a time.
        **kwargs: ``thread_id``, ``max_attempts``, ``on_result``, ``on_error`` (see
            :class:`~agentgraph_nb.nodes._trigger.Trigger`).

    The run's input also has ``message_id`` (the entry id) unless ``message_id_key=None``.
    """

    kind = "redis_stream"

    def __init__(
        self,
        app: Any,
        stream: str,
        *,
        url: str,
        group: str,
        consumer: str | None = None,
        into: str | None = "message",
        codec: str = "json",
        dead_letter: str | None = None,
        retry_delay: float = 0.5,
        claim_idle: float | None = None,
        batch: int = 10,
        block: float = 0.2,
        message_id_key: str | None = "message_id",
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.stream = stream
        self.url = url
        self.shown = hide_password(url)
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.into = into
        self.codec = check_codec(codec, "StreamTrigger")
        self.dead_letter = dead_letter
        self.retry_delay = retry_delay
        self.claim_idle = claim_idle
        self.batch = batch
        self.block_ms = max(1, int(block * 1000))
        self.message_id_key = message_id_key
        self._client: Any = None
        self._backlog = True
        self._cursor = "0"
        self._later: list[tuple[float, Event]] = []

    def _err(self, exc: BaseException, op: str) -> QueueError:
        return _queue_error(exc, node=f"StreamTrigger {self.stream}", url=self.url, stream=self.stream, op=op)

    async def _open(self) -> None:
        self._client = redis.asyncio.Redis.from_url(self.url)
        try:
            await self._client.ping()
            await _ensure_group(self._client, self.stream, self.group)
        except rex.RedisError as exc:
            await self._client.aclose()
            raise self._err(exc, "XGROUP CREATE") from exc
        self._backlog = True
        self._cursor = "0"
        self._later = []

    def _event(self, mid: Any, fields: dict[Any, Any]) -> Event:
        m = _id(mid)
        meta = {self.message_id_key: m} if self.message_id_key else None
        try:
            body = _body(fields, self.codec, node=f"StreamTrigger {self.stream}", stream=self.stream, mid=m, url=self.shown)
            return Event(m, as_input(body, self.into, meta), raw=fields)
        except MessageDecodeError as exc:
            return Event(m, None, error=exc, raw=fields)
        except TypeError as exc:
            err = MessageDecodeError(
                f"StreamTrigger {self.stream}: message {m}: {exc}", node=f"StreamTrigger {self.stream}",
                resource=self.stream, queue=self.stream, message_id=m, url=self.shown,
            )
            return Event(m, None, error=err, raw=fields)

    async def _next(self) -> list[Event]:
        now = time.monotonic()
        due = [e for t, e in self._later if t <= now]
        if due:
            self._later = [(t, e) for t, e in self._later if t > now]
            return due
        try:
            if self._backlog:  # what this consumer left pending (a crash mid-run), then others' stale ones
                entries = await self._client.xreadgroup(
                    self.group, self.consumer, {self.stream: self._cursor}, count=self.batch
                )
                items = entries[0][1] if entries else []
                if items:
                    self._cursor = _id(items[-1][0])
                else:
                    self._backlog = False
                    if self.claim_idle is not None:
                        res = await self._client.xautoclaim(
                            self.stream, self.group, self.consumer, int(self.claim_idle * 1000), "0-0", count=self.batch
                        )
                        items = res[1]
                gone = [mid for mid, f in items if not f]  # deleted from the stream meanwhile
                if gone:
                    await self._client.xack(self.stream, self.group, *gone)
                return [self._event(mid, f) for mid, f in items if f]
            block = self.block_ms
            if self._later:  # wake for the next retry
                block = max(1, min(block, int((min(t for t, _ in self._later) - now) * 1000)))
            entries = await self._client.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=self.batch, block=block
            )
        except rex.RedisError as exc:
            if isinstance(exc, rex.ResponseError) and "NOGROUP" in str(exc):
                with contextlib.suppress(rex.RedisError):  # the stream or group was deleted (a server restarted empty)
                    await _ensure_group(self._client, self.stream, self.group)
                return []
            err = self._err(exc, "XREADGROUP")
            self.stats["source_errors"] += 1
            self.failures.append((Event("-", None, error=err), err))
            await asyncio.sleep(0.5)  # the server is down or restarting: try again
            return []
        return [self._event(mid, f) for _, items in entries or [] for mid, f in items if f]

    async def _ack(self, event: Event) -> None:
        await self._client.xack(self.stream, self.group, event.id)

    async def _retry(self, event: Event) -> None:
        # still pending in the group (not acknowledged), so a crash now loses nothing
        again = Event(event.id, event.input, event.attempt + 1, raw=event.raw)
        self._later.append((time.monotonic() + self.retry_delay, again))

    async def _give_up(self, event: Event, exc: BaseException) -> None:
        if self.dead_letter is None:
            await self._ack(event)
            return
        fields = {k: v for k, v in (event.raw or {}).items()}
        fields.update({b"source_id": event.id.encode(), b"source_stream": self.stream.encode(),
                       b"error": f"{type(exc).__name__}: {exc}"[:2000].encode()})
        async with self._client.pipeline(transaction=True) as p:  # moved and acknowledged, or neither
            p.xadd(self.dead_letter, fields)
            p.xack(self.stream, self.group, event.id)
            await p.execute()

    async def _close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

