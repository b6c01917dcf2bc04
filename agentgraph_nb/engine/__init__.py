"""The superstep engine: the compiled plan, the pure algorithm, the loop and its drivers."""

from agentgraph_nb.engine._loop import current_task

__all__: list[str] = ["current_task"]
