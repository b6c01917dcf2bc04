"""What the key/value and queue nodes share: hiding a URL's password, encoding and decoding
message bodies, and clients shared per URL (per event loop for async clients, whose connections
belong to the loop that opened them).

Nothing here imports a third-party library.
"""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from agentgraph_nb.errors import MessageDecodeError, NodeValueError

__all__ = ["CODECS", "LoopClients", "decode", "encode", "hide_password"]

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


def encode(value: Any, codec: str, *, node: str, resource: str) -> bytes:
    """A value as the bytes stored or sent: JSON (default), text or bytes as they are."""
    if codec == "json":
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            raise NodeValueError(
                f"node {node!r}: the value for {resource!r} cannot be written as JSON: {exc}",
                node=node, resource=resource,
            ) from None
    if codec == "text":
        return str(value).encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise NodeValueError(
        f"node {node!r}: codec='bytes' needs bytes for {resource!r}, got {type(value).__name__}",
        node=node, resource=resource,
    )


def decode(
    raw: bytes | str | None, codec: str, *, node: str, queue: str, message_id: str | None, url: str,
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
