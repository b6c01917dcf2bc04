"""Checkpoints through the engine: history, resume, fork, update_state, human in the loop.

Every test runs on the in-memory store, on a real SQLite file, and on real PostgreSQL and Redis
servers (started once per session, see tests/_servers.py).
"""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import (
    END,
    START,
    Command,
    InvalidInputError,
    InvalidUpdateError,
    StateGraph,
    interrupt,
)


class S(TypedDict, total=False):
    x: int
    log: Annotated[list[str], operator.add]
    answer: Any


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    from tests.conftest import store_url

    return store_url(request.param, request, tmp_path)


def counting_chain(counts: dict[str, int], names: list[str], fail_at: set[str] | None = None) -> StateGraph:
    g = StateGraph(S, name="c")
    prev = START
    for n in names:
        def fn(s: dict[str, Any], n: str = n) -> dict[str, Any]:
            counts[n] = counts.get(n, 0) + 1
            if fail_at is not None and n in fail_at:
                raise RuntimeError(f"{n} failed")
            return {"log": [n], "x": s.get("x", 0) + 1}

        g.add_node(n, fn)
        g.add_edge(prev, n)
        prev = n
    return g


def test_history_one_checkpoint_per_superstep_newest_first(store: str) -> None:
    counts: dict[str, int] = {}
    app = counting_chain(counts, ["a", "b", "c"]).compile(checkpointer=store)
    app.invoke({"x": 0}, thread_id="t")
    hist = app.get_state_history("t")
    assert [h.step for h in hist] == [3, 2, 1, 0]
    assert [h.values["log"] for h in hist] == [["a", "b", "c"], ["a", "b"], ["a"], []]
    assert [h.next for h in hist] == [(), ("c",), ("b",), ("a",)]
    assert hist[0].parent_id == hist[1].checkpoint_id
    assert hist[-1].metadata["source"] == "input" and hist[0].metadata["source"] == "loop"
    assert hist[1].writes == {"b": {"log": ["b"], "x": 2}}
    st = app.get_state("t")
    assert st.values == hist[0].values and st.checkpoint_id == hist[0].checkpoint_id
    assert len(app.get_state_history("t", limit=2)) == 2
    assert [h.step for h in app.get_state_history("t", filter={"source": "input"})] == [0]


def test_unknown_thread_is_empty_not_error(store: str) -> None:
    app = counting_chain({}, ["a"]).compile(checkpointer=store)
    st = app.get_state("nope")
    assert st.values == {} and st.next == () and st.checkpoint_id is None
    assert app.get_state_history("nope") == []


def test_resume_after_failure_runs_only_the_rest(store: str) -> None:
    counts: dict[str, int] = {}
    fail = {"b"}
    app = counting_chain(counts, ["a", "b", "c"], fail).compile(checkpointer=store)
    with pytest.raises(RuntimeError, match="b failed"):
        app.invoke({"x": 0}, thread_id="t")
    st = app.get_state("t")
    assert st.next == ("b",) and st.values["log"] == ["a"]
    fail.clear()
    out = app.invoke(None, thread_id="t")
    assert out["log"] == ["a", "b", "c"]
    assert counts == {"a": 1, "b": 2, "c": 1}


def test_invoke_none_on_a_thread_without_checkpoint_is_clear_error(store: str) -> None:
    app = counting_chain({}, ["a"]).compile(checkpointer=store)
    with pytest.raises(InvalidInputError, match="thread 'fresh' has no checkpoint"):
        app.invoke(None, thread_id="fresh")
    with pytest.raises(InvalidInputError, match="thread 'fresh' has no checkpoint"):
        list(app.stream(None, thread_id="fresh"))


