"""Small static SVG charts, drawn in pure Python: the pictures the timeline and the dashboard
leave where their plotly widgets cannot run (nbconvert HTML, nbviewer, GitHub, a closed kernel).

Why not plotly's own static export: ``fig.to_image`` needs kaleido and a Chrome; ``to_html``
needs plotly.js (4.6 MB) and JavaScript, which nbviewer and GitHub do not run. These pictures
are a few kilobytes, deterministic for the same data, and need nothing but a browser that shows
an image. They draw the same data as the live figures (bars, axes, ticks, legends, titles); they
are not interactive.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from xml.sax.saxutils import escape, quoteattr

__all__ = ["Svg", "fmt_ms", "fmt_seconds", "linear_ticks", "log_ticks"]

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
CHAR_W = 6.6  # average advance of the 12px UI font
INK = "#1f2328"
MUTED = "#57606a"
GRID = "#e6e8eb"
AXIS = "#8c959f"


def _f(v: float) -> str:
    if v != v or v in (math.inf, -math.inf):  # never write nan/inf into a picture
        return "0"
    r = round(v, 1)
    return str(int(r)) if r == int(r) else str(r)


def text_width(text: str, size: float = 12.0) -> float:
    return len(text) * CHAR_W * size / 12.0


def clip_text(text: str, width: float, size: float = 12.0) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` pixels; "" when not even 2 characters fit."""
    per = CHAR_W * size / 12.0
    fit = int(width / per)
    if fit >= len(text):
        return text
    if fit < 3:
        return ""
    return text[: fit - 1] + "\u2026"


def fmt_seconds(seconds: float) -> str:
    """``850 µs``, ``12.5 ms``, ``1.25 s``: 3 significant digits, the unit a reader expects."""
    if seconds != seconds:
        return "?"
    a = abs(seconds)
    if a == 0:
        return "0"
    if a < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if a < 1:
        return f"{seconds * 1e3:.3g} ms"
    if a < 600:
        return f"{seconds:.3g} s"
    return f"{seconds / 60:.3g} min"


def fmt_ms(ms: float) -> str:
    return fmt_seconds(ms / 1e3)


def linear_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten)."""
    if not (hi > lo):
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out: list[float] = []
    v = first
    while v <= hi + step * 1e-9 and len(out) < 50:
        out.append(round(v, 12))
        v += step
    return out


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten covering [lo, hi] (lo > 0), adding 2x and 5x when the range is narrow."""
    lo = max(lo, 1e-12)
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(max(hi, lo * 10)))
    ticks = [10.0**k for k in range(a, b + 1)]
    if b - a <= 2:
        ticks = sorted({t * m for t in ticks for m in (1, 2, 5)})
    return [t for t in ticks if lo / 1.0001 <= t <= hi * 1.0001] or [10.0**a]


