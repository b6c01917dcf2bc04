"""The dashboard: latency, throughput, errors, retries, tokens and cost of a compiled graph.

It reads the graph's own metrics (``app.metrics``, kept by the engine at a few attribute updates
per node execution), so it shows the history of every run so far (the engine's windows: the
last 10,000 executions per node, the last 10,000 runs), and redraws when events say something
changed, at most once per ``interval`` (stretched if redraws get slow). Its listener does
almost nothing per event (it arms a timer), so it stays cheap during big batches.

Everything sent to the front end is JSON-safe: numbers go as float arrays (NaN allowed there,
drawn as gaps), never as lists holding NaN, which the kernel's JSON cannot carry.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import numpy as np

from agentgraph_nb.errors import InvalidInputError
from agentgraph_nb.ui import _static
from agentgraph_nb.ui._coalesce import Coalescer
from agentgraph_nb.ui._plotly import TEMPLATE, graph_objects, widget_bundle
from agentgraph_nb.ui._workers import worker_arrays, worker_figure, worker_update

if TYPE_CHECKING:
    import plotly.graph_objects as go
else:
    go = graph_objects()  # before any other plotly import: see ui/_plotly.py

from plotly.basedatatypes import Undefined as _UNSET
from plotly.subplots import make_subplots

__all__ = ["PANELS", "Dashboard"]

#: The four panels, in reading order (row by row).
PANELS = (
    "latency per node (ms, log scale)",
    "throughput (runs finished per second)",
    "errors and retries per node",
    "tokens per node",
)
_DURATION_TITLE = "run duration (ms, log scale): how many runs"
_P = ("p50", "p90", "p99")
_COLOURS = {
    "p50": "#4C78A8",
    "p90": "#72B7B2",
    "p99": "#F58518",
    "throughput": "#54A24B",
    "errors": "#E45756",
    "retries": "#EECA3B",
    "tokens_in": "#4C78A8",
    "tokens_out": "#B279A2",
    "duration": "#9D755D",
}
_SYMBOLS = {"p50": "circle", "p90": "diamond", "p99": "triangle-up"}
# trace indexes
T_P50, T_P90, T_P99, T_RANGE, T_RATE, T_ERR, T_RETRY, T_TIN, T_TOUT, T_DUR = range(10)
_N_TRACES = 10
_MAX_BINS = 60
_IN_FLIGHT_REDRAW = 0.25  # seconds between redraws of the worker panel while nodes are in flight


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _window(values: Any) -> Any:
    while True:  # the engine appends without a lock; a copy that raced an append reads again
        try:
            return np.fromiter(values, dtype=float)
        except RuntimeError:
            continue


def _nice(x: float) -> float:
    """The largest of 1, 2, 2.5, 5 x 10^k that is <= x (a bin width a reader can say)."""
    if x <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(x))
    return next(m * mag for m in (10, 5, 2.5, 2, 1) if m * mag <= x * (1 + 1e-9))


class _Figure(_static.OpensWhenShown, go.FigureWidget):
    """The dashboard's plotly figure: its comm opens with the dashboard's (see
    :class:`~agentgraph_nb.ui._static.OpensWhenShown`)."""


class Dashboard(_static.OpensWhenShown, widgets.VBox):
    """Metrics of a compiled graph as one widget: a header line (runs started, completed,
    failed, in flight, recent rate, run duration) over four panels:

    - latency per node: p50, p90 and p99 in ms on a log scale (a 50 µs router and a 2 s model
      call both readable), over each node's last 10,000 executions;
    - throughput: runs finished per second over time, from the recorded history of run ends
      (so a dashboard opened after a batch shows the batch), over the last ``window`` seconds
      that saw runs;
    - errors and retries per node;
    - tokens in and out per node with their cost, once nodes call a chat model that reports
      usage (``NodeStats.tokens_in``/``tokens_out``/``cost``); before that, the distribution of
      run durations.

    Made by ``app.dashboard()``. Updates are coalesced: at most one redraw per ``interval``
    seconds (20 a second by default), whatever the rate of events. The text repr is
    deterministic, e.g. ``Dashboard(graph 'research': 3 nodes, 10000 runs completed, 0 failed)``.
    Displayed in a notebook it also leaves a static SVG picture of the four panels for HTML
    exports, nbviewer and GitHub.

    With ``workers=executor`` (a :class:`~agentgraph_nb.distributed.RayExecutor`) a panel of the
    Ray workers follows, one row each (``host · node <Ray node id> · pid``): node executions and
    runs in flight on it now, executions done, and seconds it spent running them; the header
    adds the workers, machines, and executions in flight whose worker is not known yet (queued
    for a CPU). It is redrawn on events, and every 0.25 s while executions are in flight. The
    dashboard makes the executor watch (:meth:`RayExecutor.watch`: each execution reports its
    start), which costs a list append per execution on the workers. The static picture shows
    the panel too.

    Args:
        app: the compiled graph.
        interval: seconds between two redraws at most.
        bin_seconds: width of a throughput bin; None (default) picks one from the span shown
            (about 8 to 60 bins).
        window: seconds of throughput history shown, ending at the last run (or now while
            runs go on).
        workers: a Ray executor whose workers to show (``executor=`` of the runs), or None.

    Attributes:
        figure: the plotly ``FigureWidget`` with the four panels.
        worker_figure: the worker panel's ``FigureWidget`` (None without ``workers=``).
        updates_sent: how many redraws were sent to the front end.

    Example:
        >>> dash = app.dashboard()              # doctest: +SKIP
        >>> dash                                # display it, then:
        >>> app.batch([{"x": i} for i in range(10_000)])   # doctest: +SKIP
        >>> ex = RayExecutor(address=cluster.address)           # doctest: +SKIP
        >>> app.dashboard(workers=ex)                           # doctest: +SKIP
        >>> app.batch(inputs, executor=ex, progress=True)       # doctest: +SKIP
    """

    def __init__(
        self,
        app: Any,
        *,
        interval: float = 0.05,
        bin_seconds: float | None = None,
        window: float = 120.0,
        workers: Any = None,
    ) -> None:
        if not isinstance(interval, (int, float)) or interval < 0:
            raise InvalidInputError(f"interval must be a number of seconds >= 0, got {interval!r}")
        if bin_seconds is not None and (
            not isinstance(bin_seconds, (int, float)) or bin_seconds <= 0
        ):
            raise InvalidInputError(
                f"bin_seconds must be a positive number or None, got {bin_seconds!r}"
            )
        if not isinstance(window, (int, float)) or window <= 0:
            raise InvalidInputError(f"window must be a positive number of seconds, got {window!r}")
        if workers is not None and not callable(getattr(workers, "worker_stats", None)):
            raise InvalidInputError(
                f"workers= takes the Ray executor the runs use (RayExecutor(...)), got {workers!r}"
            )
        self._workers = workers
        self._app = app
        self._name: str = getattr(app, "name", "graph")
        self._bin = None if bin_seconds is None else float(bin_seconds)
        self._window = float(window)
        ends = _window(app.metrics.runs.ends)
        now = time.perf_counter()
        # x = 0 at the first run end the engine still remembers (or now): fixed, so a live
        # chart does not slide under the reader
        self._t0 = float(ends.min()) if ends.size else now
        self._nodes: list[str] = [r["node"] for r in app.metrics.rows()]
        self._node_array = np.asarray(self._nodes, dtype=object)
        self._updates_sent = 0
        self._picture: dict[str, Any] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._coalescer = Coalescer(self._flush, interval)
        self.figure = _figure(self._nodes)
        self.figure._validate = (
            False  # our arrays are valid; plotly's checks cost more than sending
        )
        self._header = widgets.HTML()
        self.worker_figure: Any = None
        children: list[Any] = [self._header, self.figure]
        if workers is not None:
            watch = getattr(workers, "watch", None)
            if callable(watch):
                watch()
            self.worker_figure = _Figure(worker_figure())
            self.worker_figure._validate = False
            children.append(self.worker_figure)
        super().__init__(children=children)
        self.add_class("agentgraph-dashboard")
        self._twin = _static.StaticTwin(
            self,
            self._static_html,
            kind="dashboard",
            ready=".js-plotly-plot",
            version=lambda: self._updates_sent,
            before=self.refresh,
        )
        self._coalescer.run()
        self._unsubscribe = app.listen(self._coalescer.listener())
        self._coalescer.on_close = self._unsubscribe

    # -- public ---------------------------------------------------------------------------------
    @property
    def updates_sent(self) -> int:
        """How many redraws were sent to the front end so far."""
        return self._updates_sent

    def refresh(self) -> bool:
        """Redraw now from the current metrics."""
        return self._coalescer.run()

    def detach(self) -> None:
        """Stop following the graph."""
        self._unsubscribe = None
        coalescer = getattr(self, "_coalescer", None)  # None: __init__ refused its arguments
        if coalescer is not None:
            coalescer.close()

    def close(self) -> None:
        """Detach and close the widget and its figure."""
        self.detach()
        parts = (getattr(self, "figure", None), getattr(self, "worker_figure", None), getattr(self, "_header", None))
        for part in parts:
            if part is not None:
                part.close()
        super().close()

    def to_svg(self) -> str:
        """The four panels (and the worker panel) as a static SVG picture (what exports show
        in place of the widget)."""
        from agentgraph_nb.ui import _pictures

        self.refresh()
        with self._coalescer.flush_lock:
            return _pictures.dashboard_svg(self._picture)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget view (with the figure's current state, which a view that opens later
        starts from), the text repr, and the static picture as ``text/html``."""
        self.open_now()
        bundle = self._live_bundle(**kwargs)
        bundle["text/html"] = self._twin.html()
        return bundle

    def _live_bundle(self, **kwargs: Any) -> dict[str, Any]:
        self.refresh()
        with self._coalescer.flush_lock:
            widget_bundle(self.figure)  # copies the figure's current state for the new view
            if self.worker_figure is not None:
                widget_bundle(self.worker_figure)
        bundle = super()._repr_mimebundle_(**kwargs)
        data = dict(bundle[0] if isinstance(bundle, tuple) else bundle)
        data["text/plain"] = repr(self)
        return data

    def _ipython_display_(self) -> None:
        """In IPython: the static picture, then the live widget (see ``ui/_static.py``)."""
        _static.display(self, self._twin, self._live_bundle)

    def __repr__(self) -> str:
        runs = self._app.metrics.runs
        nodes = len(self._nodes)
        return (
            f"Dashboard(graph {self._name!r}: {nodes} node{'' if nodes == 1 else 's'}, "
            f"{runs.completed} runs completed, {runs.failed} failed)"
        )

    def _static_html(self) -> str:
        from agentgraph_nb.ui import _pictures

        with self._coalescer.flush_lock:
            header = self._header.value
            svg = _pictures.dashboard_svg(self._picture)
        return f'<div style="font-size:13px;margin:2px 0 6px">{header}</div>' + _static.img(
            svg, repr(self)
        )

    # -- drawing --------------------------------------------------------------------------------
    def _throughput(self, now: float, busy: bool) -> tuple[Any, Any, float]:
        """Bin centres (seconds since ``_t0``), runs finished per second, and the bin width."""
        ends = _window(self._app.metrics.runs.ends)
        if not ends.size:
            return np.zeros(0), np.zeros(0), self._bin or 1.0
        last = float(ends.max())
        # the window ends now while runs go on, else at the last run (a batch that ended a
        # while ago is shown whole, not as a spike at the left of an empty axis)
        right = now if busy else last
        left = max(float(ends.min()), right - self._window)
        span = max(right - left, 1e-3)
        shown = ends[(ends >= left) & (ends <= right)]
        if self._bin is not None:
            width = self._bin
        else:
            bins = int(min(_MAX_BINS / 2, max(8, math.sqrt(max(shown.size, 1)) * 2)))
            width = _nice(span / bins)
        lo = math.floor((left - self._t0) / width)
        hi = math.floor((right - self._t0) / width) + 1
        if hi - lo > 4 * _MAX_BINS:  # a fixed bin_seconds much finer than the span
            lo = hi - 4 * _MAX_BINS
        edges = self._t0 + np.arange(lo, hi + 1, dtype=float) * width
        counts, _ = np.histogram(shown, bins=edges)
        centres = (edges[:-1] + edges[1:]) / 2 - self._t0
        return centres, counts.astype(float) / width, width

    def _node_stats(self) -> dict[str, Any]:
        """Per node (in graph order): latency percentiles (ms), errors, retries, tokens, cost,
        cache hits and misses."""
        metrics = self._app.metrics
        n = len(self._nodes)
        lat = np.full((3, n), np.nan)
        errors, retries = np.zeros(n), np.zeros(n)
        tin, tout, cost = np.zeros(n), np.zeros(n), np.zeros(n)
        hits, misses = np.zeros(n), np.zeros(n)
        for i, name in enumerate(self._nodes):
            st = metrics.node(name)
            window = _window(st.latencies)  # the last 10,000 executions
            if window.size:  # numpy takes the percentiles, linear like Metrics.rows()
                lat[:, i] = np.percentile(window, (50, 90, 99)) * 1e3
            errors[i] = st.errors
            retries[i] = st.retries
            # usage reported by chat models (DESIGN "Usage and cost"); absent on older engines
            tin[i] = float(getattr(st, "tokens_in", 0) or 0)
            tout[i] = float(getattr(st, "tokens_out", 0) or 0)
            cost[i] = float(getattr(st, "cost", 0) or 0)
            hits[i] = getattr(st, "cache_hits", 0)  # nodes with a CachePolicy
            misses[i] = getattr(st, "cache_misses", 0)
        return {
            "cache_hits": hits,
            "cache_misses": misses,
            "lat": lat,
            "errors": errors,
            "retries": retries,
            "tokens_in": tin,
            "tokens_out": tout,
            "cost": cost,
        }

    def _flush(self) -> bool:
        runs = self._app.metrics.runs
        now = time.perf_counter()
        started, completed, failed = runs.started, runs.completed, runs.failed
        in_flight = max(started - completed - failed - runs.interrupted, 0)
        s = self._node_stats()
        xs, rate, width = self._throughput(now, in_flight > 0)
        durations = _window(runs.durations) * 1e3
        dur_x, dur_y = _log_histogram(durations)
        usage = bool((s["tokens_in"] + s["tokens_out"]).any())
        nodes = self._node_array
        lat = s["lat"]
        # a p50-p99 whisker per node: x, x, None for each node (gaps between them)
        rx = np.repeat(nodes, 3).astype(object)
        rx[2::3] = None
        ry = np.stack([lat[0], lat[2], np.full(len(nodes), np.nan)], axis=1).ravel()
        cost_text = np.asarray([_money(c) if c else "" for c in s["cost"]], dtype=object)
        restyle = {
            "x": [nodes, nodes, nodes, rx, xs, nodes, nodes, nodes, nodes, dur_x],
            "y": [
                lat[0],
                lat[1],
                lat[2],
                ry,
                rate,
                s["errors"],
                s["retries"],
                s["tokens_in"],
                s["tokens_out"],
                dur_y,
            ],
            "text": [_UNSET] * T_TOUT + [cost_text, _UNSET],
            "visible": [True] * T_TIN + [usage, usage, not usage],
        }
        longest = max(len(str(n)) for n in self._nodes) if self._nodes else 0
        counts_max = float(max(s["errors"].max(initial=0), s["retries"].max(initial=0)))
        relayout = {
            # whole numbers on count axes (no "0.5 errors")
            "yaxis3.dtick": 1 if counts_max <= 6 else None,
            "yaxis4.dtick": 1 if not usage and float(dur_y.max(initial=0)) <= 6 else None,
            "annotations[3].text": f"<b>{PANELS[3] if usage else _DURATION_TITLE}</b>",
            "xaxis4.type": "category" if usage else "log",
            "xaxis4.title.text": "" if usage else "ms",
            "xaxis3.title.text": "",
            "xaxis2.title.text": f"seconds since the first recorded run · {_fmt_s(width)} bins",
            "xaxis.tickangle": -30 if longest * len(self._nodes) > 60 else 0,
            "xaxis3.tickangle": -30 if longest * len(self._nodes) > 60 else 0,
        }
        # one plotly_update: one message, and far cheaper than assigning trace properties
        self.figure.plotly_update(
            restyle_data=restyle, relayout_data=relayout, trace_indexes=list(range(_N_TRACES))
        )
        recent = rate[-3:] if len(rate) else rate
        mean_rate = float(recent.mean()) if len(recent) else 0.0
        header = (
            f"<b>{_html_escape(self._name)}</b> &middot; {started} started &middot; "
            f"{completed} completed &middot; {failed} failed &middot; {in_flight} in flight"
        )
        if in_flight:
            header += f" &middot; {mean_rate:,.1f} runs/s now"
        if durations.size:
            p50, p99 = np.percentile(durations, (50, 99))
            header += f" &middot; run p50 {_fmt_ms(p50)}, p99 {_fmt_ms(p99)}"
        if usage:
            header += (
                f" &middot; {int(s['tokens_in'].sum() + s['tokens_out'].sum()):,} tokens"
                f" &middot; {_money(float(s['cost'].sum()))}"
            )
        if s["cache_hits"].any() or s["cache_misses"].any():
            per = ", ".join(f"{_html_escape(str(n))} {int(h)}/{int(h + m)}" for n, h, m in
                            zip(self._nodes, s["cache_hits"], s["cache_misses"]) if h or m)
            header += (f" &middot; cache {int(s['cache_hits'].sum())} hits, {int(s['cache_misses'].sum())} misses"
                       f" ({per})")
        workers = self._flush_workers() if self._workers is not None else None
        if workers is not None:
            n = len(workers["labels"])
            header += (
                f" &middot; {n} Ray worker{'' if n == 1 else 's'} on {workers['machines']} "
                f"node{'' if workers['machines'] == 1 else 's'}, "
                f"{int(workers['nodes_in_flight'].sum())} executions running"
            )
            if workers["unplaced"]:
                header += f", {workers['unplaced']} waiting for a worker"
        self._header.value = header
        self._picture = {
            "name": self._name,
            "nodes": list(self._nodes),
            **s,
            "throughput": (xs, rate, width),
            "durations": (dur_x, dur_y),
            "usage": usage,
            "workers": workers,
        }
        self._updates_sent += 1
        if getattr(self._workers, "in_flight", 0):  # executions start and move with no event
            self._coalescer.later(max(self._coalescer.pace, _IN_FLIGHT_REDRAW))
        return True

    def _flush_workers(self) -> dict[str, Any]:
        rows, unplaced = self._workers.worker_stats()
        w = worker_arrays(rows, unplaced)
        restyle, relayout = worker_update(w)
        self.worker_figure.plotly_update(restyle_data=restyle, relayout_data=relayout, trace_indexes=[0, 1, 2, 3])
        return w


