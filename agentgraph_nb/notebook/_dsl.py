r"""The ``%%agentgraph`` cell language: a graph in a few lines of text.

A cell body is one statement per line. Names are node names, which are also the names of the
functions they call in the notebook; ``START`` and ``END`` are the graph's entry and exit;
``#`` starts a comment.

Example::

    %%agentgraph research --state State
    START -> plan -> search
    search -> search | write ? route        # conditional: route(state) picks among the two
    plan -> a, b                            # fan-out: a and b run in parallel
    a, b -> join                            # join: join waits for both
    explore -> a: 0.7 | b: 0.3              # weighted: a 70% of the time, b 30%
    write -> END

    search [retry=3, timeout=10]            # options: 3 attempts, 10 s timeout
    write = write_report                    # the node "write" calls write_report(state)
    search !-> apologize on ConnectionError # error edge: a failed search continues at apologize
    charge [compensate=refund]              # saga step: refund(state) undoes it if the run fails

Statements:

``a -> b``
    A static edge. A line may chain them: ``START -> plan -> search -> END``.
``a -> b, c``
    Fan-out: ``b`` and ``c`` run in the same superstep, concurrently.
``a, b -> c``
    A join: ``c`` runs once both ``a`` and ``b`` have run (not two plain edges; for
    those write ``a -> c`` and ``b -> c`` on two lines).
``a -> b, c -> d``
    Each arrow links the whole group on its left to each name on its right, so this is the
    fan-out ``a -> b, c`` followed by the join ``b, c -> d``.
``a -> b | c ? route``
    A conditional edge: ``route(state)`` returns ``"b"``, ``"c"``, a list of them, or
    ``Send`` objects. It ends its line (``START -> plan -> b | c ? route`` routes from ``plan``).
``a -> ? route``
    A conditional edge without declared targets: ``route`` may name any node.
``a -> ok: b | retry: c ? route``
    A path map: ``route`` returns ``"ok"`` or ``"retry"``, which map to nodes ``b`` and ``c``.
``a -> b: 0.7 | c: 0.3``
    Weighted: one of ``b``, ``c`` runs, drawn with these weights (seeded per run).
``a``, ``a, b, c``
    Declares nodes, e.g. one reached only through a router without declared targets.
``a [retry=3, timeout=10]``
    Node options, on a line of their own, anywhere in the cell: ``retry`` (attempts in all,
    1 = never retry), ``timeout`` (seconds), and for the backoff ``interval`` (seconds before
    the first retry), ``backoff`` (factor), ``max_interval`` (seconds), ``jitter``
    (``true``/``false``). Any retry option gives the node a ``RetryPolicy``, with its
    defaults for the rest. ``max_attempts``, ``initial_interval`` and ``backoff_factor`` are
    accepted too.
``each = price [foreach=items, into=prices, max_concurrency=4, on_error=skip, errors_into=failed]``
    A for-each node (``add_foreach``): ``price(item)`` for every item of state key ``items``,
    the results in input order into ``prices``. ``foreach`` and ``into`` are required;
    ``max_concurrency`` (default 4), ``on_error`` (``raise``, ``skip`` or ``collect``),
    ``errors_into`` and the retry options (applied per item) are optional.
``refine = improve [while=needs_work, max_iterations=10]``
    A while loop (``add_while``): ``improve(state)`` runs while ``needs_work(state)`` is true,
    one superstep per iteration, at most ``max_iterations`` (default 50) per entry.
``a [compensate=undo]``
    The node is a step of a saga: ``undo(state)`` runs if the run later fails for good
    (``add_node(..., compensate=undo)``).
``a !-> b``, ``a !-> b on ConnectionError, TimeoutError``
    An error edge (``add_error_edge``): when ``a`` fails for good (with one of those
    exceptions; any ``Exception`` without ``on``), the run continues at ``b``. Exception
    names are looked up in the notebook, then among Python's builtins.
``a [cache=60]``, ``a [cache=true]``
    Cache the node's results (``CachePolicy(ttl=60)``, or with no TTL); ``compile`` keeps them in
    memory unless ``--cache sqlite:///c.db`` (or ``redis://...``) says otherwise.
``transaction checkout: reserve, charge, ship``
    A transaction (``add_transaction``): the nodes, a chain in this order, keep their writes
    only if none of them fails for good.
``a = fn``, ``a = tools.fn [retry=2]``
    Binds node ``a`` to a differently named function (a dotted name reaches into a module or
    object), optionally with options.

Nodes are added in the order the cell first names them; that order is the merge order of
parallel updates. Node names that are not Python identifiers are written in quotes and must be
bound: ``"web search" = search_web``. All-capitals names close to a keyword are quoted too
(``"SEND"``): unquoted, they are taken for a misspelt ``START`` or ``END``. Functions are looked up in the notebook each time they
run, so redefining one in a later cell takes effect without re-running the graph cell.

Grammar (EBNF; tokens are separated by optional spaces)::

    cell        = { line } ;
    line        = [ statement ] [ "#" comment ] newline ;
    statement   = chain | declaration | binding | error_edge | transaction ;
    transaction = "transaction" name ":" group ;
    error_edge  = node "!->" node [ "on" function { "," function } ] ;
    chain       = group "->" { group "->" } ( group | branch | weighted ) ;
    group       = node { "," node } ;
    branch      = [ target { "|" target } ] "?" function ;   (* targets all keyed or none *)
    target      = node | key ":" node ;
    weighted    = node ":" number { "|" node ":" number } ;
    declaration = group [ options ] ;
    binding     = node "=" function [ options ] ;
    options     = "[" [ option { "," option } ] "]" ;
    option      = name "=" ( number | "true" | "false" | name | string ) ;   (* names: loop options, compensate *)
    node        = "START" | "END" | name | string ;
    key         = name | string ;
    function    = name { "." name } ;
    name        = Python identifier ;  string = "..." or '...' (Python escapes) ;

Rules: ``START`` only as a source, ``END`` only as a target; a conditional or weighted edge
has one source; weights are numbers >= 0, not all 0.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentgraph_nb.constants import END, START
from agentgraph_nb.errors import GraphValidationError, did_you_mean
from agentgraph_nb.export.dsl import (
    KEYWORDS,
    LOOP_DEFAULTS,
    LOOP_OPTIONS,
    NAME_RE,
    OPTION_FIELDS,
    OPTION_NAMES,
    OPTION_SYNONYMS,
    looks_like_keyword,
)
from agentgraph_nb.types import CachePolicy, RetryPolicy

__all__ = [
    "Branch",
    "DslGraph",
    "DslSyntaxError",
    "Edge",
    "ErrorEdge",
    "Join",
    "NamespaceRef",
    "NodeDecl",
    "Span",
    "Statement",
    "Transaction",
    "Weighted",
    "build",
    "parse",
]


# --------------------------------------------------------------------------- errors


class DslSyntaxError(GraphValidationError):
    """A mistake in an ``%%agentgraph`` cell, with where it is.

    ``str(error)`` shows the line with a caret under the mistake::

        line 1, column 1: unknown keyword 'STRAT'. Did you mean 'START'? ...
            STRAT -> plan
            ^^^^^

    Attributes:
        msg: the message without the position and the caret.
        line: 1-based line number (in the cell body, plus ``line_offset`` given to :func:`parse`).
        column: 1-based column of the mistake.
        end_column: 1-based column just past it (the caret's extent).
        text: the offending line.
    """

    def __init__(
        self, msg: str, *, line: int, column: int, text: str, end_column: int | None = None
    ) -> None:
        self.msg = msg
        self.line = line
        self.column = column
        self.end_column = max(end_column or column + 1, column + 1)
        self.text = text
        super().__init__(self._render())

    def _render(self) -> str:
        # keep tabs in the prefix so the caret lines up however the tab is displayed
        prefix = "".join(c if c == "\t" else " " for c in self.text[: self.column - 1])
        caret = "^" * max(1, min(self.end_column, len(self.text) + 2) - self.column)
        return f"line {self.line}, column {self.column}: {self.msg}\n    {self.text}\n    {prefix}{caret}"

    def __reduce__(self) -> Any:
        return (_rebuild_error, (self.msg, self.line, self.column, self.text, self.end_column))


def _rebuild_error(msg: str, line: int, column: int, text: str, end: int) -> DslSyntaxError:
    return DslSyntaxError(msg, line=line, column=column, text=text, end_column=end)


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Span:
    """Where something is in the cell: ``line`` and 1-based ``column`` .. ``end_column`` (exclusive)."""

    line: int
    column: int
    end_column: int


@dataclass(frozen=True)
class NodeDecl:
    """A node: every name the cell uses as a node, merged over all the lines that mention it.

    Attributes:
        name: the node's name.
        target: the namespace name it calls (``search = web_search``), or None for ``name``.
        options: ``retry``, ``timeout``, ``interval``, ``backoff``, ``max_interval``,
            ``jitter`` as given (ints, floats, bools).
        span: the first mention of the node.
        target_span: where ``target`` is written.
    """

    name: str
    target: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    span: Span | None = field(default=None, compare=False, repr=False)
    target_span: Span | None = field(default=None, compare=False, repr=False)
    option_spans: Mapping[str, Span] = field(default_factory=dict, compare=False, repr=False)

    @property
    def function(self) -> str:
        """The namespace name the node calls."""
        return self.target or self.name

    @property
    def retry(self) -> RetryPolicy | None:
        """The node's :class:`RetryPolicy`, or None when no retry option is given."""
        kwargs = {OPTION_FIELDS[k]: v for k, v in self.options.items() if k in OPTION_FIELDS}
        return RetryPolicy(**kwargs) if kwargs else None

    @property
    def timeout(self) -> float | None:
        """Seconds per attempt, or None."""
        t = self.options.get("timeout")
        return None if t is None else float(t)

    @property
    def compensate(self) -> str | None:
        """The namespace name of the node's compensation (``[compensate=refund]``), or None."""
        c = self.options.get("compensate")
        return None if c is None else str(c)

    @property
    def cache(self) -> CachePolicy | None:
        """The node's :class:`CachePolicy` (``cache=true``, or ``cache=<ttl seconds>``), or None."""
        c = self.options.get("cache")
        if c is None or c is False:
            return None
        return CachePolicy() if c is True else CachePolicy(ttl=float(c))


@dataclass(frozen=True)
class Edge:
    """A static edge ``source -> target``."""

    source: str
    target: str
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Join:
    """``a, b -> target``: ``target`` runs once every source has run."""

    sources: tuple[str, ...]
    target: str
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Branch:
    """A conditional edge ``source -> targets ? router``.

    Attributes:
        source: the node whose end runs the router.
        router: the namespace name of the router function.
        targets: the declared targets in order, or None (dynamic: any node).
        path_map: ``{router result: node}`` for ``key: node`` targets, else None.
    """

    source: str
    router: str
    targets: tuple[str, ...] | None = None
    path_map: Mapping[str, str] | None = None
    span: Span | None = field(default=None, compare=False, repr=False)
    router_span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Weighted:
    """``source -> a: 0.7 | b: 0.3``: one target runs, drawn with these weights."""

    source: str
    weights: Mapping[str, float]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ErrorEdge:
    """``source !-> target on E1, E2``: when ``source`` fails for good with one of ``on``
    (namespace or builtin exception names; ``()``: any Exception), the run continues at ``target``."""

    source: str
    target: str
    on: tuple[str, ...] = ()
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Transaction:
    """``transaction name: a, b, c``: the chain ``a -> b -> c`` commits its writes whole."""

    name: str
    nodes: tuple[str, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


Statement = Edge | Join | Branch | Weighted | ErrorEdge | Transaction


@dataclass(frozen=True)
class DslGraph:
    """A parsed cell.

    Attributes:
        nodes: every node, in the order the cell first names it (START/END excluded).
        edges, joins, branches, weighted: the links of each kind, in text order.
        statements: all links in text order (the order :func:`build` adds them).
        lines: the cell's lines, for error messages.
        line_offset: added to line numbers in messages.
    """

    nodes: tuple[NodeDecl, ...] = ()
    edges: tuple[Edge, ...] = ()
    joins: tuple[Join, ...] = ()
    branches: tuple[Branch, ...] = ()
    weighted: tuple[Weighted, ...] = ()
    statements: tuple[Statement, ...] = field(default=(), compare=False, repr=False)
    lines: tuple[str, ...] = field(default=(), compare=False, repr=False)
    line_offset: int = field(default=0, compare=False, repr=False)
    error_edges: tuple[ErrorEdge, ...] = ()
    transactions: tuple[Transaction, ...] = ()

    def node(self, name: str) -> NodeDecl:
        """The declaration of node ``name`` (KeyError if the cell does not name it)."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def error(self, msg: str, span: Span | None) -> DslSyntaxError:
        """A :class:`DslSyntaxError` at ``span`` (the first line when None)."""
        span = span or Span(1 + self.line_offset, 1, 1)
        idx = span.line - self.line_offset - 1
        text = self.lines[idx] if 0 <= idx < len(self.lines) else ""
        return DslSyntaxError(
            msg, line=span.line, column=span.column, text=text, end_column=span.end_column
        )


# --------------------------------------------------------------------------- tokens

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#.*)
  | (?P<badarrow>-->|->>|=>|<-|[\u2192\u27f6\u21d2]|[\u2013\u2014]>)
  | (?P<errarrow>!->)
  | (?P<arrow>->)
  | (?P<number>[+-]?\.?\d(?:[\w.]|(?<=[eE])[+-])*)
  | (?P<name>[^\W\d]\w*(?:\.[^\W\d]\w*)*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<punct>[,|?:=\[\]])
    """,
    re.VERBOSE,
)
# Python's rules for digits: an underscore only between two digits (1_000, not 1_ or 1__0 or 0_.3)
_DIGITS = r"\d(?:_?\d)*"
_NUMBER_RE = re.compile(rf"[+-]?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?")
_INT_RE = re.compile(rf"\+?{_DIGITS}")


@dataclass(frozen=True)
class _Tok:
    kind: str  # arrow, number, name, string, or the punctuation character itself
    value: str
    col: int  # 1-based
    end: int  # 1-based, exclusive


class _Line:
    """One line's tokens and the helpers to report a mistake in it."""

    def __init__(self, text: str, lineno: int) -> None:
        self.text = text
        self.lineno = lineno
        self.toks = list(self._tokenize())

    def error(self, msg: str, at: _Tok | int, end: int | None = None) -> DslSyntaxError:
        if isinstance(at, _Tok):
            col, end = at.col, at.end if end is None else end
        else:
            col = at
        return DslSyntaxError(msg, line=self.lineno, column=col, text=self.text, end_column=end)

    def span(self, first: _Tok, last: _Tok | None = None) -> Span:
        return Span(self.lineno, first.col, (last or first).end)

    def _tokenize(self) -> Iterator[_Tok]:
        text, pos = self.text, 0
        while pos < len(text):
            m = _TOKEN_RE.match(text, pos)
            if m is None:
                ch = text[pos]
                if ch in "\"'":
                    raise self.error(
                        f"unterminated string: add the closing {ch}", pos + 1, len(text) + 1
                    )
                if ch == "-":
                    raise self.error("unexpected '-': an arrow is written '->'", pos + 1)
                raise self.error(
                    f"unexpected character {ch!r}: a line is a chain like 'a -> b', a node "
                    f"declaration like 'a [retry=3]', or a binding like 'a = fn'",
                    pos + 1,
                )
            kind, value = m.lastgroup or "", m.group()
            col, pos = pos + 1, m.end()
            if kind in ("ws", "comment"):
                continue
            if kind == "badarrow":
                raise self.error(f"unknown token {value!r}. Did you mean '->'?", col, pos + 1)
            yield _Tok(value if kind == "punct" else kind, value, col, pos + 1)


# --------------------------------------------------------------------------- parser


class _NodeAcc:
    __slots__ = ("name", "option_spans", "options", "span", "target", "target_span")

    def __init__(self, name: str, span: Span) -> None:
        self.name = name
        self.span = span
        self.target: str | None = None
        self.target_span: Span | None = None
        self.options: dict[str, Any] = {}
        self.option_spans: dict[str, Span] = {}

    def freeze(self) -> NodeDecl:
        return NodeDecl(
            self.name,
            self.target,
            dict(self.options),
            self.span,
            self.target_span,
            dict(self.option_spans),
        )


class _Parser:
    def __init__(self, line_offset: int) -> None:
        self.offset = line_offset
        self.nodes: dict[str, _NodeAcc] = {}
        self.statements: list[Statement] = []
        self.line: _Line

    # ---- names

    def mention(self, name: str, tok: _Tok) -> None:
        if name not in (START, END) and name not in self.nodes:
            self.nodes[name] = _NodeAcc(name, self.line.span(tok))

    def node_name(self, tok: _Tok, role: str) -> str:
        """The node a token names. ``role``: "source", "target", "join source" or "declaration"."""
        ln = self.line
        if tok.kind == "name":
            name = tok.value
            if "." in name:
                raise ln.error(
                    f"a node name cannot contain '.': bind the function to a node on a line of its "
                    f"own, e.g. '{name.rpartition('.')[2]} = {name}'",
                    tok,
                )
            if name in (START, END):
                raise ln.error(f"{name!r} is reserved; write {_show(name)} instead", tok)
            name = KEYWORDS.get(name, name)
            near = looks_like_keyword(name)
            if near is not None:
                raise ln.error(
                    f"unknown keyword {name!r}. Did you mean {near!r}? "
                    f'(If it is a node, write it in quotes: "{name}".)',
                    tok,
                )
        elif tok.kind == "string":
            name = self.string(tok)
            if not name:
                raise ln.error("a node name cannot be empty", tok)
            if name in (START, END):
                raise ln.error(f"{name!r} is reserved; write {_show(name)} instead", tok)
        else:
            raise ln.error(f"expected a node name, got {tok.value!r}", tok)
        if name == START and role != "source":
            what = {
                "target": "START cannot be a target: it is where every run begins",
                "join source": "START cannot be part of a join",
                "declaration": "START is built in: do not declare it",
            }[role]
            raise ln.error(what, tok)
        if name == END and role != "target":
            what = {
                "source": "END cannot be a source: nothing runs after END",
                "join source": "END cannot be a source: nothing runs after END",
                "declaration": "END is built in: do not declare it",
            }[role]
            raise ln.error(what, tok)
        return name

    def string(self, tok: _Tok) -> str:
        try:
            return str(ast.literal_eval(tok.value))
        except (ValueError, SyntaxError) as exc:
            raise self.line.error(f"cannot read this string: {exc}", tok) from None

    def function_name(self, tok: _Tok | None, after: _Tok, what: str) -> str:
        ln = self.line
        if tok is None:
            raise ln.error(f"expected {what} after {after.value!r}", after)
        if tok.kind != "name" or tok.value in KEYWORDS:
            raise ln.error(
                f"expected {what} (a Python name) after {after.value!r}, got {tok.value!r}", tok
            )
        return tok.value

    # ---- lines

    def parse_line(self, line: _Line) -> None:
        self.line = line
        toks = line.toks
        if not toks:
            return
        if any(t.kind == "errarrow" for t in toks):
            self.parse_error_edge(toks)
            return
        if (len(toks) > 2 and toks[0].kind == "name" and toks[0].value == "transaction"
                and toks[1].kind in ("name", "string") and not any(t.kind == "arrow" for t in toks)):
            self.parse_transaction(toks)
            return
        arrows = [t for t in toks if t.kind == "arrow"]
        if arrows:
            self.parse_chain(toks)
        elif len(toks) > 1 and toks[1].kind == "=":
            self.parse_binding(toks)
        else:
            self.parse_declaration(toks)

    def parse_group(self, toks: list[_Tok], role: str) -> list[tuple[str, _Tok]]:
        """``node {"," node}`` -> [(name, token)]."""
        ln = self.line
        out: list[tuple[str, _Tok]] = []
        expect_name = True
        for t in toks:
            if expect_name:
                if t.kind == ",":
                    raise ln.error("expected a node name before ','", t)
                out.append(
                    (
                        self.node_name(
                            t, role if len(toks) == 1 or role != "source" else "join source"
                        ),
                        t,
                    )
                )
            elif t.kind != ",":
                hint = {
                    "|": "'|' separates the targets of a conditional or weighted edge (which ends its line)",
                    "?": "a conditional edge ends its line",
                    ":": "a weighted edge ends its line",
                    "[": "options go on a line of their own, e.g. 'plan [retry=3]'",
                    "=": "bind a function on a line of its own, e.g. 'search = web_search'",
                }.get(t.kind, "separate names with ',' and links with '->'")
                raise ln.error(f"unexpected {t.value!r} after {out[-1][1].value!r}: {hint}", t)
            expect_name = not expect_name
        if expect_name and out:
            raise ln.error("expected a node name after ','", toks[-1])
        seen: dict[str, _Tok] = {}
        for name, t in out:
            if name in seen:
                raise ln.error(f"{name!r} appears twice in this group", t)
            seen[name] = t
        return out

    def parse_chain(self, toks: list[_Tok]) -> None:
        ln = self.line
        segments: list[list[_Tok]] = [[]]
        arrows: list[_Tok] = []
        for t in toks:
            if t.kind == "arrow":
                arrows.append(t)
                segments.append([])
            else:
                segments[-1].append(t)
        if not segments[0]:
            raise ln.error("'->' needs a source on its left, e.g. 'START -> plan'", arrows[0])
        for arrow, seg in zip(arrows, segments[1:], strict=True):
            if not seg:
                raise ln.error(
                    "'->' needs a target on its right, e.g. 'plan -> search' or 'write -> END'",
                    arrow,
                )
        for seg in segments[:-1]:
            for t in seg:
                if t.kind in ("?", "|", ":"):
                    raise ln.error(
                        f"unexpected {t.value!r}: a conditional or weighted edge must end its line "
                        f"(start a new line with its source)",
                        t,
                    )
        groups: list[list[tuple[str, _Tok]]] = []
        for i, seg in enumerate(segments[:-1]):
            role = "source" if i == 0 else "target"
            group = self.parse_group(seg, role)
            if i > 0:
                for name, t in group:
                    if name == END:
                        raise ln.error("END cannot be a source: nothing runs after END", t)
            groups.append(group)
        last = segments[-1]
        kinds = {t.kind for t in last}
        if "|" in kinds and not kinds & {"?", ":"}:
            bar = next(t for t in last if t.kind == "|")
            raise ln.error(
                "'|' separates alternatives, which need a router ('a -> b | c ? route') "
                "or weights ('a -> b: 0.7 | c: 0.3')",
                bar,
            )
        if not kinds & {"?", ":"}:
            groups.append(self.parse_group(last, "target"))
        self.mention_groups(groups)
        for left, right in itertools.pairwise(groups):
            for tgt, tt in right:
                if len(left) == 1:
                    src, st = left[0]
                    self.statements.append(Edge(src, tgt, ln.span(st, tt)))
                else:
                    sources = tuple(n for n, _ in left)
                    self.statements.append(Join(sources, tgt, ln.span(left[0][1], tt)))
        if "?" in kinds:
            self.parse_branch(groups[-1], last)
        elif ":" in kinds:
            self.parse_weighted(groups[-1], last)

    def mention_groups(self, groups: list[list[tuple[str, _Tok]]]) -> None:
        for group in groups:
            for name, t in group:
                self.mention(name, t)

    def single_source(self, group: list[tuple[str, _Tok]], what: str) -> tuple[str, _Tok]:
        if len(group) != 1:
            raise self.line.error(
                f"a {what} edge has one source; write one line per source", group[1][1]
            )
        return group[0]

    def parse_branch(self, group: list[tuple[str, _Tok]], toks: list[_Tok]) -> None:
        ln = self.line
        src, st = self.single_source(group, "conditional")
        qi = next(i for i, t in enumerate(toks) if t.kind == "?")
        q = toks[qi]
        router_tok = toks[qi + 1] if qi + 1 < len(toks) else None
        router = self.function_name(router_tok, q, "the router's name")
        assert router_tok is not None
        if qi + 2 < len(toks):
            extra = toks[qi + 2]
            raise ln.error(f"unexpected {extra.value!r} after the router {router!r}", extra)
        alts = self.split_alternatives(toks[:qi], "conditional")
        targets: dict[str, None] = {}  # ordered, with O(1) membership: a branch may have 50,000 targets
        path_map: dict[str, str] | None = None
        keyed = [len(a) == 3 for a in alts]
        if any(keyed) and not all(keyed):
            bad = alts[keyed.index(False)][0]
            raise ln.error(
                "either every target of a conditional edge has a key ('ok: b | no: c ? route') or none has",
                bad,
            )
        for alt in alts:
            if len(alt) == 3:
                key_tok, _, node_tok = alt
                if key_tok.kind == "name" and "." not in key_tok.value:
                    key = key_tok.value
                elif key_tok.kind == "string":
                    key = self.string(key_tok)
                else:
                    raise ln.error(
                        f"a path-map key is a name or a quoted string, got {key_tok.value!r}",
                        key_tok,
                    )
                if node_tok.kind == "number":
                    raise ln.error(
                        f"a conditional edge maps keys to nodes, got the number {node_tok.value!r} "
                        f"(weighted edges have no '? router')",
                        node_tok,
                    )
                name = self.node_name(node_tok, "target")
                path_map = {} if path_map is None else path_map
                if key in path_map:
                    raise ln.error(f"the key {key!r} appears twice", key_tok)
                path_map[key] = name
                targets[name] = None
            else:
                name = self.node_name(alt[0], "target")
                if name in targets:
                    raise ln.error(f"{name!r} appears twice among the targets", alt[0])
                targets[name] = None
            self.mention(name, alt[-1])
        self.statements.append(
            Branch(
                src,
                router,
                tuple(targets) if alts else None,
                path_map,
                ln.span(st, router_tok),
                ln.span(router_tok),
            )
        )

    def split_alternatives(self, toks: list[_Tok], what: str) -> list[list[_Tok]]:
        """``x {"|" x}`` where x is one token or ``tok ":" tok``."""
        ln = self.line
        if not toks:
            return []
        alts: list[list[_Tok]] = [[]]
        for t in toks:
            if t.kind == "|":
                if not alts[-1]:
                    raise ln.error(f"expected a target before '|' in this {what} edge", t)
                alts.append([])
            elif t.kind == ",":
                raise ln.error(f"separate the targets of a {what} edge with '|', not ','", t)
            else:
                alts[-1].append(t)
        if not alts[-1]:
            raise ln.error(f"expected a target after '|' in this {what} edge", toks[-1])
        for alt in alts:
            if alt[0].kind == ":":
                what_before = "key" if what == "conditional" else "target"
                raise ln.error(f"expected a {what_before} before ':'", alt[0])
            if len(alt) == 2 and alt[1].kind == ":":
                raise ln.error(
                    f"expected a {'node' if what == 'conditional' else 'weight'} after ':'", alt[1]
                )
            if len(alt) == 3 and alt[1].kind == ":":
                continue
            if len(alt) == 1:
                continue
            bad = alt[1] if alt[1].kind != ":" else alt[3]
            raise ln.error(
                f"unexpected {bad.value!r}: separate the targets of a {what} edge with '|'", bad
            )
        return alts

    def parse_weighted(self, group: list[tuple[str, _Tok]], toks: list[_Tok]) -> None:
        ln = self.line
        src, st = self.single_source(group, "weighted")
        weights: dict[str, float] = {}
        for alt in self.split_alternatives(toks, "weighted"):
            if len(alt) == 1:
                raise ln.error(
                    f"{alt[0].value!r} needs a weight: every target of a weighted edge is 'name: weight'",
                    alt[0],
                )
            node_tok, _, w_tok = alt
            name = self.node_name(node_tok, "target")
            if w_tok.kind != "number":
                raise ln.error(
                    f"the weight of {name!r} must be a number, got {w_tok.value!r}"
                    + (
                        " (a conditional edge needs '? router' at the end)"
                        if w_tok.kind == "name"
                        else ""
                    ),
                    w_tok,
                )
            value = self.number(w_tok, f"the weight of {name!r}")
            if value < 0:
                raise ln.error(f"the weight of {name!r} must be >= 0, got {w_tok.value}", w_tok)
            if name in weights:
                raise ln.error(f"{name!r} appears twice in this weighted edge", node_tok)
            weights[name] = value
            self.mention(name, node_tok)
        if not any(weights.values()):
            raise ln.error(
                "the weights add up to 0: give at least one target a positive weight",
                toks[0],
                toks[-1].end,
            )
        if not math.isfinite(sum(weights.values())):
            raise ln.error(
                "the weights add up to more than the largest number: scale them down (only their "
                "ratios matter, e.g. 0.7 and 0.3)",
                toks[0],
                toks[-1].end,
            )
        self.statements.append(Weighted(src, weights, ln.span(st, toks[-1])))

    def number(self, tok: _Tok, what: str) -> float:
        if not _NUMBER_RE.fullmatch(tok.value):
            raise self.line.error(f"{what} is not a number: {tok.value!r}{_underscore_hint(tok.value)}", tok)
        try:
            value = float(tok.value)
        except ValueError:  # the pattern should have caught it; never let a bare ValueError out
            raise self.line.error(f"{what} is not a number: {tok.value!r}", tok) from None
        if not math.isfinite(value):
            raise self.line.error(f"{what} is too large: {tok.value!r}", tok)
        return value

    def parse_binding(self, toks: list[_Tok]) -> None:
        ln = self.line
        name = self.node_name(toks[0], "declaration")
        fn_tok = toks[2] if len(toks) > 2 else None
        fn = self.function_name(fn_tok, toks[1], "a function name")
        assert fn_tok is not None
        self.mention(name, toks[0])
        acc = self.nodes[name]
        if acc.target is not None and acc.target != fn:
            assert acc.target_span is not None
            raise ln.error(
                f"node {name!r} is already bound to {acc.target!r} on line {acc.target_span.line}",
                fn_tok,
            )
        acc.target, acc.target_span = fn, ln.span(fn_tok)
        rest = toks[3:]
        if rest and rest[0].kind != "[":
            raise ln.error(
                f"unexpected {rest[0].value!r} after {fn!r}: only options ('[retry=3]') may follow",
                rest[0],
            )
        if rest:
            self.parse_options(rest, [name])

    def parse_declaration(self, toks: list[_Tok]) -> None:
        ln = self.line
        bracket = next((i for i, t in enumerate(toks) if t.kind == "["), len(toks))
        head = toks[:bracket]
        if not head:
            raise ln.error("options need a node: write 'search [retry=3]'", toks[0])
        # a missing arrow is the likeliest mistake: 'a b' or 'a -'
        for prev, t in itertools.pairwise(head):
            if prev.kind != "," and t.kind != ",":
                raise ln.error(
                    f"unexpected {t.value!r} after {prev.value!r}: expected '->', ',' or '['", t
                )
        group = self.parse_group(head, "declaration")
        for name, t in group:
            self.mention(name, t)
        if bracket < len(toks):
            self.parse_options(toks[bracket:], [n for n, _ in group])

    def parse_error_edge(self, toks: list[_Tok]) -> None:
        """``a !-> b [on E1, E2]``."""
        ln = self.line
        if len(toks) < 3 or toks[1].kind != "errarrow" or toks[2].kind not in ("name", "string"):
            at = toks[1] if len(toks) > 1 and toks[1].kind != "errarrow" else toks[-1]
            raise ln.error("an error edge is written 'node !-> handler' (optionally 'on ExcType, ...')", at)
        source = self.node_name(toks[0], "source")
        target = self.node_name(toks[2], "target")
        for name, tok in ((source, toks[0]), (target, toks[2])):
            if name in (START, END):
                raise ln.error("an error edge links two nodes (not START or END)", tok)
        on: list[str] = []
        rest = toks[3:]
        if rest:
            if rest[0].kind != "name" or rest[0].value != "on" or len(rest) < 2:
                raise ln.error("after an error edge's handler, only 'on ExcType, ...' may follow", rest[0])
            expect = True
            for t in rest[1:]:
                if expect:
                    if t.kind != "name":
                        raise ln.error(f"expected an exception name, got {t.value!r}", t)
                    on.append(t.value)
                elif t.kind != ",":
                    raise ln.error(f"expected ',' between exception names, got {t.value!r}", t)
                expect = not expect
            if expect:
                raise ln.error("expected an exception name after ','", rest[-1])
        self.mention(source, toks[0])
        self.mention(target, toks[2])
        self.statements.append(ErrorEdge(source, target, tuple(on), ln.span(toks[0], toks[-1])))

    def parse_transaction(self, toks: list[_Tok]) -> None:
        """``transaction name: a, b, c``."""
        ln = self.line
        name = self.string(toks[1]) if toks[1].kind == "string" else toks[1].value
        if toks[2].kind != ":" or len(toks) < 4:
            raise ln.error("a transaction is written 'transaction name: node, node, ...'", toks[2])
        group = self.parse_group(toks[3:], "declaration")
        for n, t in group:
            self.mention(n, t)
        self.statements.append(Transaction(name, tuple(n for n, _ in group), ln.span(toks[0], toks[-1])))

    def parse_options(self, toks: list[_Tok], names: list[str]) -> None:
        ln = self.line
        open_tok = toks[0]
        close = next((i for i, t in enumerate(toks) if t.kind == "]"), None)
        if close is None:
            raise ln.error("unterminated option list: add ']'", open_tok, toks[-1].end)
        if close + 1 < len(toks):
            extra = toks[close + 1]
            raise ln.error(f"unexpected {extra.value!r} after the option list", extra)
        body = toks[1:close]
        i = 0
        while i < len(body):
            key_tok = body[i]
            if key_tok.kind != "name":
                raise ln.error(f"expected an option name, got {key_tok.value!r}", key_tok)
            if i + 1 >= len(body) or body[i + 1].kind != "=":
                at = body[i + 1] if i + 1 < len(body) else toks[close]
                raise ln.error(f"expected '=' after the option {key_tok.value!r}", at)
            if i + 2 >= len(body) or body[i + 2].kind in (",", "]"):
                raise ln.error(f"expected a value for the option {key_tok.value!r}", body[i + 1])
            val_tok = body[i + 2]
            key = OPTION_SYNONYMS.get(key_tok.value, key_tok.value)
            if key not in OPTION_NAMES:
                choices = [*OPTION_NAMES, *OPTION_SYNONYMS]
                raise ln.error(
                    f"unknown option {key_tok.value!r}.{did_you_mean(key_tok.value, choices)} "
                    f"Options: {', '.join(OPTION_NAMES)}",
                    key_tok,
                )
            value = self.option_value(key, val_tok)
            for name in names:
                acc = self.nodes[name]
                if key in acc.options:
                    raise ln.error(
                        f"option {key!r} of node {name!r} is already set on line "
                        f"{acc.option_spans[key].line}",
                        key_tok,
                    )
                acc.options[key] = value
                acc.option_spans[key] = ln.span(key_tok, val_tok)
            i += 3
            if i < len(body):
                if body[i].kind != ",":
                    raise ln.error(f"expected ',' or ']' after {val_tok.value!r}", body[i])
                i += 1
                if i >= len(body):
                    raise ln.error("expected an option after ','", body[i - 1])

    def option_value(self, key: str, tok: _Tok) -> Any:
        ln = self.line
        if key in LOOP_OPTIONS:
            return self.loop_option(key, LOOP_OPTIONS[key], tok)
        if key == "compensate":
            if tok.kind != "name":
                raise ln.error(f"compensate names a function (compensate=refund), got {tok.value!r}", tok)
            return tok.value
        if key == "cache":  # cache=true, or cache=<seconds the results stay valid>
            if tok.kind == "name" and tok.value.lower() in ("true", "false"):
                return tok.value.lower() == "true"
            if tok.kind == "number" and self.number(tok, key) > 0:
                return self.number(tok, key)
            raise ln.error(f"cache is true, false or a TTL in seconds > 0, got {tok.value!r}", tok)
        if key == "jitter":
            if tok.kind == "name" and tok.value.lower() in ("true", "false"):
                return tok.value.lower() == "true"
            raise ln.error(f"jitter is true or false, got {tok.value!r}", tok)
        if tok.kind != "number":
            raise ln.error(f"{key} must be a number, got {tok.value!r}", tok)
        if key == "retry":
            try:
                attempts = int(tok.value) if _INT_RE.fullmatch(tok.value) else 0
            except ValueError:  # more digits than int() converts
                attempts = 0
            if attempts < 1:
                raise ln.error(
                    f"retry is the number of attempts in all, a whole number >= 1 "
                    f"(1 = never retry), got {tok.value!r}{_underscore_hint(tok.value)}",
                    tok,
                )
            return attempts
        value = self.number(tok, key)
        low, strict = {"timeout": (0, True), "backoff": (1, False)}.get(key, (0, False))
        if value < low or (strict and value == low):
            raise ln.error(f"{key} must be {'>' if strict else '>='} {low}, got {tok.value!r}", tok)
        return value


    def loop_option(self, key: str, kind: str, tok: _Tok) -> Any:
        ln = self.line
        if kind == "key":
            if tok.kind == "string":
                text = self.string(tok)
                if text:
                    return text
            elif tok.kind == "name" and "." not in tok.value:
                return tok.value
            raise ln.error(f"{key} names a state key (a name, or a quoted string), got {tok.value!r}", tok)
        if kind == "int":
            number = int(tok.value) if tok.kind == "number" and _INT_RE.fullmatch(tok.value) else 0
            if number < 1:
                raise ln.error(f"{key} must be a whole number >= 1, got {tok.value!r}", tok)
            return number
        if kind == "word":
            choices = ("raise", "skip", "collect")
            if tok.kind == "name" and tok.value in choices:
                return tok.value
            raise ln.error(
                f"{key} is one of {', '.join(choices)}, got {tok.value!r}.{did_you_mean(tok.value, choices)}", tok)
        if tok.kind != "name" or tok.value in KEYWORDS:
            raise ln.error(f"{key} names the loop's condition function (a Python name), got {tok.value!r}", tok)
        return tok.value


def _check_loops(dsl: DslGraph) -> None:
    """Loop options that do not go together (at the option's position in the cell)."""
    foreach_only = ("into", "max_concurrency", "on_error", "errors_into")
    for n in dsl.nodes:
        opts, spans = n.options, n.option_spans
        if "foreach" in opts and "while" in opts:
            raise dsl.error(f"node {n.name!r} cannot be both a for-each (foreach=) and a while loop (while=)",
                            spans["while"])
        if "foreach" in opts and "into" not in opts:
            raise dsl.error(
                f"node {n.name!r}: foreach= needs into=, the state key the results go to, e.g. "
                f"'[foreach={opts['foreach']}, into=results]'", spans["foreach"])
        if "foreach" in opts and "timeout" in opts:
            raise dsl.error(f"node {n.name!r}: timeout does not apply to a for-each node", spans["timeout"])
        for k in foreach_only:
            if k in opts and "foreach" not in opts:
                raise dsl.error(f"node {n.name!r}: {k}= goes with foreach=KEY (a for-each node)", spans[k])
        if "max_iterations" in opts and "while" not in opts:
            raise dsl.error(f"node {n.name!r}: max_iterations= goes with while=CONDITION (a while loop)",
                            spans["max_iterations"])


def _underscore_hint(text: str) -> str:
    if "_" not in text:
        return ""
    return " (an '_' in a number goes between two digits, as in 1_000)"


def parse(text: str, *, line_offset: int = 0) -> DslGraph:
    """Parse the body of an ``%%agentgraph`` cell.

    Only syntax is checked here; names are resolved by :func:`build`.

    Args:
        text: the cell body.
        line_offset: added to every line number in errors (1 when the body starts on the
            line after the ``%%agentgraph`` line, so the numbers match the cell).

    Raises:
        DslSyntaxError: with the line, column and a caret under the mistake.

    Example:
        >>> g = parse("START -> plan -> a, b\\na, b -> END")
        >>> [n.name for n in g.nodes]
        ['plan', 'a', 'b']
        >>> g.joins
        (Join(sources=('a', 'b'), target='__end__'),)
    """
    lines = tuple(text.splitlines())
    p = _Parser(line_offset)
    for i, raw in enumerate(lines):
        p.parse_line(_Line(raw, i + 1 + line_offset))
    stmts = tuple(p.statements)
    dsl = DslGraph(
        nodes=tuple(acc.freeze() for acc in p.nodes.values()),
        edges=tuple(s for s in stmts if isinstance(s, Edge)),
        joins=tuple(s for s in stmts if isinstance(s, Join)),
        branches=tuple(s for s in stmts if isinstance(s, Branch)),
        weighted=tuple(s for s in stmts if isinstance(s, Weighted)),
        statements=stmts,
        lines=lines,
        line_offset=line_offset,
        error_edges=tuple(s for s in stmts if isinstance(s, ErrorEdge)),
        transactions=tuple(s for s in stmts if isinstance(s, Transaction)),
    )
    _check_loops(dsl)
    return dsl


# --------------------------------------------------------------------------- hot reload


class _Missing(Exception):
    def __init__(self, path: str, choices: list[str]) -> None:
        self.path = path
        self.choices = choices


def _public_callables(namespace: Mapping[str, Any]) -> list[str]:
    return [
        k
        for k, v in namespace.items()
        if isinstance(k, str) and not k.startswith("_") and callable(v) and not isinstance(v, type)
    ]


def _lookup(namespace: Mapping[str, Any], path: str) -> Any:
    head, *rest = path.split(".")
    try:
        obj = namespace[head]
    except KeyError:
        raise _Missing(head, _public_callables(namespace)) from None
    for i, attr in enumerate(rest):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            prefix = ".".join([head, *rest[:i]])
            choices = [f"{prefix}.{a}" for a in dir(obj) if not a.startswith("_")]
            raise _Missing(f"{prefix}.{attr}", choices) from None
    return obj


class NamespaceRef:
    """A node or router function, looked up by name in the notebook each time it is called.

    Redefining the function in a later cell changes what the graph runs, without re-running
    the ``%%agentgraph`` cell. Calling it returns what the function returns (a coroutine for an
    ``async def``: check :attr:`is_async`, or await what comes back).

    Attributes:
        name: the name looked up (may be dotted: ``tools.search``). ``__name__`` and
            ``__qualname__`` are this name too, so a graph description shows what the cell
            wrote.
        used_by: what uses it, for error messages (e.g. ``"node 'search'"``).

    Example:
        >>> ns = {"plan": lambda state: {"step": 1}}
        >>> ref = NamespaceRef(ns, "plan", used_by="node 'plan'")
        >>> ns["plan"] = lambda state: {"step": 2}
        >>> ref({})
        {'step': 2}
    """

    def __init__(
        self, namespace: Mapping[str, Any], name: str, *, used_by: str | None = None
    ) -> None:
        self._namespace = namespace
        self.name = name
        self.used_by = used_by or repr(name)
        # instance attributes, as functools.wraps sets them; the class keeps its own
        self.__name__ = name
        self.__qualname__ = name
        # a notebook cell's namespace is __main__; say so in graph descriptions
        self.__module__ = str(namespace.get("__name__", "__main__"))

    def resolve(self) -> Callable[..., Any]:
        """The function the name is bound to now.

        Raises:
            NameError: the name is no longer defined.
            TypeError: the name is bound to something that cannot be called.
        """
        try:
            fn = _lookup(self._namespace, self.name)
        except _Missing as exc:
            raise NameError(
                f"{self.used_by} calls {self.name!r}, but {exc.path!r} is no longer defined in the "
                f"notebook.{did_you_mean(exc.path, exc.choices)} Define it again (or re-run the "
                f"%%agentgraph cell after renaming it there)."
            ) from None
        if not callable(fn):
            raise TypeError(
                f"{self.used_by} calls {self.name!r}, which is now a {type(fn).__name__}, not a "
                f"function. Bind {self.name!r} to a function again."
            )
        return fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    @property
    def is_async(self) -> bool:
        """Whether the current function is an ``async def`` (or an object with an async ``__call__``)."""
        fn = self.resolve()
        return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - the async __call__ of an object
        )

    @property
    def __wrapped__(self) -> Callable[..., Any]:
        """The current function (so ``inspect.signature`` and ``inspect.unwrap`` see through)."""
        try:
            return self.resolve()
        except (NameError, TypeError) as exc:
            raise AttributeError(str(exc)) from None

    def __repr__(self) -> str:
        return f"NamespaceRef({self.name!r}, used_by={self.used_by!r})"


