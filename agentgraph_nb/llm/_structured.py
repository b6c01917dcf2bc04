"""``model.with_structured_output(Schema)``: answers validated into a pydantic model, with one
repair round (the validation errors sent back to the model) before a typed error."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from agentgraph_nb.engine import task_context
from agentgraph_nb.errors import StructuredOutputError
from agentgraph_nb.llm._base import Message, to_messages

if TYPE_CHECKING:
    from agentgraph_nb.llm._openai import OpenAIChat

__all__ = ["StructuredModel"]

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


class StructuredModel:
    """``model.with_structured_output(Schema)``: ``invoke``/``ainvoke`` return a ``Schema``
    instance (validated by pydantic), with one repair attempt. See
    :meth:`OpenAIChat.with_structured_output`."""

    def __init__(self, model: OpenAIChat, schema: type, *, method: str = "json_schema", strict: bool | None = None,
                 include_raw: bool = False) -> None:
        if not (isinstance(schema, type) and hasattr(schema, "model_validate_json")):
            raise TypeError(f"with_structured_output needs a pydantic BaseModel subclass, got {schema!r}")
        if method not in ("json_schema", "json_mode"):
            raise ValueError(f"method must be 'json_schema' or 'json_mode', got {method!r}")
        self.model = model
        self.schema = schema
        self.method = method
        self.include_raw = include_raw
        js = schema.model_json_schema()  # type: ignore[attr-defined]
        self._json_schema = js
        if method == "json_schema":
            spec: dict[str, Any] = {"name": schema.__name__, "schema": js}
            if strict is not None:
                spec["strict"] = strict
            self._format: dict[str, Any] = {"type": "json_schema", "json_schema": spec}
        else:
            self._format = {"type": "json_object"}

    def __repr__(self) -> str:
        return f"{self.model!r}.with_structured_output({self.schema.__name__})"

    def _messages(self, messages: Any) -> list[Message]:
        msgs = to_messages(messages)
        if self.method == "json_mode":
            msgs = [{"role": "system", "content": "Answer with one JSON object that fits this JSON schema: "
                     + json.dumps(self._json_schema)}, *msgs]
        return msgs

    def _parse(self, msg: Message) -> tuple[Any, Any]:
        """``(instance, None)`` or ``(None, errors)``."""
        import pydantic

        text = msg.get("content") or ""
        m = _FENCE.match(text)
        if m:
            text = m.group(1)
        try:
            return self.schema.model_validate_json(text), None  # type: ignore[attr-defined]
        except pydantic.ValidationError as exc:
            return None, exc

    def _repair(self, msgs: list[Message], msg: Message, exc: Any) -> list[Message]:
        return [*msgs, {"role": "assistant", "content": msg.get("content") or ""},
                {"role": "user", "content": f"Your answer does not fit the schema {self.schema.__name__}: "
                 f"{_errors_text(exc)}. Answer again with only one JSON object that fits the schema."}]

    def _fail(self, msg: Message, exc: Any, node: str) -> StructuredOutputError:
        where = f" (node {node!r})" if node else ""
        err = StructuredOutputError(
            f"model {self.model.model!r} at {self.model.base_url}{where} answered something that does not fit "
            f"{self.schema.__name__}, also after being asked to repair it: {_errors_text(exc)}. "
            f"Answer: {(msg.get('content') or '')[:300]!r}",
            model=self.model.model, base_url=self.model.base_url, node=node,
        )
        err.raw = msg.get("content") or ""
        err.schema = self.schema.__name__
        err.errors = exc.errors() if hasattr(exc, "errors") else []
        return err

    def _out(self, parsed: Any, msg: Message) -> Any:
        return {"raw": msg, "parsed": parsed} if self.include_raw else parsed

    def invoke(self, messages: Any, **kwargs: Any) -> Any:
        """Answer with a validated ``Schema`` instance."""
        msgs = self._messages(messages)
        msg = self.model.invoke(msgs, response_format=self._format, **kwargs)
        parsed, exc = self._parse(msg)
        if exc is None:
            return self._out(parsed, msg)
        msg = self.model.invoke(self._repair(msgs, msg, exc), response_format=self._format, **kwargs)
        parsed, exc2 = self._parse(msg)
        if exc2 is None:
            return self._out(parsed, msg)
        ctx = task_context()
        raise self._fail(msg, exc2, ctx[1] if ctx else "") from exc2

    async def ainvoke(self, messages: Any, **kwargs: Any) -> Any:
        """Async :meth:`invoke`."""
        msgs = self._messages(messages)
        msg = await self.model.ainvoke(msgs, response_format=self._format, **kwargs)
        parsed, exc = self._parse(msg)
        if exc is None:
            return self._out(parsed, msg)
        msg = await self.model.ainvoke(self._repair(msgs, msg, exc), response_format=self._format, **kwargs)
        parsed, exc2 = self._parse(msg)
        if exc2 is None:
            return self._out(parsed, msg)
        ctx = task_context()
        raise self._fail(msg, exc2, ctx[1] if ctx else "") from exc2


def _errors_text(exc: Any) -> str:
    try:
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()[:8])
    except Exception:
        return str(exc)
