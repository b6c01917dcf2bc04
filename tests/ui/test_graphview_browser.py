"""GraphView in a real browser: nodes render, statuses change live from Python, clicks come back
to Python, zoom/pan/fit work, 1,000- and 10,000-node graphs render; the view is sized to its
graph, says which run it shows and can be pinned to one; big graphs have search, a minimap,
fit-to-selection, collapsed chains and fan-outs, and a way home. Screenshots land in
tests/ui/screenshots/ for a person to look at."""

from __future__ import annotations

import itertools
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

    def _show(view: Any, timeout: float = 30_000) -> Any:
        display(view)
        root = page_session.locator('[data-testid="graphview"][data-ready="true"]').last
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
    page_session.locator('[data-testid="graphview-home"]').click()
    assert vp.get_attribute("transform") == fitted


def test_1000_nodes_render_in_svg(show: Any, page_session: Any) -> None:
    view = GraphView(synthetic_graph(1000, seed=1000), collapse="off")
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
    page_session.locator('[data-testid="graphview-home"]').click()
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


def test_details_panel_sits_beside_the_graph_never_over_it(
    show: Any, page_session: Any, screenshot: Any
) -> None:
    """The panel is docked beside the graph: no node is under it, each stays clickable."""
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
        page.wait_for_timeout(250)  # the graph re-fits beside the panel
        box = _box(panel)
        for other in NODES:
            assert not _overlap(box, _box(node(page, other))), f"the panel covers {other}"
        stage = _box(page.locator('[data-testid="graphview-stage"]'))
        assert box["x"] >= stage["x"] + stage["width"] - 1  # docked to the right of the graph
        node(page, name).click()  # clickable again with the panel open
        wait_until(lambda name=name: clicks[-2:] == [name, name], what=f"second click on {name}")
    screenshot(page.locator('[data-testid="graphview"]'), "graphview-details")


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


# -- size, run and pin ---------------------------------------------------------------------------


def _height(root: Any) -> float:
    return _box(root)["height"]


def test_a_small_graph_gets_a_small_view(show: Any, page_session: Any, screenshot: Any) -> None:
    tiny = GraphView(
        {
            "name": "tiny",
            "nodes": [{"name": n} for n in ("plan", "search", "write")],
            "edges": [
                {"source": "__start__", "target": "plan"},
                {"source": "plan", "target": "search"},
                {"source": "search", "target": "write"},
                {"source": "write", "target": "__end__"},
            ],
        }
    )
    assert tiny.height == "auto"
    root = show(tiny)
    page_session.wait_for_timeout(200)
    assert _height(root) < 200, "a 3-node graph sits in a short strip"
    nodes = [_box(node(page_session, n)) for n in ("plan", "search", "write")]
    assert all(b["height"] >= 30 for b in nodes)  # drawn at full size, not shrunk
    screenshot(root, "graphview-3-nodes")
    tiny.height = "300px"  # a fixed height still wins
    wait_until(lambda: abs(_height(root) - 300) < 2, what="fixed height applied")