# --------------------------------------------------------------------------- build


def _describe_missing(
    what: str, path: str, exc: _Missing, *, node_name: str | None, where: tuple[str, str] = ("the notebook", "in a cell above")
) -> str:
    if node_name is not None and path == node_name and NAME_RE.fullmatch(node_name) is None:
        return f"{what} is not a Python name, so bind it to a function: '\"{node_name}\" = my_function'"
    hint = did_you_mean(exc.path, exc.choices)
    if not hint and node_name is not None and exc.path == path and path.upper() in KEYWORDS:
        hint = f" Did you mean {path.upper()!r}?"
    msg = f"{what}: {exc.path!r} is not defined in {where[0]}.{hint}"
    if node_name is not None and path == node_name:
        return f"{msg} Define {path}(state) {where[1]}, or bind another function: '{path} = my_function'."
    return f"{msg} Define it {where[1]}, or fix the name."


def _compiled_graph(namespace: Mapping[str, Any], path: str) -> Any:
    """The compiled graph ``path`` names in the namespace, or None (a function, or nothing)."""
    try:
        value = _lookup(namespace, path)
    except _Missing:
        return None
    return value if type(value).__name__ == "CompiledGraph" and hasattr(value, "plan") else None


def _resolve_all(dsl: DslGraph, namespace: Mapping[str, Any], where: tuple[str, str] = ("the notebook", "in a cell above")) -> None:
    """Check every name before building anything, and report the first problem with the others."""
    problems: list[tuple[Span | None, str]] = []

    def check(path: str, span: Span | None, what: str, node_name: str | None) -> None:
        try:
            value = _lookup(namespace, path)
        except _Missing as exc:
            problems.append((span, _describe_missing(what, path, exc, node_name=node_name, where=where)))
            return
        if not callable(value) and _compiled_graph(namespace, path) is None:
            near = did_you_mean(path, _public_callables(namespace))
            problems.append(
                (span, f"{what}: {path!r} is a {type(value).__name__}, not a function.{near}")
            )

    for node in dsl.nodes:
        span = node.target_span if node.target else node.span
        check(node.function, span, f"node {node.name!r}", node.name)
        if "while" in node.options:
            check(node.options["while"], node.option_spans["while"], f"the condition of while loop {node.name!r}", None)
    for node in dsl.nodes:
        if node.compensate is not None:
            check(node.compensate, node.option_spans.get("compensate"), f"compensation of node {node.name!r}", None)
    for b in dsl.branches:
        check(
            b.router,
            b.router_span,
            f"router {b.router!r} of the conditional edge from {_show(b.source)}",
            None,
        )
    if problems:
        (span, msg), rest = problems[0], problems[1:]
        if rest:
            more = ", ".join(f"line {s.line if s else '?'}" for s, _ in rest[:5])
            msg += f" ({len(rest)} more name problem{'s' if len(rest) > 1 else ''}: {more}{', ...' if len(rest) > 5 else ''})"
        raise dsl.error(msg, span)


