"""Reading a state schema: its keys, the reducer of each, initial values, and how nodes see it."""

from __future__ import annotations

import dataclasses
import operator
import sys
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, get_type_hints

import typing_extensions

from agentgraph_nb.errors import GraphValidationError, InvalidUpdateError

__all__ = ["StateSchema", "read_schema", "type_name"]

_MISSING = object()


def type_name(tp: Any) -> str:
    """A short readable name for a type hint (``list[str]``, ``int``, ``Optional[Doc]``)."""
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__qualname__
    s = repr(tp).replace("typing.", "")
    return s


def _reducer_name(fn: Callable[..., Any]) -> str:
    for mod in (operator,):
        for k in dir(mod):
            if not k.startswith("_") and getattr(mod, k, None) is fn:
                return k
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _empty_for(tp: Any) -> Any:
    """The empty value a reducer key starts from, by type: [], 0, "", {}, set(), ()."""
    origin = typing.get_origin(tp) or tp
    if origin is typing.Union or (sys.version_info >= (3, 10) and origin is getattr(__import__("types"), "UnionType", None)):
        return _MISSING
    if isinstance(origin, type):
        try:
            return origin()
        except Exception:
            return _MISSING
    return _MISSING


class StateSchema:
    """What the engine needs to know about a state schema.

    Attributes:
        cls: the schema class.
        kind: ``"typeddict"``, ``"dataclass"``, ``"pydantic"`` or ``"dict"``.
        keys: key names in declaration order.
        reducers: key -> reducer callable, or None for "last value wins".
        types: key -> type hint (without the Annotated wrapper).
        initial: key -> initial value (reducer empties and declared defaults).
    """

    __slots__ = ("cls", "initial", "key_set", "keys", "kind", "name", "reducer_names", "reducers", "types")

    def __init__(self, cls: Any, kind: str, hints: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        self.cls = cls
        self.kind = kind
        self.name = getattr(cls, "__name__", str(cls))
        self.keys: tuple[str, ...] = tuple(hints)
        self.key_set = frozenset(self.keys)
        self.reducers: dict[str, Callable[[Any, Any], Any] | None] = {}
        self.reducer_names: dict[str, str | None] = {}
        self.types: dict[str, Any] = {}
        self.initial: dict[str, Any] = {}
        for key, hint in hints.items():
            base, reducer = hint, None
            if typing.get_origin(hint) is typing.Annotated:
                base = hint.__origin__
                for meta in hint.__metadata__:
                    if callable(meta):
                        reducer = meta
                        break
            self.types[key] = base
            self.reducers[key] = reducer
            self.reducer_names[key] = _reducer_name(reducer) if reducer is not None else None
            if key in defaults:
                self.initial[key] = defaults[key]
            elif reducer is not None:
                empty = _empty_for(base)
                if empty is not _MISSING:
                    self.initial[key] = empty

    def make_input(self, values: dict[str, Any]) -> Any:
        """What a node receives: a dict for TypedDict/dict schemas, else an instance."""
        kind = self.kind
        if kind == "dataclass":
            return self.cls(**values)
        if kind == "pydantic":
            return self.cls.model_construct(**values)
        return dict(values)

    def coerce_input(self, data: Any) -> dict[str, Any]:
        """Turn run input (dict, dataclass or model instance) into a plain update dict."""
        if isinstance(data, Mapping):
            return dict(data)
        if dataclasses.is_dataclass(data) and not isinstance(data, type):
            return {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
        dump = getattr(data, "model_dump", None)
        if callable(dump):
            return {k: getattr(data, k) for k in data.model_fields_set} or dump()
        raise GraphValidationError(
            f"input must be a dict (or a {self.name} instance), got {type(data).__name__}"
        )

    def validate(self, values: dict[str, Any], keys: Iterable[str], who: str, node: str) -> dict[str, Any]:
        """Check (and coerce, as pydantic does) ``values[k]`` for each written key ``k`` against
        a pydantic schema's field; other schemas are returned as they are.

        Called on what a caller writes (a run's input, ``update_state``, ``Command(update=...)``
        on resume), after the reducers merged it, so a reducer key is checked as the value the
        state will hold. Node updates are not checked (as in LangGraph): that would cost every
        step, and nodes are code under the user's control, unlike input.

        Raises:
            InvalidUpdateError: naming the key, the expected type and pydantic's reason.
        """
        if self.kind != "pydantic":
            return values
        keys = [k for k in keys if k in self.key_set and k in values]
        if not keys:
            return values
        # a model holding the current state: field (and model "after") validators see all of it,
        # as on an assignment to a model with validate_assignment=True
        inst = self.cls.model_construct(**values)
        validator = self.cls.__pydantic_validator__
        out = values
        for k in keys:
            v = values[k]
            try:
                validator.validate_assignment(inst, k, v)
            except ValueError as exc:  # pydantic_core.ValidationError is a ValueError
                raise InvalidUpdateError(
                    f"{who} sets state key {k!r} to {type(v).__name__} {_short(v)}, but {self.name}.{k} is "
                    f"{type_name(self.types[k])}: {_reason(exc, k)}. Pass a value of that type.",
                    node=node,
                    key=k,
                ) from exc
            new = getattr(inst, k, v)
            if new is not v:
                if out is values:
                    out = dict(values)
                out[k] = new
        return out

    def describe(self) -> dict[str, Any]:
        """The JSON description of the schema used by ``to_json()``."""
        return {
            "schema": self.name,
            "keys": {
                k: {"type": type_name(self.types[k]), "reducer": self.reducer_names[k]} for k in self.keys
            },
        }


def _short(v: Any, n: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= n else r[: n - 3] + "..."


def _reason(exc: BaseException, key: str) -> str:
    """pydantic's first complaint, with where inside the value it is (``items[2]``)."""
    errors = getattr(exc, "errors", None)
    try:
        first = errors(include_url=False)[0] if callable(errors) else None
    except Exception:
        first = None
    if not isinstance(first, dict):
        return str(exc).splitlines()[0]
    loc = tuple(first.get("loc", ()))
    if loc[:1] == (key,):
        loc = loc[1:]
    where = "".join(f"[{p!r}]" for p in loc)
    return f"{first.get('msg', exc)}" + (f" (at {key}{where})" if where else "")


def _hints(cls: Any) -> dict[str, Any]:
    try:
        return get_type_hints(cls, include_extras=True)
    except Exception as exc:  # unresolvable forward references
        raise GraphValidationError(
            f"cannot read the type hints of state schema {getattr(cls, '__name__', cls)!r}: {exc}"
        ) from exc


def read_schema(cls: Any) -> StateSchema:
    """Read a TypedDict, dataclass or pydantic v2 model into a :class:`StateSchema`.

    Raises:
        GraphValidationError: for anything else (naming what was given and what is supported).
    """
    if cls is dict or cls is None:
        return StateSchema(dict, "dict", {}, {})
    # typing_extensions' check accepts both typing.TypedDict and typing_extensions.TypedDict
    # classes (the stdlib's rejects the latter before Python 3.12; LangGraph code uses it).
    if isinstance(cls, type) and typing_extensions.is_typeddict(cls):
        return StateSchema(cls, "typeddict", _hints(cls), {})
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        hints = _hints(cls)
        defaults: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = f.default_factory()
        return StateSchema(cls, "dataclass", {k: hints[k] for k in (f.name for f in dataclasses.fields(cls))}, defaults)
    fields = getattr(cls, "model_fields", None)
    if isinstance(cls, type) and isinstance(fields, dict) and hasattr(cls, "model_construct"):
        hints = _hints(cls)
        defaults = {}
        for name, info in fields.items():
            if not info.is_required():
                defaults[name] = info.get_default(call_default_factory=True)
            # pydantic keeps Annotated metadata on the FieldInfo; rebuild it for reducers
            if name in hints and typing.get_origin(hints[name]) is not typing.Annotated:
                meta = [m for m in info.metadata if callable(m)]
                if meta:
                    hints[name] = typing.Annotated[hints[name], meta[0]]
        return StateSchema(cls, "pydantic", {k: hints[k] for k in fields}, defaults)
    raise GraphValidationError(
        f"unsupported state schema {cls!r}: use a TypedDict, a dataclass or a pydantic model "
        "(with Annotated[T, reducer] for keys that merge parallel writes)"
    )
