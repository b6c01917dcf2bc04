"""Checkpoint stores: the protocol, the in-memory store, the SQLite store and the serializer.

``open_checkpointer`` turns what ``compile(checkpointer=...)`` accepts into a store. The SQLite
store and the serializer are imported on first use, so ``import agentgraph_nb`` stays fast.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from agentgraph_nb.checkpoint.base import (
    BaseCheckpointer,
    CheckpointRecord,
    Durability,
    PendingWrite,
    new_checkpoint_id,
)
from agentgraph_nb.checkpoint.memory import MemoryCheckpointer
from agentgraph_nb.errors import GraphValidationError, did_you_mean

if TYPE_CHECKING:
    from agentgraph_nb.checkpoint.serde import Serializer, default_serializer
    from agentgraph_nb.checkpoint.sqlite import SqliteCheckpointer

__all__ = [
    "BaseCheckpointer",
    "CheckpointRecord",
    "Durability",
    "MemoryCheckpointer",
    "PendingWrite",
    "Serializer",
    "SqliteCheckpointer",
    "default_serializer",
    "new_checkpoint_id",
    "open_checkpointer",
]

_LAZY = {
    "SqliteCheckpointer": "agentgraph_nb.checkpoint.sqlite",
    "Serializer": "agentgraph_nb.checkpoint.serde",
    "default_serializer": "agentgraph_nb.checkpoint.serde",
}

_SUPPORTED = (
    "None or 'memory' (in memory, the default), 'sqlite:///relative/path.db', "
    "'sqlite:////absolute/path.db', 'sqlite://:memory:', or a store object such as "
    "SqliteCheckpointer('runs.db')"
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
) -> BaseCheckpointer:
    """The store that ``compile(checkpointer=spec)`` uses.

    Args:
        spec: ``None`` or ``"memory"`` for an in-memory store; ``"sqlite:///runs.db"`` (path
            relative to the working directory), ``"sqlite:////abs/runs.db"`` (absolute) or
            ``"sqlite://:memory:"`` for SQLite, optionally with ``?snapshot_every=16``,
            ``&durability=sync`` and ``&timeout=5``; a path object for a SQLite file; or a store
            object, returned as is.

    Returns:
        The store.

    Raises:
        GraphValidationError: the spec names no supported store; the message lists those.

    Example:
        >>> open_checkpointer("sqlite:///runs.db?durability=sync")
        SqliteCheckpointer('/home/me/runs.db')
    """
    if spec is None or spec == "memory" or spec == "memory://":
        return MemoryCheckpointer()
    if isinstance(spec, BaseCheckpointer):
        return spec
    if isinstance(spec, os.PathLike):
        from agentgraph_nb.checkpoint.sqlite import SqliteCheckpointer

        return SqliteCheckpointer(spec)
    if not isinstance(spec, str):
        raise GraphValidationError(
            f"checkpointer={spec!r} is not supported (a {type(spec).__name__}). Use {_SUPPORTED}."
        )
    if spec.startswith("sqlite:"):
        return _open_sqlite(spec)
    if "://" in spec:
        scheme = spec.split("://", 1)[0]
        hint = f" The {scheme!r} scheme is not supported." + did_you_mean(
            scheme, ["sqlite", "memory"]
        )
    elif spec.lower().endswith((".db", ".sqlite", ".sqlite3")):
        hint = f" Did you mean 'sqlite:///{spec}'?"
    else:
        hint = did_you_mean(spec, ["memory"])
    raise GraphValidationError(f"unknown checkpointer {spec!r}.{hint} Supported: {_SUPPORTED}.")


def _open_sqlite(spec: str) -> BaseCheckpointer:
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
        return SqliteCheckpointer(path, **options)
    except ValueError as exc:  # bad option values
        raise GraphValidationError(f"checkpointer {spec!r}: {exc}") from None
