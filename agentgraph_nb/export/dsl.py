"""Write a graph description (``app.to_json()``) as ``%%agentgraph`` cell text.

The text parses and builds back to the same graph: same nodes in the same order (which sets the
merge order), same options, edges, joins, branches and weights. See
:mod:`agentgraph_nb.notebook._dsl` for the language.

This module also owns the few lexical rules the parser shares with it (what a bare name is,
the option names), so that writer and parser cannot drift apart. It imports nothing from the
notebook side.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from agentgraph_nb.constants import END, START
from agentgraph_nb.types import RetryPolicy

__all__ = ["to_dsl"]

FORMAT = "agentgraph_nb/graph"

NAME_RE = re.compile(r"[^\W\d]\w*")
"""A bare name: a Python identifier (``\\w`` is Unicode-aware). Anything else is quoted."""

KEYWORDS = {"START": START, "END": END}

OPTION_FIELDS: dict[str, str] = {
    "retry": "max_attempts",
    "interval": "initial_interval",
    "backoff": "backoff_factor",
    "max_interval": "max_interval",
    "jitter": "jitter",
}
"""Option name in the cell -> :class:`RetryPolicy` field. ``timeout`` is the other option."""

OPTION_SYNONYMS: dict[str, str] = {
    "max_attempts": "retry",
    "initial_interval": "interval",
    "backoff_factor": "backoff",
}
"""RetryPolicy's own field names are accepted too, so both habits work."""

LOOP_OPTIONS: dict[str, str] = {
    "foreach": "key",
    "into": "key",
    "max_concurrency": "int",
    "on_error": "word",
    "errors_into": "key",
    "while": "function",
    "max_iterations": "int",
}
"""Loop options (``add_foreach``/``add_while``) -> the kind of value they take: a state key (a
name or a quoted string), a whole number >= 1, a word, or a function name."""

LOOP_DEFAULTS: dict[str, Any] = {"max_concurrency": 4, "on_error": "raise", "max_iterations": 50}

OPTION_NAMES: tuple[str, ...] = (*OPTION_FIELDS, "timeout", "cache", "compensate", *LOOP_OPTIONS)
"""``cache`` takes ``true``/``false`` or a TTL in seconds; ``compensate`` a function name (the saga
step's undo); the loop options are in
:data:`LOOP_OPTIONS`; the others numbers or booleans."""

_RETRY_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in fields(RetryPolicy) if f.name in OPTION_FIELDS.values()
}


def looks_like_keyword(name: str) -> str | None:
    """The keyword an all-capitals name is a likely typo of (``STRAT`` -> ``START``), or None.

    The parser rejects such names unquoted; the writer quotes them.
    """
    if name in KEYWORDS or not name.isupper():
        return None
    close = difflib.get_close_matches(name, list(KEYWORDS), n=1, cutoff=0.6)
    return close[0] if close else None


def is_bare_name(name: str) -> bool:
    """Whether ``name`` can be written unquoted as a node name."""
    return (
        NAME_RE.fullmatch(name) is not None
        and name not in KEYWORDS
        and name not in (START, END)
        and looks_like_keyword(name) is None
    )


def format_name(name: str) -> str:
    """A node name as cell text: ``START``/``END``, a bare identifier, or a quoted string."""
    if name == START:
        return "START"
    if name == END:
        return "END"
    return name if is_bare_name(name) else json.dumps(name)


