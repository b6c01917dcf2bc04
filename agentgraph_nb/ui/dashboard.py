"""The dashboard: live latency, throughput, errors and retries of a compiled graph, as one widget.

It reads the graph's own metrics (``app.metrics``, kept by the engine at a few attribute updates
per node execution) and redraws when events say something changed, at most once per
``interval`` (stretched if redraws get slow). Its listener does almost nothing per event (it
arms a timer), so it stays cheap during big batches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from copy import deepcopy
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.basedatatypes import Undefined as _UNSET
from plotly.subplots import make_subplots

from agentgraph_nb.errors import InvalidInputError
from agentgraph_nb.ui.timeline import Coalescer

__all__ = ["Dashboard"]

_P = ("p50", "p90", "p99")
_COLOURS = {
    "p50": "#4C78A8",
    "p90": "#72B7B2",
    "p99": "#F58518",
    "errors": "#E45756",
    "retries": "#EECA3B",
}


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Dashboard(widgets.VBox):
    """Live metrics of a compiled graph: latency p50/p90/p99 per node, throughput over time
    (runs finished per second), errors and retries per node, and runs in flight.

    Made by ``app.dashboard()``. Updates are coalesced: at most one redraw per ``interval``
    seconds (20 a second by default), whatever the rate of events. Latency percentiles cover
    each node's last 10,000 executions (the engine's window); throughput counts the runs that
    finished since the dashboard opened, per ``bin_seconds``. The text repr is deterministic,
    e.g. ``Dashboard(graph 'research': 3 nodes, 10000 runs completed, 0 failed)``.

    Args:
        app: the compiled graph.
        interval: seconds between two redraws at most.
        bin_seconds: width of a throughput bin.
        window: seconds of throughput history shown.

    Attributes:
        figure: the plotly ``FigureWidget`` with the four panels.
        updates_sent: how many redraws were sent to the front end.

    Example:
        >>> dash = app.dashboard()              # doctest: +SKIP
        >>> dash                                # display it, then:
        >>> app.batch([{"x": i} for i in range(10_000)])   # doctest: +SKIP
    """

    def __init__(
        self, app: Any, *, interval: float = 0.05, bin_seconds: float = 0.5, window: float = 120.0
    ) -> None:
        if not isinstance(interval, (int, float)) or interval < 0:
            raise InvalidInputError(f"interval must be a number of seconds >= 0, got {interval!r}")
        if not isinstance(bin_seconds, (int, float)) or bin_seconds <= 0:
            raise InvalidInputError(f"bin_seconds must be a positive number, got {bin_seconds!r}")
        self._app = app
        self._name: str = getattr(app, "name", "graph")
        self._bin = float(bin_seconds)
        self._window = float(window)
        self._t0 = time.perf_counter()
        self._bins: dict[int, int] = {}
        runs = app.metrics.runs
        self._last_finished = runs.completed + runs.failed + runs.interrupted
        self._nodes: list[str] = [r["node"] for r in app.metrics.rows()]
        self._node_array = np.asarray(self._nodes, dtype=object)
        self._updates_sent = 0
        self._unsubscribe: Callable[[], None] | None = None
        self._coalescer = Coalescer(self._flush, interval)
        self.figure = _figure(self._name, self._nodes)
        self.figure._validate = (
            False  # our arrays are valid; plotly's checks cost more than sending
        )
        self._header = widgets.HTML()
        super().__init__(children=[self._header, self.figure])
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
        self._coalescer.close()

    def close(self) -> None:
        """Detach and close the widget and its figure."""
        self.detach()
        self.figure.close()
        self._header.close()
        super().close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget view (with the figure's current state, which a view that opens later
        starts from) and the text repr."""
        self.refresh()
        with self._coalescer.flush_lock:
            fig = self.figure
            fig._widget_layout = deepcopy(fig._layout_obj._props)
            fig._widget_data = deepcopy(fig._data)
        return super()._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        runs = self._app.metrics.runs
        nodes = len(self._nodes)
        return (
            f"Dashboard(graph {self._name!r}: {nodes} node{'' if nodes == 1 else 's'}, "
            f"{runs.completed} runs completed, {runs.failed} failed)"
        )

    # -- drawing --------------------------------------------------------------------------------
    def _throughput_series(self, now: float) -> tuple[Any, Any]:
        last = int((now - self._t0) / self._bin)
        first = max(min(self._bins, default=last), last - int(self._window / self._bin))
        xs = np.arange(first, last + 1, dtype=float) * self._bin
        ys = (
            np.asarray([self._bins.get(i, 0) for i in range(first, last + 1)], dtype=float)
            / self._bin
        )
        if len(self._bins) > 4 * self._window / self._bin:  # forget what scrolled out of view
            for k in [k for k in self._bins if k < first]:
                del self._bins[k]
        return xs, ys

    def _flush(self) -> bool:
        # Straight from the engine's counters (no sorting of 10,000-sample windows in Python):
        # numpy takes the percentiles, linear like Metrics.rows().
        metrics = self._app.metrics
        runs = metrics.runs
        now = time.perf_counter()
        started, completed, failed = runs.started, runs.completed, runs.failed
        finished = completed + failed + runs.interrupted
        if finished != self._last_finished:
            b = int((now - self._t0) / self._bin)
            self._bins[b] = self._bins.get(b, 0) + finished - self._last_finished
            self._last_finished = finished
        in_flight = max(started - finished, 0)
        nan = math.nan
        lat = np.full((3, len(self._nodes)), nan)
        errors = np.zeros(len(self._nodes))
        retries = np.zeros(len(self._nodes))
        for i, name in enumerate(self._nodes):
            st = metrics.node(name)
            window = _window(st.latencies)  # the last 10,000 executions
            if window.size:
                lat[:, i] = np.percentile(window, (50, 90, 99)) * 1e3
            errors[i] = st.errors
            retries[i] = st.retries
        xs, ys = self._throughput_series(now)
        nodes = self._node_array
        # one plotly_update: one message, and far cheaper than assigning trace properties
        self.figure.plotly_update(
            restyle_data={
                "x": [nodes, nodes, nodes, xs, nodes, nodes, _UNSET],
                "y": [lat[0], lat[1], lat[2], ys, errors, retries, _UNSET],
                "value": [_UNSET] * 6 + [in_flight],
            },
            trace_indexes=list(range(7)),
        )
        recent = ys[-4:] if len(ys) else ys
        rate = float(recent.mean()) if len(recent) else 0.0
        durations = list(runs.durations)
        mean = sum(durations) / len(durations) if durations else nan
        self._header.value = (
            f"<b>{_html_escape(self._name)}</b> &middot; {started} started &middot; "
            f"{completed} completed &middot; {failed} failed &middot; {in_flight} in flight &middot; "
            f"{rate:,.1f} runs/s lately"
            + ("" if math.isnan(mean) else f" &middot; mean run {mean * 1e3:,.3g} ms")
        )
        self._updates_sent += 1
        return True