def test_invoke_none_on_a_finished_thread_runs_nothing_and_returns_its_state(store: str) -> None:
    counts: dict[str, int] = {}
    app = counting_chain(counts, ["a", "b"]).compile(checkpointer=store)
    final = app.invoke({"x": 0}, thread_id="done")
    tip = app.get_state("done").checkpoint_id
    n = len(app.get_state_history("done"))
    # "resume if needed" is one call: on a finished thread it returns the state
    assert app.invoke(None, thread_id="done") == final
    assert app.invoke(None, thread_id="done", checkpoint_id=tip) == final
    assert asyncio.run(app.ainvoke(None, thread_id="done")) == final
    assert list(app.stream(None, thread_id="done", mode="updates")) == []
    assert list(app.stream(None, thread_id="done", mode="values")) == [final]  # the state, once
    assert counts == {"a": 1, "b": 1} and len(app.get_state_history("done")) == n
    assert app.get_state("done").checkpoint_id == tip
    # the final checkpoint of an older branch too
    first = next(h for h in app.get_state_history("done") if h.step == 1)
    app.invoke(None, thread_id="done", checkpoint_id=first.checkpoint_id)  # a new branch...
    out = app.invoke(None, thread_id="done", checkpoint_id=tip)  # ...and the old one's end
    assert out == final and counts == {"a": 1, "b": 2}
    assert len(app.get_state_history("done")) == n + 1


def test_threads_are_independent_and_continue(store: str) -> None:
    app = counting_chain({}, ["a"]).compile(checkpointer=store)
    app.invoke({"x": 10}, thread_id="one")
    app.invoke({"x": 20}, thread_id="two")
    assert app.get_state("one").values["x"] == 11
    assert app.get_state("two").values["x"] == 21
    out = app.invoke({"log": ["again"]}, thread_id="one")  # new input continues the thread
    assert out["log"] == ["a", "again", "a"] and out["x"] == 12
    assert sorted(app.list_threads()) == ["one", "two"]
    app.delete_thread("one")
    assert app.list_threads() == ["two"] and app.get_state("one").values == {}


def test_fork_from_checkpoint_keeps_original_history(store: str) -> None:
    counts: dict[str, int] = {}
    app = counting_chain(counts, ["a", "b", "c"]).compile(checkpointer=store)
    app.invoke({"x": 0}, thread_id="t")
    before = [(h.checkpoint_id, h.step) for h in app.get_state_history("t")]
    after_a = next(h for h in app.get_state_history("t") if h.step == 1)
    out = app.invoke(None, thread_id="t", checkpoint_id=after_a.checkpoint_id)
    assert out["log"] == ["a", "b", "c"]
    assert counts == {"a": 1, "b": 2, "c": 2}  # only the nodes after the checkpoint re-ran
    hist = app.get_state_history("t")
    assert len(hist) == len(before) + 2
    assert {cid for cid, _ in before} <= {h.checkpoint_id for h in hist}
    assert hist[1].parent_id == after_a.checkpoint_id


def test_update_state_semantics(store: str) -> None:
    counts: dict[str, int] = {}
    app = counting_chain(counts, ["a", "b", "c"]).compile(checkpointer=store, interrupt_before=["b"])
    app.invoke({"x": 0}, thread_id="t")
    st = app.get_state("t")
    assert st.next == ("b",) and st.interrupts[0].when == "before"
    # without as_node: next unchanged, values merged through reducers
    cid = app.update_state("t", {"log": ["human"], "x": 100})
    st2 = app.get_state("t")
    assert st2.checkpoint_id == cid and st2.parent_id == st.checkpoint_id
    assert st2.next == ("b",) and st2.values["log"] == ["a", "human"] and st2.values["x"] == 100
    out = app.invoke(None, thread_id="t")
    assert out["log"] == ["a", "human", "b", "c"]
    # as_node: that node's successors run next
    cid2 = app.update_state("t", {"log": ["as-a"]}, as_node="a", checkpoint_id=st.checkpoint_id)
    assert app.get_state("t", cid2).next == ("b",)
    # as_node=END clears pending work
    cid3 = app.update_state("t", {"x": 1}, as_node=END, checkpoint_id=st.checkpoint_id)
    assert app.get_state("t", cid3).next == ()
    with pytest.raises(InvalidInputError, match="unknown as_node 'bb'.*Did you mean 'b'"):
        app.update_state("t", {}, as_node="bb")


