"""The quickstart notebook, end to end, in a real JupyterLab in a real browser (Chromium).

A throwaway ``jupyter lab`` serves a copy of ``notebooks/01_quickstart.ipynb`` (the repository is
not touched); the page runs every cell the way a user does (Run All), then the widgets the
notebook displays are checked where a user sees them: the GraphView draws every node, the
Debugger's Step button moves the run on by one step, and the timeline (a plotly FigureWidget)
draws its bars. On failure a screenshot, the page's console and the server's log are kept under
the test's ``tmp_path`` and named in the assertion message.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _jupyterlab import (  # tests/ui is on sys.path (pytest's rootdir-less test modules)
    CHROMIUM,
    WIDGET_PLUGINS,
    JupyterLab,
    cell_with,
    plugin_states,
    run_all,
    wait_for_kernel,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "01_quickstart.ipynb"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
# The graph the quickstart's %%agentgraph cell builds (START and END are drawn: edges touch them).
GRAPH_CELL = "%%agentgraph research"
NODES = ("__start__", "plan", "search", "write", "__end__")
DEBUG_CELL = "research.debug("
TIMELINE_CELL = 'research.timeline("timed-run")'
BARS = ".js-plotly-plot .barlayer .point path"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[JupyterLab]:
    """A JupyterLab serving a copy of the quickstart, everything under ``tmp_path``."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    server = JupyterLab(work, tmp_path / "jupyter")
    try:
        server.start()
        yield server
    finally:
        server.stop()


