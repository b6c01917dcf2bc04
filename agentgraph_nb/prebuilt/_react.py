"""``create_react_agent``: the ReAct loop (model -> tools -> model ... -> END) as a normal
compiled graph, so the GraphView, the Debugger, checkpoints and interrupts work on it as on any
other graph."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from typing_extensions import NotRequired, TypedDict

from agentgraph_nb.constants import END, START
from agentgraph_nb.messages import Message, add_messages, convert_message, convert_messages

if TYPE_CHECKING:
    from agentgraph_nb.graph.compiled import CompiledGraph

__all__ = ["AgentState", "create_react_agent"]


class AgentState(TypedDict):
    """The state of :func:`create_react_agent`: the conversation, and the structured answer when
    a ``response_format`` was given."""

    messages: Annotated[list[Message], add_messages]
    structured_response: NotRequired[Any]


def _prompt_fn(prompt: Any) -> Callable[[Any, list[Message]], list[Message]]:
    """``prompt`` as ``(state, messages) -> what the model is sent``."""
    if prompt is None:
        return lambda state, msgs: msgs
    if isinstance(prompt, str):
        system = {"role": "system", "content": prompt}
        return lambda state, msgs: [system, *msgs]
    if isinstance(prompt, Mapping):
        first = dict(convert_message(dict(prompt)))  # type: ignore[arg-type]
        return lambda state, msgs: [first, *msgs]
    if callable(prompt):
        return lambda state, msgs: [m for m in convert_messages(prompt(state)) if isinstance(m, dict)]
    raise TypeError(
        f"create_react_agent: prompt must be a string (the system message), a message dict, or a "
        f"callable state -> messages; got {type(prompt).__name__} {prompt!r}"
    )


def _as_message(out: Any, model: Any) -> Message:
    """A model's answer as an assistant message dict (a string or LangChain message is
    converted)."""
    if isinstance(out, str):
        return {"role": "assistant", "content": out}
    msg = out if isinstance(out, dict) else convert_message(out)
    if not isinstance(msg, dict) or msg.get("role") != "assistant":
        raise TypeError(
            f"create_react_agent: the model {model!r} returned {type(out).__name__} {out!r}; a chat model's "
            "invoke() must return one assistant message ({'role': 'assistant', ...})"
        )
    return msg


def _messages(state: Any) -> list[Message]:
    msgs = state["messages"] if isinstance(state, Mapping) else state.messages
    return list(msgs)


class _ModelNode:
    """The agent node: sends the (prompted) conversation to the model and appends its answer.
    Async when the model has an async ``ainvoke`` (so an async run never blocks its loop on it)."""

    def __init__(self, model: Any, prompt: Callable[[Any, list[Message]], list[Message]], name: str) -> None:
        self.model = model
        self.prompt = prompt
        self.__name__ = name

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(getattr(self.model, "ainvoke", None))

    def __call__(self, state: Any) -> Any:
        msgs = self.prompt(state, _messages(state))
        if self.is_async:
            return self._acall(msgs)
        return {"messages": [_as_message(self.model.invoke(msgs), self.model)]}

    async def _acall(self, msgs: list[Message]) -> dict[str, Any]:
        return {"messages": [_as_message(await self.model.ainvoke(msgs), self.model)]}


class _StructuredNode:
    """After the loop: asks the model for the final answer in ``response_format``'s shape."""

    def __init__(self, runnable: Any, prompt: Callable[[Any, list[Message]], list[Message]]) -> None:
        self.runnable = runnable
        self.prompt = prompt
        self.__name__ = "generate_structured_response"

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(getattr(self.runnable, "ainvoke", None))

    def __call__(self, state: Any) -> Any:
        msgs = self.prompt(state, _messages(state))
        if self.is_async:
            return self._acall(msgs)
        return {"structured_response": self.runnable.invoke(msgs)}

    async def _acall(self, msgs: list[Message]) -> dict[str, Any]:
        return {"structured_response": await self.runnable.ainvoke(msgs)}