def test_the_view_says_which_run_it_shows_and_can_be_pinned(
    show: Any, page_session: Any, screenshot: Any
) -> None:
    from agentgraph_nb import END, START, StateGraph
    from agentgraph_nb.ui.debugger import Debugger

    g = StateGraph(_State, name="pinned")
    g.add_node("plan", lambda s: {"notes": ["p"]})
    g.add_node("write", lambda s: {"notes": ["w"]})
    g.add_edge(START, "plan").add_edge("plan", "write").add_edge("write", END)
    app = g.compile()
    top = app.show()  # the view at the top of the notebook
    follower = app.show()  # another one, never pinned
    page = page_session
    import ipywidgets as W

    show(W.VBox([top, follower]))
    tops = page.locator('[data-testid="graphview"]')
    page.locator('[data-testid="graphview"][data-ready="true"]').nth(1).wait_for()
    pinned_view, follow_view = tops.nth(0), tops.nth(1)
    app.invoke({"q": "x"}, thread_id="A")
    pinned_view.locator(
        '[data-testid="graphview-run"]', has_text="thread A \u00b7 run ended at step 2"
    ).wait_for()
    pinned_view.locator('[data-testid="node-plan"][data-status="done"]').wait_for()
    # pin it from the page: the menu lists thread A
    pinned_view.locator('[data-testid="graphview-follow"]').select_option(label="Pin to thread A")
    wait_until(lambda: top.pin_thread == "A", what="pinned in Python")

    dbg = Debugger(app, {"q": "y"}, thread_id="B")
    show(dbg)
    dbg.step()  # thread B: plan done, write pending
    page.locator(
        '.agentgraph-debugger [data-testid="node-write"][data-status="pending"]'
    ).wait_for()
    follow_view.locator('[data-testid="graphview-run"]', has_text="thread B").wait_for()
    # the view that follows the latest run shows B's picture: write has not run there
    follow_view.locator('[data-testid="node-write"][data-status="idle"]').wait_for()
    page.wait_for_timeout(300)
    # the pinned view did not change colour and still says thread A
    assert pinned_view.locator('[data-testid="node-write"]').get_attribute("data-status") == "done"
    assert pinned_view.locator('[data-testid="graphview-run"]').inner_text().startswith("thread A")
    assert top.status["write"] == "done" and top.run["thread_id"] == "A"
    screenshot(page, "graphview-pinned-vs-debugger")
    top.unpin()  # following again: the latest run (thread B) shows
    pinned_view.locator('[data-testid="graphview-run"]', has_text="thread B").wait_for()
    dbg.close()


# -- finding your way in big graphs -----------------------------------------------------------------


def _center(box: dict[str, float]) -> tuple[float, float]:
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def test_search_jumps_to_a_node_and_highlights_it(show: Any, page_session: Any) -> None:
    view = GraphView(GRAPH)
    root = show(view)
    page = page_session
    box = page.locator('[data-testid="graphview-search"]')
    box.fill("e")  # search, write, explore, review
    page.locator('[data-testid="search-result-review"]').wait_for()
    assert page.locator('[data-testid="graphview-search-count"]').inner_text() == "4"
    for name in ("search", "write", "explore", "review"):
        assert "agn-match" in (node(page, name).get_attribute("class") or "")
    assert "agn-match" not in (node(page, "plan").get_attribute("class") or "")
    box.fill("wri")
    page.locator('[data-testid="search-result-write"]').wait_for()
    box.press("Enter")
    wait_until(lambda: view.selected == "write", what="the search selects the node in Python")
    wait_until(lambda: view.query == "wri", what="the query reaches Python")
    assert root.get_attribute("data-found") == "write"
    ring = page.locator('[data-testid="graphview-found"]')
    ring.wait_for()
    stage = _box(page.locator('[data-testid="graphview-stage"]'))
    cx, cy = _center(_box(node(page, "write")))
    assert abs(cx - (stage["x"] + stage["width"] / 2)) < 4
    assert abs(cy - (stage["y"] + stage["height"] / 2)) < 4
    rx, ry = _center(_box(ring))
    assert abs(rx - cx) < 2 and abs(ry - cy) < 2  # the ring is around the node
    view.find("plan")  # the Python twin
    wait_until(lambda: root.get_attribute("data-found") == "plan", what="find() jumps")
    with pytest.raises(ValueError, match="Did you mean 'plan'"):
        view.find("plam")