@pytest.mark.parametrize("bad", [5, [("x", 1), 2], "ab", 1.5])
def test_update_state_rejects_values_that_are_not_a_dict(store: str, bad: Any) -> None:
    app = counting_chain({}, ["a"]).compile(checkpointer=store)
    app.invoke({"x": 0}, thread_id="t")
    before = app.get_state("t").checkpoint_id
    with pytest.raises(InvalidUpdateError, match=r"update_state\(thread 't'\): the values must be a dict") as ei:
        app.update_state("t", bad, as_node="a")
    assert ei.value.node == "a" and type(bad).__name__ in str(ei.value)
    with pytest.raises(InvalidUpdateError) as ei:
        app.update_state("t", bad)
    assert ei.value.node == "__update__"
    assert app.get_state("t").checkpoint_id == before  # nothing was written


def test_edit_a_paused_thread_then_resume(store: str) -> None:
    runs: dict[str, int] = {}
    app = _asking(runs).compile(checkpointer=store)
    asked = app.invoke({}, thread_id="e")["__interrupt__"]
    app.update_state("e", {"x": 7})  # a human edits the state, then answers
    st = app.get_state("e")
    assert st.next == ("ask",) and [i.id for i in st.interrupts] == [i.id for i in asked]
    out = app.invoke(Command(resume="yes"), thread_id="e")
    assert out["answer"] == "yes" and out["x"] == 7 and out["log"] == ["pre", "ask", "post"]
    assert "__interrupt__" not in out and runs["ask"] == 2


def test_interrupt_in_node_and_resume_in_order(store: str) -> None:
    runs = {"n": 0}

    def ask(s: dict[str, Any]) -> dict[str, Any]:
        runs["n"] += 1
        name = interrupt({"question": "name?"})
        age = interrupt({"question": "age?"})
        return {"answer": f"{name}:{age}"}

    g = StateGraph(S).add_node("ask", ask).add_node("after", lambda s: {"log": ["after"]})
    g.add_edge(START, "ask").add_edge("ask", "after")
    app = g.compile(checkpointer=store)
    out = app.invoke({}, thread_id="h")
    assert out["__interrupt__"][0].value == {"question": "name?"}
    st = app.get_state("h")
    assert st.next == ("ask",) and st.interrupts[0].value == {"question": "name?"}
    out = app.invoke(Command(resume="ada"), thread_id="h")
    assert out["__interrupt__"][0].value == {"question": "age?"}
    out = app.invoke(Command(resume=36), thread_id="h")
    assert out["answer"] == "ada:36" and out["log"] == ["after"]
    assert "__interrupt__" not in out and runs["n"] == 3
    assert app.get_state("h").interrupts == ()


def test_several_pending_interrupts_answered_by_id(store: str) -> None:
    def mk(label: str) -> Any:
        def n(s: dict[str, Any]) -> dict[str, Any]:
            return {"log": [f"{label}={interrupt(label)}"]}

        return n

    g = StateGraph(S).add_node("p", mk("p")).add_node("q", mk("q")).add_edge(START, "p").add_edge(START, "q")
    app = g.compile(checkpointer=store)
    out = app.invoke({}, thread_id="m")
    ids = {i.value: i.id for i in out["__interrupt__"]}
    assert set(ids) == {"p", "q"}
    with pytest.raises(InvalidInputError, match="2 pending interrupts"):
        app.invoke(Command(resume="x"), thread_id="m")
    out = app.invoke(Command(resume={ids["p"]: 1, ids["q"]: 2}), thread_id="m")
    assert out["log"] == ["p=1", "q=2"]


