"""Saved results of an unfinished step (pending writes) written under an older state version are
migrated when a newer graph resumes the step: a real store written by the version-1 graph, resumed
by the version-2 one; a result no update can carry is a StateMigrationError naming the thread, the
checkpoint, the node, the key and the versions."""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import END, START, Command, StateGraph, interrupt
from agentgraph_nb.errors import StateMigrationError
from tests.conftest import store_url


class V1(TypedDict, total=False):
    tag: str
    log: Annotated[list[str], operator.add]
    n: Annotated[int, operator.add]


class V2(TypedDict, total=False):
    tags: list[str]
    log: Annotated[list[str], operator.add]
    n: Annotated[int, operator.add]


def upgrade_v1(v: dict[str, Any]) -> dict[str, Any]:
    """tag -> tags, the log in capitals, n in tenths."""
    v = dict(v)
    tag = v.pop("tag", None)
    v["tags"] = [tag] if tag else []
    v["log"] = [x.upper() for x in v.get("log", [])]
    v["n"] = v.get("n", 0) * 10
    return v


def _graph(version: int, calls: dict[str, int], *, asks: int = 1, fail_b: bool = False) -> StateGraph:
    """a and b side by side, then done; b asks ``asks`` questions (or fails once)."""
    g = StateGraph(V1, name="g") if version == 1 else StateGraph(V2, name="g", version=2, migrations={1: upgrade_v1})

    def a(s: dict[str, Any]) -> dict[str, Any]:
        calls["a"] = calls.get("a", 0) + 1
        return {"tag": "from-a", "log": ["a"], "n": 5} if version == 1 else {"tags": ["from-a"], "log": ["A"], "n": 50}

    def b(s: dict[str, Any]) -> dict[str, Any]:
        calls["b"] = calls.get("b", 0) + 1
        if fail_b and calls["b"] == 1:
            raise RuntimeError("b fails once")
        answers = [interrupt(f"question {i}") for i in range(asks)]
        return {"log": [f"b:{'/'.join(map(str, answers))}"]}

    g.add_node("a", a)
    g.add_node("b", b)
    g.add_node("done", lambda s: {"log": ["done"]})
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    g.add_edge(["a", "b"], "done")
    g.add_edge("done", END)
    return g


