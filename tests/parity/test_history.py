"""LangGraph parity: the shape of a thread's history, and ``StateSnapshot.tasks``. Each test
names the LangGraph test it follows.

History shape (a deliberate difference, see the README): LangGraph stores one more checkpoint
per run, before the input is applied (step -1 on a new thread, source "input", next
``("__start__",)``). We do not: our input checkpoint (source "input") is LangGraph's step-0
checkpoint (same values, same next nodes, same step number on a new thread), and what LangGraph's
extra one holds is already there (the values before the input are its parent's, the input is in
its ``writes["__input__"]``).
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from agentgraph_nb import START, Send, SnapshotTask, StateGraph, interrupt


class State(TypedDict, total=False):
    value: Annotated[list[str], operator.add]


def _chain(called: list[str]) -> Any:
    def node(name: str) -> Any:
        def fn(state: State) -> dict[str, Any]:
            called.append(name)
            return {"value": [name]}

        return fn

    return StateGraph(State).add_sequence([("node_a", node("node_a")), ("node_b", node("node_b"))]).add_edge(START, "node_a")


def test_history_shape_is_pinned() -> None:
    """Follows test_pregel.py::test_checkpoint_metadata and test_pregel.py::test_invoke_checkpoint_two:
    one checkpoint for the input, then one per superstep, newest first; steps numbered as
    LangGraph numbers its checkpoints from step 0; no "__start__" checkpoint."""
    called: list[str] = []
    app = _chain(called).compile()
    app.invoke({"value": ["in"]}, thread_id="1")
    shape = [(s.step, s.metadata["source"], s.next) for s in reversed(app.get_state_history("1"))]
    # LangGraph: (-1, "input", ("__start__",)), (0, "loop", ("node_a",)), (1, "loop", ("node_b",)), (2, "loop", ())
    assert shape == [(0, "input", ("node_a",)), (1, "loop", ("node_b",)), (2, "loop", ())]
    first = app.get_state_history("1")[-1]
    assert first.parent_id is None and first.writes == {"__input__": {"value": ["in"]}}
    assert first.values == {"value": ["in"]}
    # a second run on the thread: its input checkpoint takes the next step number
    app.invoke({"value": ["again"]}, thread_id="1")
    shape = [(s.step, s.metadata["source"], s.next) for s in reversed(app.get_state_history("1"))][3:]
    # LangGraph: (3, "input", ("__start__",)), (4, "loop", ("node_a",)), (5, ...), (6, ...)
    assert shape == [(3, "input", ("node_a",)), (4, "loop", ("node_b",)), (5, "loop", ())]
    assert all(s.next != ("__start__",) for s in app.get_state_history("1"))


def test_replaying_the_input_checkpoint_reruns_the_whole_run() -> None:
    """Follows test_time_travel.py::test_replay_reruns_nodes_after_checkpoint (replayed from the
    first checkpoint, which in LangGraph is the "__start__" one): every node runs again with the
    same input, on a new branch; forking "before the input" is a new input from the parent."""
    called: list[str] = []
    app = _chain(called).compile()
    app.invoke({"value": ["in"]}, thread_id="1")
    first = app.get_state_history("1")[-1]
    called.clear()
    assert app.invoke(None, thread_id="1", checkpoint_id=first.checkpoint_id) == {"value": ["in", "node_a", "node_b"]}
    assert called == ["node_a", "node_b"]
    end_of_first_run = app.get_state_history("1")[-3]
    assert end_of_first_run.next == () and end_of_first_run.step == 2
    called.clear()
    out = app.invoke({"value": ["other"]}, thread_id="1", checkpoint_id=end_of_first_run.checkpoint_id)
    assert out["value"][-3:] == ["other", "node_a", "node_b"] and called == ["node_a", "node_b"]
    assert len(app.get_state_history("1")) == 3 + 2 + 3


def test_tasks_of_a_failed_step_show_the_error_and_the_finished_result() -> None:
    """Follows test_pregel.py::test_pending_writes_resume: after a parallel step fails, the
    snapshot's tasks show the finished node's result and the failed node's error; resuming
    clears the error."""
    fail = {"on": True}

    def one(state: State) -> dict[str, Any]:
        return {"value": ["one"]}

    def two(state: State) -> dict[str, Any]:
        if fail["on"]:
            raise ConnectionError("I'm not good")
        return {"value": ["two"]}

    g = StateGraph(State).add_node("one", one).add_node("two", two).add_edge(START, "one").add_edge(START, "two")
    app = g.compile()
    with pytest.raises(ConnectionError, match="I'm not good"):
        app.invoke({"value": []}, thread_id="1")
    state = app.get_state("1")
    assert state.next == ("two",)
    assert state.tasks == (
        SnapshotTask("1:0", "one", ("pull", "one"), result={"value": ["one"]}),
        SnapshotTask("1:1", "two", ("pull", "two"), error="ConnectionError: I'm not good"),
    )
    fail["on"] = False
    assert app.invoke(None, thread_id="1") == {"value": ["one", "two"]}
    assert app.get_state("1").tasks == ()


def test_task_of_a_lone_failed_node_shows_its_error() -> None:
    """Follows test_pregel.py::test_pending_writes_resume (a one-node step): the error is on
    the task, and the checkpoint before the step is unchanged otherwise."""
    g = StateGraph(State).add_node("bad", lambda s: 1 / 0).add_edge(START, "bad")
    app = g.compile()
    with pytest.raises(ZeroDivisionError):
        app.invoke({"value": []}, thread_id="1")
    (task,) = app.get_state("1").tasks
    assert (task.name, task.error, task.result) == ("bad", "ZeroDivisionError: division by zero", None)
    assert len(app.get_state_history("1")) == 1


def test_tasks_carry_their_interrupts_and_send_paths() -> None:
    """Follows test_interruption.py::test_interruption_without_state_updates and
    test_pregel.py::test_send_sequences: a paused task lists its interrupt; a Send task's path is
    ("push", index)."""

    def fan(state: State) -> list[Send]:
        return [Send("ask", {"q": "first"}), Send("ask", {"q": "second"})]

    def ask(arg: dict[str, str]) -> dict[str, Any]:
        return {"value": [interrupt(arg["q"])]} if arg["q"] == "second" else {"value": ["auto"]}

    g = StateGraph(State).add_node("start", lambda s: None).add_node("ask", ask)
    g.add_edge(START, "start").add_conditional_edges("start", fan)
    app = g.compile()
    app.invoke({"value": []}, thread_id="1")
    t0, t1 = app.get_state("1").tasks
    assert (t0.path, t0.result, t0.interrupts) == (("push", 0), {"value": ["auto"]}, ())
    assert t1.path == ("push", 1) and [i.value for i in t1.interrupts] == ["second"]
    assert t1.interrupts == app.get_state("1").interrupts


def test_tasks_in_history_carry_what_each_task_wrote() -> None:
    """Follows test_pregel.py::test_invoke_checkpoint_two (LangGraph's history snapshots list
    each task with its result): every checkpoint's tasks, with the updates they made."""
    called: list[str] = []
    app = _chain(called).compile()
    app.invoke({"value": []}, thread_id="1")
    hist = app.get_state_history("1")
    assert [[(t.id, t.name, t.result) for t in s.tasks] for s in hist] == [
        [],
        [("2:0", "node_b", {"value": ["node_b"]})],
        [("1:0", "node_a", {"value": ["node_a"]})],
    ]
    assert [[(t.name, t.result) for t in s.tasks] for s in app.get_state_history("1", limit=2)] == [
        [], [("node_b", {"value": ["node_b"]})],
    ]
