"""What every chat model shares, without any client library: the protocol, message input
normalization, tool schemas and the price table."""

from __future__ import annotations

import inspect
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["ChatModel", "cost_of", "get_prices", "new_message_id", "price_of", "set_prices", "to_messages",
           "to_wire", "tool_schema"]

Message = dict[str, Any]

# the keys the chat-completions API accepts in a message; everything else (our "id", "usage")
# is stripped before sending, since OpenAI rejects unknown keys with a 400
_WIRE_KEYS = {
    "system": ("role", "content", "name"),
    "developer": ("role", "content", "name"),
    "user": ("role", "content", "name"),
    "assistant": ("role", "content", "name", "tool_calls", "refusal"),
    "tool": ("role", "content", "tool_call_id"),
}
_LC_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "developer": "developer",
             "AIMessageChunk": "assistant"}


@runtime_checkable
class ChatModel(Protocol):
    """Anything that answers a conversation is a chat model: ``invoke(messages)`` returns one
    assistant message (a dict in the OpenAI chat format), ``ainvoke`` is its async twin.

    ``messages`` may be a str (one user message), a message dict, or a list of message dicts
    (LangChain message objects are converted when ``langchain_core`` is installed).
    """

    def invoke(self, messages: Any, **kwargs: Any) -> Message: ...

    async def ainvoke(self, messages: Any, **kwargs: Any) -> Message: ...


def new_message_id() -> str:
    """A fresh message id (``"msg-"`` and 24 hex digits)."""
    return "msg-" + os.urandom(12).hex()


def _from_langchain(m: Any) -> Message:
    role = _LC_ROLES.get(getattr(m, "type", ""), getattr(m, "role", None) or "user")
    out: Message = {"role": role, "content": m.content}
    calls = getattr(m, "tool_calls", None)
    if calls:
        out["tool_calls"] = [
            {"id": c.get("id") or "", "type": "function",
             "function": {"name": c["name"], "arguments": json.dumps(c.get("args") or {})}}
            for c in calls
        ]
    if getattr(m, "tool_call_id", None):
        out["tool_call_id"] = m.tool_call_id
    if getattr(m, "name", None):
        out["name"] = m.name
    if getattr(m, "id", None):
        out["id"] = m.id
    return out


def _one(m: Any) -> Message:
    if isinstance(m, Mapping):
        if "role" not in m:
            raise TypeError(f"a message dict needs a 'role' (system, user, assistant or tool), got keys {sorted(m)}")
        return dict(m)
    if isinstance(m, str):
        return {"role": "user", "content": m}
    if isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str):
        return {"role": _LC_ROLES.get(m[0], m[0]), "content": m[1]}
    if hasattr(m, "content") and hasattr(m, "type"):
        return _from_langchain(m)
    raise TypeError(
        f"cannot read {type(m).__name__!r} as a chat message: pass a str, a dict with 'role' and "
        "'content', a (role, content) tuple, or a LangChain message"
    )


