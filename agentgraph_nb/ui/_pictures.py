"""The static pictures of the timeline and the dashboard (SVG, see ``ui/_svgplot.py``): what an
HTML export, nbviewer and GitHub show in place of the plotly widgets. Each draws what its widget
kept from its last redraw (``_picture``), so the picture and the live figure agree."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from agentgraph_nb.ui import _svgplot as sp
from agentgraph_nb.ui._workers import WORKER_COLOURS, WORKER_PANELS
from agentgraph_nb.ui.dashboard import (
    _COLOURS,
    _DURATION_TITLE,
    _P,
    _SYMBOLS,
    PANELS,
    _count_ticks,
    _money,
)
from agentgraph_nb.ui.timeline import STATUSES

__all__ = ["dashboard_svg", "timeline_svg"]


def timeline_svg(p: dict[str, Any]) -> str:
    """The static picture of a timeline: the bars, lanes, superstep lines, marks and axis of
    the live figure (``p`` is what :meth:`Timeline._arrays` returned, plus the title)."""
    title = str(p.get("title") or "timeline")
    lanes: list[str] = list(p.get("lanes") or [])
    width = 920.0
    left = min(250.0, max(60.0, max((sp.text_width(s, 11) for s in lanes), default=40) + 18))
    right = 24.0
    lane_h = 24.0 if len(lanes) <= 30 else max(6.0, 720.0 / len(lanes))
    top = 62.0 if p.get("subtitle") else 46.0
    plot_h = max(lane_h * max(len(lanes), 1), 40.0)
    height = top + plot_h + 58
    svg = sp.Svg(width, height, title=title, label=str(p.get("summary") or title))
    svg.text(12, 20, sp.clip_text(title, width - 24, 14), size=14, weight="600")
    if p.get("subtitle"):
        svg.text(12, 38, sp.clip_text(str(p["subtitle"]), width - 24, 11), size=11, fill=sp.MUTED)
    pw = width - left - right
    xmax = float(p.get("xmax") or 1.0) or 1.0

    def X(v: float) -> float:
        return left + (v / xmax) * pw

    # axis and grid
    y_axis = top + plot_h
    ticks = p.get("xticks")
    if ticks is None:
        real = sp.linear_ticks(0.0, xmax, 6)
        ticks = [(t, sp.fmt_seconds(t)) for t in real if t <= xmax * 1.0001]
    for v, label in ticks:
        svg.line(X(v), top, X(v), y_axis, sp.GRID)
        svg.text(X(v), y_axis + 15, label, size=10.5, fill=sp.MUTED, anchor="middle")
    svg.line(left, y_axis, left + pw, y_axis, sp.AXIS)
    xtitle = str(p.get("xtitle") or "").removesuffix(" (s)")  # the ticks carry their units
    svg.text(left + pw / 2, y_axis + 34, xtitle, size=11, fill=sp.MUTED, anchor="middle")
    for i, name in enumerate(lanes):
        y = top + i * lane_h + lane_h / 2
        if lane_h >= 10:
            svg.text(
                left - 8,
                y + 4,
                sp.clip_text(name, left - 14, 11),
                size=11,
                fill=sp.MUTED,
                anchor="end",
            )
    if not lanes:
        svg.text(
            left + pw / 2,
            top + plot_h / 2 + 4,
            "no node executions to show",
            fill=sp.MUTED,
            anchor="middle",
        )
    # superstep lines
    steps = p.get("steps") or {}
    sx, sy = list(steps.get("x", [])), list(steps.get("y", []))
    for i in range(0, len(sx) - 1, 3):
        if sx[i] is None:
            continue
        y0 = top + (float(sy[i]) + 0.5) * lane_h
        y1 = top + (float(sy[i + 1]) + 0.5) * lane_h
        svg.line(X(float(sx[i])), y0, X(float(sx[i])), y1, "#8a8a8a", dash="2 3")
    # bars
    legend: list[tuple[str, str]] = []
    bar_h = max(lane_h * 0.72, 3.0)
    for status, (name, colour) in STATUSES.items():
        b = (p.get("bars") or {}).get(status)
        if b is None or not len(b["x"]):
            continue
        legend.append((name, colour))
        real = b.get("real")
        for i in range(len(b["x"])):
            x0, w = X(float(b["base"][i])), max(float(b["x"][i]) / xmax * pw, 2.0)
            y = top + float(b["y"][i]) * lane_h + (lane_h - bar_h) / 2
            node = str(b["text"][i])
            tip = node if real is None else f"{node}: {sp.fmt_seconds(float(real[i][1]))}"
            svg.rect(x0, y, w, bar_h, colour, stroke="#ffffff", rx=2, tip=tip)
            label = sp.clip_text(node, w - 6, 10.5)
            if label and bar_h >= 12:
                svg.text(
                    x0 + w / 2,
                    y + bar_h / 2 + 3.5,
                    label,
                    size=10.5,
                    fill="#ffffff",
                    anchor="middle",
                )
    marks = p.get("marks") or {}
    for i in range(len(marks.get("x", []))):
        x = X(float(marks["x"][i]))
        y = top + (float(marks["y"][i]) + 0.5) * lane_h
        svg.marker(
            x, y, "x" if marks["symbol"][i] == "x-thin" else "ring", str(marks["color"][i]), 4.5
        )
    if legend:
        sp_x = max(12.0, width - right - sum(sp.text_width(n, 11) + 28 for n, _ in legend))
        svg.legend(sp_x, height - 8, legend)
    return svg.render()


def dashboard_svg(p: dict[str, Any]) -> str:
    """The static picture of a dashboard: its four panels (``p`` is what ``_flush`` kept), and
    its worker panel when it has one."""
    name = str(p.get("name") or "graph")
    nodes: list[str] = list(p.get("nodes") or [])
    workers = p.get("workers")
    width, height = 920.0, 556.0
    panel_top = height
    if workers is not None:
        height += _WORKERS_HEAD + _WORKER_ROW * max(len(workers["labels"]), 1) + 16
    svg = sp.Svg(width, height, title=f"{name}: metrics", label=f"dashboard of graph {name}")
    if workers is not None:
        _workers_panel(svg, panel_top, width, workers)
    pad_l, gap_x, pad_r = 60.0, 70.0, 16.0
    pw = (width - pad_l - gap_x - pad_r) / 2
    rows = ((52.0, 232.0), (340.0, 520.0))  # plot top and bottom of each row
    cols = (pad_l, pad_l + pw + gap_x)
    usage = bool(p.get("usage"))
    titles = [*PANELS[:3], PANELS[3] if usage else _DURATION_TITLE]
    for k, heading in enumerate(titles):
        x, (y0, _) = cols[k % 2], rows[k // 2]
        svg.text(x - 40, y0 - 32, heading, size=12.5, weight="600")
    if not p:
        return svg.render()

    def category_axis(x0: float, y1: float, labels: list[str]) -> list[float]:
        n = max(len(labels), 1)
        step = pw / n
        centres = [x0 + step * (i + 0.5) for i in range(len(labels))]
        svg.line(x0, y1, x0 + pw, y1, sp.AXIS)
        for c, lab in zip(centres, labels):
            svg.text(
                c,
                y1 + 14,
                sp.clip_text(lab, step - 2, 10.5),
                size=10.5,
                fill=sp.MUTED,
                anchor="middle",
            )
        return centres

    def value_axis(
        x0: float, y0: float, y1: float, ticks: list[float], to_y: Any, fmt: Any
    ) -> None:
        for t in ticks:
            y = to_y(t)
            svg.line(x0, y, x0 + pw, y, sp.GRID)
            svg.text(x0 - 5, y + 3.5, fmt(t), size=10, fill=sp.MUTED, anchor="end")

    # 1. latency per node, log scale
    x0, (y0, y1) = cols[0], rows[0]
    lat = np.asarray(p.get("lat"), dtype=float)
    finite = lat[np.isfinite(lat) & (lat > 0)]
    centres = category_axis(x0, y1, nodes)
    if finite.size:
        lo, hi = float(finite.min()) / 1.6, float(finite.max()) * 1.6
        llo, lhi = math.log10(lo), math.log10(hi)

        def ly(v: float) -> float:
            return y1 - (math.log10(v) - llo) / (lhi - llo) * (y1 - y0)

        value_axis(x0, y0, y1, sp.log_ticks(lo, hi), ly, sp.fmt_ms)
        for i, c in enumerate(centres):
            col = lat[:, i]
            if np.isfinite(col[0]) and np.isfinite(col[2]) and col[0] > 0:
                svg.line(c, ly(col[0]), c, ly(col[2]), "#8c959f", width=1.5)
            for j, q in enumerate(_P):
                if np.isfinite(col[j]) and col[j] > 0:
                    sym = {"circle": "circle", "diamond": "diamond", "triangle-up": "triangle"}[
                        _SYMBOLS[q]
                    ]
                    svg.marker(c, ly(col[j]), sym, _COLOURS[q], 5)
    else:
        svg.text(x0 + pw / 2, (y0 + y1) / 2, "no node has run yet", fill=sp.MUTED, anchor="middle")
    svg.legend(x0 - 40, y0 - 12, [(q, _COLOURS[q]) for q in _P])

    # 2. throughput over time
    x0, (y0, y1) = cols[1], rows[0]
    xs, rate, width_s = p.get("throughput") or (np.zeros(0), np.zeros(0), 1.0)
    svg.line(x0, y1, x0 + pw, y1, sp.AXIS)
    if len(xs):
        xlo, xhi = float(xs[0]) - width_s / 2, float(xs[-1]) + width_s / 2
        ymax = max(float(np.max(rate)), 1e-9) * 1.12

        def tx(v: float) -> float:
            return x0 + (v - xlo) / max(xhi - xlo, 1e-12) * pw

        def ty(v: float) -> float:
            return y1 - v / ymax * (y1 - y0)

        value_axis(x0, y0, y1, sp.linear_ticks(0, ymax, 4), ty, lambda v: f"{v:,.4g}")
        pts: list[tuple[float, float]] = [(tx(xlo), y1)]
        for c, r in zip(xs, rate):
            a, b = tx(float(c) - width_s / 2), tx(float(c) + width_s / 2)
            pts += [(a, ty(float(r))), (b, ty(float(r)))]
        pts.append((tx(xhi), y1))
        svg.path(pts, _COLOURS["throughput"], fill=_COLOURS["throughput"], opacity=0.25)
        for t in sp.linear_ticks(xlo, xhi, 5):
            svg.text(tx(t), y1 + 14, f"{t:,.4g}", size=10, fill=sp.MUTED, anchor="middle")
        svg.text(
            x0 + pw / 2,
            y1 + 30,
            f"seconds since the first recorded run · {sp.fmt_seconds(width_s)} bins",
            size=10.5,
            fill=sp.MUTED,
            anchor="middle",
        )
    else:
        svg.text(
            x0 + pw / 2, (y0 + y1) / 2, "no run has finished yet", fill=sp.MUTED, anchor="middle"
        )

    def grouped_bars(
        x0: float, y0: float, y1: float, series: list[tuple[str, str, Any]], labels: list[str]
    ) -> None:
        centres = category_axis(x0, y1, labels)
        top = max((float(np.max(v)) for _, _, v in series if len(v)), default=0.0)
        if top <= 0:
            svg.text(x0 + pw / 2, (y0 + y1) / 2, "none so far", fill=sp.MUTED, anchor="middle")
            return
        ymax = top * 1.15

        def ty(v: float) -> float:
            return y1 - v / ymax * (y1 - y0)

        value_axis(x0, y0, y1, _count_ticks(ymax), ty, lambda v: f"{v:,.4g}")
        slot = pw / max(len(labels), 1) * 0.75
        bw = slot / len(series)
        for i, c in enumerate(centres):
            for j, (_, colour, values) in enumerate(series):
                v = float(values[i])
                if v > 0:
                    svg.rect(c - slot / 2 + j * bw, ty(v), bw - 1, y1 - ty(v), colour)

    # 3. errors and retries
    x0, (y0, y1) = cols[0], rows[1]
    series3 = [
        ("errors", _COLOURS["errors"], p.get("errors", [])),
        ("retries", _COLOURS["retries"], p.get("retries", [])),
    ]
    grouped_bars(x0, y0, y1, series3, nodes)
    svg.legend(x0 - 40, y0 - 12, [(n, c) for n, c, _ in series3])

    # 4. tokens and cost per node, or the run durations
    x0, (y0, y1) = cols[1], rows[1]
    if usage:
        series4 = [
            ("tokens in", _COLOURS["tokens_in"], p.get("tokens_in", [])),
            ("tokens out", _COLOURS["tokens_out"], p.get("tokens_out", [])),
        ]
        grouped_bars(x0, y0, y1, series4, nodes)
        svg.legend(x0 - 40, y0 - 12, [(n, c) for n, c, _ in series4])
        centres = [x0 + pw / max(len(nodes), 1) * (i + 0.5) for i in range(len(nodes))]
        for c, cost in zip(centres, p.get("cost", [])):
            if cost:
                svg.text(c, y0 + 10, _money(float(cost)), size=10, fill=sp.INK, anchor="middle")
    else:
        dx, dy = p.get("durations") or (np.zeros(0), np.zeros(0))
        svg.line(x0, y1, x0 + pw, y1, sp.AXIS)
        if len(dx):
            ratio = float(dx[1] / dx[0]) if len(dx) > 1 else 2.0
            llo, lhi = (
                math.log10(float(dx[0]) / math.sqrt(ratio)),
                math.log10(float(dx[-1]) * math.sqrt(ratio)),
            )
            ymax = max(float(np.max(dy)), 1.0) * 1.15

            def dxp(v: float) -> float:
                return x0 + (math.log10(v) - llo) / max(lhi - llo, 1e-12) * pw

            def dyp(v: float) -> float:
                return y1 - v / ymax * (y1 - y0)

            value_axis(x0, y0, y1, _count_ticks(ymax), dyp, lambda v: f"{v:,.4g}")
            for c, n in zip(dx, dy):
                if n > 0:
                    a = dxp(float(c) / math.sqrt(ratio))
                    b = dxp(float(c) * math.sqrt(ratio))
                    svg.rect(
                        a,
                        dyp(float(n)),
                        max(b - a - 1, 1),
                        y1 - dyp(float(n)),
                        _COLOURS["duration"],
                    )
            xt = sp.log_ticks(10**llo, 10**lhi)
            if len(xt) < 3:  # a narrow spread: round values between its ends instead
                xt = [t for t in sp.linear_ticks(10**llo, 10**lhi, 4) if t > 0]
            for t in xt:
                svg.text(dxp(t), y1 + 14, sp.fmt_ms(t), size=10, fill=sp.MUTED, anchor="middle")
        else:
            svg.text(
                x0 + pw / 2,
                (y0 + y1) / 2,
                "no run has finished yet",
                fill=sp.MUTED,
                anchor="middle",
            )
    return svg.render()


_WORKERS_HEAD = 70.0  # the worker panel's title, legend and column headings
_WORKER_ROW = 30.0


def _workers_panel(svg: sp.Svg, top: float, width: float, w: dict[str, Any]) -> None:
    """The dashboard's worker panel, under its four panels: one row per Ray worker, with what
    it runs now (nodes and runs in flight), its executions done and its busy seconds as bars."""
    labels: list[str] = list(w["labels"])
    svg.line(12, top + 4, width - 12, top + 4, sp.GRID)
    svg.text(20, top + 26, "Ray workers", size=12.5, weight="600")
    note = f"{len(labels)} worker{'' if len(labels) == 1 else 's'} on {w['machines']} node{'' if w['machines'] == 1 else 's'}"
    if w["unplaced"]:
        note += f" · {w['unplaced']} in flight with no worker known yet (queued for a CPU, or just started)"
    svg.text(112, top + 26, note, size=11, fill=sp.MUTED)
    svg.legend(20, top + 44, [(n, c) for n, c in WORKER_COLOURS.items() if n != "busy"][:2])
    left = min(250.0, max(120.0, max((sp.text_width(s, 11) for s in labels), default=40) + 28))
    gap = 18.0
    col_w = (width - left - 24 - 2 * gap) / 3
    cols = [left + i * (col_w + gap) for i in range(3)]
    y0 = top + _WORKERS_HEAD
    for x, heading in zip(cols, WORKER_PANELS):
        svg.text(x, y0 - 8, heading, size=11.5, weight="600")
    if not labels:
        svg.text(left, y0 + 16, "no worker has run a node yet", fill=sp.MUTED)
        return
    series = [
        (0, [("nodes in flight", w["nodes_in_flight"]), ("runs in flight", w["runs_in_flight"])], "{:,.0f}"),
        (1, [("done", w["done"])], "{:,.0f}"),
        (2, [("busy", w["busy"])], "busy"),
    ]
    for k, parts, fmt in series:
        top_v = max((float(np.max(v)) for _, v in parts if len(v)), default=0.0)
        x0 = cols[k]
        svg.line(x0, y0, x0, y0 + _WORKER_ROW * len(labels), sp.AXIS)
        for i in range(len(labels)):
            y = y0 + i * _WORKER_ROW
            h = (_WORKER_ROW - 8) / len(parts)
            for j, (name, values) in enumerate(parts):
                v = float(values[i])
                bw = 0.0 if top_v <= 0 else v / top_v * (col_w - 60)
                by = y + 4 + j * h
                if bw > 0:
                    svg.rect(x0, by, bw, h - 1, WORKER_COLOURS[name], tip=f"{labels[i]}: {name} {v:,.4g}")
                text = sp.fmt_seconds(v) if fmt == "busy" else fmt.format(v)
                svg.text(x0 + bw + 4, by + h - 2, text, size=10 if len(parts) > 1 else 10.5, fill=sp.INK)
    for i, label in enumerate(labels):
        y = y0 + i * _WORKER_ROW + _WORKER_ROW / 2 + 4
        svg.text(left - 10, y, sp.clip_text(label, left - 24, 11), size=11, fill=sp.MUTED, anchor="end")
