"""MCP servers' tools as agentgraph_nb tools (extra ``mcp``): every call goes to the server
through its MCP session.

Two ways in:

* :func:`mcp_tools` starts a server over stdio and keeps its session on a background event loop
  of its own, so its tools work everywhere: ``invoke()`` in a script, ``await ainvoke()``, a
  notebook cell. Use it as a context manager (``with`` or ``async with``); leaving it stops the
  server.
* :func:`load_mcp_tools` wraps the tools of a ``ClientSession`` you opened yourself (any
  transport); their calls run on the session's event loop, so use them from async code on that
  loop (``await app.ainvoke(...)``).

Example:
    >>> from agentgraph_nb.tools.mcp import mcp_tools
    >>> with mcp_tools(["python", "my_server.py"]) as tools:                 # doctest: +SKIP
    ...     agent = create_react_agent(model, tools)
    ...     agent.invoke({"messages": "What is 2 + 3?"})
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent import futures
from typing import Any, TextIO

from agentgraph_nb._lazy import requires_extra
from agentgraph_nb.errors import ToolArgumentsError, ToolError
from agentgraph_nb.tools._tool import Tool, _strip_titles, parse_arguments

with requires_extra("agentgraph_nb.tools.mcp"):
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

__all__ = ["MCPServerError", "MCPTool", "MCPTools", "load_mcp_tools", "mcp_tools"]


class MCPServerError(ToolError):
    """An MCP server could not be started or answered a call with an error."""


def _field(obj: Any, *names: str) -> Any:
    """A field of an MCP result under its mcp 2.x name or its 1.x (camelCase) one."""
    for n in names:
        v = getattr(obj, n, None)
        if v is not None:
            return v
    return None


class MCPTool(Tool):
    """One tool of an MCP server; calling it sends ``tools/call`` through the session.

    Attributes:
        name: the name the model calls it by: the server's, with characters chat APIs refuse
            (anything but letters, digits, ``_`` and ``-``) as ``_``, at most 64 of them.
        server_name: the name the server lists (and is called with).
        description: as the server lists it.
        session: the MCP ``ClientSession`` the calls go through.
    """

    def __init__(self, session: Any, info: Any, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.session = session
        self.server_name = str(info.name)
        # chat APIs take 1-64 of [A-Za-z0-9_-]; MCP names may hold dots and be longer: the model
        # sees a safe name, the server is called by its own
        self.name = self.__name__ = re.sub(r"[^A-Za-z0-9_-]", "_", self.server_name)[:64] or "tool"
        self.description = str(getattr(info, "description", None) or "")
        params = _field(info, "input_schema", "inputSchema") or {}
        params = _strip_titles(dict(params))
        params.setdefault("type", "object")
        params.setdefault("properties", {})
        self._schema = {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": params}}
        self.fn = None  # type: ignore[assignment]
        self.is_async = True
        self.injected = {}
        self.args_schema = None  # type: ignore[assignment]
        self._loop = loop  # the session's own loop, when it runs on a background thread

    def _check(self, args: Any, tool_call_id: str | None) -> dict[str, Any]:
        args = parse_arguments(self.name, args, tool_call_id)
        params = self.schema["function"]["parameters"]
        missing = [k for k in params.get("required", []) if k not in args]
        unknown = [k for k in args if params.get("additionalProperties") is False and k not in params.get("properties", {})]
        if missing or unknown:
            parts = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + (
                [f"unknown {', '.join(map(repr, unknown))}"] if unknown else []
            )
            raise ToolArgumentsError(
                f"MCP tool {self.name!r}: invalid arguments {dict(args)!r}: {'; '.join(parts)}",
                tool=self.name, tool_call_id=tool_call_id,
            )
        return dict(args)

    async def _call(self, args: dict[str, Any], tool_call_id: str | None) -> Any:
        result = await self.session.call_tool(self.server_name, args)
        content = _field(result, "content") or []
        texts = []
        for block in content:
            text = getattr(block, "text", None)
            texts.append(text if isinstance(text, str) else json.dumps(block.model_dump(mode="json", exclude_none=True)))
        if _field(result, "is_error", "isError"):
            raise MCPServerError(
                f"MCP tool {self.name!r} failed: {' '.join(texts) or 'the server gave no reason'}",
                tool=self.name, tool_call_id=tool_call_id,
            )
        if texts:
            return "\n".join(texts)
        structured = _field(result, "structured_content", "structuredContent")
        return json.dumps(structured) if structured is not None else ""

    async def ainvoke(self, args: Mapping[str, Any] | str | None = None, *, state: Any = None, tool_call_id: str | None = None) -> Any:
        """Call the tool on the server (the result's text blocks, joined)."""
        checked = self._check(args, tool_call_id)
        loop = self._loop
        if loop is None:
            return await self._call(checked, tool_call_id)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._call(checked, tool_call_id), loop))

    def invoke(self, args: Mapping[str, Any] | str | None = None, *, state: Any = None, tool_call_id: str | None = None) -> Any:
        """Sync :meth:`ainvoke` (waits for the server's answer)."""
        checked = self._check(args, tool_call_id)
        loop = self._loop
        if loop is None:
            from agentgraph_nb.engine import run_sync

            return run_sync(self._call(checked, tool_call_id), needs_loop=True)
        return asyncio.run_coroutine_threadsafe(self._call(checked, tool_call_id), loop).result()

    def __call__(self, **kwargs: Any) -> Any:
        return self.invoke(kwargs)

    def __repr__(self) -> str:
        return f"MCPTool({self.name!r})"


