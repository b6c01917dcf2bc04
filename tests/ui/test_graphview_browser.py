"""GraphView in a real browser: nodes render, statuses change live from Python, clicks come back
to Python, zoom/pan/fit work, and 1,000- and 10,000-node graphs render."""

from __future__ import annotations

import operator
import threading
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb.types import Event
from agentgraph_nb.ui._synthetic import synthetic_graph
from agentgraph_nb.ui.graphview import GraphView

pytestmark = pytest.mark.browser

GRAPH: dict[str, Any] = {
    "format": "agentgraph_nb/graph",
    "version": 1,
    "name": "research",
    "nodes": [
        {"name": n, "target": f"mymod:{n}", "async": False, "retry": None, "timeout": None}
        for n in ("plan", "search", "write", "a", "b", "join", "explore", "review")
    ],
    "edges": [
        {"source": "__start__", "target": "plan"},
        {"source": "plan", "target": "search"},
        {"source": "plan", "target": "a"},
        {"source": "plan", "target": "b"},
        {"source": "join", "target": "explore"},
        {"source": "write", "target": "__end__"},
    ],
    "joins": [{"sources": ["a", "b"], "target": "join"}],
    "branches": [
        {"source": "search", "router": "route", "targets": ["search", "write"], "path_map": None},
        {"source": "review", "router": "decide", "targets": None, "path_map": None},
    ],
    "weighted": [{"source": "explore", "weights": {"a": 0.7, "review": 0.3}}],
}
NODES = [n["name"] for n in GRAPH["nodes"]]
RUNNING_FILL = "rgb(227, 240, 253)"  # #e3f0fd
DONE_FILL = "rgb(230, 244, 234)"  # #e6f4ea
FAILED_FILL = "rgb(253, 236, 234)"  # #fdecea


def wait_until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def show(solara_test: Any, page_session: Any) -> Iterator[Callable[..., Any]]:
    """Display a GraphView in the test page and wait until it has drawn; page errors fail the test."""
    from IPython.display import display

    errors: list[str] = []

    def on_error(exc: Any) -> None:
        errors.append(str(exc))

    page_session.on("pageerror", on_error)

    def _show(view: GraphView, timeout: float = 30_000) -> Any:
        display(view)
        root = page_session.locator('[data-testid="graphview"][data-ready="true"]')
        root.wait_for(timeout=timeout)
        return root

    yield _show
    page_session.remove_listener("pageerror", on_error)
    assert not errors, f"errors in the page: {errors}"


def node(page: Any, name: str) -> Any:
    return page.locator(f'[data-testid="node-{name}"]')


def test_every_node_renders(show: Any, page_session: Any) -> None:
    view = GraphView(GRAPH)
    root = show(view)
    assert root.get_attribute("data-renderer") == "svg"
    assert root.get_attribute("data-layout") == "dagre"
    nodes = page_session.locator('[data-testid^="node-"]')
    assert nodes.count() == len(NODES) + 2  # START and END are drawn: edges touch them
    for name in [*NODES, "__start__", "__end__"]:
        assert node(page_session, name).count() == 1
    assert page_session.locator('[data-testid="join-0"]').count() == 1
    assert page_session.locator('[data-testid="router-1"]').count() == 1  # dynamic router stub
    labels = page_session.locator(".agn-elabel").all_text_contents()
    assert {"route", "0.7", "0.3"} <= set(labels)
    assert page_session.locator(".agn-edge-conditional").count() == 2
    assert page_session.locator('[data-testid="graphview-info"]').inner_text().startswith("8 nodes")


def test_start_end_only_when_edges_touch_them(show: Any, page_session: Any) -> None:
    view = GraphView(
        {
            "name": "tiny",
            "nodes": [{"name": "x"}, {"name": "y"}],
            "edges": [{"source": "x", "target": "y"}],
        }
    )
    show(view)
    assert page_session.locator('[data-testid^="node-"]').count() == 2


