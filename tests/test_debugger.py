"""Debugger widget, Python side: every control driven through its Python twin or a simulated
click (``button.click()``, setting the GraphView's ``selected``), asserting on the widgets'
values: inspector HTML, GraphView statuses, history slider, editor, compare table, answer form."""

from __future__ import annotations

import asyncio
import operator
import re
import textwrap
import threading
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

import ipywidgets as W
import pytest

from agentgraph_nb import START, InvalidInputError, StateGraph, interrupt, node_failure
from agentgraph_nb.ui import inspector
from agentgraph_nb.ui.debugger import Debugger


class S(TypedDict, total=False):
    q: str
    log: Annotated[list[str], operator.add]
    answer: Any


def graph(**nodes: Any) -> Any:
    """plan -> (a, b in parallel) -> write; ``nodes`` replace the default node functions."""
    g = StateGraph(S, name="dbg")
    for n in ("plan", "a", "b", "write"):
        g.add_node(n, nodes.get(n) or (lambda s, n=n: {"log": [n]}))
    g.add_edge(START, "plan").add_edge("plan", "a").add_edge("plan", "b").add_edge(
        ["a", "b"], "write"
    )
    return g.compile()


def text(widget: W.HTML) -> str:
    """An HTML widget's visible text (styles and tags dropped, entities unescaped)."""
    import html

    body = re.sub(r"<style>.*?</style>", "", widget.value, flags=re.S)
    flat = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))
    return flat.replace(" :", ":").strip()


def key_row(dbg: Debugger, key: str) -> str:
    """The inspector's entry for one key (up to the next key's), as HTML."""
    m = re.search(
        rf'<li class="agn-key agn-\w+" data-key="{key}".*?(?=<li class="agn-key|<li class="agn-t">not set|</ul></div>$)',
        dbg.inspector_html.value,
        re.S,
    )
    assert m, f"no inspector row for {key!r}"
    return m.group(0)


def test_stepping_through_parallel_supersteps_updates_inspector_and_statuses() -> None:
    dbg = Debugger(graph(), {"q": "x"}, thread_id="t")
    view = dbg.graphview
    assert view.status == {"plan": "pending", "a": "idle", "b": "idle", "write": "idle"}
    assert "step 0" in text(dbg.inspector_html) and "next: plan" in text(dbg.inspector_html)
    assert dbg.back_button.disabled and dbg.stop_button.disabled and not dbg.step_button.disabled

    dbg.step_button.click()
    assert view.status == {"plan": "done", "a": "pending", "b": "pending", "write": "idle"}
    assert 'data-status="changed"' in key_row(dbg, "log") and "by plan" in key_row(dbg, "log")
    assert "Step 1: plan ran" in text(dbg.writes_html)

    snap = dbg.step()  # the Python twin: a and b run in the same superstep
    assert snap.writes == {"a": {"log": ["a"]}, "b": {"log": ["b"]}}
    assert view.status == {"plan": "done", "a": "done", "b": "done", "write": "pending"}
    row = key_row(dbg, "log")
    assert "changed \u00b7 by a, b \u00b7 reducer add" in row
    assert "&#x27;plan&#x27;" in row and "&#x27;a&#x27;" in row and "&#x27;b&#x27;" in row
    assert 'data-status="same"' in key_row(dbg, "q")
    writes = text(dbg.writes_html)
    assert "Step 2: 2 nodes ran in parallel" in writes
    assert 'data-testid="inspector-write-a"' in dbg.writes_html.value
    assert 'data-testid="inspector-write-b"' in dbg.writes_html.value
    assert view.details["a"]["output"] == "{'log': ['a']}" and view.details["a"]["step"] == "2"

    assert dbg.diff().changed_keys == ["log"] and dbg.breakpoints == [] and not dbg.done
    dbg.cont_button.click()
    assert dbg.state.values["log"] == ["plan", "a", "b", "write"] and dbg.done
    assert set(view.status.values()) == {"done"}
    assert "Finished in 3 steps" in text(dbg.status_html)
    assert 'data-state="finished"' in dbg.status_html.value
    assert dbg.step_button.disabled and dbg.cont_button.disabled
    assert [label for label, _ in dbg.history_slider.options] == [
        f"step {i} \u00b7 main" for i in range(4)
    ]
    assert dbg.history_slider.value == dbg.state.checkpoint_id
    with pytest.raises(InvalidInputError, match="finished"):
        dbg.step()
    dbg.close()


