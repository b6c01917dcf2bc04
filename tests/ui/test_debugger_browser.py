"""Debugger in a real browser: Step and Continue (buttons and keys) change the inspector, a click
on a node selects it and picks it for Run to here, the dots on a node's corners and B / Shift+B
toggle breakpoints, an edited value forks a new branch into the history, the comparison shows up
beside the graph, an interrupt is answered from its generated form, the status line speaks the
user's words. Clicks go through the page; assertions look at the page and the Python side.
Screenshots land in tests/ui/screenshots/ for a person to look at."""

from __future__ import annotations

import operator
import threading
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import START, StateGraph, interrupt
from agentgraph_nb.ui.debugger import Debugger

pytestmark = pytest.mark.browser


class S(TypedDict, total=False):
    q: str
    log: Annotated[list[str], operator.add]
    answer: Any


def graph(**nodes: Any) -> Any:
    """plan -> (a, b in parallel) -> write; ``nodes`` replace the default node functions."""
    g = StateGraph(S, name="dbg")
    for n in ("plan", "a", "b", "write"):
        g.add_node(n, nodes.get(n) or (lambda s, n=n: {"log": [n]}))
    g.add_edge(START, "plan").add_edge("plan", "a").add_edge("plan", "b")
    g.add_edge(["a", "b"], "write")
    return g.compile()


def wait_until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def show(solara_test: Any, page_session: Any) -> Iterator[Callable[[Debugger], Any]]:
    """Display a Debugger in the test page and wait until its graph has drawn; page errors fail
    the test."""
    from IPython.display import display

    errors: list[str] = []

    def on_error(exc: Any) -> None:
        errors.append(str(exc))

    page_session.on("pageerror", on_error)

    def _show(dbg: Debugger) -> Any:
        display(dbg)
        page_session.locator('[data-testid="graphview"][data-ready="true"]').wait_for(
            timeout=30_000
        )
        page_session.locator("button.agentgraph-step").wait_for()
        return page_session

    yield _show
    page_session.remove_listener("pageerror", on_error)
    assert not errors, f"errors in the page: {errors}"


def inspector_text(page: Any) -> str:
    return page.locator(".agentgraph-inspector").inner_text()


def wait_text(page: Any, selector: str, needle: str, timeout: float = 10_000) -> None:
    page.locator(selector, has_text=needle).first.wait_for(timeout=timeout)


def node(page: Any, name: str) -> Any:
    return page.locator(f'[data-testid="node-{name}"]')


def test_step_and_continue_change_the_inspector(show: Any) -> None:
    dbg = Debugger(graph(), {"q": "x"}, thread_id="t")
    page = show(dbg)
    assert "step 0 \u00b7 main" in inspector_text(page)
    assert node(page, "plan").get_attribute("data-status") == "pending"

    page.locator("button.agentgraph-step").click()
    wait_text(page, ".agentgraph-inspector", "step 1 \u00b7 main")
    assert "by plan" in inspector_text(page)
    page.locator('[data-testid="node-plan"][data-status="done"]').wait_for()
    assert node(page, "a").get_attribute("data-status") == "pending"

    page.locator("button.agentgraph-step").click()
    wait_text(page, ".agentgraph-writes", "2 nodes ran in parallel")
    assert "by a, b" in inspector_text(page)

    page.locator("button.agentgraph-continue").click()
    wait_text(page, ".agentgraph-status", "Finished in 3 steps")
    assert "step 3 \u00b7 main" in inspector_text(page)
    page.locator('[data-testid="node-write"][data-status="done"]').wait_for()
    assert page.locator("button.agentgraph-step").is_disabled()
    assert page.locator(".agentgraph-history .widget-readout").inner_text() == "step 3 \u00b7 main"

    page.locator("button.agentgraph-back").click()
    wait_text(page, ".agentgraph-history .widget-readout", "step 2 \u00b7 main")
    wait_text(page, ".agentgraph-inspector", "next: write")
    assert dbg.state.step == 2


