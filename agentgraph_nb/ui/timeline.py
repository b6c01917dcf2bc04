"""The timeline: a plotly Gantt chart of node executions, live during runs.

``app.timeline()`` (or :func:`timeline`) returns a :class:`Timeline`, a plotly ``FigureWidget``:
one horizontal bar per node execution (per attempt), x in seconds from the run's start, one lane
per task of a superstep (parallel branches side by side), colour by status (ok, retried attempt,
error, running), retries and errors marked at their end, dotted lines where supersteps start.

Live updates read the graph's event recorder (``app.record()`` is called for you). The engine's
threads only append events and, at most, arm a timer: the figure is redrawn on that timer's
thread, at most once per ``interval`` (20 times a second by default).
"""

from __future__ import annotations

import inspect
import math
import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.basedatatypes import Undefined as _UNSET

from agentgraph_nb.errors import InvalidInputError
from agentgraph_nb.observe.frames import Execution, ExecutionLog

__all__ = ["STATUSES", "Coalescer", "Timeline", "timeline"]

#: Bar traces, in order: status -> (legend name, colour). Then a superstep-lines trace and a
#: trace of marks at the end of retried and failed attempts.
STATUSES: dict[str, tuple[str, str]] = {
    "ok": ("ok", "#4C78A8"),
    "retry": ("retried attempt", "#F58518"),
    "error": ("error", "#E45756"),
    "running": ("running", "#BAB0AC"),
    "checkpoint": ("step (from checkpoints)", "#72B7B2"),
}
STEP_TRACE = len(STATUSES)
MARK_TRACE = STEP_TRACE + 1
_STEP_LINE_RUNS = 100  # superstep lines for the newest runs shown only (a batch would be a hatch)
_KEEP_RUNS = 10_000
_KINDS = frozenset(
    {"run_start", "step_start", "node_start", "node_end", "node_error", "node_retry", "run_end"}
)
_RUNNING_REDRAW = 0.25  # seconds between redraws that only grow running bars
_RUNNING_PATIENCE = 300.0  # stop growing them after this long without events