def test_search_and_minimap_at_10000_nodes(show: Any, page_session: Any, screenshot: Any) -> None:
    view = GraphView(synthetic_graph(10_000, seed=10_000))
    root = show(view, timeout=60_000)
    page = page_session
    assert root.get_attribute("data-renderer") == "canvas"
    minimap = page.locator('[data-testid="graphview-minimap"]')
    minimap.wait_for()  # a graph this big cannot be read when fitted: the minimap is there
    mm = _box(minimap)
    vp = _box(page.locator('[data-testid="graphview-minimap-viewport"]'))
    assert vp["x"] >= mm["x"] - 1 and vp["x"] + vp["width"] <= mm["x"] + mm["width"] + 1
    fitted_scale = float(root.get_attribute("data-scale") or 0)
    assert fitted_scale < 0.1
    screenshot(root, "graphview-10000-fit")

    box = page.locator('[data-testid="graphview-search"]')
    box.fill("n4242")
    page.locator('[data-testid="search-result-n4242"]').wait_for()
    box.press("Enter")
    wait_until(lambda: view.selected == "n4242", what="search selects n4242 in Python")
    assert root.get_attribute("data-found") == "n4242"
    assert float(root.get_attribute("data-scale") or 0) >= 1  # labels are readable at once
    stage = _box(page.locator('[data-testid="graphview-stage"]'))
    rx, ry = _center(_box(page.locator('[data-testid="graphview-found"]')))
    assert abs(rx - (stage["x"] + stage["width"] / 2)) < 4
    assert abs(ry - (stage["y"] + stage["height"] / 2)) < 4
    # the minimap's rectangle shrank to where the view is
    small = _box(page.locator('[data-testid="graphview-minimap-viewport"]'))
    assert small["width"] < vp["width"] / 4
    screenshot(root, "graphview-10000-search")

    # a click on the minimap moves the view there
    mm = _box(minimap)
    page.mouse.click(mm["x"] + 8, mm["y"] + mm["height"] / 2)
    page.wait_for_timeout(100)
    moved = _box(page.locator('[data-testid="graphview-minimap-viewport"]'))
    assert moved["x"] < small["x"] - 20
    assert page.locator('[data-testid="graphview-found"]').is_hidden()  # n4242 is off screen

    page.locator('[data-testid="graphview-details-close"]').click()
    page.locator('[data-testid="graphview-home"]').click()  # and home
    wait_until(
        lambda: abs(float(root.get_attribute("data-scale") or 0) - fitted_scale) < 1e-4,
        what="home restores the first fit",
    )


def _chain(n: int) -> dict[str, Any]:
    names = [f"n{i}" for i in range(n)]
    return {
        "name": "chain",
        "nodes": [{"name": x} for x in names],
        "edges": [{"source": "__start__", "target": names[0]}]
        + [{"source": a, "target": b} for a, b in itertools.pairwise(names)]
        + [{"source": names[-1], "target": "__end__"}],
    }


def test_a_5000_node_chain_is_one_group_that_expands_on_click(
    show: Any, page_session: Any, screenshot: Any
) -> None:
    view = GraphView(_chain(5000))
    root = show(view)
    page = page_session
    group = page.locator('[data-testid="group-chain:n0"]')
    assert group.count() == 1
    assert root.get_attribute("data-drawn-count") == "1"
    assert "chain of 5,000" in (group.text_content() or "")
    assert _box(group.locator("rect").last)["height"] >= 30  # drawn big enough to read
    assert _height(root) < 220  # three things to show: a short view
    screenshot(root, "graphview-chain-collapsed")
    group.click()
    wait_until(lambda: view.expanded == ["chain:n0"], what="expanded in Python")
    page.locator('[data-testid="graphview"][data-drawn-count="5000"]').wait_for()
    assert root.get_attribute("data-renderer") == "canvas"
    assert float(root.get_attribute("data-scale") or 0) >= 1  # the first nodes, readable
    screenshot(root, "graphview-chain-expanded")
    page.locator('[data-testid="graphview-collapse-all"]').click()
    wait_until(lambda: view.expanded == [], what="collapsed again in Python")
    page.locator('[data-testid="graphview"][data-drawn-count="1"]').wait_for()
    # searching a node inside a collapsed group opens it
    view.find("n4000")
    page.locator('[data-testid="graphview"][data-found="n4000"]').wait_for()
    wait_until(lambda: view.expanded == ["chain:n0"], what="the search opened the group")
    assert view.selected == "n4000"


