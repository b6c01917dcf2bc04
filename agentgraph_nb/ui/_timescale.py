"""The timeline's x axis: seconds, or seconds *stretched* so that every execution shows.

A chart where one node takes 0.5 s and the others 50 µs leaves the fast ones as invisible
slivers on a linear axis (and, one after another on a lane, on top of each other). The stretched
scale cuts the time span at every bar start and end and superstep line and gives every piece
that some bar covers a minimum width, so order, overlaps and the proportions of the slow steps
are kept; the ticks are labelled with the real times.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agentgraph_nb.ui._svgplot import fmt_seconds

__all__ = ["TimeScale"]


class TimeScale:
    """Seconds -> x. ``linear``: x is seconds; bars get a minimum width. ``stretched``: the
    span is cut at every bar start and end and superstep line; a piece that some bar covers
    is at least ``floor`` wide, a piece no bar covers (an idle gap) at most ``floor / 2``, so
    a 100 µs node next to a 1 s one still shows, order and overlaps are kept, and long steps
    keep their proportions. ``auto`` stretches when the shortest bar would be under 0.5 % of
    the span (about 4 px)."""

    def __init__(self, starts: Any, ends: Any, steps: Any, scale: str) -> None:
        self.kind = "linear"
        finite = np.isfinite(starts) & np.isfinite(ends)
        starts, ends = starts[finite], ends[finite]
        lo = min(0.0, float(starts.min())) if len(starts) else 0.0
        hi = max(float(ends.max()) if len(ends) else 0.0, float(steps.max()) if len(steps) else 0.0)
        span = hi - lo
        self.total = max(span, 1e-9)
        self.min_width = 0.003 * self.total  # linear: ~3 px on a 900 px plot
        if span <= 0 or not len(starts):
            return
        lengths = ends - starts
        shortest = float(lengths.min())
        if scale == "linear" or (scale == "auto" and shortest >= 0.005 * span):
            return
        cuts = np.unique(np.concatenate([starts, ends, steps, [lo]]))
        piece = np.diff(cuts)
        if not len(piece):
            return
        mid = (cuts[:-1] + cuts[1:]) / 2
        covered = (
            np.searchsorted(np.sort(starts), mid, side="right")
            - np.searchsorted(np.sort(ends), mid, side="right")
        ) > 0
        n = max(int(covered.sum()), 1)
        floor = float(piece[covered].sum() if covered.any() else span) * min(
            0.06, max(0.012, 0.6 / n)
        )
        widths = np.where(covered, np.maximum(piece, floor), np.minimum(piece, floor / 2))
        self.kind = "stretched"
        self._cuts = cuts
        self._piece = piece
        self._widths = widths
        self._at = np.concatenate([[0.0], np.cumsum(widths)])
        self.total = float(self._at[-1])
        self.min_width = 0.003 * self.total

    def __call__(self, t: Any) -> Any:
        t = np.asarray(t, dtype=float)
        if self.kind == "linear" or not t.size:
            return t
        i = np.clip(np.searchsorted(self._cuts, t, side="right") - 1, 0, len(self._piece) - 1)
        frac = np.clip((t - self._cuts[i]) / self._piece[i], 0.0, 1.0)
        return self._at[i] + frac * self._widths[i]

    def ticks(self) -> list[tuple[float, str]]:
        """Tick positions (on the stretched axis) with their real times, at least ~9 % apart."""
        out: list[tuple[float, str]] = []
        gap = 0.09 * self.total
        for t in self._cuts:
            x = float(self(np.asarray([t]))[0])
            label = fmt_seconds(float(t))
            if out and (x - out[-1][0] < gap or label == out[-1][1]):
                continue
            out.append((x, label))
        last = float(self._cuts[-1])
        if out and self.total - out[-1][0] >= gap / 2 and out[-1][1] != fmt_seconds(last):
            out.append((self.total, fmt_seconds(last)))
        return out
