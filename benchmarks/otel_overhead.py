"""What tracing and metrics cost per node: a 50-node chain run many times, with nothing
attached, with one listener that does nothing (what the engine pays to build and deliver
events: the floor under any event-based exporter), with OpenTelemetry spans (the real SDK's
TracerProvider and a span processor whose exporter drops everything: "the SDK's no-op
exporter"), with the OTel API alone (no SDK: its no-op tracer), with Prometheus metrics and
with the StatsD sink (to a port nobody listens on).

    python benchmarks/otel_overhead.py                 # 50 nodes x 200 runs, 7 rounds
    python benchmarks/otel_overhead.py --runs 100 --rounds 5

Configurations are interleaved round by round (the machine's load drifts); the median per-node
time of each is printed with its extra cost over the bare run, in µs per node. Target: OTel
spans add at most 5 µs per node.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any, TypedDict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agentgraph_nb import END, START, StateGraph  # noqa: E402

CONFIGS = ("nothing", "listener", "otel_api", "sdk_floor", "otel_sdk", "prometheus", "statsd")


class S(TypedDict, total=False):
    x: int


def build(n: int) -> Any:
    g = StateGraph(S, name="chain")
    prev = START
    for i in range(n):
        g.add_node(f"n{i}", lambda s: {"x": s.get("x", 0) + 1})
        g.add_edge(prev, f"n{i}")
        prev = f"n{i}"
    g.add_edge(prev, END)
    return g.compile(checkpointer=None)


def attach(app: Any, what: str) -> Any:
    if what == "listener":
        return app.listen(lambda ev: None)
    if what == "otel_api":  # no SDK installed or configured: the API's no-op tracer
        from opentelemetry.trace import NoOpTracerProvider

        from agentgraph_nb.observe.otel import instrument

        return instrument(app, NoOpTracerProvider()).uninstrument
    if what == "sdk_floor":  # the SDK's own price: one bare span per step and per node, nothing else
        tracer = _provider().get_tracer("floor")
        open_: dict[str, Any] = {}

        def bare(ev: Any) -> None:
            k = ev.kind
            if k == "step_start" or k == "node_start":
                open_[k] = tracer.start_span(k)
            elif k == "node_end":
                open_.pop("node_start").end()
                open_.pop("step_start").end()

        return app.listen(bare)
    if what == "otel_sdk":
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Drop(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Drop()))  # what production uses
        from agentgraph_nb.observe.otel import instrument

        return instrument(app, provider).uninstrument
    if what == "prometheus":
        from prometheus_client import CollectorRegistry

        from agentgraph_nb.observe import prometheus

        return prometheus.instrument(app, CollectorRegistry()).uninstrument
    if what == "statsd":
        from agentgraph_nb.observe import statsd

        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return statsd.instrument(app, port=port).uninstrument
    return lambda: None


def _provider() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    return provider


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=50)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    app = build(args.nodes)
    per_node: dict[str, list[float]] = {c: [] for c in CONFIGS}
    for c in CONFIGS:  # warm-up: imports and first spans
        stop = attach(app, c)
        app.invoke({})
        stop()
    for _ in range(args.rounds):
        for c in CONFIGS:
            stop = attach(app, c)
            t = time.perf_counter()
            for _ in range(args.runs):
                app.invoke({})
            dt = time.perf_counter() - t
            stop()
            per_node[c].append(dt / (args.runs * args.nodes) * 1e6)
    base = statistics.median(per_node["nothing"])
    print(f"{args.nodes}-node chain, {args.runs} runs x {args.rounds} rounds; µs per node (median of rounds)")
    print(f"{'configuration':<14}{'µs/node':>10}{'extra µs/node':>16}")
    for c in CONFIGS:
        med = statistics.median(per_node[c])
        print(f"{c:<14}{med:>10.2f}{med - base:>16.2f}")
    med = {c: statistics.median(v) for c, v in per_node.items()}
    print(f"\nOTel with the SDK: +{med['otel_sdk'] - base:.2f} µs/node over the bare run (target <= 5); the SDK's own "
          f"price for the same spans (sdk_floor) is +{med['sdk_floor'] - base:.2f}, so ours is "
          f"{(med['otel_sdk'] - base) / max(med['sdk_floor'] - base, 1e-9):.2f}x the floor")
    print(f"OTel with the API alone (no SDK, or an unsampled run): +{med['otel_api'] - base:.2f} µs/node")


if __name__ == "__main__":
    main()
