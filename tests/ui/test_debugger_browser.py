"""Debugger in a real browser: Step and Continue change the inspector, a click on a node toggles a
breakpoint, an edited value forks a new branch into the history, an interrupt is answered from
its generated form. Clicks go through the page; assertions look at the page and the Python side."""

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
    wait_text(page, ".agentgraph-status", "Finished.")
    assert "step 3 \u00b7 main" in inspector_text(page)
    page.locator('[data-testid="node-write"][data-status="done"]').wait_for()
    assert page.locator("button.agentgraph-step").is_disabled()
    assert page.locator(".agentgraph-history .widget-readout").inner_text() == "step 3 \u00b7 main"

    page.locator("button.agentgraph-back").click()
    wait_text(page, ".agentgraph-history .widget-readout", "step 2 \u00b7 main")
    wait_text(page, ".agentgraph-inspector", "next: write")
    assert dbg.state.step == 2


def test_clicking_a_node_toggles_a_breakpoint(show: Any) -> None:
    dbg = Debugger(graph(), {"q": "x"})
    page = show(dbg)
    page.locator("button.agentgraph-breakpoint-mode").click()
    wait_until(lambda: dbg.breakpoint_mode.value, what="breakpoint mode on in Python")
    node(page, "write").click()
    wait_until(lambda: dbg.session.breakpoints == ["write"], what="breakpoint set in Python")
    page.locator('[data-testid="node-write"][data-breakpoint="true"]').wait_for()
    page.locator('[data-testid="bp-before-write"]').wait_for()
    wait_text(page, ".agentgraph-breakpoints", "before write")
    # the view keeps the node selected (its panel open): the Debugger no longer resets it
    page.locator('[data-testid="graphview-details"][data-node="write"]').wait_for()
    assert dbg.graphview.selected == "write"
    node(page, "write").click()  # the same, still selected node again: removed
    page.locator('[data-testid="node-write"][data-breakpoint="false"]').wait_for()
    page.locator('[data-testid="bp-before-write"]').wait_for(state="detached")
    wait_until(lambda: dbg.session.breakpoints == [], what="breakpoint cleared in Python")
    node(page, "write").click()  # and a third time: set again
    page.locator('[data-testid="node-write"][data-breakpoint="true"]').wait_for()
    wait_until(lambda: dbg.session.breakpoints == ["write"], what="breakpoint set again")
    assert dbg.graphview.selected == "write"

    page.locator("button.agentgraph-continue").click()
    wait_text(page, ".agentgraph-status", "Paused before write (breakpoint).")
    assert "next: write" in inspector_text(page)
    assert node(page, "write").get_attribute("data-status") == "pending"

    # breakpoint mode off: a click picks the node for "Run to here"
    page.locator("button.agentgraph-breakpoint-mode").click()
    page.locator("button.agentgraph-back").click()
    wait_text(page, ".agentgraph-inspector", "next: a, b")
    page.locator("button.agentgraph-breakpoint-mode").click()  # on again
    node(page, "write").click()  # and off the breakpoint
    wait_until(lambda: dbg.session.breakpoints == [], what="breakpoint cleared")
    page.locator("button.agentgraph-breakpoint-mode").click()
    wait_until(lambda: not dbg.breakpoint_mode.value, what="breakpoint mode off")
    node(page, "write").click()
    wait_until(lambda: dbg.run_to_target.value == "write", what="run-to target picked")
    page.locator("button.agentgraph-run-to:not([disabled])").click()
    wait_text(page, ".agentgraph-status", "Paused before write")


def test_after_breakpoint_marker_and_the_next_nodes_outline(show: Any) -> None:
    dbg = Debugger(graph(), {"q": "x"})
    page = show(dbg)
    page.locator('[data-testid="node-plan"][data-current="true"]').wait_for()  # next: plan
    page.locator("button.agentgraph-breakpoint-mode").click()
    page.locator(".agentgraph-breakpoint-when button", has_text="after").click()
    wait_until(lambda: dbg.breakpoint_when.value == "after", what="'after' picked in Python")
    node(page, "plan").click()
    wait_until(lambda: dbg.session.breakpoints == ["plan:after"], what="after-breakpoint set")
    page.locator('[data-testid="bp-after-plan"]').wait_for()
    assert page.locator('[data-testid="bp-before-plan"]').count() == 0
    assert node(page, "plan").get_attribute("data-breakpoint-after") == "true"
    wait_text(page, ".agentgraph-breakpoints", "after plan")
    # the details panel shows it too
    page.locator('[data-testid="graphview-details"][data-node="plan"]').wait_for()
    assert page.locator('[data-testid="graphview-breakpoint-after-toggle"]').is_checked()

    page.locator("button.agentgraph-continue").click()
    wait_text(page, ".agentgraph-status", "Paused after plan (breakpoint).")
    page.locator('[data-testid="node-a"][data-current="true"]').wait_for()
    page.locator('[data-testid="node-plan"][data-current="false"]').wait_for()
    assert node(page, "b").get_attribute("data-current") == "true"
    assert node(page, "plan").get_attribute("data-status") == "done"

    node(page, "plan").click()  # still selected: a click toggles it off again
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
    wait_text(page, ".agentgraph-status", "Finished.")
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
    wait_text(page, ".agentgraph-inspector", "forked <value>")
    assert page.locator(".agentgraph-error").inner_text().strip() == ""
    assert dbg.state.values["q"] == "forked <value>" and len(dbg.session.branches()) == 2

    page.locator("button.agentgraph-continue").click()
    wait_text(page, ".agentgraph-status", "Finished.")
    page.locator("button.agentgraph-compare").click()
    wait_text(page, ".agentgraph-compare-result", "differ")
    table = page.locator(".agentgraph-compare-result").inner_text()
    assert "'x'" in table and "forked <value>" in table


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
    page.locator("button.agentgraph-resume").click()
    wait_text(page, ".agentgraph-status", "Finished.")
    assert dbg.state.values["answer"] == {"approved": True, "reason": "fine"}
    assert page.locator(".agentgraph-interrupt").is_hidden()
