"""The SQL nodes against bare SQLAlchemy on the same SQLite file.

    python -m benchmarks.sql_node             # about 10 s

Per call: a parameterized SELECT by hand (``engine.connect()``, ``execute``, rows as dicts: the
floor) vs ``sql_query`` called directly; an INSERT in a transaction by hand (``engine.begin()``)
vs ``sql_execute``. Target: each node adds at most 50 µs to the bare call.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

from agentgraph_nb.nodes import sql_execute, sql_query
from benchmarks._nodes_timing import interleaved, report

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

    assert bare_select() == query(state)
    sel = interleaved({"bare SQLAlchemy SELECT": bare_select, "sql_query node": lambda: query(state)})
    wr = interleaved({"bare SQLAlchemy INSERT (engine.begin)": bare_insert, "sql_execute node": lambda: insert(state)},
                     batch=50)
    ok = True
    for title, times, base, node in (
        ("SELECT (4 rows) on SQLite", sel, "bare SQLAlchemy SELECT", "sql_query node"),
        ("INSERT in a transaction on SQLite", wr, "bare SQLAlchemy INSERT (engine.begin)", "sql_execute node"),
    ):
        for line in report(title, times, base, TARGET_US):
            print(line)
        added = (times[node] - times[base]) * 1e6
        passed = added <= TARGET_US
        ok &= passed
        print(f"{node} overhead: {added:+.1f} µs per call (target <= {TARGET_US:.0f} µs): {'PASS' if passed else 'MISS'}\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