def create_react_agent(
    model: Any,
    tools: Sequence[Any] | Any,
    *,
    prompt: str | Mapping[str, Any] | Callable[[Any], Any] | None = None,
    response_format: type | tuple[str, type] | None = None,
    state_schema: Any = None,
    checkpointer: Any = "memory",
    interrupt_before: Sequence[str] | None = None,
    interrupt_after: Sequence[str] | None = None,
    name: str = "react_agent",
    handle_tool_errors: Any = True,
) -> CompiledGraph:
    """A tool-calling agent as a compiled graph: ``agent`` (the model) -> ``tools`` (a
    :class:`~agentgraph_nb.tools.ToolNode`) -> ``agent`` ... until the model answers without tool
    calls -> END.

    Args:
        model: a chat model: ``invoke(messages)`` (and optionally ``ainvoke``) returning one
            assistant message dict. Its ``bind_tools(tools)`` is called when there are tools.
        tools: ``@tool`` functions, plain functions, tool-like objects (MCP tools), or a
            :class:`~agentgraph_nb.tools.ToolNode`.
        prompt: a string (sent as the system message first), a message dict (sent first), or a
            callable ``state -> messages`` returning everything the model is sent.
        response_format: a pydantic model: after the loop, ``model.with_structured_output(it)``
            is sent the conversation (without ``prompt``, as in LangGraph) and its answer lands in
            the state's ``structured_response``; ``(system_prompt, Model)`` sends that system
            message first.
        state_schema: the state schema (default :class:`AgentState`); it needs a ``messages``
            key merged by ``add_messages``.
        checkpointer: as for ``compile()`` (default in memory): with a ``thread_id`` a
            conversation continues across calls, and ``interrupt()`` in a tool can pause it.
        interrupt_before: nodes (``"agent"``, ``"tools"``) to pause before.
        interrupt_after: nodes to pause after.
        name: the graph's name.
        handle_tool_errors: the ToolNode's ``handle_errors`` (default: a failing tool becomes an
            error message to the model).

    Returns:
        The compiled graph.

    Raises:
        TypeError: ``tools`` were given but the model has no ``bind_tools``, or a
            ``response_format`` was given but it has no ``with_structured_output``.

    Example:
        >>> from agentgraph_nb.testing import ScriptedChatModel, tool_call
        >>> from agentgraph_nb.tools import tool
        >>> @tool
        ... def weather(city: str) -> str:
        ...     "Current weather in a city."
        ...     return "sunny"
        >>> model = ScriptedChatModel([[tool_call("weather", {"city": "Oslo"})], "It is sunny in Oslo."])
        >>> agent = create_react_agent(model, [weather], prompt="Be brief.")
        >>> agent.invoke({"messages": "Weather in Oslo?"})["messages"][-1]["content"]
        'It is sunny in Oslo.'
    """
    from agentgraph_nb.graph.state import StateGraph
    from agentgraph_nb.tools import ToolNode, tools_condition

    if isinstance(tools, ToolNode):
        tool_node: ToolNode | None = tools
    else:
        tool_list = list(tools or [])
        tool_node = ToolNode(tool_list, handle_errors=handle_tool_errors) if tool_list else None
    bound = model
    if tool_node is not None and tool_node.tools:
        bind = getattr(model, "bind_tools", None)
        if not callable(bind):
            raise TypeError(
                f"create_react_agent: the model {model!r} has no bind_tools(), so it cannot be offered the "
                f"tools {[t.name for t in tool_node.tools]}; use a chat model with bind_tools (OpenAIChat has it)"
            )
        bound = bind(tool_node.tools)
    structured = None
    structured_prompt = None
    if isinstance(response_format, tuple):
        if len(response_format) != 2 or not isinstance(response_format[0], str):
            raise TypeError(
                f"create_react_agent: response_format must be a pydantic model or (system_prompt, model), got {response_format!r}"
            )
        structured_prompt, response_format = response_format
    if response_format is not None:
        wso = getattr(model, "with_structured_output", None)
        if not callable(wso):
            raise TypeError(
                f"create_react_agent: response_format={getattr(response_format, '__name__', response_format)!r} needs "
                f"a model with with_structured_output(); {model!r} has none"
            )
        structured = wso(response_format)
    if state_schema is None:
        if response_format is not None:
            # the answer's class in the schema: the checkpoint serializer registers it from there
            make: Any = TypedDict  # called, not a class statement: the answer's class is a parameter
            state_schema = make(
                "AgentState",
                {"messages": Annotated[list[Message], add_messages], "structured_response": NotRequired[response_format]},  # type: ignore[valid-type]
            )
        else:
            state_schema = AgentState
    prompt_fn = _prompt_fn(prompt)

    g = StateGraph(state_schema, name=name)
    g.add_node("agent", _ModelNode(bound, prompt_fn, "agent"))
    g.add_edge(START, "agent")
    after = "generate_structured_response" if structured is not None else END
    if structured is not None:
        g.add_node("generate_structured_response", _StructuredNode(structured, _prompt_fn(structured_prompt)))
        g.add_edge("generate_structured_response", END)
    if tool_node is not None:
        tool_node.name = tool_node.__name__ = "tools"
        g.add_node("tools", tool_node)

        def route(state: Any) -> str:
            return "tools" if tools_condition(state) == "tools" else after

        route.__name__ = "tools_condition"
        g.add_conditional_edges("agent", route, ["tools", after])
        g.add_edge("tools", "agent")
    else:
        g.add_edge("agent", after)
    return g.compile(
        checkpointer=checkpointer,
        interrupt_before=interrupt_before,
        interrupt_after=interrupt_after,
    )
