"""The notebook front on every store: ``%%agentgraph --checkpointer postgresql://...`` (and
redis://), the Debugger and its history slider unchanged on SQLite, PostgreSQL and Redis (real
servers, tests/_servers.py), and ``inspect_store(url)`` (a DataFrame of the threads, the rows of
``agentgraph inspect``) on all four stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ipywidgets")
pd = pytest.importorskip("pandas")

from agentgraph_nb import MemoryCheckpointer, inspect_store  # noqa: E402
from agentgraph_nb.checkpoint import open_checkpointer  # noqa: E402
from tests.conftest import store_url  # noqa: E402
from tests.test_debugger import graph as debugger_graph  # noqa: E402
from tests.test_magics import Shell, shell  # noqa: E402, F401  # the fixture

KINDS = ["sqlite", "postgres", "redis"]


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_the_cell_magic_takes_a_network_store_url(
    kind: str, shell: Shell, request: pytest.FixtureRequest, tmp_path: Path  # noqa: F811
) -> None:
    url = store_url(kind, request, tmp_path)
    shell.run(
        f"""
        %%agentgraph research --state State --checkpointer {url} --run --thread t1
        START -> plan -> a, b
        a, b -> join -> END
        """.replace("{url}", url)
    )
    app = shell.ns["research"]
    assert type(app.checkpointer).__name__ == ("PostgresCheckpointer" if kind == "postgres" else "RedisCheckpointer")
    # another store object on the same URL (another kernel) sees the run
    other = open_checkpointer(url)
    assert other.list_threads() == ["t1"]
    assert sorted(app.get_state("t1").values["notes"]) == ["a", "b", "plan"]
    other.close()
    # a bad URL is the store's typed error, shown as the cell's error
    from agentgraph_nb.errors import GraphValidationError

    with pytest.raises(GraphValidationError, match="snapshot_every"):
        shell.run(f"""
        %%agentgraph broken --state State --checkpointer {url}&snapshot_every=lots
        START -> plan -> END
        """)


@pytest.mark.parametrize("kind", KINDS)
def test_the_debugger_and_its_history_slider_work_unchanged_on_every_store(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from agentgraph_nb.ui.debugger import Debugger

    url = store_url(kind, request, tmp_path)
    app = debugger_graph().builder.compile(checkpointer=url)
    dbg = Debugger(app, {"q": "x"}, thread_id="dbg")
    dbg.cont()
    end = dbg.state.checkpoint_id
    assert sorted(dbg.state.values["log"]) == ["a", "b", "plan", "write"]
    dbg.back_button.click()
    assert dbg.state.step == 2 and dbg.history_slider.value == dbg.state.checkpoint_id
    assert dbg.graphview.status["write"] == "pending"
    dbg.history_slider.value = end  # dragging the slider selects
    assert dbg.state.checkpoint_id == end and dbg.error is None
    dbg.select(dbg.history[-2].checkpoint_id or "")  # step 1, then a step: a branch
    dbg.step()
    labels = [label for label, _ in dbg.history_slider.options]
    assert labels[-1] == "step 2 \u00b7 branch 2" and len(dbg.history) == 5
    dbg.close()
    # the branch is in the store, for any other reader
    other = open_checkpointer(url)
    assert len(list(other.list("dbg"))) == 5
    other.close()


@pytest.mark.parametrize("kind", ["memory", *KINDS])
def test_inspect_store_shows_the_threads_as_a_dataframe(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from agentgraph_nb import Command, interrupt

    store: Any = MemoryCheckpointer() if kind == "memory" else store_url(kind, request, tmp_path)
    empty = inspect_store(store)
    assert list(empty.columns) == ["checkpoints", "step", "updated", "next", "interrupted", "bytes"]
    assert empty.empty

    app = debugger_graph().builder.compile(checkpointer=store)
    app.invoke({"q": "x"}, thread_id="done")

    def ask(s: dict[str, Any]) -> dict[str, Any]:
        return {"answer": interrupt("ok?")}

    asking = debugger_graph(write=ask).builder.compile(checkpointer=store)
    asking.invoke({"q": "y"}, thread_id="waiting")
    df = inspect_store(store)
    assert list(df.index) == ["done", "waiting"]
    assert df.loc["done", "checkpoints"] == 4 and df.loc["done", "step"] == 3
    assert df.loc["done", "next"] == [] and not df.loc["done", "interrupted"]
    assert df.loc["waiting", "next"] == ["write"] and df.loc["waiting", "interrupted"]
    assert str(df["updated"].dtype) == "datetime64[us, UTC]" or "UTC" in str(df["updated"].dtype)
    assert (df["updated"] <= pd.Timestamp.now(tz="UTC")).all()
    if kind == "memory":
        assert df["bytes"].isna().all()
    else:
        assert (df["bytes"] > 100).all()
    before = df.loc["waiting", "bytes"]
    asking.invoke(Command(resume="yes"), thread_id="waiting")
    df = inspect_store(store)
    assert not df.loc["waiting", "interrupted"] and df.loc["waiting", "next"] == []
    if kind != "memory":
        assert df.loc["waiting", "bytes"] > before  # measured per thread, as it grows