def test_keys_n_c_p_step_continue_and_go_back(show: Any) -> None:
    dbg = Debugger(graph(), {"q": "x"}, thread_id="keys")
    page = show(dbg)
    assert "(N)" in (page.locator("button.agentgraph-step").get_attribute("title") or "")
    page.locator('[data-testid="graphview-stage"]').click(position={"x": 5, "y": 5})  # focus
    page.keyboard.press("n")
    wait_until(lambda: dbg.state.step == 1, what="N steps")
    wait_text(page, ".agentgraph-status", "Paused at step 1")
    page.keyboard.press("n")
    wait_until(lambda: dbg.state.step == 2, what="N steps again")
    page.keyboard.press("p")
    wait_until(lambda: dbg.state.step == 1, what="P goes back")
    wait_text(page, ".agentgraph-history .widget-readout", "step 1 \u00b7 main")
    page.locator("button.agentgraph-back").focus()  # keys work anywhere in the debugger
    page.keyboard.press("c")
    wait_until(lambda: dbg.done, what="C continues to the end")
    wait_text(page, ".agentgraph-status", "Finished in 3 steps")
    # typing in the editor is typing, not a shortcut
    page.get_by_role("tab", name="Edit & fork").click()
    box = page.locator(".agentgraph-fork-value textarea")
    box.fill("")
    box.type("pcn")
    assert box.input_value() == "pcn" and dbg.done and dbg.state.step == 3


def test_a_click_selects_and_the_gutter_dots_and_b_toggle_breakpoints(
    show: Any, screenshot: Any
) -> None:
    dbg = Debugger(graph(), {"q": "x"})
    page = show(dbg)
    node(page, "write").click()  # a plain click: select, pick for "Run to here", no breakpoint
    wait_until(lambda: dbg.run_to_target.value == "write", what="run-to target picked")
    assert dbg.graphview.selected == "write" and dbg.session.breakpoints == []
    page.locator('[data-testid="graphview-details"][data-node="write"]').wait_for()
    node(page, "write").click()  # again: still no breakpoint
    page.wait_for_timeout(200)
    assert dbg.session.breakpoints == []
    assert node(page, "write").get_attribute("data-breakpoint") != "true"

    # the gutter: a dot on the top left corner of the node under the pointer
    node(page, "plan").hover()
    before = page.locator('[data-testid="bp-toggle-before"]')
    before.wait_for()
    assert before.get_attribute("aria-label") == "Add breakpoint before plan"
    plan = node(page, "plan").locator("rect").bounding_box()
    dot = before.bounding_box()
    assert plan is not None and dot is not None
    assert abs(dot["x"] + dot["width"] / 2 - plan["x"]) < 12  # on the node's left edge
    screenshot(page.locator(".agentgraph-debugger"), "debugger-gutter-hover")
    before.click()
    wait_until(lambda: dbg.session.breakpoints == ["plan"], what="breakpoint set by the dot")
    page.locator('[data-testid="bp-before-plan"]').wait_for()
    wait_text(page, ".agentgraph-breakpoints", "before plan")
    assert before.get_attribute("aria-pressed") == "true"
    before.click()
    wait_until(lambda: dbg.session.breakpoints == [], what="breakpoint removed by the dot")

    # B on the focused (or selected) node: before; Shift+B: after
    node(page, "write").focus()
    page.keyboard.press("b")
    wait_until(lambda: dbg.session.breakpoints == ["write"], what="B sets it")
    page.keyboard.press("Shift+B")
    wait_until(lambda: dbg.session.breakpoints == ["write", "write:after"], what="Shift+B: after")
    page.locator('[data-testid="bp-after-write"]').wait_for()
    page.keyboard.press("Shift+B")
    wait_until(lambda: dbg.session.breakpoints == ["write"], what="Shift+B again removes it")

    page.locator("button.agentgraph-continue").click()
    wait_text(page, ".agentgraph-status", "Paused before write (breakpoint) \u2014 step 2")
    assert page.locator('[data-testid="debugger-status"]').get_attribute("data-state") == "paused"
    assert "next: write" in inspector_text(page)
    assert node(page, "write").get_attribute("data-status") == "pending"
    page.locator("button.agentgraph-back").click()
    wait_text(page, ".agentgraph-inspector", "next: a, b")
    node(page, "write").focus()
    page.keyboard.press("b")  # and off the breakpoint
    wait_until(lambda: dbg.session.breakpoints == [], what="breakpoint cleared")
    page.locator("button.agentgraph-run-to:not([disabled])").click()
    wait_text(page, ".agentgraph-status", "Paused before write")