def test_live_statuses_while_continue_runs() -> None:
    seen: dict[str, str] = {}
    dbg: Debugger

    def write(s: S) -> dict[str, Any]:
        seen.update(dbg.graphview._status_state)  # what the view will send next
        return {"log": ["write"]}

    dbg = Debugger(graph(write=write), {"q": "x"})
    other = Debugger(graph(), {"q": "y"})  # another thread of another app: must not leak in
    dbg.cont()
    assert seen["write"] == "running" and seen["a"] == seen["b"] == seen["plan"] == "done"
    assert dbg.app._listeners == []  # listening only while a run of ours goes on
    before = dict(dbg.graphview.status)
    dbg.app.invoke({"q": "other thread"}, "someone-else")
    assert dbg.graphview.status == before
    other.close()
    dbg.close()


def test_a_click_picks_the_node_and_breakpoints_toggle_from_the_view() -> None:
    dbg = Debugger(graph(), {"q": "x"}, breakpoints=["a:after"])
    view = dbg.graphview
    assert "after a" in text(dbg.breakpoints_html)
    assert view.breakpoints == ["a:after"]  # after-breakpoints are drawn too
    assert "Ready: plan runs first" in text(dbg.status_html)
    # a plain click selects the node and picks it for "Run to here"; breakpoints are unchanged
    view.click("write")  # what a click on the node in the browser does
    assert view.selected == "write" and dbg.run_to_target.value == "write"
    assert dbg.session.breakpoints == ["a:after"]
    view.click("write")  # the node already selected: picked again, still no breakpoint
    assert dbg.session.breakpoints == ["a:after"] and not dbg.run_to_button.disabled
    # shift-click toggles the breakpoint before the node
    view.click("b", shift=True)
    assert dbg.session.breakpoints == ["b", "a:after"] and view.breakpoints == ["b", "a:after"]
    assert "before b" in text(dbg.breakpoints_html)
    view.click("__start__")  # not a node of the graph: nothing to pick
    assert dbg.run_to_target.value == "write" and dbg.error is None
    # the gutter dots, B / Shift+B and the details panel's checkboxes edit the list in the view
    view.breakpoints = ["b", "plan:after", "write:after", "nope", "nope:after", "write:before"]
    assert dbg.session.before == {"b", "write"} and dbg.session.after == {"plan", "write"}
    assert view.breakpoints == ["b", "write", "plan:after", "write:after"]
    view.breakpoints = ["b", "a:after", "plan:after"]
    assert dbg.session.breakpoints == ["b", "a:after", "plan:after"]
    assert dbg.toggle_breakpoint("b") is False and view.breakpoints == ["a:after", "plan:after"]

    dbg.cont_button.click()
    assert dbg.state.next == ("a", "b") and dbg.state.values["log"] == ["plan"]
    assert "Paused after plan (breakpoint) \u2014 step 1" in text(dbg.status_html)
    assert 'data-state="paused"' in dbg.status_html.value
    dbg.toggle_breakpoint("plan", "after")
    dbg.toggle_breakpoint("a", "after")
    view.click("a")
    assert dbg.run_to_target.value == "a"
    view.click("write")
    assert dbg.run_to_target.value == "write" and not dbg.run_to_button.disabled
    dbg.run_to_button.click()
    assert dbg.state.next == ("write",) and view.status["write"] == "pending"
    assert "Paused before write" in text(dbg.status_html)
    with pytest.raises(InvalidInputError, match="Did you mean 'write'"):
        dbg.run_to("wirte")
    with pytest.raises(InvalidInputError, match="Did you mean 'plan'"):
        dbg.toggle_breakpoint("plam")
    dbg.close()