EXPECTED = {"tags": ["from-a"], "log": ["START", "A", "b:yes", "done"], "n": 10 + 50}


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
def test_a_paused_step_of_version_1_resumes_under_version_2_with_its_saved_result_migrated(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = store_url(kind, request, tmp_path)
    old_calls: dict[str, int] = {}
    old = _graph(1, old_calls).compile(checkpointer=url)
    out = old.invoke({"log": ["start"], "n": 1}, thread_id="t")
    assert out["__interrupt__"] and old_calls == {"a": 1, "b": 1}
    old.checkpointer.close()

    calls: dict[str, int] = {}
    new = _graph(2, calls).compile(checkpointer=url)
    assert new.get_state("t").values == {"tags": [], "log": ["START"], "n": 10}
    out = new.invoke(Command(resume="yes"), thread_id="t")
    assert out == EXPECTED
    assert calls == {"b": 1}  # a's saved result was used, not run again
    new.checkpointer.close()
    # the thread as another process reads it (rebuilt from the stored records)
    again = _graph(2, {}).compile(checkpointer=url)
    assert again.get_state("t").values == EXPECTED
    sources = [h.metadata.get("source") for h in again.get_state_history("t")]
    assert "update" in sources  # the checkpoint that carried the results into version 2
    again.checkpointer.close()


def test_a_failed_steps_sibling_result_is_migrated_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db?snapshot_every=50"  # states rebuilt from writes
    old = _graph(1, {}, fail_b=True).compile(checkpointer=url)
    with pytest.raises(RuntimeError, match="fails once"):
        old.invoke({"log": ["start"], "n": 1}, thread_id="t")
    old.checkpointer.close()
    calls: dict[str, int] = {"b": 1}  # b's first call was the failing one
    new = _graph(2, calls, fail_b=True).compile(checkpointer=url)
    out = new.invoke(None, thread_id="t")
    assert out["__interrupt__"] and calls == {"b": 2}
    assert new.invoke(Command(resume="yes"), thread_id="t") == EXPECTED
    assert calls == {"b": 3}  # b ran again on resume (its interrupt), a never did
    assert _graph(2, {}).compile(checkpointer=url).get_state("t").values == EXPECTED


def test_a_step_that_pauses_again_under_version_2_keeps_one_copy_of_the_old_result(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db?snapshot_every=50"
    old = _graph(1, {}, asks=2).compile(checkpointer=url)
    old.invoke({"log": ["start"], "n": 1}, thread_id="t")
    old.checkpointer.close()
    calls: dict[str, int] = {}
    new = _graph(2, calls, asks=2).compile(checkpointer=url)
    first = new.invoke(Command(resume="yes"), thread_id="t")
    assert [i.value for i in first["__interrupt__"]] == ["question 1"]
    out = new.invoke(Command(resume="sure"), thread_id="t")
    assert out == {"tags": ["from-a"], "log": ["START", "A", "b:yes/sure", "done"], "n": 60}
    assert "a" not in calls


def test_a_command_update_on_an_old_paused_thread_carries_the_migrated_result(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    old = _graph(1, {}).compile(checkpointer=url)
    old.invoke({"log": ["start"], "n": 1}, thread_id="t")
    old.checkpointer.close()
    calls: dict[str, int] = {}
    new = _graph(2, calls).compile(checkpointer=url)
    out = new.invoke(Command(resume="yes", update={"log": ["edited"]}), thread_id="t")
    assert out == {"tags": ["from-a"], "log": ["START", "edited", "A", "b:yes", "done"], "n": 60}
    assert "a" not in calls


def _append_star(old: list[str], new: list[str]) -> list[str]:
    return [*old, *new, "*"]


class W1(TypedDict, total=False):
    marks: Annotated[list[str], _append_star]


class W2(TypedDict, total=False):
    marks: Annotated[list[str], _append_star]


def test_a_result_no_update_can_carry_is_a_state_migration_error_and_a_copy_runs_the_step_afresh(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"

    def build(version: int, calls: dict[str, int]) -> StateGraph:
        g = (StateGraph(W1, name="w") if version == 1 else
             StateGraph(W2, name="w", version=2, migrations={1: lambda v: {"marks": [m.upper() for m in v.get("marks", [])]}}))

        def a(s: dict[str, Any]) -> dict[str, Any]:
            calls["a"] = calls.get("a", 0) + 1
            return {"marks": ["a"]}

        g.add_node("a", a)
        g.add_node("b", lambda s: {"marks": [str(interrupt("ok?"))]})
        g.add_edge(START, "a")
        g.add_edge(START, "b")
        g.add_edge("a", END)
        g.add_edge("b", END)
        return g

    old = build(1, {}).compile(checkpointer=url)
    old.invoke({}, thread_id="t")
    paused_at = old.get_state("t").checkpoint_id
    old.checkpointer.close()
    calls: dict[str, int] = {}
    new = build(2, calls).compile(checkpointer=url)
    with pytest.raises(StateMigrationError) as info:
        new.invoke(Command(resume="yes"), thread_id="t")
    msg = str(info.value)
    for part in ("thread 't'", repr(paused_at), "node 'a'", "key 'marks'", "state version 1", "version 2",
                 "as_node='__copy__'", "(store: SqliteCheckpointer("):
        assert part in msg, part
    assert (info.value.thread_id, info.value.checkpoint_id) == ("t", paused_at)
    assert (info.value.stored_version, info.value.graph_version) == (1, 2)
    assert "a" not in calls and new.get_state("t").checkpoint_id == paused_at  # nothing written
    # the way out the message gives: the step afresh from a copy (a runs again, under version 2)
    new.update_state("t", None, as_node="__copy__")
    assert new.invoke(None, thread_id="t")["__interrupt__"]  # b asks again
    out = new.invoke(Command(resume="yes"), thread_id="t")
    assert calls == {"a": 1} and sorted(out["marks"]) == sorted(["a", "*", "yes", "*"])


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
def test_a_checkpoint_of_a_newer_state_version_names_the_store_and_the_thread_on_every_store(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = store_url(kind, request, tmp_path)
    newer = _graph(2, {}).compile(checkpointer=url)
    newer.invoke({"log": ["start"], "n": 1}, thread_id="t-new")  # pauses at b's question
    newer.checkpointer.close()
    older = _graph(1, {}).compile(checkpointer=url)
    for call in (lambda: older.get_state("t-new"), lambda: older.invoke(Command(resume="x"), thread_id="t-new")):
        with pytest.raises(StateMigrationError) as info:
            call()
        msg = str(info.value)
        assert "thread 't-new'" in msg and repr(older.checkpointer) in msg and "newer than this graph's version 1" in msg
        assert "agentgraph-test-pw" not in msg  # the store is named without its password
    older.checkpointer.close()


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_ainvoke_resumes_an_old_version_step_without_the_sync_driver_on_the_loop(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    import asyncio
    import threading

    url = store_url(kind, request, tmp_path)
    old = _graph(1, {}, fail_b=True).compile(checkpointer=url)
    with pytest.raises(RuntimeError, match="fails once"):
        old.invoke({"log": ["start"], "n": 1}, thread_id="t")
    old.checkpointer.close()
    calls: dict[str, int] = {"b": 1}
    new = _graph(2, calls, fail_b=True).compile(checkpointer=url)
    store: Any = new.checkpointer
    on_loop: list[str] = []
    drive = store._drive
    loop_thread: list[int] = []

    def spy(op: Any, args: Any, action: str, thread_id: Any) -> Any:
        if loop_thread and threading.get_ident() == loop_thread[0]:
            on_loop.append(action)
        return drive(op, args, action, thread_id)

    store._drive = spy

    async def go() -> Any:
        loop_thread.append(threading.get_ident())
        first = await new.ainvoke(None, thread_id="t")
        assert first["__interrupt__"]
        return await new.ainvoke(Command(resume="yes"), thread_id="t")

    assert asyncio.run(go()) == EXPECTED
    assert on_loop == [], f"the sync driver ran on the event loop: {on_loop}"
    assert "a" not in calls
    store.close()