def test_status_changes_from_python_show_up(show: Any, page_session: Any) -> None:
    view = GraphView(GRAPH)
    show(view)
    plan = node(page_session, "plan")
    assert plan.get_attribute("data-status") == "idle"
    fill = lambda: plan.locator("rect").evaluate("el => getComputedStyle(el).fill")  # noqa: E731
    view.status = {"plan": "running"}
    page_session.locator('[data-testid="node-plan"][data-status="running"]').wait_for()
    assert fill() == RUNNING_FILL
    view.status = {"plan": "done", "search": "failed"}
    page_session.locator('[data-testid="node-plan"][data-status="done"]').wait_for()
    assert fill() == DONE_FILL
    assert node(page_session, "search").get_attribute("data-status") == "failed"
    assert (
        node(page_session, "search").locator("rect").evaluate("el => getComputedStyle(el).fill")
        == FAILED_FILL
    )


def test_statuses_change_during_a_run(show: Any, page_session: Any) -> None:
    """Events drive the view through the Python traits, coalesced, as during a run."""
    view = GraphView(GRAPH)
    show(view)

    def e(kind: str, name: str = "", **kw: Any) -> Event:
        return Event(kind=kind, run_id="r", thread_id="t", step=1, node=name, **kw)

    def status_of(name: str) -> str | None:
        return node(page_session, name).get_attribute("data-status")

    view.on_event(e("run_start"))
    wait_until(lambda: all(status_of(n) == "pending" for n in NODES), what="all pending")
    view.on_event(e("node_start", "plan", data={"question": "q"}, attempt=1))
    page_session.locator('[data-testid="node-plan"][data-status="running"]').wait_for()
    view.on_event(e("node_end", "plan", data={"notes": ["p"]}, duration=0.01, attempt=1))
    view.on_event(e("node_start", "search", data={}, attempt=1))
    view.on_event(e("node_retry", "search", data=ConnectionError("flaky"), attempt=1))
    page_session.locator('[data-testid="node-search"][data-status="retrying"]').wait_for()
    assert status_of("plan") == "done"
    view.on_event(e("node_error", "search", data=ValueError("bad"), duration=0.2, attempt=2))
    view.on_event(e("run_end"))
    page_session.locator('[data-testid="node-search"][data-status="failed"]').wait_for()
    assert status_of("write") == "idle"  # never ran


class _State(TypedDict, total=False):
    q: str
    notes: Annotated[list[str], operator.add]


def test_live_statuses_from_a_real_engine_run(show: Any, page_session: Any) -> None:
    import agentgraph_nb

    StateGraph = getattr(agentgraph_nb, "StateGraph", None)
    if StateGraph is None:
        pytest.skip("engine not available")
    from agentgraph_nb import END, START

    release = threading.Event()

    def plan(s: _State) -> dict[str, Any]:
        return {"notes": ["p"]}

    def slow(s: _State) -> dict[str, Any]:
        release.wait(20)
        return {"notes": ["s"]}

    g = StateGraph(_State, name="live")
    g.add_node("plan", plan)
    g.add_node("slow", slow)
    g.add_edge(START, "plan")
    g.add_edge("plan", "slow")
    g.add_edge("slow", END)
    app = g.compile()
    view = GraphView.from_app(app)
    unsubscribe = view.attach(app)
    show(view)
    worker = threading.Thread(target=app.invoke, args=({"q": "x"},))
    worker.start()
    try:
        page_session.locator('[data-testid="node-slow"][data-status="running"]').wait_for(
            timeout=10_000
        )
        assert node(page_session, "plan").get_attribute("data-status") == "done"
    finally:
        release.set()
        worker.join(20)
    page_session.locator('[data-testid="node-slow"][data-status="done"]').wait_for(timeout=10_000)
    unsubscribe()


