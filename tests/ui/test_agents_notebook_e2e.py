"""Notebook 09 (agents), end to end, in a real JupyterLab in a real browser (Chromium).

A throwaway ``jupyter lab`` serves a copy of ``notebooks/09_agents.ipynb`` and its cassettes; Run
All replays the recorded model calls. Then, where a user looks: the agent's GraphView shows the
model's reply in the ``agent`` node's details; the Debugger, which stepped the agent to its end,
has the answering node's details open with the reply; and a Back then a Step click in the page
runs the model node again, now live against the notebook's local model server (a click is not
inside the cassette's block), its answer streaming into the details panel.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _jupyterlab import CHROMIUM, JupyterLab, cell_with, run_all, wait_for_kernel
from test_jupyterlab_e2e import CHROMIUM_ARGS, Evidence

pytest.importorskip("openai")

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "09_agents.ipynb"
ANSWER = "Go to Rome: a walk on the Aventine at sunset (Oslo: 4 C, rain; Rome: 21 C, sun)."


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[JupyterLab]:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    shutil.copytree(NOTEBOOK.parent / "cassettes", work / "cassettes")
    server = JupyterLab(work, tmp_path / "jupyter")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_agents_notebook_streams_into_the_views_in_jupyterlab(
    lab: JupyterLab, playwright: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = time.monotonic()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        ev = Evidence(page, lab, tmp_path)
        try:
            _check(page, lab)
        except Exception as exc:
            raise AssertionError(f"{type(exc).__name__}: {exc}{ev.save()}") from exc
        assert not ev.errors, f"errors in the page: {ev.errors}"
    finally:
        browser.close()
    print(f"09_agents in JupyterLab: {time.monotonic() - t0:.1f} s")


def _check(page: Any, lab: JupyterLab) -> None:
    page.goto(lab.notebook_url(NOTEBOOK.name), wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
    wait_for_kernel(page)
    cells = run_all(page, timeout=120_000)
    errors = [f"cell {c['index']}: {o.get('ename')}: {o.get('evalue')}" for c in cells
              for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"cells failed in JupyterLab: {errors}"

    # the agent's GraphView: a click on the agent node shows the model's reply
    view = cell_with(page, "agent.show()").locator('[data-testid="graphview"][data-ready="true"]')
    view.wait_for(timeout=30_000)
    # it follows the app's latest run (the last cell's, which failed on purpose): pin the first
    pin = view.locator('[data-testid="graphview-follow"]')
    options = pin.evaluate("s => [...s.options].map(o => [o.value, o.textContent])")
    value = next((v for v, t in options if "trip-1" in t), None)
    assert value is not None, f"thread trip-1 is not in the view's menu: {options}"
    pin.select_option(value=value)
    view.locator('[data-testid="node-agent"]').click()
    reply = view.locator('[data-testid="graphview-details-reply"] pre')
    reply.wait_for(timeout=10_000)
    wait_text(reply, ANSWER)
    assert "travel-desk" in view.locator('[data-testid="graphview-details-model"] pre').inner_text()

    # the Debugger stepped the agent to its end; the answering node's details are open
    dbg = cell_with(page, "agent.debug(").locator(".agentgraph-debugger")
    dbg.locator('[data-testid="graphview"][data-ready="true"]').wait_for(timeout=30_000)
    dbg.locator(".agentgraph-status", has_text="Finished in 5 steps").wait_for(timeout=15_000)
    dreply = dbg.locator('[data-testid="graphview-details-reply"] pre')
    dreply.wait_for(timeout=10_000)
    wait_text(dreply, ANSWER)

    # Back, then Step: the model node runs again from the click, live (no cassette around a
    # click), against the notebook's model server; the answer streams into the open panel
    dbg.locator("button.agentgraph-back").click(timeout=10_000)
    dbg.locator(".agentgraph-status", has_text="next: agent").wait_for(timeout=15_000)
    # the node's "running" state can last less than a browser frame on a fast model reply: a
    # MutationObserver records it whenever it was set, instead of a wait that could miss it
    dbg.evaluate(_WATCH_RUNNING)
    dbg.locator("button.agentgraph-step").click(timeout=10_000)
    dbg.locator(".agentgraph-status", has_text="Finished in 5 steps").wait_for(timeout=30_000)
    assert dbg.evaluate("el => el.__agentRunningSeen") is True, "the agent node never showed as running"
    wait_text(dreply, ANSWER, 15.0)


_WATCH_RUNNING = """el => {
    el.__agentRunningSeen = false;
    const seen = (n) => n && n.getAttribute && n.getAttribute("data-testid") === "node-agent";
    new MutationObserver((records) => {
        for (const r of records) {
            if (r.type === "attributes" && seen(r.target)
                && (r.oldValue === "running" || r.target.getAttribute("data-status") === "running")) {
                el.__agentRunningSeen = true;
            }
            for (const n of r.addedNodes || []) {
                const hit = n.querySelector && n.querySelector('[data-testid="node-agent"][data-status="running"]');
                if (hit || (seen(n) && n.getAttribute("data-status") === "running")) el.__agentRunningSeen = true;
            }
        }
    }).observe(el, {subtree: true, childList: true, attributes: true, attributeOldValue: true,
                    attributeFilter: ["data-status"]});
}"""


def wait_text(locator: Any, text: str, timeout: float = 10.0) -> None:
    """Until the element's text is ``text`` (the panel redraws as batches arrive)."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        try:
            seen = locator.text_content(timeout=1_000) or ""
        except Exception:  # redrawn between two looks
            seen = ""
        if seen == text:
            return
        time.sleep(0.05)
    raise AssertionError(f"expected {text!r}, the page shows {seen!r}")
