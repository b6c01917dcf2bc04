"""A store opened by URL takes a serializer: ``compile(checkpointer=url, serializer=Serializer(...))``,
``open_checkpointer(url, serializer=...)`` and ``%%agentgraph --checkpointer URL --serializer NAME``,
on a real SQLite file and real PostgreSQL and Redis servers: the state is not readable in the stored
bytes, it reloads (and resumes) with the key, and not without it."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from agentgraph_nb import Command, SqliteCheckpointer
from agentgraph_nb.checkpoint import open_checkpointer
from agentgraph_nb.checkpoint.serde import Serializer
from agentgraph_nb.errors import CheckpointError, GraphValidationError
from tests.conftest import store_url
from tests.test_at_rest import KINDS, MARKER, _graph, _raw_bytes, _run

pytest.importorskip("zstandard")
pytest.importorskip("cryptography")

K1 = os.urandom(32)


def _ser() -> Serializer:
    return Serializer(compression="zstd", keys={"k1": K1}, active_key="k1", compression_threshold=64)


@pytest.mark.parametrize("kind", KINDS)
def test_compile_with_a_url_and_a_serializer_keeps_the_state_unreadable_and_reloads(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = store_url(kind, request, tmp_path)
    ser = _ser()
    app = _graph().compile(checkpointer=url, serializer=ser)
    assert app.checkpointer.serializer is ser
    _run(app, "t")
    raw = _raw_bytes(kind, url, app.checkpointer)
    assert raw and MARKER.encode() not in raw and b"a saw" not in raw
    app.checkpointer.close()
    # a fresh graph on the same URL with the key reads the history and resumes
    again = _graph().compile(checkpointer=url, serializer=_ser())
    assert any(h.values.get("log") for h in again.get_state_history("t"))
    out = again.invoke(Command(resume="yes"), thread_id="t")
    assert out["answer"] == "yes" and len(out["log"]) == 2
    again.checkpointer.close()
    # without the key: a CheckpointError naming the key id and the thread
    plain = _graph().compile(checkpointer=url)
    with pytest.raises(CheckpointError, match="'k1'") as info:
        plain.get_state("t")
    assert "'t'" in str(info.value)
    plain.checkpointer.close()


@pytest.mark.parametrize("kind", KINDS)
def test_open_checkpointer_passes_the_serializer_to_every_store(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = store_url(kind, request, tmp_path)
    ser = _ser()
    store = open_checkpointer(url, serializer=ser)
    try:
        assert store.serializer is ser
    finally:
        store.close()


def test_a_sqlite_path_object_takes_the_serializer(tmp_path: Path) -> None:
    ser = _ser()
    store = open_checkpointer(tmp_path / "x.db", serializer=ser)
    assert isinstance(store, SqliteCheckpointer) and store.serializer is ser
    store.close()


def test_a_serializer_where_none_can_go_is_a_clear_error(tmp_path: Path) -> None:
    ser = _ser()
    with pytest.raises(GraphValidationError, match="in-memory checkpointer"):
        _graph().compile(serializer=ser)  # the default store is memory
    with pytest.raises(GraphValidationError, match="in-memory checkpointer"):
        open_checkpointer("memory", serializer=ser)
    with pytest.raises(GraphValidationError, match="checkpointer=None"):
        _graph().compile(checkpointer=None, serializer=ser)
    store = SqliteCheckpointer(tmp_path / "own.db")
    with pytest.raises(GraphValidationError, match=r"SqliteCheckpointer\(\.\.\., serializer=\.\.\.\)"):
        _graph().compile(checkpointer=store, serializer=ser)
    # the store's own serializer given again is fine
    assert _graph().compile(checkpointer=store, serializer=store.serializer).checkpointer is store
    store.close()
    with pytest.raises(GraphValidationError, match="not a agentgraph_nb.checkpoint.Serializer"):
        _graph().compile(checkpointer=f"sqlite:///{tmp_path}/y.db", serializer={"k1": K1})


@pytest.mark.parametrize("kind", KINDS)
def test_the_magic_takes_a_serializer_by_name(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    pytest.importorskip("IPython")
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    url = store_url(kind, request, tmp_path)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "agentgraph_nb")
    ip.user_ns.clear()
    ip.init_user_ns()
    ip.run_line_magic("config", "AgentGraphMagics.record = False")
    ip.run_line_magic("config", "AgentGraphMagics.display = False")

    def run(code: str) -> Any:
        res = ip.run_cell(textwrap.dedent(code), store_history=False)
        res.raise_error()
        return res.result

    ip.user_ns.update(ser=_ser(), inputs={"note": MARKER * 2})
    run("""
        from typing import TypedDict
        class S(TypedDict, total=False):
            note: str
            out: str
        def echo(s): return {"out": "seen " + s["note"]}
        """)
    run(f"%%agentgraph app --state S --checkpointer {url} --serializer ser -t t1 -i inputs --run\nSTART -> echo -> END\n")
    app = ip.user_ns["app"]
    assert app.checkpointer.serializer is ip.user_ns["ser"]
    assert app.get_state("t1").values["out"] == "seen " + MARKER * 2
    raw = _raw_bytes(kind, url, app.checkpointer)
    assert raw and MARKER.encode() not in raw
    with pytest.raises(UsageError, match="'sre' is not defined.*Did you mean 'ser'"):
        run(f"%%agentgraph app2 --state S --checkpointer {url} --serializer sre\nSTART -> echo -> END\n")
