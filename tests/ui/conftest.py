"""Real-browser tests: Chromium driven by Playwright, widgets served by pytest-ipywidgets (solara).

Needs the Debian ``chromium`` package (``/usr/bin/chromium``, or set ``AGENTGRAPH_CHROMIUM``) and
``pytest-ipywidgets``/``solara`` 1.58.2 (newer solara loads page assets from a CDN at run time).
Playwright's own browser download is never used. Without them these tests are skipped, except
under CI (``CI`` set), where a missing browser is an error rather than a silent skip.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("AGENTGRAPH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
HERE = Path(__file__).resolve().parent


def _missing() -> str:
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    for mod in ("solara.test.pytest_plugin", "pytest_playwright", "playwright"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (pip install the dev extra: pytest-ipywidgets, solara)"
    return ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing()
    for item in items:
        if HERE not in Path(str(item.path)).resolve().parents:
            continue
        item.add_marker(pytest.mark.browser)
        if reason and not os.environ.get("CI"):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    """pytest-playwright's launch arguments: the system Chromium, headless, no sandbox."""
    return {"executable_path": CHROMIUM, "headless": True, "args": LAUNCH_ARGS}


SCREENSHOTS = HERE / "screenshots"


@pytest.fixture
def screenshot() -> object:
    """``screenshot(page_or_locator, name)`` saves a PNG to ``tests/ui/screenshots/`` (git-ignored)
    for a person to look at; returns its path."""

    def shot(target: object, name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        target.screenshot(path=str(path))  # type: ignore[attr-defined]
        return path

    return shot
