"""A graph's JSON export (``to_json``/``from_json``) keeps the state's version and names its
migrations: the rebuilt graph loads checkpoints of older versions upgraded (a real SQLite file
written by the version-1 graph); a migration that cannot be found is a StateMigrationError naming
the versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypedDict

import pytest

from agentgraph_nb import END, START, StateGraph
from agentgraph_nb.errors import GraphValidationError, StateMigrationError


class V1(TypedDict, total=False):
    tag: str
    out: str


class V2(TypedDict, total=False):
    tags: list[str]
    out: str


def upgrade_v1(values: dict[str, Any]) -> dict[str, Any]:
    v = dict(values)
    v["tags"] = [v.pop("tag")] if "tag" in v else []
    return v


def show(s: dict[str, Any]) -> dict[str, Any]:
    return {"out": ",".join(s.get("tags", []))}


def keep(s: dict[str, Any]) -> dict[str, Any]:
    return {"out": s["tag"]}


def _v1() -> StateGraph:
    g = StateGraph(V1, name="tagger")
    g.add_node("show", keep)
    g.add_edge(START, "show")
    g.add_edge("show", END)
    return g


def _v2(migration: Any = upgrade_v1) -> StateGraph:
    g = StateGraph(V2, name="tagger", version=2, migrations={1: migration})
    g.add_node("show", show)
    g.add_edge(START, "show")
    g.add_edge("show", END)
    return g


def _old_thread(tmp_path: Path) -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp_path}/runs.db"
    app = _v1().compile(checkpointer=url)
    app.invoke({"tag": "red"}, thread_id="t")
    app.checkpointer.close()
    return url


def test_the_export_carries_the_version_and_the_migrations_and_the_rebuilt_graph_upgrades(tmp_path: Path) -> None:
    data = _v2().compile(checkpointer=None).to_json()
    assert data["state_version"] == 2
    assert data["migrations"] == [{"from": 1, "name": "upgrade_v1", "target": f"{__name__}:upgrade_v1"}]
    text = json.dumps(data)  # the export is JSON
    for i, g in enumerate((
        StateGraph.from_json(text, schema=V2, namespace={"show": show, "upgrade_v1": upgrade_v1}),
        StateGraph.from_json(text, schema=V2, namespace={"show": show}, allow_modules=[__name__]),
    )):
        assert g.version == 2 and g.migrations == {1: upgrade_v1}
        app = g.compile(checkpointer=_old_thread(tmp_path / str(i)))
        assert app.get_state("t").values == {"tags": ["red"], "out": "red"}
        app.update_state("t", {"tags": ["red", "blue"]})  # a new checkpoint of version 2 on top
        assert app.get_state("t").values["tags"] == ["red", "blue"]
        app.checkpointer.close()


def test_a_graph_at_version_1_exports_as_before() -> None:
    data = _v1().to_json()
    assert "state_version" not in data and "migrations" not in data
    g = StateGraph.from_json(data, schema=V1, namespace={"show": keep})
    assert g.version == 1 and g.migrations == {}


def test_a_migration_the_rebuilt_graph_cannot_find_names_the_versions(tmp_path: Path) -> None:
    url = _old_thread(tmp_path)
    data = _v2(lambda v: {"tags": [v["tag"]], "out": v.get("out", "")}).to_json()
    with pytest.raises(StateMigrationError, match=r"migration from state version 1 to 2 of graph 'tagger'") as info:
        StateGraph.from_json(data, schema=V2, namespace={"show": show})
    assert "migrations={1: upgrade_v1}" in str(info.value)
    assert info.value.stored_version == 1 and info.value.graph_version == 2
    # given explicitly, it is used
    g = StateGraph.from_json(data, schema=V2, namespace={"show": show}, migrations={1: upgrade_v1})
    app = g.compile(checkpointer=url)
    assert app.get_state("t").values["tags"] == ["red"]
    app.checkpointer.close()
    # a file that drops the migration: the rebuilt graph is at version 2 and says which step is missing
    del data["migrations"]
    app = StateGraph.from_json(data, schema=V2, namespace={"show": show}).compile(checkpointer=url)
    with pytest.raises(StateMigrationError, match="no migration from version 1 to 2"):
        app.get_state("t")
    app.checkpointer.close()


@pytest.mark.parametrize(("version", "migrations", "match"), [
    ("2", [], "state_version '2', not an int >= 1"),
    (0, [], "state_version 0"),
    (2, [{"from": 2, "name": "upgrade_v1", "target": f"{__name__}:upgrade_v1"}], "migration from version 2"),
])
def test_a_damaged_version_in_the_file_is_a_graph_validation_error(version: Any, migrations: Any, match: str) -> None:
    data = _v1().to_json()
    data["state_version"], data["migrations"] = version, migrations
    with pytest.raises(GraphValidationError, match=match):
        StateGraph.from_json(data, schema=V2, namespace={"show": show, "upgrade_v1": upgrade_v1})
