"""The SQL nodes on a real SQLite database file (and SQLAlchemy's asyncio extension)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")

from agentgraph_nb import START, StateGraph
from agentgraph_nb.errors import AgentGraphError, NodeValueError, SqlError
from agentgraph_nb.nodes import sql_execute, sql_query


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "app.db"
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, city TEXT);
        INSERT INTO users (name, city) VALUES ('ada', 'Oslo'), ('bob', 'Rome'), ('cy', 'Oslo');
        """
    )
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def names(url: str) -> list[str]:
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return [r[0] for r in con.execute("SELECT name FROM users ORDER BY id")]
    finally:
        con.close()


def run(node: Any, state: dict[str, Any], name: str = "q") -> dict[str, Any]:
    app = StateGraph(dict).add_node(name, node).add_edge(START, name).compile(checkpointer=None)
    return app.invoke(state)


def test_query_binds_state_values_by_parameter_name(db: str) -> None:
    node = sql_query("SELECT name FROM users WHERE city = :city ORDER BY id", url=db, into="users")
    assert run(node, {"city": "Oslo"})["users"] == [{"name": "ada"}, {"name": "cy"}]
    one = sql_query("SELECT id, name FROM users WHERE name = :who", url=db, params={"who": "{user.name}"}, first=True, into="u")
    assert run(one, {"user": {"name": "bob"}})["u"] == {"id": 2, "name": "bob"}
    assert run(one, {"user": {"name": "nobody"}})["u"] is None
    fn = sql_query("SELECT count(*) AS n FROM users WHERE city = :c", url=db, params=lambda s: {"c": s["place"]}, first=True, into=None)
    assert run(fn, {"place": "Oslo"}) == {"place": "Oslo", "n": 2}
    row = sql_query("SELECT name AS who, city FROM users WHERE id = :id", url=db, into=None)
    assert run(row, {"id": 3}) == {"id": 3, "who": "cy", "city": "Oslo"}
    assert run(row, {"id": 99}) == {"id": 99}


def test_sql_injection_attempts_stay_plain_values(db: str) -> None:
    q = sql_query("SELECT name FROM users WHERE name = :name", url=db, into="rows")
    assert run(q, {"name": "x' OR '1'='1"})["rows"] == []
    assert run(q, {"name": "ada' --"})["rows"] == []
    evil = "eve'); DROP TABLE users; --"
    ins = sql_execute("INSERT INTO users (name, city) VALUES (:name, :city)", url=db, into="n")
    assert run(ins, {"name": evil, "city": "Nice"})["n"] == 1
    assert names(db) == ["ada", "bob", "cy", evil]  # the table is there, the text stored as text


def test_failed_statement_rolls_back_the_whole_call(db: str) -> None:
    node = sql_execute(
        ["INSERT INTO users (name, city) VALUES (:name, :city)",
         "INSERT INTO users (name, city) VALUES ('ada', 'dup')"],  # UNIQUE violation
        url=db,
    )
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run(node, {"name": "dan", "city": "Bern"}, name="save")
    err = ei.value
    assert isinstance(err, SqlError)
    assert err.node == "save" and err.database == db and "UNIQUE" in str(err) and "rolled back" in str(err)
    assert names(db) == ["ada", "bob", "cy"]  # 'dan' was not kept


def test_many_rows_in_one_transaction(db: str) -> None:
    node = sql_execute("INSERT INTO users (name, city) VALUES (:name, :city)", url=db, many="people", into="n")
    out = run(node, {"people": [{"name": "d", "city": "X"}, {"name": "e", "city": "Y"}]})
    assert out["n"] == 2 and names(db)[-2:] == ["d", "e"]
    with pytest.raises(AgentGraphError):  # the node's own error
        run(node, {"people": [{"name": "f", "city": "X"}, {"name": "ada", "city": "Y"}]})
    assert "f" not in names(db)
    # a parameter a row lacks comes from the state, never from another row
    mixed = sql_execute("INSERT INTO users (name, city) VALUES (:name, :city)", url=db, many="people")
    run(mixed, {"city": "Bern", "people": [{"name": "g", "city": "Nice"}, {"name": "h"}]})
    con = sqlite3.connect(db.removeprefix("sqlite:///"))
    assert con.execute("SELECT name, city FROM users WHERE name IN ('g', 'h') ORDER BY name").fetchall() == [("g", "Nice"), ("h", "Bern")]
    con.close()
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run(node, {"people": "nope"})
    assert isinstance(ei.value, NodeValueError) and "list of dicts" in str(ei.value)