def test_repeated_fan_out_is_one_group(show: Any, page_session: Any, screenshot: Any) -> None:
    workers = [f"w{i}" for i in range(40)]
    graph = {
        "name": "map",
        "nodes": [{"name": x} for x in ("split", *workers, "merge")],
        "edges": [{"source": "__start__", "target": "split"}]
        + [{"source": "split", "target": w} for w in workers]
        + [{"source": w, "target": "merge"} for w in workers]
        + [{"source": "merge", "target": "__end__"}],
    }
    view = GraphView(graph, collapse="on")
    root = show(view)
    page = page_session
    group = page.locator('[data-testid="group-fan:w0"]')
    assert "40 in parallel" in (group.text_content() or "")
    assert root.get_attribute("data-drawn-count") == "3"
    view.status = {"w3": "running", **dict.fromkeys(workers[:3], "done")}
    page.locator('[data-testid="group-fan:w0"][data-status="running"]').wait_for()
    screenshot(root, "graphview-fan-collapsed")
    group.click()
    page.locator('[data-testid="graphview"][data-drawn-count="42"]').wait_for()
    assert node(page, "w3").get_attribute("data-status") == "running"
    view.selected = "w7"
    page.locator('[data-testid="graphview-details"][data-node="w7"]').wait_for()
    page.locator('[data-testid="graphview-details-collapse"]').click()  # from inside the group
    page.locator('[data-testid="graphview"][data-drawn-count="3"]').wait_for()
    wait_until(lambda: view.expanded == [], what="collapsed in Python")


def test_home_restores_the_fit_after_a_deep_zoom_near_the_edge(
    show: Any, page_session: Any
) -> None:
    view = GraphView(GRAPH)
    root = show(view)
    page = page_session
    vp = page.locator(".agn-viewport")
    fitted = vp.get_attribute("transform")
    stage = _box(page.locator('[data-testid="graphview-stage"]'))
    page.mouse.move(stage["x"] + 3, stage["y"] + 3)  # the very corner
    for _ in range(40):
        page.mouse.wheel(0, -400)
    page.wait_for_timeout(100)
    assert float(root.get_attribute("data-scale") or 0) == 4  # as deep as it goes
    for _ in range(6):  # drag the graph away, far
        page.mouse.move(stage["x"] + 10, stage["y"] + 10)
        page.mouse.down()
        page.mouse.move(
            stage["x"] + stage["width"] - 10, stage["y"] + stage["height"] - 10, steps=4
        )
        page.mouse.up()

    def on_screen() -> bool:
        boxes = [_box(node(page, n)) for n in [*NODES, "__start__", "__end__"]]
        return any(_overlap(b, stage) for b in boxes) or page.locator(".agn-edge").count() > 0

    assert on_screen()
    # part of the graph is always kept in the view: its box still meets the stage
    graph_box = page.evaluate(
        "() => { const b = document.querySelector('.agn-viewport').getBoundingClientRect();"
        " return {x: b.x, y: b.y, width: b.width, height: b.height}; }"
    )
    assert _overlap(graph_box, stage), "the graph was panned out of sight"
    page.locator('[data-testid="graphview-minimap"]').wait_for()  # and the minimap shows where
    page.locator('[data-testid="graphview-home"]').click()
    assert vp.get_attribute("transform") == fitted
    page.keyboard.press("+")  # the keyboard way: focus is in the view
    page.wait_for_timeout(50)
    page.locator('[data-testid="graphview-stage"]').focus()
    page.keyboard.press("Home")
    wait_until(lambda: vp.get_attribute("transform") == fitted, what="Home key restores the fit")