def test_after_breakpoint_marker_and_the_next_nodes_outline(show: Any) -> None:
    dbg = Debugger(graph(), {"q": "x"})
    page = show(dbg)
    page.locator('[data-testid="node-plan"][data-current="true"]').wait_for()  # next: plan
    node(page, "plan").hover()
    page.locator('[data-testid="bp-toggle-after"]').click()
    wait_until(lambda: dbg.session.breakpoints == ["plan:after"], what="after-breakpoint set")
    page.locator('[data-testid="bp-after-plan"]').wait_for()
    assert page.locator('[data-testid="bp-before-plan"]').count() == 0
    assert node(page, "plan").get_attribute("data-breakpoint-after") == "true"
    wait_text(page, ".agentgraph-breakpoints", "after plan")
    # the details panel shows it too
    node(page, "plan").click()
    page.locator('[data-testid="graphview-details"][data-node="plan"]').wait_for()
    assert page.locator('[data-testid="graphview-breakpoint-after-toggle"]').is_checked()

    page.locator("button.agentgraph-continue").click()
    wait_text(page, ".agentgraph-status", "Paused after plan (breakpoint) \u2014 step 1")
    page.locator('[data-testid="node-a"][data-current="true"]').wait_for()
    page.locator('[data-testid="node-plan"][data-current="false"]').wait_for()
    assert node(page, "b").get_attribute("data-current") == "true"
    assert node(page, "plan").get_attribute("data-status") == "done"

    page.locator('[data-testid="graphview-breakpoint-after-toggle"]').uncheck()
    wait_until(lambda: dbg.session.breakpoints == [], what="after-breakpoint cleared")
    page.locator('[data-testid="bp-after-plan"]').wait_for(state="detached")


def test_continue_keeps_the_done_statuses_of_earlier_steps(show: Any) -> None:
    release = threading.Event()

    def write(s: S) -> dict[str, Any]:
        release.wait(20)
        return {"log": ["write"]}

    dbg = Debugger(graph(write=write), {"q": "x"})
    page = show(dbg)
    page.locator("button.agentgraph-step").click()
    page.locator('[data-testid="node-plan"][data-status="done"]').wait_for()
    # every status "plan" shows from here on, recorded in the page
    page.evaluate("""() => {
        const el = document.querySelector('[data-testid="node-plan"]');
        window.agnPlanStatuses = [];
        new MutationObserver(() => window.agnPlanStatuses.push(el.getAttribute("data-status")))
            .observe(el, {attributes: true, attributeFilter: ["data-status"]});
    }""")
    page.locator("button.agentgraph-continue").click()  # a new engine run; write is held
    try:
        page.locator('[data-testid="node-write"][data-status="running"]').wait_for()
        for name in ("plan", "a", "b"):  # plan ran in an earlier run: still done
            assert node(page, name).get_attribute("data-status") == "done", name
    finally:
        release.set()
    wait_text(page, ".agentgraph-status", "Finished in 3 steps")
    page.locator('[data-testid="node-write"][data-status="done"]').wait_for()
    assert set(page.evaluate("window.agnPlanStatuses")) <= {"done"}


def test_fork_from_an_edited_value_appears_in_the_history(show: Any) -> None:
    dbg = Debugger(graph(), {"q": "x"})
    page = show(dbg)
    page.locator("button.agentgraph-step").click()
    wait_text(page, ".agentgraph-history .widget-readout", "step 1 \u00b7 main")
    page.locator("button.agentgraph-step").click()
    wait_text(page, ".agentgraph-history .widget-readout", "step 2 \u00b7 main")
    page.locator("button.agentgraph-back").click()  # to step 1: an edit here is a new branch
    wait_text(page, ".agentgraph-history .widget-readout", "step 1 \u00b7 main")
    page.get_by_role("tab", name="Edit & fork").click()
    page.locator(".agentgraph-fork-key select").select_option(label="q")
    box = page.locator(".agentgraph-fork-value textarea")
    wait_until(lambda: box.input_value() == '"x"', what="the editor shows q's JSON")

    box.fill("{not json")
    page.locator("button.agentgraph-fork").click()
    wait_text(page, ".agentgraph-error", "not valid JSON")
    assert len(dbg.history) == 3

    box.fill('"forked <value>"')
    page.locator("button.agentgraph-fork").click()
    wait_text(page, ".agentgraph-history .widget-readout", "step 2 \u00b7 branch 2 \u00b7 edit")
    assert page.locator(".agentgraph-error").inner_text().strip() == ""
    assert dbg.state.values["q"] == "forked <value>" and len(dbg.session.branches()) == 2
    page.get_by_role("tab", name="State").click()
    wait_text(page, ".agentgraph-inspector", "forked <value>")

    page.locator("button.agentgraph-continue").click()
    wait_text(page, ".agentgraph-status", "Finished in 4 steps")  # the edit is a checkpoint too
    page.get_by_role("tab", name="Compare").click()
    page.locator("button.agentgraph-compare").click()
    wait_text(page, ".agentgraph-compare-result", "differ")
    text = page.locator(".agentgraph-compare-result").inner_text()
    assert "'x'" in text and "forked <value>" in text


