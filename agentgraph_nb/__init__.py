"""agentgraph_nb."""