def _fmt_s(seconds: float) -> str:
    from agentgraph_nb.ui._svgplot import fmt_seconds

    return fmt_seconds(seconds)


def _fmt_ms(ms: float) -> str:
    return _fmt_s(ms / 1e3)


def _money(cost: float) -> str:
    if cost >= 100:
        return f"${cost:,.0f}"
    if cost >= 1:
        return f"${cost:,.2f}"
    return f"${cost:.3g}"


def _count_ticks(top: float) -> list[float]:
    """Ticks for a count axis: whole numbers only."""
    from agentgraph_nb.ui._svgplot import linear_ticks

    return [t for t in linear_ticks(0, top, 4) if float(t).is_integer()] or [0.0]


def _log_histogram(ms: Any) -> tuple[Any, Any]:
    """Bin centres (geometric) and counts of positive values on log-spaced bins."""
    ms = ms[np.isfinite(ms) & (ms > 0)]
    if not ms.size:
        return np.zeros(0), np.zeros(0)
    lo, hi = math.log10(float(ms.min())), math.log10(float(ms.max()))
    if hi - lo < 0.3:  # a narrow spread: still a few bins around it
        lo, hi = lo - 0.15, hi + 0.15
    n = int(min(40, max(8, (hi - lo) * 10)))
    edges = np.logspace(lo, hi, n + 1)
    counts, _ = np.histogram(ms, bins=edges)
    return np.sqrt(edges[:-1] * edges[1:]), counts.astype(float)