def test_answer_an_interrupt_from_the_generated_form(show: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"approved": {"type": "boolean"}, "reason": {"type": "string"}},
    }

    def review(s: S) -> dict[str, Any]:
        return {"answer": interrupt({"question": "Publish?", "schema": schema})}

    g = StateGraph(S, name="hitl").add_node("review", review).add_edge(START, "review")
    dbg = Debugger(g.compile(), {"q": "x"})
    page = show(dbg)
    page.locator("button.agentgraph-continue").click()
    wait_text(page, ".agentgraph-interrupt", "Publish?")
    page.locator(".agentgraph-answer-approved input").check()
    page.locator(".agentgraph-answer-reason input").fill("fine")
    wait_text(page, ".agentgraph-status", "Waiting for your answer: Publish?")
    state = page.locator('[data-testid="debugger-status"]').get_attribute("data-state")
    assert state == "waiting"
    page.locator("button.agentgraph-resume").click()
    wait_text(page, ".agentgraph-status", "Finished in 1 step")
    assert dbg.state.values["answer"] == {"approved": True, "reason": "fine"}
    assert page.locator(".agentgraph-interrupt").is_hidden()


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


def test_the_debugger_reads_well(show: Any, screenshot: Any) -> None:
    """Status in words, controls not cut, the details beside the graph (not over it), the
    comparison beside the graph (not below the fold)."""
    dbg = Debugger(graph(), {"q": "x"}, breakpoints=["write"], thread_id="look")
    page = show(dbg)
    wait_text(page, ".agentgraph-status", "Ready: plan runs first")
    for name in ("step", "continue", "back", "stop", "run-to"):
        b = page.locator(f"button.agentgraph-{name}")
        fits = b.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
        assert fits, f"{name} button text is cut"
    page.locator("button.agentgraph-continue").click()
    wait_text(page, ".agentgraph-status", "Paused before write (breakpoint) \u2014 step 2")
    status = page.locator('[data-testid="debugger-status"]').inner_text()
    assert "interrupt" not in status and "Debugger(" not in status
    assert page.locator('[data-testid="graphview-run"]').inner_text().startswith("thread look")

    node(page, "a").click()
    panel = page.locator('[data-testid="graphview-details"][data-node="a"]')
    panel.wait_for()
    page.wait_for_timeout(300)  # the graph re-fits beside the panel
    stage = _box(page.locator('[data-testid="graphview-stage"]'))
    details = _box(panel)
    assert details["width"] <= 0.45 * (stage["width"] + details["width"])
    for name in ("plan", "a", "b", "write"):
        assert not _overlap(details, _box(node(page, name))), f"details cover {name}"
    screenshot(page.locator(".agentgraph-debugger"), "debugger-paused-details")

    page.get_by_role("tab", name="Compare").click()
    page.locator("button.agentgraph-compare").click()
    result = page.locator(".agentgraph-compare-result table").first
    result.wait_for()
    box = _box(result)
    viewport = page.viewport_size
    assert viewport is not None
    assert box["y"] + min(box["height"], 120) <= viewport["height"], "compare table below the fold"
    graph_box = _box(page.locator('[data-testid="graphview"]'))
    assert box["x"] >= graph_box["x"] + graph_box["width"] - 1  # beside the graph
    screenshot(page, "debugger-compare")


def test_stepping_through_a_model_call_streams_its_answer(show: Any) -> None:
    pytest.importorskip("openai")
    from agentgraph_nb.llm import OpenAIChat
    from agentgraph_nb.testing import ModelServer

    words = " ".join(f"w{i}" for i in range(30))
    with ModelServer(token_delay=0.05) as server:
        model = OpenAIChat("test-model", base_url=server.base_url)

        def plan(s: S) -> dict[str, Any]:
            return {"answer": model.invoke(s["q"])["content"]}

        dbg = Debugger(graph(plan=plan), {"q": words}, thread_id="t")
        page = show(dbg)
        page.locator("button.agentgraph-step").click()
        reply = page.locator('[data-testid="graphview-details-reply"] pre')
        reply.wait_for(timeout=10_000)  # the panel of the answering node opened by itself
        partial = reply.inner_text()
        assert partial and ("You said: " + words).startswith(partial)
        assert len(partial) < len("You said: " + words)
        assert page.locator('[data-testid="graphview-details-name"]').inner_text() == "plan"
        wait_text(page, ".agentgraph-inspector", "step 1 \u00b7 main")
        wait_until(lambda: reply.inner_text() == "You said: " + words, what="the whole answer")
        assert dbg.state.values["answer"] == "You said: " + words