class Svg:
    """An SVG document built element by element; :meth:`render` returns the text.

    Every method escapes its text; coordinates are rounded to 0.1 px, non-finite ones drawn at 0.
    """

    def __init__(self, width: float, height: float, *, title: str = "", label: str = "") -> None:
        self.width = width
        self.height = height
        self.title = title
        self.label = label or title
        self.parts: list[str] = []

    def add(self, raw: str) -> None:
        self.parts.append(raw)

    def rect(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        fill: str,
        *,
        stroke: str | None = None,
        rx: float = 0,
        opacity: float | None = None,
        tip: str = "",
    ) -> None:
        attrs = f'x="{_f(x)}" y="{_f(y)}" width="{_f(max(w, 0))}" height="{_f(max(h, 0))}" fill="{fill}"'
        if stroke:
            attrs += f' stroke="{stroke}"'
        if rx:
            attrs += f' rx="{_f(rx)}"'
        if opacity is not None:
            attrs += f' fill-opacity="{opacity}"'
        if tip:
            self.parts.append(f"<rect {attrs}><title>{escape(tip)}</title></rect>")
        else:
            self.parts.append(f"<rect {attrs}/>")

    def line(
        self,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
        stroke: str,
        *,
        width: float = 1,
        dash: str = "",
    ) -> None:
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" stroke="{stroke}" '
            f'stroke-width="{width}"{d}/>'
        )

    def path(
        self,
        points: Sequence[tuple[float, float]],
        stroke: str,
        *,
        width: float = 1.5,
        fill: str = "none",
        opacity: float | None = None,
    ) -> None:
        if not points:
            return
        d = "M" + " L".join(f"{_f(x)} {_f(y)}" for x, y in points)
        op = f' fill-opacity="{opacity}"' if opacity is not None else ""
        self.parts.append(
            f'<path d="{d}" stroke="{stroke}" stroke-width="{width}" fill="{fill}"{op}/>'
        )

    def circle(
        self, cx: float, cy: float, r: float, fill: str, *, stroke: str = "", tip: str = ""
    ) -> None:
        s = f' stroke="{stroke}" stroke-width="1.5"' if stroke else ""
        body = f"<title>{escape(tip)}</title>" if tip else ""
        self.parts.append(
            f'<circle cx="{_f(cx)}" cy="{_f(cy)}" r="{_f(r)}" fill="{fill}"{s}>{body}</circle>'
        )

    def marker(self, cx: float, cy: float, symbol: str, colour: str, size: float = 5) -> None:
        """A point marker: ``circle``, ``diamond``, ``triangle``, ``x`` or ``ring``."""
        s = size
        if symbol == "diamond":
            pts = f"{_f(cx)},{_f(cy - s)} {_f(cx + s)},{_f(cy)} {_f(cx)},{_f(cy + s)} {_f(cx - s)},{_f(cy)}"
            self.parts.append(f'<polygon points="{pts}" fill="{colour}"/>')
        elif symbol == "triangle":
            pts = f"{_f(cx)},{_f(cy - s)} {_f(cx + s)},{_f(cy + s * 0.8)} {_f(cx - s)},{_f(cy + s * 0.8)}"
            self.parts.append(f'<polygon points="{pts}" fill="{colour}"/>')
        elif symbol == "x":
            self.line(cx - s, cy - s, cx + s, cy + s, colour, width=2)
            self.line(cx - s, cy + s, cx + s, cy - s, colour, width=2)
        elif symbol == "ring":
            self.parts.append(
                f'<circle cx="{_f(cx)}" cy="{_f(cy)}" r="{_f(s)}" fill="#ffffff" stroke="{colour}" stroke-width="1.6"/>'
            )
        else:
            self.circle(cx, cy, s, colour)

    def text(
        self,
        x: float,
        y: float,
        text: str,
        *,
        size: float = 12,
        fill: str = INK,
        anchor: str = "start",
        weight: str = "",
        rotate: float = 0,
    ) -> None:
        if not text:
            return
        w = f' font-weight="{weight}"' if weight else ""
        r = f' transform="rotate({_f(rotate)} {_f(x)} {_f(y)})"' if rotate else ""
        a = f' text-anchor="{anchor}"' if anchor != "start" else ""
        self.parts.append(
            f'<text x="{_f(x)}" y="{_f(y)}" font-size="{_f(size)}" fill="{fill}"{a}{w}{r}>'
            f"{escape(text)}</text>"
        )

    def legend(
        self, x: float, y: float, items: Iterable[tuple[str, str]], *, size: float = 11
    ) -> float:
        """Colour swatches with names, left to right from (x, y); returns the x after the last."""
        for name, colour in items:
            self.rect(x, y - size + 2, size - 1, size - 1, colour, rx=2)
            self.text(x + size + 3, y, name, size=size, fill=MUTED)
            x += size + 3 + text_width(name, size) + 14
        return x

    def render(self) -> str:
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(self.width)}" height="{_f(self.height)}" '
            f'viewBox="0 0 {_f(self.width)} {_f(self.height)}" font-family={quoteattr(FONT)} '
            f'role="img" aria-label={quoteattr(self.label)}>'
        )
        title = f"<title>{escape(self.title)}</title>" if self.title else ""
        bg = f'<rect x="0" y="0" width="{_f(self.width)}" height="{_f(self.height)}" fill="#ffffff"/>'
        return head + title + bg + "".join(self.parts) + "</svg>"
