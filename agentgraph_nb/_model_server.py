"""A small deterministic OpenAI-compatible chat-completions server, for tests and demos.

Real HTTP on a loopback port (``http.server`` on a thread, stdlib only), real SSE streaming
(with ``stream_options.include_usage``), tool calls and token usage, and failures on demand:
HTTP errors with ``Retry-After``, slow answers, scripted replies (malformed tool-call JSON, JSON
that does not fit a schema). Any OpenAI client talks to it through ``base_url``.

Example:
    >>> from agentgraph_nb.llm import OpenAIChat
    >>> from agentgraph_nb.testing import ModelServer
    >>> with ModelServer() as server:
    ...     model = OpenAIChat("test-model", base_url=server.base_url, api_key="x")
    ...     model.invoke("hello")["content"]
    'You said: hello'

How it answers (first rule that applies):

1. a scripted reply, if any is queued (:meth:`ModelServer.script`);
2. ``response_format`` with a JSON schema: a JSON object filling the schema (strings from the
   last user message, numbers 1, booleans true);
3. tools offered and the last message is the user's, naming a tool: a call of that tool (string
   arguments take the last word of the message, integers its first number);
4. after tool results: ``"Result: "`` followed by the tool messages' contents;
5. otherwise ``"You said: "`` and the last user message.

Tokens are whitespace-delimited words (each with its trailing space); usage counts them.
``POST /v1/messages`` answers by the same rules in the shapes of Anthropic's Messages API
(``anthropic_url`` is the ``base_url`` for its SDK).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ModelServer"]

_ALLOWED_KEYS = {
    "system": {"role", "content", "name"},
    "developer": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "refusal"},
    "tool": {"role", "content", "tool_call_id", "name"},
}
_TOKEN = re.compile(r"\S+\s*|\s+")


def tokens(text: str) -> list[str]:
    """The server's tokens of ``text`` (words with their trailing whitespace)."""
    return _TOKEN.findall(text or "")


def _count(messages: list[dict[str, Any]]) -> int:
    n = 0
    for m in messages:
        c = m.get("content")
        if isinstance(c, str):
            n += len(c.split())
        elif isinstance(c, list):
            n += sum(len(str(p.get("text", "")).split()) for p in c if isinstance(p, dict))
        for tc in m.get("tool_calls") or ():
            n += 1 + len(str(tc.get("function", {}).get("arguments", "")).split())
        n += 1  # the role
    return n


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content or ""


class _Failure:
    __slots__ = ("body", "retry_after", "status")

    def __init__(self, status: int, retry_after: float | None, body: dict[str, Any] | None) -> None:
        self.status = status
        self.retry_after = retry_after
        self.body = body