def _figure(nodes: Sequence[str]) -> Any:
    fig = make_subplots(
        figure=go.Figure(layout={"template": TEMPLATE}),  # not plotly's default (loaded from JSON)
        rows=2,
        cols=2,
        subplot_titles=[f"<b>{t}</b>" for t in PANELS],
        vertical_spacing=0.24,
        horizontal_spacing=0.09,
    )
    empty = np.zeros(0)
    nan = np.full(len(nodes), np.nan)  # float arrays: NaN is fine there, never in lists
    for p in _P:
        fig.add_trace(
            go.Scatter(
                name=p,
                x=list(nodes),
                y=nan,
                mode="markers",
                marker={"color": _COLOURS[p], "symbol": _SYMBOLS[p], "size": 10},
                legend="legend",
                hovertemplate="%{x}: %{y:.3g} ms<extra>" + p + "</extra>",
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Scatter(
            name="p50 to p99",
            x=[],
            y=empty,
            mode="lines",
            line={"color": "#8c959f", "width": 1.5},
            showlegend=False,
            hoverinfo="skip",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            name="runs/s",
            x=empty,
            y=empty,
            mode="lines",
            line={"color": _COLOURS["throughput"], "shape": "hvh"},
            fill="tozeroy",
            showlegend=False,
            hovertemplate="t=%{x:.3g} s: %{y:.3g} runs/s<extra></extra>",
        ),
        row=1,
        col=2,
    )
    zeros = np.zeros(len(nodes))
    for k in ("errors", "retries"):
        fig.add_trace(
            go.Bar(
                name=k,
                x=list(nodes),
                y=zeros,
                marker_color=_COLOURS[k],
                legend="legend2",
                hovertemplate="%{x}: %{y} " + k + "<extra></extra>",
            ),
            row=2,
            col=1,
        )
    for k, label in (("tokens_in", "tokens in"), ("tokens_out", "tokens out")):
        fig.add_trace(
            go.Bar(
                name=label,
                x=list(nodes),
                y=zeros,
                marker_color=_COLOURS[k],
                legend="legend3",
                visible=False,
                textposition="outside",
                hovertemplate="%{x}: %{y:,} " + label + "<extra></extra>",
            ),
            row=2,
            col=2,
        )
    fig.add_trace(
        go.Bar(
            name="runs",
            x=empty,
            y=empty,
            marker_color=_COLOURS["duration"],
            showlegend=False,
            hovertemplate="~%{x:.3g} ms: %{y} runs<extra></extra>",
        ),
        row=2,
        col=2,
    )
    # Each panel: its title on a line of its own, its legend on the line below, then the plot,
    # all from the panel's left edge: titles and legends never overlap, however narrow the
    # page, and plotly's toolbar stands vertically in the right margin.
    for ann in fig.layout.annotations:
        ann.update(x=0.0 if ann.x < 0.5 else 0.545, xanchor="left", yshift=30, font={"size": 13})
    legend = {
        "orientation": "h",
        "yanchor": "bottom",
        "xanchor": "left",
        "bgcolor": "rgba(0,0,0,0)",
        "font": {"size": 11},
        "itemwidth": 30,
    }
    fig.update_layout(
        height=620,
        margin={"l": 60, "r": 44, "t": 72, "b": 50},
        barmode="group",
        bargap=0.25,
        modebar={"orientation": "v"},
        showlegend=True,
        legend={**legend, "x": 0.0, "y": 1.0},
        legend2={**legend, "x": 0.0, "y": 0.38},
        legend3={**legend, "x": 0.545, "y": 0.38},
        hovermode="closest",
    )
    fig.update_yaxes(type="log", title_text="ms", row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_yaxes(rangemode="tozero", row=2, col=1)
    fig.update_yaxes(rangemode="tozero", row=2, col=2)
    fig.update_xaxes(title_text="seconds since the first recorded run", row=1, col=2)
    fig.update_xaxes(type="log", title_text="ms", row=2, col=2)
    return _Figure(fig)
