"""MCP tools against a real MCP server (tests/_mcp_server.py) started over stdio by the tests."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

from agentgraph_nb.prebuilt import create_react_agent
from agentgraph_nb.testing import ScriptedChatModel, tool_call
from agentgraph_nb.tools import ToolNode
from agentgraph_nb.tools.mcp import MCPServerError, MCPTool, load_mcp_tools, mcp_tools

SERVER = [sys.executable, str(Path(__file__).with_name("_mcp_server.py"))]


@pytest.fixture(scope="module")
def server_tools() -> Any:
    with open(os.devnull, "w") as quiet, mcp_tools(SERVER, errlog=quiet) as tools:
        yield tools


def by_name(tools: list[MCPTool]) -> dict[str, MCPTool]:
    return {t.name: t for t in tools}


def test_server_tools_load_with_their_schemas(server_tools: list[MCPTool]) -> None:
    tools = by_name(server_tools)
    assert set(tools) == {"add", "slow_echo", "fail", "files_count", "pid"}
    add = tools["add"].schema
    assert add["type"] == "function"
    assert add["function"]["name"] == "add" and add["function"]["description"] == "Add two integers."
    params = add["function"]["parameters"]
    assert params["required"] == ["a", "b"] and params["properties"]["a"]["type"] == "integer"


def test_calls_reach_the_server_process(server_tools: list[MCPTool]) -> None:
    tools = by_name(server_tools)
    assert tools["add"].invoke({"a": 2, "b": 40}) == "42"
    pid = int(tools["pid"].invoke({}))
    assert pid != os.getpid()
    os.kill(pid, 0)  # a live process of its own


def test_a_dotted_server_name_is_offered_safely_and_called_by_its_own(server_tools: list[MCPTool]) -> None:
    t = by_name(server_tools)["files_count"]
    assert t.server_name == "files.count" and t.schema["function"]["name"] == "files_count"
    assert t.invoke({"names": ["a", "b", "c"]}) == "3"


def test_tool_node_runs_mcp_calls_in_parallel_and_reports_errors(server_tools: list[MCPTool]) -> None:
    node = ToolNode(server_tools)
    assert node.is_async
    msg = {"role": "assistant", "content": None, "tool_calls": [
        tool_call("slow_echo", {"text": "one", "seconds": 0.5}, id="1"),
        tool_call("slow_echo", {"text": "two", "seconds": 0.5}, id="2"),
        tool_call("fail", {"reason": "disk full"}, id="3"),
        tool_call("add", {"a": 1}, id="4"),
        tool_call("add", {"a": "x", "b": 1}, id="5"),
    ]}
    t = time.perf_counter()
    out = asyncio.run(node({"messages": [msg]}))
    assert time.perf_counter() - t < 0.95  # the two half-second echoes overlapped
    got = [m["content"] for m in out["messages"]]
    assert got[:2] == ["one", "two"]
    assert got[2] == "Error: MCP tool 'fail' failed: Error executing tool fail: disk full"
    assert got[3] == "Error: MCP tool 'add': invalid arguments {'a': 1}: missing 'b'. Fix the call and try again."
    assert got[4].startswith("Error: MCP tool 'add' failed:") and "valid integer" in got[4]  # the server's own check


def test_react_agent_with_mcp_tools_sync_and_async(server_tools: list[MCPTool]) -> None:
    model = ScriptedChatModel([[tool_call("add", {"a": 20, "b": 22}, id="c")], "It is 42."])
    agent = create_react_agent(model, server_tools)
    out = agent.invoke({"messages": "20 + 22?"}, thread_id="t")
    assert [(m["role"], m["content"]) for m in out["messages"][-2:]] == [("tool", "42"), ("assistant", "It is 42.")]
    assert [t["function"]["name"] for t in model.tools_seen[0]] == ["add", "slow_echo", "fail", "files_count", "pid"]

    model = ScriptedChatModel([[tool_call("add", {"a": 1, "b": 1}, id="c")], "2"])
    out = asyncio.run(create_react_agent(model, server_tools).ainvoke({"messages": "1 + 1?"}))
    assert out["messages"][-2]["content"] == "2"


async def test_async_context_manager_and_load_mcp_tools_on_an_own_session() -> None:
    with open(os.devnull, "w") as quiet:
        async with mcp_tools(SERVER, errlog=quiet) as tools:
            assert await by_name(tools)["add"].ainvoke({"a": 1, "b": 2}) == "3"

    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=SERVER[0], args=SERVER[1:])
    with open(os.devnull, "w") as quiet:
        async with stdio_client(params, errlog=quiet) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = await load_mcp_tools(session)
            node = ToolNode(tools)
            out = await node({"messages": [{"role": "assistant", "content": None,
                                            "tool_calls": [tool_call("add", {"a": 5, "b": 6}, id="x")]}]})
            assert out["messages"][0]["content"] == "11"


def test_a_server_that_does_not_start_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "crash.py"
    bad.write_text("import sys; sys.exit(3)\n")
    with open(os.devnull, "w") as quiet, pytest.raises(MCPServerError, match="crash.py' did not start"):
        with mcp_tools([sys.executable, str(bad)], errlog=quiet, startup_timeout=20):
            pass
    with pytest.raises(ValueError, match="command must be a list"):
        mcp_tools("python server.py")  # type: ignore[arg-type]


def test_leaving_the_block_stops_the_server() -> None:
    with open(os.devnull, "w") as quiet:
        with mcp_tools(SERVER, errlog=quiet) as tools:
            pid = int(by_name(tools)["pid"].invoke({}))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the MCP server (pid {pid}) still runs after the block")