def test_missing_parameter_names_node_and_key(db: str) -> None:
    node = sql_query("SELECT * FROM users WHERE city = :city", url=db)
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run(node, {"town": "Oslo"}, name="find")
    err = ei.value
    assert isinstance(err, NodeValueError) and err.node == "find" and err.key == "city"


def test_bad_sql_and_unreachable_database_are_sql_errors_with_password_hidden(tmp_path: Path, db: str) -> None:
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run(sql_query("SELEC name FROM users", url=db), {}, name="typo")
    assert isinstance(ei.value, SqlError) and "syntax error" in str(ei.value)
    missing = f"sqlite:///{tmp_path}/no/such/dir/x.db"
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run(sql_query("SELECT 1", url=missing), {}, name="nodb")
    err = ei.value
    assert isinstance(err, SqlError) and err.node == "nodb" and "unable to open" in str(err)
    node = sql_query("SELECT 1", url="postgresql://user:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in node.database and "***" in node.database
    with pytest.raises(ValueError, match="not a database URL"):
        sql_query("SELECT 1", url="not a url")
    with pytest.raises(ValueError, match="one statement"):
        sql_query(["SELECT 1", "SELECT 2"], url=db)  # type: ignore[arg-type]


def test_rows_as_a_frame(db: str) -> None:
    pd = pytest.importorskip("pandas")
    node = sql_query("SELECT name, city FROM users ORDER BY id", url=db, as_frame=True, into="df")
    df = run(node, {})["df"]
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["name", "city"] and len(df) == 3


def test_engine_is_pooled_per_url_and_in_memory_is_shared(db: str) -> None:
    a = sql_query("SELECT 1 AS x", url=db)
    b = sql_execute("SELECT 1", url=db)
    assert a.engine() is b.engine()
    mk = sql_execute(["CREATE TABLE IF NOT EXISTS t (v INTEGER)", "INSERT INTO t VALUES (:v)"], url="sqlite://")
    mk({"v": 5})
    assert sql_query("SELECT v FROM t", url="sqlite://")({})["rows"][-1] == {"v": 5}
    a.close()
    assert a({}) == {"rows": [{"x": 1}]}  # reconnects


def test_async_query_and_rollback(db: str) -> None:
    pytest.importorskip("aiosqlite")
    q = sql_query("SELECT name FROM users WHERE city = :city ORDER BY id", url=db, aio=True)
    bad = sql_execute(["INSERT INTO users (name) VALUES (:name)", "INSERT INTO users (name) VALUES ('bob')"], url=db, aio=True)
    app = StateGraph(dict).add_node("q", q).add_edge(START, "q").compile(checkpointer=None)

    async def main() -> Any:
        out = await app.ainvoke({"city": "Rome"})
        with pytest.raises(SqlError):
            await bad({"name": "zed"})
        await q.aclose()  # type: ignore[attr-defined]
        return out

    assert asyncio.run(main())["rows"] == [{"name": "bob"}]
    assert "zed" not in names(db)


def test_sql_node_by_name_in_a_cell(db: str) -> None:
    from agentgraph_nb.notebook import _dsl

    ns = {"find": sql_query("SELECT name FROM users WHERE city = :city", url=db, into="found")}
    app = _dsl.build(_dsl.parse("START -> find -> END"), name="g", schema=dict, namespace=ns, builder_cls=StateGraph).compile(checkpointer=None)
    assert app.invoke({"city": "Rome"})["found"] == [{"name": "bob"}]


def test_a_process_with_async_sql_nodes_exits_quietly(db: str) -> None:
    pytest.importorskip("aiosqlite")
    import subprocess
    import sys

    code = (
        "import asyncio\n"
        "from agentgraph_nb.nodes import sql_query\n"
        f"q = sql_query('SELECT name FROM users', url={db!r}, aio=True)\n"
        "print(len(asyncio.run(q({}))['rows']))\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root)
    assert r.returncode == 0 and r.stdout.strip() == "3" and r.stderr == "", r.stderr