def format_number(value: Any, what: str) -> str:
    """A number as cell text that parses back to the same float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(
            f"cannot write {what} = {value!r} as cell text: it must be a finite number"
        )
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _is_function_path(text: str) -> bool:
    return all(NAME_RE.fullmatch(part) for part in text.split("."))


def _options(node: Mapping[str, Any]) -> str:
    parts: list[str] = []
    retry = node.get("retry")
    if retry:
        name = node["name"]
        attempts = retry.get("max_attempts", _RETRY_DEFAULTS["max_attempts"])
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise ValueError(
                f"cannot write node {name!r}: retry max_attempts={attempts!r} is not an int"
            )
        parts.append(f"retry={attempts}")
        for opt, fld in OPTION_FIELDS.items():
            if fld == "max_attempts" or fld not in retry or retry[fld] == _RETRY_DEFAULTS[fld]:
                continue
            if fld == "jitter":
                parts.append(f"jitter={'true' if retry[fld] else 'false'}")
            else:
                parts.append(f"{opt}={format_number(retry[fld], f'{opt} of node {name!r}')}")
    if node.get("timeout") is not None:
        parts.append(
            f"timeout={format_number(node['timeout'], 'timeout of node ' + repr(node['name']))}"
        )
    loop = node.get("loop")
    if loop:
        parts[:0] = _loop_options(node["name"], loop)
    comp = node.get("compensate")
    if comp:
        fn = comp.get("name") or ""
        if not _is_function_path(fn):
            raise ValueError(
                f"cannot write node {node['name']!r}: its compensation {fn!r} has no name the cell can refer to"
            )
        parts.append(f"compensate={fn}")
    cache = node.get("cache")
    if cache is not None:  # cache=true (no TTL) or cache=<ttl seconds>
        ttl = cache.get("ttl")
        parts.append("cache=true" if ttl is None else f"cache={format_number(ttl, 'cache ttl of node ' + repr(node['name']))}")
    return f" [{', '.join(parts)}]" if parts else ""


def _loop_options(name: str, loop: Mapping[str, Any]) -> list[str]:
    """``foreach=items, into=results, ...`` / ``while=cond, ...``: options at their defaults left out."""
    if loop.get("kind") == "foreach":
        parts = [f"foreach={_key(loop['over'])}", f"into={_key(loop['into'])}"]
        for opt in ("max_concurrency", "on_error"):
            if loop.get(opt, LOOP_DEFAULTS[opt]) != LOOP_DEFAULTS[opt]:
                parts.append(f"{opt}={loop[opt]}")
        if loop.get("errors_into"):
            parts.append(f"errors_into={_key(loop['errors_into'])}")
        return parts
    cond = loop.get("condition") or ""
    if not _is_function_path(cond):
        raise ValueError(
            f"cannot write while loop {name!r} as cell text: its condition {cond!r} has no name the cell "
            "can refer to. Define it with def, or bind it to a name."
        )
    parts = [f"while={cond}"]
    if loop.get("max_iterations", 50) != 50:
        parts.append(f"max_iterations={loop['max_iterations']}")
    return parts


def _function_name(node: Mapping[str, Any]) -> str | None:
    """The namespace name a node calls when it differs from the node's name, else None."""
    name = node["name"]
    ref = node.get("ref")
    if not ref:
        target = node.get("target") or ""
        qualname = target.rpartition(":")[2]
        ref = qualname.rpartition(".")[2]
    if ref and _is_function_path(ref):
        return None if ref == name else ref
    if NAME_RE.fullmatch(name):
        return None  # e.g. ``plan = lambda s: ...`` in the notebook: the node name finds it
    raise ValueError(
        f"cannot write node {name!r} as cell text: its function {ref or '?'!r} has no name the cell "
        f"can refer to. Bind it to a name in the notebook (my_fn = ...) and add the node with that."
    )


def _router(branch: Mapping[str, Any]) -> str:
    router = branch.get("router") or ""
    if not _is_function_path(router):
        raise ValueError(
            f"cannot write the conditional edge from {branch['source']!r} as cell text: its router "
            f"{router!r} has no name the cell can refer to. Define it with def, or bind it to a name."
        )
    return router


def _key(key: Any) -> str:
    key = str(key)
    return key if NAME_RE.fullmatch(key) else json.dumps(key)


class _Chain:
    """One line of static links: groups of names joined by arrows."""

    __slots__ = ("groups",)

    def __init__(self, head: tuple[str, ...], tail: tuple[str, ...]) -> None:
        self.groups = [head, tail]


