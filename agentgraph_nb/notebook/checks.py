"""Checks run when a ``%%agentgraph`` cell builds a graph: likely mistakes the engine would only
find at run time. They return warning messages; nothing here raises."""

from __future__ import annotations

import ast
import dataclasses
import datetime
import decimal
import enum
import inspect
import pathlib
import textwrap
import typing
import uuid
from collections.abc import Callable
from typing import Any

import typing_extensions

__all__ = ["check_graph", "parallel_writer_conflicts", "uncheckpointable_keys", "written_keys"]

_PLAIN = (
    str, int, float, bool, bytes, type(None), complex, list, dict, tuple, set, frozenset,
    datetime.datetime, datetime.date, datetime.time, datetime.timedelta, uuid.UUID, decimal.Decimal,
)


def _target(fn: Any) -> Callable[..., Any] | None:
    resolve = getattr(fn, "resolve", None)
    if callable(resolve):
        try:
            return resolve()  # type: ignore[no-any-return]
        except Exception:
            return None
    return fn if callable(fn) else None


def written_keys(fn: Any) -> set[str] | None:
    """State keys a node's source returns in dict literals (``return {"k": ...}``,
    ``Command(update={...})``); None when the source cannot be read."""
    target = _target(fn)
    if target is None:
        return None
    try:
        src = textwrap.dedent(inspect.getsource(target))
        tree = ast.parse(src)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    keys: set[str] = set()

    def dict_keys(node: ast.AST | None) -> None:
        if isinstance(node, ast.Dict):
            for k in node.keys:
                if isinstance(k, ast.Constant) and isinstance(k.value, str):
                    keys.add(k.value)
        elif isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "update":
                    dict_keys(kw.value)

    for node in ast.walk(tree):
        if isinstance(node, ast.Return):
            dict_keys(node.value)
        elif isinstance(node, ast.Lambda):
            dict_keys(node.body)
    return keys


def parallel_writer_conflicts(app: Any) -> list[str]:
    """Nodes that run in the same superstep (fan-out siblings, ``Send`` fan-out) and return the
    same state key that has no reducer."""
    data = app.to_json()
    reducers = app.schema.reducers
    plain = {k for k, r in reducers.items() if r is None}
    if not plain and app.schema.kind != "dict":
        return []
    fns = {n.name: n.fn for n in app.plan.nodes}
    writes: dict[str, set[str]] = {}
    for name, fn in fns.items():
        ks = written_keys(fn)
        if ks is not None:
            writes[name] = ks if app.schema.kind == "dict" else ks & plain
    groups: dict[str, list[str]] = {}
    for e in data["edges"]:
        groups.setdefault(e["source"], []).append(e["target"])
    out = []
    for src, targets in groups.items():
        targets = [t for t in dict.fromkeys(targets) if t in writes]
        for i, a in enumerate(targets):
            for b in targets[i + 1:]:
                for key in sorted(writes[a] & writes[b]):
                    out.append(
                        f"nodes {a!r} and {b!r} run in parallel after {src!r} and both write state key {key!r}, "
                        f"which has no reducer: the run will fail with InvalidUpdateError. Declare "
                        f"{key}: Annotated[T, reducer] in the state, or let one branch write it."
                    )
    return out


_QUALIFIERS = {
    q
    for mod in (typing, typing_extensions)
    for q in (getattr(mod, n, None) for n in ("NotRequired", "Required", "ReadOnly", "Final", "ClassVar"))
    if q is not None
}


def _storable(tp: Any, seen: set[int]) -> bool:
    if id(tp) in seen:
        return True
    seen.add(id(tp))
    if tp is Any or isinstance(tp, (typing.TypeVar, str, typing.ForwardRef)):
        return True
    origin = typing.get_origin(tp)
    if origin is typing.Annotated or origin in _QUALIFIERS:  # NotRequired[str] stores a str
        return _storable(typing.get_args(tp)[0], seen)
    if origin is typing.Literal:
        return True
    if origin is not None:
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        base_ok = origin in (typing.Union,) or _storable(origin, seen) or str(origin).endswith("UnionType'>")
        return base_ok and all(_storable(a, seen) for a in args)
    if not isinstance(tp, type):
        sup = getattr(tp, "__supertype__", None)  # typing.NewType
        if sup is not None:
            return _storable(sup, seen)
        return not callable(tp)  # e.g. threading.Lock is a factory function, not a type
    if issubclass(tp, _PLAIN) or issubclass(tp, (enum.Enum, pathlib.PurePath)):
        return True
    if dataclasses.is_dataclass(tp) or hasattr(tp, "model_fields") or typing_extensions.is_typeddict(tp):
        return True
    mod = getattr(tp, "__module__", "")
    if mod.startswith(("numpy", "pandas")):
        return True
    return tp.__module__ in ("collections.abc", "typing")


def uncheckpointable_keys(app: Any) -> list[str]:
    """State keys whose declared types the safe serializer cannot store."""
    if app.checkpointer is None:
        return []
    out = []
    for key, tp in app.schema.types.items():
        if not _storable(tp, set()):
            name = getattr(tp, "__qualname__", repr(tp))
            out.append(
                f"state key {key!r} is declared as {name}, which checkpoints cannot store safely: runs with a "
                f"thread_id will fail when they save it. Keep such objects outside the state (e.g. in a "
                f"closure), or store plain data."
            )
    return out


def check_graph(app: Any) -> list[str]:
    """All the checks, as warning messages."""
    return parallel_writer_conflicts(app) + uncheckpointable_keys(app)
