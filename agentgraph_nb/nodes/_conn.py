"""What the key/value and queue nodes share: hiding a URL's password, encoding and decoding
message bodies, and clients shared per URL (per event loop for async clients, whose connections
belong to the loop that opened them).

Nothing here imports a third-party library.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from agentgraph_nb.errors import MessageDecodeError, NodeValueError

__all__ = ["CODECS", "LoopClients", "decode", "encode", "hide_password", "io_loop"]

CODECS = ("json", "text", "bytes")


def hide_password(url: str) -> str:
    """``redis://user:***@host:6379/0`` for ``redis://user:secret@host:6379/0``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def check_codec(codec: str, who: str) -> str:
    if codec not in CODECS:
        raise ValueError(f"{who}: codec must be one of {', '.join(CODECS)}, got {codec!r}")
    return codec


def _named(node: str | Callable[[], str]) -> str:
    return node() if callable(node) else node


def encode(value: Any, codec: str, *, node: str | Callable[[], str], resource: str) -> bytes:
    """A value as the bytes stored or sent: JSON (default), text or bytes as they are. ``node``
    may be a function giving the node's name, called only on the way to an error."""
    if codec == "json":
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            node = _named(node)
            raise NodeValueError(
                f"node {node!r}: the value for {resource!r} cannot be written as JSON: {exc}",
                node=node, resource=resource,
            ) from None
    if codec == "text":
        return str(value).encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    node = _named(node)
    raise NodeValueError(
        f"node {node!r}: codec='bytes' needs bytes for {resource!r}, got {type(value).__name__}",
        node=node, resource=resource,
    )


def decode(
    raw: bytes | str | None, codec: str, *, node: str | Callable[[], str], queue: str, message_id: str | None, url: str,
    what: str = "message",
) -> Any:
    """Bytes read back as a value.

    Raises:
        MessageDecodeError: naming the node, the queue (or key) and the message id.
    """
    if raw is None or codec == "bytes":
        return raw
    try:
        text = raw.decode() if isinstance(raw, (bytes, bytearray)) else raw
        return json.loads(text) if codec == "json" else text
    except (UnicodeDecodeError, ValueError) as exc:
        node = _named(node)
        mid = f" (message {message_id})" if message_id is not None else ""
        start = bytes(raw[:60]) if isinstance(raw, (bytes, bytearray)) else raw[:60]
        raise MessageDecodeError(
            f"node {node!r}: the {what} in {queue!r}{mid} is not {codec.upper() if codec == 'json' else 'UTF-8 text'}: "
            f"{exc}. It starts {start!r}. Use codec='bytes' to take it as it is.",
            node=node, resource=queue, queue=queue, message_id=message_id, url=url,
        ) from None


class LoopClients:
    """Clients made by ``make(url)`` and shared per URL, one per event loop for async clients
    (``loop=True``): a client made on one loop cannot be used from another."""

    def __init__(self, make: Callable[[str], Any], *, loop: bool) -> None:
        self._make = make
        self._loop = loop
        self._lock = threading.Lock()
        self._plain: dict[str, Any] = {}
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, url: str) -> Any:
        if not self._loop:
            client = self._plain.get(url)
            if client is None:
                with self._lock:
                    client = self._plain.get(url)
                    if client is None:
                        client = self._plain[url] = self._make(url)
            return client
        loop = asyncio.get_running_loop()
        clients = self._per_loop.get(loop)
        if clients is None:
            clients = self._per_loop[loop] = {}
        client = clients.get(url)
        if client is None:
            client = clients[url] = self._make(url)
        return client

    def pop(self, url: str) -> list[Any]:
        """Forget the clients of a URL (every loop's) and return them, for the caller to close."""
        out = []
        with self._lock:
            if url in self._plain:
                out.append(self._plain.pop(url))
            for clients in list(self._per_loop.values()):
                if url in clients:
                    out.append(clients.pop(url))
        return out

    def all(self) -> list[Any]:
        with self._lock:
            out = list(self._plain.values())
            self._plain.clear()
            for clients in list(self._per_loop.values()):
                out.extend(clients.values())
                clients.clear()
        return out


T = TypeVar("T")


class IoLoop:
    """One event loop in a daemon thread that owns the broker clients of the process (RabbitMQ
    connections, Kafka producers), so they outlive any one run: a sync ``invoke`` runs async nodes
    on a loop made for that call, which would otherwise leave a client behind per call. Nodes hand
    their work over with ``await io_loop.run(coro)`` from whatever loop they run on; cancelling the
    caller (a node timeout) cancels the work. At exit, the registered closers run on it."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closers: dict[Any, Callable[[], Awaitable[Any]]] = {}

    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            return loop
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                t = threading.Thread(target=loop.run_forever, name="agentgraph-nodes-io", daemon=True)
                t.start()
                self._loop, self._thread = loop, t
            return self._loop

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the I/O loop and wait for it from the caller's loop."""
        loop = self.loop()
        try:
            if asyncio.get_running_loop() is loop:
                return await coro
        except RuntimeError:
            pass
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the I/O loop from sync code and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop()).result(timeout)

    def on_close(self, key: Any, closer: Callable[[], Awaitable[Any]] | None) -> None:
        """Register (or, with None, forget) what closes a client at exit."""
        if closer is None:
            self._closers.pop(key, None)
        else:
            self._closers[key] = closer

    def close(self) -> None:
        """Close the registered clients, then stop the loop (at exit; it starts again on use)."""
        loop, thread = self._loop, self._thread
        if loop is None or loop.is_closed():
            return
        closers, self._closers = list(self._closers.values()), {}

        async def close_all() -> None:
            await asyncio.gather(*(c() for c in closers), return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(close_all(), loop).result(10)
        except Exception:  # pragma: no cover - a broker that hangs on close at exit
            pass
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5)
        loop.close()
        self._loop = self._thread = None


io_loop = IoLoop()
atexit.register(io_loop.close)
