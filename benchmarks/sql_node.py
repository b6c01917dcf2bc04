"""The SQL nodes against bare SQLAlchemy on the same SQLite file.

    python -m benchmarks.sql_node             # about 10 s

Per call: a parameterized SELECT by hand (``engine.connect()``, ``execute``, rows as dicts: the
floor) vs ``sql_query`` called directly; an INSERT in a transaction by hand (``engine.begin()``)
vs ``sql_execute`` (on the file, where the commit's disk flush makes the floor noisy, and on an
in-memory database). Target: each node adds at most 50 µs to the bare call.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

from agentgraph_nb.nodes import sql_execute, sql_query
from benchmarks._nodes_timing import paired

TARGET_US = 50.0


def main() -> int:
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite:///{tmp / 'bench.db'}"
    setup = sql_execute(
        ["CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, city TEXT)",
         "INSERT INTO users (name, city) SELECT 'u' || value, CASE value % 3 WHEN 0 THEN 'Oslo' ELSE 'Rome' END "
         "FROM json_each('[1,2,3,4,5,6,7,8,9,10,11,12]')"],
        url=url,
    )
    setup({})
    query = sql_query("SELECT name, city FROM users WHERE city = :city", url=url, into="rows")
    insert = sql_execute("INSERT INTO log (city, n) VALUES (:city, :n)", url=url)
    sql_execute("CREATE TABLE log (city TEXT, n INTEGER)", url=url)({})
    engine = query.engine()  # the same pooled engine the nodes use: the comparison is the node's own cost
    select = sa.text("SELECT name, city FROM users WHERE city = :city")
    ins = sa.text("INSERT INTO log (city, n) VALUES (:city, :n)")
    state = {"city": "Oslo", "n": 1}

    def bare_select() -> object:
        with engine.connect() as conn:
            return {"rows": [dict(r) for r in conn.execute(select, {"city": state["city"]}).mappings()]}

    def bare_insert() -> None:
        with engine.begin() as conn:
            conn.execute(ins, [{"city": state["city"], "n": state["n"]}])

    # the same INSERT on an in-memory database: no disk flush, so the node's own cost shows
    mem_insert = sql_execute(["CREATE TABLE IF NOT EXISTS log (city TEXT, n INTEGER)"], url="sqlite://")
    mem_insert({})
    mem_node = sql_execute("INSERT INTO log (city, n) VALUES (:city, :n)", url="sqlite://")
    mem_engine = mem_node.engine()

    def bare_mem_insert() -> None:
        with mem_engine.begin() as conn:
            conn.execute(ins, [{"city": state["city"], "n": state["n"]}])

    assert bare_select() == query(state)
    ok = True
    print("SQL nodes vs bare SQLAlchemy on a SQLite file (same pooled engine); medians, µs per call")
    for label, bare, node, batch in (
        ("SELECT (4 rows): sql_query", bare_select, lambda: query(state), 100),
        ("INSERT in a transaction: sql_execute", bare_insert, lambda: insert(state), 20),
        ("same INSERT, in-memory SQLite", bare_mem_insert, lambda: mem_node(state), 100),
    ):
        t_bare, t_node, diff = paired(bare, node, batch=batch, rounds=41, warmup=20)
        added = diff * 1e6
        passed = added <= TARGET_US
        ok &= passed
        print(f"  {label:<38} bare {t_bare * 1e6:8.1f}  node {t_node * 1e6:8.1f}  paired difference {added:+6.1f}"
              f"  (target <= {TARGET_US:.0f}): {'PASS' if passed else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
