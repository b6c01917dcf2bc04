"""A node cache in one SQLite file: ``compile(cache="sqlite:///cache.db")``. Every process that
opens the file shares its entries (WAL mode; writes are short transactions)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from agentgraph_nb.cache import BaseCache
from agentgraph_nb.errors import CacheError

__all__ = ["SqliteCache"]

_TABLE = "agentgraph_cache"


class SqliteCache(BaseCache):
    """Cached node results in a SQLite file (values are the serializer's bytes).

    Args:
        path: a file path or a ``sqlite:///path.db`` URL.

    Example:
        >>> app = g.compile(cache=SqliteCache("cache.db"))     # or cache="sqlite:///cache.db"
    """

    def __init__(self, path: str | Path) -> None:
        text = str(path)
        if text.startswith("sqlite:///"):
            text = text[len("sqlite:///"):]
        elif text.startswith("sqlite://"):
            raise CacheError(f"cache URL {str(path)!r}: write sqlite:///relative.db or sqlite:////absolute.db")
        if not text or text == ":memory:":
            raise CacheError("SqliteCache needs a file (it is shared between processes); use cache=\"memory\" otherwise")
        self.path = text
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SqliteCache({self.path!r})"

    def _db(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {_TABLE} (ns TEXT NOT NULL, key TEXT NOT NULL, "
                    "value BLOB NOT NULL, expires REAL, PRIMARY KEY (ns, key)) WITHOUT ROWID"
                )
            except sqlite3.Error as exc:
                raise CacheError(f"cannot open the cache file {self.path!r}: {exc}") from exc
            self._conn = conn
        return conn

    def get(self, ns: str, key: str) -> Any | None:
        with self._lock:
            row = self._db().execute(f"SELECT value, expires FROM {_TABLE} WHERE ns = ? AND key = ?", (ns, key)).fetchone()
            if row is None:
                return None
            if row[1] is not None and row[1] < time.time():
                self._db().execute(f"DELETE FROM {_TABLE} WHERE ns = ? AND key = ? AND expires = ?", (ns, key, row[1]))
                return None
            return bytes(row[0])

    def set(self, ns: str, key: str, value: Any, ttl: float | None) -> None:
        expires = time.time() + ttl if ttl is not None else None
        with self._lock:
            self._db().execute(
                f"INSERT OR REPLACE INTO {_TABLE} (ns, key, value, expires) VALUES (?, ?, ?, ?)",
                (ns, key, sqlite3.Binary(value), expires),
            )

    def clear(self, prefix: str | None = None) -> int:
        with self._lock:
            if prefix is None:
                cur = self._db().execute(f"DELETE FROM {_TABLE}")
            else:
                cur = self._db().execute(f"DELETE FROM {_TABLE} WHERE substr(ns, 1, ?) = ?", (len(prefix), prefix))
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