async def load_mcp_tools(session: Any, *, loop: asyncio.AbstractEventLoop | None = None) -> list[MCPTool]:
    """The tools of an initialized MCP ``ClientSession``, as tools for ``ToolNode`` and
    ``create_react_agent`` (all pages of ``tools/list``).

    Example:
        >>> async with stdio_client(params) as (r, w), ClientSession(r, w) as session:   # doctest: +SKIP
        ...     await session.initialize()
        ...     tools = await load_mcp_tools(session)
    """
    out: list[MCPTool] = []
    cursor = None
    while True:
        if cursor is None:
            page = await session.list_tools()
        else:
            try:
                from mcp.types import PaginatedRequestParams

                page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
            except (ImportError, TypeError):
                page = await session.list_tools(cursor)  # mcp 1.x
        out.extend(MCPTool(session, info, loop=loop) for info in page.tools)
        cursor = _field(page, "next_cursor", "nextCursor")
        if not cursor:
            return out


def _default_errlog() -> TextIO:
    try:
        sys.stderr.fileno()
        return sys.stderr
    except Exception:  # a notebook's stream without a file descriptor
        return open(os.devnull, "w")


class MCPTools:
    """A stdio MCP server running for the block of a ``with`` / ``async with``, and its tools.

    Made by :func:`mcp_tools`. Its session lives on an event loop in a background thread, so
    the tools can be called from sync code, from any event loop and from worker threads.

    Attributes:
        command: the server's command line.
        tools: the server's tools (after the server started).
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        errlog: TextIO | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        if isinstance(command, str) or not command:
            raise ValueError(f"mcp_tools: command must be a list like ['python', 'server.py'], got {command!r}")
        self.command = [str(c) for c in command]
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.errlog = errlog
        self.startup_timeout = startup_timeout
        self.tools: list[MCPTool] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closing: asyncio.Event | None = None
        self._main: futures.Future[None] | None = None

    # -- life ---------------------------------------------------------------------------------------
    def start(self) -> list[MCPTool]:
        """Start the server and list its tools.

        Raises:
            MCPServerError: it did not start or answer within ``startup_timeout`` seconds.
        """
        if self._loop is not None:
            return self.tools
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name=f"mcp:{self.command[0]}", daemon=True)
        self._thread.start()
        ready: futures.Future[list[MCPTool]] = futures.Future()
        self._main = asyncio.run_coroutine_threadsafe(self._serve(ready), loop)
        try:
            self.tools = ready.result(self.startup_timeout)
        except BaseException as exc:
            self.close()
            raise MCPServerError(f"MCP server {' '.join(self.command)!r} did not start: {type(exc).__name__}: {exc}") from exc
        return self.tools

    async def _serve(self, ready: futures.Future[list[MCPTool]]) -> None:
        # one task opens and closes the session: anyio's cancel scopes must exit in the task that entered them
        self._closing = asyncio.Event()
        params = StdioServerParameters(
            command=self.command[0], args=self.command[1:], env=self.env, cwd=None if self.cwd is None else os.fspath(self.cwd)
        )
        try:
            async with stdio_client(params, errlog=self.errlog or _default_errlog()) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    tools = await load_mcp_tools(session, loop=asyncio.get_running_loop())
                    ready.set_result(tools)
                    await self._closing.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    def close(self) -> None:
        """Stop the server (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        closing = self._closing
        if closing is not None:
            loop.call_soon_threadsafe(closing.set)
        if self._main is not None:
            try:
                self._main.result(10)
            except BaseException:
                pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> list[MCPTool]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> list[MCPTool]:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.close)

    def __repr__(self) -> str:
        state = f"{len(self.tools)} tools" if self._loop is not None else "stopped"
        return f"MCPTools({self.command!r}, {state})"


def mcp_tools(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    errlog: TextIO | None = None,
    startup_timeout: float = 30.0,
) -> MCPTools:
    """Start an MCP server over stdio for the block of a ``with`` (or ``async with``) and give
    its tools.

    Args:
        command: the server's command line, e.g. ``[sys.executable, "server.py"]``.
        env: the server's environment (default: MCP's safe subset of this one).
        cwd: its working directory.
        errlog: where its stderr goes (default: this process's stderr).
        startup_timeout: seconds to wait for it to start and list its tools.

    Example:
        >>> with mcp_tools([sys.executable, "server.py"]) as tools:        # doctest: +SKIP
        ...     print([t.name for t in tools])
        ['add', 'search']
    """
    return MCPTools(command, env=env, cwd=cwd, errlog=errlog, startup_timeout=startup_timeout)
