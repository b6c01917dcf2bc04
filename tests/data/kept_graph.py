"""The graph and state of ``tests/data/checkpoints_v1.db``: a SQLite store written by agentgraph_nb
as of commit 0833025 (state version 1, before compression, encryption and migrations existed),
kept so that tests prove later versions still read it (tests/test_kept_checkpoints.py).

Never change the classes' names, modules or fields, nor the values below: the file stores them.
To write the file again (only if its format is meant to change, which must not happen silently)::

    PYTHONPATH=<a checkout of that commit> python -c "from tests.data.kept_graph import write; write()"
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import operator
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

FILE = Path(__file__).with_name("checkpoints_v1.db")


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Doc:
    id: uuid.UUID
    title: str
    tags: set[str]
    when: dt.datetime
    color: Color = Color.RED
    score: decimal.Decimal = decimal.Decimal("0.5")
    shape: tuple[int, int] = (1, 2)
    notes: list[str] = field(default_factory=list)


class KeptState(TypedDict, total=False):
    docs: Annotated[list[Doc], operator.add]
    seen: set[str]
    title: str
    answer: Any
    log: Annotated[list[str], operator.add]


T0 = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.timezone.utc)


def doc(i: int) -> Doc:
    return Doc(
        id=uuid.UUID(int=i),
        title=f"doc {i}",
        tags={f"t{i}", "all"},
        when=T0 + dt.timedelta(minutes=i),
        color=Color.BLUE if i % 2 else Color.RED,
        score=decimal.Decimal(i) / 4,
        shape=(i, i + 1),
        notes=[f"note {i}"],
    )


def build(fail_b: list[int] | None = None, schema: Any = KeptState, **graph_kw: Any) -> Any:
    """fetch and enrich in parallel (enrich fails while ``fail_b`` holds a count), then review
    asks a question (an interrupt). ``schema`` and ``graph_kw`` (version, migrations): a later
    version of the same graph."""
    from agentgraph_nb import END, START, StateGraph, interrupt

    def fetch(s: dict[str, Any]) -> dict[str, Any]:
        return {"docs": [doc(1), doc(2)], "log": ["fetch"]}

    def enrich(s: dict[str, Any]) -> dict[str, Any]:
        if fail_b and fail_b[0] > 0:
            fail_b[0] -= 1
            raise RuntimeError("enrich fails once")
        return {"seen": {"a", "b"}, "log": ["enrich"]}

    def review(s: dict[str, Any]) -> dict[str, Any]:
        ok = interrupt({"question": "publish?", "count": len(s["docs"])})
        return {"answer": ok, "docs": [doc(3)], "log": ["review"]}

    g = StateGraph(schema, name="kept", **graph_kw)
    g.add_node("fetch", fetch)
    g.add_node("enrich", enrich)
    g.add_node("review", review)
    g.add_edge(START, "fetch")
    g.add_edge(START, "enrich")
    g.add_edge(["fetch", "enrich"], "review")
    g.add_edge("review", END)
    return g


def write() -> None:
    """Write the file: thread "paused" stops at the interrupt, after a failed step whose other
    node's result is a pending write; thread "done" runs to the end."""
    from agentgraph_nb import Command, SqliteCheckpointer

    FILE.unlink(missing_ok=True)
    store = SqliteCheckpointer(FILE, snapshot_every=2)
    app = build([1]).compile(checkpointer=store)
    try:
        app.invoke({"title": "kept", "docs": [doc(0)], "log": []}, thread_id="paused")
    except RuntimeError:
        pass
    app.invoke(None, thread_id="paused")
    done = build().compile(checkpointer=store)
    done.invoke({"title": "kept", "docs": [doc(0)], "log": []}, thread_id="done")
    done.invoke(Command(resume=True), thread_id="done")
    store.close()
    import sqlite3

    with sqlite3.connect(FILE) as conn:  # one file, no WAL beside it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
