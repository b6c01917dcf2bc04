"""Recorded events as pandas frames (pandas is imported inside the functions only).

:func:`events_frame` gives one row per event, :func:`executions_frame` one row per node
execution (one per attempt). Both read the graph's recorder: call ``app.record()`` before the
runs you want to look at (the ``%%agentgraph`` magic records by default).

Times (``start``, ``end``) are seconds since the first selected event, so the rows of
concurrent runs line up; for a single run that is its start.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from agentgraph_nb._lazy import requires_extra
from agentgraph_nb.errors import InvalidInputError
from agentgraph_nb.observe.recorder import Record

__all__ = [
    "EVENT_COLUMNS",
    "EXECUTION_COLUMNS",
    "Execution",
    "ExecutionLog",
    "RunInfo",
    "error_text",
    "events_frame",
    "executions_frame",
    "recorded",
]

#: Columns of :func:`events_frame`, in order.
EVENT_COLUMNS = (
    "run",
    "thread",
    "step",
    "node",
    "kind",
    "start",
    "end",
    "duration",
    "attempt",
    "error",
    "task",
    "namespace",
)
#: Columns of :func:`executions_frame`, in order.
EXECUTION_COLUMNS = (
    "node",
    "run",
    "thread",
    "step",
    "attempt",
    "task",
    "lane",
    "start",
    "end",
    "duration",
    "status",
    "error",
    "namespace",
    "worker",
    "host",
    "ray_node",
)

_NODE_KINDS = frozenset({"node_start", "node_end", "node_error", "node_retry", "cache_hit"})


def error_text(exc: Any) -> str | None:
    """``"Type: message"`` for an exception, ``None`` for nothing."""
    if exc is None:
        return None
    if isinstance(exc, BaseException):
        return f"{type(exc).__name__}: {exc}"
    return str(exc)


class Execution:
    """One attempt of one node in one run.

    Attributes:
        run, thread, node, step, task, attempt: where it ran (``task`` is ``"step:index"``).
        lane: the task's index within its superstep (parallel branches get different lanes).
        start, end: ``time.perf_counter()`` values; ``end`` is None while it runs.
        duration: seconds (the engine's measure for finished attempts).
        status: ``running``, ``ok``, ``error`` (failed for good), ``retry`` (failed, retried),
            ``paused`` (it paused the run with ``interrupt()``; ended with the run), ``stopped``
            (still running when its run failed), ``cached`` (skipped: its result came from the
            node cache; ``attempt`` 0, no duration), or ``compensate`` for a saga's compensation
            of the node (``add_node(compensate=)``), which ran after the run failed (``error``
            says why, when the compensation failed).
        error: ``"Type: message"`` for failed attempts (with ``" -> caught by 'handler'"`` when
            an error edge caught it).
        note: free for a view to cache what it derives from a finished execution.
        worker, host, ray_node: where it ran when a Ray executor ran it (``"host:pid"`` of the
            worker process, its host name, the Ray node id), from its ``node_worker`` event;
            None while unknown (running) and for executions that ran in the driver's process.
        worker_time: seconds it ran on that worker (0.0 when not known).
        worker_end: when its result came back to the driver (``perf_counter``), or None.
    """

    __slots__ = (
        "attempt",
        "duration",
        "end",
        "error",
        "host",
        "lane",
        "namespace",
        "node",
        "note",
        "ray_node",
        "run",
        "start",
        "status",
        "step",
        "task",
        "thread",
        "worker",
        "worker_end",
        "worker_time",
    )

    def __init__(self, rec: Record) -> None:
        self.run = rec[1]
        self.thread = rec[2]
        self.node = rec[4]
        self.step = rec[3]
        self.task = rec[8]
        self.attempt = rec[7]
        self.lane = _lane(rec[8])
        self.start = rec[5]
        self.end: float | None = None
        self.duration = 0.0
        self.status = "running"
        self.error: str | None = None
        self.note: str | None = None
        # "" for the graph's own nodes; a subgraph's ("team", "team|inner") for its nodes, whose
        # ``thread`` is the parent's and whose ``run`` is the subgraph run's own id
        self.namespace: str = rec[10] if len(rec) > 10 else ""
        self.worker: str | None = None
        self.host: str | None = None
        self.ray_node: str | None = None
        self.worker_time = 0.0
        self.worker_end: float | None = None

    def __repr__(self) -> str:
        return f"<Execution {self.node} step {self.step} attempt {self.attempt}: {self.status}>"


class RunInfo:
    """What the log knows about one run: its start and end (``perf_counter``), status, the
    start time of each superstep, and how many of its executions the log still holds."""

    __slots__ = ("end", "executions", "open", "run", "start", "status", "steps", "thread")

    def __init__(self, run: str, thread: str | None, start: float) -> None:
        self.run = run
        self.thread = thread
        self.start = start
        self.end: float | None = None
        self.status = "running"
        self.open: list[tuple[str, str, int]] = []  # its executions started while it ran (ended at its end)
        self.steps: dict[int, float] = {}
        self.executions = 0


_LANES: dict[str, int] = {}  # task id -> lane; ids repeat across runs ("1:0", "2:1", ...)


def _lane(task_id: str) -> int:
    lane = _LANES.get(task_id)
    if lane is None:
        _, _, idx = task_id.partition(":")
        idx = idx.partition("/")[0]  # a for-each item ("step:task/item"): its node's lane (see _item_lane)
        lane = int(idx) if idx.isdigit() else 0
        if len(_LANES) < 100_000:
            _LANES[task_id] = lane
    return lane


class ExecutionLog:
    """Folds events into node executions (one per attempt), incrementally.

    Feeding the same event twice changes nothing, so a live view can replay recorded events
    and take live ones without double counting.

    Args:
        max_executions: keep (at least) the newest this many executions; older ones are
            dropped in bulk, a quarter at a time. None: keep all.
    """

    def __init__(self, max_executions: int | None = None) -> None:
        self.max_executions = max_executions
        self.executions: dict[tuple[str, str, int], Execution] = {}
        self.runs: dict[str, RunInfo] = {}
        self.evicted = 0
        #: executions (attempts) ever seen, retried attempts, failed executions (kept on eviction)
        self.started = 0
        self.retried = 0
        self.failed = 0
        self.cached = 0  # cache hits (executions skipped)
        #: the Ray workers that ran executions, in the order first seen: ``"host:pid"`` ->
        #: ``{"worker", "host", "pid", "node_id", "ip"}`` (``node_worker`` events)
        self.workers: dict[str, dict[str, Any]] = {}
        # for-each items running now, per run: lane -> execution key (items go in the free lanes
        # below their node's, so items that run side by side are side by side in the Timeline)
        self._items: dict[str, dict[int, tuple[str, str, int]]] = {}

    def __len__(self) -> int:
        return len(self.executions)

    def clear(self) -> None:
        self.executions.clear()
        self.runs.clear()
        self._items.clear()
        self.workers.clear()
        self.evicted = self.started = self.retried = self.failed = self.cached = 0

    def _run(self, rec: Record) -> RunInfo:
        info = self.runs.get(rec[1])
        if info is None:
            info = self.runs[rec[1]] = RunInfo(rec[1], rec[2], rec[5])
        return info

    def feed(self, rec: Record) -> Execution | None:
        """Take one event, as a recorder :data:`~agentgraph_nb.observe.recorder.Record` (see
        :func:`~agentgraph_nb.observe.recorder.as_record`). Returns the execution it started or
        finished (None for other events and for repeats)."""
        kind = rec[0]
        if kind in _NODE_KINDS:
            key = (rec[1], rec[8], rec[7])
            ex = self.executions.get(key)
            if kind == "node_start":
                if ex is not None:
                    return None
                return self._add(key, rec)
            if kind == "cache_hit":  # the node did not run: an instant execution
                if ex is not None:
                    return None
                ex = self._add(key, rec)
                ex.end = rec[5]
                ex.status = "cached"
                self.cached += 1
                return ex
            if ex is None:  # its start was not seen (dropped, or attached mid-run)
                ex = self._add(key, rec)
                ex.start = rec[5] - rec[6]
            elif ex.end is not None:
                return None
            ex.end = rec[5]
            if "/" in key[1]:
                self._free_item(key, ex)
            if kind == "node_end":
                ex.status = "ok"
                ex.duration = rec[6]
            else:
                if kind == "node_error":
                    ex.status = "error"
                    self.failed += 1
                else:
                    ex.status = "retry"
                    self.retried += 1
                ex.duration = rec[6] or max(rec[5] - ex.start, 0.0)
                ex.error = error_text(rec[9])
            return ex
        if kind == "node_worker":
            return self._on_worker(rec)
        if kind == "compensate" or kind == "error_caught":
            return self._recovery(rec)
        if kind == "step_start":
            self._run(rec).steps.setdefault(rec[3], rec[5])
        elif kind == "run_start":
            info = self._run(rec)
            if rec[5] < info.start:
                info.start = rec[5]
        elif kind == "run_end":
            info = self._run(rec)
            if info.end is None:
                info.end = rec[5]
                data = rec[9] if isinstance(rec[9], dict) else {}
                info.status = str(data.get("status") or "completed")
                if rec[5] - rec[6] < info.start:
                    info.start = rec[5] - rec[6]
                self._close_open(info, rec[5])
                self._items.pop(rec[1], None)
        return None

    def _close_open(self, info: RunInfo, end: float) -> None:
        """End the executions a run left without an end of their own: a node that paused the
        run (``interrupt()``: "paused"), that handed off to the parent graph (``Command.PARENT``,
        the run completed: "ok"), or that was stopped when a sibling failed ("stopped")."""
        status = {"interrupted": "paused", "completed": "ok"}.get(info.status, "stopped")
        executions = self.executions
        for key in info.open:
            ex = executions.get(key)
            if ex is not None and ex.end is None:
                ex.end = end
                ex.duration = max(end - ex.start, 0.0)
                ex.status = status
        info.open = []
    def _on_worker(self, rec: Record) -> Execution | None:
        """Where an execution ran (a ``node_worker`` event, sent before its ``node_end``): the
        attempt it names, or (attempt 0) the newest attempt of its task seen so far."""
        data = rec[9]
        if not isinstance(data, dict) or not data.get("worker"):
            return None
        executions = self.executions
        run, task = rec[1], rec[8]
        if rec[7]:
            ex = executions.get((run, task, rec[7]))
        else:
            ex = None
            attempt = 1
            while True:
                got = executions.get((run, task, attempt))
                if got is None:
                    break
                ex, attempt = got, attempt + 1
        if ex is None:  # its start was not seen: nothing to place
            return None
        worker = str(data["worker"])
        if worker not in self.workers:
            self.workers[worker] = data
        ex.worker = worker
        ex.host = None if data.get("host") is None else str(data["host"])
        ex.ray_node = None if data.get("node_id") is None else str(data["node_id"])
        ex.worker_time = rec[6]
        ex.worker_end = rec[5]
        ex.note = None
        return ex

    def _recovery(self, rec: Record) -> Execution | None:
        """A saga's compensation (an execution of its own) or an error edge's catch (noted on
        the failed attempt)."""
        data = rec[9] if isinstance(rec[9], dict) else {}
        if rec[0] == "error_caught":
            ex = self.executions.get((rec[1], rec[8], rec[7]))
            if ex is not None and data.get("handler") and "caught by" not in (ex.error or ""):
                ex.error = f"{ex.error or 'error'} -> caught by {data['handler']!r}"
                ex.note = None  # a view's cached text of it is stale
                return ex
            return None
        key = (rec[1], f"compensate {rec[8]}", 0)
        if key in self.executions:
            return None
        ex = self._add(key, rec)
        ex.start = rec[5] - rec[6]
        ex.end = rec[5]
        ex.duration = rec[6]
        ex.status = "compensate"
        if not data.get("ok", True):
            ex.error = str(data.get("error"))
        return ex

    def _add(self, key: tuple[str, str, int], rec: Record) -> Execution:
        ex = self.executions[key] = Execution(rec)
        if "/" in key[1]:  # a for-each item: the first lane below its node's that no running item holds
            busy = self._items.setdefault(key[0], {})
            lane = ex.lane + 1
            while lane in busy:
                lane += 1
            busy[lane] = key
            ex.lane = lane
        info = self.runs.get(rec[1])
        if info is None:
            info = self.runs[rec[1]] = RunInfo(rec[1], rec[2], rec[5])
        info.executions += 1
        if info.end is None:
            info.open.append(key)
        self.started += 1
        cap = self.max_executions
        if cap is not None and len(self.executions) > cap + max(64, cap // 4):
            self._evict(cap)
        return ex

    def _free_item(self, key: tuple[str, str, int], ex: Execution) -> None:
        busy = self._items.get(key[0])
        if busy is not None and busy.get(ex.lane) == key:
            del busy[ex.lane]
            if not busy:
                del self._items[key[0]]

    def feed_all(self, records: Iterable[Record]) -> ExecutionLog:
        feed = self.feed
        for rec in records:
            feed(rec)
        return self

    def _evict(self, keep: int) -> None:
        # in bulk, so that eviction stays O(1) per execution (dicts do not shrink on delete)
        items = list(self.executions.items())
        drop, kept = items[: len(items) - keep], items[len(items) - keep :]
        self.executions = dict(kept)
        self.evicted += len(drop)
        runs = self.runs
        for _, ex in drop:
            info = runs.get(ex.run)
            if info is not None:
                info.executions -= 1
        for run in [r for r, info in runs.items() if info.executions <= 0 and info.end is not None]:
            del runs[run]


# -- frames -------------------------------------------------------------------------------------
def recorded(app: Any, run_id: str | None = None, thread_id: str | None = None) -> list[Record]:
    """The graph's recorded events (as records), optionally of one run and/or one thread,
    ordered by time.

    Raises:
        InvalidInputError: nothing records this graph's events (call ``app.record()`` first).
    """
    rec = getattr(app, "_recorder", None)
    if rec is None:
        name = getattr(app, "name", "graph")
        raise InvalidInputError(
            f"graph {name!r} keeps no events: call app.record() before the runs you want to see "
            "(or build it with %%agentgraph, which records by default), then run it again."
        )
    records = rec.records()
    if run_id is not None:
        records = [r for r in records if r[1] == run_id]
    if thread_id is not None:
        thread_id = str(thread_id)
        records = [r for r in records if r[2] == thread_id]
    records.sort(key=lambda r: r[5])  # recorded order, give or take parallel threads
    return records


def _origin(records: list[Record]) -> float:
    if not records:
        return 0.0
    t0 = records[0][5]
    for r in records:
        t = r[5] - r[6] if r[0] == "run_end" else r[5]
        if t < t0:
            t0 = t
    return t0


def events_frame(app: Any, run_id: str | None = None, thread_id: str | None = None) -> Any:
    """The recorded events as a pandas DataFrame, one row per event, in the order they happened.

    Columns: ``run``, ``thread``, ``step``, ``node`` ("" for run and step events), ``kind``,
    ``start``, ``end`` (seconds since the first selected event), ``duration`` (seconds),
    ``attempt`` (node events; 0 otherwise), ``error`` (``"Type: message"`` for ``node_error``,
    ``node_retry`` and failed ``run_end``; else None), ``task`` (``"step:index"``) and
    ``namespace`` (``""`` for the graph's own events; ``"team"``, ``"team|inner"`` for those of
    a subgraph run inside it, whose ``run`` is the subgraph run's id and ``thread`` the parent's).

    Every row is an interval: the node events of one execution (``node_start`` and its
    ``node_end``, ``node_error`` or ``node_retry``) all carry that execution's start and end
    (``end`` is NaN while it runs); ``run_end`` spans the whole run; other events are instants
    (``start == end``).

    Args:
        app: a compiled graph that records (``app.record()``).
        run_id: only this run.
        thread_id: only runs on this thread.

    Raises:
        InvalidInputError: the graph records nothing (call ``app.record()`` before running).

    Example:
        >>> app.record()                                              # doctest: +SKIP
        >>> app.invoke({"x": 1})                                      # doctest: +SKIP
        >>> df = app.events(run_id=app.last_run_id)                   # doctest: +SKIP
        >>> df[df.kind == "node_end"][["node", "duration"]]           # doctest: +SKIP
    """
    with requires_extra("app.events()"):
        import pandas as pd

    records = recorded(app, run_id, thread_id)
    log = ExecutionLog().feed_all(records)
    t0 = _origin(records)
    nan = math.nan
    rows: list[tuple[Any, ...]] = []
    execs = log.executions
    for r in records:
        kind = r[0]
        err = None
        if kind in _NODE_KINDS:
            ex = execs[(r[1], r[8], r[7])]
            start = ex.start - t0
            end = ex.end - t0 if ex.end is not None else nan
            dur = ex.duration if ex.end is not None else nan
            if kind != "node_start":
                err = ex.error
        elif kind == "run_end":
            start, end, dur = r[5] - r[6] - t0, r[5] - t0, r[6]
            if isinstance(r[9], dict):
                err = error_text(r[9].get("error"))
        else:
            start = end = r[5] - t0
            dur = r[6]
        rows.append((r[1], r[2], r[3], r[4], kind, start, end, dur, r[7], err, r[8], r[10] if len(r) > 10 else ""))
    df = pd.DataFrame.from_records(rows, columns=list(EVENT_COLUMNS))
    return df.astype(
        {
            "step": "int64",
            "attempt": "int64",
            "start": "float64",
            "end": "float64",
            "duration": "float64",
        }
    )


def executions_frame(app: Any, run_id: str | None = None, thread_id: str | None = None) -> Any:
    """The recorded node executions as a pandas DataFrame, one row per attempt, by start time.

    Columns: ``node``, ``run``, ``thread``, ``step``, ``attempt``, ``task``, ``lane`` (the task's
    index in its superstep: parallel branches differ), ``start``, ``end`` (seconds since the
    first selected event; ``end`` NaN while running), ``duration`` (seconds), ``status``
    (``ok``, ``error``, ``retry`` for a failed attempt that was retried, ``running``),
    ``error``, ``namespace`` (as in :func:`events_frame`), and where a Ray executor ran it:
    ``worker`` (``"host:pid"`` of the worker process), ``host`` and ``ray_node`` (the Ray node
    id), missing for executions that ran in this process or are still running.

    Args and errors as for :func:`events_frame`; this is the data the timeline draws.
    """
    with requires_extra("executions_frame()"):
        import pandas as pd

    records = recorded(app, run_id, thread_id)
    log = ExecutionLog().feed_all(records)
    t0 = _origin(records)
    nan = math.nan
    rows = [
        (
            x.node,
            x.run,
            x.thread,
            x.step,
            x.attempt,
            x.task,
            x.lane,
            x.start - t0,
            x.end - t0 if x.end is not None else nan,
            x.duration if x.end is not None else nan,
            x.status,
            x.error,
            x.namespace,
            x.worker,
            x.host,
            x.ray_node,
        )
        for x in sorted(log.executions.values(), key=lambda x: x.start)
    ]
    df = pd.DataFrame.from_records(rows, columns=list(EXECUTION_COLUMNS))
    return df.astype(
        {
            "step": "int64",
            "attempt": "int64",
            "lane": "int64",
            "start": "float64",
            "end": "float64",
            "duration": "float64",
        }
    )
