"""Pure, deterministic pieces of a superstep: normalising node results, merging writes through
the reducers in a fixed order, and working out which tasks run next."""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agentgraph_nb.constants import END
from agentgraph_nb.errors import InvalidUpdateError, ParentCommand, did_you_mean
from agentgraph_nb.state._schema import ROOT
from agentgraph_nb.types import Command, Overwrite, Send

if TYPE_CHECKING:
    from agentgraph_nb.engine._plan import Plan, PNode
    from agentgraph_nb.state._schema import StateSchema

__all__ = ["NOARG", "apply_writes", "is_overwrite", "normalize_result", "resolve_targets"]


class _NoArg:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOARG"


NOARG: Any = _NoArg()
"""Marks a task that reads the state (as opposed to a ``Send`` task with its own input)."""


def normalize_result(node: str, out: Any, schema: StateSchema) -> tuple[dict[str, Any] | None, Any]:
    """Split what a node returned into (update, goto). ``goto`` is ``()`` when there is none.

    A node returns a dict, ``None``, a :class:`Command`, a list mixing ``Command`` objects and
    updates, or (as LangGraph allows) an instance of a pydantic model or dataclass whose fields
    are state keys; with a root state (``Annotated[T, reducer]``) any value is the update.
    """
    if out is None:
        return None, ()
    if type(out) is dict and schema.kind != "root":
        return out, ()
    return _normalize(node, out, schema)


def _to_parent(node: str, cmd: Command) -> None:
    """A node's ``Command(graph=Command.PARENT)``: leave this graph's run for its parent's."""
    if cmd.graph != Command.PARENT:
        raise InvalidUpdateError(
            f"node {node!r} returned Command(graph={cmd.graph!r}); graph= takes Command.PARENT (or None)",
            node=node,
        )
    raise ParentCommand(node, cmd)


def _normalize(node: str, out: Any, schema: StateSchema) -> tuple[dict[str, Any] | None, Any]:
    """The less common return values of :func:`normalize_result`."""
    if isinstance(out, Command):
        if out.graph is not None:
            _to_parent(node, out)
        return _command_update(node, out.update, schema), out.goto
    if isinstance(out, (list, tuple)) and out and any(isinstance(i, Command) for i in out):
        update: dict[str, Any] = {}
        gotos: list[Any] = []
        for item in out:
            if isinstance(item, Command):
                upd = _command_update(node, item.update, schema)
                goto = item.goto
                if goto:
                    gotos.extend((goto,) if isinstance(goto, (str, Send)) else goto)
            elif schema.kind == "root":
                upd = {ROOT: item} if item is not None else None
            else:
                upd, more = normalize_result(node, item, schema)
                if more:
                    gotos.extend((more,) if isinstance(more, (str, Send)) else more)
            if upd:
                _fold(node, update, upd, schema)
        return update or None, gotos
    if schema.kind == "root":
        return {ROOT: out}, ()
    if isinstance(out, Mapping):
        return dict(out), ()
    upd = schema.update_from_object(node, out)
    if upd is not None:
        return upd, ()
    raise InvalidUpdateError(
        f"node {node!r} returned {type(out).__name__} {_short(out)}: a node must return a dict of state "
        "updates, None, or Command(update=..., goto=...)",
        node=node,
    )


def _fold(node: str, acc: dict[str, Any], upd: dict[str, Any], schema: StateSchema) -> None:
    """Add one update of a node's list of updates to ``acc``: a key written twice goes through
    its reducer (``r(first, second)``); twice without a reducer is an error, as in LangGraph."""
    for k, v in upd.items():
        if k not in acc:
            acc[k] = v
            continue
        r = schema.reducers.get(k) if isinstance(k, str) else None
        if r is None or type(v) is Overwrite or type(acc[k]) is Overwrite:
            raise InvalidUpdateError(
                f"node {node!r} returned a list of updates that writes state key {k!r} twice, and "
                f"{k!r} has no reducer to merge them (at key {k!r}: can receive only one value per step). "
                "Write it once, or declare it as Annotated[T, reducer].",
                node=node,
                key=k,
            )
        acc[k] = r(acc[k], v)