class ModelServer:
    """A deterministic OpenAI-compatible server on ``127.0.0.1`` (a free port unless given).

    Attributes:
        base_url: ``http://127.0.0.1:PORT/v1``, for any OpenAI client.
        requests: the JSON bodies received by ``/v1/chat/completions``, in order.
        connections: how many TCP connections clients opened (keep-alive shows as fewer
            connections than requests).
        delay: seconds to wait before answering each request (a slow server).
        token_delay: seconds between streamed chunks.
        max_context: prompt tokens above which a request is refused with HTTP 400 and code
            ``context_length_exceeded``, as OpenAI does (``None``: no limit).

    Args:
        port: the port (0: a free one).
        model: the model name reported when a request names none.
        responder: optional ``f(request_body) -> reply | None``; a reply is a dict with
            ``"content"`` and/or ``"tool_calls"`` (``[{"name", "arguments", "id"?}]``, arguments a
            JSON string or a dict); ``None`` falls back to the rules above.
    """

    def __init__(self, port: int = 0, *, model: str = "test-model", responder: Any = None,
                 delay: float = 0.0, token_delay: float = 0.0, max_context: int | None = None) -> None:
        self.model = model
        self.max_context = max_context
        self.responder = responder
        self.delay = delay
        self.token_delay = token_delay
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        self._scripted: deque[dict[str, Any]] = deque()
        self._failures: deque[_Failure] = deque()
        self._cuts: deque[int] = deque()
        self._lock = threading.Lock()
        self._counter = 0
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> ModelServer:
        """Start serving (idempotent); returns the server."""
        if self._httpd is not None:
            return self
        server = self

        class Handler(_Handler):
            owner = server

        httpd = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        httpd.daemon_threads = True
        self._port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="agentgraph_nb-model-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port (a stopped server refuses connections)."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def anthropic_url(self) -> str:
        """``http://127.0.0.1:PORT``: the ``base_url`` for Anthropic's SDK (it adds ``/v1/messages``),
        served by the same rules in Anthropic's shapes."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    # -- scripting -----------------------------------------------------------------------------
    def script(self, *replies: dict[str, Any] | str) -> ModelServer:
        """Queue replies for the next requests, one each, before the rules apply again.

        A reply is a str (the content) or a dict with ``"content"`` and/or ``"tool_calls"``
        (``[{"name": ..., "arguments": <JSON string, possibly malformed, or a dict>}]``).
        """
        with self._lock:
            for r in replies:
                self._scripted.append({"content": r} if isinstance(r, str) else dict(r))
        return self

    def fail(self, status: int = 500, *, times: int = 1, retry_after: float | None = None,
             message: str | None = None) -> ModelServer:
        """Answer the next ``times`` requests with HTTP ``status`` (and a ``Retry-After`` header
        of ``retry_after`` seconds when given), in OpenAI's error format."""
        body = {"error": {"message": message or f"scripted failure {status}", "type": "server_error"
                          if status >= 500 else "invalid_request_error", "param": None, "code": None}}
        with self._lock:
            for _ in range(times):
                self._failures.append(_Failure(status, retry_after, body))
        return self

    def cut(self, after: int = 2, *, times: int = 1) -> ModelServer:
        """Break the next ``times`` streamed answers after ``after`` chunks: the connection is
        closed mid-stream, as when a server dies or a proxy drops it."""
        with self._lock:
            self._cuts.extend([after] * times)
        return self

    def reset(self) -> None:
        """Forget requests, scripted replies, failures and cuts."""
        with self._lock:
            self.requests.clear()
            self._scripted.clear()
            self._failures.clear()
            self._cuts.clear()

    # -- answering -----------------------------------------------------------------------------
    def _next_id(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    def _take(self, body: dict[str, Any]) -> tuple[_Failure | None, dict[str, Any] | None]:
        with self._lock:
            self.requests.append(body)
            if self._failures:
                return self._failures.popleft(), None
            if self._scripted:
                return None, self._scripted.popleft()
        return None, None

    def reply(self, body: dict[str, Any]) -> dict[str, Any]:
        """The reply the rules give for a request body: ``{"content": ..., "tool_calls": [...]}``."""
        if self.responder is not None:
            got = self.responder(body)
            if got is not None:
                return {"content": got} if isinstance(got, str) else dict(got)
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        last_user = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema") or {}
            return {"content": json.dumps(_fill(schema, last_user, schema))}
        if fmt.get("type") == "json_object":
            return {"content": json.dumps({"answer": last_user})}
        tools = body.get("tools") or []
        if tools and last.get("role") == "user" and body.get("tool_choice") != "none":
            text = _text(last.get("content"))
            for t in tools:
                fn = t.get("function", {})
                name = fn.get("name", "")
                if name and re.search(rf"\b{re.escape(name)}\b", text):
                    return {"tool_calls": [{"name": name, "arguments": _args(fn.get("parameters") or {}, text)}]}
        if last.get("role") == "tool":
            results = []
            for m in reversed(messages):
                if m.get("role") != "tool":
                    break
                results.append(_text(m.get("content")))
            return {"content": "Result: " + "; ".join(reversed(results))}
        return {"content": f"You said: {last_user}"}


def _fill(schema: dict[str, Any], text: str, root: dict[str, Any]) -> Any:
    if "$ref" in schema:
        ref = schema["$ref"].rsplit("/", 1)[-1]
        schema = (root.get("$defs") or root.get("definitions") or {}).get(ref, {})
    if "anyOf" in schema:
        schema = next((s for s in schema["anyOf"] if s.get("type") != "null"), schema["anyOf"][0])
    if "enum" in schema:
        return schema["enum"][0]
    t = schema.get("type")
    if t == "object" or "properties" in schema:
        return {k: _fill(v, text, root) for k, v in (schema.get("properties") or {}).items()}
    if t == "array":
        return [_fill(schema.get("items") or {}, text, root)]
    if t == "integer":
        return 1
    if t == "number":
        return 1.0
    if t == "boolean":
        return True
    if t == "null":
        return None
    return text


def _args(params: dict[str, Any], text: str) -> str:
    words = re.findall(r"[\w.-]+", text)
    numbers = re.findall(r"-?\d+(?:\.\d+)?", text)
    out: dict[str, Any] = {}
    props = params.get("properties") or {}
    for k, v in props.items():
        t = v.get("type")
        if t == "integer":
            out[k] = int(float(numbers[0])) if numbers else 0
        elif t == "number":
            out[k] = float(numbers[0]) if numbers else 0.0
        elif t == "boolean":
            out[k] = True
        else:
            out[k] = words[-1] if words else ""
    return json.dumps(out)


class _Cut(Exception):
    """Internal: the scripted end of a stream cut short."""


class _Handler(BaseHTTPRequestHandler):
    owner: ModelServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        with self.owner._lock:
            self.owner.connections += 1
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return None

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": self.owner.model, "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        owner = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/").endswith("/v1/messages"):  # Anthropic's Messages API
            from agentgraph_nb._anthropic_server import handle_messages

            handle_messages(self, raw)
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send_json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        failure, scripted = owner._take(body)
        if owner.delay:
            time.sleep(owner.delay)
        if failure is not None:
            headers = {} if failure.retry_after is None else {"Retry-After": f"{failure.retry_after:g}"}
            self._send_json(failure.status, failure.body, headers)
            return
        problem = _check(body)
        if problem:
            self._send_json(400, {"error": {"message": problem, "type": "invalid_request_error",
                                            "param": "messages", "code": None}})
            return
        prompt = _count(body.get("messages") or [])
        if owner.max_context is not None and prompt > owner.max_context:
            self._send_json(400, {"error": {
                "message": f"This model's maximum context length is {owner.max_context} tokens. However, your "
                           f"messages resulted in {prompt} tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}})
            return
        reply = scripted if scripted is not None else owner.reply(body)
        model = body.get("model") or owner.model
        cid = f"chatcmpl-{owner._next_id()}"
        calls: list[dict[str, Any]] = [
            {"id": c.get("id") or f"call_{cid[9:]}_{i}", "type": "function",
             "function": {"name": c["name"], "arguments": c["arguments"] if isinstance(c["arguments"], str)
                          else json.dumps(c["arguments"])}}
            for i, c in enumerate(reply.get("tool_calls") or ())
        ]
        content = reply.get("content")
        toks = tokens(content or "")
        completion = len(toks) + sum(1 + len(c["function"]["arguments"].split()) for c in calls)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        finish = "tool_calls" if calls else "stop"
        if not body.get("stream"):
            msg: dict[str, Any] = {"role": "assistant", "content": content if content is not None or not calls else None}
            if calls:
                msg["tool_calls"] = calls
            self._send_json(200, {
                "id": cid, "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "message": msg, "finish_reason": finish, "logprobs": None}],
                "usage": usage,
            })
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        base = {"id": cid, "object": "chat.completion.chunk", "created": 0, "model": model}
        pause = owner.token_delay
        with owner._lock:
            budget = owner._cuts.popleft() if owner._cuts else -1
        sent = [0]

        def send(choices: list[Any], extra: dict[str, Any] | None = None) -> None:
            if sent[0] == budget:
                raise _Cut()
            sent[0] += 1
            obj = dict(base, choices=choices)
            if extra:
                obj.update(extra)
            data = b"data: " + json.dumps(obj).encode() + b"\n\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        def delta(d: dict[str, Any], finish_reason: str | None = None) -> list[Any]:
            return [{"index": 0, "delta": d, "finish_reason": finish_reason, "logprobs": None}]

        try:
            send(delta({"role": "assistant", "content": ""}))
            for tok in toks:
                if pause:
                    time.sleep(pause)
                send(delta({"content": tok}))
            for i, c in enumerate(calls):
                send(delta({"tool_calls": [{"index": i, "id": c["id"], "type": "function",
                                            "function": {"name": c["function"]["name"], "arguments": ""}}]}))
                for piece in tokens(c["function"]["arguments"]) or [""]:
                    if pause:
                        time.sleep(pause)
                    send(delta({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
            send(delta({}, finish))
            if (body.get("stream_options") or {}).get("include_usage"):
                send([], {"usage": usage})
            data = b"data: [DONE]\n\n"
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
        except (BrokenPipeError, ConnectionResetError):  # the client went away mid-stream
            self.close_connection = True
        except _Cut:  # scripted: drop the connection without ending the chunked body
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _check(body: dict[str, Any]) -> str:
    """What OpenAI would reject in a request (unknown message keys, bad roles), or ""."""
    if not body.get("model"):
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty array"
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            return f"messages[{i}] must be an object"
        allowed = _ALLOWED_KEYS.get(m.get("role", ""))
        if allowed is None:
            return f"messages[{i}].role: invalid value {m.get('role')!r}"
        extra = sorted(set(m) - allowed)
        if extra:
            return f"Additional properties are not allowed ({', '.join(map(repr, extra))} were unexpected) in messages[{i}]"
        if m["role"] == "tool" and not m.get("tool_call_id"):
            return f"messages[{i}].tool_call_id is required for role 'tool'"
    return ""


def main(argv: list[str] | None = None) -> None:
    """``python -m agentgraph_nb._model_server [--port 8000]``: serve until interrupted."""
    import argparse

    ap = argparse.ArgumentParser(description="A deterministic OpenAI-compatible chat server for demos and tests.")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--token-delay", type=float, default=0.0, help="seconds between streamed chunks")
    args = ap.parse_args(argv)
    with ModelServer(args.port, token_delay=args.token_delay) as server:
        print(f"serving on {server.base_url} (Ctrl-C stops)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
