"""``OpenAIChat``: chat models on any OpenAI-compatible server, through the official ``openai`` SDK.

The SDK does the HTTP (connection pooling, auth, error types); this module reads the answers as
plain dicts (SSE lines parsed with ``json.loads``, no response objects per token), retries with
:class:`~agentgraph_nb.RetryPolicy` (the SDK's own retries are off), streams tokens to a running
graph's ``stream(mode="messages")``, accounts usage and cost to the calling node, and records or
replays calls inside a :func:`~agentgraph_nb.testing.cassette`.

Reading order: folding streamed chunks into a message (``_Acc``) and reading SSE lines, then
:class:`OpenAIChat` (configuration, one request with retries sync and async, replay, usage
accounting, tool-call repair, the public calls). Structured output is in ``_structured.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import json
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

import openai

from agentgraph_nb.engine import (
    StreamClosed,
    is_private_loop,
    report_llm_call,
)
from agentgraph_nb.errors import ModelError, ModelResponseError
from agentgraph_nb.llm._base import (
    Message,
    cost_of,
    new_message_id,
    price_of,
    to_messages,
    to_wire,
    tool_schema,
)
from agentgraph_nb.llm._cassette import active_cassette
from agentgraph_nb.llm._common import (
    _asse,
    _BadChunk,
    _broken,
    _Call,
    _SdkClients,
    _sse,
    _tls_context,
    _workers,
)
from agentgraph_nb.llm._structured import StructuredModel
from agentgraph_nb.types import RetryPolicy

__all__ = ["OpenAIChat"]

_DEFAULT_RETRY = RetryPolicy(max_attempts=3, initial_interval=0.5, max_interval=30.0)
_API_ERRORS = (openai.APIStatusError, openai.APIConnectionError)  # APITimeoutError is a connection error


class _Acc:
    """Folds streamed chunks into one assistant message; :meth:`add` returns the chunk as a
    ``stream(mode="messages")`` item (``None`` for chunks that carry nothing to show)."""

    __slots__ = ("calls", "finish", "id", "parts", "usage")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, int] | None = None
        self.id = ""
        self.finish: str | None = None

    def add(self, chunk: dict[str, Any]) -> Message | None:
        if not self.id:
            self.id = chunk.get("id") or new_message_id()
        u = chunk.get("usage")
        if u:
            self.usage = u
        choices = chunk.get("choices")
        if not choices:
            return None
        ch = choices[0]
        if ch.get("finish_reason"):
            self.finish = ch["finish_reason"]
        d = ch.get("delta") or {}
        text = d.get("content")
        tcs = d.get("tool_calls")
        if text:
            self.parts.append(text)
            if not tcs:
                return {"role": "assistant", "content": text, "id": self.id}
        if not tcs:
            return None
        pieces = []
        for tc in tcs:
            i = tc.get("index", 0)
            slot = self.calls.get(i)
            fn = tc.get("function") or {}
            if slot is None:
                slot = self.calls[i] = {"id": tc.get("id") or "", "name": fn.get("name") or "", "arguments": ""}
            elif tc.get("id"):
                slot["id"] = tc["id"]
            if fn.get("name") and not slot["name"]:
                slot["name"] = fn["name"]
            slot["arguments"] += fn.get("arguments") or ""
            pieces.append({"index": i, "id": tc.get("id"), "name": fn.get("name"),
                           "arguments": fn.get("arguments") or ""})
        return {"role": "assistant", "content": text or "", "id": self.id, "tool_call_chunks": pieces}

    def message(self) -> Message:
        msg: Message = {"role": "assistant", "content": "".join(self.parts), "id": self.id or new_message_id()}
        if self.calls:
            msg["tool_calls"] = [
                {"id": c["id"] or "call_" + os.urandom(8).hex(), "type": "function",
                 "function": {"name": c["name"], "arguments": c["arguments"]}}
                for _, c in sorted(self.calls.items())
            ]
            if not msg["content"]:
                msg["content"] = None
        if self.usage:
            msg["usage"] = _usage(self.usage)
        return msg


def _usage(u: Mapping[str, Any]) -> dict[str, int]:
    p = int(u.get("prompt_tokens") or 0)
    c = int(u.get("completion_tokens") or 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": int(u.get("total_tokens") or p + c)}


def _from_completion(d: dict[str, Any]) -> Message:
    choices = d.get("choices") or []
    if not choices:
        raise ValueError("the completion has no choices")
    m = choices[0].get("message") or {}
    msg: Message = {"role": "assistant", "content": m.get("content"), "id": d.get("id") or new_message_id()}
    calls = m.get("tool_calls")
    if calls:
        msg["tool_calls"] = [
            {"id": c.get("id") or "call_" + os.urandom(8).hex(), "type": "function",
             "function": {"name": (c.get("function") or {}).get("name", ""),
                          "arguments": (c.get("function") or {}).get("arguments") or ""}}
            for c in calls
        ]
    elif msg["content"] is None:
        msg["content"] = ""
    if d.get("usage"):
        msg["usage"] = _usage(d["usage"])
    return msg


def _bad_tool_calls(msg: Message) -> list[tuple[dict[str, Any], str]]:
    """Tool calls whose arguments are not a JSON object (with the reason); empty arguments
    become ``"{}"`` (some servers send none for a tool without parameters)."""
    bad = []
    for tc in msg.get("tool_calls") or ():
        fn = tc["function"]
        if not (fn.get("arguments") or "").strip():
            fn["arguments"] = "{}"
            continue
        try:
            value = json.loads(fn["arguments"])
        except ValueError as exc:
            bad.append((tc, f"not valid JSON ({exc})"))
            continue
        if not isinstance(value, dict):
            bad.append((tc, f"a JSON {type(value).__name__}, not an object"))
    return bad


class OpenAIChat(_SdkClients):
    """A chat model on any server that speaks OpenAI's chat-completions API.

    ``invoke(messages)`` returns one assistant message, a plain dict in the OpenAI chat format::

        {"role": "assistant", "content": "...", "id": "chatcmpl-...",
         "tool_calls": [...],                      # only when the model calls tools
         "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}}

    ``usage`` rides on the message (as LangChain's ``usage_metadata`` does on an AIMessage), and
    is stripped, like ``id``, before messages go back to a server. Inside a graph node the call
    is also accounted to the node (``llm_end`` event, ``app.metrics`` ``tokens_in`` /
    ``tokens_out`` / ``cost``), and when the graph is streamed with ``mode="messages"`` the call
    streams its tokens there, even though the node called ``invoke``.

    ``base_url`` for the usual servers (each serves the API under ``/v1``):

    ============  =========================================================================
    OpenAI        ``None`` (the default, ``https://api.openai.com/v1``; key from ``OPENAI_API_KEY``)
    vLLM          ``http://HOST:8000/v1`` (``vllm serve MODEL``)
    llama.cpp     ``http://HOST:8080/v1`` (``llama-server -m model.gguf``)
    Ollama        ``http://HOST:11434/v1`` (model names as in ``ollama list``)
    TGI           ``http://HOST:8080/v1`` (text-generation-inference's Messages API)
    LM Studio     ``http://HOST:1234/v1``
    ============  =========================================================================

    Local servers take any ``api_key`` (``"x"`` is used when none is given with a ``base_url``).
    ``OPENAI_BASE_URL`` is read when ``base_url`` is not given, as the SDK does.

    Args:
        model: the model name the server knows.
        base_url: the server's API root (see above).
        api_key: the key; default ``OPENAI_API_KEY``.
        temperature, max_tokens, top_p, seed, stop: sampling parameters (sent only when set).
        timeout: seconds per request (connect and read) before :class:`ModelError`.
        retry: how failed calls are retried (429 honours ``Retry-After``; 5xx, timeouts and
            connection errors are retried; other 4xx never). ``None``: no retries.
        price: ``{"input": per_million, "output": per_million}`` (else the table of
            :func:`~agentgraph_nb.llm.set_prices`; else no cost).
        streaming: always stream (else only when a graph streams ``"messages"`` or
            :meth:`stream` is called).
        stream_usage: ask for usage in streams (``stream_options.include_usage``); turn off for
            servers that reject ``stream_options``.
        extra_body: more request fields, sent as they are.

    Example:
        >>> model = OpenAIChat("qwen2.5", base_url="http://127.0.0.1:11434/v1")
        >>> model.invoke("Say hi")["content"]                            # doctest: +SKIP
        'Hi!'

    Raises (from calls):
        ModelError: the server refused the call (``status_code``), could not be reached, or
            timed out, after the retries. The message names the model, ``base_url`` and node.
        ModelResponseError: tool-call arguments that are not a JSON object, after one repair.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = _DEFAULT_RETRY,
        price: Mapping[str, float] | None = None,
        streaming: bool = False,
        stream_usage: bool = True,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if not model or not isinstance(model, str):
            raise ValueError(f"OpenAIChat needs a model name, got {model!r}")
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if key is None:
            if base_url is None and "OPENAI_BASE_URL" not in os.environ:
                raise ModelError(
                    f"OpenAIChat({model!r}) has no API key: pass api_key=... or set OPENAI_API_KEY "
                    "(a local server takes any key: pass base_url=... as well)",
                    model=model, base_url=self.base_url,
                )
            key = "x"
        self._api_key = key
        self.timeout = timeout
        self.retry = retry
        if price is not None:
            price = {"input": float(price["input"]), "output": float(price["output"])}
        self.price = price
        self.streaming = streaming
        self.stream_usage = stream_usage
        params: dict[str, Any] = {}
        for k, v in (("temperature", temperature), ("max_tokens", max_tokens), ("top_p", top_p), ("seed", seed)):
            if v is not None:
                params[k] = v
        if stop is not None:
            params["stop"] = stop if isinstance(stop, str) else list(stop)
        if extra_body:
            params.update(extra_body)
        self.params = params
        self.tools: list[dict[str, Any]] = []
        self.tool_choice: Any = None
        self._client: openai.OpenAI | None = None
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI] = (
            weakref.WeakKeyDictionary()
        )

    # -- configuration -------------------------------------------------------------------------
    def __repr__(self) -> str:
        tools = f", tools={[t['function']['name'] for t in self.tools]}" if self.tools else ""
        return f"OpenAIChat({self.model!r}, base_url={self.base_url!r}{tools})"


    def _copy(self) -> OpenAIChat:
        new = copy.copy(self)
        new._client = None  # a client of its own: each closes with its model
        new._aclients = weakref.WeakKeyDictionary()
        new.params = dict(self.params)
        new.tools = list(self.tools)
        return new

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None,
                   parallel_tool_calls: bool | None = None) -> OpenAIChat:
        """A copy of this model that offers ``tools`` to the server on every call.

        Args:
            tools: ``@tool`` objects (anything with a ``.schema`` dict), OpenAI tool schema
                dicts, pydantic model classes, or plain functions (schema from type hints and
                docstring).
            tool_choice: ``"auto"``, ``"required"``, ``"none"``, or a tool's name (forces it).
            parallel_tool_calls: allow several calls in one answer (sent only when set).
        """
        new = self._copy()
        new.tools = [tool_schema(t) for t in tools]
        if isinstance(tool_choice, str) and tool_choice not in ("auto", "required", "none", "any"):
            tool_choice = {"type": "function", "function": {"name": tool_choice}}
        elif tool_choice == "any":
            tool_choice = "required"
        new.tool_choice = tool_choice
        if parallel_tool_calls is not None:
            new.params["parallel_tool_calls"] = parallel_tool_calls
        return new

    def with_config(self, **params: Any) -> OpenAIChat:
        """A copy with other request parameters (``temperature=0``, ``max_tokens=...``)."""
        new = self._copy()
        new.params.update({k: v for k, v in params.items() if v is not None})
        return new

    def with_structured_output(self, schema: type, *, method: str = "json_schema", strict: bool | None = None,
                               include_raw: bool = False) -> StructuredModel:
        """A runnable whose ``invoke``/``ainvoke`` return an instance of the pydantic model
        ``schema``, validated. When the answer does not fit, the model is asked once more with
        the validation errors; if that answer does not fit either,
        :class:`~agentgraph_nb.errors.StructuredOutputError` is raised.

        Args:
            schema: a pydantic ``BaseModel`` subclass.
            method: ``"json_schema"`` (``response_format``, the default) or ``"json_mode"``
                (``{"type": "json_object"}`` plus the schema in a system message, for servers
                without schema support).
            strict: sent as ``json_schema.strict`` when set.
            include_raw: return ``{"raw": message, "parsed": instance}`` instead.
        """
        return StructuredModel(self, schema, method=method, strict=strict, include_raw=include_raw)

    # -- requests ------------------------------------------------------------------------------
    def _new_client(self) -> openai.OpenAI:
        return openai.OpenAI(
            api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0,
            http_client=openai.DefaultHttpxClient(verify=_tls_context()))

    def _new_aclient(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(verify=_tls_context()))

    def _body(self, messages: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": to_wire(to_messages(messages))}
        body.update(self.params)
        if self.tools:
            body["tools"] = self.tools
            if self.tool_choice is not None:
                body["tool_choice"] = self.tool_choice
        for k, v in kwargs.items():
            if v is not None:
                body[k] = v
        return body

    def _stream_args(self) -> dict[str, Any]:
        return {"stream": True, "stream_options": {"include_usage": True}} if self.stream_usage else {"stream": True}

    def _error(self, exc: BaseException, attempts: int, call: _Call) -> ModelError:
        where = f" (node {call.node!r})" if call.node else ""
        tries = f" after {attempts} attempt(s)" if attempts > 1 else ""
        if isinstance(exc, openai.APIStatusError):
            detail = exc.message
            return ModelError(
                f"model {self.model!r} at {self.base_url} answered HTTP {exc.status_code}{tries}{where}: {detail}",
                model=self.model, base_url=self.base_url, status_code=exc.status_code, node=call.node,
                attempts=attempts, headers=exc.response.headers,
            )
        if isinstance(exc, openai.APITimeoutError):
            return ModelError(
                f"model {self.model!r} at {self.base_url} did not answer within {self.timeout:g}s{tries}{where}; "
                "raise timeout=... or check the server",
                model=self.model, base_url=self.base_url, node=call.node, attempts=attempts,
            )
        if _broken(exc):
            return ModelError(
                f"the connection to the model server at {self.base_url} (model {self.model!r}) broke while "
                f"the answer streamed{tries}{where}: {type(exc).__name__}: {exc}",
                model=self.model, base_url=self.base_url, node=call.node, attempts=attempts,
            )
        return ModelError(
            f"cannot reach the model server at {self.base_url} (model {self.model!r}){tries}{where}: "
            f"{exc}. Is it running, and is base_url right?",
            model=self.model, base_url=self.base_url, node=call.node, attempts=attempts,
        )

    def _bad_chunk(self, exc: _BadChunk, call: _Call) -> ModelResponseError:
        where = f" (node {call.node!r})" if call.node else ""
        err = ModelResponseError(
            f"model {self.model!r} at {self.base_url}{where} streamed an event that is not a JSON object: "
            f"{str(exc.args[0])[:200]!r}. Is base_url an OpenAI-compatible /v1 endpoint?",
            model=self.model, base_url=self.base_url, node=call.node,
        )
        err.raw = str(exc.args[0])
        return err

    def _wait(self, attempt: int, exc: BaseException) -> float | None:
        """Seconds before the next attempt, or ``None`` when ``exc`` is not retried."""
        policy = self.retry
        if policy is None or attempt >= policy.max_attempts or not policy.should_retry(exc):
            return None
        return policy.interval(attempt - 1, None, exc)

    # one call, sync: returns (message, what to record)
    def _request(self, body: dict[str, Any], stream: bool, call: _Call, record: bool) -> tuple[Message, dict[str, Any]]:
        client = self._sync_client()
        attempt = 1
        while True:
            try:
                if not stream:
                    raw = client.chat.completions.with_raw_response.create(**body)
                    d = raw.http_response.json()
                    return _from_completion(d), {"completion": d}
                acc = _Acc()
                on_chunk = call.on_chunk
                chunks: list[dict[str, Any]] = []
                with client.chat.completions.with_streaming_response.create(**body, **self._stream_args()) as resp:
                    for chunk in _sse(resp.iter_lines()):
                        self._take(chunk, acc, chunks if record else None, on_chunk, call)
                return acc.message(), {"chunks": chunks}
            except Exception as exc:
                time.sleep(self._retry_wait(exc, attempt, call))
                attempt += 1

    def _take(self, chunk: dict[str, Any], acc: _Acc, chunks: list[dict[str, Any]] | None,
              on_chunk: Any, call: _Call) -> None:
        """One streamed chunk: kept for a cassette (``chunks``), an error event raised, the rest
        added to the message and handed to ``on_chunk`` (the live stream)."""
        if chunks is not None:  # kept only for a cassette: thousands of live dicts cost GC time
            chunks.append(chunk)
        if "error" in chunk:
            raise ModelError(f"model {self.model!r} at {self.base_url} sent an error mid-stream: "
                             f"{chunk['error']}", model=self.model, base_url=self.base_url, node=call.node)
        piece = acc.add(chunk)
        if piece is not None and on_chunk is not None:
            on_chunk(piece)

    def _retry_wait(self, exc: Exception, attempt: int, call: _Call) -> float:
        """Seconds to wait before retrying after ``exc``, or the error to raise (called in the
        ``except`` of a request: an exception that is not the API's is re-raised as it is)."""
        if isinstance(exc, _BadChunk):
            raise self._bad_chunk(exc, call) from exc
        if not isinstance(exc, _API_ERRORS) and not _broken(exc):
            raise exc
        wait = self._wait(attempt, exc)
        if wait is None:
            raise self._error(exc, attempt, call) from exc
        return float(wait)

    async def _arequest(self, body: dict[str, Any], stream: bool, call: _Call,
                        record: bool) -> tuple[Message, dict[str, Any]]:
        client = self._async_client()
        attempt = 1
        while True:
            try:
                if not stream:
                    raw = await client.chat.completions.with_raw_response.create(**body)
                    d = raw.http_response.json()
                    return _from_completion(d), {"completion": d}
                acc = _Acc()
                on_chunk = call.on_chunk
                chunks: list[dict[str, Any]] = []
                async with client.chat.completions.with_streaming_response.create(
                        **body, **self._stream_args()) as resp:
                    async for chunk in _asse(resp.iter_lines()):
                        self._take(chunk, acc, chunks if record else None, on_chunk, call)
                return acc.message(), {"chunks": chunks}
            except Exception as exc:
                await asyncio.sleep(self._retry_wait(exc, attempt, call))
                attempt += 1

    def _replay(self, recorded: dict[str, Any], call: _Call) -> Message:
        if "chunks" in recorded:
            acc = _Acc()
            for chunk in recorded["chunks"]:
                piece = acc.add(chunk)
                if piece is not None and call.on_chunk is not None:
                    call.on_chunk(piece)
            return acc.message()
        msg = _from_completion(recorded["completion"])
        if call.on_chunk is not None:  # recorded without streaming: the answer as one chunk
            whole: Message = {"role": "assistant", "content": msg.get("content") or "", "id": msg["id"]}
            if msg.get("tool_calls"):
                whole["tool_call_chunks"] = [
                    {"index": i, "id": tc["id"], "name": tc["function"]["name"],
                     "arguments": tc["function"]["arguments"]}
                    for i, tc in enumerate(msg["tool_calls"])
                ]
            if whole["content"] or "tool_call_chunks" in whole:
                call.on_chunk(whole)
        return msg

    def _account(self, msg: Message, call: _Call, t0: float) -> None:
        if call.ctx is None:
            return
        u = msg.get("usage")  # a server that reports none (or stream_usage=False) counts 0 tokens
        tin, tout = (u["prompt_tokens"], u["completion_tokens"]) if u else (0, 0)
        report_llm_call(call.ctx, model=self.model, tokens_in=tin, tokens_out=tout,
                        cost=cost_of(price_of(self.model, self.price), tin, tout) if u else None,
                        latency=time.perf_counter() - t0, base_url=self.base_url)

    def _generate(self, messages: Any, kwargs: dict[str, Any], on_chunk: Callable[[Message], None] | _Call | None,
                  stream: bool | None = None) -> Message:
        # a _Call made by the caller: it knows the node even when this runs on another thread
        call = on_chunk if isinstance(on_chunk, _Call) else _Call(self, on_chunk)
        repaired = kwargs.pop("_repaired", False)
        body = self._body(messages, kwargs)
        want = bool(stream or self.streaming or call.on_chunk is not None)
        t0 = time.perf_counter()
        cas = active_cassette()
        if cas is not None and cas.replaying:
            msg = self._replay(cas.take(body, self.model), call)
        else:
            msg, rec = self._request(body, want, call, cas is not None)
            if cas is not None:
                cas.add(body, rec)
        self._account(msg, call, t0)
        if call.sink is not None:  # streamed: not to be sent again whole when the node returns it
            call.sink.seen.add(msg["id"])
        bad = _bad_tool_calls(msg)
        if bad:
            if repaired:
                raise self._bad_calls_error(bad, call)
            return self._generate(_repair_calls(to_messages(messages), msg, bad), {**kwargs, "_repaired": True},
                                  call, stream)
        return msg

    async def _agenerate(self, messages: Any, kwargs: dict[str, Any],
                         on_chunk: Callable[[Message], None] | _Call | None, stream: bool | None = None) -> Message:
        call = on_chunk if isinstance(on_chunk, _Call) else _Call(self, on_chunk)
        repaired = kwargs.pop("_repaired", False)
        body = self._body(messages, kwargs)
        want = bool(stream or self.streaming or call.on_chunk is not None)
        t0 = time.perf_counter()
        cas = active_cassette()
        if cas is not None and cas.replaying:
            msg = self._replay(cas.take(body, self.model), call)
        else:
            msg, rec = await self._arequest(body, want, call, cas is not None)
            if cas is not None:
                cas.add(body, rec)
        self._account(msg, call, t0)
        if call.sink is not None:  # streamed: not to be sent again whole when the node returns it
            call.sink.seen.add(msg["id"])
        bad = _bad_tool_calls(msg)
        if bad:
            if repaired:
                raise self._bad_calls_error(bad, call)
            return await self._agenerate(_repair_calls(to_messages(messages), msg, bad), {**kwargs, "_repaired": True},
                                         call, stream)
        return msg

    def _bad_calls_error(self, bad: list[tuple[dict[str, Any], str]], call: _Call) -> ModelResponseError:
        tc, why = bad[0]
        where = f" (node {call.node!r})" if call.node else ""
        err = ModelResponseError(
            f"model {self.model!r} at {self.base_url}{where} called tool {tc['function']['name']!r} (call "
            f"{tc['id']!r}) with arguments that are {why}, also after being asked to repair them: "
            f"{tc['function']['arguments'][:300]!r}",
            model=self.model, base_url=self.base_url, node=call.node,
        )
        err.raw = tc["function"]["arguments"]
        return err

    # -- the public calls ------------------------------------------------------------------------
    def invoke(self, messages: Any, **kwargs: Any) -> Message:
        """Answer ``messages`` (a str, a message dict, or a list of them) with one assistant
        message dict. Keyword arguments are request fields for this call (``temperature=0``).
        Streams (and returns the assembled message) when a graph streams ``"messages"``."""
        return self._generate(messages, _no_private(kwargs), None)

    async def ainvoke(self, messages: Any, **kwargs: Any) -> Message:
        """Async :meth:`invoke`.

        On an event loop the engine made for one sync ``invoke()`` (a graph with async nodes run
        from sync code), the call goes through the sync client on a worker thread instead: that
        loop closes when the run ends, so an async client bound to it would connect anew on every
        run, while the sync client keeps its connections alive across runs."""
        loop = asyncio.get_running_loop()
        if is_private_loop(loop):
            call = _Call(self, None)  # here, where the calling node can be found
            ctx = contextvars.copy_context()  # the cassette and the live stream, on the worker
            return await loop.run_in_executor(_workers(), ctx.run, self._generate, messages,
                                              _no_private(kwargs), call)
        return await self._agenerate(messages, _no_private(kwargs), None)

    def stream(self, messages: Any, **kwargs: Any) -> Iterator[Message]:
        """Yield the answer's chunks as they arrive: ``{"role": "assistant", "content": piece,
        "id": ...}`` (plus ``"tool_call_chunks"`` while the model writes tool calls); the last
        item is the assembled message with ``"usage"`` and ``"done": True``.

        Runs the call on a worker thread so chunks reach the caller as they come.
        """
        import contextvars
        import queue

        q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        done = object()
        closed = threading.Event()

        def put(piece: Message) -> None:
            if closed.is_set():  # the caller stopped reading: end the call (and its connection)
                raise StreamClosed()
            q.put(piece)

        call = _Call(self, put)  # here, where the calling node can be found

        def work() -> None:
            try:
                msg = self._generate(messages, _no_private(kwargs), call, stream=True)
                q.put((done, msg))
            except BaseException as exc:
                q.put((done, exc))

        t = threading.Thread(target=contextvars.copy_context().run, args=(work,), daemon=True)
        t.start()
        try:
            while True:
                item = q.get()
                if type(item) is tuple and item[0] is done:
                    if isinstance(item[1], BaseException):
                        raise item[1]
                    yield {**item[1], "done": True}
                    return
                yield item
        finally:
            closed.set()
            t.join()

    async def astream(self, messages: Any, **kwargs: Any) -> AsyncIterator[Message]:
        """Async :meth:`stream`."""
        q: asyncio.Queue[Any] = asyncio.Queue()
        done = object()

        call = _Call(self, q.put_nowait)  # here, where the calling node can be found

        async def work() -> None:
            try:
                msg = await self._agenerate(messages, _no_private(kwargs), call, stream=True)
                q.put_nowait((done, msg))
            except BaseException as exc:
                q.put_nowait((done, exc))

        task = asyncio.ensure_future(work())
        try:
            while True:
                item = await q.get()
                if type(item) is tuple and item[0] is done:
                    if isinstance(item[1], BaseException):
                        raise item[1]
                    yield {**item[1], "done": True}
                    return
                yield item
        finally:
            if not task.done():
                task.cancel()


def _no_private(kwargs: dict[str, Any]) -> dict[str, Any]:
    if "_repaired" in kwargs:
        raise TypeError("unexpected keyword argument '_repaired'")
    return dict(kwargs)


def _repair_calls(messages: list[Message], msg: Message, bad: list[tuple[dict[str, Any], str]]) -> list[Message]:
    """The conversation plus the bad answer (as text) and a request to repair its calls."""
    said = "; ".join(f"{tc['function']['name']}({tc['function']['arguments']})" for tc, _ in bad)
    why = "; ".join(f"the arguments of your call of {tc['function']['name']!r} are {reason}" for tc, reason in bad)
    return [*messages,
            {"role": "assistant", "content": f"(tool calls: {said})"},
            {"role": "user", "content": f"Error: {why}. Call the tool again, with arguments that are one valid "
                                        "JSON object matching its parameters."}]
