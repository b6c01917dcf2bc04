"""Ready-made graphs: ``create_react_agent``, a model that calls tools until it can answer."""

from agentgraph_nb.prebuilt._react import AgentState, create_react_agent

__all__ = ["AgentState", "create_react_agent"]
