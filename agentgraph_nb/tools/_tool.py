"""``@tool``: a plain function as a tool a chat model can call, with a JSON schema read from its
type hints and docstring (pydantic builds and checks it).

In reading order: the markers a parameter can carry (``InjectedState``, ``InjectedToolCallId``),
the docstring reader, how a result becomes a tool message's content, the :class:`Tool` class and
:func:`tool`, then the adapters that make other things tools (:class:`LangChainTool`,
:func:`as_tool`); MCP tools live in :mod:`agentgraph_nb.tools.mcp`."""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any, overload

from agentgraph_nb._lazy import requires_extra
from agentgraph_nb.errors import ToolArgumentsError

with requires_extra("agentgraph_nb.tools (tool schemas)"):
    import pydantic

__all__ = [
    "InjectedState",
    "InjectedToolCallId",
    "LangChainTool",
    "Tool",
    "as_tool",
    "parse_arguments",
    "tool",
    "tool_content",
]


class InjectedState:
    """Marks a tool parameter that receives the graph's state instead of a value from the model.

    ``Annotated[dict, InjectedState]`` passes the whole state; ``Annotated[list,
    InjectedState("messages")]`` passes one key. The parameter is left out of the tool's schema,
    so the model never sees it. :class:`~agentgraph_nb.tools.ToolNode` fills it in.

    Example:
        >>> from typing import Annotated
        >>> @tool
        ... def count_messages(state: Annotated[dict, InjectedState]) -> int:
        ...     '''How many messages the conversation has.'''
        ...     return len(state["messages"])
    """

    def __init__(self, field: str | None = None) -> None:
        self.field = field

    def __repr__(self) -> str:
        return f"InjectedState({self.field!r})" if self.field else "InjectedState()"


class InjectedToolCallId:
    """Marks a tool parameter that receives the id of the model's tool call
    (``Annotated[str, InjectedToolCallId]``); left out of the schema."""


_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns?|Yields?|Raises|Examples?|Notes?|See Also|Attributes)\s*:\s*$")
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")