class Coalescer:
    """Call ``flush()`` at most once per ``interval`` seconds, and never lose the last request.

    :meth:`poke` is the hot path (called for every event): when no flush is pending it starts a
    trailing ``threading.Timer`` that fires one pace after the previous flush began. The pace is
    ``interval``, stretched when flushes are slow so that they take at most ``max_share`` of the
    time (a live view must not slow the runs it shows). Flushes never overlap; ``flush``
    returns whether it sent anything.
    """

    def __init__(
        self, flush: Callable[[], bool], interval: float, *, max_share: float = 0.08
    ) -> None:
        # A bound method is held weakly: a view nobody holds any more stops (and unsubscribes).
        self._flush_ref: Callable[[], Callable[[], bool] | None] = (
            weakref.WeakMethod(flush) if inspect.ismethod(flush) else (lambda: flush)
        )
        self.interval = float(interval)
        self.max_share = max_share
        self._lock = threading.Lock()  # guards _timer
        self.flush_lock = threading.RLock()  # one flush at a time; readers of the model take it too
        self._timer: threading.Timer | None = None
        self._last = -math.inf
        self._cost = 0.0  # seconds the last flushes took (moving average)
        self.closed = False
        #: called once by :meth:`close` (e.g. the view's unsubscribe)
        self.on_close: Callable[[], Any] | None = None

    def listener(self) -> Callable[[Any], None]:
        """An event listener for ``app.listen``: asks for a flush, and flushes at once when a
        run ends and the pace allows (so a view is current when ``invoke`` returns)."""
        c = self

        def on_event(event: Any) -> None:
            if event.kind == "run_end":
                c.soon_or_now()
            elif c._timer is None and not c.closed:
                c._schedule(0.0)

        return on_event

    @property
    def pace(self) -> float:
        """Seconds between two flushes at least, now."""
        return max(self.interval, self._cost / self.max_share)

    def poke(self) -> None:
        """Ask for a flush soon (cheap; safe from any thread)."""
        if self._timer is None and not self.closed:
            self._schedule(0.0)

    def later(self, delay: float) -> None:
        """Ask for a flush in ``delay`` seconds at the earliest."""
        self._schedule(delay)

    def _schedule(self, at_least: float) -> None:
        with self._lock:
            if self._timer is not None or self.closed:
                return
            delay = max(at_least, self._last + self.pace - time.perf_counter(), 0.0)
            timer = threading.Timer(delay, self._fire)
            timer.daemon = True
            self._timer = timer
        timer.start()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
        with self.flush_lock:  # checked under the lock: a run_end flush may have just happened
            if self.closed:
                return
            wait = self._last + self.pace - time.perf_counter()
            if wait <= 1e-3:
                self._timed()
                return
        self._schedule(wait)  # flushed (at run_end) since this timer was set: keep the pace

    def _timed(self) -> bool:
        flush = self._flush_ref()
        if flush is None:
            self.close()
            return False
        self._last = time.perf_counter()
        cpu = time.thread_time()  # CPU, not wall: waiting for the GIL is not our cost
        try:
            return flush()
        finally:
            self._cost = 0.7 * self._cost + 0.3 * (time.thread_time() - cpu)

    def run(self) -> bool:
        """Flush now, in this thread (after a flush in progress, if any)."""
        with self.flush_lock:
            if self.closed:
                return False
            return self._timed()

    def soon_or_now(self) -> None:
        """Flush in this thread if the pace allows and nobody is flushing; else :meth:`poke`."""
        if time.perf_counter() - self._last >= self.pace and self.flush_lock.acquire(False):
            try:
                # re-checked under the lock: another thread may have flushed meanwhile
                if not self.closed and time.perf_counter() - self._last >= self.pace:
                    self._timed()
                    return
            finally:
                self.flush_lock.release()
        self.poke()

    def close(self) -> None:
        """No more flushes; cancels a pending one and calls :attr:`on_close`."""
        self.closed = True
        with self._lock:
            timer, self._timer = self._timer, None
            on_close, self.on_close = self.on_close, None
        if timer is not None:
            timer.cancel()
        if on_close is not None:
            on_close()


