"""Ready-made graphs: ``create_react_agent``, a model that calls tools until it can answer;
``create_supervisor`` and ``create_swarm``, teams of agents that hand work to each other."""

from agentgraph_nb.prebuilt._react import AgentState, create_react_agent
from agentgraph_nb.prebuilt._teams import (
    SupervisorState,
    SwarmState,
    create_handoff_tool,
    create_supervisor,
    create_swarm,
)

__all__ = ["AgentState", "SupervisorState", "SwarmState", "create_handoff_tool", "create_react_agent",
           "create_supervisor", "create_swarm"]
