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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture
def show(solara_test: Any, page_session: Any) -> Iterator[Callable[..., Any]]:
    """``show(view)``: display a GraphView in the page and return its root once drawn; fails the
    test if the page raised an error meanwhile."""
    from IPython.display import display

    errors: list[str] = []
    page_session.on("pageerror", lambda exc: errors.append(str(exc)))

    def _show(view: Any) -> Any:
        display(view)
        root = page_session.locator('[data-testid="graphview"][data-ready="true"]').last
        root.wait_for(timeout=30_000)
        return root

    yield _show
    assert not errors, f"errors in the page: {errors}"