def to_messages(messages: Any) -> list[Message]:
    """A model's input as a list of message dicts: a str is one user message; a dict, tuple or
    LangChain message is one message; a list (or a state dict with ``"messages"``) is several."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if isinstance(messages, Mapping):
        if "role" not in messages and "messages" in messages:
            return [_one(m) for m in messages["messages"]]
        return [_one(messages)]
    if isinstance(messages, Sequence) and not isinstance(messages, tuple | bytes):
        return [_one(m) for m in messages]
    return [_one(messages)]


def to_wire(messages: list[Message]) -> list[Message]:
    """The messages as the chat-completions API accepts them (private keys such as ``id`` and
    ``usage`` dropped; an assistant's empty ``tool_calls`` dropped)."""
    out = []
    for m in messages:
        keys = _WIRE_KEYS.get(m.get("role", ""))
        if keys is None:
            out.append(m)  # let the server name what is wrong
            continue
        w = {k: m[k] for k in keys if k in m}
        if "tool_calls" in w and not w["tool_calls"]:
            del w["tool_calls"]
        if "content" not in w:
            w["content"] = None if w.get("tool_calls") else ""
        out.append(w)
    return out


# -- tools ------------------------------------------------------------------------------------------
def _doc_parts(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """A docstring's summary and its Google-style ``Args:`` descriptions."""
    doc = inspect.getdoc(fn) or ""
    summary_lines: list[str] = []
    args: dict[str, str] = {}
    section = None
    current = None
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            section = "args"
            continue
        if stripped.endswith(":") and stripped[:-1] in ("Returns", "Raises", "Example", "Examples", "Yields", "Note"):
            section = "other"
            continue
        if section is None:
            if not stripped and summary_lines:
                section = "body"
            elif stripped:
                summary_lines.append(stripped)
        elif section == "args" and stripped:
            if ":" in stripped and not line.startswith(" " * 8):
                name, _, desc = stripped.partition(":")
                current = name.split("(")[0].strip()
                args[current] = desc.strip()
            elif current:
                args[current] += " " + stripped
    return " ".join(summary_lines), args


def _callable_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    from agentgraph_nb._lazy import requires_extra

    with requires_extra("bind_tools(function)"):
        import pydantic

    sig = inspect.signature(fn)
    try:
        hints = __import__("typing").get_type_hints(fn)
    except Exception:
        hints = {}
    summary, arg_docs = _doc_parts(fn)
    fields: dict[str, Any] = {}
    for name, p in sig.parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or name in ("self", "cls"):
            continue
        ann = hints.get(name, Any)
        default = ... if p.default is p.empty else p.default
        fields[name] = (ann, pydantic.Field(default, description=arg_docs.get(name)))
    model = pydantic.create_model(fn.__name__, **fields)  # type: ignore[call-overload]
    params = model.model_json_schema()
    params.pop("title", None)
    for v in (params.get("properties") or {}).values():
        v.pop("title", None)
    return {"type": "function", "function": {"name": fn.__name__, "description": summary, "parameters": params}}


def tool_schema(tool: Any) -> dict[str, Any]:
    """The OpenAI tool schema (``{"type": "function", "function": {...}}``) of ``tool``: an
    object with a ``.schema`` attribute (``agentgraph_nb.tools.tool``), such a dict, a bare
    function schema (``{"name", "description", "parameters"}``), a pydantic model class, or a
    plain function (its type hints and docstring make the schema)."""
    if isinstance(tool, Mapping):
        if tool.get("type") == "function" and "function" in tool:
            return dict(tool)
        if "name" in tool:
            return {"type": "function", "function": dict(tool)}
        raise TypeError(f"a tool dict needs 'type': 'function' and 'function', or a 'name'; got keys {sorted(tool)}")
    schema = getattr(tool, "schema", None)
    if isinstance(schema, Mapping):
        return tool_schema(schema)
    if isinstance(tool, type) and hasattr(tool, "model_json_schema"):
        params = tool.model_json_schema()
        desc = params.pop("description", "") or ""
        params.pop("title", None)
        return {"type": "function", "function": {"name": tool.__name__, "description": desc, "parameters": params}}
    if callable(tool):
        return _callable_schema(tool)
    raise TypeError(f"cannot make a tool schema from {type(tool).__name__!r}")


# -- prices ---------------------------------------------------------------------------------------
_prices: dict[str, dict[str, float]] = {}
_prices_lock = threading.Lock()


def set_prices(table: Mapping[str, Mapping[str, float]], *, replace: bool = False) -> None:
    """Set what models cost, per million tokens: ``{"model": {"input": 0.15, "output": 0.6}}``.

    No prices ship with agentgraph_nb (they change); without one a call's cost is ``None`` in
    its ``llm_end`` event and counts as 0 in the metrics. A model's own ``price=`` wins.

    Args:
        table: model name -> ``{"input": per_million, "output": per_million}``.
        replace: forget the prices set before (default: add to them).
    """
    checked = {}
    for model, p in table.items():
        try:
            checked[str(model)] = {"input": float(p["input"]), "output": float(p["output"])}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"price of {model!r} must be {{'input': per_million, 'output': per_million}}, got {p!r}"
            ) from exc
    with _prices_lock:
        if replace:
            _prices.clear()
        _prices.update(checked)


def get_prices() -> dict[str, dict[str, float]]:
    """A copy of the price table set with :func:`set_prices`."""
    with _prices_lock:
        return {k: dict(v) for k, v in _prices.items()}


def price_of(model: str, own: Mapping[str, float] | None = None) -> Mapping[str, float] | None:
    """The price that applies to ``model``: its own, else the table's, else ``None``."""
    if own is not None:
        return own
    return _prices.get(model)


def cost_of(price: Mapping[str, float] | None, tokens_in: int, tokens_out: int) -> float | None:
    """The cost of a call, or ``None`` without a price."""
    if price is None:
        return None
    return (tokens_in * float(price["input"]) + tokens_out * float(price["output"])) / 1_000_000
