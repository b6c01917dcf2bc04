"""Anthropic's Messages API (``POST /v1/messages``) on :class:`~agentgraph_nb.testing.ModelServer`,
for the tests of :class:`~agentgraph_nb.llm.AnthropicChat`: the same rules, scripts and failures as
the chat-completions route, in Anthropic's request and response shapes (content blocks,
``tool_use`` / ``tool_result``, ``system`` apart from the messages, named SSE events, usage as
``input_tokens`` / ``output_tokens``), and as strict as Anthropic about what it accepts."""

from __future__ import annotations

import json
import time
from typing import Any

__all__ = ["handle_messages"]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(str(b.get("text", "")) for b in content or () if isinstance(b, dict) and b.get("type") == "text")


def _check(body: dict[str, Any]) -> str:
    """What Anthropic would reject (a 400), or ""."""
    if not body.get("model"):
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            return (f"messages.{i}.role: Input should be 'user' or 'assistant' (a system prompt goes in the "
                    "top-level system parameter)")
        extra = sorted(set(m) - {"role", "content"})
        if extra:
            return f"messages.{i}.{extra[0]}: Extra inputs are not permitted"
        content = m.get("content")
        if isinstance(content, list):
            for j, b in enumerate(content):
                kind = b.get("type") if isinstance(b, dict) else None
                if kind not in ("text", "tool_use", "tool_result"):
                    return f"messages.{i}.content.{j}.type: unknown block type {kind!r}"
                if kind == "tool_use" and not isinstance(b.get("input"), dict):
                    return f"messages.{i}.content.{j}.input: Input should be a valid dictionary"
                if kind == "tool_result" and not b.get("tool_use_id"):
                    return f"messages.{i}.content.{j}.tool_use_id: Field required"
        elif not isinstance(content, str):
            return f"messages.{i}.content: Input should be a valid string or list"
    return ""


def _as_openai(body: dict[str, Any]) -> dict[str, Any]:
    """The request in the chat-completions shape, for the server's rules (``ModelServer.reply``)."""
    msgs: list[dict[str, Any]] = []
    for m in body.get("messages") or ():
        content = m.get("content")
        results = [b for b in content if b.get("type") == "tool_result"] if isinstance(content, list) else []
        if results:
            for b in results:
                msgs.append({"role": "tool", "tool_call_id": b["tool_use_id"], "content": _text(b.get("content"))})
        else:
            msgs.append({"role": m["role"], "content": _text(content)})
    tools = [{"type": "function", "function": {"name": t.get("name"), "parameters": t.get("input_schema") or {}}}
             for t in body.get("tools") or ()]
    out: dict[str, Any] = {"model": body.get("model"), "messages": msgs}
    if tools:
        out["tools"] = tools
    if (body.get("tool_choice") or {}).get("type") == "none":
        out["tool_choice"] = "none"
    return out


def _error(handler: Any, status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> None:
    handler._send_json(status, {"type": "error", "error": {"type": kind, "message": message}}, headers)


def handle_messages(handler: Any, raw: bytes) -> None:
    """Answer one ``POST /v1/messages`` on ``handler`` (the ModelServer's request handler)."""
    from agentgraph_nb._model_server import _count, tokens

    owner = handler.owner
    try:
        body = json.loads(raw)
    except ValueError:
        _error(handler, 400, "invalid_request_error", "body is not JSON")
        return
    failure, scripted = owner._take(body)
    if owner.delay:
        time.sleep(owner.delay)
    if failure is not None:
        headers = {} if failure.retry_after is None else {"Retry-After": f"{failure.retry_after:g}"}
        kind = "rate_limit_error" if failure.status == 429 else ("api_error" if failure.status >= 500
                                                                 else "invalid_request_error")
        _error(handler, failure.status, kind, failure.body["error"]["message"], headers)
        return
    problem = _check(body)
    if problem:
        _error(handler, 400, "invalid_request_error", problem)
        return
    shaped = _as_openai(body)
    prompt = _count(shaped["messages"]) + len(_text(body.get("system") or "").split())
    if owner.max_context is not None and prompt > owner.max_context:
        _error(handler, 400, "invalid_request_error",
               f"prompt is too long: {prompt} tokens > {owner.max_context} maximum")
        return
    forced = body.get("tool_choice") or {}
    if scripted is None and forced.get("type") == "tool":
        # a forced tool (how structured output is asked for): its input fills the tool's schema
        spec: dict[str, Any] = next((t for t in body.get("tools") or () if t.get("name") == forced.get("name")), {})
        shaped = {k: v for k, v in shaped.items() if k not in ("tools", "tool_choice")}
        shaped["response_format"] = {"type": "json_schema",
                                     "json_schema": {"schema": spec.get("input_schema") or {}}}
        filled = owner.reply(shaped)
        if filled.get("tool_calls") or not filled.get("content"):
            reply = filled
        else:
            reply = {"tool_calls": [{"name": forced.get("name"), "arguments": filled["content"]}]}
    else:
        reply = scripted if scripted is not None else owner.reply(shaped)
    model = body.get("model") or owner.model
    mid = f"msg_{owner._next_id()}"
    uses = []
    for i, c in enumerate(reply.get("tool_calls") or ()):
        args = c["arguments"]
        try:
            value = json.loads(args) if isinstance(args, str) else args
        except ValueError:  # scripted malformed arguments: Anthropic's input is always an object
            value = {"_raw": args}
        uses.append({"type": "tool_use", "id": c.get("id") or f"toolu_{mid[4:]}_{i}", "name": c["name"],
                     "input": value})
    text = reply.get("content") or ""
    toks = tokens(text)
    completion = len(toks) + sum(1 + len(json.dumps(u["input"]).split()) for u in uses)
    stop = "tool_use" if uses else "end_turn"
    if not body.get("stream"):
        blocks = ([{"type": "text", "text": text}] if text or not uses else []) + uses
        handler._send_json(200, {
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": blocks,
            "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": completion},
        })
        return
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    pause = owner.token_delay

    def send(event: dict[str, Any]) -> None:
        data = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    try:
        send({"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": prompt, "output_tokens": 1}}})
        index = 0
        if toks:
            send({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
            for tok in toks:
                if pause:
                    time.sleep(pause)
                send({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": tok}})
            send({"type": "content_block_stop", "index": 0})
            index = 1
        for u in uses:
            send({"type": "content_block_start", "index": index,
                  "content_block": {"type": "tool_use", "id": u["id"], "name": u["name"], "input": {}}})
            for piece in tokens(json.dumps(u["input"])):
                if pause:
                    time.sleep(pause)
                send({"type": "content_block_delta", "index": index,
                      "delta": {"type": "input_json_delta", "partial_json": piece}})
            send({"type": "content_block_stop", "index": index})
            index += 1
        send({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
              "usage": {"output_tokens": completion}})
        send({"type": "message_stop"})
        handler.wfile.write(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True