def _show(name: str) -> str:
    return "START" if name == START else "END" if name == END else repr(name)


def build(
    dsl: DslGraph,
    *,
    name: str,
    schema: Any,
    namespace: Mapping[str, Any],
    builder_cls: Callable[..., Any],
    where: tuple[str, str] = ("the notebook", "in a cell above"),
) -> Any:
    """Build a parsed cell into a graph builder, resolving names in ``namespace``.

    Creates ``builder_cls(schema, name=name)``, then calls ``add_node(name, fn, retry=...,
    timeout=...)`` for every node in order, and ``add_edge``, ``add_edge([sources], target)``
    (joins), ``add_conditional_edges(source, router, targets | path_map | None)`` and
    ``add_weighted_edges(source, weights)`` in text order. Functions and routers are passed as
    :class:`NamespaceRef` proxies, so later redefinitions take effect.

    Args:
        dsl: the parsed cell (:func:`parse`).
        name: the graph's name.
        schema: the state schema, passed through to ``builder_cls``.
        namespace: where names are looked up (the notebook's ``user_ns``).
        builder_cls: the builder class, e.g. ``StateGraph``.
        where: for messages about undefined names: where names are looked up and where to
            define one (the command line says which module).

    Returns:
        The builder, not compiled.

    Raises:
        DslSyntaxError: a name is undefined or not a function (at its first mention, with a
            did-you-mean), or the builder rejected a statement (a ``GraphValidationError``,
            re-raised at that statement's position).

    Example:
        >>> app = build(parse(cell), name="research", schema=State, namespace=globals(),
        ...             builder_cls=StateGraph).compile()  # doctest: +SKIP
    """
    _resolve_all(dsl, namespace, where)
    builder = builder_cls(schema, name=name)  # a bad schema is not a mistake in the cell
    for node in dsl.nodes:
        ref: Any = NamespaceRef(namespace, node.function, used_by=f"node {node.name!r}")
        graph = _compiled_graph(namespace, node.function)
        if graph is not None:  # a graph bound in an earlier cell: the node runs it as a subgraph
            ref = graph
        if "foreach" in node.options or "while" in node.options:
            _add_loop(dsl, builder, node, ref, namespace)
            continue
        extra: dict[str, Any] = {}
        if node.compensate is not None:
            extra["compensate"] = NamespaceRef(namespace, node.compensate, used_by=f"node {node.name!r}")
        _call(
            dsl, node.span, builder.add_node, node.name, ref, retry=node.retry, timeout=node.timeout, **extra,
            **({"cache": node.cache} if node.cache is not None else {}),
        )
    for s in dsl.statements:
        if isinstance(s, Edge):
            _call(dsl, s.span, builder.add_edge, s.source, s.target)
        elif isinstance(s, Join):
            _call(dsl, s.span, builder.add_edge, list(s.sources), s.target)
        elif isinstance(s, Branch):
            router = NamespaceRef(
                namespace, s.router, used_by=f"the conditional edge from {_show(s.source)}"
            )
            path: Any = (
                dict(s.path_map)
                if s.path_map is not None
                else None
                if s.targets is None
                else list(s.targets)
            )
            _call(dsl, s.span, builder.add_conditional_edges, s.source, router, path)
        elif isinstance(s, Transaction):
            _call(dsl, s.span, builder.add_transaction, s.name, list(s.nodes))
        elif isinstance(s, ErrorEdge):
            on = tuple(_exception(dsl, namespace, name, s) for name in s.on) or Exception
            _call(dsl, s.span, builder.add_error_edge, s.source, s.target, on=on)
        else:
            _call(dsl, s.span, builder.add_weighted_edges, s.source, dict(s.weights))
    return builder


