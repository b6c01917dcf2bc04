"""Multi-agent teams: ``create_supervisor`` (one agent picks who works next) and ``create_swarm``
(agents hand the conversation to each other), after langgraph-supervisor and langgraph-swarm.

Both return the uncompiled :class:`~agentgraph_nb.StateGraph` (compile it with the checkpointer
you want). Every agent is a node: a compiled graph (for instance a :func:`create_react_agent`)
becomes a subgraph with its own namespaced checkpoints, so an ``interrupt()`` deep inside an agent
pauses the whole team and the GraphView draws it as a cluster; a plain Python function
``state -> update`` works too. Handoffs are ``Command(goto=agent, graph=Command.PARENT)``
returned by a handoff tool (:func:`create_handoff_tool`) inside an agent subgraph, or a plain
``Command(goto=agent)`` from a function agent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

from typing_extensions import NotRequired, TypedDict

from agentgraph_nb.constants import END, START
from agentgraph_nb.messages import Message, add_messages
from agentgraph_nb.tools import InjectedState, InjectedToolCallId, Tool, tool
from agentgraph_nb.types import Command

__all__ = ["SupervisorState", "SwarmState", "create_handoff_tool", "create_supervisor", "create_swarm"]


class SupervisorState(TypedDict):
    """The state of :func:`create_supervisor`: the conversation every agent reads and appends to."""

    messages: Annotated[list[Message], add_messages]


class SwarmState(TypedDict):
    """The state of :func:`create_swarm`: the conversation and the agent that has it now (a
    later call on the same thread starts with that agent)."""

    messages: Annotated[list[Message], add_messages]
    active_agent: NotRequired[str]


def _handoff_name(agent_name: str) -> str:
    return f"transfer_to_{agent_name}"


def create_handoff_tool(agent_name: str, *, name: str | None = None, description: str | None = None,
                        active_key: str | None = None) -> Tool:
    """A tool that hands the conversation to ``agent_name``: called by a model inside an agent
    subgraph, it returns ``Command(goto=agent_name, graph=Command.PARENT, update=...)``, so the
    parent graph runs that agent next with the conversation so far and the tool's answer.

    Args:
        agent_name: the node of the parent graph to hand off to.
        name: the tool's name (default ``transfer_to_<agent_name>``).
        description: what the model is told (default "Ask agent '<agent_name>' for help.").
        active_key: a state key of the parent set to ``agent_name`` (``"active_agent"`` in a swarm).

    Example:
        >>> create_handoff_tool("billing").name
        'transfer_to_billing'
    """
    tool_name = name or _handoff_name(agent_name)

    def handoff(state: Annotated[Any, InjectedState()], tool_call_id: Annotated[str, InjectedToolCallId]) -> Command:
        msgs = list(state["messages"] if isinstance(state, Mapping) else state.messages)
        answer = {"role": "tool", "tool_call_id": tool_call_id, "name": tool_name,
                  "content": f"Successfully transferred to {agent_name}"}
        update: dict[str, Any] = {"messages": [*msgs, answer]}
        if active_key:
            update[active_key] = agent_name
        return Command(goto=agent_name, graph=Command.PARENT, update=update)

    handoff.__name__ = tool_name
    return tool(handoff, name=tool_name, description=description or f"Ask agent '{agent_name}' for help.")


def _agents(agents: Sequence[Any] | Mapping[str, Any], who: str) -> dict[str, Any]:
    """``{name: agent}``; each agent named by the mapping, its graph name or ``__name__``."""
    from agentgraph_nb.errors import GraphValidationError

    pairs = list(agents.items()) if isinstance(agents, Mapping) else [(None, a) for a in agents]
    if not pairs:
        raise GraphValidationError(f"{who}: no agents given; pass a list of compiled graphs or functions")
    out: dict[str, Any] = {}
    for i, (key, agent) in enumerate(pairs):
        if not callable(agent) and not hasattr(agent, "invoke"):
            raise GraphValidationError(
                f"{who}: agent {i} ({agent!r}) is neither a compiled graph nor a function state -> update"
            )
        agent_name = key or getattr(agent, "name", None) or getattr(agent, "__name__", None)
        if not isinstance(agent_name, str) or not agent_name or agent_name == "<lambda>":
            raise GraphValidationError(
                f"{who}: agent {i} ({agent!r}) has no name; give its graph a name "
                "(create_react_agent(..., name='researcher')) or pass a dict {name: agent}"
            )
        if agent_name in out:
            raise GraphValidationError(f"{who}: two agents are named {agent_name!r}; agent names must differ")
        out[agent_name] = agent
    return out


def create_supervisor(
    agents: Sequence[Any] | Mapping[str, Any],
    model: Any,
    *,
    tools: Sequence[Any] = (),
    prompt: Any = None,
    state_schema: Any = SupervisorState,
    supervisor_name: str = "supervisor",
    name: str = "supervisor_team",
) -> Any:
    """A team where a supervisor picks which agent works next, and each agent reports back to it.

    ``START -> supervisor -> (an agent -> supervisor)* -> END``. The supervisor is:

    - a chat model (``invoke`` / ``bind_tools``): a :func:`create_react_agent` subgraph offered a
      ``transfer_to_<agent>`` tool per agent (plus ``tools``); calling one hands off to that agent
      (``Command(graph=Command.PARENT)``); answering without a tool call ends the run.
    - a plain function ``state -> agent name | END``: it routes (no model needed).

    Args:
        agents: compiled graphs (named; e.g. ``create_react_agent(..., name="researcher")``) or
            functions ``state -> update`` (named by ``__name__``), or a dict ``{name: agent}``.
        model: the supervisor (see above).
        tools: more tools for a model supervisor.
        prompt: a model supervisor's system prompt (as for :func:`create_react_agent`).
        state_schema: the team's state (default :class:`SupervisorState`); it needs ``messages``
            merged by ``add_messages`` when the supervisor is a model.
        supervisor_name: the supervisor's node name.
        name: the team graph's name.

    Returns:
        The uncompiled ``StateGraph``: call ``.compile(checkpointer=...)``.

    Raises:
        GraphValidationError: no agents, an agent without a name, two agents with one name, or
            an agent named like the supervisor.

    Example:
        >>> def researcher(state): return {"messages": [("ai", "facts")]}
        >>> def writer(state): return {"messages": [("ai", "a report")]}
        >>> def route(state): return ["researcher", "writer", END][len(state["messages"]) - 1]
        >>> team = create_supervisor([researcher, writer], route).compile()
        >>> [m["content"] for m in team.invoke({"messages": "tides"})["messages"]]
        ['tides', 'facts', 'a report']
    """
    from agentgraph_nb.errors import GraphValidationError
    from agentgraph_nb.graph.state import StateGraph
    from agentgraph_nb.prebuilt._react import create_react_agent

    named = _agents(agents, "create_supervisor")
    if supervisor_name in named:
        raise GraphValidationError(
            f"create_supervisor: an agent is named {supervisor_name!r}, like the supervisor; rename it or pass "
            "supervisor_name=..."
        )
    names = list(named)
    g = StateGraph(state_schema, name=name)
    if model is not None and hasattr(model, "invoke"):
        handoffs = [create_handoff_tool(n) for n in names]
        sup: Any = create_react_agent(model, [*handoffs, *tools], prompt=prompt, name=supervisor_name,
                                      checkpointer=None)
    elif model is not None and callable(model):
        sup = _RouterNode(model, names, supervisor_name)
    else:
        raise TypeError(
            f"create_supervisor: model must be a chat model (with invoke), a function state -> agent name, or None; "
            f"got {type(model).__name__} {model!r}"
        )
    g.add_node(supervisor_name, sup, destinations=(*names, END))
    g.add_edge(START, supervisor_name)
    for n, agent in named.items():
        g.add_node(n, agent)
        g.add_edge(n, supervisor_name)
    return g


class _RouterNode:
    """A supervisor that is a plain function choosing the next agent (or END)."""

    def __init__(self, route: Callable[[Any], str], names: list[str], name: str) -> None:
        self.route = route
        self.names = names
        self.__name__ = name

    def __call__(self, state: Any) -> Command:
        choice = self.route(state)
        if choice in (END, "FINISH", None):
            return Command(goto=END)
        if choice not in self.names:
            from agentgraph_nb.errors import InvalidUpdateError, did_you_mean

            raise InvalidUpdateError(
                f"supervisor {self.__name__!r}: the route function chose {choice!r}, which is not an agent of the "
                f"team {self.names}; return an agent name or END.{did_you_mean(str(choice), self.names)}"
            )
        return Command(goto=choice)


def create_swarm(
    agents: Sequence[Any] | Mapping[str, Any],
    *,
    default_active_agent: str | None = None,
    state_schema: Any = SwarmState,
    name: str = "swarm",
) -> Any:
    """A team where agents hand the conversation to each other; the run starts with the agent
    that had it last on this thread (``state["active_agent"]``), or ``default_active_agent``.

    Give each model agent handoff tools: ``create_react_agent(model, [create_handoff_tool("bob",
    active_key="active_agent"), ...], name="alice")``. A function agent hands off by returning
    ``Command(goto="bob", update={..., "active_agent": "bob"})``. An agent that answers without
    handing off ends the run.

    Args:
        agents: compiled graphs (named) or functions, or a dict ``{name: agent}``.
        default_active_agent: who starts a new conversation (default: the first agent).
        state_schema: the team's state (default :class:`SwarmState`); it needs ``active_agent``.
        name: the swarm graph's name.

    Returns:
        The uncompiled ``StateGraph``: call ``.compile(checkpointer=...)``.

    Raises:
        GraphValidationError: no agents, an agent without a name, two agents with one name, or a
            ``default_active_agent`` that is not an agent.

    Example:
        >>> def alice(state): return Command(goto="bob", update={"messages": [("ai", "over to bob")], "active_agent": "bob"})
        >>> def bob(state): return {"messages": [("ai", "bob here")]}
        >>> app = create_swarm([alice, bob]).compile()
        >>> app.invoke({"messages": "hi"})["active_agent"]
        'bob'
    """
    from agentgraph_nb.errors import GraphValidationError, did_you_mean
    from agentgraph_nb.graph.state import StateGraph

    named = _agents(agents, "create_swarm")
    names = list(named)
    first = default_active_agent or names[0]
    if first not in named:
        raise GraphValidationError(
            f"create_swarm: default_active_agent {first!r} is not one of the agents {names}{did_you_mean(first, names)}"
        )
    g = StateGraph(state_schema, name=name)
    for n, agent in named.items():
        g.add_node(n, agent, destinations=(*[o for o in names if o != n], END))

    def route_to_active(state: Any) -> str:
        active = state.get("active_agent") if isinstance(state, Mapping) else getattr(state, "active_agent", None)
        return active if active in named else first

    route_to_active.__name__ = "route_to_active_agent"
    g.add_conditional_edges(START, route_to_active, names)
    return g
