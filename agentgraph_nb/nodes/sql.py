"""SQL nodes (extra ``sql``, on SQLAlchemy 2): queries whose parameters come from the state.

Example:
    >>> from agentgraph_nb.nodes.sql import sql_query, sql_execute
    >>> find = sql_query("SELECT name, age FROM users WHERE city = :city", url="sqlite:///app.db", into="users")
    >>> find({"city": "Oslo"})  # doctest: +SKIP
    {'users': [{'name': 'Ada', 'age': 36}]}

State values are only ever **bound parameters** (``:city``), never pasted into the SQL text, so a
value like ``"x' OR '1'='1"`` is compared as the string it is. By default a parameter ``:city``
takes the state key ``city``; ``params={"c": "{user.city}", "limit": 10}`` maps parameters to other
keys (``"{key}"``, the value itself) or to constants, and ``params=callable`` computes them.

Engines (and their connection pools) are shared per database URL in the process; SQLite is the
default driver (``sqlite:///path.db``; ``sqlite://`` is one in-memory database shared by the nodes
of the process). Every call runs in a transaction: a statement that fails rolls back everything
the node wrote in it (several statements, or ``many=`` rows), and raises
:class:`~agentgraph_nb.errors.SqlError` naming the node and the database (password hidden).
``aio=True`` makes an async node on SQLAlchemy's asyncio extension (``sqlite+aiosqlite`` for
SQLite URLs). ``postgresql://`` URLs use psycopg 3 (extra ``postgres``), sync and async.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from agentgraph_nb.errors import NodeValueError, SqlError
from agentgraph_nb.nodes._base import LibraryNode, compile_templates, fill, get_path, node_name

__all__ = ["SqlNode", "dispose_engines", "engine_for", "sql_execute", "sql_query"]

_engines: dict[tuple[str, bool], Any] = {}
_lock = threading.Lock()


def _in_memory(url: sa.URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def engine_for(url: str | sa.URL, *, aio: bool = False) -> Any:
    """The process's shared engine for a database URL (made on first use).

    Args:
        url: a SQLAlchemy URL (``sqlite:///app.db``, ``postgresql+psycopg://user:pw@host/db``).
        aio: an ``AsyncEngine`` (SQLite URLs get the ``aiosqlite`` driver).
    """
    u = sa.make_url(url)
    if aio and u.get_backend_name() == "sqlite" and u.get_driver_name() in ("pysqlite", "sqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    if u.drivername in ("postgresql", "postgres"):  # psycopg 3 (the postgres extra): sync and asyncio alike
        u = u.set(drivername="postgresql+psycopg")
    key = (u.render_as_string(hide_password=False), aio)
    eng = _engines.get(key)
    if eng is not None:
        return eng
    with _lock:
        eng = _engines.get(key)
        if eng is None:
            kwargs: dict[str, Any] = {}
            if _in_memory(u):  # one shared in-memory database, not one per connection
                kwargs = {"poolclass": sa.StaticPool, "connect_args": {"check_same_thread": False}}
            if aio:
                from sqlalchemy.ext.asyncio import create_async_engine

                eng = create_async_engine(u, **kwargs)
            else:
                eng = sa.create_engine(u, **kwargs)
            _engines[key] = eng
    return eng


@atexit.register
def dispose_engines() -> None:
    """Close every pooled connection of the shared engines (they reconnect on next use)."""
    for (_, aio), eng in list(_engines.items()):
        if not aio:
            eng.dispose()
        else:  # closing an async connection needs its event loop: let them go with it
            eng.sync_engine.dispose(close=False)


class SqlNode(LibraryNode):
    """A node that runs SQL; made by :func:`sql_query` and :func:`sql_execute`."""

    kind = "sql"

    def __init__(
        self,
        sql: str | Sequence[str],
        *,
        url: str,
        query: bool,
        params: Mapping[str, Any] | Callable[[Any], Mapping[str, Any]] | None = None,
        into: str | None = None,
        as_frame: bool = False,
        first: bool = False,
        many: str | None = None,
        aio: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.kind = "sql_query" if query else "sql_execute"
        texts = [sql] if isinstance(sql, str) else list(sql)
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ValueError(f"{self.kind}: give the SQL text (a string, or a list of them for sql_execute)")
        if query and len(texts) != 1:
            raise ValueError("sql_query: one statement (use sql_execute for several in one transaction)")
        try:
            self._url = sa.make_url(url)
        except ArgumentError as exc:
            raise ValueError(f"{self.kind}: {url!r} is not a database URL ({exc}); e.g. 'sqlite:///app.db'") from None
        self.database = self._url.render_as_string(hide_password=True)
        self.sql = texts
        self._stmts = [sa.text(t) for t in texts]
        self.binds = sorted({b for s in self._stmts for b in s.compile().params})
        self._params_fn = params if callable(params) else None
        self._params = compile_templates(dict(params)) if isinstance(params, Mapping) else {}
        self.into = into
        self.as_frame = as_frame
        self.first = first
        self.many = many
        self.query = query
        self.aio = aio
        self._engine: Any = None
        if as_frame and first:
            raise ValueError("sql_query: as_frame=True and first=True do not go together")

    # -- parameters -------------------------------------------------------------------------------
    def bind(self, state: Any) -> dict[str, Any]:
        """The parameters of one execution, from the state."""
        if self._params_fn is not None:
            out = self._params_fn(state)
            if not isinstance(out, Mapping):
                name = node_name(self.who)
                raise NodeValueError(
                    f"node {name!r}: params(state) must return a dict of parameters, got {type(out).__name__}",
                    node=name, resource=self.database,
                )
            return dict(out)
        given = self._params
        out = {}
        for b in self.binds:
            out[b] = fill(given[b], state, who=self.who) if b in given else get_path(
                state, b, who=self.who, what="state key for SQL parameter"
            )
        return out

    def _rows(self, state: Any) -> list[dict[str, Any]]:
        rows = get_path(state, self.many, who=self.who) if self.many else None
        if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
            name = node_name(self.who)
            raise NodeValueError(
                f"node {name!r}: many={self.many!r} must be a list of dicts (one per row), got {type(rows).__name__}",
                node=name, resource=str(self.many), key=self.many,
            )
        fixed = dict(self._params_fn(state)) if self._params_fn is not None else None
        out = []
        for r in rows:  # a row's own values first, then params=, then the state key of the name
            vals = {}
            for b in self.binds:
                if b in r:
                    vals[b] = r[b]
                elif fixed is not None and b in fixed:
                    vals[b] = fixed[b]
                elif b in self._params:
                    vals[b] = fill(self._params[b], state, who=self.who)
                else:
                    vals[b] = get_path(state, b, who=self.who, what="row key or state key for SQL parameter")
            out.append(vals)
        return out

    def _error(self, exc: BaseException, stmt: str) -> SqlError:
        name = node_name(self.who)
        orig = getattr(exc, "orig", None) or exc
        what = "the query" if self.query else "the statement"
        rolled = "" if self.query else " Nothing it wrote in this call was kept (rolled back)."
        return SqlError(
            f"node {name!r}: {what} on {self.database} failed: {type(orig).__name__}: {orig}.{rolled}\n    SQL: {stmt.strip()}",
            node=name, resource=self.database, database=self.database, statement=stmt,
        )

    def _result(self, result: Any) -> Any:
        if self.as_frame:
            from agentgraph_nb._lazy import requires_extra

            with requires_extra("sql_query(as_frame=True)"):
                import pandas as pd

            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        rows = [dict(r) for r in result.mappings()]
        if self.first:
            return rows[0] if rows else None
        return rows

    def _update(self, value: Any) -> dict[str, Any] | None:
        if self.into is not None:
            return {self.into: value}
        if isinstance(value, list):  # no key to put the rows under: the first row is the update
            value = value[0] if value else None
        return value if isinstance(value, dict) else None

    # -- sync -------------------------------------------------------------------------------------
    def engine(self) -> Any:
        """The shared engine of this node's database."""
        eng = self._engine
        if eng is None:
            eng = self._engine = engine_for(self._url, aio=self.aio)
        return eng

    def __call__(self, state: Any) -> dict[str, Any] | None:
        eng = self.engine()
        stmt = self.sql[0]
        try:
            if self.query:
                params = self.bind(state)
                with eng.connect() as conn:
                    return self._update(self._result(conn.execute(self._stmts[0], params)))
            params_list = self._rows(state) if self.many else [self.bind(state)]
            count = 0
            with eng.begin() as conn:  # one transaction: all or nothing
                for i, compiled in enumerate(self._stmts):
                    stmt = self.sql[i]  # named in the error if this one fails
                    res = conn.execute(compiled, params_list)
                    count += max(res.rowcount or 0, 0)
            return self._update(count) if self.into else None
        except SQLAlchemyError as exc:
            raise self._error(exc, stmt) from exc

    def close(self) -> None:
        """Close the pooled connections of this node's database (shared with other nodes on the
        same URL; they reconnect on next use)."""
        eng = self._engine
        if eng is None:
            return
        if self.aio:  # closing async connections needs their loop: see aclose()
            eng.sync_engine.dispose(close=False)
        else:
            eng.dispose()


class AsyncSqlNode(SqlNode):
    """The async flavour of :class:`SqlNode` (``aio=True``)."""

    async def aclose(self) -> None:
        """Close the pooled connections of this node's database, on the running loop."""
        if self._engine is not None:
            await self._engine.dispose()

    async def __call__(self, state: Any) -> dict[str, Any] | None:  # type: ignore[override]
        eng = self.engine()
        stmt = self.sql[0]
        try:
            if self.query:
                params = self.bind(state)
                async with eng.connect() as conn:
                    result = await conn.execute(self._stmts[0], params)
                    return self._update(self._result(result))
            params_list = self._rows(state) if self.many else [self.bind(state)]
            count = 0
            async with eng.begin() as conn:
                for i, compiled in enumerate(self._stmts):
                    stmt = self.sql[i]
                    res = await conn.execute(compiled, params_list)
                    count += max(res.rowcount or 0, 0)
            return self._update(count) if self.into else None
        except SQLAlchemyError as exc:
            raise self._error(exc, stmt) from exc


def sql_query(
    sql: str,
    *,
    url: str,
    into: str | None = "rows",
    params: Mapping[str, Any] | Callable[[Any], Mapping[str, Any]] | None = None,
    as_frame: bool = False,
    first: bool = False,
    aio: bool = False,
    name: str | None = None,
) -> SqlNode:
    """A node that runs a query and puts the rows into the state.

    Args:
        sql: one statement with named parameters (``:city``).
        url: the database URL (``sqlite:///app.db``).
        into: the state key for the rows (a list of dicts); None: the first row is the update.
        params: parameter values: a dict of templates/constants, or ``params(state) -> dict``.
            Parameters not given take the state key of their name.
        as_frame: rows as a pandas ``DataFrame`` (needs pandas; a frame in the state needs a
            checkpointer that can store it, or none).
        first: only the first row (a dict, or None when there is none).
        aio: an async node.
        name: the node's name in errors raised outside a run.

    Example:
        >>> node = sql_query("SELECT * FROM orders WHERE user_id = :uid AND total > :min",
        ...                  url="sqlite:///shop.db", params={"uid": "{user.id}", "min": 10},
        ...                  into="orders")
    """
    cls = AsyncSqlNode if aio else SqlNode
    return cls(sql, url=url, query=True, params=params, into=into, as_frame=as_frame, first=first, aio=aio, name=name)


def sql_execute(
    sql: str | Sequence[str],
    *,
    url: str,
    params: Mapping[str, Any] | Callable[[Any], Mapping[str, Any]] | None = None,
    many: str | None = None,
    into: str | None = None,
    aio: bool = False,
    name: str | None = None,
) -> SqlNode:
    """A node that runs INSERT/UPDATE/DELETE/DDL statements in one transaction.

    Args:
        sql: a statement, or several run in order in the same transaction.
        url: the database URL.
        params: as for :func:`sql_query`.
        many: a state key holding a list of dicts: the statements run once per row
            (``executemany``), all in one transaction.
        into: a state key for the number of rows affected; None: no update.
        aio: an async node.
        name: the node's name in errors raised outside a run.

    Example:
        >>> save = sql_execute("INSERT INTO notes (city, text) VALUES (:city, :note)",
        ...                    url="sqlite:///app.db", into="saved")
    """
    cls = AsyncSqlNode if aio else SqlNode
    return cls(sql, url=url, query=False, params=params, many=many, into=into, aio=aio, name=name)
