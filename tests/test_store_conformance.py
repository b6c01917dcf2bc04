"""The store conformance kit (agentgraph_nb.testing.store_conformance) on every store we ship:
in memory, SQLite, and real PostgreSQL and Redis servers (tests/_servers.py)."""

from __future__ import annotations

from typing import Any

import pytest

from agentgraph_nb.testing import STORE_SCENARIOS, store_conformance
from tests.conftest import store_url

STORES = ["memory", "sqlite", "postgres", "redis"]


@pytest.mark.parametrize("scenario", STORE_SCENARIOS)
@pytest.mark.parametrize("kind", STORES)
def test_store_conformance(kind: str, scenario: str, request: pytest.FixtureRequest, tmp_path: Any) -> None:
    url = store_url(kind, request, tmp_path)
    if kind == "memory":  # one object: a new MemoryCheckpointer would be another, empty store
        from agentgraph_nb import MemoryCheckpointer

        store: Any = MemoryCheckpointer()
    else:
        store = url
    assert store_conformance(store, only=[scenario]) == [scenario]


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
def test_store_conformance_with_compression_and_encryption(
    kind: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """Every scenario again, on stores whose serializer compresses and encrypts."""
    import os

    pytest.importorskip("zstandard")
    pytest.importorskip("cryptography")
    from agentgraph_nb.checkpoint.serde import Serializer
    from tests.test_at_rest import _store

    url = store_url(kind, request, tmp_path)
    keys = {"k2": os.urandom(32), "k1": os.urandom(32)}

    def factory() -> Any:
        return _store(kind, url, Serializer(compression="zstd", keys=keys, active_key="k2"))

    assert store_conformance(factory) == list(STORE_SCENARIOS)


def test_the_kit_takes_a_factory_and_names_unknown_scenarios(tmp_path: Any) -> None:
    from agentgraph_nb import SqliteCheckpointer

    ran = store_conformance(lambda: SqliteCheckpointer(tmp_path / "f.db"), only=["put_get", "conflicts"])
    assert ran == ["put_get", "conflicts"]
    with pytest.raises(ValueError, match="unknown scenario 'conflict'.*conflicts"):
        store_conformance("memory", only=["conflict"])


def test_the_kit_catches_a_store_that_does_not_check_conflicts() -> None:
    from agentgraph_nb import MemoryCheckpointer

    class Careless(MemoryCheckpointer):
        def put(self, record: Any, *, expected: Any = None) -> None:  # ignores expected=
            super().put(record)

    with pytest.raises(AssertionError, match="scenario 'conflicts'.*was stored"):
        store_conformance(Careless(), only=["conflicts"])


@pytest.mark.parametrize("kind", STORES)
async def test_a_stores_retention_applies_after_each_run(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> None:
    from agentgraph_nb import END, START, MemoryCheckpointer, Retention, StateGraph
    from agentgraph_nb.checkpoint import open_checkpointer

    url = store_url(kind, request, tmp_path)
    store = MemoryCheckpointer() if kind == "memory" else open_checkpointer(url)
    store.retention = Retention(keep_last=3)
    store.snapshot_every = 2

    g = StateGraph(dict, name="kept")
    g.add_node("inc", lambda s: {"x": s.get("x", 0) + 1})
    g.add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: "inc" if s["x"] % 10 else END, ["inc", END])
    app = g.compile(checkpointer=store)
    assert app.invoke({"x": 0}, thread_id="t")["x"] == 10
    hist = app.get_state_history("t")
    assert [h.step for h in hist][:3] == [10, 9, 8] and len(hist) <= 4  # the newest 3 and their snapshot
    assert all(app.get_state("t", h.checkpoint_id).values["x"] == h.step for h in hist)
    assert (await app.ainvoke(None, thread_id="t"))["x"] == 10
    assert (await app.ainvoke({"x": 0}, thread_id="t"))["x"] == 10  # 11 more checkpoints, pruned again
    hist = app.get_state_history("t")
    assert len(hist) <= 4 and hist[0].values["x"] == 10
