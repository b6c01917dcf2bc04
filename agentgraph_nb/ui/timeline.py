"""The timeline: a plotly Gantt chart of node executions, live during runs.

``app.timeline()`` (or :func:`timeline`) returns a :class:`Timeline`, a plotly ``FigureWidget``:
one horizontal bar per node execution (per attempt), x in seconds from the run's start, one lane
per task of a superstep (parallel branches side by side), colour by status (ok, retried attempt,
error, running), retries and errors marked at their end, dotted lines where supersteps start.
Executions a Ray executor ran (``node_worker`` events) can be drawn one lane per Ray worker
instead (``lanes="worker"``, the default when there are any).

Live updates read the graph's event recorder (``app.record()`` is called for you). The engine's
threads only append events and, at most, arm a timer: the figure is redrawn on that timer's
thread, at most once per ``interval`` (20 times a second by default).

Why this file is long: :class:`Timeline` is both a model (folding recorded events into runs,
lane groups and executions, replacing or following runs live) and its drawing (trace arrays in
one ``plotly_update``). What stands apart lives beside it: the redraw pacing in ``_coalesce``,
the stretched x axis in ``_timescale``, the static picture in ``_pictures``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from agentgraph_nb.errors import InvalidInputError
from agentgraph_nb.observe.frames import Execution, ExecutionLog, _lane
from agentgraph_nb.ui import _static
from agentgraph_nb.ui._coalesce import Coalescer
from agentgraph_nb.ui._plotly import TEMPLATE, graph_objects, widget_bundle
from agentgraph_nb.ui._timescale import TimeScale
from agentgraph_nb.ui._workers import worker_label

if TYPE_CHECKING:
    import plotly.graph_objects as go
else:
    go = graph_objects()  # before any other plotly import: see ui/_plotly.py

from plotly.basedatatypes import Undefined as _UNSET

__all__ = ["LANES", "SCALES", "STATUSES", "Coalescer", "Timeline", "timeline"]

#: Bar traces, in order: status -> (legend name, colour). Then a superstep-lines trace and a
#: trace of marks at the end of retried and failed attempts, and on cache hits (a star: the
#: node was skipped, so its bar has no width).
STATUSES: dict[str, tuple[str, str]] = {
    "ok": ("ok", "#4C78A8"),
    "retry": ("retried attempt", "#F58518"),
    "error": ("error", "#E45756"),
    "running": ("running", "#BAB0AC"),
    "checkpoint": ("step (from checkpoints)", "#72B7B2"),
    "paused": ("paused by an interrupt", "#9334E6"),
    "stopped": ("stopped (a sibling failed)", "#D8B5A5"),
    "compensate": ("compensation (saga)", "#E377C2"),
    "cached": ("cache hit", "#54A24B"),
}
STEP_TRACE = len(STATUSES)
#: The x scales: ``auto`` (stretched when a bar would be too thin to see, else linear),
#: ``linear`` (seconds) and ``stretched`` (see :class:`~agentgraph_nb.ui._timescale.TimeScale`).
SCALES = ("auto", "linear", "stretched")
#: What a lane holds: ``task`` (the *i*-th task of each superstep, per run), ``worker`` (one Ray
#: worker process), ``auto`` (``worker`` when the executions shown ran on Ray workers).
LANES = ("auto", "task", "worker")
MARK_TRACE = STEP_TRACE + 1
_STEP_LINE_RUNS = 100  # superstep lines for the newest runs shown only (a batch would be a hatch)
_KEEP_RUNS = 10_000
_KINDS = frozenset(
    {"run_start", "step_start", "node_start", "node_end", "node_error", "node_retry", "run_end",
     "compensate", "error_caught", "cache_hit", "node_worker"}
)
_MARK_SYMBOLS = {"error": "x-thin", "retry": "circle-open", "cached": "star"}
_RUNNING_REDRAW = 0.25  # seconds between redraws that only grow running bars
_RUNNING_PATIENCE = 300.0  # stop growing them after this long without events


def _fmt_s(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "?"
    if seconds == 0:
        return "0"
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


class Timeline(_static.OpensWhenShown, go.FigureWidget):
    """A live Gantt chart of a graph's node executions: a plotly ``FigureWidget``.

    Made by ``app.timeline()`` / :func:`timeline` (see there for what it shows). Traces, in
    order: one bar trace per status in :data:`STATUSES` (``ok``, ``retry``, ``error``,
    ``running``, ``checkpoint``, ``paused``, ``stopped``, ``compensate`` (a saga's compensations), ``cached``), the
    superstep lines, the retry/error/cache-hit marks. Bars are
    horizontal: ``base`` is the start and ``x`` the length on the x axis, ``y`` the lane,
    ``customdata`` the real start and duration in seconds. On the ``linear`` scale x is seconds;
    on the ``stretched`` one, short stretches of time are widened (see :func:`timeline`).

    Its text repr is deterministic (counts, never times or ids), e.g.
    ``Timeline(graph 'research': 12 executions, 3 steps, 1 retried)``. Displayed, it also leaves
    a static SVG picture for places without the widget (see :mod:`agentgraph_nb.ui._static`).

    Call :meth:`close` (or :meth:`detach`) to stop following the graph.
    """

    def __init__(
        self,
        app: Any,
        run_or_thread: str | None = None,
        *,
        max_bars: int = 2_000,
        interval: float = 0.05,
        scale: str = "auto",
        lanes: str = "auto",
    ) -> None:
        if not isinstance(max_bars, int) or isinstance(max_bars, bool) or max_bars < 1:
            raise InvalidInputError(f"max_bars must be a positive int, got {max_bars!r}")
        if not isinstance(interval, (int, float)) or interval < 0:
            raise InvalidInputError(f"interval must be a number of seconds >= 0, got {interval!r}")
        if scale not in SCALES:
            raise InvalidInputError(
                f"scale must be one of {', '.join(map(repr, SCALES))}, got {scale!r}"
            )
        if lanes not in LANES:
            raise InvalidInputError(
                f"lanes must be one of {', '.join(map(repr, LANES))}, got {lanes!r}"
            )
        name = str(getattr(app, "name", "graph"))
        super().__init__(data=_empty_traces(), layout=_base_layout(name))
        self._validate = False  # our arrays are valid; plotly's per-item checks cost ~10x the send
        self._graph_name = name
        self._scale = scale
        self._scale_used = "linear"
        self._lanes = lanes
        self._lanes_used = "task"
        self._max_bars = max_bars
        self._log = ExecutionLog(max_executions=max_bars)
        self._runs_seen = 0
        self._max_steps = 0  # of runs no longer in the log
        self._updates_sent = 0
        self._slots: dict[str, int] = {}  # run -> lane group
        # a subgraph run -> (the run that started it, the lane of the task that did)
        self._sub: dict[str, tuple[str, int]] = {}
        self._slot_until: list[float | None] = []  # per group: end of its last run (None: running)
        self._t0: float | None = None
        self._coarse: list[dict[str, Any]] = []
        self._coarse_steps = 0
        self._dirty = True
        self._last_news = time.perf_counter()
        self._unsubscribe: Callable[[], None] | None = None
        self._initial_runs: set[str] = set()
        self._replaced_initial = True
        self._follow_thread: str | None = None  # "latest" showing a thread: its new runs join
        self._waiting: list[Any] = []  # "latest": records of new runs that ran no node yet
        self._run_filter: str | None = None
        self._thread_filter: str | None = None
        self._mode = "latest"
        self._hint = ""
        self._picture: dict[str, Any] = {}
        self._coalescer = Coalescer(self._flush, interval)
        self._twin = _static.StaticTwin(
            self,
            self._static_html,
            kind="timeline",
            ready=".js-plotly-plot",
            version=lambda: self._updates_sent,
            before=self.refresh,
        )

        recorder = app.record()
        self._recorder = recorder
        records = recorder.records()
        self._cursor = records[-1] if records else None
        target = None if run_or_thread is None else str(run_or_thread)
        if target is None:
            initial = self._latest(app, records)
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
                else:
                    self._hint = f"thread {target!r} has no checkpoints and no recorded runs yet"
        with self._coalescer.flush_lock:
            self._ingest(initial)
            self._render()
        # Recorded up to the cursor: drawn above; after it: pulled by the next flush (none lost).
        self._unsubscribe = app.listen(self._coalescer.listener())
        self._coalescer.on_close = self._unsubscribe

    def _latest(self, app: Any, records: list[Any]) -> list[Any]:
        """What ``timeline(app)`` shows first: the thread (or, for runs without one, the run)
        that last ran a node. A run that ran none (a debugger waiting at step 0, a resume of a
        finished thread) is skipped; with nothing at all, the title says what to pass."""
        last = next((r for r in reversed(records) if r[0] == "node_start" or r[0] == "cache_hit"), None)
        if last is None:
            self._hint = _what_to_pass(app)
            return []
        run, thread = last[1], last[2]
        if thread is None:
            runs = {run}
        else:  # every run of that thread that ran a node (debugger steps, chat turns...)
            runs = {r[1] for r in records if (r[0] == "node_start" or r[0] == "cache_hit") and r[2] == thread}
            self._follow_thread = thread
        self._initial_runs = runs
        self._replaced_initial = False
        return [r for r in records if r[1] in runs]

    # -- public -------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """``"latest"``, ``"run"``, ``"thread"`` or ``"checkpoints"`` (see :func:`timeline`)."""
        return self._mode

    @property
    def scale(self) -> str:
        """The x scale asked for: ``"auto"``, ``"linear"`` or ``"stretched"``."""
        return self._scale

    @property
    def scale_used(self) -> str:
        """The x scale drawn now: ``"linear"`` or ``"stretched"`` (``auto`` picks one)."""
        return self._scale_used

    @property
    def lanes(self) -> str:
        """What a lane holds, as asked: ``"auto"``, ``"task"`` or ``"worker"`` (see :data:`LANES`)."""
        return self._lanes

    @property
    def lanes_used(self) -> str:
        """What a lane holds in the figure now: ``"task"`` or ``"worker"``."""
        return self._lanes_used

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
        coalescer = getattr(self, "_coalescer", None)  # None: __init__ refused its arguments
        if coalescer is not None:
            coalescer.close()

    def close(self) -> None:
        """Detach and close the widget."""
        self.detach()
        super().close()

    def to_svg(self) -> str:
        """The figure as a static SVG picture (what exports show in place of the widget)."""
        from agentgraph_nb.ui import _pictures

        self.refresh()
        with self._coalescer.flush_lock:
            return _pictures.timeline_svg(self._picture)

    def __reduce__(self) -> Any:  # copies and pickles are plain (static) figures
        return (go.Figure, (self.to_dict(),))

    def __repr__(self) -> str:
        with self._coalescer.flush_lock:
            self._pull()
            return self._summary()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> Any:
        """The widget view, the text repr (nbval and plain terminals see the text) and the
        static picture as ``text/html``."""
        self.open_now()
        bundle = self._live_bundle()
        bundle["text/html"] = self._twin.html()
        return bundle

    def _live_bundle(self) -> dict[str, Any]:
        self.refresh()
        with self._coalescer.flush_lock:  # the figure's state is copied for the new view
            bundle = widget_bundle(self)
            bundle["text/plain"] = self._summary()
        return bundle

    def _ipython_display_(self) -> None:
        """In IPython: the static picture, then the live widget (see ``ui/_static.py``)."""
        _static.display(self, self._twin, self._live_bundle)

    def _static_html(self) -> str:
        from agentgraph_nb.ui import _pictures

        with self._coalescer.flush_lock:
            summary = self._summary()
            svg = _pictures.timeline_svg(self._picture)
        return _static.img(svg, summary)

    # -- model (all under the coalescer's flush lock) ------------------------------------------
    def _summary(self) -> str:
        where, text = self._summary_parts()
        return f"Timeline({where}: {text})"

    def _title(self) -> str:
        thread = self._thread_filter or self._follow_thread
        where = self._graph_name + (f" \u00b7 thread {thread!r}" if thread is not None else "")
        return f"{where}: {self._summary_parts()[1]}"

    def _summary_parts(self) -> tuple[str, str]:
        where = f"graph {self._graph_name!r}"
        thread = self._thread_filter or self._follow_thread
        if thread is not None:
            where += f", thread {thread!r}"
        log = self._log
        if self._mode == "checkpoints":
            return (
                f"{where} from checkpoints",
                f"{_plural(len(self._coarse), 'node write')}, {_plural(self._coarse_steps, 'step')}",
            )
        if self._runs_seen == 0:
            return where, "no runs yet"
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
        if log.cached:
            text += f", {log.cached} from cache"
        return where, text

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
            new = self._after_initial(new)
            if not new:
                return False
        if self._mode == "checkpoints":  # live events supersede the coarse picture
            self._mode = "thread"
            self._coarse = []
        self._ingest(new)
        return True

    def _after_initial(self, new: list[Any]) -> list[Any]:
        """``latest``: runs of the runs (or thread) shown at creation are added; the first new
        run elsewhere that runs a node replaces them (runs that run none are held back until
        they do, so a debugger's step-0 run does not blank the chart)."""
        initial, follow = self._initial_runs, self._follow_thread
        ours: list[Any] = []
        waiting = self._waiting
        trigger = None
        for rec in new:
            if rec[1] in initial or (follow is not None and rec[2] == follow):
                ours.append(rec)
            elif trigger is None:
                waiting.append(rec)
                if rec[0] == "node_start" or rec[0] == "cache_hit":
                    trigger = rec[1]
            else:
                waiting.append(rec)
        if trigger is None:
            if len(waiting) > 4 * self._max_bars:  # bounded: keep the newest
                del waiting[: len(waiting) - 2 * self._max_bars]
            return ours
        self._replaced_initial = True
        self._follow_thread = None
        self._reset()
        first = next(i for i, r in enumerate(waiting) if r[1] == trigger)
        out = waiting[first:]
        self._waiting = []
        return out

    def _reset(self) -> None:
        self._log.clear()
        self._runs_seen = self._max_steps = 0
        self._slots.clear()
        self._sub.clear()
        self._slot_until.clear()
        self._t0 = None
        self._hint = ""

    def _ingest(self, records: list[Any]) -> None:
        if len(records) > 2 * self._max_bars:
            records = self._skim(records)
        feed = self._log.feed
        slots = self._slots
        sub = self._sub
        for rec in records:
            kind = rec[0]
            if len(rec) > 10 and rec[10] and kind in ("run_start", "run_end"):
                # a subgraph run: its bars go in the group of the run it is part of
                data = rec[9] if kind == "run_start" and isinstance(rec[9], dict) else None
                if data and data.get("parent_run_id"):
                    sub[rec[1]] = (str(data["parent_run_id"]), _lane(str(data.get("parent_task_id") or "")))
                    slots[rec[1]] = slots.get(self._top(rec[1])[0], 0)
                if kind == "run_end":
                    feed(rec)
                continue
            if kind == "run_start":
                if rec[1] not in slots:
                    self._assign_slot(rec[1], rec)
            elif kind == "run_end":
                run = rec[1]
                if run not in slots:
                    self._assign_slot(run, rec)
                self._slot_until[slots[run]] = rec[5]
                feed(rec)
                info = self._log.runs.get(run)
                if info is not None and not info.steps and info.executions == 0:
                    self._forget_idle_run(run)  # ran no node (a resume of a finished thread...)
                    continue
                if info is not None and len(info.steps) > self._max_steps:
                    self._max_steps = len(info.steps)
                continue
            feed(rec)
        # runs whose start was not seen (the view opened mid-run) get their group now
        if any(r not in slots for r in self._log.runs):
            for run, info in self._log.runs.items():
                if run not in slots:
                    self._assign_slot(run, ("run_start", run, info.thread, 0, "", info.start, 0.0))
        self._hint = self._hint if self._runs_seen == 0 else ""
        self._dirty = True

    def _top(self, run: str) -> tuple[str, int]:
        """The top-level run a (subgraph) run is part of, and the lane of its task there."""
        lane = -1
        seen = 0
        while run in self._sub and seen < 64:
            run, lane = self._sub[run]
            seen += 1
        return run, lane

    def _forget_idle_run(self, run: str) -> None:
        self._log.runs.pop(run, None)
        slot = self._slots.pop(run, None)
        self._runs_seen -= 1
        if (
            slot is not None
            and slot == len(self._slot_until) - 1
            and slot not in self._slots.values()
        ):
            self._slot_until.pop()

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
        if self._mode in ("thread", "checkpoints") or self._follow_thread is not None:
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
            "customdata": [b["real"] for b in bars] + [_UNSET, _UNSET],
            "showlegend": [len(b["x"]) > 0 for b in bars] + [len(s["x"]) > 0, False],
            "marker.symbol": [_UNSET] * (nb + 1) + [m["symbol"]],
            "marker.color": [_UNSET] * (nb + 1) + [m["color"]],
            "marker.line.color": [_UNSET] * (nb + 1) + [m["color"]],
        }
        lanes = d["lanes"]
        n = max(len(lanes), 1)
        title = self._title()
        relayout: dict[str, Any] = {
            "yaxis.range": [n - 0.5, -0.5],
            "xaxis.title.text": d["xtitle"],
            "height": int(min(900, max(280, 150 + 26 * n))),
            "title.text": title,
            "title.subtitle.text": d["subtitle"],
        }
        ticks = d["xticks"]
        if ticks is None:
            relayout.update(
                {
                    "xaxis.tickmode": "auto",
                    "xaxis.tickvals": None,
                    "xaxis.ticktext": None,
                    "xaxis.autorange": True,
                }
            )
        else:
            relayout.update(
                {
                    "xaxis.tickmode": "array",
                    "xaxis.tickvals": [t[0] for t in ticks],
                    "xaxis.ticktext": [t[1] for t in ticks],
                    "xaxis.autorange": False,
                    "xaxis.range": [0, d["xmax"]],
                }
            )
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
        self._picture = {**d, "title": title, "summary": self._summary()}
        self._dirty = False
        self._updates_sent += 1

    def _arrays(self, now: float) -> dict[str, Any]:
        """The data of every trace, from the model (touches no plotly object)."""
        per_run = self._mode in ("thread", "checkpoints") or self._follow_thread is not None
        execs: list[Execution] = list(self._log.executions.values())
        if len(execs) > self._max_bars:
            execs = execs[-self._max_bars :]
        slots = self._slots
        runs = self._log.runs
        sub = self._sub
        by_worker = not self._coarse and (
            self._lanes == "worker" or (self._lanes == "auto" and any(x.worker is not None for x in execs))
        )
        self._lanes_used = "worker" if by_worker else "task"
        if by_worker:  # one common clock: a worker's lane holds executions of every run
            per_run = False
            worker_row, worker_labels = _worker_rows(execs, self._log.workers)
        # lane groups in use, each as tall as its widest superstep; a subgraph's executions get
        # rows of their own right under the lane of the task that ran it, indented by namespace
        width: dict[int, int] = {}
        nested: dict[int, set[tuple[int, str, int]]] = {}
        for x in ([] if by_worker else execs):
            g = slots.get(x.run, 0)
            if x.namespace and x.run in sub:
                nested.setdefault(g, set()).add((self._top(x.run)[1], x.namespace, x.lane))
            elif x.lane >= width.get(g, 0):
                width[g] = x.lane + 1
        for c in self._coarse:
            if c["lane"] >= width.get(c["group"], 0):
                width[c["group"]] = c["lane"] + 1
        for g, rows in nested.items():
            width[g] = max(width.get(g, 0), max(r[0] for r in rows) + 1)
        offset: dict[int, int] = {}
        row: dict[tuple[int, int, str, int], int] = {}
        height: dict[int, int] = {}
        labels: list[str] = []
        groups = sorted(width)
        for i, g in enumerate(groups):
            offset[g] = len(labels)
            inner = sorted(nested.get(g, ()))
            for lane in range(width[g]):
                row[(g, lane, "", 0)] = len(labels)
                if len(groups) == 1:
                    labels.append(f"lane {lane}")
                else:
                    # numbered as drawn, so a run that ran no node leaves no gap
                    labels.append(f"{'run' if per_run else 'slot'} {i + 1} · lane {lane}")
                for top_lane, ns, sub_lane in inner:
                    if top_lane == lane:
                        row[(g, lane, ns, sub_lane)] = len(labels)
                        labels.append(f"{chr(0x2003) * (ns.count('|') + 1)}{ns.replace('|', ' > ')} · lane {sub_lane}")
            height[g] = len(labels) - offset[g]
        if by_worker:
            labels = worker_labels
            offset, height = {0: 0}, {0: len(labels)}
        t0 = self._t0 if self._t0 is not None else now
        many = self._runs_seen > 1

        cols: dict[str, dict[str, list[Any]]] = {
            s: {"base": [], "x": [], "y": [], "text": [], "hover": []} for s in STATUSES
        }
        marks: dict[str, list[Any]] = {"x": [], "y": [], "hover": [], "symbol": [], "color": []}
        shown: dict[str, int] = {}
        for x in execs:
            g = 0 if by_worker else slots.get(x.run, 0)
            nested_in = x.namespace and x.run in sub and not by_worker
            if not nested_in:
                shown[x.run] = g
            if per_run:
                info = runs.get(self._top(x.run)[0] if nested_in else x.run)
                o = info.start if info is not None else t0
            else:
                o = t0
            end = x.end if x.end is not None else now
            begin = x.start
            if by_worker:
                y = worker_row(x)
                if x.worker_end is not None:  # drawn while it ran on the worker, on this clock
                    end = min(end, x.worker_end)
                    begin = max(x.start, end - x.worker_time)
            else:
                y = row[(g, self._top(x.run)[1], x.namespace, x.lane)] if nested_in else row[(g, x.lane, "", 0)]
            start = begin - o
            dur = end - begin if end > begin else 0.0
            hover = x.note
            if hover is None or x.end is None:
                hover = (
                    f"<b>{_escape(x.namespace.replace('|', ' > ') + ' > ' if x.namespace else '')}{_escape(x.node)}</b>"
                    f"<br>step {x.step} · attempt {x.attempt}<br>"
                    f"{_fmt_s(x.duration if x.end is not None else dur)} · {x.status}"
                ) if x.status != "cached" else (
                    f"<b>{_escape(x.namespace.replace('|', ' > ') + ' > ' if x.namespace else '')}{_escape(x.node)}</b>"
                    f"<br>step {x.step}<br>cache hit: skipped, its saved result applied"
                )
                if x.error:
                    hover += f"<br>{_escape(x.error)}"
                if x.worker is not None:
                    hover += (
                        f"<br>on Ray worker {_escape(x.worker)} (node {_escape((x.ray_node or '?')[:8])})"
                        f": {_fmt_s(x.worker_time)} there"
                    )
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
            if x.status == "retry" or x.status == "error" or x.status == "cached":
                marks["x"].append(start + dur)
                marks["y"].append(y)
                marks["hover"].append(hover)
                marks["symbol"].append(_MARK_SYMBOLS[x.status])
                marks["color"].append(STATUSES[x.status][1])

        steps: dict[str, list[Any]] = {"x": [], "y": [], "hover": []}
        # worker lanes hold every run: superstep lines only when they are those of one run
        step_runs = list(shown)[-_STEP_LINE_RUNS:] if not by_worker or len(shown) == 1 else []
        for run in step_runs:
            info = runs.get(run)
            if info is None:
                continue
            g = shown[run]
            lo, hi = offset[g] - 0.45, offset[g] + height[g] - 0.55
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
                c["y"].append(row.get((g, b["lane"], "", 0), offset[g] + b["lane"]))
                c["text"].append(b["node"])
                c["hover"].append(
                    f"<b>{_escape(b['node'])}</b><br>step {b['step']} (from checkpoints)<br>"
                    + (f"step took {_fmt_s(b['duration'])}" if b["known"] else "start unknown")
                )
                if (b["run"], b["step"]) not in first_of_step:
                    first_of_step.add((b["run"], b["step"]))
                    lo, hi = offset[g] - 0.45, offset[g] + height[g] - 0.55
                    steps["x"] += [b["start"], b["start"], None]
                    steps["y"] += [lo, hi, None]
                    steps["hover"] += [f"superstep {b['step']}", f"superstep {b['step']}", None]

        # -- from seconds to the x axis: linear, or stretched so every bar is visible ----------
        real_base = {s: np.asarray(v["base"], dtype=float) for s, v in cols.items()}
        real_len = {s: np.asarray(v["x"], dtype=float) for s, v in cols.items()}
        starts = np.concatenate(list(real_base.values()))
        ends = starts + np.concatenate(list(real_len.values()))
        step_x = np.asarray([v for v in steps["x"] if v is not None], dtype=float)
        warp = TimeScale(starts, ends, step_x, self._scale)
        self._scale_used = warp.kind
        obj = np.asarray
        bars_out: dict[str, dict[str, Any]] = {}
        for s, v in cols.items():
            b0, length = real_base[s], real_len[s]
            wb = warp(b0)
            we = warp(b0 + length)
            bars_out[s] = {
                "base": wb,
                "x": np.maximum(we - wb, warp.min_width),
                "y": obj(v["y"], dtype=float),
                "text": obj(v["text"], dtype=object),
                "hover": obj(v["hover"], dtype=object),
                "real": np.stack([b0, length], axis=1) if len(b0) else np.zeros((0, 2)),
            }
        mark_x = warp(obj(marks["x"], dtype=float))
        step_xs: list[Any] = []
        it = iter(warp(step_x).tolist())
        for v in steps["x"]:
            step_xs.append(None if v is None else next(it))

        if per_run and len(shown) > 1:
            xtitle = "time since each run's start"
        elif len(shown) > 1:
            xtitle = "time since the first run's start"
        else:
            xtitle = "time since the run's start"
        if warp.kind == "stretched":
            xtitle += " (short steps widened so that every bar shows; ticks are real times)"
        else:
            xtitle += " (s)"
        return {
            "bars": bars_out,
            "marks": {
                "x": mark_x,
                "y": obj(marks["y"], dtype=float),
                "hover": obj(marks["hover"], dtype=object),
                "symbol": obj(marks["symbol"], dtype=object),
                "color": obj(marks["color"], dtype=object),
            },
            "steps": {
                "x": obj(step_xs, dtype=object),
                "y": obj(steps["y"], dtype=object),
                "hover": obj(steps["hover"], dtype=object),
            },
            "lanes": labels,
            "xtitle": xtitle,
            "xticks": warp.ticks() if warp.kind == "stretched" else None,
            "xmax": warp.total,
            "subtitle": self._hint or (_WORKER_SUBTITLE if by_worker else ""),
        }


_WORKER_SUBTITLE = "one lane per Ray worker (host · Ray node · pid); a bar spans the time the node ran there"
_HERE = "driver (or worker unknown)"
_UNPLACED = "in flight: worker known at its end"


def _worker_rows(
    execs: list[Execution], workers: dict[str, dict[str, Any]]
) -> tuple[Callable[[Execution], int], list[str]]:
    """The lanes of ``lanes="worker"``: one per Ray worker that ran one of ``execs``, those of
    one Ray node together, in the order first seen; then one for finished executions that no
    worker reported (nodes kept on the driver, cache hits, a worker that died with its node),
    then one for executions still running, whose worker is only known when their result comes
    back. Returns (execution -> lane, labels)."""
    used = {x.worker for x in execs if x.worker is not None}
    by_node: dict[str, list[str]] = {}
    for w in list(workers) + sorted(used - workers.keys()):
        if w in used:
            data = workers.get(w) or {"worker": w}
            by_node.setdefault(str(data.get("node_id") or ""), []).append(w)
    order = [w for ws in by_node.values() for w in ws]
    lane = {w: i for i, w in enumerate(order)}
    labels = [worker_label(workers.get(w) or {"host": w}) for w in order]
    here = unplaced = len(labels)
    if any(x.worker is None and x.end is not None for x in execs):
        labels.append(_HERE)
        unplaced = len(labels)
    if any(x.worker is None and x.end is None for x in execs):
        labels.append(_UNPLACED)

    def row(x: Execution) -> int:
        if x.worker is not None:
            return lane[x.worker]
        return here if x.end is not None else unplaced

    return row, labels


def _what_to_pass(app: Any) -> str:
    """The subtitle of an empty ``timeline(app)``: what to run or pass."""
    name = str(getattr(app, "name", "app"))
    text = "No node has run since recording started: run the graph (bars appear live)"
    threads: list[str] = []
    if getattr(app, "checkpointer", None) is not None:
        try:
            threads = [str(t) for t in app.list_threads()][:3]
        except Exception:  # a store that cannot list: no suggestion
            threads = []
    if threads:
        text += f", or pass a thread id, e.g. {name}.timeline({threads[0]!r})"
        if len(threads) > 1:
            text += f" (threads: {', '.join(map(repr, threads))})"
    else:
        text += f", or pass a thread id: {name}.timeline('thread-id')"
    return text + "."


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
            # a white edge: back-to-back executions on one lane stay two bars, not one
            marker={"color": colour, "line": {"width": 1, "color": "#ffffff"}},
            width=0.8,
            textposition="inside",
            insidetextanchor="middle",
            textangle=0,  # a name that does not fit is hidden, not turned on its side
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
        # The title sits over the plot's left part and plotly's toolbar (modebar) stands
        # vertically in the right margin, so that the two never overlap.
        "title": {
            "text": f"{name}: node executions",
            "x": 0.01,
            "xanchor": "left",
            "y": 0.98,
            "yanchor": "top",
            "yref": "container",
            "font": {"size": 14},
            "subtitle": {"text": "", "font": {"size": 11, "color": "#57606a"}},
        },
        "modebar": {"orientation": "v"},
        "barmode": "overlay",
        "template": TEMPLATE,
        "height": 280,
        "margin": {"l": 110, "r": 44, "t": 56, "b": 50},
        "xaxis": {"title": {"text": "time since the run's start (s)"}, "rangemode": "tozero"},
        "yaxis": {
            "autorange": False,
            "automargin": True,  # worker lanes are labelled "host · node id · pid"
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
    scale: str = "auto",
    lanes: str = "auto",
) -> Timeline:
    """A plotly Gantt chart of a graph's node executions, live during runs.

    What it shows:

    - ``timeline(app)``: the thread that last ran a node, every recorded run of it (a
      debugger's steps included; for a run without a thread, that run). A run that ran no
      node (a debugger waiting at step 0) is skipped; when nothing ran at all, the chart says
      what to run or pass. Runs on that thread join it live; the first run elsewhere replaces
      it, and later ones are drawn live, concurrent runs in separate lane groups ("slots",
      reused once their run has ended), x from the first of them.
    - ``timeline(app, run_id)``: one recorded run.
    - ``timeline(app, thread_id)``: every recorded run of the thread, one lane group each, each
      from its own start, live as the thread goes on. A thread with checkpoints but no recorded
      events is drawn coarsely from its checkpoint history: one bar per node per superstep,
      from the previous checkpoint's time to its own.

    Within a group, lane *i* holds the *i*-th task of each superstep, so parallel branches get
    separate lanes. Executions that a Ray executor ran (``executor="ray"``) go one lane per Ray
    worker process instead, labelled ``host · node <Ray node id> · pid <pid>``, every run on
    the same clock, each bar spanning the time its node ran on that worker (still labelled and
    coloured as above); executions no worker reported (nodes kept on the driver, cache hits) get
    a lane of their own, and so do running ones, whose worker is known when their result comes
    back (``lanes="task"`` keeps the task lanes). Bars: blue ok, orange a failed attempt that was retried (marked ○ at its
    end), red a final failure (marked with an x), grey still running, purple paused by an
    interrupt() until the run ends, light brown stopped because a sibling failed. Hover a bar for node, superstep,
    attempt and duration.

    When one node takes 10,000 times longer than the others, a linear time axis leaves the
    fast ones invisible: with ``scale="auto"`` (the default) such a chart is *stretched*, every
    stretch of time that a bar covers at least ~1-6 % of the width (idle gaps shrunk), order
    and overlaps kept, ticks labelled with the real times; ``scale="linear"`` keeps seconds
    (bars at least ~3 px wide), ``scale="stretched"`` always stretches.

    Displayed in a notebook it also leaves a static SVG picture of itself, which HTML exports,
    nbviewer and GitHub show where the widget cannot run. Creating a timeline turns recording
    on (``app.record()``), so later runs can be drawn.

    Args:
        app: a compiled graph.
        run_or_thread: a run id, a thread id, or None for the latest thread or run.
        max_bars: draw at most this many executions (the newest), to stay fast in long batches.
        interval: least seconds between two live redraws (default 0.05: 20 a second at most).
        scale: ``"auto"``, ``"linear"`` or ``"stretched"`` x axis (see above).
        lanes: ``"auto"`` (one per Ray worker when the executions shown ran on Ray workers,
            else per task), ``"task"`` or ``"worker"``.

    Raises:
        InvalidInputError: ``run_or_thread`` is a run that ran before recording started, or
            an option is out of range.

    Example:
        >>> tl = app.timeline()        # doctest: +SKIP
        >>> tl                         # display it, then run the graph: bars appear as it goes
    """
    return Timeline(app, run_or_thread, max_bars=max_bars, interval=interval, scale=scale, lanes=lanes)