def test_keyboard_shortcuts_step_continue_and_back() -> None:
    dbg = Debugger(graph(), {"q": "x"}, thread_id="keys")
    view = dbg.graphview
    assert view.shortcuts == {"n": "step", "c": "continue", "p": "back"}
    assert "agentgraph-keys" in dbg._dom_classes  # the view's key handler covers the debugger

    def press(command: str) -> None:  # the message the browser sends for a bound key
        view._handle_custom_msg({"event": "command", "command": command}, [])

    press("step")
    assert dbg.state.step == 1
    press("back")
    assert dbg.state.step == 0
    press("continue")
    assert dbg.done and "Finished in 3 steps" in text(dbg.status_html)
    press("step")  # the Step button is disabled: nothing happens, nothing raises
    press("unbound")
    assert dbg.done and dbg.error is None
    assert view.caption == f"thread keys \u00b7 {dbg.label(dbg.state.checkpoint_id or '')}"
    dbg.close()


def test_continue_keeps_the_statuses_of_earlier_steps() -> None:
    seen: dict[str, str] = {}
    dbg: Debugger

    def a(s: S) -> dict[str, Any]:
        seen.update(dbg.graphview._status_state)  # what the view will send next
        return {"log": ["a"]}

    dbg = Debugger(graph(a=a), {"q": "x"})
    view = dbg.graphview
    assert view.reset_on_run_start is False
    assert view.current == ["plan"]  # next to run, outlined in the view
    dbg.step()
    assert view.status["plan"] == "done" and view.current == ["a", "b"]
    dbg.cont()  # a new run of the engine (run_start) from the checkpoint after plan
    assert seen["plan"] == "done"  # not reset to pending by run_start
    assert seen["a"] == "running"
    assert set(view.status.values()) == {"done"} and view.current == []
    dbg.back()
    assert view.current == ["write"] and view.status["write"] == "pending"
    dbg.close()


def test_back_and_the_history_slider() -> None:
    dbg = Debugger(graph(), {"q": "x"})
    dbg.cont()
    end = dbg.state.checkpoint_id
    dbg.back_button.click()
    assert dbg.state.step == 2 and dbg.history_slider.value == dbg.state.checkpoint_id
    assert dbg.graphview.status["write"] == "pending"
    assert "earlier checkpoint" in text(dbg.status_html)
    dbg.back()
    dbg.back()
    assert dbg.state.step == 0 and dbg.back_button.disabled
    dbg.back_button.click()  # a click at the first checkpoint shows the reason, no exception
    assert "already at the first checkpoint" in text(dbg.error_html)
    with pytest.raises(InvalidInputError, match="first checkpoint"):
        dbg.back()
    dbg.history_slider.value = end  # dragging the slider selects
    assert dbg.state.checkpoint_id == end and dbg.error is None and text(dbg.error_html) == ""
    # stepping from an earlier checkpoint starts a branch, labelled as such in the history
    dbg.select(dbg.history[-2].checkpoint_id or "")  # step 1
    dbg.step()
    labels = [label for label, _ in dbg.history_slider.options]
    assert (
        labels[-1] == "step 2 \u00b7 branch 2"
        and dbg.history_slider.label == "step 2 \u00b7 branch 2"
    )
    assert len(dbg.history) == 5
    dbg.close()