def test_fit_selection_zooms_to_the_node_and_its_neighbours(show: Any, page_session: Any) -> None:
    view = GraphView(synthetic_graph(400, seed=4), collapse="off")
    root = show(view)
    page = page_session
    fit_scale = float(root.get_attribute("data-scale") or 0)
    view.selected = "n200"
    page.locator('[data-testid="graphview-details"][data-node="n200"]').wait_for()
    page.locator('[data-testid="graphview-fit-selection"]').click()
    scale = float(root.get_attribute("data-scale") or 0)
    assert scale > fit_scale * 2
    stage = _box(page.locator('[data-testid="graphview-stage"]'))
    n = _box(node(page, "n200"))
    assert (
        _overlap(n, stage)
        and n["x"] >= stage["x"]
        and n["x"] + n["width"] <= stage["x"] + stage["width"]
    )


def test_a_models_answer_streams_into_the_details_panel(
    show: Any, page_session: Any, screenshot: Any
) -> None:
    pytest.importorskip("openai")
    from agentgraph_nb import END, START, StateGraph
    from agentgraph_nb.llm import OpenAIChat
    from agentgraph_nb.testing import ModelServer

    words = " ".join(f"w{i}" for i in range(30))
    with ModelServer(token_delay=0.05) as server:
        model = OpenAIChat("test-model", base_url=server.base_url)

        def agent(s: dict[str, Any]) -> dict[str, Any]:
            return {"answer": model.invoke(s["q"])["content"]}

        app = (
            StateGraph(dict, name="agent")
            .add_node("agent", agent)
            .add_edge(START, "agent")
            .add_edge("agent", END)
            .compile()
        )
        view = GraphView.from_app(app)
        view.attach(app)
        show(view)
        node(page_session, "agent").click()
        wait_until(lambda: view.selected == "agent", what="agent selected")
        worker = threading.Thread(target=app.invoke, args=({"q": words},))
        worker.start()
        try:
            reply = page_session.locator('[data-testid="graphview-details-reply"] pre')
            reply.wait_for(timeout=10_000)
            # part of the answer is on screen while the node still runs
            partial = reply.inner_text()
            assert partial and ("You said: " + words).startswith(partial)
            assert node(page_session, "agent").get_attribute("data-status") == "running"
            assert len(partial) < len("You said: " + words)
            screenshot(page_session, "graphview_streaming_reply")
        finally:
            worker.join(20)
        page_session.locator('[data-testid="node-agent"][data-status="done"]').wait_for(
            timeout=10_000
        )
        wait_until(
            lambda: reply.inner_text() == "You said: " + words, what="the whole answer shown"
        )
        assert "test-model" in page_session.locator(
            '[data-testid="graphview-details-model"] pre'
        ).inner_text()


def test_a_cache_hit_is_drawn_cached_with_its_badge(show: Any, page_session: Any) -> None:
    from agentgraph_nb import END, START, CachePolicy, StateGraph

    calls: list[str] = []

    def lookup(s: _State) -> dict[str, Any]:
        calls.append(s["q"])
        return {"notes": ["looked up"]}

    g = StateGraph(_State, name="cached")
    g.add_node("lookup", lookup, cache=CachePolicy())
    g.add_edge(START, "lookup")
    g.add_edge("lookup", END)
    app = g.compile()
    view = GraphView.from_app(app)
    unsubscribe = view.attach(app)
    show(view)
    app.invoke({"q": "x"})
    page_session.locator('[data-testid="node-lookup"][data-status="done"]').wait_for(timeout=10_000)
    app.invoke({"q": "x"})
    page_session.locator('[data-testid="node-lookup"][data-status="cached"]').wait_for(timeout=10_000)
    rect = node(page_session, "lookup").locator("rect").first
    assert rect.evaluate("el => getComputedStyle(el).fill") == "rgb(224, 242, 241)"  # #e0f2f1
    assert "cached" in page_session.locator(".agn-chip").all_text_contents()  # the legend names it
    node(page_session, "lookup").click()
    badge = page_session.locator('[data-testid="graphview-details-status"]')
    badge.wait_for()
    assert badge.inner_text() == "cached"
    assert "skipped" in page_session.locator('[data-testid="graphview-details-cached"]').inner_text()
    assert calls == ["x"]
    unsubscribe()
