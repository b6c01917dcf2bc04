"""OpenTelemetry traces of runs: one span per run, per superstep and per node execution.

``instrument(app)`` (extra ``otel``) turns the engine's events into spans
``agentgraph.run <graph>`` -> ``agentgraph.step <n>`` -> ``agentgraph.node <name>`` (-> ``ray.task
<name>`` for an execution on a Ray worker, whose code sees the node's span as its current one): retries,
interrupts and checkpoints are span events, failures are recorded exceptions with an ERROR
status, and chat-model calls (``llm_end``) add ``gen_ai.*`` usage attributes and an event to
the node that made them. Attributes: ``agentgraph.graph``, ``.node``, ``.step``, ``.thread_id``,
``.run_id``, ``.task_id``, ``.attempt``, ``.namespace``.

A run's span is a child of whatever span is current when the run starts (an HTTP request's, a
test's), and while a node runs its span is the current one, so spans that the node's own code
makes (an instrumented HTTP client, a database driver) nest under it. The spans go to the
global tracer provider unless one is given, so any exporter (OTLP, console, in-memory) works.
Nothing is imported and nothing is paid until ``instrument`` is called; ``uninstrument()`` (or
leaving the ``with`` block) stops it.

Example:
    >>> from agentgraph_nb.observe.otel import instrument          # doctest: +SKIP
    >>> with instrument(app):                                      # doctest: +SKIP
    ...     app.invoke({"question": "..."})
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agentgraph_nb._lazy import requires_extra

if TYPE_CHECKING:
    from agentgraph_nb.types import Event

__all__ = ["Instrumentation", "instrument"]

logger = logging.getLogger("agentgraph_nb.observe")

_SCOPE = "agentgraph_nb"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("agentgraph_nb")
    except Exception:  # an uninstalled checkout
        return "0"


class _Open:
    """A node span being recorded, and the context token that made it current."""

    __slots__ = ("node", "span", "thread", "token", "tokens_in", "tokens_out")

    def __init__(self, node: str, span: Any, token: Any, thread: int) -> None:
        self.node = node
        self.span = span
        self.token = token
        self.thread = thread
        self.tokens_in = 0
        self.tokens_out = 0


class _RunSpans:
    """A run's open spans, and the contexts that parent its children (made once, not per child)."""

    __slots__ = ("namespace", "nodes", "run", "run_ctx", "step", "step_ctx", "step_no")

    def __init__(self, run: Any, namespace: str) -> None:
        self.run = run
        self.run_ctx: Any = None  # the run span as a context: what step spans start in
        self.step: Any = None
        self.step_ctx: Any = None  # the step span as a context: what its node spans start in
        self.step_no = -1
        self.nodes: dict[str, _Open] = {}
        self.namespace = namespace