def test_fork_from_edited_json_valid_and_invalid() -> None:
    dbg = Debugger(graph(), {"q": "x"}, breakpoints=["write"])
    dbg.cont()
    dbg.back()
    dbg.edit_key.value = "q"
    assert dbg.edit_value.value == '"x"'
    n = len(dbg.history)

    dbg.edit_value.value = "{oops"
    dbg.fork_button.click()  # invalid JSON: a message in the widget, nothing forked
    assert "q: not valid JSON" in text(dbg.error_html) and "nothing was forked" in text(
        dbg.error_html
    )
    assert len(dbg.history) == n

    dbg.edit_value.value = '"what about y?"'
    dbg.fork_button.click()
    assert dbg.error is None and text(dbg.error_html) == ""
    assert dbg.state.values["q"] == "what about y?" and dbg.state.next == ("a", "b")
    assert len(dbg.history) == n + 1 and len(dbg.session.branches()) == 2
    assert dbg.history_slider.label == "step 2 \u00b7 branch 2 \u00b7 edit"
    assert "by edit" in key_row(dbg, "q")
    assert "Forked" in text(dbg.status_html)
    dbg.cont()  # the fork runs on; the original branch is untouched
    assert dbg.state.values["q"] == "what about y?" and dbg.state.next == ("write",)
    main_leaf = dbg.session.branches()[0][-1]
    assert dbg.session.select(main_leaf).values["q"] == "x"

    # a key with a reducer: the editor offers the value to merge, and says so
    dbg.edit_key.value = "log"
    assert (
        dbg.edit_value.value == "[]"
        and "reducer" in text(dbg.edit_hint)
        and "add" in text(dbg.edit_hint)
    )
    dbg.edit_value.value = '["human"]'
    dbg.fork_button.click()
    assert dbg.state.values["log"][-1] == "human"
    # a wrong key from Python raises; from the editor it is shown
    with pytest.raises(InvalidInputError):
        dbg.fork("q")  # type: ignore[arg-type]
    dbg.close()


def test_compare_renders_both_values_side_by_side() -> None:
    dbg = Debugger(graph(), {"q": "x"})
    dbg.cont()
    end = dbg.state.checkpoint_id
    dbg.back()
    dbg.back()
    dbg.fork({"q": "<b>y</b>"})
    dbg.cont()
    # after a fork the pickers default to the main leaf against the new branch's leaf
    assert dbg.compare_a.value == end and dbg.compare_b.value == dbg.state.checkpoint_id
    assert dbg.compare_b.label.endswith("leaf")
    dbg.compare_button.click()
    html = dbg.compare_html.value
    assert "<b>y</b>" not in html and "&lt;b&gt;y&lt;/b&gt;" in html  # escaped
    shown = text(dbg.compare_html)
    assert "1 key differs" in shown
    assert "step 3 \u00b7 main" in shown and "step 4 \u00b7 branch 2" in shown
    row = re.search(r'<tr class="agn-changed" data-key="q">.*?</tr>', html, re.S)
    assert row and "&#x27;x&#x27;" in row.group(0) and "&lt;b&gt;y&lt;/b&gt;" in row.group(0)
    assert 'class="agn-same" data-key="log"' in html
    diff = dbg.compare(end, end)
    assert diff.changes == () and "no differences" in text(dbg.compare_html)
    dbg.close()


SCHEMA = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean", "title": "Approve"},
        "reason": {"type": "string", "description": "why"},
        "score": {"type": "integer", "default": 3},
        "weight": {"type": "number"},
        "tone": {"enum": ["formal", "casual"], "default": "casual"},
        "tags": {"type": "array"},
        "note": {"type": "string"},
    },
    "required": ["approved", "reason"],
}


def review_graph() -> Any:
    def review(s: S) -> dict[str, Any]:
        return {
            "answer": interrupt({"question": "Publish <this>?", "draft": s["q"], "schema": SCHEMA})
        }

    g = StateGraph(S, name="hitl").add_node("review", review).add_edge(START, "review")
    return g.compile()