def _fmt_s(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "?"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _escape(text: str, limit: int = 120) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _wall(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


class Timeline(go.FigureWidget):
    """A live Gantt chart of a graph's node executions: a plotly ``FigureWidget``.

    Made by ``app.timeline()`` / :func:`timeline` (see there for what it shows). Traces, in
    order: one bar trace per status in :data:`STATUSES` (``ok``, ``retry``, ``error``,
    ``running``, ``checkpoint``), the superstep lines, the retry/error marks. Bars are
    horizontal: ``base`` is the start and ``x`` the length, in seconds; ``y`` is the lane.

    Its text repr is deterministic (counts, never times or ids), e.g.
    ``Timeline(graph 'research': 12 executions, 3 steps, 1 retried)``.

    Call :meth:`close` (or :meth:`detach`) to stop following the graph.
    """

    def __init__(
        self,
        app: Any,
        run_or_thread: str | None = None,
        *,
        max_bars: int = 2_000,
        interval: float = 0.05,
    ) -> None:
        if not isinstance(max_bars, int) or isinstance(max_bars, bool) or max_bars < 1:
            raise InvalidInputError(f"max_bars must be a positive int, got {max_bars!r}")
        if not isinstance(interval, (int, float)) or interval < 0:
            raise InvalidInputError(f"interval must be a number of seconds >= 0, got {interval!r}")
        name = str(getattr(app, "name", "graph"))
        super().__init__(data=_empty_traces(), layout=_base_layout(name))
        self._validate = False  # our arrays are valid; plotly's per-item checks cost ~10x the send
        self._graph_name = name
        self._max_bars = max_bars
        self._log = ExecutionLog(max_executions=max_bars)
        self._runs_seen = 0
        self._max_steps = 0  # of runs no longer in the log
        self._updates_sent = 0
        self._slots: dict[str, int] = {}  # run -> lane group
        self._slot_until: list[float | None] = []  # per group: end of its last run (None: running)
        self._t0: float | None = None
        self._coarse: list[dict[str, Any]] = []
        self._coarse_steps = 0
        self._dirty = True
        self._last_news = time.perf_counter()
        self._unsubscribe: Callable[[], None] | None = None
        self._initial_runs: set[str] = set()
        self._replaced_initial = True
        self._run_filter: str | None = None
        self._thread_filter: str | None = None
        self._mode = "latest"
        self._coalescer = Coalescer(self._flush, interval)

        recorder = app.record()
        self._recorder = recorder
        records = recorder.records()
        self._cursor = records[-1] if records else None
        target = None if run_or_thread is None else str(run_or_thread)
        if target is None:
            last = records[-1][1] if records else None
            initial = [r for r in records if r[1] == last]
            self._initial_runs = {last} if last is not None else set()
            self._replaced_initial = last is None
        elif any(r[1] == target for r in records):
            self._mode = "run"
            self._run_filter = target
            initial = [r for r in records if r[1] == target]
        elif target == getattr(app, "last_run_id", None):
            raise InvalidInputError(
                f"run {target!r} was not recorded: call app.record() (or app.timeline()) before "
                "running it, or build the graph with %%agentgraph, which records by default."
            )
        else:
            self._mode = "thread"
            self._thread_filter = target
            initial = [r for r in records if r[2] == target]
            if not initial and getattr(app, "checkpointer", None) is not None:
                history = app.get_state_history(target)
                if history:
                    self._mode = "checkpoints"
                    self._coarse = _bars_from_history(history)
                    self._coarse_steps = len({(b["run"], b["step"]) for b in self._coarse})
        with self._coalescer.flush_lock:
            self._ingest(initial)
            self._render()
        # Recorded up to the cursor: drawn above; after it: pulled by the next flush (none lost).
        self._unsubscribe = app.listen(self._coalescer.listener())
        self._coalescer.on_close = self._unsubscribe

    # -- public -------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """``"latest"``, ``"run"``, ``"thread"`` or ``"checkpoints"`` (see :func:`timeline`)."""
        return self._mode

    @property
    def updates_sent(self) -> int:
        """How many redraws were sent to the front end so far."""
        return self._updates_sent

    @property
    def executions(self) -> int:
        """How many node executions (attempts) the timeline has seen (it draws the newest
        ``max_bars``)."""
        with self._coalescer.flush_lock:
            self._pull()
            return self._log.started

    @property
    def bars(self) -> int:
        """How many execution bars the figure shows now."""
        return sum(len(self.data[i].x) for i in range(len(STATUSES)))

    def refresh(self) -> bool:
        """Draw what has been recorded up to now, at once. Returns whether it redrew."""
        return self._coalescer.run()

    def detach(self) -> None:
        """Stop following the graph (the figure keeps what it shows)."""
        self._unsubscribe = None
        self._coalescer.close()

    def close(self) -> None:
        """Detach and close the widget."""
        self.detach()
        super().close()

    def __reduce__(self) -> Any:  # copies and pickles are plain (static) figures
        return (go.Figure, (self.to_dict(),))

    def __repr__(self) -> str:
        with self._coalescer.flush_lock:
            self._pull()
            return self._summary()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> Any:
        """The widget view plus the text repr (nbval and plain terminals see the text)."""
        self.refresh()
        with self._coalescer.flush_lock:  # plotly copies the figure's state for the new view
            bundle = super()._repr_mimebundle_(include=include, exclude=exclude, **kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            data["text/plain"] = repr(self)
        return bundle

    # -- model (all under the coalescer's flush lock) ------------------------------------------
    def _summary(self) -> str:
        where = f"graph {self._graph_name!r}"
        if self._thread_filter is not None:
            where += f", thread {self._thread_filter!r}"
        log = self._log
        if self._mode == "checkpoints":
            return (
                f"Timeline({where} from checkpoints: {_plural(len(self._coarse), 'node write')}, "
                f"{_plural(self._coarse_steps, 'step')})"
            )
        if self._runs_seen == 0:
            return f"Timeline({where}: no runs yet)"
        steps = max(self._max_steps, max((len(r.steps) for r in log.runs.values()), default=0))
        text = _plural(log.started, "execution")
        if self._runs_seen == 1:
            text += f", {_plural(steps, 'step')}"
        else:
            text += f" in {self._runs_seen} runs, up to {_plural(steps, 'step')}"
        if log.retried:
            text += f", {log.retried} retried"
        if log.failed:
            text += f", {log.failed} failed"
        return f"Timeline({where}: {text})"

    def _pull(self) -> bool:
        """Take the events recorded since last time. Returns whether any concerned us."""
        new, self._cursor = self._recorder.records_since(self._cursor)
        kinds = _KINDS
        if self._run_filter is not None:
            run = self._run_filter
            new = [r for r in new if r[1] == run and r[0] in kinds]
        elif self._thread_filter is not None:
            thread = self._thread_filter
            new = [r for r in new if r[2] == thread and r[0] in kinds]
        else:
            new = [r for r in new if r[0] in kinds]
        if not new:
            return False
        if not self._replaced_initial:
            initial = self._initial_runs
            first = next((i for i, r in enumerate(new) if r[1] not in initial), None)
            if first is not None:  # "latest": new runs replace the run shown at creation
                self._replaced_initial = True
                self._reset()
                new = [r for r in new[first:] if r[1] not in initial]
        if self._mode == "checkpoints":  # live events supersede the coarse picture
            self._mode = "thread"
            self._coarse = []
        self._ingest(new)
        return True

    def _reset(self) -> None:
        self._log.clear()
        self._runs_seen = self._max_steps = 0
        self._slots.clear()
        self._slot_until.clear()
        self._t0 = None

    def _ingest(self, records: list[Any]) -> None:
        if len(records) > 2 * self._max_bars:
            records = self._skim(records)
        feed = self._log.feed
        slots = self._slots
        for rec in records:
            kind = rec[0]
            if kind == "run_start":
                if rec[1] not in slots:
                    self._assign_slot(rec[1], rec)
            elif kind == "run_end":
                run = rec[1]
                if run not in slots:
                    self._assign_slot(run, rec)
                self._slot_until[slots[run]] = rec[5]
                info = self._log.runs.get(run)
                if info is not None and len(info.steps) > self._max_steps:
                    self._max_steps = len(info.steps)
            feed(rec)
        # runs whose start was not seen (the view opened mid-run) get their group now
        if any(r not in slots for r in self._log.runs):
            for run, info in self._log.runs.items():
                if run not in slots:
                    self._assign_slot(run, ("run_start", run, info.thread, 0, "", info.start, 0.0))
        self._dirty = True

    def _skim(self, records: list[Any]) -> list[Any]:
        """A long backlog (a fast batch): runs that start and end in its older part are only
        counted, never drawn (only the newest ``max_bars`` executions are), so they skip the log.
        Returns the records still to feed."""
        need = self._max_bars  # the tail to feed: the newest max_bars executions and after
        tail = len(records)
        while tail > 0 and need > 0:
            tail -= 1
            if records[tail][0] == "node_start":
                need -= 1
        if tail == 0:
            return records
        started: set[str] = set()
        whole: set[str] = set()
        for i in range(tail):
            rec = records[i]
            if rec[0] == "run_start":
                started.add(rec[1])
            elif rec[0] == "run_end" and rec[1] in started:
                whole.add(rec[1])
        if not whole:
            return records
        log = self._log
        rest: list[Any] = []
        steps: dict[str, int] = {}
        t0 = self._t0
        for rec in records:
            run = rec[1]
            if run not in whole:
                rest.append(rec)
                continue
            kind = rec[0]
            if kind == "node_start":
                log.started += 1
            elif kind == "step_start":
                steps[run] = steps.get(run, 0) + 1
            elif kind == "node_retry":
                log.retried += 1
            elif kind == "node_error":
                log.failed += 1
            elif kind == "run_start" and (t0 is None or rec[5] < t0):
                t0 = rec[5]
        self._t0 = t0
        self._runs_seen += len(whole)
        self._max_steps = max(self._max_steps, max(steps.values(), default=0))
        return rest

    def _assign_slot(self, run: str, rec: Any) -> None:
        self._runs_seen += 1
        start = rec[5] - rec[6] if rec[0] == "run_end" else rec[5]
        if self._t0 is None or start < self._t0:
            self._t0 = start
        until = self._slot_until
        if self._mode in ("thread", "checkpoints"):
            slot = len(until)  # one group per run, each drawn from its own start
            until.append(None)
        else:  # concurrent runs side by side; a group is reused once its run has ended
            slot = next(
                (i for i, t in enumerate(until) if t is not None and t <= start), len(until)
            )
            if slot == len(until):
                until.append(None)
            else:
                until[slot] = None
        self._slots[run] = slot
        if len(self._slots) > _KEEP_RUNS:  # forget the groups of runs no longer drawn
            runs = self._log.runs
            for old in list(self._slots)[: len(self._slots) - _KEEP_RUNS]:
                if old not in runs:
                    del self._slots[old]

    # -- drawing --------------------------------------------------------------------------------
    def _flush(self) -> bool:
        news = self._pull()
        now = time.perf_counter()
        if news:
            self._last_news = now
        running = any(x.end is None for x in self._log.executions.values())
        if not (news or self._dirty or running):
            return False
        self._render()
        if running and now - self._last_news < _RUNNING_PATIENCE:
            self._coalescer.later(max(self._coalescer.pace, _RUNNING_REDRAW))
        return True

    def _render(self) -> None:
        # One plotly_update: a single message to the front end, and ~8x cheaper in Python than
        # assigning trace properties (which walks plotly's property tree for every key).
        d = self._arrays(time.perf_counter())
        bars = [d["bars"][s] for s in STATUSES]
        s, m = d["steps"], d["marks"]
        nb = len(bars)
        restyle = {
            "base": [b["base"] for b in bars] + [_UNSET, _UNSET],
            "x": [b["x"] for b in bars] + [s["x"], m["x"]],
            "y": [b["y"] for b in bars] + [s["y"], m["y"]],
            "text": [b["text"] for b in bars] + [_UNSET, _UNSET],
            "hovertext": [b["hover"] for b in bars] + [s["hover"], m["hover"]],
            "showlegend": [len(b["x"]) > 0 for b in bars] + [len(s["x"]) > 0, False],
            "marker.symbol": [_UNSET] * (nb + 1) + [m["symbol"]],
            "marker.color": [_UNSET] * (nb + 1) + [m["color"]],
            "marker.line.color": [_UNSET] * (nb + 1) + [m["color"]],
        }
        lanes = d["lanes"]
        n = max(len(lanes), 1)
        relayout: dict[str, Any] = {
            "yaxis.range": [n - 0.5, -0.5],
            "xaxis.title.text": d["xtitle"],
            "height": int(min(900, max(260, 130 + 26 * n))),
            "title.text": f"{self._graph_name}: {self._summary()[len('Timeline(') : -1]}",
        }
        if len(lanes) <= 60:
            relayout.update(
                {
                    "yaxis.tickmode": "array",
                    "yaxis.tickvals": list(range(len(lanes))),
                    "yaxis.ticktext": lanes,
                }
            )
        else:
            relayout.update(
                {"yaxis.tickmode": "auto", "yaxis.tickvals": None, "yaxis.ticktext": None}
            )
        self.plotly_update(
            restyle_data=restyle, relayout_data=relayout, trace_indexes=list(range(nb + 2))
        )
        self._dirty = False
        self._updates_sent += 1

    def _arrays(self, now: float) -> dict[str, Any]:
        """The data of every trace, from the model (touches no plotly object)."""
        per_run = self._mode in ("thread", "checkpoints")
        execs: list[Execution] = list(self._log.executions.values())
        if len(execs) > self._max_bars:
            execs = execs[-self._max_bars :]
        slots = self._slots
        runs = self._log.runs
        # lane groups in use, each as tall as its widest superstep
        width: dict[int, int] = {}
        for x in execs:
            g = slots.get(x.run, 0)
            if x.lane >= width.get(g, 0):
                width[g] = x.lane + 1
        for c in self._coarse:
            if c["lane"] >= width.get(c["group"], 0):
                width[c["group"]] = c["lane"] + 1
        offset: dict[int, int] = {}
        labels: list[str] = []
        groups = sorted(width)
        for g in groups:
            offset[g] = len(labels)
            for lane in range(width[g]):
                if len(groups) == 1:
                    labels.append(f"lane {lane}")
                else:
                    labels.append(f"{'run' if per_run else 'slot'} {g + 1} · lane {lane}")
        t0 = self._t0 if self._t0 is not None else now
        many = self._runs_seen > 1

        cols: dict[str, dict[str, list[Any]]] = {
            s: {"base": [], "x": [], "y": [], "text": [], "hover": []} for s in STATUSES
        }
        marks: dict[str, list[Any]] = {"x": [], "y": [], "hover": [], "symbol": [], "color": []}
        shown: dict[str, int] = {}
        for x in execs:
            g = slots.get(x.run, 0)
            shown[x.run] = g
            if per_run:
                info = runs.get(x.run)
                o = info.start if info is not None else t0
            else:
                o = t0
            end = x.end if x.end is not None else now
            start = x.start - o
            dur = end - x.start if end > x.start else 0.0
            y = offset[g] + x.lane
            hover = x.note
            if hover is None or x.end is None:
                hover = (
                    f"<b>{_escape(x.node)}</b><br>step {x.step} · attempt {x.attempt}<br>"
                    f"{_fmt_s(x.duration if x.end is not None else dur)} · {x.status}"
                )
                if x.error:
                    hover += f"<br>{_escape(x.error)}"
                if many:
                    hover += f"<br>run {x.run[:8]}"
                if x.end is not None:
                    x.note = hover
            c = cols[x.status]
            c["base"].append(start)
            c["x"].append(dur)
            c["y"].append(y)
            c["text"].append(x.node)
            c["hover"].append(hover)
            if x.status == "retry" or x.status == "error":
                marks["x"].append(start + dur)
                marks["y"].append(y)
                marks["hover"].append(hover)
                marks["symbol"].append("x-thin" if x.status == "error" else "circle-open")
                marks["color"].append(STATUSES[x.status][1])

        steps: dict[str, list[Any]] = {"x": [], "y": [], "hover": []}
        for run in list(shown)[-_STEP_LINE_RUNS:]:
            info = runs.get(run)
            if info is None:
                continue
            g = shown[run]
            lo, hi = offset[g] - 0.45, offset[g] + width[g] - 0.55
            o = info.start if per_run else t0
            for step, ts in info.steps.items():
                steps["x"] += [ts - o, ts - o, None]
                steps["y"] += [lo, hi, None]
                steps["hover"] += [f"superstep {step} starts", f"superstep {step} starts", None]
        if self._coarse:
            c = cols["checkpoint"]
            first_of_step: set[tuple[str, int]] = set()
            for b in self._coarse:
                g = b["group"]
                c["base"].append(b["start"])
                c["x"].append(b["duration"])
                c["y"].append(offset[g] + b["lane"])
                c["text"].append(b["node"])
                c["hover"].append(
                    f"<b>{_escape(b['node'])}</b><br>step {b['step']} (from checkpoints)<br>"
                    + (f"step took {_fmt_s(b['duration'])}" if b["known"] else "start unknown")
                )
                if (b["run"], b["step"]) not in first_of_step:
                    first_of_step.add((b["run"], b["step"]))
                    lo, hi = offset[g] - 0.45, offset[g] + width[g] - 0.55
                    steps["x"] += [b["start"], b["start"], None]
                    steps["y"] += [lo, hi, None]
                    steps["hover"] += [f"superstep {b['step']}", f"superstep {b['step']}", None]

        obj = np.asarray
        if per_run:
            xtitle = "seconds since each run's start"
        elif len(shown) > 1:
            xtitle = "seconds since the first run's start"
        else:
            xtitle = "seconds since the run's start"
        return {
            "bars": {
                s: {
                    "base": obj(v["base"], dtype=float),
                    "x": obj(v["x"], dtype=float),
                    "y": obj(v["y"], dtype=float),
                    "text": obj(v["text"], dtype=object),
                    "hover": obj(v["hover"], dtype=object),
                }
                for s, v in cols.items()
            },
            "marks": {
                "x": obj(marks["x"], dtype=float),
                "y": obj(marks["y"], dtype=float),
                "hover": obj(marks["hover"], dtype=object),
                "symbol": obj(marks["symbol"], dtype=object),
                "color": obj(marks["color"], dtype=object),
            },
            "steps": {k: obj(v, dtype=object) for k, v in steps.items()},
            "lanes": labels,
            "xtitle": xtitle,
        }


def _empty_traces() -> list[Any]:
    traces: list[Any] = [
        go.Bar(
            name=name,
            orientation="h",
            base=[],
            x=[],
            y=[],
            text=[],
            hovertext=[],
            marker={"color": colour, "line": {"width": 0}},
            width=0.8,
            textposition="inside",
            insidetextanchor="middle",
            textfont={"size": 11},
            hovertemplate="%{hovertext}<extra></extra>",
            showlegend=False,
        )
        for name, colour in STATUSES.values()
    ]
    traces.append(
        go.Scatter(
            name="superstep start",
            mode="lines",
            x=[],
            y=[],
            hovertext=[],
            line={"color": "rgba(90,90,90,0.55)", "width": 1, "dash": "dot"},
            hovertemplate="%{hovertext}<extra></extra>",
            showlegend=False,
        )
    )
    traces.append(
        go.Scatter(
            name="retries and errors",
            mode="markers",
            x=[],
            y=[],
            hovertext=[],
            marker={"size": 9, "symbol": [], "color": [], "line": {"width": 1.5, "color": []}},
            hovertemplate="%{hovertext}<extra></extra>",
            showlegend=False,
        )
    )
    return traces


def _base_layout(name: str) -> dict[str, Any]:
    return {
        "title": {"text": f"{name}: node executions", "x": 0.01, "font": {"size": 14}},
        "barmode": "overlay",
        "template": "plotly_white",
        "height": 260,
        "margin": {"l": 110, "r": 20, "t": 40, "b": 45},
        "xaxis": {"title": {"text": "seconds since the run's start"}, "rangemode": "tozero"},
        "yaxis": {
            "autorange": False,
            "range": [0.5, -0.5],
            "tickmode": "array",
            "tickvals": [],
            "ticktext": [],
        },
        "uniformtext": {"minsize": 8, "mode": "hide"},
        "legend": {"orientation": "h", "y": -0.25, "x": 0},
        "hovermode": "closest",
    }


def _bars_from_history(history: list[Any]) -> list[dict[str, Any]]:
    """Coarse bars from checkpoints (``history`` is newest first): each step's nodes span from
    the previous checkpoint of the same run to this one; one lane group per run."""
    snaps = sorted(history, key=lambda s: (_wall(s.created_at) or 0.0, s.step))
    by_id = {s.checkpoint_id: s for s in snaps}
    groups: dict[str, int] = {}
    origin: dict[str, float] = {}
    bars: list[dict[str, Any]] = []
    for s in snaps:
        t = _wall(s.created_at)
        if t is None:
            continue
        run = str(s.metadata.get("run_id") or "?")
        if run not in groups:
            groups[run] = len(groups)
            origin[run] = t
        nodes: list[str] = []
        for node, update in s.writes.items():
            if node.startswith("__"):
                continue
            times = len(update) if isinstance(update, list) and _several(update) else 1
            nodes.extend([node] * times)
        if not nodes:
            continue
        parent = by_id.get(s.parent_id) if s.parent_id else None
        pt = _wall(parent.created_at) if parent is not None else None
        known = (
            pt is not None
            and parent is not None
            and str(parent.metadata.get("run_id") or "?") == run
        )
        start = (pt if known and pt is not None else t) - origin[run]
        for lane, node in enumerate(nodes):
            bars.append(
                {
                    "run": run,
                    "group": groups[run],
                    "step": s.step,
                    "node": node,
                    "lane": lane,
                    "start": start,
                    "duration": t - origin[run] - start,
                    "known": known,
                }
            )
    span = max((b["start"] + b["duration"] for b in bars), default=0.0)
    sliver = max(0.02 * span, 1e-3)
    for b in bars:  # a step whose start is unknown still gets a visible bar
        if b["duration"] <= 0:
            b["duration"] = sliver
    return bars


def _several(update: list[Any]) -> bool:
    # StateSnapshot.writes lists the updates of a node that ran several times in a step (Send)
    return len(update) > 1 and all(u is None or isinstance(u, dict) for u in update)


def timeline(
    app: Any,
    run_or_thread: str | None = None,
    *,
    max_bars: int = 2_000,
    interval: float = 0.05,
) -> Timeline:
    """A plotly Gantt chart of a graph's node executions, live during runs.

    What it shows:

    - ``timeline(app)``: the most recent recorded run; runs that start while it is displayed
      replace it and are drawn live, concurrent runs in separate lane groups ("slots", reused
      once their run has ended), x in seconds since the first of them started.
    - ``timeline(app, run_id)``: one recorded run.
    - ``timeline(app, thread_id)``: every recorded run of the thread, one lane group each, each
      from its own start, live as the thread goes on. A thread with checkpoints but no recorded
      events is drawn coarsely from its checkpoint history: one bar per node per superstep,
      from the previous checkpoint's time to its own.

    Within a group, lane *i* holds the *i*-th task of each superstep, so parallel branches get
    separate lanes. Bars: blue ok, orange a failed attempt that was retried (marked ○ at its
    end), red a final failure (marked with an x), grey still running. Hover a bar for node, superstep,
    attempt and duration.

    Creating a timeline turns recording on (``app.record()``), so later runs can be drawn.

    Args:
        app: a compiled graph.
        run_or_thread: a run id, a thread id, or None for the latest run(s).
        max_bars: draw at most this many executions (the newest), to stay fast in long batches.
        interval: least seconds between two live redraws (default 0.05: 20 a second at most).

    Raises:
        InvalidInputError: ``run_or_thread`` is a run that ran before recording started.

    Example:
        >>> tl = app.timeline()        # doctest: +SKIP
        >>> tl                         # display it, then run the graph: bars appear as it goes
    """
    return Timeline(app, run_or_thread, max_bars=max_bars, interval=interval)