def test_click_selects_and_shows_details(show: Any, page_session: Any) -> None:
    view = GraphView(GRAPH)
    view.details = {
        "plan": {
            "input": "{'question': 'q'}",
            "output": "{'notes': ['p']}",
            "duration": "12.0 ms",
            "attempt": "1",
            "error": "",
        }
    }
    view.status = {"plan": "done"}
    show(view)
    panel = page_session.locator('[data-testid="graphview-details"]')
    assert panel.is_hidden()
    node(page_session, "plan").click()
    wait_until(lambda: view.selected == "plan", what="selected == 'plan' in Python")
    panel.wait_for(state="visible")
    assert page_session.locator('[data-testid="graphview-details-name"]').inner_text() == "plan"
    assert (
        page_session.locator('[data-testid="graphview-details-input"] pre').inner_text()
        == "{'question': 'q'}"
    )
    assert (
        page_session.locator('[data-testid="graphview-details-output"] pre').inner_text()
        == "{'notes': ['p']}"
    )
    assert (
        page_session.locator('[data-testid="graphview-details-duration"] pre').inner_text()
        == "12.0 ms"
    )
    assert page_session.locator('[data-testid="graphview-details-attempt"] pre').inner_text() == "1"
    assert "agn-selected" in (node(page_session, "plan").get_attribute("class") or "")
    # live: new details for the selected node show up in the open panel
    view.details = {**view.details, "plan": {**view.details["plan"], "error": "ValueError: boom"}}
    page_session.locator('[data-testid="graphview-details-error"]').wait_for()
    # selecting from Python moves the panel
    view.selected = "search"
    page_session.locator('[data-testid="graphview-details"][data-node="search"]').wait_for()
    page_session.locator('[data-testid="graphview-details-close"]').click()
    wait_until(lambda: view.selected == "", what="selection cleared in Python")
    panel.wait_for(state="hidden")


def test_breakpoints_toggle(show: Any, page_session: Any) -> None:
    view = GraphView(GRAPH)
    show(view)
    node(page_session, "plan").click(modifiers=["Shift"])
    wait_until(lambda: view.breakpoints == ["plan"], what="breakpoint set in Python")
    page_session.locator('[data-testid="node-plan"][data-breakpoint="true"]').wait_for()
    view.breakpoints = []
    page_session.locator('[data-testid="node-plan"][data-breakpoint="false"]').wait_for()


def test_edge_counts_set_thickness(show: Any, page_session: Any) -> None:
    view = GraphView(GRAPH)
    show(view)
    width_js = """(title) => {
        const p = [...document.querySelectorAll('path.agn-edge')].find(p => p.textContent.startsWith(title));
        return parseFloat(getComputedStyle(p).strokeWidth);
    }"""
    before = page_session.evaluate(width_js, "plan \u2192 search")
    view.edge_counts = {"plan->search": 50, "plan->a": 1}
    wait_until(
        lambda: page_session.evaluate(width_js, "plan \u2192 search") > before + 2,
        what="thicker frequent edge",
    )
    assert page_session.evaluate(width_js, "plan \u2192 a") < page_session.evaluate(
        width_js, "plan \u2192 search"
    )


def test_zoom_pan_and_fit(show: Any, page_session: Any) -> None:
    view = GraphView(GRAPH)
    show(view)
    vp = page_session.locator(".agn-viewport")
    fitted = vp.get_attribute("transform")
    page_session.locator('[data-testid="graphview-zoom-in"]').click()
    zoomed = vp.get_attribute("transform")
    assert zoomed != fitted
    stage = page_session.locator('[data-testid="graphview-stage"]')
    box = stage.bounding_box()
    assert box is not None
    page_session.mouse.move(box["x"] + 20, box["y"] + 20)
    page_session.mouse.wheel(0, -300)
    wait_until(lambda: vp.get_attribute("transform") != zoomed, what="wheel zoom")
    # drag on empty space pans
    before = vp.get_attribute("transform")
    page_session.mouse.move(box["x"] + 5, box["y"] + 5)
    page_session.mouse.down()
    page_session.mouse.move(box["x"] + 80, box["y"] + 60, steps=5)
    page_session.mouse.up()
    assert vp.get_attribute("transform") != before
    assert view.selected == ""  # a drag is not a click
    page_session.locator('[data-testid="graphview-fit"]').click()
    assert vp.get_attribute("transform") == fitted


def test_1000_nodes_render_in_svg(show: Any, page_session: Any) -> None:
    view = GraphView(synthetic_graph(1000, seed=1000))
    root = show(view)
    assert root.get_attribute("data-renderer") == "svg"
    assert root.get_attribute("data-layout") == "layered"
    assert page_session.locator('[data-testid^="node-"]').count() == 1002
    view.status = dict.fromkeys(view.node_names, "done")
    page_session.locator('[data-testid="node-n999"][data-status="done"]').wait_for()