def _add_loop(dsl: DslGraph, builder: Any, node: NodeDecl, ref: Any, namespace: Mapping[str, Any]) -> None:
    """A node with ``foreach=`` or ``while=``: ``add_foreach`` / ``add_while``; a mistake is reported
    at the option it is about (``foreach=KEY`` not in the state: at ``foreach``)."""
    opts, spans = node.options, node.option_spans
    try:
        if "foreach" in opts:
            builder.add_foreach(
                node.name, ref, over=opts["foreach"], into=opts["into"],
                max_concurrency=opts.get("max_concurrency", LOOP_DEFAULTS["max_concurrency"]), retry=node.retry,
                on_error=opts.get("on_error", LOOP_DEFAULTS["on_error"]), errors_into=opts.get("errors_into"),
            )
        else:
            cond = NamespaceRef(namespace, opts["while"], used_by=f"the condition of while loop {node.name!r}")
            builder.add_while(node.name, ref, condition=cond, retry=node.retry, timeout=node.timeout,
                              max_iterations=opts.get("max_iterations", LOOP_DEFAULTS["max_iterations"]))
    except GraphValidationError as exc:
        msg = str(exc).replace(" over=", " foreach=")
        at = next((spans[k] for k in ("errors_into", "into", "foreach") if f" {k}=" in msg and k in spans), node.span)
        raise dsl.error(msg, at) from exc
def _exception(dsl: DslGraph, namespace: Mapping[str, Any], name: str, s: ErrorEdge) -> Any:
    """An error edge's exception class: from the namespace, else a builtin."""
    import builtins

    try:
        found = _lookup(namespace, name)
    except _Missing:
        found = getattr(builtins, name, None)
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise dsl.error(
            f"error edge {s.source!r} !-> {s.target!r}: {name!r} is not an exception class in the notebook nor a "
            f"builtin one.{did_you_mean(name, [n for n in dir(builtins) if n.endswith(('Error', 'Exception'))])}",
            s.span,
        )
    return found


def _call(
    dsl: DslGraph, span: Span | None, fn: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    try:
        return fn(*args, **kwargs)
    except DslSyntaxError:
        raise
    except GraphValidationError as exc:
        raise dsl.error(str(exc), span) from exc
