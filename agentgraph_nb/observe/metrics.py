"""Per-node and per-run metrics, collected by the engine as it runs (cheap: a few attribute
updates per node execution), exported with :meth:`Metrics.to_pandas`."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

__all__ = ["Metrics", "NodeStats", "RunStats", "percentile"]

_WINDOW = 10_000


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` (0-100) of already sorted values (nan if empty)."""
    if not sorted_values:
        return math.nan
    k = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


class NodeStats:
    """Counters for one node. Latencies keep the last 10,000 executions for percentiles."""

    __slots__ = (
        "cache_hits",
        "cache_misses",
        "caught",
        "compensations",
        "cost",
        "count",
        "errors",
        "latencies",
        "llm_calls",
        "name",
        "retries",
        "timeouts",
        "tokens_in",
        "tokens_out",
        "total",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.errors = 0
        self.retries = 0
        self.timeouts = 0
        self.total = 0.0
        self.latencies: deque[float] = deque(maxlen=_WINDOW)
        # chat-model calls made by the node (agentgraph_nb.llm reports them)
        self.llm_calls = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.cost = 0.0
        self.caught = 0  # failures an error edge sent to a handler (add_error_edge)
        self.compensations = 0  # times its compensation ran after a failed saga
        # a cached node (CachePolicy): lookups that found a saved result, and those that ran it
        self.cache_hits = 0
        self.cache_misses = 0

    def reset(self) -> None:
        self.caught = self.compensations = 0
        self.count = self.errors = self.retries = self.timeouts = 0
        self.cache_hits = self.cache_misses = 0
        self.llm_calls = self.tokens_in = self.tokens_out = 0
        self.total = self.cost = 0.0
        self.latencies.clear()

    def row(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {
            "node": self.name,
            "count": self.count,
            "errors": self.errors,
            "retries": self.retries,
            "timeouts": self.timeouts,
            "mean_s": self.total / self.count if self.count else math.nan,
            "p50_s": percentile(lat, 50),
            "p90_s": percentile(lat, 90),
            "p99_s": percentile(lat, 99),
            "max_s": lat[-1] if lat else math.nan,
            "llm_calls": self.llm_calls,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost": self.cost,
            "caught": self.caught,
            "compensations": self.compensations,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
        }


class RunStats:
    """Counters for the runs of one compiled graph."""

    __slots__ = ("completed", "durations", "ends", "failed", "interrupted", "lock", "started")

    def __init__(self) -> None:
        self.started = 0
        self.completed = 0
        self.failed = 0
        self.interrupted = 0
        self.durations: deque[float] = deque(maxlen=_WINDOW)
        self.ends: deque[float] = deque(maxlen=_WINDOW)
        self.lock = threading.Lock()

    def throughput(self, window: float = 60.0) -> float:
        """Runs finished per second over the last ``window`` seconds (or since the first)."""
        ends = list(self.ends)
        if not ends:
            return 0.0
        now = time.perf_counter()
        recent = [t for t in ends if now - t <= window]
        if len(recent) < 2:
            return float(len(recent)) / window if recent else 0.0
        span = max(now - recent[0], 1e-9)
        return len(recent) / span


class Metrics:
    """Metrics of a compiled graph: ``app.metrics``.

    Example:
        >>> app.metrics.to_pandas()          # one row per node
        >>> app.metrics.summary()["throughput_per_s"]
    """

    def __init__(self, nodes: Iterable[NodeStats], runs: RunStats,
                 subgraphs: Iterable[tuple[str, Metrics]] = ()) -> None:
        self._nodes = list(nodes)
        self.runs = runs
        self._subgraphs = list(subgraphs)  # (node name, the subgraph's metrics)

    def node(self, name: str) -> NodeStats:
        """The stats of one node."""
        for n in self._nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def rows(self, subgraphs: bool = False) -> list[dict[str, Any]]:
        """One dict per node: count, errors, retries, timeouts, mean/p50/p90/p99/max seconds, and
        its chat-model calls: ``llm_calls``, ``tokens_in``, ``tokens_out``, ``cost`` (0 without a
        price table, see :func:`agentgraph_nb.llm.set_prices`).

        ``subgraphs=True``: every row gets a ``namespace`` (``""`` for this graph's nodes) and
        the nodes of the subgraphs follow, under their namespace (``"team"``, ``"team|inner"``).
        A compiled graph used as two nodes keeps one set of figures, shown under both."""
        if not subgraphs:
            return [n.row() for n in self._nodes]
        out = [{**n.row(), "namespace": ""} for n in self._nodes]
        for name, sub in self._subgraphs:
            for r in sub.rows(subgraphs=True):
                r["namespace"] = f"{name}|{r['namespace']}" if r["namespace"] else name
                out.append(r)
        return out

    def summary(self) -> dict[str, Any]:
        """Run-level figures: started, completed, failed, interrupted, mean/p50/p99 duration,
        throughput (runs per second over the last minute)."""
        r = self.runs
        d = sorted(r.durations)
        return {
            "runs_started": r.started,
            "runs_completed": r.completed,
            "runs_failed": r.failed,
            "runs_interrupted": r.interrupted,
            "runs_in_flight": r.started - r.completed - r.failed - r.interrupted,
            "run_mean_s": sum(d) / len(d) if d else math.nan,
            "run_p50_s": percentile(d, 50),
            "run_p99_s": percentile(d, 99),
            "throughput_per_s": r.throughput(),
        }

    def reset(self) -> None:
        """Forget everything collected so far."""
        for n in self._nodes:
            n.reset()
        fresh = RunStats()
        for k in ("started", "completed", "failed", "interrupted"):
            setattr(self.runs, k, getattr(fresh, k))
        self.runs.durations.clear()
        self.runs.ends.clear()

    def to_pandas(self, subgraphs: bool = False) -> Any:
        """Per-node metrics as a pandas DataFrame indexed by node (pandas imported here);
        ``subgraphs=True``: indexed by ``(namespace, node)``, the subgraphs' nodes included."""
        from agentgraph_nb._lazy import requires_extra

        with requires_extra("metrics.to_pandas()"):
            import pandas as pd

        if subgraphs:
            return pd.DataFrame(self.rows(subgraphs=True)).set_index(["namespace", "node"])
        return pd.DataFrame(self.rows()).set_index("node")

    def __repr__(self) -> str:
        s = self.summary()
        return f"Metrics({len(self._nodes)} nodes, {s['runs_completed']} runs completed)"
