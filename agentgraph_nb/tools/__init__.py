"""Tools a chat model can call: ``@tool`` functions, ``ToolNode`` to run the model's calls, and
``tools_condition`` to route to it.

MCP servers' tools load as tools through :mod:`agentgraph_nb.tools.mcp` (extra ``mcp``). Building
a tool's schema needs pydantic (extra ``pydantic``).

Example:
    >>> from agentgraph_nb.tools import tool, ToolNode
    >>> @tool
    ... def weather(city: str) -> str:
    ...     '''Current weather in a city.'''
    ...     return f"sunny in {city}"
    >>> call = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    >>> ToolNode([weather])({"messages": [{"role": "assistant", "content": None, "tool_calls": [call]}]})
    {'messages': [{'role': 'tool', 'tool_call_id': 'c1', 'name': 'weather', 'content': 'sunny in Oslo'}]}
"""

from agentgraph_nb.tools._node import ToolNode, tools_condition
from agentgraph_nb.tools._tool import InjectedState, InjectedToolCallId, Tool, tool, tool_content

__all__ = ["InjectedState", "InjectedToolCallId", "Tool", "ToolNode", "tool", "tool_content", "tools_condition"]