def test_10000_nodes_render_without_error(show: Any, page_session: Any) -> None:
    view = GraphView(synthetic_graph(10_000, seed=10_000))
    root = show(view, timeout=60_000)
    assert root.get_attribute("data-renderer") == "canvas"
    assert root.get_attribute("data-node-count") == "10000"
    canvas = page_session.locator('[data-testid="graphview-canvas"]')
    assert canvas.is_visible()
    # something was drawn: the canvas is not blank
    drawn = canvas.evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"""
    )
    assert drawn > 1000
    view.status = dict.fromkeys(view.node_names, "running")
    page_session.locator('[data-testid="graphview-fit"]').click()
    page_session.wait_for_timeout(200)


def test_canvas_click_selects(show: Any, page_session: Any) -> None:
    view = GraphView({"name": "solo", "nodes": [{"name": "solo"}], "edges": []}, renderer="canvas")
    root = show(view)
    assert root.get_attribute("data-renderer") == "canvas"
    box = page_session.locator('[data-testid="graphview-stage"]').bounding_box()
    assert box is not None
    page_session.mouse.click(
        box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    )  # fit centres it
    wait_until(lambda: view.selected == "solo", what="canvas click selects the node")
    page_session.locator('[data-testid="graphview-details"][data-node="solo"]').wait_for()


def _box(locator: Any) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None
    return box


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def test_breakpoints_before_and_after_have_their_own_markers(show: Any, page_session: Any) -> None:
    view = GraphView(GRAPH, breakpoints=["plan", "write:after"])
    show(view)
    page = page_session
    before_plan = page.locator('[data-testid="bp-before-plan"]')
    after_write = page.locator('[data-testid="bp-after-write"]')
    assert before_plan.count() == 1 and after_write.count() == 1
    assert page.locator('[data-testid="bp-after-plan"]').count() == 0
    assert page.locator('[data-testid="bp-before-write"]').count() == 0
    assert node(page, "write").get_attribute("data-breakpoint-after") == "true"
    assert node(page, "write").get_attribute("data-breakpoint") == "false"
    # before: on the node's left edge; after: on its right edge
    plan = _box(node(page, "plan").locator("rect"))
    write = _box(node(page, "write").locator("rect"))
    dot = _box(before_plan)
    assert dot["x"] + dot["width"] / 2 < plan["x"] + plan["width"] / 4
    dot = _box(after_write)
    assert dot["x"] + dot["width"] / 2 > write["x"] + 3 * write["width"] / 4
    assert before_plan.evaluate("el => getComputedStyle(el).fill") == "rgb(217, 48, 37)"

    view.breakpoints = ["plan:after"]  # from Python: the markers follow
    page.locator('[data-testid="bp-after-plan"]').wait_for()
    page.locator('[data-testid="bp-before-plan"]').wait_for(state="detached")
    after_write.wait_for(state="detached")

    # the details panel toggles either kind
    node(page, "plan").click()
    page.locator('[data-testid="graphview-details"][data-node="plan"]').wait_for()
    after_box = page.locator('[data-testid="graphview-breakpoint-after-toggle"]')
    before_box = page.locator('[data-testid="graphview-breakpoint-toggle"]')
    assert after_box.is_checked() and not before_box.is_checked()
    before_box.check()
    wait_until(lambda: view.breakpoints == ["plan:after", "plan"], what="before added in Python")
    page.locator('[data-testid="bp-before-plan"]').wait_for()
    after_box.uncheck()
    wait_until(lambda: view.breakpoints == ["plan"], what="after removed in Python")
    page.locator('[data-testid="bp-after-plan"]').wait_for(state="detached")
    node(page, "plan").click(modifiers=["Shift"])  # shift-click: the one before
    wait_until(lambda: view.breakpoints == [], what="shift-click removed it")
    page.locator('[data-testid="bp-before-plan"]').wait_for(state="detached")


def test_every_click_on_a_node_reaches_python(show: Any, page_session: Any) -> None:
    view = GraphView(GRAPH)
    clicks: list[tuple[str, bool]] = []
    view.on_node_click(lambda name, shift: clicks.append((name, shift)))
    show(view)
    page = page_session
    node(page, "plan").click()
    wait_until(lambda: clicks == [("plan", False)], what="first click")
    assert view.selected == "plan"
    node(page, "plan").click()  # the node already selected: no trait change, still a click
    wait_until(lambda: len(clicks) == 2, what="second click on the same node")
    assert clicks[1] == ("plan", False) and view.selected == "plan"
    node(page, "search").click(modifiers=["Shift"])
    wait_until(lambda: len(clicks) == 3, what="shift-click")
    assert clicks[2] == ("search", True)
    assert view.breakpoints == ["search"] and view.selected == "plan"
    node(page, "a").focus()
    page.keyboard.press("Enter")  # the keyboard's click
    wait_until(lambda: len(clicks) == 4, what="Enter on a focused node")
    assert clicks[3] == ("a", False) and view.selected == "a"
    # a drag is not a click
    box = _box(page.locator('[data-testid="graphview-stage"]'))
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    page.mouse.down()
    page.mouse.move(box["x"] + 80, box["y"] + 60, steps=5)
    page.mouse.up()
    page.wait_for_timeout(200)
    assert len(clicks) == 4


def test_details_panel_keeps_the_clicked_node_uncovered(show: Any, page_session: Any) -> None:
    """The panel opens on the side away from the node, which stays visible and clickable."""
    view = GraphView(GRAPH)
    clicks: list[str] = []
    view.on_node_click(lambda name, shift: clicks.append(name))
    show(view)
    page = page_session
    panel = page.locator('[data-testid="graphview-details"]')
    xs = {n: _box(node(page, n))["x"] for n in NODES}
    right, left = max(xs, key=xs.__getitem__), min(xs, key=xs.__getitem__)
    for name in (right, left):
        node(page, name).click()
        page.locator(f'[data-testid="graphview-details"][data-node="{name}"]').wait_for()
        assert not _overlap(_box(panel), _box(node(page, name))), name
        flipped = "agn-details-left" in (panel.get_attribute("class") or "")
        assert flipped == (name == right)  # the right node would be under the usual place
        node(page, name).click()  # clickable again with the panel open
        wait_until(lambda name=name: clicks[-2:] == [name, name], what=f"second click on {name}")


def test_current_nodes_are_outlined(show: Any, page_session: Any) -> None:
    view = GraphView(GRAPH, current=["plan"])
    view.status = {"plan": "pending"}
    show(view)
    page = page_session
    page.locator('[data-testid="node-plan"][data-current="true"]').wait_for()
    rect = node(page, "plan").locator("rect")
    assert float(rect.evaluate("el => parseFloat(getComputedStyle(el).strokeWidth)")) == 3
    assert rect.evaluate("el => getComputedStyle(el).strokeDasharray") == "none"
    search = node(page, "search").locator("rect")
    assert float(search.evaluate("el => parseFloat(getComputedStyle(el).strokeWidth)")) < 2
    view.current = ["search", "write"]
    page.locator('[data-testid="node-write"][data-current="true"]').wait_for()
    page.locator('[data-testid="node-plan"][data-current="false"]').wait_for()
    assert node(page, "search").get_attribute("data-current") == "true"
    assert float(search.evaluate("el => parseFloat(getComputedStyle(el).strokeWidth)")) == 3
    view.current = []
    page.locator('[data-testid="node-write"][data-current="false"]').wait_for()


def test_canvas_draws_after_breakpoints_on_the_right(show: Any, page_session: Any) -> None:
    view = GraphView({"name": "solo", "nodes": [{"name": "solo"}], "edges": []}, renderer="canvas")
    show(view)
    canvas = page_session.locator('[data-testid="graphview-canvas"]')
    red_js = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let left = 0, right = 0;
        for (let i = 0; i < d.length; i += 4) {
          if (d[i] === 217 && d[i + 1] === 48 && d[i + 2] === 37) {
            if ((i / 4) % c.width < c.width / 2) left++; else right++;
          }
        }
        return [left, right]; }"""
    assert canvas.evaluate(red_js) == [0, 0]
    view.breakpoints = ["solo:after"]
    wait_until(lambda: canvas.evaluate(red_js)[1] > 20, what="an after dot on the right")
    assert canvas.evaluate(red_js)[0] == 0
    view.breakpoints = ["solo"]
    wait_until(lambda: canvas.evaluate(red_js)[1] == 0, what="the after dot gone")
    assert canvas.evaluate(red_js)[0] > 20