class Instrumentation:
    """What :func:`instrument` returns: ``uninstrument()`` stops it (also as a context manager).

    Attributes:
        app: the instrumented graph.
        tracer: the OpenTelemetry tracer the spans come from.
    """

    def __init__(self, app: Any, tracer_provider: Any = None, *, record_inputs: bool = False) -> None:
        with requires_extra("agentgraph_nb.observe.otel"):
            from opentelemetry import context, trace
        self._trace = trace
        self._context = context
        self.app = app
        self.tracer = trace.get_tracer(_SCOPE, _version(), tracer_provider=tracer_provider)
        self._record_inputs = record_inputs
        self._graph = getattr(app, "name", "") or "graph"
        self._runs: dict[str, _RunSpans] = {}
        self._lock = threading.Lock()
        self._failed_once = False
        self._ok = trace.Status(trace.StatusCode.OK)
        # perf_counter (what events carry) -> the wall clock in ns (what spans carry)
        self._offset = time.time_ns() - time.perf_counter_ns()
        self._handlers: dict[str, Callable[[Event, _RunSpans], None]] = {  # of a run being traced
            "step_start": self._step_start, "node_start": self._node_start,
            "node_end": self._node_end, "node_error": self._node_error, "node_retry": self._node_retry,
            "llm_end": self._llm_end, "interrupt": self._interrupt, "checkpoint": self._checkpoint,
            "run_end": self._run_end, "node_worker": self._node_worker,
        }
        self._unsubscribe = app.listen(self._on_event)

    # -- life cycle -------------------------------------------------------------------------------
    def uninstrument(self) -> None:
        """Stop making spans (runs in progress end their open spans when they end)."""
        self._unsubscribe()

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstrument()

    def __repr__(self) -> str:
        return f"<otel Instrumentation of {self._graph!r}: {len(self._runs)} run(s) in progress>"

    # -- events -> spans --------------------------------------------------------------------------
    def _ns(self, ts: float) -> int:
        return int(ts * 1e9) + self._offset

    def _on_event(self, ev: Event) -> None:
        try:
            rs = self._runs.get(ev.run_id)
            if rs is not None:
                handler = self._handlers.get(ev.kind)
                if handler is not None:
                    handler(ev, rs)
            elif ev.kind == "run_start":
                self._run_start(ev)
        except Exception:  # tracing must never break a run; say so once, not per event
            if not self._failed_once:
                self._failed_once = True
                logger.exception("agentgraph_nb OpenTelemetry instrumentation failed on a %s event "
                                 "(further failures are not logged)", ev.kind)

    def _attrs(self, ev: Event, rs: _RunSpans | None = None) -> dict[str, Any]:
        a: dict[str, Any] = {"agentgraph.graph": self._graph, "agentgraph.run_id": ev.run_id}
        if ev.thread_id is not None:
            a["agentgraph.thread_id"] = ev.thread_id
        ns = rs.namespace if rs is not None else _namespace(ev)
        if ns:
            a["agentgraph.namespace"] = ns
        return a

    def _run_start(self, ev: Event) -> None:
        rs = _RunSpans(None, _namespace(ev))
        rs.run = self.tracer.start_span(
            f"agentgraph.run {self._graph}", start_time=self._ns(ev.ts), attributes=self._attrs(ev, rs),
        )  # parent: the span current in the caller
        if not rs.run.is_recording():  # not sampled (or a no-op tracer): the run costs nothing more
            return
        rs.run_ctx = self._trace.set_span_in_context(rs.run)
        with self._lock:
            self._runs[ev.run_id] = rs

    def _step_start(self, ev: Event, rs: _RunSpans) -> None:
        if rs.step is not None:
            rs.step.end(self._ns(ev.ts))
        attrs: dict[str, Any] = {"agentgraph.step": ev.step}
        if ev.data:
            attrs["agentgraph.nodes"] = [str(n) for n in ev.data]
        rs.step = self.tracer.start_span(
            f"agentgraph.step {ev.step}", context=rs.run_ctx, start_time=self._ns(ev.ts), attributes=attrs,
        )
        rs.step_ctx = self._trace.set_span_in_context(rs.step)
        rs.step_no = ev.step

    def _node_start(self, ev: Event, rs: _RunSpans) -> None:
        key = ev.task_id or ev.node
        if key in rs.nodes:  # a retry's next attempt: the same span
            rs.nodes[key].span.set_attribute("agentgraph.attempt", ev.attempt)
            return
        # graph, run and thread are on the run span, which every node span descends from
        attrs: dict[str, Any] = {"agentgraph.node": ev.node, "agentgraph.step": ev.step,
                                 "agentgraph.task_id": ev.task_id, "agentgraph.attempt": ev.attempt}
        if rs.namespace:
            attrs["agentgraph.namespace"] = rs.namespace
        if self._record_inputs:
            attrs["agentgraph.input"] = _short(ev.data)
        span = self.tracer.start_span(
            f"agentgraph.node {ev.node}", context=rs.step_ctx if rs.step is not None else rs.run_ctx,
            start_time=self._ns(ev.ts), attributes=attrs,
        )
        # the node's own spans (HTTP clients, drivers) nest under it: it is current while it runs
        token = self._context.attach(self._trace.set_span_in_context(span))
        rs.nodes[key] = _Open(ev.node, span, token, threading.get_ident())

    def _node_worker(self, ev: Event, rs: _RunSpans) -> None:
        """An execution that ran on a Ray worker: a ``ray.task <node>`` child span of the node's,
        over the seconds it ran there, with where (worker, host, pid, Ray node)."""
        op = rs.nodes.get(ev.task_id or ev.node)
        if op is None:
            return
        where = ev.data if isinstance(ev.data, dict) else {}
        end = self._ns(ev.ts)
        span = self.tracer.start_span(
            f"ray.task {ev.node}", context=self._trace.set_span_in_context(op.span),
            start_time=end - int(ev.duration * 1e9),
            attributes={"agentgraph.node": ev.node, "agentgraph.attempt": ev.attempt,
                        "ray.worker": str(where.get("worker", "")), "ray.node_id": str(where.get("node_id", "")),
                        "host.name": str(where.get("host", "")), "process.pid": int(where.get("pid", 0) or 0)},
        )
        span.end(end)

    def _close(self, rs: _RunSpans, key: str, end_ns: int | None) -> Any:
        op = rs.nodes.pop(key, None)
        if op is None:
            return None
        return self._end(op, end_ns)

    def _end(self, op: _Open, end_ns: int | None) -> Any:
        if op.thread == threading.get_ident():
            try:
                self._context.detach(op.token)
            except Exception:  # pragma: no cover - a token of another context: nothing to restore
                pass
        op.span.end(end_ns)
        return op.span

    def _node_end(self, ev: Event, rs: _RunSpans) -> None:
        op = rs.nodes.pop(ev.task_id or ev.node, None)
        if op is not None:
            op.span.set_status(self._ok)
            self._end(op, self._ns(ev.ts))

    def _node_error(self, ev: Event, rs: _RunSpans) -> None:
        op = rs.nodes.get(ev.task_id or ev.node)
        if op is not None:
            exc = ev.data
            if isinstance(exc, BaseException):
                op.span.record_exception(exc, timestamp=self._ns(ev.ts))
            op.span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            op.span.set_attribute("agentgraph.attempt", ev.attempt)
        self._close(rs, ev.task_id or ev.node, self._ns(ev.ts))

    def _node_retry(self, ev: Event, rs: _RunSpans) -> None:
        op = rs.nodes.get(ev.task_id or ev.node)
        if op is not None:
            exc = ev.data
            op.span.add_event("retry", {
                "agentgraph.attempt": ev.attempt, "exception.type": type(exc).__name__, "exception.message": str(exc),
            }, timestamp=self._ns(ev.ts))

    def _llm_end(self, ev: Event, rs: _RunSpans) -> None:
        current = self._trace.get_current_span()
        opens = list(rs.nodes.values())
        # the call was made inside the node, whose span is current there; else the newest of that node
        op = next((o for o in opens if o.span is current), None) or next(
            (o for o in reversed(opens) if o.node == ev.node), None)
        if op is None:
            return
        d = ev.data or {}
        model = str(d.get("model") or "")
        tin, tout = int(d.get("tokens_in") or 0), int(d.get("tokens_out") or 0)
        attrs: dict[str, Any] = {"gen_ai.request.model": model, "gen_ai.usage.input_tokens": tin,
                                 "gen_ai.usage.output_tokens": tout, "agentgraph.latency_s": float(d.get("latency") or 0.0)}
        if d.get("cost") is not None:
            attrs["agentgraph.cost"] = float(d["cost"])
        op.span.add_event("llm_end", attrs, timestamp=self._ns(ev.ts))
        op.tokens_in += tin
        op.tokens_out += tout
        op.span.set_attributes({"gen_ai.request.model": model, "gen_ai.usage.input_tokens": op.tokens_in,
                                "gen_ai.usage.output_tokens": op.tokens_out})

    def _interrupt(self, ev: Event, rs: _RunSpans) -> None:
        intrs = ev.data or ()
        rs.run.add_event("interrupt", {
            "agentgraph.node": ev.node, "agentgraph.step": ev.step,
            "agentgraph.interrupts": [_short(getattr(i, "value", i)) for i in intrs] or [""],
        }, timestamp=self._ns(ev.ts))
        for key, op in list(rs.nodes.items()):  # the nodes that asked: paused, not failed
            op.span.set_attribute("agentgraph.interrupted", True)
            self._close(rs, key, self._ns(ev.ts))

    def _checkpoint(self, ev: Event, rs: _RunSpans) -> None:
        target = rs.step if rs.step is not None else rs.run
        target.set_attribute("agentgraph.checkpoint_id", str(ev.data))  # the checkpoint the step wrote

    def _run_end(self, ev: Event, rs: _RunSpans) -> None:
        with self._lock:
            self._runs.pop(ev.run_id, None)
        end = self._ns(ev.ts)
        for key in list(rs.nodes):
            self._close(rs, key, end)
        if rs.step is not None:
            rs.step.end(end)
        d = ev.data or {}
        status = d.get("status", "")
        rs.run.set_attribute("agentgraph.status", status)
        rs.run.set_attribute("agentgraph.steps", ev.step)
        if status == "failed":
            err = d.get("error")
            if isinstance(err, BaseException):
                rs.run.record_exception(err, timestamp=end)
            rs.run.set_status(self._trace.Status(self._trace.StatusCode.ERROR, f"{type(err).__name__}: {err}"))
        else:
            rs.run.set_status(self._ok)
        rs.run.end(end)


def _namespace(ev: Any) -> str:
    ns = getattr(ev, "namespace", "") or ""
    return "|".join(ns) if isinstance(ns, tuple) else str(ns)


def _short(value: Any, limit: int = 500) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def instrument(app: Any, tracer_provider: Any = None, *, record_inputs: bool = False) -> Instrumentation:
    """Make OpenTelemetry spans of every run of ``app`` (run -> step -> node).

    Args:
        app: a compiled graph.
        tracer_provider: where the spans go; default: the global one
            (``opentelemetry.trace.set_tracer_provider``).
        record_inputs: put each node's input (its repr, cut at 500 characters) on its span as
            ``agentgraph.input``; off by default, since state often holds what traces should not.

    Returns:
        The instrumentation; ``uninstrument()`` or a ``with`` block stops it.

    Raises:
        MissingDependencyError: ``opentelemetry-api`` is not installed (``pip install
            "agentgraph_nb[otel]"``).
    """
    return Instrumentation(app, tracer_provider, record_inputs=record_inputs)