class Evidence:
    """What the page said (console, errors); on failure, a screenshot and files to look at."""

    def __init__(self, page: Any, lab: JupyterLab, out: Path) -> None:
        self.page, self.lab, self.out = page, lab, out
        self.console: list[str] = []
        self.errors: list[str] = []
        page.on("console", lambda m: self.console.append(f"[{m.type}] {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def save(self) -> str:
        shot = self.out / "jupyterlab-failure.png"
        log = self.out / "jupyterlab-console.log"
        try:
            self.page.screenshot(path=str(shot), full_page=True)
        except Exception as exc:  # the page may be gone
            shot = Path(f"(no screenshot: {exc})")
        log.write_text(
            "\n".join([*self.console, *(f"[pageerror] {e}" for e in self.errors)]) + "\n"
        )
        return f"\nscreenshot: {shot}\nconsole log: {log}\nserver log: {self.lab.log_path}"


def widget_diagnosis(page: Any, cells: list[dict[str, Any]], needle: str) -> str:
    """Why a widget might not show: the lab plugins it needs, and what its cell put out."""
    states = plugin_states(page, list(WIDGET_PLUGINS))
    missing = [
        f"{pid} is {st} (from {WIDGET_PLUGINS[pid]})"
        for pid, st in states.items()
        if st != "active"
    ]
    cell = next((c for c in cells if needle in c["source"]), None)
    kinds = [sorted(o.get("data", {})) or o["output_type"] for o in (cell or {}).get("outputs", [])]
    shown = cell_with(page, needle).locator(".jp-OutputArea").first
    text = shown.inner_text()[:300] if shown.count() else "(cell not in the page)"
    return (
        f"lab plugins: {'; '.join(missing) or 'widget manager and anywidget active'}; "
        f"outputs of the {needle!r} cell: {kinds}; it shows: {text!r}"
    )


def test_quickstart_runs_in_jupyterlab(lab: JupyterLab, playwright: Any, tmp_path: Path) -> None:
    """Run All in JupyterLab, then the GraphView, the Debugger's Step and the timeline's bars."""
    # pytest-playwright's session-wide Playwright (a second sync_playwright() in the same process
    # would fail when other browser tests ran first); our own Chromium, with the project's flags.
    t0 = time.monotonic()
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        ev = Evidence(page, lab, tmp_path)
        try:
            _check(page, lab, ev)
        except Exception as exc:
            raise AssertionError(f"{type(exc).__name__}: {exc}{ev.save()}") from exc
    finally:
        browser.close()
    print(f"quickstart in JupyterLab: {time.monotonic() - t0:.1f} s")


def _check(page: Any, lab: JupyterLab, ev: Evidence) -> None:
    page.goto(lab.notebook_url(NOTEBOOK.name), wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
    wait_for_kernel(page)
    # The widgets need ipywidgets' widget manager and anywidget's lab extension (GraphView and the
    # Debugger are anywidgets, and so is plotly's FigureWidget since plotly 6).
    states = plugin_states(page, list(WIDGET_PLUGINS))
    inactive = [
        f"{pid} is {st}: install {WIDGET_PLUGINS[pid]}"
        for pid, st in states.items()
        if st != "active"
    ]
    assert not inactive, f"widgets cannot render in this JupyterLab: {inactive}"
    cells = run_all(page)

    errors = [
        f"cell {c['index']}: {o.get('ename')}: {o.get('evalue')}"
        for c in cells
        for o in c["outputs"]
        if o["output_type"] == "error"
    ]
    assert not errors, f"cells failed in JupyterLab: {errors}"
    counts = [c["count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"not run top to bottom in one kernel: {counts}"
    )
    for needle in (GRAPH_CELL, DEBUG_CELL, TIMELINE_CELL):
        cell = next(c for c in cells if needle in c["source"])
        assert any(WIDGET_VIEW in o.get("data", {}) for o in cell["outputs"]), (
            f"the {needle!r} cell displayed no widget: {cell['outputs']}"
        )

    # (1) the GraphView of the %%agentgraph cell draws every node
    graph_cell = cell_with(page, GRAPH_CELL)
    graph_cell.scroll_into_view_if_needed()
    view = graph_cell.locator('[data-testid="graphview"][data-ready="true"]')
    try:
        view.wait_for(timeout=20_000)
    except Exception as exc:
        raise AssertionError(
            f"GraphView did not render: {widget_diagnosis(page, cells, GRAPH_CELL)}"
        ) from exc
    for name in NODES:
        assert view.locator(f'[data-testid="node-{name}"]').count() == 1, f"node {name!r} not drawn"
        assert page.locator(f'[data-testid="node-{name}"]').count() >= 1

    # (2) the Debugger: Step moves the shown state on by one step
    dbg_cell = cell_with(page, DEBUG_CELL)
    dbg_cell.scroll_into_view_if_needed()
    dbg = dbg_cell.locator(".agentgraph-debugger")
    try:
        dbg.locator('[data-testid="graphview"][data-ready="true"]').wait_for(timeout=20_000)
        dbg.locator("button.agentgraph-step").wait_for(timeout=10_000)
    except Exception as exc:
        raise AssertionError(
            f"Debugger did not render: {widget_diagnosis(page, cells, DEBUG_CELL)}"
        ) from exc
    # Where the run is, by the kernel's last word on it (the display's text, or a later print):
    # the view may still be catching up with the last model updates when the run ends.
    said = [
        m.group(1)
        for c in cells[next(i for i, c in enumerate(cells) if DEBUG_CELL in c["source"]) :]
        for o in c["outputs"]
        for m in re.finditer(r"Debugger\(graph '[^']*', thread '[^']*', step (\d+)", _text(o))
    ]
    assert said, "the Debugger's cells printed no summary"
    step = int(said[-1])
    status = dbg.locator(".agentgraph-status")
    inspector = dbg.locator(".agentgraph-inspector")
    try:
        status.filter(has_text=re.compile(rf"\bstep {step}\b")).wait_for(timeout=10_000)
        inspector.filter(has_text=f"step {step} \u00b7").wait_for(timeout=10_000)
    except Exception as exc:
        raise AssertionError(
            f"the Debugger does not show step {step}: status {status.inner_text()!r}"
        ) from exc
    before = (status.inner_text(), inspector.inner_text())
    dbg.locator("button.agentgraph-step").click(timeout=10_000)  # waits until it is enabled
    try:
        # "Paused at step 3 ..." or, at the end, "Finished in 3 steps"
        said_step = rf"\bstep {step + 1}\b|\b{step + 1} steps?\b"
        status.filter(has_text=re.compile(said_step)).wait_for(timeout=15_000)
        inspector.filter(has_text=f"step {step + 1} \u00b7").wait_for(timeout=10_000)
    except Exception as exc:
        raise AssertionError(
            f"Step did not move the Debugger from step {step} to {step + 1}: "
            f"status {status.inner_text()!r}"
        ) from exc
    assert (status.inner_text(), inspector.inner_text()) != before

    # B on a node toggles its breakpoint: JupyterLab's own "b" (insert a cell below) stays out
    n_cells = page.locator(".jp-Notebook .jp-Cell").count()
    dbg.locator('[data-testid="node-plan"]').click()
    page.keyboard.press("b")
    try:
        dbg.locator('[data-testid="bp-before-plan"]').wait_for(timeout=10_000)
    except Exception as exc:
        raise AssertionError("B on the selected node set no breakpoint in JupyterLab") from exc
    assert page.locator(".jp-Notebook .jp-Cell").count() == n_cells, "B inserted a cell"

    # (3) the timeline (a plotly FigureWidget) draws its bars
    tl_cell = cell_with(page, TIMELINE_CELL)
    tl_cell.scroll_into_view_if_needed()
    try:
        tl_cell.locator(".js-plotly-plot .main-svg").first.wait_for(
            state="attached", timeout=20_000
        )
        page.wait_for_function(
            "(sel) => document.querySelectorAll(sel).length > 0", arg=BARS, timeout=20_000
        )
    except Exception as exc:
        raise AssertionError(
            f"timeline did not render: {widget_diagnosis(page, cells, TIMELINE_CELL)}"
        ) from exc
    # one bar per node execution: as many as the figure's own summary counts
    outputs = next(c for c in cells if TIMELINE_CELL in c["source"])["outputs"]
    summary = "".join(_text(o) for o in outputs if WIDGET_VIEW in o.get("data", {}))
    m = re.search(r"(\d+) executions", summary)
    assert m and int(m.group(1)) > 0, f"no executions in the timeline's summary: {summary!r}"
    try:
        page.wait_for_function(
            "([sel, n]) => document.querySelectorAll(sel).length === n",
            arg=[BARS, int(m.group(1))],
            timeout=10_000,
        )
    except Exception as exc:
        raise AssertionError(f"{tl_cell.locator(BARS).count()} bars drawn for {summary!r}") from exc
    assert not ev.errors, f"errors in the page: {ev.errors}"


def _text(output: dict[str, Any]) -> str:
    """An output's text (stream text, or text/plain), as JupyterLab's model gives it."""
    t = output.get("text", output.get("data", {}).get("text/plain", ""))
    return "".join(t) if isinstance(t, list) else str(t)
