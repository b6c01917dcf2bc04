"""What every workload shares: the run configuration, result rows, the two systems behind one
small adapter, graph builders, interleaved timing with medians, and child processes with time
and memory limits."""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import math
import operator
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

OURS = "agentgraph_nb"
LG = "LangGraph"


# -- configuration and results ------------------------------------------------------------------
@dataclass
class Config:
    quick: bool = False
    repeat: int = 5
    min_time: float = 0.2  # seconds one timed repetition of a measurement should last at least
    tmp: Path = field(default_factory=lambda: Path(os.environ.get("TMPDIR", "/tmp")))
    notes: list[str] = field(default_factory=list)  # printed under the table

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


@dataclass
class Row:
    """One line of the table. ``ratio`` is oriented so that > 1 means agentgraph_nb is better
    (LangGraph's time over ours, or our throughput over LangGraph's)."""

    workload: str
    case: str
    metric: str
    unit: str
    ours: float | None
    lg: float | None
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None  # None: no target
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def ratio_lower_better(ours: float | None, lg: float | None) -> float | None:
    if not ours or not lg:
        return None
    return lg / ours


def ratio_higher_better(ours: float | None, lg: float | None) -> float | None:
    if not ours or not lg:
        return None
    return ours / lg


def timed_row(workload: str, case: str, metric: str, unit: str, ours: float | None, lg: float | None, *,
              min_ratio: float | None = None, max_ours: float | None = None, target: str = "",
              higher_better: bool = False, note: str = "") -> Row:
    """A row for a measured quantity with an optional ratio target and an optional absolute
    bound on our figure (a maximum; for higher-is-better metrics use ``min_ratio`` only)."""
    r = ratio_higher_better(ours, lg) if higher_better else ratio_lower_better(ours, lg)
    passed: bool | None = None
    checks: list[bool] = []
    why: list[str] = []
    if min_ratio is not None:
        ok = r is not None and r >= min_ratio
        checks.append(ok)
        if not ok and r is not None:
            why.append(f"ratio {r:.1f}x < {min_ratio:g}x")
    if max_ours is not None:
        ok = ours is not None and ours <= max_ours
        checks.append(ok)
        if not ok and ours is not None:
            why.append(f"{fmt(ours)} {unit} > {fmt(max_ours)}")
    if checks:
        passed = all(checks)
    if why:
        note = "; ".join([*why, note] if note else why)
    return Row(workload, case, metric, unit, ours, lg, r, target, passed, note)


# -- the two systems ------------------------------------------------------------------------------
class System:
    """The little that differs between the two APIs for these workloads."""

    key: str
    label: str

    def __init__(self) -> None:
        self._ids = itertools.count()

    def graph(self, schema: Any) -> Any:
        return self.StateGraph(schema)  # type: ignore[attr-defined]

    def compile(self, g: Any, checkpointer: Any = None) -> Any:
        raise NotImplementedError

    def invoker(self, app: Any, *, aio: bool = False, limit: int | None = None, threads: str | None = None,
                durability: str | None = None, callbacks: list[Any] | None = None) -> Callable[[Any], Any]:
        """A one-argument callable running the app on an input (a coroutine function when ``aio``).
        ``threads``: a prefix; every call then runs on a fresh thread id (checkpointed)."""
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError


class Ours(System):
    key = "ours"
    label = OURS

    def __init__(self) -> None:
        super().__init__()
        import agentgraph_nb as m

        self.m = m
        self.StateGraph = m.StateGraph
        self.START = m.START
        self.END = m.END
        self.Send = m.Send

    def compile(self, g: Any, checkpointer: Any = None) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return g.compile(checkpointer=checkpointer)

    def invoker(self, app: Any, *, aio: bool = False, limit: int | None = None, threads: str | None = None,
                durability: str | None = None, callbacks: list[Any] | None = None) -> Callable[[Any], Any]:
        kw: dict[str, Any] = {}
        if limit is not None:
            kw["recursion_limit"] = limit
        if durability is not None:
            kw["durability"] = durability
        if callbacks:
            kw["listeners"] = callbacks
        call = app.ainvoke if aio else app.invoke
        if threads is None:
            if not kw:
                return call
            return lambda x: call(x, **kw)
        ids = self._ids
        return lambda x: call(x, thread_id=f"{threads}-{next(ids)}", **kw)

    def version(self) -> str:
        return self.m.__version__


class LangGraph(System):
    key = "lg"
    label = LG

    def __init__(self) -> None:
        super().__init__()
        import langgraph.graph as m
        from langgraph.types import Send

        self.m = m
        self.StateGraph = m.StateGraph
        self.START = m.START
        self.END = m.END
        self.Send = Send

    def compile(self, g: Any, checkpointer: Any = None) -> Any:
        return g.compile(checkpointer=checkpointer)

    def invoker(self, app: Any, *, aio: bool = False, limit: int | None = None, threads: str | None = None,
                durability: str | None = None, callbacks: list[Any] | None = None) -> Callable[[Any], Any]:
        base: dict[str, Any] = {}
        if limit is not None:
            base["recursion_limit"] = limit
        if callbacks:
            base["callbacks"] = callbacks
        kw: dict[str, Any] = {}
        if durability is not None:
            kw["durability"] = durability
        call = app.ainvoke if aio else app.invoke
        if threads is None:
            cfg = base or None
            return lambda x: call(x, cfg, **kw)
        ids = self._ids
        return lambda x: call(x, {**base, "configurable": {"thread_id": f"{threads}-{next(ids)}"}}, **kw)

    def version(self) -> str:
        from importlib.metadata import version

        return version("langgraph")


