"""Ray workers in the notebook front: their lane labels (Timeline) and the Dashboard's worker
panel (what each worker runs now, has done, and how busy it was).

A worker is one Ray worker process, named ``"host:pid"``; its label says the host, the Ray node
(first 6 characters of its id: two nodes on one machine share a host name) and the pid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from agentgraph_nb.ui._plotly import TEMPLATE, graph_objects

if TYPE_CHECKING:
    import plotly.graph_objects as go
else:
    go = graph_objects()  # before any other plotly import: see ui/_plotly.py

from plotly.subplots import make_subplots

__all__ = ["WORKER_COLOURS", "WORKER_PANELS", "worker_arrays", "worker_figure", "worker_label", "worker_update"]

#: The worker panel's three plots, left to right (one row per worker, shared).
WORKER_PANELS = ("in flight now", "node executions done", "busy (seconds on the worker)")
#: Trace name -> colour, in trace order.
WORKER_COLOURS = {
    "nodes in flight": "#F58518",
    "runs in flight": "#B279A2",
    "done": "#4C78A8",
    "busy": "#54A24B",
}
_TRACE_PANEL = (1, 1, 2, 3)


def worker_label(data: dict[str, Any]) -> str:
    """``"host · node 3f2a1c · pid 4242"`` for a worker's ``{"host", "node_id", "pid"}``."""
    host = str(data.get("host") or data.get("ip") or "?")
    if len(host) > 20:
        host = host[:19] + "\u2026"
    node = str(data.get("node_id") or "?")[:6]
    return f"{host} · node {node} · pid {data.get('pid', '?')}"


def _pid(worker: str) -> str:
    return worker.rpartition(":")[2] or "?"


def worker_arrays(rows: list[dict[str, Any]], unplaced: int) -> dict[str, Any]:
    """What the panel draws, from :meth:`RayExecutor.worker_stats` rows: labels, and per worker
    nodes and runs in flight, executions done and busy seconds (float arrays), ordered by Ray
    node (in the order first seen), then by worker; plus totals for the header."""
    by_node: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_node.setdefault(str(r.get("node_id") or ""), []).append(r)
    ordered = [r for rs in by_node.values() for r in rs]
    labels = [worker_label({**r, "pid": _pid(str(r["worker"]))}) for r in ordered]

    def col(key: str) -> Any:
        return np.asarray([float(r.get(key) or 0) for r in ordered], dtype=float)

    nodes, runs, done, busy = col("nodes_in_flight"), col("runs_in_flight"), col("done"), col("busy_s")
    return {
        "labels": labels,
        "workers": [str(r["worker"]) for r in ordered],
        "nodes_in_flight": nodes,
        "runs_in_flight": runs,
        "done": done,
        "busy": busy,
        "machines": len(by_node),
        "unplaced": int(unplaced),
    }


def worker_figure() -> Any:
    """The panel's plotly figure: three horizontal bar plots sharing one row per worker."""
    fig = make_subplots(
        figure=go.Figure(layout={"template": TEMPLATE}),
        rows=1,
        cols=3,
        shared_yaxes=True,
        horizontal_spacing=0.05,
        subplot_titles=[f"<b>{t}</b>" for t in WORKER_PANELS],
    )
    empty = np.zeros(0)
    for (name, colour), panel in zip(WORKER_COLOURS.items(), _TRACE_PANEL):
        unit = " s" if name == "busy" else ""
        fig.add_trace(
            go.Bar(
                name=name,
                orientation="h",
                x=empty,
                y=[],
                marker_color=colour,
                showlegend=panel == 1,
                hovertemplate="%{y}: %{x:,.4g}" + unit + " " + ("" if name == "busy" else name)
                + "<extra></extra>",
            ),
            row=1,
            col=panel,
        )
    for ann in fig.layout.annotations:
        ann.update(font={"size": 13}, yshift=6)
    fig.update_layout(
        height=190,
        margin={"l": 60, "r": 44, "t": 64, "b": 36},
        barmode="group",
        bargap=0.3,
        modebar={"orientation": "v"},
        title={"text": "<b>Ray workers</b>", "x": 0.0, "xanchor": "left", "y": 0.98, "yref": "container",
               "font": {"size": 13}},
        # the legend on the title's line, right of it: never over the plots' titles
        legend={"orientation": "h", "x": 0.12, "xanchor": "left", "y": 0.985, "yref": "container",
                "yanchor": "top", "bgcolor": "rgba(0,0,0,0)", "font": {"size": 11}},
        hovermode="closest",
    )
    fig.update_yaxes(automargin=True, autorange="reversed", type="category")
    for c in (1, 2, 3):
        fig.update_xaxes(rangemode="tozero", row=1, col=c)
    return fig


def worker_update(w: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(restyle, relayout)`` for :func:`worker_figure` from :func:`worker_arrays`."""
    labels = np.asarray(w["labels"], dtype=object)
    n = len(labels)
    restyle = {
        "x": [w["nodes_in_flight"], w["runs_in_flight"], w["done"], w["busy"]],
        "y": [labels] * 4,
    }
    top = float(max(w["nodes_in_flight"].max(initial=0), w["runs_in_flight"].max(initial=0)))
    relayout = {
        "height": int(min(900, 150 + 34 * max(n, 1))),
        "xaxis.dtick": 1 if top <= 6 else None,  # whole executions, never "0.5 in flight"
        "xaxis.range": [0, max(top, 1) * 1.1],
        "xaxis2.dtick": 1 if float(w["done"].max(initial=0)) <= 6 else None,
    }
    return restyle, relayout
