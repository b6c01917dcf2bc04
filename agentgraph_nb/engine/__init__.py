"""The superstep engine: the compiled plan, the pure algorithm, the loop and its drivers.

This package is the engine's whole surface: the builder (``agentgraph_nb.graph``) hands it plain
data (:class:`GraphDef`) and everything above it (the compiled graph, subgraphs, the functional
API, chat models, tools, the node library) imports from here, never from the private modules.
The engine itself imports nothing of the builder.
"""

from agentgraph_nb.engine._algo import NOARG, apply_writes, normalize_result, resolve_targets
from agentgraph_nb.engine._cache import NodeCache, code_version
from agentgraph_nb.engine._loop import _EMPTY as EMPTY_SLOT
from agentgraph_nb.engine._loop import (
    ERROR_WRITE,
    INTERRUPT_KEY,
    INTERRUPT_WRITE,
    RESUME_WRITE,
    Run,
    current_task,
    find_scratch,
    interrupt,
    interrupt_scope,
    run_loop,
    stream_run,
)
from agentgraph_nb.engine._loop import _current as current_task_var
from agentgraph_nb.engine._loop import _freeze as freeze_barriers
from agentgraph_nb.engine._loop import _route as route_node
from agentgraph_nb.engine._loop import _Scratch as TaskScratch
from agentgraph_nb.engine._plan import BranchDef, GraphDef, NodeDef, Plan, PNode
from agentgraph_nb.engine._recover import caught_error, compensate_failed, saga_progress
from agentgraph_nb.engine._runner import _running_loop as running_loop
from agentgraph_nb.engine._runner import at_loop_close, is_private_loop, iterate_sync, run_sync
from agentgraph_nb.engine._scopes import interrupt_scopes
from agentgraph_nb.engine._stream import (
    LIVE_MODES,
    NS_ITEM,
    StreamClosed,
    get_stream_writer,
    live_stream,
    live_stream_async,
    message_metadata,
    report_llm_call,
    stream_sink,
    task_context,
    token_listener,
)
from agentgraph_nb.engine._stream import _sink as stream_sink_var

__all__: list[str] = [
    "EMPTY_SLOT",
    "ERROR_WRITE",
    "INTERRUPT_KEY",
    "INTERRUPT_WRITE",
    "LIVE_MODES",
    "NOARG",
    "NS_ITEM",
    "RESUME_WRITE",
    "StreamClosed",
    "TaskScratch",
    "BranchDef",
    "GraphDef",
    "NodeCache",
    "NodeDef",
    "PNode",
    "Plan",
    "Run",
    "apply_writes",
    "at_loop_close",
    "caught_error",
    "code_version",
    "compensate_failed",
    "current_task",
    "current_task_var",
    "find_scratch",
    "freeze_barriers",
    "get_stream_writer",
    "interrupt",
    "interrupt_scope",
    "interrupt_scopes",
    "is_private_loop",
    "iterate_sync",
    "live_stream",
    "live_stream_async",
    "message_metadata",
    "normalize_result",
    "report_llm_call",
    "resolve_targets",
    "route_node",
    "running_loop",
    "run_loop",
    "run_sync",
    "saga_progress",
    "stream_run",
    "stream_sink",
    "stream_sink_var",
    "task_context",
    "token_listener",
]