_SYSTEMS: dict[str, System] = {}


def systems() -> list[System]:
    """Both systems (imported once per process)."""
    return [system("ours"), system("lg")]


def system(key: str) -> System:
    """One system, importing only it (child processes measure one system at a time)."""
    if key not in _SYSTEMS:
        _SYSTEMS[key] = Ours() if key == "ours" else LangGraph()
    return _SYSTEMS[key]


# -- states and graphs ----------------------------------------------------------------------------
class ChainState(TypedDict):
    x: int


class ListState(TypedDict):
    items: Annotated[list[int], operator.add]


class CountState(TypedDict):
    count: Annotated[int, operator.add]


def inc(s: Any) -> dict[str, Any]:
    return {"x": s["x"] + 1}


async def ainc(s: Any) -> dict[str, Any]:
    return {"x": s["x"] + 1}


async def sleepy(s: Any) -> dict[str, Any]:
    await asyncio.sleep(0.01)
    return {"x": s["x"] + 1}


def chain(sys_: System, n: int, fn: Callable[..., Any] = inc, checkpointer: Any = None) -> Any:
    """``START -> n0 -> n1 -> ... -> END`` over ``ChainState``."""
    return sys_.compile(chain_builder(sys_, n, fn), checkpointer)


def chain_builder(sys_: System, n: int, fn: Callable[..., Any] = inc) -> Any:
    g = sys_.graph(ChainState)
    for i in range(n):
        g.add_node(f"n{i}", fn)
    g.add_edge(sys_.START, "n0")
    for i in range(n - 1):
        g.add_edge(f"n{i}", f"n{i + 1}")
    g.add_edge(f"n{n - 1}", sys_.END)
    return g


# -- timing ---------------------------------------------------------------------------------------
Batch = Callable[[int], float]  # runs k calls, returns the seconds they took


def sync_batch(call: Callable[[Any], Any], make_input: Callable[[], Any]) -> Batch:
    def batch(k: int) -> float:
        inputs = [make_input() for _ in range(k)]
        t = time.perf_counter()
        for x in inputs:
            call(x)
        return time.perf_counter() - t

    return batch


def async_batch(acall: Callable[[Any], Any], make_input: Callable[[], Any]) -> Batch:
    def batch(k: int) -> float:
        inputs = [make_input() for _ in range(k)]

        async def main() -> float:
            t = time.perf_counter()
            for x in inputs:
                await acall(x)
            return time.perf_counter() - t

        return asyncio.run(main())

    return batch


def compare(batches: dict[str, Batch], cfg: Config, *, min_time: float | None = None,
            max_calls: int = 100_000) -> dict[str, float]:
    """Median seconds per call of each batch, repetitions interleaved between the systems so
    that drift in the machine's speed hits both alike."""
    min_time = cfg.min_time if min_time is None else min_time
    ks: dict[str, int] = {}
    for name, b in batches.items():
        b(1)  # warm up
        est = max(b(1), 1e-7)
        ks[name] = max(1, min(max_calls, math.ceil(min_time / est)))
    samples: dict[str, list[float]] = {name: [] for name in batches}
    gc.collect()
    for _ in range(cfg.repeat):
        for name, b in batches.items():
            k = ks[name]
            samples[name].append(b(k) / k)
    return {name: statistics.median(v) for name, v in samples.items()}


# -- child processes ------------------------------------------------------------------------------
def run_child(func: str, args: dict[str, Any], *, timeout: float, mem_bytes: int | None = 12 << 30) -> dict[str, Any]:
    """Run ``module:function(**args)`` in a fresh interpreter; its JSON result, or
    ``{"error": "timeout" | "out of memory" | message}``."""
    payload = json.dumps({"func": func, "args": args, "mem": mem_bytes})
    t = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks._child", payload],
            cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": "timeout", "limit_s": timeout}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode == 0 and lines:
        return {**json.loads(lines[-1]), "elapsed_s": time.perf_counter() - t}
    err = proc.stderr.strip().splitlines()
    if any("MemoryError" in ln for ln in err) or proc.returncode in (-9,):
        return {"error": "out of memory", "limit_bytes": mem_bytes}
    return {"error": (err[-1] if err else f"exit code {proc.returncode}")[:200]}


def maxrss_bytes() -> int:
    """The process's peak RSS in bytes: ``VmHWM`` from ``/proc/self/status`` where there is one,
    else ``ru_maxrss``. (``ru_maxrss`` alone is wrong in a child started by a big parent: on
    exec, Linux folds the parent's peak into the child's, so a small child reports the parent's.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def reset_maxrss() -> bool:
    """Reset the process's peak RSS to its current RSS (Linux: ``/proc/self/clear_refs``), so a
    later ``ru_maxrss`` is the peak since now; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


# -- formatting -----------------------------------------------------------------------------------
def fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "—"
    return f"{r:.1f}x" if r >= 1 else f"{r:.2f}x"
