"""agentgraph_nb: build, run and debug stateful agent graphs, in plain Python and in Jupyter.

Example:
    >>> from agentgraph_nb import StateGraph, START, END
    >>> g = StateGraph(dict, name="hello")
    >>> g.add_node("greet", lambda s: {"text": "hi"}).add_edge(START, "greet").add_edge("greet", END)
    >>> g.compile().invoke({})
    {'text': 'hi'}

In a notebook: ``%load_ext agentgraph_nb`` then the ``%%agentgraph`` cell magic.
"""

from __future__ import annotations

import logging
from typing import Any

from agentgraph_nb.constants import END, START
from agentgraph_nb.engine import caught_error, get_stream_writer, interrupt
from agentgraph_nb.errors import (
    AgentGraphError,
    AgentGraphWarning,
    CacheError,
    CacheKeyError,
    CheckpointConflictError,
    CheckpointError,
    ClusterUnreachableError,
    CompensationError,
    ErrorHandlerError,
    ExecutorError,
    ForEachInputError,
    GraphInterrupt,
    GraphRecursionError,
    GraphValidationError,
    GraphValidationWarning,
    InvalidInputError,
    InvalidUpdateError,
    LoopConditionError,
    LoopError,
    LoopLimitError,
    MissingDependencyError,
    NodeError,
    NodeImportError,
    NodeTimeoutError,
    PlacementError,
    ResourceError,
    StateMigrationError,
    StepTimeoutError,
    TaskCallError,
    ToolArgumentsError,
    ToolError,
    UnknownMessageError,
    UnknownToolError,
    UnpicklableStateError,
    node_failure,
)
from agentgraph_nb.graph.compiled import CompiledGraph
from agentgraph_nb.graph.session import DebugSession, StateDiff
from agentgraph_nb.graph.state import StateGraph
from agentgraph_nb.messages import REMOVE_ALL_MESSAGES, MessagesState, RemoveMessage, add_messages
from agentgraph_nb.types import (
    CachePolicy,
    CaughtError,
    Command,
    Event,
    Interrupt,
    NodeFailure,
    Overwrite,
    RetryPolicy,
    Send,
    SnapshotTask,
    StateSnapshot,
)

__version__ = "0.3.0.dev0"

# silent until the application configures logging (the library convention)
logging.getLogger("agentgraph_nb").addHandler(logging.NullHandler())

__all__ = [
    "END",
    "REMOVE_ALL_MESSAGES",
    "START",
    "AgentGraphError",
    "AgentGraphWarning",
    "CacheError",
    "CacheKeyError",
    "CachePolicy",
    "CaughtError",
    "CheckpointConflictError",
    "CheckpointError",
    "ClusterUnreachableError",
    "Command",
    "CompensationError",
    "CompiledGraph",
    "DebugSession",
    "ErrorHandlerError",
    "Event",
    "ExecutorError",
    "ForEachInputError",
    "GraphInterrupt",
    "GraphRecursionError",
    "GraphValidationError",
    "GraphValidationWarning",
    "Interrupt",
    "InvalidInputError",
    "InvalidUpdateError",
    "ItemError",
    "LoopConditionError",
    "LoopError",
    "LoopLimitError",
    "MemoryCheckpointer",
    "MessagesState",
    "MissingDependencyError",
    "NodeError",
    "NodeFailure",
    "NodeImportError",
    "NodeTimeoutError",
    "Overwrite",
    "PlacementError",
    "PostgresCheckpointer",
    "RedisCheckpointer",
    "Retention",
    "RemoveMessage",
    "Resource",
    "ResourceError",
    "RetryPolicy",
    "Runtime",
    "Send",
    "SqliteCheckpointer",
    "StateDiff",
    "StateMigrationError",
    "StateGraph",
    "Serializer",
    "SnapshotTask",
    "StateSnapshot",
    "StepTimeoutError",
    "TaskCallError",
    "ToolArgumentsError",
    "ToolError",
    "UnknownMessageError",
    "UnknownToolError",
    "UnpicklableStateError",
    "__version__",
    "add_messages",
    "caught_error",
    "entrypoint",
    "full_traceback",
    "get_resource",
    "get_runtime",
    "get_stream_writer",
    "inspect_store",
    "interrupt",
    "load_ipython_extension",
    "node_failure",
    "short_traceback",
    "short_tracebacks",
    "task",
]

_LAZY = {
    "MemoryCheckpointer": ("agentgraph_nb.checkpoint.memory", "MemoryCheckpointer"),
    "SqliteCheckpointer": ("agentgraph_nb.checkpoint.sqlite", "SqliteCheckpointer"),
    "PostgresCheckpointer": ("agentgraph_nb.checkpoint.postgres", "PostgresCheckpointer"),
    "RedisCheckpointer": ("agentgraph_nb.checkpoint.redis", "RedisCheckpointer"),
    "Retention": ("agentgraph_nb.checkpoint.base", "Retention"),
    "Serializer": ("agentgraph_nb.checkpoint.serde", "Serializer"),
    "inspect_store": ("agentgraph_nb.checkpoint.inspect", "inspect_store"),
    "full_traceback": ("agentgraph_nb._traceback", "full_traceback"),
    "short_traceback": ("agentgraph_nb._traceback", "short_traceback"),
    "short_tracebacks": ("agentgraph_nb._traceback", "short_tracebacks"),
    "entrypoint": ("agentgraph_nb.func", "entrypoint"),
    "ItemError": ("agentgraph_nb.graph._loops", "ItemError"),
    "Resource": ("agentgraph_nb.runtime", "Resource"),
    "Runtime": ("agentgraph_nb.runtime", "Runtime"),
    "get_resource": ("agentgraph_nb.runtime", "get_resource"),
    "get_runtime": ("agentgraph_nb.runtime", "get_runtime"),
    "task": ("agentgraph_nb.func", "task"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'agentgraph_nb' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext agentgraph_nb``: registers the ``%%agentgraph`` and ``%agentgraph`` magics and
    shows errors of runs as short tracebacks (``%tb`` prints the full chain)."""
    from agentgraph_nb._lazy import requires_extra

    with requires_extra("%load_ext agentgraph_nb"):
        from agentgraph_nb.notebook.magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext agentgraph_nb``."""
    from agentgraph_nb.notebook.magics import unload_ipython_extension as _unload

    _unload(ipython)
