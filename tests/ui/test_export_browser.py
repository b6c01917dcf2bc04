"""The tutorials exported with ``jupyter nbconvert --to html --execute``, read offline.

nbconvert stores the widget state when it executes a notebook, and its HTML then shows each
widget's live view, which needs JavaScript from a CDN: offline, every widget was blank. Each
widget now leaves a static picture (its "static twin", ``agentgraph_nb/ui/_static.py``). Here a
copy of a tutorial is converted, opened in Chromium with every non-file request aborted, and
every widget's picture must be on the page and drawn: the graph (an SVG image), the timeline
and the dashboard (SVG images of their panels), the Debugger (the graph and, as text, where the
run stopped and its state). Screenshots go to ``tests/ui/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _jupyterlab import CHROMIUM

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(__file__).resolve().parent / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
# notebook -> the pictures it must leave, in order, and text that must be on the page
EXPECTED = {
    "01_quickstart": (
        ["graph", "timeline", "debugger"],
        ["step 4", "next: write", "wind-farms/dataset"],
    ),
    "07_metrics": (["graph", "timeline", "dashboard", "graph"], ["41 completed"]),
}
PICTURES_JS = """() => [...document.querySelectorAll('[data-agentgraph-static]')].map(e => {
  const img = e.querySelector('img');
  const r = (img || e).getBoundingClientRect();
  return {kind: e.dataset.agentgraphStatic, shown: getComputedStyle(e).display !== 'none',
          width: r.width, height: r.height, text: e.innerText,
          drawn: !!img && img.complete && img.naturalWidth > 0,
          svg: !!img && img.src.startsWith('data:image/svg+xml;base64,')};
})"""


def convert(name: str, work: Path) -> Path:
    shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", work / f"{name}.ipynb")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute", f"{name}.ipynb"],
        cwd=work, env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return work / f"{name}.html"


@pytest.mark.parametrize("name", list(EXPECTED))
def test_exported_tutorial_shows_every_widget_offline(
    name: str, tmp_path: Path, playwright: Any
) -> None:
    html = convert(name, tmp_path)
    assert "application/vnd.jupyter.widget-state+json" in html.read_text()  # the state is there
    kinds, texts = EXPECTED[name]
    SHOTS.mkdir(exist_ok=True)
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        blocked: list[str] = []

        def offline(route: Any) -> None:
            url = route.request.url
            if url.startswith(("file:", "data:")):
                route.continue_()
            else:
                blocked.append(url)
                route.abort()

        page.route("**/*", offline)
        page.goto(html.as_uri(), wait_until="load")
        page.wait_for_timeout(500)
        pictures = page.evaluate(PICTURES_JS)
        page.screenshot(path=str(SHOTS / f"export-{name}-offline.png"), full_page=True)
        for i, el in enumerate(page.locator("[data-agentgraph-static]").all()):
            el.screenshot(path=str(SHOTS / f"export-{name}-{i}-{pictures[i]['kind']}.png"))
    finally:
        browser.close()
    assert any("unpkg.com" in u for u in blocked)  # the widget manager could not load: offline
    assert [p["kind"] for p in pictures] == kinds
    for p in pictures:
        assert p["shown"] and p["svg"] and p["drawn"], p
        assert p["width"] >= 300 and p["height"] >= 60, p
    shown = "\n".join(p["text"] for p in pictures)
    for text in texts:
        assert text in shown, f"{text!r} is not in the pictures' text: {shown[:300]!r}"
