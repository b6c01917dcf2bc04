"""``AnthropicChat``: a chat model on Anthropic's Messages API (the official ``anthropic`` SDK,
extra ``anthropic``), speaking the same OpenAI-format message dicts as :class:`OpenAIChat`, so a
graph, ``ToolNode`` and ``create_react_agent`` take either.

What differs on the wire is converted here: system messages go to the top-level ``system``;
an assistant's ``tool_calls`` become ``tool_use`` blocks and ``tool`` messages ``tool_result``
blocks of a user turn; tools are ``{"name", "description", "input_schema"}``; usage comes as
``input_tokens`` / ``output_tokens``. Streaming, the live token stream, usage and cost
accounting, cassettes and retries work as for :class:`OpenAIChat`.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import json
import os
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import anthropic

from agentgraph_nb.engine import is_private_loop, report_llm_call, task_context
from agentgraph_nb.errors import ModelError, ModelResponseError
from agentgraph_nb.llm._base import (
    Message,
    cost_of,
    new_message_id,
    price_of,
    to_messages,
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

__all__ = ["AnthropicChat"]

_DEFAULT_RETRY = RetryPolicy(max_attempts=3, initial_interval=0.5, max_interval=30.0)
_API_ERRORS = (anthropic.APIStatusError, anthropic.APIConnectionError)


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))


def _input(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_value": value}


def to_anthropic(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """``(system, messages)`` in the Messages API's shape; consecutive turns of one role merge."""
    system: list[str] = []
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for m in messages:
        role = m.get("role")
        if role in ("system", "developer"):
            system.append(_text(m.get("content")))
        elif role == "tool":
            add("user", [{"type": "tool_result", "tool_use_id": m.get("tool_call_id", ""),
                          "content": _text(m.get("content"))}])
        elif role == "assistant":
            text = _text(m.get("content"))
            blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
            for tc in m.get("tool_calls") or ():
                fn = tc.get("function") or {}
                blocks.append({"type": "tool_use", "id": tc.get("id", ""), "name": fn.get("name", ""),
                               "input": _input(fn.get("arguments"))})
            add("assistant", blocks or [{"type": "text", "text": ""}])
        else:
            add("user", [{"type": "text", "text": _text(m.get("content"))}])
    return "\n\n".join(s for s in system if s), out


