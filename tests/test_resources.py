"""Runtime and resources: LangGraph's context_schema/context=/runtime shape, and resources declared
once at compile time, opened lazily (once, even on concurrent first use), shared by concurrent
runs, closed by app.close()/aclose(). Real httpx clients against a local server, a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import pytest

from agentgraph_nb import (
    START,
    InvalidInputError,
    Resource,
    ResourceError,
    Runtime,
    StateGraph,
    get_resource,
    get_runtime,
)


class S(TypedDict, total=False):
    path: str
    out: Any
    n: int


@dataclass
class Ctx:
    user: str
    base_url: str = ""


def _one(fn: Any, **compile_opts: Any) -> Any:
    g = StateGraph(S, name="rt", context_schema=Ctx)
    g.add_node("f", fn)
    g.add_edge(START, "f")
    return g.compile(**compile_opts)


def test_a_node_taking_runtime_reads_the_context_as_in_langgraph() -> None:
    def f(state: S, runtime: Runtime[Ctx]) -> dict[str, Any]:
        user = runtime.context.user if runtime.context is not None else None
        return {"out": (user, runtime.thread_id, len(runtime.run_id))}

    app = _one(f)
    assert app.invoke({}, context=Ctx("ada"), thread_id="t1")["out"] == ("ada", "t1", 32)
    assert asyncio.run(app.ainvoke({}, context=Ctx("bob")))["out"] == ("bob", None, 32)
    assert app.invoke({})["out"][0] is None  # no context given
    assert [c["f"]["out"][0] for c in app.stream({}, context=Ctx("cy"), mode="updates")] == ["cy"]


def test_async_nodes_and_get_runtime_from_helpers() -> None:
    def helper() -> str:
        return get_runtime().context.user

    async def f(state: S, runtime: Runtime[Ctx]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"out": [runtime.context.user, helper()]}

    app = _one(f)
    assert asyncio.run(app.ainvoke({}, context=Ctx("ada")))["out"] == ["ada", "ada"]
    with pytest.raises(RuntimeError, match="only be called while a graph's node runs"):
        get_runtime()


def test_a_context_of_the_wrong_class_is_an_error_naming_the_graph() -> None:
    app = _one(lambda s: None)
    with pytest.raises(InvalidInputError, match="graph 'rt': context= must be a Ctx .*got dict"):
        app.invoke({}, context={"user": "x"})


def test_resources_open_lazily_once_and_close_with_the_app(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE t (v INTEGER)")
        c.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (3,)])
    closed: list[str] = []

    def open_db() -> sqlite3.Connection:
        return sqlite3.connect(db, check_same_thread=False)

    def count(state: S, runtime: Runtime[Ctx]) -> dict[str, Any]:
        conn = runtime.resources["db"]
        return {"n": conn.execute("SELECT count(*) FROM t").fetchone()[0]}

    app = _one(count, resources={"db": Resource(open_db, close=lambda c: (closed.append("db"), c.close())),
                                 "unused": lambda: pytest.fail("never opened: no node uses it")})
    assert app.resources.opened == {"db": 0, "unused": 0}  # nothing opened at compile
    assert [app.invoke({})["n"] for _ in range(3)] == [3, 3, 3]
    assert app.resources.opened["db"] == 1  # shared by the runs
    conn = app.resources["db"]
    app.close()
    assert closed == ["db"] and not app.resources.is_open("db")
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")  # really closed
    assert app.invoke({})["n"] == 3  # reopens on next use
    assert app.resources.opened["db"] == 2
    app.close()


def test_concurrent_first_uses_open_once() -> None:
    opens: list[int] = []

    def slow_factory() -> object:
        opens.append(1)
        time.sleep(0.05)
        return object()

    seen: list[int] = []

    def f(state: S) -> dict[str, Any]:
        seen.append(id(get_resource("thing")))
        return {}

    app = _one(f, resources={"thing": slow_factory})
    threads = [threading.Thread(target=app.invoke, args=({},)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(opens) == 1 and len(seen) == 8 and len(set(seen)) == 1


def test_a_real_httpx_client_shared_by_concurrent_async_runs() -> None:
    httpx = pytest.importorskip("httpx")
    from tests._http_server import LocalServer

    made: list[Any] = []

    def client() -> Any:
        c = httpx.AsyncClient(timeout=5)
        made.append(c)
        return c

    async def fetch(state: S, runtime: Runtime[Ctx]) -> dict[str, Any]:
        r = await runtime.resources["http"].get(runtime.context.base_url + state["path"])
        return {"out": r.json()["raw_path"]}

    with LocalServer() as srv:
        app = _one(fetch, resources={"http": client})

        async def main() -> list[str]:
            ctx = Ctx("ada", srv.url())
            outs = await asyncio.gather(*(app.ainvoke({"path": f"/echo/{i}"}, context=ctx) for i in range(6)))
            await app.aclose()
            return [o["out"] for o in outs]

        assert asyncio.run(main()) == [f"/echo/{i}" for i in range(6)]
    assert len(made) == 1 and made[0].is_closed


def test_a_sync_httpx_client_closed_at_app_close() -> None:
    httpx = pytest.importorskip("httpx")
    from tests._http_server import LocalServer

    with LocalServer() as srv:
        def fetch(state: S) -> dict[str, Any]:
            return {"out": get_resource("http").get(srv.url("/fast")).json()}

        with _one(fetch, resources={"http": lambda: httpx.Client()}) as app:
            assert app.invoke({})["out"] == {"ok": True}
            client = app.resources["http"]
        assert client.is_closed


def test_unknown_resources_and_failing_factories_are_typed_errors() -> None:
    def f(state: S) -> dict[str, Any]:
        return {"out": get_resource("htp")}

    app = _one(f, resources={"http": lambda: 1})
    with pytest.raises(ResourceError, match=r"graph 'rt' has no resource 'htp' \(declared: http\). Did you mean 'http'"):
        app.invoke({})

    def boom() -> Any:
        raise ConnectionError("refused")

    app2 = _one(lambda s: {"out": get_resource("db")}, resources={"db": boom})
    with pytest.raises(ResourceError, match="opening resource 'db' failed: ConnectionError: refused") as ei:
        app2.invoke({})
    assert ei.value.resource == "db" and isinstance(ei.value.__cause__, ConnectionError)
    assert app2.resources.opened["db"] == 0
    with pytest.raises(ResourceError, match="resource 'x' must be a factory"):
        _one(lambda s: None, resources={"x": 42})


def test_a_failing_closer_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    closed: list[str] = []

    def bad_close(obj: Any) -> None:
        raise OSError("disk gone")

    def f(state: S) -> dict[str, Any]:
        get_resource("a")
        get_resource("b")
        return {}

    app = _one(f, resources={"a": Resource(object, close=lambda o: closed.append("a")),
                             "b": Resource(object, close=bad_close)})
    app.invoke({})
    app.close()
    assert closed == ["a"]
    assert "closing resource 'b' failed" in caplog.text


def test_a_subgraph_sees_the_parent_context() -> None:
    def inner(state: S, runtime: Runtime[Ctx]) -> dict[str, Any]:
        return {"out": runtime.context.user}

    sub = StateGraph(S, name="sub", context_schema=Ctx)
    sub.add_node("inner", inner)
    sub.add_edge(START, "inner")
    g = StateGraph(S, name="parent", context_schema=Ctx)
    g.add_node("sub", sub.compile())
    g.add_edge(START, "sub")
    assert g.compile().invoke({}, context=Ctx("ada"))["out"] == "ada"


def test_app_close_closes_an_async_client_on_a_private_loop() -> None:
    httpx = pytest.importorskip("httpx")

    def f(state: S) -> dict[str, Any]:
        get_resource("http")
        return {}

    app = _one(f, resources={"http": lambda: httpx.AsyncClient()})
    app.invoke({})
    client = app.resources["http"]
    app.close()
    assert client.is_closed
