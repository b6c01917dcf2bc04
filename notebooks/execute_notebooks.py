"""Re-execute the tutorial notebooks in place and store them small.

Run after editing a notebook (from anywhere; the kernel starts in ``notebooks/`` so relative
paths such as ``quickstart.db`` land there)::

    python notebooks/execute_notebooks.py                 # all of them
    python notebooks/execute_notebooks.py 04_failures     # one (name or path)

What it stores: every output except live widget views. A widget view in a saved notebook is only
a pointer to a model that is gone once the kernel stops (and the model's state, which we do not
store, is what makes notebooks huge), so each such output keeps its static fallbacks instead: the
text summary, after the widget's static picture (the output before it, which GitHub and nbviewer
show; its rule hiding it beside a live view is dropped, and its widget id numbered, so re-running
an unchanged notebook changes nothing). Timing metadata is dropped so that re-running changes nothing
when nothing changed. Cells whose first line is ``# NBVAL_SKIP`` are not run here either (nbval
skips them too); their outputs are cleared. The kernel is the Python running this script (the
``python3`` kernel).
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAX_BYTES = 200_000
WIDGET_MIMES = ("application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json")
MAX_TEXT = 4_000  # a widget's text/plain can be its whole state (plotly puts every trace there)
# tqdm's notebook bar: its saved text is the bar's first frame ("0/40"), which misleads a reader.
PROGRESS_BAR = re.compile(r"^[^\n]*\d+%\|.*\| *\d+/\d+ \[")
# a widget's static twin (agentgraph_nb/ui/_static.py): its <style> rule and its widget's model id
TWIN_RULE = re.compile(r"<style>:root:has\(\.agentgraph-live-[0-9a-f]+[^<]*</style>")
TWIN_ID = re.compile(r"agentgraph-static-[0-9a-f]{8,}")


def strip_twin(html: str, number: int) -> str:
    """A static twin as stored: no rule (no live view will be beside it), a stable class."""
    return TWIN_ID.sub(f"agentgraph-static-{number}", TWIN_RULE.sub("", html))


def strip_widgets(nb: dict) -> int:
    """Drop widget views and widget state from ``nb``; returns how many outputs changed."""
    changed = 0
    twins = 0
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb.get("cells", []):
        cell.get("metadata", {}).pop("execution", None)
        if cell.get("cell_type") != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data")
            html = data.get("text/html") if data else None
            if isinstance(html, list):
                html = "".join(html)
            if isinstance(html, str) and "data-agentgraph-static" in html:
                twins += 1
                data["text/html"] = strip_twin(html, twins)
            if data and any(m in data for m in WIDGET_MIMES):
                changed += 1
                for m in WIDGET_MIMES:
                    data.pop(m, None)
                text = data.get("text/plain")
                if isinstance(text, list):
                    text = "".join(text)
                if text is not None and PROGRESS_BAR.match(text):
                    continue
                if text is not None and len(text) > MAX_TEXT:
                    first = text.splitlines()[0] if text else ""
                    data["text/plain"] = first[:200] + " ... (live widget; run the notebook to see it)"
                if not data:
                    continue
            kept.append(out)
        cell["outputs"] = kept
    return changed


def is_skipped(cell: dict) -> bool:
    """``# NBVAL_SKIP`` as the cell's first line (nbval's marker for "do not run")."""
    lines = cell.get("source", "").lstrip().splitlines()
    return bool(lines) and lines[0].strip().replace(" ", "") == "#NBVAL_SKIP"


def execute(path: Path, timeout: int = 600) -> tuple[float, int]:
    """Execute ``path`` in a fresh kernel, strip widgets, write it back; (seconds, bytes)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    skipped = [c for c in nb.cells if c.cell_type == "code" and is_skipped(c)]
    for c in skipped:
        c.outputs = []
        c.execution_count = None
        c.metadata.setdefault("tags", []).append("skip-execution")  # nbclient's own marker
    t0 = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=False,
        record_timing=False,
    )
    try:
        client.execute()
    finally:
        for c in skipped:
            c.metadata["tags"].remove("skip-execution")
            if not c.metadata["tags"]:
                del c.metadata["tags"]
    dt = time.perf_counter() - t0
    strip_widgets(nb)
    nbformat.write(nb, path)
    return dt, path.stat().st_size


def main(argv: list[str]) -> int:
    names = argv or sorted(p.name for p in HERE.glob("[0-9]*.ipynb"))
    paths = []
    for n in names:
        p = Path(n)
        if not p.suffix:
            p = p.with_suffix(".ipynb")
        if not p.exists():
            p = HERE / p.name
        paths.append(p)
    too_big = []
    for p in paths:
        dt, size = execute(p)
        print(f"{p.name}: {dt:.1f} s, {size / 1000:.0f} KB")
        if size > MAX_BYTES:
            too_big.append(p.name)
    if too_big:
        print(f"over {MAX_BYTES // 1000} KB: {', '.join(too_big)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
