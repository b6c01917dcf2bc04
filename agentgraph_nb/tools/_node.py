"""``ToolNode``: runs the tool calls of the model's last message, side by side, and answers each
with a ``tool`` message; ``tools_condition``: the router that sends the run there or to END."""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from typing import Any

from agentgraph_nb.constants import END
from agentgraph_nb.engine import interrupt_scope
from agentgraph_nb.errors import (
    GraphInterrupt,
    ToolArgumentsError,
    ToolError,
    UnknownToolError,
    did_you_mean,
)
from agentgraph_nb.messages import Message, convert_message
from agentgraph_nb.tools._tool import Tool, as_tool, tool_content
from agentgraph_nb.types import Command

__all__ = ["ToolNode", "tools_condition"]

_POOL_SIZE = 16  # tool calls of one message that may block side by side (threads start on demand)
_pool: futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _thread_pool() -> futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = futures.ThreadPoolExecutor(max_workers=_POOL_SIZE, thread_name_prefix="agentgraph_nb-tool")
        return _pool


def _messages_of(state: Any, key: str) -> list[Any]:
    if isinstance(state, list):
        return state
    if isinstance(state, Mapping):
        msgs = state.get(key)
    else:
        msgs = getattr(state, key, None)
    if msgs is None:
        raise ToolError(f"the state has no {key!r} key with the conversation (pass messages_key=... to name it)")
    return list(msgs) if not isinstance(msgs, list) else msgs


def _last_message(state: Any, key: str) -> Message | None:
    msgs = _messages_of(state, key)
    if not msgs:
        return None
    last = msgs[-1]
    return last if isinstance(last, dict) else convert_message(last)  # type: ignore[return-value]


def tools_condition(state: Any, messages_key: str = "messages") -> str:
    """Route to ``"tools"`` when the last message is an assistant message with tool calls, else
    to END: the conditional edge after a model node.

    Example:
        >>> g.add_conditional_edges("agent", tools_condition, ["tools", END])   # doctest: +SKIP
        >>> tools_condition({"messages": [{"role": "assistant", "content": "done"}]})
        '__end__'
    """
    last = _last_message(state, messages_key)
    if last is not None and last.get("role") == "assistant" and last.get("tool_calls"):
        return "tools"
    return END


class _FromCommand:
    """A tool call's result that is a ``Command`` (the tool updates the state itself)."""

    __slots__ = ("call", "command")

    def __init__(self, call: dict[str, Any], command: Command) -> None:
        self.call = call
        self.command = command


ErrorHandler = bool | str | Callable[[BaseException], str] | type[BaseException] | tuple[type[BaseException], ...]


