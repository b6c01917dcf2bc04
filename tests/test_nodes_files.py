"""File nodes on a real directory tree: reads, atomic writes, and no way out of base_dir."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from agentgraph_nb import START, StateGraph
from agentgraph_nb.errors import AgentGraphError, NodeResourceError, NodeValueError, PathEscapeError
from agentgraph_nb.nodes import (
    delete_file,
    glob_files,
    list_dir,
    read_csv,
    read_json,
    read_parquet,
    read_text,
    write_csv,
    write_json,
    write_parquet,
    write_text,
)


def run(node: Any, state: dict[str, Any], name: str = "f") -> dict[str, Any]:
    app = StateGraph(dict).add_node(name, node).add_edge(START, name).compile(checkpointer=None)
    return app.invoke(state)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    b = tmp_path / "base"
    (b / "cities").mkdir(parents=True)
    (b / "cities" / "oslo.json").write_text('{"pop": 700000}')
    (b / "notes.txt").write_text("hello")
    (tmp_path / "secret.txt").write_text("top secret")
    return b


def test_read_and_write_text_json_csv(base: Path) -> None:
    assert run(read_text("notes.txt", base_dir=base, into="t"), {})["t"] == "hello"
    assert run(read_json("cities/{city}.json", base_dir=base, into="c"), {"city": "oslo"})["c"] == {"pop": 700000}
    out = run(write_json("out/{city}.json", base_dir=base, key="report", into="written"), {"city": "rome", "report": {"ok": True}})
    assert out["written"] == os.path.join("out", "rome.json")
    assert json.loads((base / "out" / "rome.json").read_text()) == {"ok": True}
    rows = [{"a": "1", "b": "x"}, {"a": "2", "b": "y"}]
    run(write_csv("t.csv", base_dir=base, key="rows"), {"rows": rows})
    assert run(read_csv("t.csv", base_dir=base, into="r"), {})["r"] == rows
    run(write_text("log.txt", base_dir=base, key="line", append=True), {"line": "a\n"})
    run(write_text("log.txt", base_dir=base, key="line", append=True), {"line": "b\n"})
    assert (base / "log.txt").read_text() == "a\nb\n"


@pytest.mark.parametrize("path", ["../secret.txt", "cities/../../secret.txt", "/etc/passwd", "~/x", "{p}"])
def test_paths_that_leave_base_dir_are_refused(base: Path, path: str) -> None:
    node = read_text(path, base_dir=base, into="t")
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run(node, {"p": "../secret.txt"}, name="reader")
    err = ei.value
    assert isinstance(err, PathEscapeError) and isinstance(err, PermissionError)
    assert err.node == "reader" and "base_dir" in str(err) and "'reader'" in str(err)


def test_symlink_out_is_refused_and_write_through_it_writes_nothing(base: Path, tmp_path: Path) -> None:
    (base / "link").symlink_to(tmp_path)
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run(read_text("link/secret.txt", base_dir=base, into="t"), {})
    assert isinstance(ei.value, PathEscapeError) and "symlink" in str(ei.value)
    with pytest.raises(AgentGraphError):  # the node's own error
        run(write_text("link/evil.txt", base_dir=base, key="x"), {"x": "pwned"})
    assert not (tmp_path / "evil.txt").exists()
    # globbing and listing leave the link's outside targets out
    assert "link/secret.txt" not in run(glob_files("**/*.txt", base_dir=base, into="g"), {})["g"]
    assert [e["name"] for e in run(list_dir(".", base_dir=base, into="l"), {})["l"]] == ["cities", "notes.txt"]


def test_glob_and_list_dir(base: Path) -> None:
    (base / "cities" / "rome.json").write_text("{}")
    assert run(glob_files("cities/*.json", base_dir=base, into="g"), {})["g"] == ["cities/oslo.json", "cities/rome.json"]
    assert run(glob_files("**/*.json", base_dir=base, into="g"), {})["g"] == ["cities/oslo.json", "cities/rome.json"]
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run(glob_files("../*", base_dir=base, into="g"), {})
    assert isinstance(ei.value, PathEscapeError)
    listing = run(list_dir("cities", base_dir=base, into="l"), {})["l"]
    assert listing == [{"name": "oslo.json", "is_dir": False, "size": 15}, {"name": "rome.json", "is_dir": False, "size": 2}]


def test_missing_file_and_malformed_content_are_typed(base: Path) -> None:
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run(read_json("cities/{city}.json", base_dir=base, into="c"), {"city": "paris"}, name="load")
    err = ei.value
    assert isinstance(err, NodeResourceError) and err.node == "load" and "paris.json" in str(err)
    (base / "bad.json").write_text('{"a": ')
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run(read_json("bad.json", base_dir=base, into="c"), {})
    assert isinstance(ei.value, NodeValueError) and "malformed JSON at line 1" in str(ei.value)
    (base / "bad.csv").write_text("a,b\n1,2,3\n")
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run(read_csv("bad.csv", base_dir=base, into="c"), {})
    assert "more fields" in str(ei.value)
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run(write_json("x.json", base_dir=base, key="v"), {"v": {1, 2}})
    assert isinstance(ei.value, NodeValueError) and not (base / "x.json").exists()


def test_failed_write_leaves_the_old_file_whole(base: Path) -> None:
    (base / "keep.json").write_text('{"old": 1}')
    with pytest.raises(AgentGraphError):  # the node's own error
        run(write_json("keep.json", base_dir=base, key="v"), {"v": {"new": object()}})
    assert (base / "keep.json").read_text() == '{"old": 1}'
    assert [p.name for p in base.iterdir() if p.name.endswith(".tmp")] == []


def test_delete(base: Path) -> None:
    assert run(delete_file("notes.txt", base_dir=base, into="gone"), {})["gone"] is True
    assert run(delete_file("notes.txt", base_dir=base, missing_ok=True, into="gone"), {})["gone"] is False
    with pytest.raises(AgentGraphError):  # the node's own error
        run(delete_file("../secret.txt", base_dir=base), {})
    assert (base.parent / "secret.txt").exists()


def test_parquet_round_trip(base: Path) -> None:
    pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    rows = [{"city": "oslo", "n": 1}, {"city": "rome", "n": 2}]
    run(write_parquet("t.parquet", base_dir=base, key="rows"), {"rows": rows})
    assert run(read_parquet("t.parquet", base_dir=base, into="r"), {})["r"] == rows
    df = run(read_parquet("t.parquet", base_dir=base, into="r", as_frame=True), {})["r"]
    assert isinstance(df, pd.DataFrame) and df["n"].tolist() == [1, 2]
