"""A SQLite store written by agentgraph_nb as of commit 0833025 (tests/data/checkpoints_v1.db, see
tests/data/kept_graph.py) still loads, resumes and shows its history; and state migrations
(StateGraph(State, version=N, migrations={...})) upgrade its checkpoints on load."""

from __future__ import annotations

import operator
import shutil
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import Command, SqliteCheckpointer, StateMigrationError
from tests.data.kept_graph import FILE, Doc, build, doc


@pytest.fixture
def kept(tmp_path: Path) -> Path:
    """A copy of the kept file (resuming writes to it)."""
    path = tmp_path / "kept.db"
    shutil.copy(FILE, path)
    return path


def test_the_kept_file_still_loads_shows_its_history_and_resumes(kept: Path) -> None:
    store = SqliteCheckpointer(kept)
    app = build().compile(checkpointer=store)
    assert sorted(store.list_threads()) == ["done", "paused"]

    paused = app.get_state("paused")
    assert paused.values["docs"] == [doc(0), doc(1), doc(2)]
    assert paused.values["seen"] == {"a", "b"} and paused.values["title"] == "kept"
    d = paused.values["docs"][1]  # every rich type came back as itself
    assert isinstance(d, Doc) and d.tags == {"t1", "all"} and d.when.tzinfo is not None and d.shape == (1, 2)
    assert paused.next == ("review",)
    assert paused.interrupts[0].value == {"question": "publish?", "count": 3}
    assert [h.step for h in app.get_state_history("paused")] == [1, 0]

    done = app.get_state("done")
    assert done.values["answer"] is True and done.values["log"] == ["fetch", "enrich", "review"]
    assert done.values["docs"] == [doc(0), doc(1), doc(2), doc(3)] and done.next == ()
    assert len(app.get_state_history("done")) == 3

    out = app.invoke(Command(resume=False), thread_id="paused")
    assert out["answer"] is False and out["docs"][-1] == doc(3)
    assert out["log"] == ["fetch", "enrich", "review"]
    store.close()


class KeptStateV2(TypedDict, total=False):
    """Version 2 of tests.data.kept_graph.KeptState: ``title`` is now ``name``, and ``count``
    keeps the number of documents."""

    docs: Annotated[list[Doc], operator.add]
    seen: set[str]
    name: str
    count: int
    answer: Any
    log: Annotated[list[str], operator.add]


calls: list[int] = []


def upgrade_v1(values: dict[str, Any]) -> dict[str, Any]:
    calls.append(1)
    values["name"] = values.pop("title", "")
    values["count"] = len(values.get("docs", []))
    return values


def test_checkpoints_of_version_1_load_upgraded_and_the_thread_goes_on_under_version_2(kept: Path) -> None:
    store = SqliteCheckpointer(kept)
    v2 = build(schema=KeptStateV2, version=2, migrations={1: upgrade_v1}).compile(checkpointer=store)

    paused = v2.get_state("paused")
    assert "title" not in paused.values and paused.values["name"] == "kept" and paused.values["count"] == 3
    history = v2.get_state_history("done")
    assert [h.values["name"] for h in history] == ["kept"] * 3
    assert [h.values["count"] for h in history] == [4, 3, 1]

    out = v2.invoke(Command(resume=True), thread_id="paused")  # resumes under version 2
    assert out["name"] == "kept" and out["answer"] is True and len(out["docs"]) == 4
    assert out["count"] == 3  # as upgraded; no node of this graph updates it
    newest = store.get("paused")
    assert newest is not None and newest.metadata["state_version"] == 2
    # the chain now mixes versions: version-1 checkpoints, then version-2 ones
    calls.clear()
    again = v2.get_state("paused")
    assert again.values == out and calls == [1]  # upgraded once, where the versions change
    assert [h.values.get("name") for h in v2.get_state_history("paused")] == ["kept"] * 3

    # a graph still at version 1 refuses the thread it can no longer read
    v1 = build().compile(checkpointer=store)
    with pytest.raises(StateMigrationError, match=r"thread 'paused'.*state version 2.*newer than this graph's version 1") as info:
        v1.get_state("paused")
    assert info.value.stored_version == 2 and info.value.graph_version == 1
    with pytest.raises(StateMigrationError, match="newer"):
        v1.invoke(None, thread_id="paused")
    assert v1.get_state("done").values["title"] == "kept"  # untouched threads still read
    store.close()


def test_a_missing_or_failing_migration_step_names_the_versions_and_the_thread(kept: Path) -> None:
    store = SqliteCheckpointer(kept)
    v3 = build(schema=KeptStateV2, version=3, migrations={2: lambda v: v}).compile(checkpointer=store)
    with pytest.raises(StateMigrationError, match=r"thread 'paused'.*holds state version 1.*version 3.*no migration from version 1 to 2") as info:
        v3.get_state("paused")
    assert (info.value.thread_id, info.value.stored_version, info.value.graph_version) == ("paused", 1, 3)
    with pytest.raises(StateMigrationError, match="no migration from version 1 to 2"):
        v3.invoke(Command(resume=True), thread_id="paused")

    def broken(values: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("title")

    bad = build(schema=KeptStateV2, version=2, migrations={1: broken}).compile(checkpointer=store)
    with pytest.raises(StateMigrationError, match=r"thread 'done'.*migration from state version 1 to 2 \(.*broken\) failed: KeyError"):
        bad.get_state("done")
    returns_none = build(schema=KeptStateV2, version=2, migrations={1: lambda v: None}).compile(checkpointer=store)
    with pytest.raises(StateMigrationError, match="returned NoneType, not the values as a dict"):
        returns_none.get_state_history("done")
    store.close()


@pytest.mark.parametrize(("kw", "match"), [
    ({"version": 0}, "version=0: the state version is an int >= 1"),
    ({"version": 2, "migrations": {2: lambda v: v}}, r"migrations=\{2: ...\}.*an int from 1 to 1"),
    ({"version": 2, "migrations": {1: "upgrade"}}, "migrations\\[1\\] is str, not a function"),
])
def test_bad_versions_and_migrations_are_graph_validation_errors(kw: dict[str, Any], match: str) -> None:
    from agentgraph_nb import GraphValidationError, StateGraph

    with pytest.raises(GraphValidationError, match=match):
        StateGraph(KeptStateV2, **kw)


def test_a_version_1_graph_writes_no_version_so_its_bytes_are_as_before(tmp_path: Path) -> None:
    from agentgraph_nb import MemoryCheckpointer

    store = MemoryCheckpointer()
    app = build().compile(checkpointer=store)
    app.invoke({"title": "x", "docs": [], "log": []}, thread_id="t")
    assert all("state_version" not in r.metadata for r in store.list("t"))