def test_resume_from_an_interrupt_with_a_schema_generated_form() -> None:
    dbg = Debugger(review_graph(), {"q": "draft 1"})
    assert dbg.interrupt_box.layout.display == "none"
    dbg.cont()
    assert dbg.interrupt_box.layout.display == "flex"
    assert dbg.graphview.status["review"] == "interrupted"
    shown = text(dbg.interrupt_html)
    assert "review asks: Publish <this>?" in shown and "draft 1" in shown and "schema" not in shown
    assert "Waiting for your answer: Publish <this>?" in text(dbg.status_html)
    form = {
        next(c for c in w._dom_classes if c.startswith("agentgraph-answer-")): w
        for w in dbg.answer_box.children[0].children
    }
    kinds = {k.removeprefix("agentgraph-answer-"): type(w).__name__ for k, w in form.items()}
    assert kinds == {
        "approved": "Checkbox",
        "reason": "Text",
        "score": "IntText",
        "weight": "FloatText",
        "tone": "Dropdown",
        "tags": "Textarea",
        "note": "Text",
    }
    assert (
        form["agentgraph-answer-score"].value == 3
        and form["agentgraph-answer-tone"].value == "casual"
    )
    assert form["agentgraph-answer-approved"].description == "Approve"

    form["agentgraph-answer-tags"].value = "[not json"
    dbg.resume_button.click()
    assert (
        "'tags': not valid JSON" in text(dbg.error_html) and dbg.state.interrupts
    )  # still waiting

    form["agentgraph-answer-approved"].value = True
    form["agentgraph-answer-reason"].value = "looks good"
    form["agentgraph-answer-weight"].value = 0.5
    form["agentgraph-answer-tone"].value = "formal"
    form["agentgraph-answer-tags"].value = '["a", "b"]'
    dbg.resume_button.click()  # one click answers and continues
    assert dbg.state.values["answer"] == {
        "approved": True,
        "reason": "looks good",
        "score": 3,
        "weight": 0.5,
        "tone": "formal",
        "tags": ["a", "b"],
    }  # the empty optional "note" is left out
    assert dbg.session.done and dbg.interrupt_box.layout.display == "none"
    assert dbg.graphview.status["review"] == "done"
    with pytest.raises(InvalidInputError, match="no interrupt"):
        dbg.resume("again")
    dbg.close()


def test_resume_with_plain_text_or_json_answers() -> None:
    def ask(s: S) -> dict[str, Any]:
        return {"answer": [interrupt("Name?"), interrupt({"question": "Count?"})]}

    g = StateGraph(S).add_node("ask", ask).add_edge(START, "ask")
    dbg = Debugger(g.compile(), {"q": "x"})
    dbg.cont()
    assert "ask asks: Name?" in text(dbg.interrupt_html)
    box = dbg.answer_box.children[0].children[0]
    assert isinstance(box, W.Textarea)
    box.value = "Ada"  # not JSON: plain text
    dbg.resume_button.click()
    assert "ask asks: Count?" in text(dbg.interrupt_html)
    dbg.answer_box.children[0].children[0].value = "42"  # JSON
    dbg.resume_button.click()
    assert dbg.state.values["answer"] == ["Ada", 42]
    dbg.close()


def test_node_error_is_shown_and_the_widget_stays_usable() -> None:
    calls = {"a": 0}

    def a(s: S) -> dict[str, Any]:
        calls["a"] += 1
        if calls["a"] == 1:
            raise ValueError("bad <input>")
        return {"log": ["a"]}

    dbg = Debugger(graph(a=a), {"q": "x"})
    dbg.cont_button.click()  # no exception escapes
    assert isinstance(dbg.error, ValueError) and node_failure(dbg.error).node == "a"  # type: ignore[union-attr]
    shown = text(dbg.error_html)
    assert "ValueError: bad <input>" in shown and "node a, step 2, attempt 1" in shown
    assert "traceback" in shown
    # b's write is kept as a pending write (shown applied, as LangGraph shows it); merged when a succeeds
    assert dbg.state.next == ("a",) and dbg.state.values["log"] == ["plan", "b"]
    assert (
        dbg.graphview.status["a"] == "failed"
        and "bad <input>" in dbg.graphview.details["a"]["error"]
    )
    assert not dbg.cont_button.disabled
    dbg.cont()  # the Python twin does not raise either; the run goes on once the node works
    assert dbg.error is None and text(dbg.error_html) == ""
    assert dbg.session.done and dbg.state.values["log"] == ["plan", "a", "b", "write"]
    dbg.close()


