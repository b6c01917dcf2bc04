"""The functional API in a real browser: an entrypoint's GraphView grows a node for each task as
it first runs, with live status (running while the task runs, done after), drawn beside the
entrypoint by a dashed "task" edge."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture
def show(solara_test: Any, page_session: Any) -> Iterator[Callable[..., Any]]:
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


def test_the_tasks_that_run_appear_beside_the_entrypoint_with_live_status(show: Any, page_session: Any) -> None:
    from agentgraph_nb import entrypoint, task

    release = threading.Event()

    @task
    def fetch(n: int) -> int:
        return n

    @task
    def slow(total: int) -> int:
        release.wait(20)
        return total

    @entrypoint(checkpointer="memory")
    def flow(ns: list[int]) -> int:
        return slow(sum(f.result() for f in [fetch(n) for n in ns])).result()

    view = flow.show()
    show(view)
    assert page_session.locator('[data-testid^="node-"]').count() == 3  # START, flow, END
    worker = threading.Thread(target=flow.invoke, args=([1, 2],), kwargs={"thread_id": "t"})
    worker.start()
    try:
        page_session.locator('[data-testid="node-slow"][data-status="running"]').wait_for(timeout=10_000)
        assert page_session.locator('[data-testid="node-fetch"]').get_attribute("data-status") == "done"
        assert page_session.locator('[data-testid="node-flow"]').get_attribute("data-status") == "running"
    finally:
        release.set()
        worker.join(20)
    page_session.locator('[data-testid="node-slow"][data-status="done"]').wait_for(timeout=10_000)
    page_session.locator('[data-testid="node-flow"][data-status="done"]').wait_for(timeout=10_000)
    assert "task" in page_session.locator(".agn-elabel").all_text_contents()
    assert page_session.locator(".agn-edge-conditional").count() == 2  # flow -> fetch, flow -> slow
    page_session.screenshot(path="tests/ui/screenshots/functional_tasks.png")
