"""The Ray executor against its floors, side by side in one run, on a real Ray cluster of two
nodes on this machine (``LocalRayCluster``: two ``ray start`` nodes of one CPU each, on loopback):

a) **Per-node overhead** of ``executor=RayExecutor`` against the floor, a bare Ray task round trip
   on the same cluster (``ray.get(f.remote(x))`` of a trivial function with the same input;
   ``await f.remote(x)`` for ``ainvoke``): per run of a one-node graph and per node of a chain of
   10, ``invoke`` and ``ainvoke``. Target: at most 1.5x the floor. Also the driver's CPU per node
   execution against the floor's per task (what bounds how many nodes one driver can dispatch).
b) **A CPU-bound batch** (each node burns ~50 ms of CPU) spread over both nodes against the same
   batch pinned to one node (a custom resource only the head offers): throughput ratio, target at
   least 1.8x; the same for bare Ray tasks (what this machine allows).
c) **OpenTelemetry**: ``instrument(app)`` with the SDK (``TracerProvider`` + ``BatchSpanProcessor``
   whose exporter drops everything): µs added per node on a local 50-node chain against the bare
   run (target at most 5), against the SDK's own price for the same spans made directly (same
   names, attributes, status, context), and for runs the sampler drops; under Ray, the driver's
   extra work per node (trace context into the task, the ``ray.task`` span).

    python -m benchmarks.ray_exec            # about a minute on a quiet machine (the cluster: 15-30 s)
    python -m benchmarks.ray_exec --quick    # fewer repetitions and a smaller batch (about 30 s)

Medians of interleaved repetitions (the configurations of a part take turns, so drift in the
shared machine's speed hits all alike). Prints a markdown table; ``ratio`` is ours over the floor
(lower is better) for times and ours over the one-node figure for throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypedDict

NAME = "ray_exec"
TITLE = "the Ray executor against a bare Ray task; 2 nodes against 1; OpenTelemetry per node"

HEAD = "agr_bench_head"  # a custom resource only the head node offers: pins a task to it


@dataclass
class Result:
    part: str
    case: str
    unit: str
    ours: float
    floor: float | None
    ratio: float | None
    target: str = ""
    passed: bool | None = None
    note: str = ""


# -- what the nodes and the bare tasks run (module level: Ray pickles them by value, see main) ----
class ChainState(TypedDict):
    x: int


class BurnState(TypedDict):
    x: int
    n: int


def inc(s: Any) -> dict[str, Any]:
    return {"x": s["x"] + 1}


def spin(n: int) -> int:
    """CPU work without allocation: ``n`` loop turns."""
    acc = 0
    for i in range(n):
        acc ^= i
    return acc


def burn(s: Any) -> dict[str, Any]:
    spin(s["n"])
    return {"x": s["x"] + 1}


def calibrate(seconds: float) -> int:
    """Loop turns of :func:`spin` taking about ``seconds`` of CPU here."""
    n = 200_000
    while True:
        t = time.process_time()
        spin(n)
        dt = time.process_time() - t
        if dt > 0.05:
            return max(1, int(n * seconds / dt))
        n *= 4


def chain(n: int, fn: Callable[..., Any] = inc, resources: dict[str, Any] | None = None, schema: Any = ChainState,
          name: str = "chain", checkpointer: Any = None) -> Any:
    from agentgraph_nb import END, START, StateGraph

    g = StateGraph(schema, name=name)
    for i in range(n):
        g.add_node(f"n{i}", fn, resources=resources)
        g.add_edge(START if i == 0 else f"n{i - 1}", f"n{i}")
    g.add_edge(f"n{n - 1}", END)
    return g.compile(checkpointer=checkpointer)


# -- timing ---------------------------------------------------------------------------------------
def interleaved(calls: dict[str, Callable[[], Any]], rounds: int, k: int) -> dict[str, tuple[float, float]]:
    """``{name: (median wall s, median process CPU s)}`` per call: ``rounds`` rounds, each running
    every entry ``k`` times in turn."""
    wall: dict[str, list[float]] = {n: [] for n in calls}
    cpu: dict[str, list[float]] = {n: [] for n in calls}
    gc.collect()
    for _ in range(rounds):
        for name, call in calls.items():
            t, c = time.perf_counter(), time.process_time()
            for _ in range(k):
                call()
            wall[name].append((time.perf_counter() - t) / k)
            cpu[name].append((time.process_time() - c) / k)
    return {n: (statistics.median(wall[n]), statistics.median(cpu[n])) for n in calls}


def _loop_call(coro_fn: Callable[[], Any], loop: asyncio.AbstractEventLoop) -> Callable[[], Any]:
    return lambda: loop.run_until_complete(coro_fn())


def _row(part: str, case: str, unit: str, ours: float, floor: float | None, *, max_ratio: float | None = None,
         min_ratio: float | None = None, max_ours: float | None = None, target: str = "", note: str = "") -> Result:
    """A row; ``ratio`` is ours over the floor. Passes when the ratio is within ``max_ratio`` /
    ``min_ratio`` and our figure within ``max_ours`` (those given)."""
    ratio = ours / floor if floor else None
    checks = []
    if max_ratio is not None:
        checks.append(ratio is not None and ratio <= max_ratio)
    if min_ratio is not None:
        checks.append(ratio is not None and ratio >= min_ratio)
    if max_ours is not None:
        checks.append(ours <= max_ours)
    passed = all(checks) if checks else None
    return Result(part, case, unit, ours, floor, ratio, target, passed, note)


# -- a) per-node overhead -------------------------------------------------------------------------
def overhead(ex: Any, rounds: int, k: int) -> list[Result]:
    import ray

    echo = ray.remote(inc)
    one, ten = chain(1), chain(10)
    x = {"x": 0}
    loop = asyncio.new_event_loop()

    async def floor_async() -> Any:
        return await echo.remote(x)

    calls: dict[str, Callable[[], Any]] = {
        "floor": lambda: ray.get(echo.remote(x)),
        "floor async": _loop_call(floor_async, loop),
        "run": lambda: one.invoke(x, executor=ex),
        "run async": _loop_call(lambda: one.ainvoke(x, executor=ex), loop),
        "chain": lambda: ten.invoke(x, executor=ex),
        "chain async": _loop_call(lambda: ten.ainvoke(x, executor=ex), loop),
    }
    assert calls["chain"]()["x"] == 10 and calls["chain async"]()["x"] == 10, "the chain did not run every node"
    for _ in range(20):  # warm: leased workers on both nodes, the package imported there
        for c in calls.values():
            c()
    t = interleaved(calls, rounds, k)
    loop.close()
    us = 1e6
    fl, fla = t["floor"][0] * us, t["floor async"][0] * us
    rows = [
        _row("a", "1-node run, invoke", "µs/run", t["run"][0] * us, fl, max_ratio=1.5, target="≤1.5x floor"),
        _row("a", "1-node run, ainvoke", "µs/run", t["run async"][0] * us, fla, max_ratio=1.5, target="≤1.5x floor"),
        _row("a", "per node of a 10-node chain, invoke", "µs/node", t["chain"][0] * us / 10, fl, max_ratio=1.5,
             target="≤1.5x floor"),
        _row("a", "per node of a 10-node chain, ainvoke", "µs/node", t["chain async"][0] * us / 10, fla,
             max_ratio=1.5, target="≤1.5x floor"),
        _row("a", "driver CPU per node execution (10-node chain, invoke)", "µs/node", t["chain"][1] * us / 10,
             t["floor"][1] * us, note="process CPU of the driver (all its threads) per node vs per bare task"),
        _row("a", "driver CPU per node execution (10-node chain, ainvoke)", "µs/node",
             t["chain async"][1] * us / 10, t["floor async"][1] * us),
    ]
    return rows


# -- b) a CPU-bound batch on 2 nodes vs 1 -------------------------------------------------------
def cpu_batch(ex: Any, n_tasks: int, rounds: int, turns: int) -> list[Result]:
    import ray

    both = chain(1, burn, {"num_cpus": 1}, BurnState, "burn")
    pinned = chain(1, burn, {"num_cpus": 1, "resources": {HEAD: 0.001}}, BurnState, "burn_pinned")
    bare = ray.remote(burn).options(num_cpus=1)
    bare_pinned = ray.remote(burn).options(num_cpus=1, resources={HEAD: 0.001})
    inputs = [{"x": i, "n": turns} for i in range(n_tasks)]

    def ours(app: Any) -> Callable[[], Any]:
        return lambda: app.batch(inputs, executor=ex, max_concurrency=n_tasks)

    def floor(f: Any) -> Callable[[], Any]:
        return lambda: ray.get([f.remote(x) for x in inputs])

    calls = {"ours 2": ours(both), "ours 1": ours(pinned), "floor 2": floor(bare), "floor 1": floor(bare_pinned)}
    for c in calls.values():
        c()
    # warm: until a batch runs on both Ray nodes (a node starts its first worker in seconds here,
    # longer under load; until then the head runs everything and the ratio says nothing)
    deadline = time.monotonic() + 120
    while True:
        before = {w: v["done"] for w, v in ex.workers.items()}
        both.batch(inputs, executor=ex, max_concurrency=n_tasks)
        used = {w: v["done"] - before.get(w, 0) for w, v in ex.workers.items() if v["done"] > before.get(w, 0)}
        nodes_used = {ex.workers[w]["node_id"] for w in used}
        if len(nodes_used) >= 2 or time.monotonic() > deadline:
            break
    spread = sorted(used.values())
    t = interleaved(calls, rounds, 1)
    tput = {name: n_tasks / t[name][0] for name in calls}
    per_task_ms = turns / calibrate_rate() * 1e3
    return [
        _row("b", f"CPU-bound batch ({n_tasks} runs of ~{per_task_ms:.0f} ms), 2 nodes vs 1", "runs/s",
             tput["ours 2"], tput["ours 1"], min_ratio=1.8, target="≥1.8x one node",
             note=f"one node: {tput['ours 1']:.1f} runs/s; the last warm-up batch ran {spread} per worker on "
                  f"{len(nodes_used)} Ray node(s)"),
        _row("b", "the same as bare Ray tasks, 2 nodes vs 1 (the machine's floor)", "tasks/s",
             tput["floor 2"], tput["floor 1"], note=f"one node: {tput['floor 1']:.1f} tasks/s"),
        _row("b", "ours against bare tasks on 2 nodes", "runs/s", tput["ours 2"], tput["floor 2"],
             note="throughput ratio (1.0x: the executor costs nothing next to 50 ms nodes)"),
    ]


_RATE: list[float] = []


def calibrate_rate() -> float:
    """Loop turns of :func:`spin` per CPU second here (measured once)."""
    if not _RATE:
        _RATE.append(calibrate(1.0))
    return _RATE[0]


# -- c) OpenTelemetry -----------------------------------------------------------------------------
def _sdk_provider(sampler: Any = None) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    return provider


def same_spans(app: Any, provider: Any) -> Callable[[], None]:
    """The SDK's price for the spans ``instrument`` makes, made directly by a bare listener: a run
    span, a step span (step number, node names) and a node span (node, step, task id, attempt;
    status OK; current while the node runs) per node. Returns the unsubscribe function."""
    from opentelemetry import context, trace

    tracer = provider.get_tracer("floor")
    ok = trace.Status(trace.StatusCode.OK)
    st: dict[str, Any] = {}

    def on(ev: Any) -> None:
        k = ev.kind
        if k == "node_start":
            sp = tracer.start_span(f"agentgraph.node {ev.node}", context=st["sctx"], start_time=int(ev.ts * 1e9),
                                   attributes={"agentgraph.node": ev.node, "agentgraph.step": ev.step,
                                               "agentgraph.task_id": ev.task_id, "agentgraph.attempt": ev.attempt})
            st["node"] = (sp, context.attach(trace.set_span_in_context(sp)))
        elif k == "node_end":
            sp, tok = st.pop("node")
            sp.set_status(ok)
            context.detach(tok)
            sp.end(int(ev.ts * 1e9))
        elif k == "step_start":
            if "step" in st:
                st.pop("step").end(int(ev.ts * 1e9))
            st["step"] = tracer.start_span(f"agentgraph.step {ev.step}", context=st["rctx"],
                                           start_time=int(ev.ts * 1e9),
                                           attributes={"agentgraph.step": ev.step,
                                                       "agentgraph.nodes": [str(n) for n in ev.data]})
            st["sctx"] = trace.set_span_in_context(st["step"])
        elif k == "run_start":
            st["run"] = tracer.start_span("agentgraph.run chain", start_time=int(ev.ts * 1e9),
                                          attributes={"agentgraph.graph": "chain", "agentgraph.run_id": ev.run_id})
            st["rctx"] = trace.set_span_in_context(st["run"])
        elif k == "run_end":
            if "step" in st:
                st.pop("step").end(int(ev.ts * 1e9))
            st["run"].set_status(ok)
            st.pop("run").end(int(ev.ts * 1e9))

    return app.listen(on)  # type: ignore[no-any-return]


def otel_local(rounds: int, runs: int, nodes: int = 50) -> list[Result]:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    from agentgraph_nb.observe.otel import instrument

    app = chain(nodes)
    provider, dropped = _sdk_provider(), _sdk_provider(ALWAYS_OFF)

    def attach(what: str) -> Callable[[], None]:
        if what == "instrument":
            return instrument(app, provider).uninstrument
        if what == "unsampled":
            return instrument(app, dropped).uninstrument
        if what == "same spans":
            return same_spans(app, provider)
        if what == "listener":
            return app.listen(lambda ev: None)  # type: ignore[no-any-return]
        return lambda: None

    configs = ("nothing", "listener", "same spans", "instrument", "unsampled")
    x = {"x": 0}
    per_node: dict[str, list[float]] = {c: [] for c in configs}
    for c in configs:  # warm-up: imports, first spans
        stop = attach(c)
        app.invoke(x)
        stop()
    for _ in range(rounds):
        for c in configs:
            stop = attach(c)
            gc.collect()
            t = time.perf_counter()
            for _ in range(runs):
                app.invoke(x)
            per_node[c].append((time.perf_counter() - t) / (runs * nodes) * 1e6)
            stop()
    med = {c: statistics.median(v) for c, v in per_node.items()}
    base = med["nothing"]
    added = {c: med[c] - base for c in configs}
    provider.shutdown()
    dropped.shutdown()
    return [
        _row("c", f"OTel SDK, instrument(app): added per node ({nodes}-node chain, local)", "µs/node",
             added["instrument"], added["same spans"], max_ours=5, target="≤5 µs added",
             note=f"floor: the same spans made directly with the SDK (+{added['same spans']:.1f}); "
                  f"the bare run: {base:.2f} µs/node"),
        _row("c", "OTel SDK, a run the sampler drops (ALWAYS_OFF): added per node", "µs/node",
             added["unsampled"], added["listener"],
             note=f"floor: a listener that does nothing (+{added['listener']:.1f}: the engine's events)"),
    ]


def otel_ray(ex: Any, rounds: int, k: int) -> list[Result]:
    """The driver's extra work per node under Ray when instrumented (the trace context sent with
    the task, the ``ray.task`` span of where it ran), timed directly, and a 10-node chain under
    Ray with and without ``instrument`` (end to end, workers included)."""
    from opentelemetry import context, trace

    from agentgraph_nb.distributed._ray import _record_trace, _trace_carrier
    from agentgraph_nb.observe.otel import instrument

    provider = _sdk_provider()
    trace.set_tracer_provider(provider)  # the ray.task spans go to the global provider
    tracer = provider.get_tracer("bench")
    where = {"worker": "h:1", "host": "h", "pid": 1, "node_id": "n" * 56, "ip": "127.0.0.1"}
    node = tracer.start_span("agentgraph.node n0")
    token = context.attach(trace.set_span_in_context(node))
    n = 20_000
    t = time.perf_counter()
    for _ in range(n):
        _trace_carrier()
        _record_trace("n0", where, 1.0, 2.0)
    extra = (time.perf_counter() - t) / n * 1e6
    context.detach(token)
    node.end()

    ten = chain(10)
    x = {"x": 0}
    inst = instrument(ten, provider)
    ten_plain = chain(10)
    calls = {"plain": lambda: ten_plain.invoke(x, executor=ex), "instrumented": lambda: ten.invoke(x, executor=ex)}
    for _ in range(10):
        for c in calls.values():
            c()
    tt = interleaved(calls, rounds, k)
    inst.uninstrument()
    plain, traced = tt["plain"][0] * 1e6 / 10, tt["instrumented"][0] * 1e6 / 10
    return [
        _row("c", "OTel under Ray: the driver's extra per node (trace context + ray.task span)", "µs/node", extra,
             None, note="timed directly (no cluster noise); on top of the local spans above"),
        _row("c", "OTel under Ray: 10-node chain, instrumented vs not (end to end)", "µs/node", traced, plain,
             note=f"+{traced - plain:.0f} µs/node: the spans, the ray.task span and the context sent "
                  "(rows above), and the worker attaching the context"),
    ]


# -- the run ---------------------------------------------------------------------------------------
def run(quick: bool = False, repeat: int | None = None) -> tuple[list[Result], dict[str, Any]]:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.pop("RAY_ADDRESS", None)
    import ray
    from ray import cloudpickle

    from agentgraph_nb.distributed import LocalRayCluster, RayExecutor

    # the nodes' functions travel by value: the workers need not find this module on their path
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    rounds = repeat or (3 if quick else 9)
    info: dict[str, Any] = {"ray": ray.__version__}
    rows: list[Result] = []
    # OpenTelemetry first, locally: no Ray threads in the process yet
    rows += otel_local(rounds, runs=20 if quick else 60)
    t0 = time.perf_counter()
    cluster = LocalRayCluster(2, num_cpus=1, resources=[{HEAD: 1000}, None])
    try:
        cluster.start()
        info["cluster_start_s"] = time.perf_counter() - t0
        ray.init(address=cluster.address, _node_ip_address="127.0.0.1", logging_level=logging.ERROR, log_to_driver=False)
        ex = RayExecutor(address=cluster.address, placement_timeout=30)
        where = ray.get(ray.remote(_package_file).remote())
        if where != _package_file():
            raise RuntimeError(f"the Ray workers import agentgraph_nb from {where}, this process from "
                               f"{_package_file()}: set PYTHONPATH so both run the same code")
        rows += overhead(ex, rounds, k=10 if quick else 25)
        turns = int(calibrate_rate() * 0.05)
        rows += cpu_batch(ex, n_tasks=8 if quick else 16, rounds=2 if quick else 5, turns=turns)
        rows += otel_ray(ex, rounds, k=5 if quick else 15)
        info["nodes"] = len(ex.nodes())
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.stop()
    return sorted(rows, key=lambda r: r.part), info  # a, b, c (sorted is stable)


def _package_file() -> str:
    import agentgraph_nb

    return os.path.dirname(agentgraph_nb.__file__)


def _fmt(v: float | None) -> str:
    if v is None:
        return "—"
    a = abs(v)
    return f"{v:,.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}"


def table(rows: list[Result]) -> str:
    lines = ["| part | case | unit | ours | floor | ratio | target | pass | note |",
             "|---|---|---|---:|---:|---:|---|:-:|---|"]
    for r in rows:
        mark = "" if r.passed is None else ("pass" if r.passed else "**FAIL**")
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}x"
        lines.append(f"| {r.part} | {r.case} | {r.unit} | {_fmt(r.ours)} | {_fmt(r.floor)} | {ratio} | {r.target} "
                     f"| {mark} | {r.note} |")
    return "\n".join(lines)


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ray_exec", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, a smaller batch (a smoke run)")
    ap.add_argument("--repeat", type=int, default=None, help="interleaved rounds per measurement (default 9, "
                    "3 with --quick); medians reported")
    args = ap.parse_args(argv)
    load0, t = _load(), time.perf_counter()
    rows, info = run(args.quick, args.repeat)
    print(f"# Ray executor against its floors\n\n{datetime.now(timezone.utc).isoformat(timespec='seconds')} · "
          f"`python -m benchmarks.ray_exec{' --quick' if args.quick else ''}` · Ray {info['ray']} · Python "
          f"{platform.python_version()} · {os.cpu_count()} CPUs · load {load0} → {_load()} · "
          f"{time.perf_counter() - t:.0f} s (cluster of {info.get('nodes', '?')} nodes started in "
          f"{info.get('cluster_start_s', 0):.0f} s)\n")
    print(table(rows))
    return 0 if all(r.passed is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