def _tool(t: Any) -> dict[str, Any]:
    fn = tool_schema(t)["function"]
    out = {"name": fn["name"], "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
    if fn.get("description"):
        out["description"] = fn["description"]
    return out


def _usage(u: Mapping[str, Any]) -> dict[str, int]:
    p = int(u.get("input_tokens") or 0)
    c = int(u.get("output_tokens") or 0)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _from_message(d: dict[str, Any]) -> Message:
    text = "".join(b.get("text", "") for b in d.get("content") or () if b.get("type") == "text")
    calls = [{"id": b.get("id") or "toolu_" + os.urandom(8).hex(), "type": "function",
              "function": {"name": b.get("name", ""), "arguments": json.dumps(b.get("input") or {})}}
             for b in d.get("content") or () if b.get("type") == "tool_use"]
    msg: Message = {"role": "assistant", "content": text if text or not calls else None,
                    "id": d.get("id") or new_message_id()}
    if calls:
        msg["tool_calls"] = calls
    if d.get("usage"):
        msg["usage"] = _usage(d["usage"])
    return msg


class _Acc:
    """Folds the Messages API's stream events into one assistant message; :meth:`add` returns
    each piece as a ``stream(mode="messages")`` chunk (the same shape as OpenAIChat's)."""

    __slots__ = ("blocks", "id", "parts", "usage")

    def __init__(self) -> None:
        self.id = ""
        self.parts: list[str] = []
        self.blocks: dict[int, dict[str, Any]] = {}  # index -> tool_use block being written
        self.usage: dict[str, int] = {}

    def add(self, ev: dict[str, Any]) -> Message | None:
        kind = ev.get("type")
        if kind == "message_start":
            m = ev.get("message") or {}
            self.id = m.get("id") or new_message_id()
            self.usage.update({k: v for k, v in (m.get("usage") or {}).items() if isinstance(v, int)})
            return None
        if kind == "message_delta":
            self.usage.update({k: v for k, v in (ev.get("usage") or {}).items() if isinstance(v, int)})
            return None
        if not self.id:
            self.id = new_message_id()
        i = int(ev.get("index") or 0)
        if kind == "content_block_start":
            b = ev.get("content_block") or {}
            if b.get("type") != "tool_use":
                return None
            n = len(self.blocks)
            self.blocks[i] = {"n": n, "id": b.get("id") or "", "name": b.get("name") or "", "json": ""}
            return {"role": "assistant", "content": "", "id": self.id, "tool_call_chunks": [
                {"index": n, "id": b.get("id"), "name": b.get("name"), "arguments": ""}]}
        if kind == "content_block_delta":
            d = ev.get("delta") or {}
            if d.get("type") == "text_delta" and d.get("text"):
                self.parts.append(d["text"])
                return {"role": "assistant", "content": d["text"], "id": self.id}
            if d.get("type") == "input_json_delta" and i in self.blocks:
                piece = d.get("partial_json") or ""
                self.blocks[i]["json"] += piece
                return {"role": "assistant", "content": "", "id": self.id, "tool_call_chunks": [
                    {"index": self.blocks[i]["n"], "id": None, "name": None, "arguments": piece}]}
        return None

    def message(self) -> Message:
        text = "".join(self.parts)
        msg: Message = {"role": "assistant", "content": text, "id": self.id or new_message_id()}
        if self.blocks:
            msg["tool_calls"] = [{"id": b["id"] or "toolu_" + os.urandom(8).hex(), "type": "function",
                                  "function": {"name": b["name"], "arguments": b["json"] or "{}"}}
                                 for b in sorted(self.blocks.values(), key=lambda b: b["n"])]
            if not text:
                msg["content"] = None
        if self.usage:
            msg["usage"] = _usage(self.usage)
        return msg


class AnthropicChat(_SdkClients):
    """A chat model on Anthropic's Messages API, with OpenAI-format messages in and out.

    ``invoke(messages)`` returns one assistant message dict (``content``, ``tool_calls`` in the
    OpenAI shape, ``usage`` as ``prompt_tokens`` / ``completion_tokens``). Inside a node its calls
    stream to ``stream(mode="messages")``, show live in a GraphView, and count in the metrics,
    as :class:`~agentgraph_nb.llm.OpenAIChat`'s do.

    Args:
        model: the model name (e.g. the one your account lists).
        base_url: the API root (default ``ANTHROPIC_BASE_URL`` or ``https://api.anthropic.com``).
        api_key: the key; default ``ANTHROPIC_API_KEY`` (a local server with ``base_url`` takes any).
        max_tokens: the answer's limit (required by the API; default 1024).
        temperature, top_p, stop: sampling parameters (sent only when set).
        timeout: seconds per request before :class:`~agentgraph_nb.errors.ModelError`.
        retry: how failed calls are retried (429 honours ``Retry-After``; 5xx, timeouts and
            connection errors are retried; other 4xx never). ``None``: no retries.
        price: ``{"input": per_million, "output": per_million}`` (else :func:`set_prices`'s table).
        streaming: always stream (else only when a graph streams ``"messages"``, a view shows
            tokens, or :meth:`stream` is called).

    Example:
        >>> model = AnthropicChat("claude-x", base_url="http://127.0.0.1:8080", api_key="x")  # doctest: +SKIP
        >>> model.invoke("Say hi")["content"]                                                 # doctest: +SKIP
        'Hi!'

    ``with_structured_output(Schema)`` asks for the answer as the input of a forced tool named
    after the schema (the way Anthropic recommends), validated, with one repair round.
    """

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 max_tokens: int = 1024, temperature: float | None = None, top_p: float | None = None,
                 stop: str | Sequence[str] | None = None, timeout: float = 60.0,
                 retry: RetryPolicy | None = _DEFAULT_RETRY, price: Mapping[str, float] | None = None,
                 streaming: bool = False) -> None:
        if not model or not isinstance(model, str):
            raise ValueError(f"AnthropicChat needs a model name, got {model!r}")
        self.model = model
        self.base_url = (base_url or os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com").rstrip("/")
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if key is None:
            if base_url is None and "ANTHROPIC_BASE_URL" not in os.environ:
                raise ModelError(
                    f"AnthropicChat({model!r}) has no API key: pass api_key=... or set ANTHROPIC_API_KEY",
                    model=model, base_url=self.base_url,
                )
            key = "x"
        self._api_key = key
        self.timeout = timeout
        self.retry = retry
        self.price = None if price is None else {"input": float(price["input"]), "output": float(price["output"])}
        self.streaming = streaming
        params: dict[str, Any] = {"max_tokens": int(max_tokens)}
        for k, v in (("temperature", temperature), ("top_p", top_p)):
            if v is not None:
                params[k] = v
        if stop is not None:
            params["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        self.params = params
        self.tools: list[dict[str, Any]] = []
        self.tool_choice: Any = None
        self._client: anthropic.Anthropic | None = None
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anthropic.AsyncAnthropic] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        tools = f", tools={[t['name'] for t in self.tools]}" if self.tools else ""
        return f"AnthropicChat({self.model!r}, base_url={self.base_url!r}{tools})"


    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None) -> AnthropicChat:
        """A copy that offers ``tools`` (``@tool`` objects, OpenAI tool schemas, pydantic models
        or plain functions) on every call. ``tool_choice``: ``"auto"``, ``"required"``/``"any"``,
        ``"none"`` or a tool's name."""
        new = copy.copy(self)
        new._client = None
        new._aclients = weakref.WeakKeyDictionary()
        new.params = dict(self.params)
        new.tools = [_tool(t) for t in tools]
        if tool_choice in (None, "auto"):
            new.tool_choice = None if tool_choice is None else {"type": "auto"}
        elif tool_choice in ("required", "any"):
            new.tool_choice = {"type": "any"}
        elif tool_choice == "none":
            new.tool_choice = {"type": "none"}
        else:
            new.tool_choice = {"type": "tool", "name": str(tool_choice)}
        return new

    def with_structured_output(self, schema: type, *, include_raw: bool = False) -> _Structured:
        """A runnable whose ``invoke``/``ainvoke`` return a validated instance of the pydantic
        model ``schema`` (asked for as a forced tool call); when the answer does not fit, the model
        is asked once more with the validation errors, then
        :class:`~agentgraph_nb.errors.StructuredOutputError` is raised."""
        return _Structured(self, schema, include_raw=include_raw)

    # -- requests ------------------------------------------------------------------------------
    def _new_client(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0,
            http_client=anthropic.DefaultHttpxClient(verify=_tls_context()))

    def _new_aclient(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0,
            http_client=anthropic.DefaultAsyncHttpxClient(verify=_tls_context()))

    def _body(self, messages: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        system, msgs = to_anthropic(to_messages(messages))
        body: dict[str, Any] = {"model": self.model, "messages": msgs, **self.params}
        if system:
            body["system"] = system
        if self.tools:
            body["tools"] = self.tools
            if self.tool_choice is not None:
                body["tool_choice"] = self.tool_choice
        body.update({k: v for k, v in kwargs.items() if v is not None})
        return body

    def _where(self, call: _Call) -> str:
        return f" (node {call.node!r})" if call.node else ""

    def _error(self, exc: BaseException, attempts: int, call: _Call) -> ModelError:
        where, tries = self._where(call), f" after {attempts} attempt(s)" if attempts > 1 else ""
        if isinstance(exc, anthropic.APIStatusError):
            return ModelError(
                f"model {self.model!r} at {self.base_url} answered HTTP {exc.status_code}{tries}{where}: {exc.message}",
                model=self.model, base_url=self.base_url, status_code=exc.status_code, node=call.node,
                attempts=attempts, headers=exc.response.headers,
            )
        if isinstance(exc, anthropic.APITimeoutError):
            return ModelError(f"model {self.model!r} at {self.base_url} did not answer within {self.timeout:g}s"
                              f"{tries}{where}", model=self.model, base_url=self.base_url, node=call.node,
                              attempts=attempts)
        return ModelError(f"cannot reach the model server at {self.base_url} (model {self.model!r}){tries}{where}: "
                          f"{exc}. Is it running, and is base_url right?", model=self.model,
                          base_url=self.base_url, node=call.node, attempts=attempts)

    def _retry_wait(self, exc: Exception, attempt: int, call: _Call) -> float:
        if isinstance(exc, _BadChunk):
            err = ModelResponseError(f"model {self.model!r} at {self.base_url}{self._where(call)} streamed an event "
                                     f"that is not a JSON object: {str(exc.args[0])[:200]!r}", model=self.model,
                                     base_url=self.base_url, node=call.node)
            raise err from exc
        if not isinstance(exc, _API_ERRORS) and not _broken(exc):
            raise exc
        policy = self.retry
        if policy is None or attempt >= policy.max_attempts or not policy.should_retry(exc):
            raise self._error(exc, attempt, call) from exc
        return float(policy.interval(attempt - 1, None, exc))

    def _take(self, ev: dict[str, Any], acc: _Acc, events: list[dict[str, Any]] | None, call: _Call) -> None:
        if events is not None:
            events.append(ev)
        if ev.get("type") == "error":
            raise ModelError(f"model {self.model!r} at {self.base_url} sent an error mid-stream: {ev.get('error')}",
                             model=self.model, base_url=self.base_url, node=call.node)
        piece = acc.add(ev)
        if piece is not None and call.on_chunk is not None:
            call.on_chunk(piece)

    def _request(self, body: dict[str, Any], stream: bool, call: _Call, record: bool) -> tuple[Message, dict[str, Any]]:
        client = self._sync_client()
        attempt = 1
        while True:
            try:
                if not stream:
                    d = client.messages.with_raw_response.create(**body).http_response.json()
                    return _from_message(d), {"message": d}
                acc, events = _Acc(), []  # type: ignore[var-annotated]
                with client.messages.with_streaming_response.create(**body, stream=True) as resp:
                    for ev in _sse(resp.iter_lines()):
                        self._take(ev, acc, events if record else None, call)
                return acc.message(), {"events": events}
            except Exception as exc:
                time.sleep(self._retry_wait(exc, attempt, call))
                attempt += 1

    async def _arequest(self, body: dict[str, Any], stream: bool, call: _Call,
                        record: bool) -> tuple[Message, dict[str, Any]]:
        client = self._async_client()
        attempt = 1
        while True:
            try:
                if not stream:
                    d = (await client.messages.with_raw_response.create(**body)).http_response.json()
                    return _from_message(d), {"message": d}
                acc, events = _Acc(), []  # type: ignore[var-annotated]
                async with client.messages.with_streaming_response.create(**body, stream=True) as resp:
                    async for ev in _asse(resp.iter_lines()):
                        self._take(ev, acc, events if record else None, call)
                return acc.message(), {"events": events}
            except Exception as exc:
                await asyncio.sleep(self._retry_wait(exc, attempt, call))
                attempt += 1

    def _replay(self, recorded: dict[str, Any], call: _Call) -> Message:
        if "events" in recorded:
            acc = _Acc()
            for ev in recorded["events"]:
                self._take(ev, acc, None, call)
            return acc.message()
        msg = _from_message(recorded["message"])
        if call.on_chunk is not None and msg.get("content"):
            call.on_chunk({"role": "assistant", "content": msg["content"], "id": msg["id"]})
        return msg

    def _done(self, msg: Message, call: _Call, t0: float) -> Message:
        if call.ctx is not None:
            u = msg.get("usage")
            tin, tout = (u["prompt_tokens"], u["completion_tokens"]) if u else (0, 0)
            report_llm_call(call.ctx, model=self.model, tokens_in=tin, tokens_out=tout,
                            cost=cost_of(price_of(self.model, self.price), tin, tout) if u else None,
                            latency=time.perf_counter() - t0, base_url=self.base_url)
        if call.sink is not None:  # streamed: not to be sent again whole when the node returns it
            call.sink.seen.add(msg["id"])
        return msg

    def _generate(self, messages: Any, kwargs: dict[str, Any], call: _Call, stream: bool = False) -> Message:
        body = self._body(messages, kwargs)
        t0 = time.perf_counter()
        cas = active_cassette()
        if cas is not None and cas.replaying:
            return self._done(self._replay(cas.take(body, self.model), call), call, t0)
        msg, rec = self._request(body, bool(stream or self.streaming or call.on_chunk is not None), call,
                                 cas is not None)
        if cas is not None:
            cas.add(body, rec)
        return self._done(msg, call, t0)

    async def _agenerate(self, messages: Any, kwargs: dict[str, Any], call: _Call, stream: bool = False) -> Message:
        body = self._body(messages, kwargs)
        t0 = time.perf_counter()
        cas = active_cassette()
        if cas is not None and cas.replaying:
            return self._done(self._replay(cas.take(body, self.model), call), call, t0)
        msg, rec = await self._arequest(body, bool(stream or self.streaming or call.on_chunk is not None), call,
                                        cas is not None)
        if cas is not None:
            cas.add(body, rec)
        return self._done(msg, call, t0)

    # -- the public calls ------------------------------------------------------------------------
    def invoke(self, messages: Any, **kwargs: Any) -> Message:
        """Answer ``messages`` (a str, a message dict, or a list of them) with one assistant
        message dict. Keyword arguments are request fields for this call."""
        return self._generate(messages, kwargs, _Call(self, None))

    async def ainvoke(self, messages: Any, **kwargs: Any) -> Message:
        """Async :meth:`invoke` (on a loop the engine made for one sync ``invoke()``, the kept-alive
        sync client runs the call on a worker thread, as for OpenAIChat)."""
        call = _Call(self, None)
        loop = asyncio.get_running_loop()
        if is_private_loop(loop):
            ctx = contextvars.copy_context()
            return await loop.run_in_executor(_workers(), ctx.run, self._generate, messages, kwargs, call)
        return await self._agenerate(messages, kwargs, call)

    def stream(self, messages: Any, **kwargs: Any) -> Iterator[Message]:
        """Yield the answer's chunks as they arrive, then the assembled message with
        ``"done": True`` (the call runs on a worker thread)."""
        import queue
        import threading

        q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        done = object()
        call = _Call(self, q.put)

        def work() -> None:
            try:
                q.put((done, self._generate(messages, kwargs, call, stream=True)))
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
            t.join()


class _Structured(StructuredModel):
    """``AnthropicChat.with_structured_output``: the schema as a forced tool; its input is the
    answer (parsing, repair and errors as :class:`StructuredModel`'s)."""

    def __init__(self, model: AnthropicChat, schema: type, *, include_raw: bool = False) -> None:
        super().__init__(model, schema, include_raw=include_raw)  # type: ignore[arg-type]
        name = schema.__name__
        self.bound = model.bind_tools([{"type": "function", "function": {
            "name": name, "description": f"Answer with a {name}.", "parameters": self._json_schema}}],
            tool_choice=name)

    @staticmethod
    def _as_text(msg: Message) -> Message:
        """The forced call's arguments as the message's content (what the parser reads)."""
        calls = msg.get("tool_calls") or ()
        return {**msg, "content": calls[0]["function"]["arguments"]} if calls else msg

    def _repair(self, msgs: list[Message], msg: Message, exc: Any) -> list[Message]:
        from agentgraph_nb.llm._structured import _errors_text

        calls = msg.get("tool_calls") or ()
        if not calls:
            return super()._repair(msgs, msg, exc)
        return [*msgs, {"role": "assistant", "content": None, "tool_calls": list(calls)},
                {"role": "tool", "tool_call_id": calls[0]["id"],
                 "content": f"Error: this does not fit {self.schema.__name__}: {_errors_text(exc)}. Call "
                            f"{self.schema.__name__} again with input that fits its schema."}]

    def invoke(self, messages: Any, **kwargs: Any) -> Any:
        msgs = self._messages(messages)
        msg = self._as_text(self.bound.invoke(msgs, **kwargs))
        parsed, exc = self._parse(msg)
        if exc is None:
            return self._out(parsed, msg)
        msg = self._as_text(self.bound.invoke(self._repair(msgs, msg, exc), **kwargs))
        parsed, exc2 = self._parse(msg)
        if exc2 is None:
            return self._out(parsed, msg)
        ctx = task_context()
        raise self._fail(msg, exc2, ctx[1] if ctx else "") from exc2

    async def ainvoke(self, messages: Any, **kwargs: Any) -> Any:
        msgs = self._messages(messages)
        msg = self._as_text(await self.bound.ainvoke(msgs, **kwargs))
        parsed, exc = self._parse(msg)
        if exc is None:
            return self._out(parsed, msg)
        msg = self._as_text(await self.bound.ainvoke(self._repair(msgs, msg, exc), **kwargs))
        parsed, exc2 = self._parse(msg)
        if exc2 is None:
            return self._out(parsed, msg)
        ctx = task_context()
        raise self._fail(msg, exc2, ctx[1] if ctx else "") from exc2

