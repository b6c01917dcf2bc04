"""Checkpoint stores: the protocol, the in-memory, SQLite, PostgreSQL and Redis stores and the
serializer.

``open_checkpointer`` turns what ``compile(checkpointer=...)`` accepts into a store. Every store
but the in-memory one is imported on first use, so ``import agentgraph_nb`` stays fast and imports
neither psycopg nor redis (extras ``postgres`` and ``redis``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from agentgraph_nb.checkpoint.base import (
    BaseCheckpointer,
    CheckpointRecord,
    Durability,
    PendingWrite,
    Retention,
    new_checkpoint_id,
)
from agentgraph_nb.checkpoint.memory import MemoryCheckpointer
from agentgraph_nb.errors import GraphValidationError, did_you_mean

if TYPE_CHECKING:
    from agentgraph_nb.checkpoint.postgres import PostgresCheckpointer
    from agentgraph_nb.checkpoint.redis import RedisCheckpointer
    from agentgraph_nb.checkpoint.serde import Serializer, default_serializer
    from agentgraph_nb.checkpoint.sqlite import SqliteCheckpointer

__all__ = [
    "BaseCheckpointer",
    "CheckpointRecord",
    "Durability",
    "MemoryCheckpointer",
    "PendingWrite",
    "PostgresCheckpointer",
    "RedisCheckpointer",
    "Retention",
    "Serializer",
    "SqliteCheckpointer",
    "default_serializer",
    "new_checkpoint_id",
    "open_checkpointer",
]

_LAZY = {
    "SqliteCheckpointer": "agentgraph_nb.checkpoint.sqlite",
    "PostgresCheckpointer": "agentgraph_nb.checkpoint.postgres",
    "RedisCheckpointer": "agentgraph_nb.checkpoint.redis",
    "Serializer": "agentgraph_nb.checkpoint.serde",
    "default_serializer": "agentgraph_nb.checkpoint.serde",
}

_SUPPORTED = (
    "None or 'memory' (in memory, the default), 'sqlite:///relative/path.db', "
    "'sqlite:////absolute/path.db', 'sqlite://:memory:', 'postgresql://user:pw@host:5432/db', "
    "'redis://host:6379/0', or a store object such as SqliteCheckpointer('runs.db')"
)
_SQLITE_OPTIONS = {"snapshot_every": int, "durability": str, "timeout": float}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_checkpointer(
    spec: str | os.PathLike[str] | BaseCheckpointer | None = None,
    *,
    serializer: Serializer | None = None,
) -> BaseCheckpointer:
    """The store that ``compile(checkpointer=spec, serializer=serializer)`` uses.

    Args:
        spec: ``None`` or ``"memory"`` for an in-memory store; ``"sqlite:///runs.db"`` (path
            relative to the working directory), ``"sqlite:////abs/runs.db"`` (absolute) or
            ``"sqlite://:memory:"`` for SQLite, optionally with ``?snapshot_every=16``,
            ``&durability=sync`` and ``&timeout=5``; ``"postgresql://user:pw@host:5432/db"``
            (extra ``postgres``; options ``schema``, ``pool_size``, ``snapshot_every``,
            ``durability``, ``timeout``); ``"redis://host:6379/0"`` (extra ``redis``; options
            ``prefix``, ``ttl``, ``snapshot_every``, ``durability``, ``timeout``); a path object for
            a SQLite file; or a store object, returned as is.
        serializer: the :class:`~agentgraph_nb.checkpoint.serde.Serializer` a store opened from a
            URL or path writes and reads with, e.g. ``Serializer(compression="zstd",
            keys={"k1": key}, active_key="k1")`` to keep the state compressed and encrypted at
            rest; ``None`` for the default one. The in-memory store serializes nothing and a
            store object has its own (``SqliteCheckpointer(path, serializer=...)``): giving one
            with either is an error.

    Returns:
        The store.

    Raises:
        GraphValidationError: the spec names no supported store (the message lists those), has
            a bad option, or takes no serializer (memory, or a store object with another one).
        MissingDependencyError: the store's extra is not installed (the message names the
            ``pip install`` to run).

    Example:
        >>> open_checkpointer("sqlite:///runs.db?durability=sync")
        SqliteCheckpointer('/home/me/runs.db')
        >>> open_checkpointer("postgresql://u:pw@db/app", serializer=Serializer(keys={"k1": key}))
    """
    if serializer is not None:
        _check_serializer(spec, serializer)
    if spec is None or spec == "memory" or spec == "memory://":
        return MemoryCheckpointer()
    if isinstance(spec, BaseCheckpointer):
        return spec
    if isinstance(spec, os.PathLike):
        from agentgraph_nb.checkpoint.sqlite import SqliteCheckpointer

        return SqliteCheckpointer(spec, serializer=serializer)
    if not isinstance(spec, str):
        raise GraphValidationError(
            f"checkpointer={spec!r} is not supported (a {type(spec).__name__}). Use {_SUPPORTED}."
        )
    if spec.startswith("sqlite:"):
        return _open_sqlite(spec, serializer)
    scheme = spec.split("://", 1)[0].lower() if "://" in spec else ""
    if scheme in ("postgresql", "postgres", "redis", "rediss"):
        return _open_network(spec, scheme, serializer)
    if "://" in spec:
        hint = f" The {scheme!r} scheme is not supported." + did_you_mean(
            scheme, ["sqlite", "memory", "postgresql", "redis"]
        )
    elif spec.lower().endswith((".db", ".sqlite", ".sqlite3")):
        hint = f" Did you mean 'sqlite:///{spec}'?"
    else:
        hint = did_you_mean(spec, ["memory"])
    raise GraphValidationError(f"unknown checkpointer {spec!r}.{hint} Supported: {_SUPPORTED}.")


def _check_serializer(spec: Any, serializer: Any) -> None:
    """``serializer=`` goes with a store opened from a URL or path, and is a Serializer."""
    from agentgraph_nb.checkpoint.serde import Serializer

    if not isinstance(serializer, Serializer):
        raise GraphValidationError(
            f"serializer={serializer!r} is a {type(serializer).__name__}, not a "
            "agentgraph_nb.checkpoint.Serializer (e.g. Serializer(compression='zstd', keys={'k1': key}))"
        )
    if spec is None or spec == "memory" or spec == "memory://":
        raise GraphValidationError(
            "serializer= was given with the in-memory checkpointer, which keeps the state as objects and "
            "serializes nothing: use it with a store that writes bytes ('sqlite:///runs.db', "
            "'postgresql://...', 'redis://...')"
        )
    if isinstance(spec, BaseCheckpointer) and getattr(spec, "serializer", None) is not serializer:
        raise GraphValidationError(
            f"serializer= was given with a store object ({type(spec).__name__}), which has its own "
            f"serializer: pass it to the store instead, {type(spec).__name__}(..., serializer=...), or "
            "give compile() the store's URL"
        )


def _open_sqlite(spec: str, serializer: Serializer | None = None) -> BaseCheckpointer:
    import urllib.parse

    from agentgraph_nb.checkpoint.sqlite import SqliteCheckpointer

    if not spec.startswith("sqlite://"):
        raise GraphValidationError(
            f"checkpointer {spec!r} is not a SQLite URL: write 'sqlite:///relative/path.db' or "
            "'sqlite:////absolute/path.db'."
        )
    rest, _, query = spec[len("sqlite://") :].partition("?")
    rest = urllib.parse.unquote(rest)
    if rest in ("", ":memory:", "/:memory:"):
        path = ":memory:"
    elif rest.startswith("/") and len(rest) > 1:
        path = rest[1:]
    else:
        raise GraphValidationError(
            f"checkpointer {spec!r}: a SQLite URL has three slashes before a relative path and "
            f"four before an absolute one. Did you mean 'sqlite:///{rest}'?"
        )
    options: dict[str, Any] = {}
    for key, values in urllib.parse.parse_qs(query, keep_blank_values=True).items():
        if key not in _SQLITE_OPTIONS:
            raise GraphValidationError(
                f"checkpointer {spec!r}: unknown option {key!r}.{did_you_mean(key, _SQLITE_OPTIONS)} "
                f"Options: {', '.join(_SQLITE_OPTIONS)}."
            )
        try:
            options[key] = _SQLITE_OPTIONS[key](values[-1])
        except ValueError:
            raise GraphValidationError(
                f"checkpointer {spec!r}: option {key}={values[-1]!r} is not a valid "
                f"{_SQLITE_OPTIONS[key].__name__}."
            ) from None
    try:
        return SqliteCheckpointer(path, serializer=serializer, **options)
    except ValueError as exc:  # bad option values
        raise GraphValidationError(f"checkpointer {spec!r}: {exc}") from None


def _open_network(spec: str, scheme: str, serializer: Serializer | None = None) -> BaseCheckpointer:
    from agentgraph_nb._lazy import requires_extra
    from agentgraph_nb.checkpoint._codec import redact_url

    store: type[BaseCheckpointer]
    with requires_extra(f"checkpointer={redact_url(spec)!r}"):
        if scheme.startswith("postgres"):
            from agentgraph_nb.checkpoint.postgres import PostgresCheckpointer as store
        else:
            from agentgraph_nb.checkpoint.redis import RedisCheckpointer as store
    try:
        return store(spec, serializer=serializer)  # type: ignore[call-arg]
    except ValueError as exc:  # bad option values
        raise GraphValidationError(f"checkpointer {redact_url(spec)!r}: {exc}") from None
