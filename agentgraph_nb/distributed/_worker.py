"""What runs inside a Ray worker: one execution of a node's function, with what ``interrupt()``,
``get_stream_writer()`` and OpenTelemetry need there, its result sent back with where it ran.

The engine (retries, timeouts, merging, routing, checkpoints, events) stays with the driver; a
worker only calls the function. So the semantics are the local ones by construction.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Any

from agentgraph_nb.engine import Run
from agentgraph_nb.engine import TaskScratch as _Scratch
from agentgraph_nb.engine import current_task_var as _current
from agentgraph_nb.errors import GraphInterrupt, ParentCommand
from agentgraph_nb.types import CaughtError

__all__ = ["TaskContext", "run_node", "worker_info"]

_WORKER: dict[str, Any] | None = None


def worker_info() -> dict[str, Any]:
    """Where this process is: ``{"worker": "host:pid", "host", "pid", "node_id", "ip"}`` (once per process)."""
    global _WORKER
    if _WORKER is None:
        node_id = ip = ""
        try:
            import ray

            ctx = ray.get_runtime_context()
            node_id = ctx.get_node_id() or ""
            ip = ray.util.get_node_ip_address()
        except Exception:  # outside Ray (tests of this module)
            pass
        host = socket.gethostname()
        pid = os.getpid()
        _WORKER = {"worker": f"{host}:{pid}", "host": host, "pid": pid, "node_id": node_id, "ip": ip}
    return _WORKER


class TaskContext:
    """What the driver sends with a node execution (small: no state values)."""

    __slots__ = ("big", "carrier", "caught", "checkpoint_id", "custom", "ev_thread", "index", "live", "namespace",
                 "node", "planned_at", "resume_values", "run_id", "step", "thread_id")

    def __init__(self, run: Run, node: str, index: int, carrier: dict[str, str] | None, custom: bool,
                 big: tuple[str, ...], live: str | None = None) -> None:
        self.node = node
        self.index = index
        self.thread_id = run.thread_id
        self.planned_at = run.planned_at
        self.checkpoint_id = run.checkpoint_id
        self.resume_values = run.resume_values or None
        self.carrier = carrier
        self.custom = custom
        self.big = big  # input keys whose values travel as separate object-store arguments
        self.step = run.step
        self.run_id = run.run_id
        self.namespace = run.namespace
        self.ev_thread = run.ev_thread
        # the failure an error edge's handler handles (caught_error() reads it)
        arg = run.tasks[index][1] if 0 <= index < len(run.tasks) else None
        self.caught = arg if type(arg) is CaughtError else None
        self.live = live  # a watching executor's start-report actor (see _live.py), or None

    def __getstate__(self) -> tuple[Any, ...]:
        return tuple(getattr(self, k) for k in self.__slots__)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for k, v in zip(self.__slots__, state):
            setattr(self, k, v)


class _RemoteRun:
    """The parts of a :class:`Run` that ``interrupt()`` reads, in a worker."""

    __slots__ = ("asked_at", "checkpoint_id", "ev_thread", "namespace", "planned_at", "resume_values", "run_id",
                 "step", "sub_modes", "tasks", "thread_id")

    interrupt_id = Run.interrupt_id  # the same ids as the driver's

    def __init__(self, ctx: TaskContext) -> None:
        self.thread_id = ctx.thread_id
        self.planned_at = ctx.planned_at
        self.checkpoint_id = ctx.checkpoint_id
        self.resume_values = ctx.resume_values or {}
        self.asked_at: dict[str, int] = {}
        self.namespace = ctx.namespace
        self.ev_thread = ctx.ev_thread
        self.run_id = ctx.run_id
        self.step = ctx.step
        self.sub_modes = None
        # what caught_error() reads: the handled failure at this task's index
        self.tasks = [(None, None)] * ctx.index + [(None, ctx.caught)] if ctx.caught is not None else []

    @property
    def run(self) -> _RemoteRun:
        return self


class _BufferSink:
    """Collects ``get_stream_writer()`` items in a worker; the driver replays them."""

    __slots__ = ("custom", "items")

    def __init__(self) -> None:
        self.custom = True
        self.items: list[tuple[str, Any]] = []

    def emit(self, mode: str, value: Any) -> None:
        self.items.append((mode, value))


def run_node(fn: Any, inp: Any, ctx: TaskContext, *big: Any) -> tuple[Any, ...]:
    """The Ray task: ``fn(inp)`` (awaited when it is a coroutine). Returns ``(kind, value, worker,
    started, ended, custom_items)`` where kind is ``"ok"``, ``"raise"`` (an interrupt or a
    handoff to the parent: not errors) or ``"error"`` (the node's exception); an exception
    that cannot be pickled propagates (Ray carries its text)."""
    started = time.time()
    if ctx.live is not None:
        from agentgraph_nb.distributed._live import started as report_start

        report_start(ctx.live, worker_info())
    if big:
        inp = dict(inp)
        for k, v in zip(ctx.big, big):
            inp[k] = v
    scratch = _Scratch(_RemoteRun(ctx), ctx.node, ctx.index)  # type: ignore[arg-type]
    token = _current.set(scratch)
    sink = sink_token = otel_token = None
    if ctx.custom:
        from agentgraph_nb.engine import stream_sink_var as _sink

        sink = _BufferSink()
        sink_token = _sink.set(sink)  # type: ignore[arg-type]
    if ctx.carrier:
        otel_token = _attach_trace(ctx.carrier)
    try:
        out = fn(inp)
        if asyncio.iscoroutine(out):
            out = asyncio.run(out)
        kind = "ok"
    except (GraphInterrupt, ParentCommand) as exc:  # BaseExceptions: carried as values
        out, kind = exc, "raise"
    except Exception as exc:  # the node's own failure, sent back with where it ran (when it can travel)
        try:
            from ray import cloudpickle

            cloudpickle.dumps(exc)
        except Exception:
            raise exc from None  # Ray's own wrapper carries its text
        out, kind = exc, "error"
    finally:
        _current.reset(token)
        if sink_token is not None:
            from agentgraph_nb.engine import stream_sink_var as _sink

            _sink.reset(sink_token)
        if otel_token is not None:
            from opentelemetry import context

            context.detach(otel_token)
    return kind, out, worker_info(), started, time.time(), (sink.items if sink is not None else None)


def _attach_trace(carrier: dict[str, str]) -> Any:
    """Make the driver's node span the current context here, so spans the node's code makes
    (with the worker's own tracer provider) continue the run's trace."""
    try:
        from opentelemetry import context
        from opentelemetry.propagate import extract
    except ImportError:
        return None
    return context.attach(extract(carrier))
