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

__all__ = ["ROOT", "StateSchema", "read_schema", "type_name"]

_MISSING = object()

ROOT = "__root__"
"""The one key of a root state (``StateGraph(Annotated[list, operator.add])``): the whole state is
one reduced value, stored under this key and handed to nodes, routers and callers bare."""


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
        kind: ``"typeddict"``, ``"dataclass"``, ``"pydantic"``, ``"dict"``, or ``"root"`` (the
            whole state is one value, ``Annotated[T, reducer]``, under the key :data:`ROOT`).
        keys: key names in declaration order (with the keys other schemas of the graph added,
            see :meth:`extend`).
        own_keys: the keys of ``cls`` itself (what nodes receive).
        reducers: key -> reducer callable, or None for "last value wins".
        types: key -> type hint (without the Annotated wrapper).
        initial: key -> initial value (reducer empties and declared defaults).
    """

    __slots__ = (
        "cls", "initial", "key_set", "keys", "kind", "name", "own_keys", "reducer_names", "reducers", "types",
    )

    def __init__(self, cls: Any, kind: str, hints: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        self.cls = cls
        self.kind = kind
        self.name = getattr(cls, "__name__", str(cls))
        self.keys: tuple[str, ...] = tuple(hints)
        self.key_set = frozenset(self.keys)
        # None while the graph has no keys beyond cls's own (then nothing needs filtering)
        self.own_keys: frozenset[str] | None = None
        self.reducers: dict[str, Callable[[Any, Any], Any] | None] = {}
        self.reducer_names: dict[str, str | None] = {}
        self.types: dict[str, Any] = {}
        self.initial: dict[str, Any] = {}
        self._add_keys(hints, defaults)

    def _add_keys(self, hints: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        for key, hint in hints.items():
            base, reducer = hint, None
            if typing.get_origin(hint) is typing.Annotated:
                base = hint.__origin__
                for meta in hint.__metadata__:
                    if callable(meta):
                        reducer = meta
                        break
            if reducer is not None:
                _check_reducer(reducer, key, self.name)
            self.types[key] = base
            self.reducers[key] = reducer
            self.reducer_names[key] = _reducer_name(reducer) if reducer is not None else None
            if key in defaults:
                self.initial[key] = defaults[key]
            elif reducer is not None:
                empty = _empty_for(base)
                if empty is not _MISSING:
                    self.initial[key] = empty

    def extend(self, other: StateSchema, role: str) -> None:
        """Add the keys of another schema of the graph (``input_schema``, ``output_schema``, a
        node's ``input_schema``) that this one lacks, as LangGraph does: they become state keys
        too, and nodes of this schema still receive only its own keys.

        Raises:
            GraphValidationError: a key both declare with different reducers (naming it and both).
        """
        if other is self or other.kind in ("dict", "root") or self.kind in ("dict", "root"):
            return
        new: dict[str, Any] = {}
        for k in other.keys:
            if k in self.key_set:
                if other.reducers[k] is not None and other.reducers[k] is not self.reducers[k]:
                    raise GraphValidationError(
                        f"{role} {other.name}.{k} has reducer {other.reducer_names[k]}, but the state "
                        f"{self.name}.{k} has {self.reducer_names[k] or 'none'}; declare the key with one "
                        "reducer (or only in one schema)"
                    )
                continue
            new[k] = typing.Annotated[other.types[k], other.reducers[k]] if other.reducers[k] else other.types[k]
        if not new:
            return
        if self.own_keys is None:
            self.own_keys = self.key_set
        self._add_keys(new, {k: other.initial[k] for k in new if k in other.initial})
        self.keys = self.keys + tuple(new)
        self.key_set = frozenset(self.keys)

    def make_input(self, values: dict[str, Any]) -> Any:
        """What a node receives: a dict for TypedDict/dict schemas, an instance for dataclass and
        pydantic ones (pydantic validates it, so nested models arrive as models, as in
        LangGraph), the bare value for a root state.

        Raises:
            InvalidUpdateError: (pydantic) a value in the state does not fit its field.
        """
        kind = self.kind
        own = self.own_keys
        if own is not None:
            values = {k: v for k, v in values.items() if k in own}
        if kind == "dataclass":
            return self.cls(**values)
        if kind == "pydantic":
            try:
                return self.cls.model_validate(values)
            except ValueError as exc:  # pydantic_core.ValidationError is a ValueError
                return self._partial_model(values, exc)
        if kind == "root":
            return values.get(ROOT)
        return dict(values)

    def input_builder(self) -> Callable[[dict[str, Any]], Any]:
        """The fastest callable that does :meth:`make_input` for this schema as it is now (the
        compiled plan keeps one per node): ``dict`` itself for a TypedDict or dict state."""
        if self.kind in ("typeddict", "dict") and self.own_keys is None:
            return dict
        return self.make_input

    def _partial_model(self, values: dict[str, Any], exc: ValueError) -> Any:
        """A state pydantic refused: one that only lacks required keys (no node wrote them yet)
        is handed over unvalidated, as before; a value that does not fit is a typed error."""
        errors = getattr(exc, "errors", None)
        try:
            found = errors(include_url=False) if callable(errors) else []
        except Exception:
            found = []
        bad = [e for e in found if isinstance(e, dict) and e.get("type") != "missing"]
        if found and not bad:
            return self.cls.model_construct(**values)
        loc = tuple(bad[0].get("loc", ())) if bad else ()
        key = str(loc[0]) if loc else "?"
        v = values.get(key)
        tp = type_name(self.types[key]) if key in self.types else "?"
        raise InvalidUpdateError(
            f"the state does not fit {self.name}: key {key!r} holds {type(v).__name__} {_short(v)}, but "
            f"{self.name}.{key} is {tp}: {_reason(exc, key)}. A node's update wrote it (node updates are "
            "validated when the next node receives the state, as in LangGraph); write a value of that type.",
            key=key,
        ) from exc

    def output(self, values: dict[str, Any]) -> Any:
        """The state as callers see it: the bare value of a root state, else a dict."""
        if self.kind == "root":
            return values.get(ROOT)
        return dict(values)

    def update_from_object(self, node: str, obj: Any) -> dict[str, Any] | None:
        """The update a node returned as a pydantic model or dataclass instance (LangGraph accepts
        both): each of its fields, except a pydantic field left at a ``None`` default; ``None``
        when ``obj`` is neither.

        Raises:
            InvalidUpdateError: the object has a field that is not a state key.
        """
        cls = type(obj)
        fields = getattr(cls, "model_fields", None)
        if isinstance(fields, dict) and hasattr(obj, "model_fields_set"):
            keep = obj.model_fields_set
            names: list[str] = list(fields)
            defaults = {k: getattr(f, "default", None) for k, f in fields.items()}
        elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            keep = None
            names = [f.name for f in dataclasses.fields(obj)]
            defaults = {}
        else:
            return None
        out: dict[str, Any] = {}
        for k in names:
            v = getattr(obj, k, _MISSING)
            if v is _MISSING or (v is None and defaults.get(k, _MISSING) is None and (keep is None or k not in keep)):
                continue
            if self.kind != "dict" and k not in self.key_set:
                raise InvalidUpdateError(
                    f"node {node!r} returned {cls.__name__} with field {k!r}, which is not a state key."
                    f"{_did_you_mean(k, self.keys)} State {self.name} has keys: {', '.join(self.keys)}",
                    node=node,
                    key=k,
                )
            out[k] = v
        return out

    def coerce_input(self, data: Any) -> dict[str, Any]:
        """Turn run input (dict, dataclass or model instance; any value for a root state) into a
        plain update dict."""
        if self.kind == "root":
            return {ROOT: data}
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
        own = self.own_keys if self.own_keys is not None else self.key_set  # the model's fields
        keys = [k for k in keys if k in own and k in values]
        if not keys:
            return values
        # a model holding the current state: field (and model "after") validators see all of it,
        # as on an assignment to a model with validate_assignment=True
        inst = self.cls.model_construct(**{k: v for k, v in values.items() if k in own})
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


def _check_reducer(reducer: Callable[..., Any], key: str, schema: str) -> None:
    """A reducer is called ``reducer(current, update)``: one that cannot take two positional
    arguments fails at the first parallel write, so it is refused when the schema is read."""
    import inspect

    try:
        params = list(inspect.signature(reducer).parameters.values())
    except (TypeError, ValueError):  # no signature to read (some builtins): trust it
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return
    required = [p for p in positional if p.default is p.empty]
    if len(positional) < 2 or len(required) > 2:
        name = getattr(reducer, "__name__", None) or _reducer_name(reducer)
        raise GraphValidationError(
            f"Invalid reducer {name} for state key {key!r} of {schema}: a reducer is called as "
            f"{name}(current, update), with two positional arguments; it takes "
            f"{len(positional) if len(positional) < 2 else len(required)}"
        )


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    from agentgraph_nb.errors import did_you_mean

    return did_you_mean(name, choices)


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
    if typing.get_origin(cls) is typing.Annotated:
        # a root state: the whole state is one reduced value (LangGraph's
        # StateGraph(Annotated[list, operator.add]))
        if not any(callable(m) for m in cls.__metadata__):
            raise GraphValidationError(
                f"state schema {type_name(cls)}: a root state Annotated[T, reducer] needs a reducer "
                "(a callable, e.g. operator.add) in its metadata"
            )
        schema = StateSchema(cls, "root", {ROOT: cls}, {})
        schema.name = type_name(cls)
        return schema
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
    annotated = getattr(cls, "__annotations__", None) if isinstance(cls, type) else None
    if annotated:
        keys = ", ".join(f"{k}: {type_name(v) if not isinstance(v, str) else v}" for k, v in list(annotated.items())[:6])
        name = cls.__name__
        raise GraphValidationError(
            f"unsupported state schema {name}: a plain class with annotations ({keys}); agentgraph_nb reads a "
            f"TypedDict, a dataclass or a pydantic model. Declare it as `class {name}(TypedDict)`, add "
            f"`@dataclass` above it, or subclass pydantic's BaseModel"
        )
    raise GraphValidationError(
        f"unsupported state schema {cls!r}: use a TypedDict, a dataclass or a pydantic model "
        "(with Annotated[T, reducer] for keys that merge parallel writes), or Annotated[T, reducer] "
        "for a state that is one reduced value"
    )
