"""The graph builder (:class:`StateGraph`) and the compiled graph."""

from agentgraph_nb.graph.state import StateGraph

__all__ = ["StateGraph"]
