"""DebugSession: stepping semantics through parallel supersteps, breakpoints, back, fork,
compare, resume from interrupt."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import START, InvalidInputError, StateGraph, interrupt
from agentgraph_nb.graph.session import DebugSession


class S(TypedDict, total=False):
    q: str
    log: Annotated[list[str], operator.add]
    answer: str


def graph() -> Any:
    g = StateGraph(S, name="dbg")
    for n in ("plan", "a", "b", "write"):
        g.add_node(n, lambda s, n=n: {"log": [n]})
    g.add_edge(START, "plan").add_edge("plan", "a").add_edge("plan", "b").add_edge(["a", "b"], "write")
    return g.compile()


def test_step_through_parallel_supersteps_shows_each_nodes_writes() -> None:
    dbg = DebugSession(graph(), {"q": "x"}, thread_id="t")
    assert dbg.state.step == 0 and dbg.state.next == ("plan",)
    dbg.step()
    assert dbg.state.next == ("a", "b")
    snap = dbg.step()
    assert snap.writes == {"a": {"log": ["a"]}, "b": {"log": ["b"]}}
    d = dbg.diff()
    assert d.changed_keys == ["log"] and d.changes[0].writers == ("a", "b") and d.changes[0].reducer == "add"
    dbg.step()
    assert dbg.done and dbg.state.values["log"] == ["plan", "a", "b", "write"]
    with pytest.raises(InvalidInputError, match="finished"):
        dbg.step()
    assert repr(dbg) == "Debugger(graph 'dbg', thread 't', step 3, next: __end__)"


def test_breakpoints_before_and_after_and_cont() -> None:
    dbg = DebugSession(graph(), {"q": "x"}, breakpoints=["write"])
    dbg.cont()
    assert dbg.state.next == ("write",)
    dbg.toggle_breakpoint("plan:after")
    assert dbg.breakpoints == ["write", "plan:after"]
    dbg.cont()
    assert dbg.done
    dbg2 = DebugSession(graph(), {"q": "y"}, breakpoints=["plan:after"])
    dbg2.cont()
    assert dbg2.state.values["log"] == ["plan"] and dbg2.state.next == ("a", "b")
    assert dbg2.toggle_breakpoint("plan:after") is False
    with pytest.raises(InvalidInputError, match="Did you mean 'plan'"):
        dbg2.toggle_breakpoint("plam")


def test_back_then_step_forks_and_compare_branches() -> None:
    dbg = DebugSession(graph(), {"q": "x"})
    dbg.cont()
    end_id = dbg.state.checkpoint_id
    dbg.back()
    dbg.back()
    assert dbg.state.next == ("a", "b")
    forked = dbg.fork({"log": ["human"]})
    assert forked.values["log"] == ["plan", "human"] and forked.next == ("a", "b")
    dbg.cont()
    assert dbg.state.values["log"] == ["plan", "human", "a", "b", "write"]
    assert len(dbg.branches()) == 2
    cmp = dbg.compare(end_id, dbg.state.checkpoint_id)  # type: ignore[arg-type]
    assert cmp.changed_keys == ["log"]
    assert cmp.to_pandas().loc[0, "status"] == "changed"
    # the original timeline is intact
    assert dbg.select(end_id).values["log"] == ["plan", "a", "b", "write"]  # type: ignore[arg-type]


def test_diff_of_an_unfinished_step_names_its_finished_nodes() -> None:
    fail = {"on": True}

    def a(s: dict[str, Any]) -> dict[str, Any]:
        if fail["on"]:
            raise RuntimeError("a failed")
        return {"log": ["a"]}

    g = StateGraph(S, name="dbg").add_node("plan", lambda s: {"log": ["plan"]}).add_node("a", a)
    g.add_node("b", lambda s: {"log": ["b"]}).add_edge(START, "plan").add_edge("plan", "a").add_edge("plan", "b")
    dbg = DebugSession(g.compile(), {"q": "x"})
    dbg.step()
    with pytest.raises(Exception, match="a failed"):
        dbg.step()
    assert dbg.state.next == ("a",) and dbg.state.values["log"] == ["plan", "b"]  # b's result, shown applied
    change = dbg.diff().changes[0]
    assert change.key == "log" and change.after == ["plan", "b"] and change.writers == ("plan", "b")
    fail["on"] = False
    assert dbg.step().values["log"] == ["plan", "a", "b"]


def test_resume_from_interrupt() -> None:
    g = StateGraph(S).add_node("ask", lambda s: {"answer": interrupt({"question": "ok?"})})
    g.add_edge(START, "ask")
    dbg = DebugSession(g.compile(), {"q": "x"})
    dbg.cont()
    assert dbg.state.interrupts[0].value == {"question": "ok?"}
    assert "waiting on 1 interrupt" in dbg.summary()
    dbg.resume("yes")
    assert dbg.state.values["answer"] == "yes" and dbg.done


def test_needs_checkpointer() -> None:
    g = StateGraph(S).add_node("a", lambda s: None).add_edge(START, "a")
    with pytest.raises(InvalidInputError, match="checkpointer"):
        DebugSession(g.compile(checkpointer=None), {})


def test_async_stepping_and_stop_cancels_in_flight_async_node() -> None:
    import asyncio

    started = []

    async def slow(s: dict[str, Any]) -> dict[str, Any]:
        started.append(True)
        await asyncio.sleep(10)
        return {"log": ["slow"]}

    g = StateGraph(S).add_node("plan", lambda s: {"log": ["plan"]}).add_node("slow", slow)
    g.add_edge(START, "plan").add_edge("plan", "slow")
    dbg = DebugSession(g.compile(), {"q": "x"})

    async def main() -> None:
        await dbg.astep()
        assert dbg.state.next == ("slow",)
        task = asyncio.ensure_future(dbg.acont())
        while not started:
            await asyncio.sleep(0.01)
        task.cancel()  # the widget's Stop
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert dbg.state.next == ("slow",) and dbg.state.values["log"] == ["plan"]
    assert isinstance(dbg.last_error, BaseException)
