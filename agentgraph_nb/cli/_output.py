"""What the ``agentgraph`` commands print: JSON lines, aligned tables, errors, timings."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

from agentgraph_nb.cli._load import location
from agentgraph_nb.errors import AgentGraphError, node_failure

__all__ = ["Timer", "dumps", "ms", "percentile", "report", "short", "table"]


def _default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    if hasattr(obj, "to_dict"):
        try:
            return obj.to_dict(orient="records")
        except TypeError:
            return obj.to_dict()
    return repr(obj)


def dumps(value: Any, *, indent: int | None = None) -> str:
    """JSON text of a state or an update (what is not JSON is shown as its repr)."""
    return json.dumps(value, default=_default, ensure_ascii=False, indent=indent)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], *, right: Sequence[int] = ()) -> str:
    """Rows as an aligned plain-text table (columns in ``right`` right-aligned)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in cells[1:])
    return "\n".join(out)


def short(value: Any, n: int = 60) -> str:
    text = value if isinstance(value, str) else dumps(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= n else text[: n - 3] + "..."


def ms(seconds: float) -> str:
    return "-" if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)) else f"{seconds * 1000:.3f}"


def report(exc: BaseException, source: str = "") -> str:
    """An error as the notebook shows it, with file:line:column for ``.agentgraph`` files."""
    name = type(exc).__name__
    where = location(exc, source) if isinstance(exc, AgentGraphError) else ""
    if where:
        msg = getattr(exc, "msg", str(exc))
        text = str(exc).split("\n", 1)
        excerpt = "\n" + text[1] if len(text) > 1 else ""
        return f"{where}error: {msg}{excerpt}"
    lines = [f"error: {name}: {exc}"]
    failure = node_failure(exc)
    if failure is not None and not isinstance(exc, AgentGraphError):  # a node's own exception
        lines.append(f"  in {failure.describe()}")
    cause = exc.__cause__
    seen = 0
    while cause is not None and seen < 5:
        lines.append(f"  caused by {type(cause).__name__}: {cause}")
        cause, seen = cause.__cause__, seen + 1
    return "\n".join(lines)


class Timer:
    """Collects each node execution's duration from the run events."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}

    def __call__(self, e: Any) -> None:
        if e.kind == "node_end":
            self.times.setdefault(e.node, []).append(e.duration)
        elif e.kind == "node_error":
            self.errors[e.node] = self.errors.get(e.node, 0) + 1


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)
