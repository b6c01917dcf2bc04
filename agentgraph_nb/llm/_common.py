"""What the chat-model adapters share (no SDK imported here): where a call runs (:class:`_Call`:
the node, the live stream, the token listeners), server-sent events read as plain JSON, the
TLS context and worker threads their clients use."""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from agentgraph_nb.engine import (
    at_loop_close,
    message_metadata,
    stream_sink,
    task_context,
    token_listener,
)
from agentgraph_nb.llm._base import Message

__all__ = ["_BadChunk", "_Call", "_SdkClients", "_asse", "_broken", "_sse", "_tls_context", "_workers"]


def _broken(exc: BaseException) -> bool:
    """Whether ``exc`` is the HTTP client's own transport error (a connection that broke while a
    stream was being read), which the SDK does not wrap into its error types."""
    return any(c.__name__ in ("TransportError", "RequestError") and c.__module__.startswith(("httpx", "httpcore"))
               for c in type(exc).__mro__)


# After "[DONE]" the rest of the body is still read (as the SDK's own streams do): a response
# closed before its end closes its connection too, and every call would pay a new one.
class _BadChunk(Exception):
    """Internal: a streamed event whose data is not JSON (the caller names model and server)."""


def _chunk(data: str) -> dict[str, Any]:
    try:
        out = json.loads(data)
    except ValueError as exc:
        raise _BadChunk(data) from exc
    if not isinstance(out, dict):
        raise _BadChunk(data)
    return out


def _sse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    done = False
    for line in lines:
        if done or not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            continue
        yield _chunk(data)


async def _asse(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    done = False
    async for line in lines:
        if done or not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            continue
        yield _chunk(data)


_TLS: Any = None
_WORKERS: Any = None
_WORKERS_LOCK = threading.Lock()


def _workers() -> Any:
    """The threads that run sync requests for async callers on short-lived loops (see
    :meth:`OpenAIChat.ainvoke`)."""
    global _WORKERS
    if _WORKERS is None:
        from concurrent.futures import ThreadPoolExecutor

        with _WORKERS_LOCK:
            if _WORKERS is None:
                _WORKERS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="agentgraph_nb-llm")
    return _WORKERS


def _tls_context() -> Any:
    """One TLS context for every client (httpx's default: certifi's CA bundle, or
    ``SSL_CERT_FILE``/``SSL_CERT_DIR``). Building one loads the CA bundle, about 60 ms here, and a
    sync ``invoke()`` of a graph with async nodes runs on an event loop of its own, so it gets a
    new async client every run: without sharing, that was most of a short run's time."""
    global _TLS
    if _TLS is None:
        import httpx

        _TLS = httpx.create_ssl_context()
    return _TLS


class _Call:
    """What one model call needs to know about where it runs (found once per call)."""

    __slots__ = ("ctx", "meta", "on_chunk", "sink")

    def __init__(self, model: Any, on_chunk: Callable[[Message], None] | None) -> None:
        self.ctx = task_context()
        sink = stream_sink()
        live = sink is not None and sink.messages
        self.sink = sink if live else None
        self.meta: dict[str, Any] | None = None
        outs: list[Callable[[Message], None]] = [] if on_chunk is None else [on_chunk]
        if live:
            meta = self.meta = message_metadata(self.ctx, model=model.model)
            emit = sink.emit  # type: ignore[union-attr]

            def to_sink(piece: Message) -> None:
                emit("messages", (piece, meta))

            outs.append(to_sink)
        to_listeners = token_listener(self.ctx)  # a GraphView or Debugger showing tokens live
        if to_listeners is not None:
            outs.append(to_listeners)
        if len(outs) <= 1:
            self.on_chunk: Callable[[Message], None] | None = outs[0] if outs else None
        else:
            def each(piece: Message) -> None:
                for out in outs:
                    out(piece)

            self.on_chunk = each

    @property
    def node(self) -> str:
        return self.ctx[1] if self.ctx is not None else ""


class _SdkClients:
    """The SDK clients of a chat-model adapter: one sync client per model copy (closed with the
    copy or at exit) and one async client per event loop (closed before a loop the engine made
    for a sync ``invoke()`` closes); neither is pickled. An adapter sets ``_client = None`` and
    ``_aclients = weakref.WeakKeyDictionary()`` in ``__init__`` and says how to make each."""

    _client: Any
    _aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]

    def _new_client(self) -> Any:
        raise NotImplementedError

    def _new_aclient(self) -> Any:
        raise NotImplementedError

    def _sync_client(self) -> Any:
        c = self._client
        if c is None:
            c = self._client = self._new_client()
            # its kept-alive connections close with the model (or at exit), not collected open
            weakref.finalize(self, c.close)
        return c

    def _async_client(self) -> Any:
        loop = asyncio.get_running_loop()
        c = self._aclients.get(loop)
        if c is None:
            c = self._aclients[loop] = self._new_aclient()
            at_loop_close(loop, c.close)
        return c

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_client"] = None
        state["_aclients"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._aclients = weakref.WeakKeyDictionary()
