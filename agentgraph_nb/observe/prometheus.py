"""Prometheus metrics of runs (extra ``prometheus``): counters and latency histograms per graph
and node, and an optional ``/metrics`` endpoint.

``instrument(app)`` registers (once per registry) and keeps up to date:

====================================================  ==========================================
``agentgraph_runs_total{graph, status}``              runs ended: completed, interrupted, failed
``agentgraph_runs_in_flight{graph}``                  runs started and not ended
``agentgraph_run_duration_seconds{graph}``            histogram of run durations
``agentgraph_node_executions_total{graph, node, status}``  node executions: ok, error
``agentgraph_node_retries_total{graph, node}``        retried attempts
``agentgraph_node_duration_seconds{graph, node}``     histogram of node durations (last attempt)
``agentgraph_interrupts_total{graph, node}``          pauses for a human (``interrupt()``, breakpoints)
``agentgraph_llm_tokens_total{graph, node, kind}``    chat-model tokens, kind ``in``/``out``
``agentgraph_llm_cost_total{graph, node}``            cost, from your price table
====================================================  ==========================================

Several graphs share the metrics (the ``graph`` label tells them apart). ``serve(port)`` starts
``prometheus_client``'s HTTP server for ``/metrics`` on a thread.

Example:
    >>> from agentgraph_nb.observe import prometheus              # doctest: +SKIP
    >>> prometheus.instrument(app); server = prometheus.serve(9464)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from agentgraph_nb._lazy import requires_extra

if TYPE_CHECKING:
    from agentgraph_nb.types import Event

__all__ = ["MetricsServer", "PrometheusMetrics", "instrument", "serve"]

logger = logging.getLogger("agentgraph_nb.observe")

# seconds: from a fast node (tens of µs) to a slow model call or a long run
BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

_families: dict[tuple[int, str], dict[str, Any]] = {}
_families_lock = threading.Lock()


def _registry_families(registry: Any, prefix: str) -> dict[str, Any]:
    """The metric families of ``prefix`` in ``registry``, made on first use (a registry refuses
    a second family of the same name)."""
    from prometheus_client import Counter, Gauge, Histogram

    key = (id(registry), prefix)
    with _families_lock:
        fam = _families.get(key)
        if fam is None:
            p = prefix
            fam = {
                "runs": Counter(f"{p}_runs", "Runs ended, by outcome.", ["graph", "status"], registry=registry),
                "in_flight": Gauge(f"{p}_runs_in_flight", "Runs started and not yet ended.", ["graph"], registry=registry),
                "run_seconds": Histogram(f"{p}_run_duration_seconds", "Run durations.", ["graph"], buckets=BUCKETS,
                                         registry=registry),
                "executions": Counter(f"{p}_node_executions", "Node executions, by outcome.", ["graph", "node", "status"],
                                      registry=registry),
                "retries": Counter(f"{p}_node_retries", "Node attempts that failed and were retried.", ["graph", "node"],
                                   registry=registry),
                "node_seconds": Histogram(f"{p}_node_duration_seconds", "Node durations (the last attempt).",
                                          ["graph", "node"], buckets=BUCKETS, registry=registry),
                "interrupts": Counter(f"{p}_interrupts", "Runs paused for input, by the node that asked.",
                                      ["graph", "node"], registry=registry),
                "tokens": Counter(f"{p}_llm_tokens", "Chat-model tokens, kind in (prompt) or out (completion).",
                                  ["graph", "node", "kind"], registry=registry),
                "cost": Counter(f"{p}_llm_cost", "Chat-model cost, from the user's price table.", ["graph", "node"],
                                registry=registry),
            }
            _families[key] = fam
    return fam


class PrometheusMetrics:
    """What :func:`instrument` returns: ``uninstrument()`` stops counting (also a context
    manager); the metrics stay in the registry."""

    def __init__(self, app: Any, registry: Any = None, prefix: str = "agentgraph") -> None:
        with requires_extra("agentgraph_nb.observe.prometheus"):
            import prometheus_client
        self.app = app
        self.registry = registry if registry is not None else prometheus_client.REGISTRY
        self.graph = getattr(app, "name", "") or "graph"
        self._f = _registry_families(self.registry, prefix)
        self._nodes: dict[str, tuple[Any, Any, Any]] = {}  # node -> (ok counter, error counter, histogram)
        g = self.graph
        self._in_flight = self._f["in_flight"].labels(g)
        self._run_seconds = self._f["run_seconds"].labels(g)
        self._failed_once = False
        self._unsubscribe = app.listen(self._on_event)

    def uninstrument(self) -> None:
        self._unsubscribe()

    def __enter__(self) -> PrometheusMetrics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstrument()

    def _node(self, node: str) -> tuple[Any, Any, Any]:
        children = self._nodes.get(node)
        if children is None:
            f, g = self._f, self.graph
            children = (f["executions"].labels(g, node, "ok"), f["executions"].labels(g, node, "error"),
                        f["node_seconds"].labels(g, node))
            self._nodes[node] = children
        return children

    def _on_event(self, ev: Event) -> None:
        try:
            kind = ev.kind
            if kind == "node_end":
                ok, _, hist = self._node(ev.node)
                ok.inc()
                hist.observe(ev.duration)
            elif kind == "node_error":
                _, err, hist = self._node(ev.node)
                err.inc()
                hist.observe(ev.duration)
            elif kind == "node_retry":
                self._f["retries"].labels(self.graph, ev.node).inc()
            elif kind == "run_start":
                self._in_flight.inc()
            elif kind == "run_end":
                self._in_flight.dec()
                self._run_seconds.observe(ev.duration)
                self._f["runs"].labels(self.graph, (ev.data or {}).get("status", "completed")).inc()
            elif kind == "interrupt":
                self._f["interrupts"].labels(self.graph, ev.node or "").inc()
            elif kind == "llm_end":
                d = ev.data or {}
                self._f["tokens"].labels(self.graph, ev.node, "in").inc(int(d.get("tokens_in") or 0))
                self._f["tokens"].labels(self.graph, ev.node, "out").inc(int(d.get("tokens_out") or 0))
                if d.get("cost") is not None:
                    self._f["cost"].labels(self.graph, ev.node).inc(float(d["cost"]))
        except Exception:
            if not self._failed_once:
                self._failed_once = True
                logger.exception("agentgraph_nb Prometheus metrics failed on a %s event (not logged again)", ev.kind)


def instrument(app: Any, registry: Any = None, *, prefix: str = "agentgraph") -> PrometheusMetrics:
    """Count ``app``'s runs, node executions, retries, interrupts and model tokens, and time its
    runs and nodes, as Prometheus metrics.

    Args:
        app: a compiled graph.
        registry: a ``prometheus_client.CollectorRegistry``; default: the global ``REGISTRY``.
        prefix: the metric names' prefix.

    Raises:
        MissingDependencyError: ``prometheus_client`` is not installed (``pip install
            "agentgraph_nb[prometheus]"``).
    """
    return PrometheusMetrics(app, registry, prefix)


class MetricsServer:
    """A running ``/metrics`` endpoint: ``url``, ``port``, ``stop()``."""

    def __init__(self, server: Any, thread: threading.Thread, addr: str) -> None:
        self._server = server
        self._thread = thread
        self.port: int = server.server_address[1]
        self.url = f"http://{addr}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(port: int = 0, addr: str = "127.0.0.1", registry: Any = None) -> MetricsServer:
    """Serve ``/metrics`` on ``addr:port`` (0: a free port) from a daemon thread.

    Raises:
        MissingDependencyError: ``prometheus_client`` is not installed.
        OSError: the port is taken.
    """
    with requires_extra("agentgraph_nb.observe.prometheus.serve()"):
        import prometheus_client
    server, thread = prometheus_client.start_http_server(
        port, addr=addr, registry=registry if registry is not None else prometheus_client.REGISTRY)
    return MetricsServer(server, thread, addr)