def test_interrupt_after_and_new_input_drops_pending(store: str) -> None:
    counts: dict[str, int] = {}
    app = counting_chain(counts, ["a", "b"]).compile(checkpointer=store, interrupt_after=["a"])
    out = app.invoke({"x": 0}, thread_id="t")
    assert out["__interrupt__"][0].when == "after" and app.get_state("t").next == ("b",)
    out = app.invoke({"x": 0}, thread_id="t")  # new input: pending step dropped, starts over
    assert out["log"] == ["a", "a"] and counts == {"a": 2}
    out = app.invoke(None, thread_id="t")
    assert out["log"] == ["a", "a", "b"]


def test_interrupt_before_per_call(store: str) -> None:
    app = counting_chain({}, ["a", "b"]).compile(checkpointer=store)
    out = app.invoke({}, thread_id="t", interrupt_before=["a"])
    assert out["__interrupt__"][0].node == "a" and out["log"] == []
    assert app.invoke(None, thread_id="t")["log"] == ["a", "b"]


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_durability_modes_keep_full_history(store: str, durability: str) -> None:
    app = counting_chain({}, ["a", "b", "c"]).compile(checkpointer=store)
    app.invoke({}, thread_id="d", durability=durability)
    assert [h.step for h in app.get_state_history("d")] == [3, 2, 1, 0]


def test_resume_command_on_unpaused_thread_is_error(store: str) -> None:
    app = counting_chain({}, ["a"]).compile(checkpointer=store)
    with pytest.raises(InvalidInputError, match="not paused"):
        app.invoke(Command(resume=1), thread_id="none")


def test_no_thread_no_checkpoints() -> None:
    app = counting_chain({}, ["a"]).compile()
    app.invoke({})
    assert app.list_threads() == []
    with pytest.raises(InvalidInputError, match="checkpointer=None"):
        counting_chain({}, ["a"]).compile(checkpointer=None).get_state("t")


def test_max_steps_steps_through_a_run(store: str) -> None:
    counts: dict[str, int] = {}
    app = counting_chain(counts, ["a", "b", "c"]).compile(checkpointer=store)
    out = app.invoke({"x": 0}, thread_id="s", max_steps=0)
    assert out.get("log", []) == [] and app.get_state("s").next == ("a",)
    steps = []
    while app.get_state("s").next:
        app.invoke(None, thread_id="s", max_steps=1)
        steps.append(app.get_state("s").values["log"][-1])
    assert steps == ["a", "b", "c"] and counts == {"a": 1, "b": 1, "c": 1}


