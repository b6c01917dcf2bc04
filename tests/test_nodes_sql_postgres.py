"""The SQL nodes against a real PostgreSQL server (tests/_servers.py), sync and asyncio (psycopg 3)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("psycopg")

import psycopg

from agentgraph_nb import START, StateGraph
from agentgraph_nb.errors import SqlError
from agentgraph_nb.nodes import sql_execute, sql_query

_n = itertools.count()


@pytest.fixture
def pg(postgres_server: Any) -> Any:
    """A schema of its own, with a users table; yields (URL whose search_path is that schema, schema)."""
    schema = f"nodes{next(_n)}"
    with psycopg.connect(postgres_server.url, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
        con.execute(f"CREATE TABLE {schema}.users (id serial PRIMARY KEY, name text UNIQUE NOT NULL, city text)")
        con.execute(f"INSERT INTO {schema}.users (name, city) VALUES ('ada', 'Oslo'), ('bob', 'Rome'), ('cy', 'Oslo')")
    url = postgres_server.url + f"?options=-csearch_path%3D{schema}"
    yield url, schema, postgres_server
    with psycopg.connect(postgres_server.url, autocommit=True) as con:
        con.execute(f"DROP SCHEMA {schema} CASCADE")


def names(pg: Any) -> list[str]:
    _, schema, server = pg
    with psycopg.connect(server.url) as con:
        return [r[0] for r in con.execute(f"SELECT name FROM {schema}.users ORDER BY id")]


def run(node: Any, state: dict[str, Any], aio: bool) -> dict[str, Any]:
    app = StateGraph(dict).add_node("q", node).add_edge(START, "q").compile(checkpointer=None)
    return asyncio.run(app.ainvoke(state)) if aio else app.invoke(state)


@pytest.mark.parametrize("aio", [False, True])
def test_query_binds_state_values_and_injection_stays_a_value(pg: Any, aio: bool) -> None:
    url = pg[0]
    q = sql_query("SELECT name FROM users WHERE city = :city ORDER BY id", url=url, into="users", aio=aio)
    assert run(q, {"city": "Oslo"}, aio)["users"] == [{"name": "ada"}, {"name": "cy"}]
    assert run(q, {"city": "x' OR '1'='1"}, aio)["users"] == []
    drop = sql_execute("INSERT INTO users (name) VALUES (:name)", url=url, into="n", aio=aio)
    assert run(drop, {"name": "z'); DROP TABLE users; --"}, aio)["n"] == 1
    assert names(pg)[-1] == "z'); DROP TABLE users; --"


@pytest.mark.parametrize("aio", [False, True])
def test_a_failed_statement_rolls_back_everything_the_node_wrote(pg: Any, aio: bool) -> None:
    url = pg[0]
    node = sql_execute(
        ["INSERT INTO users (name, city) VALUES (:name, 'Lima')", "UPDATE users SET city = 'Lima' WHERE name = 'ada'",
         "INSERT INTO users (name) VALUES ('bob')"],  # the last one breaks the UNIQUE constraint
        url=url, aio=aio,
    )
    with pytest.raises(SqlError) as ei:
        run(node, {"name": "dan"}, aio)
    e = ei.value
    assert e.node == "q" and "INSERT INTO users (name) VALUES ('bob')" in e.statement
    assert "UniqueViolation" in str(e) and "rolled back" in str(e)
    assert "agentgraph-test-pw" not in str(e) and "***" in e.database
    assert names(pg) == ["ada", "bob", "cy"]
    many = sql_execute("INSERT INTO users (name) VALUES (:name)", url=url, many="rows", aio=aio)
    with pytest.raises(SqlError):
        run(many, {"rows": [{"name": "e1"}, {"name": "e2"}, {"name": "ada"}]}, aio)
    assert names(pg) == ["ada", "bob", "cy"]
    assert run(sql_execute("INSERT INTO users (name) VALUES (:name)", url=url, many="rows", into="n", aio=aio),
               {"rows": [{"name": "e1"}, {"name": "e2"}]}, aio)["n"] == 2


def test_rows_as_a_frame_and_first_row(pg: Any) -> None:
    pd = pytest.importorskip("pandas")
    url = pg[0]
    frame = run(sql_query("SELECT id, name FROM users ORDER BY id", url=url, as_frame=True, into="df"), {}, False)["df"]
    assert isinstance(frame, pd.DataFrame) and list(frame["name"]) == ["ada", "bob", "cy"]
    first = sql_query("SELECT count(*) AS n FROM users WHERE city = :city", url=url, first=True, into=None)
    assert run(first, {"city": "Oslo"}, False)["n"] == 2


@pytest.mark.parametrize("aio", [False, True])
def test_sql_errors_bad_credentials_and_no_server_name_the_node_and_database(pg: Any, aio: bool) -> None:
    import socket

    url = pg[0]
    with pytest.raises(SqlError, match=r"node 'q': the query on postgresql://postgres:\*\*\*@.*UndefinedTable"):
        run(sql_query("SELECT * FROM nope", url=url, aio=aio), {}, aio)
    bad = url.replace("agentgraph-test-pw", "wrong")
    with pytest.raises(SqlError, match="password authentication failed") as ei:
        run(sql_query("SELECT 1 AS one", url=bad, aio=aio), {}, aio)
    assert "wrong" not in str(ei.value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = f"postgresql://postgres:pw@127.0.0.1:{port}/postgres"
    with pytest.raises(SqlError, match=f"postgresql://postgres:\\*\\*\\*@127.0.0.1:{port}/postgres failed: OperationalError"):
        run(sql_query("SELECT 1 AS one", url=down, aio=aio), {}, aio)