class ToolNode:
    """A node that runs the tool calls of the last assistant message and returns
    ``{"messages": [one tool message per call, in the calls' order]}``.

    The calls run side by side: sync tools in worker threads, async tools as tasks (the node is
    async when any tool is). A tool that raises, a tool name the model made up, or arguments that
    are not JSON or do not fit the tool's schema become an error ``tool`` message back to the
    model (naming the tool and the problem), so the model can correct itself; the run goes on.

    A tool may return a :class:`~agentgraph_nb.Command` to update other state keys and choose
    what runs next (a hand-off to another agent): its ``update`` must answer the call with a
    ``tool`` message under ``messages`` (take the id with an ``InjectedToolCallId`` parameter).
    The node then returns one ``Command``: every call's messages in call order, the other keys of
    the tools' updates (two tools writing one key is an error), and all their ``goto`` targets.

    ``interrupt()`` inside a tool pauses the run; each call's interrupts have their own ids, so
    calls that pause side by side are answered with ``Command(resume={id: value, ...})``. On
    resume the node runs again, and with it every call of the message: keep tools that may run
    before a pause idempotent.

    Args:
        tools: ``@tool`` functions, plain functions (made tools), or tool-like objects (MCP tools).
        name: the node's name (what ``add_node(tool_node)`` uses), ``"tools"`` by default.
        handle_errors: ``True`` (default): every tool error becomes an error message; ``False``:
            they raise :class:`~agentgraph_nb.errors.ToolError` (chained to the tool's own
            exception), failing the run with a ``NodeError`` for this node; a string: the
            message to send instead of the error's text; a callable ``exc -> str``: makes the
            message; an exception type or tuple: only those become messages.
        messages_key: the state key holding the conversation.

    Example:
        >>> from agentgraph_nb import END, START, MessagesState, StateGraph
        >>> from agentgraph_nb.testing import ScriptedChatModel, tool_call
        >>> from agentgraph_nb.tools import tool
        >>> @tool
        ... def add(a: int, b: int) -> int:
        ...     "Add two integers."
        ...     return a + b
        >>> model = ScriptedChatModel([[tool_call("add", {"a": 2, "b": 3})], "5"]).bind_tools([add])
        >>> g = StateGraph(MessagesState).add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
        >>> g = g.add_node(ToolNode([add])).add_edge("tools", "agent").add_edge(START, "agent")
        >>> app = g.add_conditional_edges("agent", tools_condition, ["tools", END]).compile()
        >>> [m["content"] for m in app.invoke({"messages": "2 + 3?"})["messages"]]
        ['2 + 3?', None, '5', '5']
    """

    def __init__(
        self,
        tools: Sequence[Any],
        *,
        name: str = "tools",
        handle_errors: ErrorHandler = True,
        messages_key: str = "messages",
    ) -> None:
        self.tools: list[Tool] = [as_tool(t) for t in tools]
        self.tools_by_name: dict[str, Tool] = {}
        for t in self.tools:
            if t.name in self.tools_by_name:
                raise ValueError(f"ToolNode {name!r}: two tools are named {t.name!r}; tool names must be unique")
            self.tools_by_name[t.name] = t
        self.name = name
        self.__name__ = name
        self.handle_errors = handle_errors
        self.messages_key = messages_key

    @property
    def is_async(self) -> bool:
        """Whether the node runs as a coroutine (some tool is async)."""
        return any(t.is_async for t in self.tools)

    def __repr__(self) -> str:
        return f"ToolNode({[t.name for t in self.tools]!r}, name={self.name!r})"

    # -- the node -----------------------------------------------------------------------------------
    def __call__(self, state: Any) -> Any:
        """Run the calls (returns a coroutine when :attr:`is_async`)."""
        calls = self._calls(state)
        # made here, in the node, where interrupt() finds the running node; entered where each call runs
        scopes = [interrupt_scope(f"tool:{c['id'] or i}") for i, c in enumerate(calls)]
        if self.is_async:
            return self._arun(state, calls, scopes)
        if len(calls) == 1:
            outcomes = [self._outcome(lambda: self._run_one(state, calls[0], scopes[0]))]
        else:
            pool = _thread_pool()
            futs = [
                pool.submit(contextvars.copy_context().run, self._run_one, state, c, s)
                for c, s in zip(calls, scopes)
            ]
            outcomes = [self._outcome(f.result) for f in futs]
        return self._finish(state, outcomes)

    async def _arun(self, state: Any, calls: list[dict[str, Any]], scopes: list[interrupt_scope]) -> Any:
        import asyncio

        if len(calls) == 1:
            try:
                outcomes: list[Any] = [await self._arun_one(state, calls[0], scopes[0])]
            except BaseException as exc:
                if not isinstance(exc, (Exception, GraphInterrupt)):
                    raise
                outcomes = [exc]
        else:
            outcomes = list(
                await asyncio.gather(*(self._arun_one(state, c, s) for c, s in zip(calls, scopes)), return_exceptions=True)
            )
            for o in outcomes:  # cancellation and the like are not the tools' errors: pass them on
                if isinstance(o, BaseException) and not isinstance(o, (Exception, GraphInterrupt)):
                    raise o
        return self._finish(state, outcomes)

    @staticmethod
    def _outcome(get: Callable[[], Any]) -> Any:
        try:
            return get()
        except GraphInterrupt as gi:
            return gi
        except Exception as exc:
            return exc

    def _finish(self, state: Any, outcomes: list[Any]) -> Any:
        """The tool messages in call order; pauses for every interrupt raised, or raises the
        first error (by call order) when errors are not handled."""
        interrupts = [i for o in outcomes if isinstance(o, GraphInterrupt) for i in o.interrupts]
        if interrupts:
            raise GraphInterrupt(tuple(interrupts))
        for o in outcomes:
            if isinstance(o, BaseException):
                raise o
        if any(type(o) is _FromCommand for o in outcomes):
            return self._combine(outcomes)
        if isinstance(state, list):
            return outcomes
        return {self.messages_key: outcomes}

    def _combine(self, outcomes: list[Any]) -> Command:
        """One ``Command`` for a message whose tools returned some: every call's messages in call
        order, the other keys of their updates, and all their ``goto`` targets."""
        key = self.messages_key
        messages: list[Any] = []
        update: dict[str, Any] = {}
        writers: dict[str, str] = {}
        goto: list[Any] = []
        to_parent = False
        for o in outcomes:
            if type(o) is not _FromCommand:
                messages.append(o)
                continue
            call, cmd = o.call, o.command
            upd = dict(cmd.update or {})
            own = upd.pop(key, [])
            own = own if isinstance(own, list) else [own]
            if not any(isinstance(m, dict) and m.get("tool_call_id") == call["id"] for m in own):
                raise ToolError(
                    f"node {self.name!r}: tool {call['name']!r} returned a Command whose update has no tool message "
                    f"answering its call {call['id']!r}; add {{'role': 'tool', 'tool_call_id': tool_call_id, "
                    f"'content': ...}} to update[{key!r}] (take the id with an InjectedToolCallId parameter)",
                    tool=call["name"], tool_call_id=call["id"], node=self.name,
                )
            messages.extend(own)
            for k, v in upd.items():
                if k in writers:
                    raise ToolError(
                        f"node {self.name!r}: tools {writers[k]!r} and {call['name']!r} both update state key {k!r} "
                        "in one step; let one tool write it",
                        tool=call["name"], tool_call_id=call["id"], node=self.name,
                    )
                writers[k] = call["name"]
                update[k] = v
            g = cmd.goto
            goto.extend([g] if isinstance(g, str) or not isinstance(g, (list, tuple)) else g)
            to_parent = to_parent or cmd.graph == Command.PARENT
        # a handoff tool's Command(graph=PARENT) leaves this graph: the whole update goes with it
        return Command(update={key: messages, **update}, goto=goto, graph=Command.PARENT if to_parent else None)

    # -- one call -----------------------------------------------------------------------------------
    def _calls(self, state: Any) -> list[dict[str, Any]]:
        last = _last_message(state, self.messages_key)
        if last is None or last.get("role") != "assistant":
            what = "no messages" if last is None else f"a {last.get('role')!r} message"
            raise ToolError(
                f"ToolNode {self.name!r}: the conversation ends with {what}, not an assistant message with "
                "tool_calls; route to this node with tools_condition",
                node=self.name,
            )
        out = []
        for i, c in enumerate(last.get("tool_calls") or []):
            fn = c.get("function") or {}
            name = fn.get("name") if fn else c.get("name")  # OpenAI form, or LangChain's {"name", "args"}
            args = fn.get("arguments") if fn else c.get("args")
            out.append({"id": c.get("id") or f"call_{i}", "name": str(name), "args": args})
        return out

    def _prepare(self, state: Any, call: dict[str, Any]) -> tuple[Tool, Any]:
        name, cid = call["name"], call["id"]
        t = self.tools_by_name.get(name)
        if t is None:
            names = ", ".join(repr(n) for n in self.tools_by_name) or "none"
            raise UnknownToolError(
                f"there is no tool named {name!r}.{did_you_mean(name, self.tools_by_name)} The tools are: {names}",
                tool=name, tool_call_id=cid, node=self.name,
            )
        args = call["args"]
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except ValueError as exc:
                raise ToolArgumentsError(
                    f"the arguments of the call to tool {name!r} are not valid JSON ({exc}): {args[:200]!r}",
                    tool=name, tool_call_id=cid, node=self.name,
                ) from exc
        return t, args

    def _run_one(self, state: Any, call: dict[str, Any], scope: interrupt_scope) -> Message | _FromCommand:
        with scope:
            try:
                t, args = self._prepare(state, call)
                result = t.invoke(args, state=state, tool_call_id=call["id"])
            except GraphInterrupt:
                raise
            except Exception as exc:
                return self._error_message(call, exc)
        return self._message(call, result)

    async def _arun_one(self, state: Any, call: dict[str, Any], scope: interrupt_scope) -> Message | _FromCommand:
        with scope:
            try:
                t, args = self._prepare(state, call)
                if t.is_async:
                    result = await t.ainvoke(args, state=state, tool_call_id=call["id"])
                else:
                    import asyncio

                    # the scope is a context variable: enter it in the worker thread too
                    result = await asyncio.to_thread(self._invoke_in, scope, t, args, state, call["id"])
            except GraphInterrupt:
                raise
            except Exception as exc:
                return self._error_message(call, exc)
        return self._message(call, result)

    @staticmethod
    def _invoke_in(scope: interrupt_scope, t: Tool, args: Any, state: Any, cid: str) -> Any:
        with scope:
            return t.invoke(args, state=state, tool_call_id=cid)

    @staticmethod
    def _message(call: dict[str, Any], result: Any) -> Message | _FromCommand:
        if type(result) is Command:  # the tool updates the state (and may route) itself
            return _FromCommand(call, result)
        return {"role": "tool", "tool_call_id": call["id"], "name": call["name"], "content": tool_content(result)}

    def _error_message(self, call: dict[str, Any], exc: Exception) -> Message:
        """The error ``tool`` message for ``exc`` (or raise it as a ``ToolError``, as
        ``handle_errors`` says)."""
        name, cid = call["name"], call["id"]
        h = self.handle_errors
        handled = (
            h is True
            or isinstance(h, str)
            or (isinstance(h, type) and isinstance(exc, h))
            or (isinstance(h, tuple) and isinstance(exc, h))
            or (callable(h) and not isinstance(h, type))
        )
        if not handled:
            if isinstance(exc, ToolError):
                exc.node = exc.node or self.name
                exc.tool_call_id = exc.tool_call_id or cid
                raise exc
            raise ToolError(
                f"node {self.name!r}: tool {name!r} (call {cid!r}) raised {type(exc).__name__}: {exc}",
                tool=name, tool_call_id=cid, node=self.name,
            ) from exc
        if isinstance(h, str):
            text = h
        elif callable(h) and not isinstance(h, (bool, type, tuple)):
            text = str(h(exc))
        elif isinstance(exc, (UnknownToolError, ToolArgumentsError)):
            text = f"Error: {exc}. Fix the call and try again."
        elif isinstance(exc, ToolError):
            text = f"Error: {exc}"
        else:
            text = f"Error: tool {name!r} raised {type(exc).__name__}: {exc}. Fix the call or try another way."
        return {"role": "tool", "tool_call_id": cid, "name": name, "content": text}