def _chains(graph: Mapping[str, Any], order: Mapping[str, int]) -> list[_Chain]:
    """Static edges and joins as chains: ``a -> b, c -> d`` where that reads naturally.

    A statement continues the chain before it when its sources are exactly the previous tail and
    nothing else feeds those nodes, so merging never hides an edge.
    """
    stmts: dict[tuple[str, ...], _Chain] = {}
    repeats: list[_Chain] = []  # a repeated edge keeps a line of its own
    indegree: dict[str, int] = {}
    links = [((e["source"],), e["target"]) for e in graph.get("edges") or ()]
    links.sort(key=lambda link: order.get(link[0][0], len(order)))
    links += [(tuple(j["sources"]), j["target"]) for j in graph.get("joins") or ()]
    for head, target in links:
        stmt = stmts.setdefault(head, _Chain(head, ()))
        if target in stmt.groups[1]:
            repeats.append(_Chain(head, (target,)))
        else:
            stmt.groups[1] += (target,)
        indegree[target] = indegree.get(target, 0) + 1
    succ: dict[int, _Chain] = {}
    has_pred: set[int] = set()
    for s in stmts.values():
        tail = s.groups[1]
        nxt = stmts.get(tail)
        if (
            nxt is not None
            and nxt is not s
            and id(nxt) not in has_pred
            and all(indegree.get(n) == 1 for n in tail)
        ):
            succ[id(s)] = nxt
            has_pred.add(id(nxt))
    lines: list[_Chain] = []
    seen: set[int] = set()
    starts = [s for s in stmts.values() if id(s) not in has_pred] + list(stmts.values())
    for start in starts:
        if id(start) in seen:
            continue
        line = _Chain(start.groups[0], start.groups[1])
        seen.add(id(start))
        cur = start
        while id(cur) in succ and id(succ[id(cur)]) not in seen:
            cur = succ[id(cur)]
            seen.add(id(cur))
            line.groups.append(cur.groups[1])
        lines.append(line)
    return lines + repeats


def to_dsl(graph: Mapping[str, Any], *, magic: bool = False) -> str:
    """Write a graph description as ``%%agentgraph`` cell text that builds the same graph.

    Args:
        graph: the graph description, as ``app.to_json()`` returns it.
        magic: start with the ``%%agentgraph <name> --state <Schema>`` line, ready to paste
            into a cell.

    Returns:
        The cell text, ending with a newline.

    Raises:
        ValueError: something the cell language cannot express, e.g. a router that is a
            lambda (it has no name for the cell to refer to).

    Example:
        >>> print(to_dsl(app.to_json()))  # doctest: +SKIP
        START -> plan -> search
        search -> search | write ? route
        write -> END
    """
    fmt = graph.get("format")
    if fmt is not None and fmt != FORMAT:
        raise ValueError(f"not a graph description: format is {fmt!r}, expected {FORMAT!r}")
    nodes: Sequence[Mapping[str, Any]] = graph.get("nodes") or ()
    names = [n["name"] for n in nodes]
    order = {START: -1, **{n: i for i, n in enumerate(names)}}

    def key(name: str) -> int:
        return order.get(name, len(order))

    # (sort key, text, node names in the order they appear)
    lines: list[tuple[int, str, list[str]]] = []
    for chain in _chains(graph, order):
        text = " -> ".join(", ".join(format_name(n) for n in g) for g in chain.groups)
        lines.append((key(chain.groups[0][0]), text, [n for g in chain.groups for n in g]))
    for b in graph.get("branches") or ():
        src, router = b["source"], _router(b)
        if b.get("path_map"):
            alts = [f"{_key(k)}: {format_name(v)}" for k, v in b["path_map"].items()]
            mentioned = [src, *b["path_map"].values()]
        else:
            targets = b.get("targets") or ()
            alts = [format_name(t) for t in targets]
            mentioned = [src, *targets]
        body = " | ".join(alts)
        text = f"{format_name(src)} -> {body + ' ' if body else ''}? {router}"
        lines.append((key(src), text, mentioned))
    for w in graph.get("weighted") or ():
        src = w["source"]
        alts = [
            f"{format_name(t)}: {format_number(x, f'weight of {t!r} from {src!r}')}"
            for t, x in w["weights"].items()
        ]
        lines.append((key(src), f"{format_name(src)} -> {' | '.join(alts)}", [src, *w["weights"]]))
    for e in graph.get("error_edges") or ():
        on = [x.rpartition(":")[2] for x in e["on"]]
        if not all(_is_function_path(x) for x in on):
            raise ValueError(f"cannot write the error edge from {e['source']!r}: exception names {on!r}")
        text = f"{format_name(e['source'])} !-> {format_name(e['target'])}"
        if on != ["Exception"]:
            text += " on " + ", ".join(on)
        lines.append((key(e["source"]), text, [e["source"], e["target"]]))
    lines.sort(key=lambda item: item[0])  # stable: static, then branches, weights and error edges per source

    # Nodes are added in the order the text first names them, and that order is the merge
    # order. When the edges alone would name them in another order, the shortest prefix of
    # the node list is declared up front. Options and bindings go at the top when that keeps
    # the order (as when the cell was written that way), else after the edges.
    appearance: list[str] = []
    seen: set[str] = set()
    for _, _, mentioned in lines:
        for n in mentioned:
            if n not in seen and n in order and n != START:
                seen.add(n)
                appearance.append(n)
    isolated = [n for n in names if n not in seen]
    # the shortest prefix: everything up to the last node that some later-added node precedes
    k = running = 0
    for n in appearance + isolated:
        if order[n] < running:
            k = max(k, order[n] + 1)
        running = max(running, order[n])
    decl_text = {
        n["name"]: _declaration(n)
        for n in nodes
        if _function_name(n) or _options(n) or _not_expressible(n)
    }
    m = k
    while m < len(names) and names[m] in decl_text:
        m += 1
    if all(order[n] < m for n in decl_text):
        k = m
    header, rest = names[:k], names[k:]
    trailer = [n for n in rest if n in decl_text or n not in seen]

    out: list[str] = []
    if magic:
        name = graph.get("name") or "graph"
        schema = (graph.get("state") or {}).get("schema")
        out.append(f"%%agentgraph {name}" + (f" --state {schema}" if schema else ""))
    head_lines = _declarations(header, decl_text)
    if any(n not in decl_text for n in header):
        out.append("# nodes in the order they were added (it sets the merge order)")
    out.extend(head_lines)
    if head_lines and lines:
        out.append("")
    out.extend(text for _, text, _ in lines)
    tail_lines = _declarations(trailer, decl_text)
    if tail_lines and out and any(n in decl_text for n in trailer):
        out.append("")
    out.extend(tail_lines)
    for t in graph.get("transactions") or ():
        tname = t["name"] if NAME_RE.fullmatch(t["name"]) else json.dumps(t["name"])
        out.append(f"transaction {tname}: {', '.join(format_name(n) for n in t['nodes'])}")
    out.extend(_nested(nodes))
    return "\n".join(out) + "\n"