def _window(values: Any) -> Any:
    while True:  # the engine appends without a lock; a copy that raced an append reads again
        try:
            return np.fromiter(values, dtype=float)
        except RuntimeError:
            continue


def _figure(name: str, nodes: list[str]) -> go.FigureWidget:
    fig = make_subplots(
        rows=2,
        cols=2,
        specs=[[{"type": "xy"}, {"type": "xy"}], [{"type": "xy"}, {"type": "domain"}]],
        subplot_titles=(
            "latency per node (ms)",
            "throughput (runs finished per second)",
            "errors and retries per node",
            "runs in flight",
        ),
        vertical_spacing=0.18,
        horizontal_spacing=0.1,
    )
    for p in _P:
        fig.add_trace(
            go.Bar(
                name=p,
                x=nodes,
                y=[math.nan] * len(nodes),
                marker_color=_COLOURS[p],
                legendgroup="latency",
                hovertemplate="%{x}: %{y:.3g} ms<extra>" + p + "</extra>",
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Scatter(
            name="runs/s",
            x=[],
            y=[],
            mode="lines",
            line={"color": "#54A24B", "shape": "hv"},
            fill="tozeroy",
            showlegend=False,
            hovertemplate="t=%{x:.1f}s: %{y:.3g} runs/s<extra></extra>",
        ),
        row=1,
        col=2,
    )
    for k in ("errors", "retries"):
        fig.add_trace(
            go.Bar(
                name=k,
                x=nodes,
                y=[0] * len(nodes),
                marker_color=_COLOURS[k],
                hovertemplate="%{x}: %{y} " + k + "<extra></extra>",
            ),
            row=2,
            col=1,
        )
    fig.add_trace(go.Indicator(mode="number", value=0, number={"font": {"size": 44}}), row=2, col=2)
    fig.update_layout(
        title={"text": f"{name}: live metrics", "x": 0.01, "font": {"size": 14}},
        barmode="group",
        template="plotly_white",
        height=520,
        margin={"l": 50, "r": 20, "t": 60, "b": 40},
        legend={"orientation": "h", "y": 1.08, "x": 0.3},
    )
    fig.update_xaxes(
        title_text="seconds since the dashboard opened", row=1, col=2, rangemode="tozero"
    )
    fig.update_yaxes(rangemode="tozero")
    return go.FigureWidget(fig)