def _parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """The description (the text before the first section) and each ``Args:`` entry of a
    Google-style docstring."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    desc: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    arg_indent: int | None = None
    for line in lines:
        m = _SECTION.match(line)
        if m:
            section = m.group(1).lower()
            current, arg_indent = None, None
            continue
        if section is None:
            desc.append(line)
            continue
        if section not in ("args", "arguments", "parameters") or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if arg_indent is None:
            arg_indent = indent
        am = _ARG_LINE.match(line.strip())
        if indent <= arg_indent and am:
            current = am.group(1).lstrip("*")
            args[current] = am.group(3).strip()
        elif current is not None:
            args[current] = (args[current] + " " + line.strip()).strip()
    return "\n".join(desc).strip(), args


def _strip_titles(schema: Any) -> Any:
    """pydantic's schema without its generated ``title`` strings (noise in a model's prompt)."""
    if isinstance(schema, dict):
        return {
            k: _strip_titles(v) for k, v in schema.items() if not (k == "title" and isinstance(v, str))
        }
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


def _injected(hint: Any) -> InjectedState | type[InjectedToolCallId] | None:
    if typing.get_origin(hint) is typing.Annotated:
        for meta in hint.__metadata__:
            if meta is InjectedState:
                return InjectedState()
            if isinstance(meta, InjectedState) or meta is InjectedToolCallId:
                return meta  # type: ignore[no-any-return]
    return None


def tool_content(result: Any) -> str | list[Any]:
    """What a tool's return value becomes as the content of its ``tool`` message: text as it is,
    pydantic models and JSON-able data as JSON, anything else as ``str()``; a list of content
    blocks (``[{"type": "text", ...}]``) is kept.

    Example:
        >>> tool_content({"temp": 21})
        '{"temp": 21}'
    """
    if isinstance(result, str):
        return result
    if result is None:
        return ""
    if isinstance(result, pydantic.BaseModel):
        return result.model_dump_json()
    if isinstance(result, list) and result and all(isinstance(b, dict) and "type" in b for b in result):
        return result
    if not isinstance(result, (dict, list, tuple, int, float, bool)):
        return str(result)
    try:
        return json.dumps(result, ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError):
        return str(result)


def _json_default(o: Any) -> Any:
    if isinstance(o, pydantic.BaseModel):
        return o.model_dump(mode="json")
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    return str(o)


class Tool:
    """A function a chat model can call: its name, description, JSON schema and the call itself.

    Made by :func:`tool`; still callable like the function it wraps. ``schema`` is what a chat
    model's ``bind_tools`` sends (the OpenAI tool format); :meth:`invoke` checks the model's
    arguments against it before calling.

    Attributes:
        name: the name the model calls it by.
        description: what it does (from the docstring), for the model.
        fn: the wrapped function (sync or async).
        args_schema: the pydantic model of its arguments.
        is_async: whether ``fn`` is a coroutine function.

    Example:
        >>> @tool
        ... def add(a: int, b: int) -> int:
        ...     '''Add two numbers.
        ...
        ...     Args:
        ...         a: the first number.
        ...         b: the second.
        ...     '''
        ...     return a + b
        >>> add.invoke({"a": 1, "b": 2})
        3
        >>> add.schema["function"]["parameters"]["properties"]["a"]
        {'description': 'the first number.', 'type': 'integer'}
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        args_schema: type[pydantic.BaseModel] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@tool needs a function, got {type(fn).__name__} {fn!r}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", None) or type(fn).__name__
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", self.name):
            raise ValueError(
                f"tool name {self.name!r}: chat APIs accept 1-64 letters, digits, '_' or '-'; pass tool(name=...)"
            )
        doc_desc, arg_docs = _parse_docstring(inspect.getdoc(fn))
        self.description = description if description is not None else doc_desc
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004
        self.injected: dict[str, InjectedState | type[InjectedToolCallId]] = {}
        self.args_schema = args_schema or self._build_schema(fn, arg_docs)
        self.__name__ = self.name
        self.__doc__ = getattr(fn, "__doc__", None)
        self._schema: dict[str, Any] | None = None

    def _build_schema(self, fn: Callable[..., Any], arg_docs: Mapping[str, str]) -> type[pydantic.BaseModel]:
        try:
            hints = typing.get_type_hints(fn, include_extras=True)
        except Exception as exc:
            raise TypeError(f"tool {self.name!r}: cannot read the type hints of {fn!r}: {exc}") from exc
        fields: dict[str, Any] = {}
        for p in inspect.signature(fn).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(
                    f"tool {self.name!r}: *{p.name} / **{p.name} cannot be described to a model; name each argument"
                )
            hint = hints.get(p.name, Any)
            inj = _injected(hint)
            if inj is not None:
                self.injected[p.name] = inj
                continue
            default = ... if p.default is p.empty else p.default
            fields[p.name] = (hint, pydantic.Field(default, description=arg_docs.get(p.name)))
        model_name = "".join(w.capitalize() for w in re.split(r"[_-]", self.name)) + "Args"
        return pydantic.create_model(  # type: ignore[call-overload,no-any-return]
            model_name, __config__=pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=True), **fields
        )

    # -- what the model sees ------------------------------------------------------------------------
    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments (an ``object`` schema)."""
        return dict(self.schema["function"]["parameters"])

    @property
    def schema(self) -> dict[str, Any]:
        """The tool in the OpenAI format:
        ``{"type": "function", "function": {"name", "description", "parameters"}}``."""
        if self._schema is None:
            params = _strip_titles(self.args_schema.model_json_schema())
            params.setdefault("properties", {})
            params.setdefault("type", "object")
            fn: dict[str, Any] = {"name": self.name, "description": self.description, "parameters": params}
            self._schema = {"type": "function", "function": fn}
        return self._schema

    # -- calling ------------------------------------------------------------------------------------
    def _kwargs(self, args: Any, state: Any, tool_call_id: str | None) -> dict[str, Any]:
        args = parse_arguments(self.name, args, tool_call_id)
        try:
            model = self.args_schema.model_validate(dict(args))
        except pydantic.ValidationError as exc:
            raise ToolArgumentsError(
                f"tool {self.name!r}: invalid arguments {_short(dict(args))}: {_reasons(exc)}",
                tool=self.name, tool_call_id=tool_call_id,
            ) from exc
        kwargs = {k: getattr(model, k) for k in type(model).model_fields}
        for k, inj in self.injected.items():
            if inj is InjectedToolCallId:
                kwargs[k] = tool_call_id
            else:
                field = inj.field  # type: ignore[union-attr]
                if field is None:
                    kwargs[k] = state
                elif isinstance(state, Mapping):
                    kwargs[k] = state.get(field)
                else:
                    kwargs[k] = getattr(state, field, None)
        return kwargs

    def invoke(self, args: Mapping[str, Any] | str | None = None, *, state: Any = None, tool_call_id: str | None = None) -> Any:
        """Check ``args`` (a dict, or the JSON text a model sends) and call the tool.

        An async tool is run to completion (on a private event loop, or on the running one
        through the engine's driver).

        Args:
            args: the arguments by name.
            state: what ``InjectedState`` parameters receive.
            tool_call_id: what an ``InjectedToolCallId`` parameter receives.

        Raises:
            ToolArgumentsError: the arguments are not a JSON object or do not fit the schema.
        """
        kwargs = self._kwargs(args, state, tool_call_id)
        if self.is_async:
            from agentgraph_nb.engine import run_sync

            return run_sync(self.fn(**kwargs), needs_loop=True)
        return self.fn(**kwargs)

    async def ainvoke(self, args: Mapping[str, Any] | str | None = None, *, state: Any = None, tool_call_id: str | None = None) -> Any:
        """Async :meth:`invoke`: a sync tool runs in a worker thread, so the event loop stays free."""
        kwargs = self._kwargs(args, state, tool_call_id)
        if self.is_async:
            return await self.fn(**kwargs)
        import asyncio

        return await asyncio.to_thread(self.fn, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped function directly (no checks), as if it were not a tool."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


def parse_arguments(name: str, args: Any, tool_call_id: str | None = None) -> dict[str, Any]:
    """A tool call's arguments as a dict: ``None`` is ``{}``, text is read as JSON, and anything
    but a JSON object is a :class:`~agentgraph_nb.errors.ToolArgumentsError` naming the tool.

    Example:
        >>> parse_arguments("add", '{"a": 1}')
        {'a': 1}
    """
    if args is None:
        return {}
    if isinstance(args, (str, bytes)):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError as exc:
            raise ToolArgumentsError(
                f"tool {name!r}: the arguments are not valid JSON ({exc}): {_short(args)}",
                tool=name, tool_call_id=tool_call_id,
            ) from exc
    if not isinstance(args, Mapping):
        raise ToolArgumentsError(
            f"tool {name!r}: the arguments must be a JSON object, got {type(args).__name__} {_short(args)}",
            tool=name, tool_call_id=tool_call_id,
        )
    return dict(args)


def _short(v: Any, n: int = 120) -> str:
    r = repr(v)
    return r if len(r) <= n else r[: n - 3] + "..."


def _reasons(exc: pydantic.ValidationError) -> str:
    parts = []
    for e in exc.errors(include_url=False)[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ())) or "(arguments)"
        parts.append(f"{loc}: {e.get('msg')}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(fn: Callable[..., Any], /, *, name: str | None = ..., description: str | None = ...,
         args_schema: type[pydantic.BaseModel] | None = ...) -> Tool: ...
@overload
def tool(name: str, /, *, description: str | None = ...,
         args_schema: type[pydantic.BaseModel] | None = ...) -> Callable[[Callable[..., Any]], Tool]: ...
@overload
def tool(*, name: str | None = ..., description: str | None = ...,
         args_schema: type[pydantic.BaseModel] | None = ...) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | str | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    args_schema: type[pydantic.BaseModel] | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a plain function (sync or async) a :class:`Tool`.

    The name is the function's, the description the docstring's text before its sections, and
    the arguments' JSON schema comes from the type hints (anything pydantic understands:
    ``Literal``, ``list[str]``, models, ``Annotated[int, Field(ge=0)]``, defaults) with each
    argument's description from the docstring's ``Args:`` section.

    Forms: ``@tool``, ``@tool("name")``, ``@tool(name=..., description=...)``,
    ``tool(fn, ...)``.

    Example:
        >>> from typing import Literal
        >>> @tool
        ... def weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        ...     '''Current weather in a city.
        ...
        ...     Args:
        ...         city: the city's name, e.g. "Paris".
        ...     '''
        ...     return f"18 {unit} and sunny in {city}"
        >>> weather.schema["function"]["description"]
        'Current weather in a city.'
        >>> weather.invoke('{"city": "Oslo"}')
        '18 C and sunny in Oslo'
    """
    if isinstance(fn, Tool):
        return fn
    if isinstance(fn, str):
        name, fn = fn, None
    if fn is None:
        def deco(f: Callable[..., Any]) -> Tool:
            return Tool(f, name=name, description=description, args_schema=args_schema)

        return deco
    return Tool(fn, name=name, description=description, args_schema=args_schema)


class LangChainTool(Tool):
    """A LangChain tool (``langchain_core.tools.BaseTool``, e.g. from ``langchain_core``'s
    ``@tool`` or a community toolkit) used as one of ours: its OpenAI schema comes from
    ``langchain_core``, and calls go to its ``invoke``/``ainvoke``, which check the arguments.
    Made by :func:`as_tool` (so ``ToolNode`` and ``create_react_agent`` take such tools as they
    are); ``langchain_core`` is imported only then.

    Attributes:
        tool: the LangChain tool.
    """

    def __init__(self, lc_tool: Any) -> None:
        with requires_extra("LangChain tools"):
            from langchain_core.utils.function_calling import convert_to_openai_tool

        self.tool = lc_tool
        self.fn = lc_tool
        self.name = self.__name__ = str(lc_tool.name)
        self.description = str(getattr(lc_tool, "description", "") or "")
        self._schema = convert_to_openai_tool(lc_tool)
        # a StructuredTool made from an ``async def`` has only a coroutine
        self.is_async = getattr(lc_tool, "func", None) is None and getattr(lc_tool, "coroutine", None) is not None
        self.injected = {}
        self.args_schema = None  # type: ignore[assignment]

    def _call_error(self, exc: Exception, tool_call_id: str | None) -> Exception:
        if isinstance(exc, pydantic.ValidationError):
            return ToolArgumentsError(
                f"tool {self.name!r}: invalid arguments: {_reasons(exc)}", tool=self.name, tool_call_id=tool_call_id
            )
        return exc

    def invoke(self, args: Mapping[str, Any] | str | None = None, *, state: Any = None, tool_call_id: str | None = None) -> Any:
        """Call the LangChain tool's ``invoke`` with the checked arguments."""
        checked = parse_arguments(self.name, args, tool_call_id)
        try:
            return self.tool.invoke(checked)
        except pydantic.ValidationError as exc:
            raise self._call_error(exc, tool_call_id) from exc

    async def ainvoke(self, args: Mapping[str, Any] | str | None = None, *, state: Any = None, tool_call_id: str | None = None) -> Any:
        """Call the LangChain tool's ``ainvoke``."""
        checked = parse_arguments(self.name, args, tool_call_id)
        try:
            return await self.tool.ainvoke(checked)
        except pydantic.ValidationError as exc:
            raise self._call_error(exc, tool_call_id) from exc

    def __repr__(self) -> str:
        return f"LangChainTool({self.name!r})"


def _is_langchain_tool(obj: Any) -> bool:
    return type(obj).__module__.startswith("langchain") and hasattr(obj, "args_schema") and hasattr(obj, "invoke")


def as_tool(obj: Any) -> Tool:
    """A tool from a :class:`Tool`, an object that behaves like one (``name``, ``schema``,
    ``invoke``/``ainvoke``: e.g. an MCP tool), a LangChain tool, or a plain function."""
    if isinstance(obj, Tool):
        return obj
    if _is_langchain_tool(obj):
        return LangChainTool(obj)
    if hasattr(obj, "schema") and hasattr(obj, "name") and (hasattr(obj, "invoke") or hasattr(obj, "ainvoke")):
        return obj  # type: ignore[no-any-return]
    if callable(obj):
        return Tool(obj)
    raise TypeError(f"not a tool: {type(obj).__name__} {obj!r} (pass @tool functions or plain functions)")

