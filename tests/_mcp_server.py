"""A tiny MCP server for tests/test_mcp.py, run over stdio with ``sys.executable``.

Its tools: ``add`` (sync), ``slow_echo`` (async, sleeps: parallel calls overlap), ``fail``
(raises, so the server answers with an error result), ``files.count`` (a dotted name), ``pid`` (the server's process id: the
calls really reach this process).
"""

from __future__ import annotations

import asyncio
import os

try:  # mcp 2.x
    from mcp.server.mcpserver import MCPServer as _Server
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP as _Server
    from mcp.server.fastmcp.exceptions import ToolError

server = _Server("agentgraph-test", log_level="ERROR")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
async def slow_echo(text: str, seconds: float = 0.5) -> str:
    """Echo the text after a pause."""
    await asyncio.sleep(seconds)
    return text


@server.tool()
def fail(reason: str) -> str:
    """Always fails with the given reason (sent back to the client as an error result)."""
    raise ToolError(reason)


@server.tool(name="files.count")
def files_count(names: list[str]) -> int:
    """How many names (a dotted tool name, as MCP allows and chat APIs do not)."""
    return len(names)


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


if __name__ == "__main__":
    server.run("stdio")