def in_fresh_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on a new thread: no event loop runs there whatever the test session's main
    thread has going (Playwright's sync API keeps one running once the browser tests ran)."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=target)
    worker.start()
    worker.join(60)
    if errors:
        raise errors[0]
    return out[0]


def slow_graph(started: list[int], cancelled: list[int]) -> Any:
    async def slow(s: S) -> dict[str, Any]:
        started.append(1)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(1)
            raise
        return {"log": ["slow"]}

    g = (
        StateGraph(S, name="slow")
        .add_node("plan", lambda s: {"log": ["plan"]})
        .add_node("slow", slow)
    )
    g.add_edge(START, "plan").add_edge("plan", "slow")
    return g.compile()


def test_stop_cancels_an_in_flight_async_continue() -> None:
    started: list[int] = []
    cancelled: list[int] = []
    dbg = Debugger(slow_graph(started, cancelled), {"q": "x"}, thread_id="t")

    async def main() -> None:
        task = dbg.step()  # a running loop and async nodes: the run is a task on that loop
        assert isinstance(task, asyncio.Task)
        assert dbg.running and dbg.step_button.disabled and not dbg.stop_button.disabled
        assert "Running" in text(dbg.status_html)
        with pytest.raises(InvalidInputError, match="in progress"):
            dbg.cont()
        snap = await task
        assert snap.next == ("slow",) and not dbg.running

        dbg.cont_button.click()  # returns at once; the click handler does not wait
        while not started:
            await asyncio.sleep(0.01)
        assert dbg.graphview._status_state["slow"] == "running"
        dbg.stop_button.click()
        task = dbg._task
        assert task is not None
        await task

    in_fresh_thread(lambda: asyncio.run(main()))
    assert cancelled == [1]
    assert not dbg.running and dbg.stop_button.disabled and not dbg.cont_button.disabled
    assert dbg.state.next == ("slow",) and dbg.state.values["log"] == ["plan"]
    assert "Stopped" in text(dbg.status_html) and dbg.error is None
    assert dbg.graphview.status["slow"] == "pending"
    assert dbg.stop() is False and "Nothing is running" in text(dbg.status_html)
    dbg.close()


def test_stop_before_the_task_starts() -> None:
    dbg = Debugger(slow_graph([], []), {"q": "x"})

    async def main() -> None:
        task = dbg.cont()
        assert dbg.stop() is True
        await asyncio.gather(task, return_exceptions=True)

    in_fresh_thread(lambda: asyncio.run(main()))
    assert not dbg.running and not dbg.cont_button.disabled
    assert dbg.state.step == 0
    dbg.close()


def test_without_a_running_loop_an_async_graph_runs_in_the_caller() -> None:
    dbg = Debugger(slow_graph([], []), {"q": "x"})
    snap = in_fresh_thread(dbg.step)
    assert not isinstance(snap, asyncio.Task) and snap.next == ("slow",)
    dbg.close()


def test_repr_is_the_session_summary_and_the_view_is_kept() -> None:
    dbg = Debugger(
        graph(),
        {"q": "x"},
        thread_id="a-rather-long-thread-name-for-the-test",
        breakpoints=["write", "plan:after", "a", "b"],
    )
    expected = (
        "Debugger(graph 'dbg', thread 'a-rather-long-thread-name-for-the-test', step 0, next: plan, "
        "breakpoints: a, b, write, plan:after)"
    )
    assert repr(dbg) == expected == dbg.session.summary()
    bundle = dbg._repr_mimebundle_()
    assert bundle["text/plain"] == expected  # whole, though longer than ipywidgets' 110 characters
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == dbg.model_id
    dbg.close()


def test_app_debug_makes_a_debugger() -> None:
    dbg = graph().debug({"q": "x"}, thread_id="t", breakpoints=["write"])
    assert (
        isinstance(dbg, Debugger)
        and dbg.session.thread_id == "t"
        and dbg.graphview.breakpoints == ["write"]
    )
    for cls in (
        "agentgraph-step",
        "agentgraph-continue",
        "agentgraph-run-to",
        "agentgraph-stop",
        "agentgraph-back",
    ):
        button = next(
            b
            for b in (
                dbg.step_button,
                dbg.cont_button,
                dbg.run_to_button,
                dbg.stop_button,
                dbg.back_button,
            )
            if cls in b._dom_classes
        )
        assert button.description and button.tooltip
    dbg.close()
    attached = Debugger(dbg.app, thread_id="t")  # no inputs: attach to the existing thread
    assert attached.state.checkpoint_id == dbg.state.checkpoint_id
    attached.close()


def test_inspector_escapes_truncates_and_bounds_big_values() -> None:
    long = "x" * 5000
    html = inspector.render_state(
        {
            "s": "<script>alert(1)</script>",
            "long": long,
            "big": list(range(1000)),
            "deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}},
        }
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<details class="agn-long">' in html and "(5,000 chars)" in html
    assert "\u2026 900 more" in html
    assert html.count("<li") < 200
    assert "(empty state)" in inspector.render_state({})
    from dataclasses import dataclass

    @dataclass
    class Msg:
        role: str
        content: str

    assert "Msg {2 fields}" in inspector.render_value(Msg("user", "hi"))
    assert inspector.render_error(None) == ""


def test_a_real_kernel_click_runs_as_a_task_and_stop_cancels_it() -> None:
    """A click arriving as a comm message in ipykernel runs Continue as a task on the kernel's
    loop: the kernel answers the next cell while it runs, and a Stop click cancels it."""
    jc = pytest.importorskip("jupyter_client.manager")
    km, kc = jc.start_new_kernel(kernel_name="python3")
    try:

        def run(code: str) -> str:
            msg_id = kc.execute(textwrap.dedent(code))
            out = []
            while True:
                m = kc.get_iopub_msg(timeout=60)
                if m["parent_header"].get("msg_id") != msg_id:
                    continue
                if m["msg_type"] == "stream":
                    out.append(m["content"]["text"])
                elif m["msg_type"] == "error":
                    raise AssertionError("\n".join(m["content"]["traceback"]))
                elif m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                    return "".join(out).strip()

        def click(model_id: str) -> None:
            content = {
                "comm_id": model_id,
                "data": {"method": "custom", "content": {"event": "click"}},
            }
            kc.shell_channel.send(kc.session.msg("comm_msg", content))

        ids = run("""
            import asyncio
            from agentgraph_nb import StateGraph, START
            from agentgraph_nb.ui.debugger import Debugger
            started, cancelled = [], []
            async def slow(s):
                started.append(1)
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    cancelled.append(1)
                    raise
            g = StateGraph(dict, name="k").add_node("plan", lambda s: {"n": 1}).add_node("slow", slow)
            g.add_edge(START, "plan").add_edge("plan", "slow")
            dbg = Debugger(g.compile(), {"n": 0}, thread_id="t")
            print(dbg.cont_button.model_id, dbg.stop_button.model_id)
        """)
        cont_id, stop_id = ids.split()
        click(cont_id)
        running = run("""
            for _ in range(500):
                if started:
                    break
                await asyncio.sleep(0.01)
            print(dbg.running, started)
        """)
        assert running == "True [1]"  # the kernel ran this cell while Continue was running
        click(stop_id)
        stopped = run("""
            for _ in range(500):
                if not dbg.running:
                    break
                await asyncio.sleep(0.01)
            print(dbg.running, cancelled, dbg.state.next, dbg.state.values)
        """)
        assert stopped == "False [1] ('slow',) {'n': 1}"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