def _command_update(node: str, upd: Any, schema: StateSchema) -> dict[str, Any] | None:
    """A ``Command.update`` as a dict: a dict, another mapping, (as LangGraph allows) a list of
    ``(key, value)`` pairs or a pydantic model / dataclass instance, or with a root state any
    value; anything else is an :class:`InvalidUpdateError`."""
    if upd is None:
        return None
    if schema.kind == "root":
        return {ROOT: upd}
    if type(upd) is dict:
        return upd
    if isinstance(upd, Mapping):
        return dict(upd)
    if isinstance(upd, (list, tuple)) and all(isinstance(p, tuple) and len(p) == 2 for p in upd):
        return dict(upd)
    obj = schema.update_from_object(node, upd)
    if obj is not None:
        return obj
    raise InvalidUpdateError(
        f"node {node!r} returned Command(update={_short(upd)}): a Command's update must be a dict of "
        "state updates (or None)",
        node=node,
    )


def _who(name: str) -> str:
    if name == "__input__":
        return "the input"
    if name == "__update__":
        return "update_state"
    return f"node {name!r}"


def _short(v: Any, n: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= n else r[: n - 3] + "..."


def apply_writes(
    schema: StateSchema, values: dict[str, Any], writes: Sequence[tuple[str, Any]], *, check: bool = True,
    _resolved: bool = False,
) -> dict[str, Any]:
    """Return new values: ``values`` with each ``(node, update)`` merged in order.

    Keys with a reducer are folded through it; plain keys take the written value, and two
    writes to one plain key in the same call raise :class:`InvalidUpdateError` naming both
    writers. An :class:`Overwrite` of a reducer key (or its JSON spelling
    ``{"__overwrite__": value}``) wins the call: the key takes its value, whatever the other
    writes of the key in the call, before or after it (as in LangGraph); two overwrites of one
    key in one call are an :class:`InvalidUpdateError`. On a plain key an ``Overwrite`` is a
    plain write. ``values`` itself is never modified.
    """
    new = dict(values)
    reducers = schema.reducers
    open_keys = schema.kind == "dict"
    writers: dict[str, str] | None = None
    for name, upd in writes:
        if not upd:
            continue
        if not isinstance(upd, dict):
            raise InvalidUpdateError(
                f"node {name!r} wrote {type(upd).__name__} {_short(upd)}: an update must be a dict", node=name
            )
        for k, v in upd.items():
            try:
                r = reducers[k]
            except KeyError:
                if open_keys:
                    r = None
                else:
                    raise InvalidUpdateError(
                        f"{_who(name)} wrote unknown state key {k!r}.{did_you_mean(k, schema.keys)} "
                        f"State {schema.name} has keys: {', '.join(schema.keys)}",
                        node=name,
                        key=k,
                    ) from None
            except TypeError:
                raise InvalidUpdateError(
                    f"node {name!r} wrote a non-string key {k!r}; state keys are strings", node=name
                ) from None
            if r is None:
                if type(v) is Overwrite:
                    v = v.value
                if check:
                    if writers is None:
                        writers = {}
                    prev = writers.get(k)
                    if prev is not None:
                        who = f"node {prev!r} (twice)" if prev == name else f"nodes {prev!r} and {name!r}"
                        raise InvalidUpdateError(
                            f"{who} both wrote state key {k!r} in the same superstep, and {k!r} has no "
                            f"reducer to merge them. Declare it as Annotated[T, reducer] (e.g. operator.add "
                            "for lists) or let only one branch write it.",
                            node=prev,
                            key=k,
                        )
                    writers[k] = name
                new[k] = v
                continue
            tv = type(v)
            if tv is Overwrite or (tv is dict and (_OVERWRITE in v or "type" in v) and is_overwrite(v)):
                if not _resolved:  # rare: start again without the writes the overwrites replace
                    return apply_writes(schema, values, _overwrites_win(schema, writes), check=check, _resolved=True)
                new[k] = v.value if tv is Overwrite else _overwrite_value(v)
            elif k in new:
                try:
                    new[k] = r(new[k], v)
                except Exception as exc:
                    raise InvalidUpdateError(
                        f"node {name!r}: the reducer of key {k!r} ({schema.reducer_names[k]}) failed on "
                        f"{_short(v)}: {exc}",
                        node=name,
                        key=k,
                    ) from exc
            else:
                new[k] = v
    return new


_OVERWRITE = "__overwrite__"


def is_overwrite(v: Any) -> bool:
    """Whether ``v`` replaces a reducer key's value: an :class:`Overwrite`, or its JSON spellings
    ``{"__overwrite__": value}`` and ``{"type": "__overwrite__", "value": value}`` (what
    LangGraph's ``Overwrite`` dataclass becomes in JSON)."""
    if type(v) is Overwrite:
        return True
    if isinstance(v, dict):
        if len(v) == 1 and _OVERWRITE in v:
            return True
        return len(v) == 2 and v.get("type") == _OVERWRITE and "value" in v
    return False


def _overwrites_win(schema: StateSchema, writes: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """``writes`` without the other writes of each reducer key that one of them overwrites (so that
    the overwrite wins the step, as in LangGraph). Two overwrites of one key are an
    :class:`InvalidUpdateError` naming both writers and the key."""
    reducers = schema.reducers
    by: dict[str, str] = {}  # reducer key -> the node that overwrote it
    for name, upd in writes:
        if not isinstance(upd, dict):
            continue
        for k, v in upd.items():
            if isinstance(k, str) and reducers.get(k) is not None and is_overwrite(v):
                prev = by.get(k)
                if prev is not None:
                    who = f"node {prev!r} (twice)" if prev == name else f"nodes {prev!r} and {name!r}"
                    raise InvalidUpdateError(
                        f"{who} both wrote Overwrite(...) to state key {k!r} in the same superstep: a key "
                        "can take only one Overwrite per superstep. Let only one branch overwrite it.",
                        node=prev,
                        key=k,
                    )
                by[k] = name
    out: list[tuple[str, Any]] = []
    for name, upd in writes:
        if isinstance(upd, dict) and any(k in by and not is_overwrite(v) for k, v in upd.items()):
            upd = {k: v for k, v in upd.items() if k not in by or is_overwrite(v)}
        out.append((name, upd))
    return out


def _overwrite_value(v: dict[str, Any]) -> Any:
    return v[_OVERWRITE] if _OVERWRITE in v else v["value"]


def resolve_targets(
    plan: Plan,
    source: str,
    out: Any,
    *,
    declared: frozenset[str] | None,
    path_map: dict[Hashable, str] | None,
    what: str,
    plain: set[int],
    sends: list[tuple[PNode, Any]],
) -> None:
    """Add what a router (or ``Command.goto``) returned to the next step's tasks.

    ``out`` may be a name, a Send, or a list of them; names may go through ``path_map``.
    Raises :class:`InvalidUpdateError` for undeclared or unknown targets.
    """
    if isinstance(out, (str, Send)) or (path_map is not None and not isinstance(out, (list, tuple))):
        items: Sequence[Any] = (out,)
    elif isinstance(out, (list, tuple)):
        items = out
    else:
        got = "None" if out is None else f"{type(out).__name__} {_short(out)}"
        raise InvalidUpdateError(f"{what} returned {got}; {_allowed(what)}", node=source)
    by_name = plan.by_name
    for item in items:
        if not isinstance(item, (str, Send)) and (path_map is None or not isinstance(item, Hashable)):
            raise InvalidUpdateError(
                f"{what} returned {_short(out)}, which holds {type(item).__name__} {_short(item)}; {_allowed(what)}",
                node=source,
            )
        if isinstance(item, Send):
            target = plan.by_name.get(item.node)
            if target is None:
                raise InvalidUpdateError(
                    f"{what} sent to unknown node {item.node!r}.{did_you_mean(item.node, by_name)}", node=source
                )
            sends.append((target, item.arg))
            continue
        name = item
        if path_map is not None:
            try:
                name = path_map[item]
            except (KeyError, TypeError):
                raise InvalidUpdateError(
                    f"{what} returned {item!r}, which is not one of its declared routes "
                    f"{list(path_map)!r}.{did_you_mean(str(item), [str(k) for k in path_map])}",
                    node=source,
                ) from None
        if name == END:
            continue
        if declared is not None and name not in declared:
            raise InvalidUpdateError(
                f"{what} returned {name!r}, which is not one of its declared targets "
                f"{sorted(declared)!r}.{did_you_mean(str(name), declared)}",
                node=source,
            )
        target = by_name.get(name) if isinstance(name, str) else None
        if target is None:
            raise InvalidUpdateError(
                f"{what} returned unknown node {name!r}.{did_you_mean(str(name), by_name)}", node=source
            )
        plain.add(target.index)


def _allowed(what: str) -> str:
    if what.startswith("Command"):
        return "a Command's goto must be a node name, a list of names, Send objects or END"
    return "a router must return a node name, a list of names, Send objects or END"


def pick_weighted(names: tuple[str, ...], cum: list[float], r: float) -> str:
    """The name whose cumulative-weight slot contains ``r`` (``0 <= r < total``).

    ``hi`` keeps ``r`` rounded up to the total (``random() * total`` can be) on the last name.
    """
    return names[bisect.bisect_right(cum, r, 0, len(cum) - 1)]