def test_unstorable_value_is_a_checkpoint_error_naming_the_key(tmp_path: Any) -> None:
    pytest.importorskip("agentgraph_nb.checkpoint.sqlite")
    from agentgraph_nb import CheckpointError

    class Conn:  # not on the serializer's allowlist
        pass

    state = {"bad": True}

    def a(s: dict[str, Any]) -> dict[str, Any]:
        return {"answer": {"docs": [1, Conn() if state["bad"] else 2]}, "log": ["a"]}

    g = StateGraph(S).add_node("a", a).add_node("b", lambda s: {"log": ["b"]}).add_edge(START, "a").add_edge("a", "b")
    app = g.compile(checkpointer=f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(CheckpointError, match=r"\"answer\"\]\[\"docs\"\]\[1\].*Conn"):
        app.invoke({}, thread_id="t", durability="sync")
    st = app.get_state("t")  # the last good checkpoint is intact and resumable
    assert st.step == 0 and st.next == ("a",)
    state["bad"] = False
    assert app.invoke(None, thread_id="t")["log"] == ["a", "b"]


def test_overwrite_replaces_a_reducer_key_and_is_stored(store: str) -> None:
    from agentgraph_nb import Overwrite

    g = StateGraph(S).add_node("a", lambda s: {"log": ["a"]}).add_node("reset", lambda s: {"log": Overwrite(["fresh"])})
    g.add_edge(START, "a").add_edge("a", "reset")
    app = g.compile(checkpointer=store)
    assert app.invoke({"log": ["in"]}, thread_id="o")["log"] == ["fresh"]
    hist = app.get_state_history("o")
    assert [h.values["log"] for h in hist] == [["fresh"], ["in", "a"], ["in"]]
    cid = app.update_state("o", {"log": Overwrite([])}, checkpoint_id=hist[1].checkpoint_id)
    assert app.get_state("o", cid).values["log"] == []


def test_snapshot_shows_pending_writes_of_finished_siblings(store: str) -> None:
    def bad(s: dict[str, Any]) -> None:
        raise RuntimeError("x")

    g = StateGraph(S).add_node("ok", lambda s: {"log": ["ok"]}).add_node("bad", bad)
    g.add_edge(START, "ok").add_edge(START, "bad")
    app = g.compile(checkpointer=store)
    with pytest.raises(RuntimeError, match="x"):
        app.invoke({}, thread_id="p")
    st = app.get_state("p")
    assert st.next == ("bad",) and st.pending_writes == {"ok": {"log": ["ok"]}}


def _fan_out(counts: dict[str, int], fail: set[str], conflict: dict[str, bool] | None = None) -> StateGraph:
    """START -> ok, bad, c (one superstep) -> end. ``fail`` names nodes that raise; with
    ``conflict["on"]``, ``ok`` and ``bad`` both write the plain key ``x`` (``c`` writes ``answer``)."""

    def mk(name: str) -> Any:
        def fn(s: dict[str, Any]) -> dict[str, Any]:
            counts[name] = counts.get(name, 0) + 1
            if name in fail:
                raise RuntimeError(f"{name} failed")
            out: dict[str, Any] = {"log": [name]}
            if name == "c":
                out["answer"] = "c"
            if conflict is not None and conflict["on"] and name in ("ok", "bad"):
                out["x"] = len(name)
            return out

        return fn

    g = StateGraph(S, name="fan")
    for name in ("ok", "bad", "c"):
        g.add_node(name, mk(name))
        g.add_edge(START, name)
    g.add_node("end", mk("end"))
    g.add_edge(["ok", "bad", "c"], "end")
    return g


def test_failed_sibling_snapshot_shows_finished_writes_applied(store: str) -> None:
    counts: dict[str, int] = {}
    fail = {"bad"}
    app = _fan_out(counts, fail).compile(checkpointer=store)
    with pytest.raises(RuntimeError, match="node 'bad' of graph 'fan' failed at step 1"):
        app.invoke({"log": ["in"]}, thread_id="p")
    st = app.get_state("p")
    # as LangGraph: the finished siblings' writes are shown applied, next names only the failed node
    assert st.next == ("bad",)
    assert st.values == {"log": ["in", "ok", "c"], "answer": "c"}
    assert st.pending_writes == {"ok": {"log": ["ok"]}, "c": {"log": ["c"], "answer": "c"}}
    hist = app.get_state_history("p")
    assert hist[0].values == st.values and hist[0].next == st.next and hist[0].checkpoint_id == st.checkpoint_id
    assert len(app.get_state_history("p", limit=1)) == 1 and app.get_state_history("p", limit=1)[0].values == st.values
    # in the snapshot only: the stored checkpoint is the one before the step
    assert st.step == 0 and st.writes == {"__input__": {"log": ["in"]}}
    fail.clear()
    out = app.invoke(None, thread_id="p")
    clean = _fan_out({}, set()).compile(checkpointer=store).invoke({"log": ["in"]}, thread_id="clean")
    assert out == clean and counts == {"ok": 1, "bad": 2, "c": 1, "end": 1}


def test_merge_conflict_in_a_parallel_step_leaves_the_writers_next(store: str) -> None:
    from agentgraph_nb import InvalidUpdateError

    counts: dict[str, int] = {}
    conflict = {"on": True}
    app = _fan_out(counts, set(), conflict).compile(checkpointer=store)
    with pytest.raises(InvalidUpdateError, match="'ok' and 'bad' both wrote state key 'x'"):
        app.invoke({}, thread_id="m")
    st = app.get_state("m")
    # the step did not finish: the nodes whose writes could not be merged are next; the others' are kept
    assert st.next == ("ok", "bad")
    assert st.values == {"log": ["c"], "answer": "c"} and st.pending_writes == {"c": {"log": ["c"], "answer": "c"}}
    conflict["on"] = False  # the node is fixed: resuming re-runs the two, not "c"
    out = app.invoke(None, thread_id="m")
    assert out == {"log": ["ok", "bad", "c", "end"], "answer": "c"}
    assert counts == {"ok": 2, "bad": 2, "c": 1, "end": 1}
    assert app.get_state("m").next == ()


def _asking(runs: dict[str, int]) -> StateGraph:
    def ask(s: dict[str, Any]) -> dict[str, Any]:
        runs["ask"] = runs.get("ask", 0) + 1
        return {"answer": interrupt({"question": "ok?"}), "log": ["ask"]}

    g = StateGraph(S).add_node("pre", lambda s: {"log": ["pre"]}).add_node("ask", ask)
    g.add_node("post", lambda s: {"log": ["post"]})
    return g.add_edge(START, "pre").add_edge("pre", "ask").add_edge("ask", "post")


def test_replay_from_before_an_interrupt_asks_again_and_resumes_the_fork(store: str) -> None:
    runs: dict[str, int] = {}
    app = _asking(runs).compile(checkpointer=store)
    app.invoke({}, thread_id="i")
    assert app.invoke(Command(resume="yes"), thread_id="i")["answer"] == "yes"
    final = app.get_state("i")
    before = next(h for h in app.get_state_history("i") if h.next == ("ask",))
    for answer in ("no", "maybe"):  # twice from the same checkpoint: each replay is a branch of its own
        out = app.invoke(None, thread_id="i", checkpoint_id=before.checkpoint_id)
        assert [i.value for i in out["__interrupt__"]] == [{"question": "ok?"}]  # "yes" does not leak
        st = app.get_state("i")  # the paused replay is the thread's newest checkpoint: resumable
        assert st.next == ("ask",) and len(st.interrupts) == 1 and st.parent_id == before.checkpoint_id
        assert st.metadata["source"] == "fork" and st.values == before.values
        out = app.invoke(Command(resume=answer), thread_id="i")
        assert out["answer"] == answer and out["log"] == ["pre", "ask", "post"]
    assert runs["ask"] == 6
    assert app.get_state("i", final.checkpoint_id).values["answer"] == "yes"  # the first branch is intact
    # a replay that does not pause leaves no fork checkpoint: its steps hang on the replayed one
    n = len(app.get_state_history("i"))
    after = next(h for h in app.get_state_history("i") if h.next == ("post",))
    app.invoke(None, thread_id="i", checkpoint_id=after.checkpoint_id)
    assert len(app.get_state_history("i")) == n + 1 and app.get_state("i").parent_id == after.checkpoint_id


def test_answer_an_older_checkpoints_interrupt_differently(store: str) -> None:
    runs: dict[str, int] = {}
    app = _asking(runs).compile(checkpointer=store)
    app.invoke({}, thread_id="o")
    paused = app.get_state("o")
    app.invoke(Command(resume="yes"), thread_id="o")
    out = app.invoke(Command(resume="no"), thread_id="o", checkpoint_id=paused.checkpoint_id)
    assert out["answer"] == "no" and out["log"] == ["pre", "ask", "post"] and runs["ask"] == 3
    assert app.get_state("o", paused.checkpoint_id).interrupts == ()  # history is not rewritten


def test_replay_from_before_interrupt_before_pauses_again(store: str) -> None:
    counts: dict[str, int] = {}
    app = counting_chain(counts, ["a", "b", "c"]).compile(checkpointer=store, interrupt_before=["c"])
    app.invoke({"x": 0}, thread_id="b")
    paused = app.get_state("b")
    assert paused.next == ("c",) and paused.interrupts[0].when == "before"
    assert app.invoke(None, thread_id="b")["log"] == ["a", "b", "c"]  # at the newest checkpoint: resumes
    before_b = next(h for h in app.get_state_history("b") if h.next == ("b",))
    for _ in range(2):  # replaying the step before the breakpoint stops there again, each time
        out = app.invoke(None, thread_id="b", checkpoint_id=before_b.checkpoint_id)
        assert out["__interrupt__"][0].node == "c" and out["log"] == ["a", "b"]
        st = app.get_state("b")
        assert st.next == ("c",) and [i.when for i in st.interrupts] == ["before"] and st.interrupts[0].node == "c"
        assert app.invoke(None, thread_id="b")["log"] == ["a", "b", "c"]
    # as in LangGraph, a run's first step never stops at a breakpoint: replaying from where the
    # run paused goes on from there (a debugger's Back then Continue)
    assert app.invoke(None, thread_id="b", checkpoint_id=paused.checkpoint_id)["log"] == ["a", "b", "c"]
    assert counts == {"a": 1, "b": 3, "c": 4}


def test_invoke_none_on_a_paused_thread_asks_once(store: str) -> None:
    runs: dict[str, int] = {}
    app = _asking(runs).compile(checkpointer=store)
    first = app.invoke({}, thread_id="p")["__interrupt__"]
    for _ in range(3):  # a supervisor's "resume if needed" on a thread waiting for a human
        again = app.invoke(None, thread_id="p")["__interrupt__"]
        assert [(i.id, i.value) for i in again] == [(i.id, i.value) for i in first]
        assert [(i.id, i.value) for i in app.get_state("p").interrupts] == [(i.id, i.value) for i in first]
    out = app.invoke(Command(resume="yes"), thread_id="p")
    assert out["answer"] == "yes" and out["log"] == ["pre", "ask", "post"] and runs["ask"] == 5


def test_per_call_interrupt_before_takes_one_name_as_compile_does(store: str) -> None:
    counts: dict[str, int] = {}
    app = counting_chain(counts, ["a", "bb", "c"]).compile(checkpointer=store)
    out = app.invoke({"x": 0}, thread_id="t", interrupt_before="bb")  # a str, not a set of letters
    assert "__interrupt__" in out and app.get_state("t").next == ("bb",)
    assert counts == {"a": 1}
    with pytest.raises(InvalidInputError, match="interrupt_after: unknown node 'b'.*Did you mean 'bb'"):
        app.invoke({"x": 0}, thread_id="u", interrupt_after=["b"])


def test_resume_with_an_update_is_stored(store: str) -> None:
    # SQLite keeps only writes between snapshots: the update must be a write of its own, stored
    # before the resumed node runs, so it survives that node pausing again
    def ask_twice(s: dict[str, Any]) -> dict[str, Any]:
        first = interrupt("first?")
        second = interrupt("second?")
        return {"answer": f"{first}/{second}"}

    g = StateGraph(S, name="twice")
    g.add_node("ask", ask_twice)
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    app = g.compile(checkpointer=store)
    app.invoke({"x": 1}, thread_id="t")
    out = app.invoke(Command(resume="a", update={"x": 5}), thread_id="t")
    assert out["__interrupt__"][0].value == "second?"
    assert app.get_state("t").values["x"] == 5  # paused again: the update is kept
    out = app.invoke(Command(resume="b"), thread_id="t")
    assert out["answer"] == "a/b" and out["x"] == 5
    assert app.get_state("t").values == {"x": 5, "answer": "a/b", "log": []}