def _nested(nodes: Sequence[Mapping[str, Any]]) -> list[str]:
    """Comment lines showing each subgraph node's own graph (the cell binds the node to the
    compiled graph by its name; its inside is built in its own cell)."""
    out: list[str] = []
    for n in nodes:
        sub = n.get("subgraph")
        if not sub:
            continue
        out.append("")
        out.append(f"# {n['name']}: subgraph {sub.get('name')!r}, built in its own cell:")
        try:
            text = to_dsl(sub)
        except ValueError as exc:
            text = f"(not expressible as cell text: {exc})\n"
        out.extend(f"#   {line}".rstrip() for line in text.splitlines())
    return out


def _declarations(names: Sequence[str], decl_text: Mapping[str, str]) -> list[str]:
    """A line per node with options or a binding; runs of plain nodes share a line."""
    out: list[str] = []
    plain: list[str] = []
    for n in names:
        if n in decl_text:
            if plain:
                out.append(", ".join(plain))
                plain = []
            out.append(decl_text[n])
        else:
            plain.append(format_name(n))
    if plain:
        out.append(", ".join(plain))
    return out


def _declaration(node: Mapping[str, Any]) -> str:
    fn = _function_name(node)
    name = format_name(node["name"])
    line = f"{name} = {fn}{_options(node)}" if fn else f"{name}{_options(node)}"
    lost = _not_expressible(node)
    return f"{line}  # set in Python, not expressible here: {lost}" if lost else line


def _not_expressible(node: Mapping[str, Any]) -> str:
    """What a node has that the cell language cannot say, for a comment (or "")."""
    lost = []
    if (node.get("retry") or {}).get("retry_on"):
        lost.append(f"retry_on={node['retry']['retry_on']}")
    if node.get("destinations"):
        lost.append(f"destinations={list(node['destinations'])}")
    if node.get("input_schema"):
        lost.append(f"input_schema={node['input_schema']}")
    if (node.get("cache") or {}).get("key_func"):
        lost.append(f"cache key_func={node['cache']['key_func']}")
    return ", ".join(lost)
