"""The %%agentgraph cell language: parser, builder bridge, hot reload and the writer."""

from __future__ import annotations

import asyncio
import inspect
import json
import keyword
import operator
import pickle
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypedDict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentgraph_nb.constants import END, START
from agentgraph_nb.errors import GraphValidationError
from agentgraph_nb.export.dsl import to_dsl
from agentgraph_nb.notebook._dsl import (
    Branch,
    DslGraph,
    DslSyntaxError,
    Edge,
    Join,
    NamespaceRef,
    NodeDecl,
    Span,
    Weighted,
    build,
    parse,
)
from agentgraph_nb.types import RetryPolicy

# --------------------------------------------------------------------------- a recording builder


class CounterState(TypedDict):
    n: int
    notes: Annotated[list[str], operator.add]


class FakeBuilder:
    """Stands in for StateGraph: records calls and describes itself like ``app.to_json()``."""

    def __init__(self, schema: Any, *, name: str) -> None:
        self.schema = schema
        self.name = name
        self.calls: list[tuple[Any, ...]] = []

    def add_node(
        self, name: str, fn: Any, *, retry: RetryPolicy | None, timeout: float | None
    ) -> None:
        self.calls.append(("node", name, fn, retry, timeout))

    def add_edge(self, src: str | list[str], dst: str) -> None:
        self.calls.append(("edge", src, dst))

    def add_conditional_edges(self, src: str, router: Any, path: Any) -> None:
        self.calls.append(("branch", src, router, path))

    def add_weighted_edges(self, src: str, weights: dict[str, float]) -> None:
        self.calls.append(("weighted", src, weights))

    def to_json(self) -> dict[str, Any]:
        def target(fn: Any) -> str:
            real = fn.__wrapped__
            return f"{real.__module__}:{real.__qualname__}"

        g: dict[str, Any] = {
            "format": "agentgraph_nb/graph",
            "version": 1,
            "name": self.name,
            "state": {"schema": getattr(self.schema, "__name__", None), "keys": {}},
            "nodes": [],
            "edges": [],
            "joins": [],
            "branches": [],
            "weighted": [],
        }
        for call in self.calls:
            kind = call[0]
            if kind == "node":
                _, name, fn, retry, timeout = call
                g["nodes"].append(
                    {
                        "name": name,
                        "target": target(fn),
                        "async": fn.is_async,
                        "retry": None if retry is None else _retry_json(retry),
                        "timeout": timeout,
                    }
                )
            elif kind == "edge" and isinstance(call[1], list):
                g["joins"].append({"sources": call[1], "target": call[2]})
            elif kind == "edge":
                g["edges"].append({"source": call[1], "target": call[2]})
            elif kind == "branch":
                _, src, router, path = call
                g["branches"].append(
                    {
                        "source": src,
                        "router": router.__name__,
                        "router_target": target(router),
                        "targets": list(dict.fromkeys(path.values()))
                        if isinstance(path, dict)
                        else path,
                        "path_map": path if isinstance(path, dict) else None,
                    }
                )
            else:
                g["weighted"].append({"source": call[1], "weights": call[2]})
        return g


def _retry_json(r: RetryPolicy) -> dict[str, Any]:
    return {
        "max_attempts": r.max_attempts,
        "initial_interval": r.initial_interval,
        "backoff_factor": r.backoff_factor,
        "max_interval": r.max_interval,
        "jitter": r.jitter,
    }


def make_fn(name: str, *, is_async: bool = False, module: str = "mymod") -> Callable[..., Any]:
    async def afn(state: Any) -> Any:
        return {"ran": name}

    def sfn(state: Any) -> Any:
        return {"ran": name}

    fn: Any = afn if is_async else sfn
    fn.__name__ = fn.__qualname__ = name.rpartition(".")[2]
    fn.__module__ = module
    return fn


def namespace_for(*names: str) -> dict[str, Any]:
    return {"__name__": "__main__", **{n: make_fn(n) for n in names}}


def build_fake(text: str, ns: Mapping[str, Any]) -> FakeBuilder:
    return build(parse(text), name="g", schema=dict, namespace=ns, builder_cls=FakeBuilder)


def err(text: str, ns: Mapping[str, Any] | None = None) -> DslSyntaxError:
    with pytest.raises(DslSyntaxError) as info:
        if ns is None:
            parse(text)
        else:
            build_fake(text, ns)
    return info.value


# --------------------------------------------------------------------------- constructs


def test_chain_of_static_edges() -> None:
    g = parse("START -> plan -> search -> END")
    assert g.edges == (Edge(START, "plan"), Edge("plan", "search"), Edge("search", END))
    assert [n.name for n in g.nodes] == ["plan", "search"]
    assert g.joins == g.branches == g.weighted == ()


def test_fan_out() -> None:
    g = parse("plan -> a, b")
    assert g.edges == (Edge("plan", "a"), Edge("plan", "b"))


def test_join_is_one_join_not_two_edges() -> None:
    g = parse("a, b -> join")
    assert g.joins == (Join(("a", "b"), "join"),)
    assert g.edges == ()


def test_fan_out_then_join_in_one_chain() -> None:
    g = parse("START -> plan -> a, b -> merge -> END")
    assert g.edges == (
        Edge(START, "plan"),
        Edge("plan", "a"),
        Edge("plan", "b"),
        Edge("merge", END),
    )
    assert g.joins == (Join(("a", "b"), "merge"),)


def test_group_to_group_is_a_join_per_target() -> None:
    g = parse("a, b -> c, d")
    assert g.joins == (Join(("a", "b"), "c"), Join(("a", "b"), "d"))


def test_conditional_with_targets() -> None:
    g = parse("search -> search | write ? route")
    assert g.branches == (Branch("search", "route", ("search", "write")),)
    assert [n.name for n in g.nodes] == ["search", "write"]


def test_conditional_dynamic() -> None:
    g = parse("search -> ? route")
    assert g.branches == (Branch("search", "route", None),)


def test_conditional_ends_a_chain() -> None:
    g = parse("START -> plan -> a | b ? pick")
    assert g.edges == (Edge(START, "plan"),)
    assert g.branches == (Branch("plan", "pick", ("a", "b")),)


def test_conditional_path_map() -> None:
    g = parse('agent -> continue: tools | "the end": END ? should_continue')
    (b,) = g.branches
    assert b.path_map == {"continue": "tools", "the end": END}
    assert b.targets == ("tools", END)


def test_conditional_from_start_and_dotted_router() -> None:
    g = parse("START -> a | b ? routers.first")
    assert g.branches == (Branch(START, "routers.first", ("a", "b")),)


def test_weighted() -> None:
    g = parse("explore -> a: 0.7 | b: 0.3 | END: 1e-1")
    assert g.weighted == (Weighted("explore", {"a": 0.7, "b": 0.3, END: 0.1}),)


def test_start_end_comments_blank_lines() -> None:
    text = """
    # a comment on its own line

    START -> plan   # trailing comment
    \tplan -> END
    """
    g = parse(text)
    assert g.edges == (Edge(START, "plan"), Edge("plan", END))


def test_node_options() -> None:
    g = parse("search [retry=3, timeout=10, backoff=3, interval=0.1, max_interval=5, jitter=false]")
    (n,) = g.nodes
    assert n.options == {
        "retry": 3,
        "timeout": 10.0,
        "backoff": 3.0,
        "interval": 0.1,
        "max_interval": 5.0,
        "jitter": False,
    }
    assert n.retry == RetryPolicy(
        max_attempts=3, initial_interval=0.1, backoff_factor=3.0, max_interval=5.0, jitter=False
    )
    assert n.timeout == 10.0


def test_retry_option_alone_and_retry_policy_field_names() -> None:
    g = parse("a [retry=5]\nb [timeout=2.5]\nc [max_attempts=2, backoff_factor=4]")
    assert g.node("a").retry == RetryPolicy(max_attempts=5)
    assert g.node("b").retry is None and g.node("b").timeout == 2.5
    assert g.node("c").retry == RetryPolicy(max_attempts=2, backoff_factor=4.0)
    assert g.node("c").options == {"retry": 2, "backoff": 4.0}


def test_backoff_without_retry_uses_default_attempts() -> None:
    assert parse("a [backoff=3]").node("a").retry == RetryPolicy(backoff_factor=3.0)


def test_options_merge_across_lines_and_apply_to_a_group() -> None:
    g = parse("a, b [timeout=1]\na [retry=2]\nSTART -> a")
    assert g.node("a").options == {"timeout": 1.0, "retry": 2}
    assert g.node("b").options == {"timeout": 1.0}


def test_alias_binding() -> None:
    g = parse("search = web_search [retry=2]\nwrite = tools.write_report\nSTART -> search -> write")
    assert g.node("search") == NodeDecl("search", "web_search", {"retry": 2})
    assert g.node("write").target == "tools.write_report"
    assert g.node("write").function == "tools.write_report"


def test_quoted_node_names() -> None:
    g = parse('"web search" = search_web\nSTART -> "web search" -> \'START\'')
    assert [n.name for n in g.nodes] == ["web search", "START"]
    assert g.edges == (Edge(START, "web search"), Edge("web search", "START"))


def test_declared_nodes_keep_their_order() -> None:
    g = parse("c, a\nb\nSTART -> a -> b -> c")
    assert [n.name for n in g.nodes] == ["c", "a", "b"]


def test_spans_point_at_the_text() -> None:
    g = parse("# header\n  START -> plan\nplan -> a | b ? route", line_offset=1)
    assert g.node("plan").span == Span(3, 12, 16)
    assert g.edges[0].span == Span(3, 3, 16)
    assert g.branches[0].router_span == Span(4, 17, 22)


def test_design_md_example() -> None:
    text = """\
START -> plan -> search
search -> search | write ? route        # conditional: route(state) picks
plan -> a, b                            # fan-out, run in parallel
a, b -> join                            # join waits for both
explore -> a: 0.7 | b: 0.3              # weighted
write -> END
"""
    g = parse(text)
    assert [n.name for n in g.nodes] == ["plan", "search", "write", "a", "b", "join", "explore"]
    assert len(g.statements) == 8


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "line", "column", "end", "needle"),
    [
        ("STRAT -> a", 1, 1, 6, "Did you mean 'START'?"),
        ("a -> ENDD", 1, 6, 10, "Did you mean 'END'?"),
        ("a => b", 1, 3, 5, "Did you mean '->'?"),
        ("a \u2192 b", 1, 3, 4, "Did you mean '->'?"),
        ("a ; b", 1, 3, 4, "unexpected character ';'"),
        ("a - b", 1, 3, 4, "'->'"),
        ("plan ->", 1, 6, 8, "needs a target"),
        ("START -> plan ->   # oops", 1, 15, 17, "needs a target"),
        ("-> plan", 1, 1, 3, "needs a source"),
        ("a b", 1, 3, 4, "expected '->'"),
        ("a -> b: 0.7.3 | c: 0.3", 1, 9, 14, "not a number"),
        ("a -> b: -0.5 | c: 1", 1, 9, 13, ">= 0"),
        ("a -> b: x | c: 0.3", 1, 9, 10, "must be a number"),
        ("a -> b: | c: 0.3", 1, 7, 8, "expected a weight"),
        ("a -> b: 0.5 | c", 1, 15, 16, "needs a weight"),
        ("a -> b: 0 | c: 0", 1, 6, 17, "add up to 0"),
        ("a -> b | c", 1, 8, 9, "need a router"),
        ("search [retry=3, timeout=10", 1, 8, 28, "unterminated option list"),
        ("search [retri=3]", 1, 9, 14, "Did you mean 'retry'?"),
        ("search [retry=0]", 1, 15, 16, "whole number >= 1"),
        ("search [retry 3]", 1, 15, 16, "expected '='"),
        ("search [jitter=maybe]", 1, 16, 21, "true or false"),
        ("search [retry=3 timeout=1]", 1, 17, 24, "expected ',' or ']'"),
        ("search [retry=2]\nsearch [retry=3]", 2, 9, 14, "already set on line 1"),
        ("a -> START", 1, 6, 11, "START cannot be a target"),
        ("START, a -> b", 1, 1, 6, "START cannot be part of a join"),
        ("END -> a", 1, 1, 4, "END cannot be a source"),
        ("a -> END -> b", 1, 6, 9, "END cannot be a source"),
        ("x -> a, a", 1, 9, 10, "appears twice"),
        ("a, b -> c | d ? route", 1, 4, 5, "one source"),
        ("a -> b ?", 1, 8, 9, "router's name"),
        ("a -> b ? r s", 1, 12, 13, "unexpected 's'"),
        ("a -> b | c ? r -> d", 1, 8, 9, "must end its line"),
        ("a -> b, c ? r", 1, 7, 8, "with '|'"),
        ("a -> ok: b | c ? r", 1, 14, 15, "every target"),
        ("a -> ok: 0.5 | no: c ? r", 1, 10, 13, "maps keys to nodes"),
        ("a -> b[retry=2]", 1, 7, 8, "options go on a line of their own"),
        ("tools.search -> b", 1, 1, 13, "cannot contain '.'"),
        ('"web -> b', 1, 1, 10, "unterminated string"),
        ('"" -> b', 1, 1, 3, "cannot be empty"),
        ("a = ", 1, 3, 4, "function name"),
        ("a = START", 1, 5, 10, "Python name"),
        ("a = f\na = g", 2, 5, 6, "already bound to 'f' on line 1"),
        ("START [retry=2]", 1, 1, 6, "built in"),
        ("__start__ -> a", 1, 1, 10, "reserved; write START"),
        ("a -> : b ? r", 1, 6, 7, "expected a key before ':'"),
        ("a -> : 0.5", 1, 6, 7, "expected a target before ':'"),
        ('a -> "\\N{nope}": b ? r', 1, 6, 16, "cannot read this string"),
        ("\n\n  ok -> fine\n  a ->", 4, 5, 7, "needs a target"),
    ],
)
def test_syntax_errors(text: str, line: int, column: int, end: int, needle: str) -> None:
    e = err(text)
    assert (e.line, e.column, e.end_column) == (line, column, end), str(e)
    assert needle in e.msg
    assert e.text == text.splitlines()[line - 1]
    assert isinstance(e, GraphValidationError)


@pytest.mark.parametrize(
    ("text", "column", "end"),
    [
        ("search [retry=3_]", 15, 17),
        ("a -> b: 0_.3 | c: 0.7", 9, 13),
        ("search [timeout=1__0]", 17, 21),
        ("search [interval=1_e3]", 18, 22),
        ("search [backoff=_2]", 17, 19),
        ("a -> b: 0.3 | c: 7_", 18, 20),
    ],
)
def test_misplaced_underscores_in_numbers_are_positioned_errors(text: str, column: int, end: int) -> None:
    e = err(text)
    assert (e.line, e.column, e.end_column) == (1, column, end), str(e)
    assert "between two digits" in e.msg or "must be a number" in e.msg, e.msg
    assert text[column - 1 : end - 1] in e.msg


def test_underscores_between_digits_are_numbers() -> None:
    g = parse("search [retry=1_0, timeout=1_000.5_0]\na -> b: 1_0 | c: 0.2_5")
    assert dict(g.node("search").options) == {"retry": 10, "timeout": 1000.5}
    assert dict(g.weighted[0].weights) == {"b": 10.0, "c": 0.25}


def test_weights_that_overflow_when_summed_are_an_error_at_the_edge() -> None:
    e = err("a -> b: 1e308 | c: 1e308")
    assert (e.column, e.end_column) == (6, 25) and "add up to more than the largest number" in e.msg
    e = err("search [retry=" + "9" * 5000 + "]")
    assert e.column == 15 and "whole number >= 1" in e.msg


def test_error_message_shows_the_line_and_a_caret() -> None:
    e = err("START -> plan\nplan -> sarch: 0.5 | write: x")
    assert str(e).splitlines() == [
        "line 2, column 29: the weight of 'write' must be a number, got 'x' (a conditional "
        "edge needs '? router' at the end)",
        "    plan -> sarch: 0.5 | write: x",
        "                                ^",
    ]


def test_line_offset_counts_the_magic_line() -> None:
    with pytest.raises(DslSyntaxError) as info:
        parse("START -> a\nSTRAT -> b", line_offset=1)
    e = info.value
    assert e.line == 3 and str(e).startswith("line 3, column 1:")


def test_syntax_error_pickles() -> None:
    e = err("a -> START")
    e2 = pickle.loads(pickle.dumps(e))
    assert (e2.line, e2.column, e2.text, str(e2)) == (e.line, e.column, e.text, str(e))


# --------------------------------------------------------------------------- build


def test_build_calls_the_builder_in_order() -> None:
    ns = namespace_for(
        "plan", "search", "write", "web_search", "route", "a", "b", "join", "explore"
    )
    text = """\
search = web_search [retry=3, timeout=10]
START -> plan -> search
search -> search | write ? route
plan -> a, b
a, b -> join
explore -> a: 0.7 | b: 0.3
write -> END
"""
    b = build(parse(text), name="research", schema=dict, namespace=ns, builder_cls=FakeBuilder)
    assert b.name == "research" and b.schema is dict
    kinds = [(c[0], c[1]) for c in b.calls]
    assert kinds == [
        ("node", "search"),
        ("node", "plan"),
        ("node", "write"),
        ("node", "a"),
        ("node", "b"),
        ("node", "join"),
        ("node", "explore"),
        ("edge", START),
        ("edge", "plan"),
        ("branch", "search"),
        ("edge", "plan"),
        ("edge", "plan"),
        ("edge", ["a", "b"]),
        ("weighted", "explore"),
        ("edge", "write"),
    ]
    _, _, fn, retry, timeout = b.calls[0]
    assert isinstance(fn, NamespaceRef) and fn.name == "web_search"
    assert retry == RetryPolicy(max_attempts=3) and timeout == 10.0
    assert b.calls[1][3] is None and b.calls[1][4] is None
    _, _, router, targets = b.calls[9]
    assert isinstance(router, NamespaceRef) and router.__name__ == "route"
    assert targets == ["search", "write"]
    assert b.calls[-2] == ("weighted", "explore", {"a": 0.7, "b": 0.3})


def test_build_passes_none_for_dynamic_and_a_dict_for_path_maps() -> None:
    ns = namespace_for("a", "b", "r")
    b = build_fake("a -> ? r\nb -> yes: a | no: END ? r", ns)
    assert b.calls[2][3] is None
    assert b.calls[3][3] == {"yes": "a", "no": END}


def test_unknown_node_name_points_at_first_mention_with_did_you_mean() -> None:
    ns = namespace_for("plan", "search")
    e = err("START -> plan -> serach\nserach -> END", ns)
    assert (e.line, e.column, e.end_column) == (1, 18, 24)
    assert "'serach' is not defined" in e.msg and "Did you mean 'search'?" in e.msg


def test_unknown_router_suggests_the_near_name() -> None:
    ns = namespace_for("a", "b", "route")
    e = err("a -> a | b ? rout", ns)
    assert (e.line, e.column) == (1, 14)
    assert "router 'rout'" in e.msg and "Did you mean 'route'?" in e.msg


def test_lowercase_start_suggests_the_keyword() -> None:
    e = err("start -> a", namespace_for("a"))
    assert "Did you mean 'START'?" in e.msg


def test_name_bound_to_a_non_callable() -> None:
    ns = {"a": make_fn("a"), "b": 42}
    e = err("a -> b", ns)
    assert (e.column, e.end_column) == (6, 7)
    assert "'b' is a int, not a function" in e.msg


def test_router_bound_to_a_non_callable() -> None:
    e = err("a -> ? route", {"a": make_fn("a"), "route": "x"})
    assert "'route' is a str, not a function" in e.msg


def test_unknown_alias_target_points_at_the_alias() -> None:
    e = err("search = web_serch\nSTART -> search", namespace_for("web_search"))
    assert (e.line, e.column) == (1, 10)
    assert "Did you mean 'web_search'?" in e.msg


def test_dotted_alias_resolution_and_errors() -> None:
    import types

    tools = types.SimpleNamespace(search=make_fn("search"))
    ns = {"tools": tools}
    b = build_fake("s = tools.search\nSTART -> s", ns)
    assert b.calls[0][2]({}) == {"ran": "search"}
    e = err("s = tools.serch\nSTART -> s", ns)
    assert "'tools.serch' is not defined" in e.msg and "Did you mean 'tools.search'?" in e.msg


def test_quoted_name_without_binding_is_explained() -> None:
    e = err('START -> "web search"', {})
    assert "not a Python name" in e.msg and '"web search" = my_function' in e.msg


def test_quoted_name_bound_to_a_missing_function() -> None:
    e = err('"web search" = serch_web\nSTART -> "web search"', namespace_for("search_web"))
    assert (e.line, e.column) == (1, 16)
    assert "'serch_web' is not defined" in e.msg and "Did you mean 'search_web'?" in e.msg


def test_several_missing_names_are_counted() -> None:
    e = err("a -> b -> c", namespace_for("a"))
    assert e.column == 6 and "1 more name problem: line 1" in e.msg


def test_builder_validation_error_gets_the_statement_position() -> None:
    class Strict(FakeBuilder):
        def add_edge(self, src: Any, dst: str) -> None:
            if dst == "b":
                raise GraphValidationError("no edges into b today")
            super().add_edge(src, dst)

    ns = namespace_for("a", "b")
    with pytest.raises(DslSyntaxError) as info:
        build(parse("START -> a\na -> b"), name="g", schema=dict, namespace=ns, builder_cls=Strict)
    e = info.value
    assert (e.line, e.column, e.end_column) == (2, 1, 7)
    assert e.msg == "no edges into b today"
    assert isinstance(e.__cause__, GraphValidationError)


# --------------------------------------------------------------------------- hot reload


def test_namespace_ref_picks_up_redefinitions() -> None:
    ns = namespace_for("plan")
    b = build_fake("START -> plan", ns)
    ref = b.calls[0][2]
    assert ref({}) == {"ran": "plan"}
    ns["plan"] = lambda state: {"ran": "new plan"}
    assert ref({}) == {"ran": "new plan"}


def test_namespace_ref_exposes_name_target_and_asyncness() -> None:
    ns = namespace_for("plan")
    ref = NamespaceRef(ns, "plan", used_by="node 'plan'")
    assert ref.__name__ == ref.__qualname__ == "plan"
    assert ref.__module__ == "__main__"
    assert ref.__wrapped__ is ns["plan"]
    assert inspect.unwrap(ref) is ns["plan"]
    assert list(inspect.signature(ref).parameters) == ["state"]
    assert ref.is_async is False
    ns["plan"] = make_fn("plan", is_async=True)
    assert ref.is_async is True
    assert asyncio.run(ref({})) == {"ran": "plan"}

    class AsyncCallable:
        async def __call__(self, state: Any) -> Any:
            return state

    ns["plan"] = AsyncCallable()
    assert ref.is_async is True


def test_namespace_ref_errors_name_the_node_and_the_missing_name() -> None:
    ns = namespace_for("plan", "plans")
    ref = NamespaceRef(ns, "plan", used_by="node 'plan'")
    del ns["plan"]
    with pytest.raises(
        NameError, match=r"node 'plan' calls 'plan', but 'plan' is no longer defined"
    ):
        ref({})
    with pytest.raises(NameError, match="Did you mean 'plans'"):
        ref({})
    assert not hasattr(ref, "__wrapped__")
    assert ref.__name__ == "plan"
    ns["plan"] = 3
    with pytest.raises(TypeError, match="node 'plan' calls 'plan', which is now a int"):
        ref({})


# --------------------------------------------------------------------------- writer


def _graph(**parts: Any) -> dict[str, Any]:
    g: dict[str, Any] = {
        "format": "agentgraph_nb/graph",
        "version": 1,
        "name": "research",
        "state": {"schema": "State", "keys": {}},
        "nodes": [],
        "edges": [],
        "joins": [],
        "branches": [],
        "weighted": [],
    }
    g.update(parts)
    return g


def _node(name: str, target: str | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "name": name,
        "target": f"mymod:{target or name}",
        "async": False,
        "retry": kw.get("retry"),
        "timeout": kw.get("timeout"),
    }


def test_to_dsl_writes_readable_chains() -> None:
    g = _graph(
        nodes=[_node(n) for n in ("plan", "search", "write", "a", "b", "join", "explore")],
        edges=[
            {"source": START, "target": "plan"},
            {"source": "plan", "target": "search"},
            {"source": "plan", "target": "a"},
            {"source": "plan", "target": "b"},
            {"source": "write", "target": END},
            {"source": "join", "target": END},
        ],
        joins=[{"sources": ["a", "b"], "target": "join"}],
        branches=[
            {
                "source": "search",
                "router": "route",
                "router_target": "mymod:route",
                "targets": ["search", "write"],
                "path_map": None,
            }
        ],
        weighted=[{"source": "explore", "weights": {"a": 0.7, "b": 0.3}}],
    )
    # the fan-out names a and b before write, so the node order is declared up front
    assert to_dsl(g) == (
        "# nodes in the order they were added (it sets the merge order)\n"
        "plan, search, write\n"
        "\n"
        "START -> plan -> search, a, b\n"
        "search -> search | write ? route\n"
        "write -> END\n"
        "a, b -> join -> END\n"
        "explore -> a: 0.7 | b: 0.3\n"
    )
    assert to_dsl(g, magic=True).startswith("%%agentgraph research --state State\n")


def test_to_dsl_options_aliases_and_order() -> None:
    retry = {
        "max_attempts": 4,
        "initial_interval": 0.5,
        "backoff_factor": 3.0,
        "max_interval": 128.0,
        "jitter": False,
    }
    g = _graph(
        nodes=[
            _node("search", "web_search", retry=retry, timeout=10.0),
            _node("plan"),
            _node("lonely"),
        ],
        edges=[{"source": START, "target": "plan"}, {"source": "plan", "target": "search"}],
    )
    assert to_dsl(g) == (
        "search = web_search [retry=4, backoff=3, jitter=false, timeout=10]\n"
        "\n"
        "START -> plan -> search\n"
        "lonely\n"
    )


def test_to_dsl_puts_options_after_the_edges_when_top_would_reorder() -> None:
    g = _graph(
        nodes=[_node("plan"), _node("search", timeout=5.0), _node("write")],
        edges=[
            {"source": START, "target": "plan"},
            {"source": "plan", "target": "search"},
            {"source": "search", "target": "write"},
        ],
    )
    assert to_dsl(g) == "START -> plan -> search -> write\n\nsearch [timeout=5]\n"


@pytest.mark.parametrize(
    "cell",
    [
        # bindings and options first, as people often write them
        "search = web_search [retry=3, timeout=10]\n"
        "write [timeout=5]\n"
        "\n"
        "START -> plan -> search\n"
        "search -> search | write ? route\n"
        "write -> END\n",
        # or last
        "START -> plan -> search\n"
        "search -> search | write ? route\n"
        "write -> END\n"
        "\n"
        "search = web_search [retry=3, timeout=10]\n",
    ],
)
def test_a_written_cell_comes_back_as_written(cell: str) -> None:
    ns = namespace_for("plan", "search", "web_search", "write", "route")
    assert to_dsl(build_fake(cell, ns).to_json()) == cell


def test_to_dsl_declares_order_when_edges_would_change_it() -> None:
    g = _graph(
        nodes=[_node("b"), _node("a")],
        edges=[{"source": START, "target": "a"}, {"source": "a", "target": "b"}],
    )
    text = to_dsl(g)
    assert text.splitlines()[1] == "b"
    assert [n.name for n in parse(text).nodes] == ["b", "a"]


def test_to_dsl_quotes_names_that_are_not_identifiers() -> None:
    g = _graph(
        nodes=[_node("web search", "search_web"), _node("SEND", "send"), _node("END")],
        edges=[
            {"source": START, "target": "web search"},
            {"source": "web search", "target": "SEND"},
        ],
        branches=[
            {
                "source": "SEND",
                "router": "pick",
                "router_target": "mymod:pick",
                "targets": ["web search", END],
                "path_map": {"again": "web search", "the end": END},
            }
        ],
    )
    text = to_dsl(g)
    assert '"web search" = search_web' in text
    assert '"SEND" -> again: "web search" | "the end": END ? pick' in text
    ns = namespace_for("search_web", "send", "END", "pick")
    assert _normalise(build_fake(text, ns).to_json()) == _normalise(g)


def test_to_dsl_uses_ref_and_rejects_unnamed_routers() -> None:
    g = _graph(nodes=[dict(_node("s", "search"), ref="tools.search")])
    assert to_dsl(g) == "s = tools.search\n"
    g = _graph(
        nodes=[_node("a")],
        branches=[
            {
                "source": "a",
                "router": "<lambda>",
                "router_target": "m:<lambda>",
                "targets": None,
                "path_map": None,
            }
        ],
    )
    with pytest.raises(ValueError, match="router '<lambda>' has no name"):
        to_dsl(g)


def test_to_dsl_lambda_node_falls_back_to_its_name() -> None:
    g = _graph(nodes=[_node("plan", "<lambda>")], edges=[{"source": START, "target": "plan"}])
    assert to_dsl(g) == "START -> plan\n"


def test_to_dsl_keeps_repeated_edges() -> None:
    g = _graph(
        nodes=[_node("a"), _node("b")],
        edges=[{"source": "a", "target": "b"}, {"source": "a", "target": "b"}],
    )
    assert to_dsl(g) == "a -> b\na -> b\n"


def test_to_dsl_comments_on_what_it_cannot_write() -> None:
    retry = {"max_attempts": 2, "retry_on": "ConnectionError"}
    g = _graph(nodes=[dict(_node("a", retry=retry), destinations=["b"]), _node("b")])
    assert to_dsl(g).splitlines()[0] == (
        "a [retry=2]  # set in Python, not expressible here: "
        "retry_on=ConnectionError, destinations=['b']"
    )


def test_to_dsl_rejects_other_formats() -> None:
    with pytest.raises(ValueError, match="not a graph description"):
        to_dsl({"format": "something/else"})


# --------------------------------------------------------------------------- round trip


def _sorted_repr(items: Any) -> list[Any]:
    return sorted(items, key=repr)


def _normalise(g: Mapping[str, Any]) -> dict[str, Any]:
    """What the round trip must keep: node order and everything else up to ordering."""
    return {
        "nodes": [
            (
                n["name"],
                n["target"],
                n.get("async"),
                json.dumps(n["retry"], sort_keys=True),
                n["timeout"],
            )
            for n in g["nodes"]
        ],
        "edges": sorted((e["source"], e["target"]) for e in g["edges"]),
        "joins": sorted((tuple(sorted(j["sources"])), j["target"]) for j in g["joins"]),
        "branches": _sorted_repr(
            (
                b["source"],
                b["router"],
                b["router_target"],
                tuple(b["targets"]) if b["targets"] is not None else None,
                tuple((b["path_map"] or {}).items()),
            )
            for b in g["branches"]
        ),
        "weighted": sorted((w["source"], tuple(w["weights"].items())) for w in g["weighted"]),
    }


_ident = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda s: not keyword.iskeyword(s) and s not in ("true", "false")
)
_odd = st.sampled_from(
    ["web search", "a-b", "START", "END", "SEND", "STAR", "x#y", 'q"uo\\te', "é"]
)
_node_name = st.one_of(_ident, _ident, _ident, _odd)
_pos = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def graph_descriptions(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    names = draw(st.lists(_node_name, min_size=1, max_size=7, unique=True))
    async_fns = draw(st.sets(_ident, max_size=3))
    nodes: list[dict[str, Any]] = []
    for name in names:
        alias = draw(st.one_of(st.none(), _ident)) if name.isidentifier() else draw(_ident)
        if alias in ("START", "END"):
            alias = None
        fn = alias or name
        retry = draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {
                        "max_attempts": st.integers(1, 10),
                        "initial_interval": st.one_of(st.just(0.5), _pos),
                        "backoff_factor": st.one_of(st.just(2.0), st.floats(1.0, 10.0)),
                        "max_interval": st.one_of(st.just(128.0), _pos),
                        "jitter": st.booleans(),
                    }
                ),
            )
        )
        timeout = draw(st.one_of(st.none(), st.floats(min_value=0.001, max_value=1e5)))
        nodes.append(
            {
                "name": name,
                "target": f"mymod:{fn}",
                "async": fn in async_fns,
                "retry": retry,
                "timeout": timeout,
            }
        )
    sources = st.sampled_from([START, *names])
    targets = st.sampled_from([*names, END])
    edges = draw(st.lists(st.tuples(sources, targets), max_size=8, unique=True))
    joins = (
        draw(
            st.lists(
                st.tuples(
                    st.lists(st.sampled_from(names), min_size=2, max_size=3, unique=True), targets
                ),
                max_size=3,
            )
        )
        if len(names) >= 2
        else []
    )
    branches: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 3))):
        src = draw(sources)
        router = draw(_ident)
        kind = draw(st.sampled_from(["targets", "dynamic", "path_map"]))
        if kind == "targets":
            tg = draw(st.lists(targets, min_size=1, max_size=3, unique=True))
            pm = None
        elif kind == "dynamic":
            tg, pm = None, None
        else:
            pm = draw(st.dictionaries(st.one_of(_ident, _odd), targets, min_size=1, max_size=3))
            tg = list(dict.fromkeys(pm.values()))
        branches.append(
            {
                "source": src,
                "router": router,
                "router_target": f"mymod:{router}",
                "targets": tg,
                "path_map": pm,
            }
        )
    weighted = []
    for _ in range(draw(st.integers(0, 2))):
        ws = draw(
            st.dictionaries(
                targets, st.floats(min_value=1e-6, max_value=1e6), min_size=1, max_size=3
            )
        )
        weighted.append({"source": draw(sources), "weights": ws})
    g = _graph(
        nodes=nodes,
        edges=[{"source": s, "target": t} for s, t in edges],
        joins=[{"sources": s, "target": t} for s, t in joins],
        branches=branches,
        weighted=weighted,
    )
    fn_names = {str(n["target"]).partition(":")[2] for n in nodes} | {
        str(b["router"]) for b in branches
    }
    ns = {"__name__": "__main__", **{f: make_fn(f, is_async=f in async_fns) for f in fn_names}}
    return g, ns


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_descriptions())
def test_round_trip_through_the_cell_language(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    g, ns = case
    text = to_dsl(g)
    rebuilt = build(
        parse(text), name="research", schema=dict, namespace=ns, builder_cls=FakeBuilder
    )
    assert _normalise(rebuilt.to_json()) == _normalise(g), text
    # and writing it again gives the same text
    again = dict(rebuilt.to_json(), state=g["state"], name=g["name"])
    assert to_dsl(again) == text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab ,->|?:=[]#'\"0.7_e\nSTARTEND-retry", max_size=40))
def test_parse_only_ever_raises_dsl_syntax_errors(text: str) -> None:
    try:
        parse(text)
    except DslSyntaxError as e:
        assert e.line >= 1 and e.column >= 1
        assert e.text in text.splitlines()


def test_dsl_graph_error_helper_uses_offset() -> None:
    g: DslGraph = parse("a -> b", line_offset=2)
    e = g.error("boom", g.edges[0].span)
    assert (e.line, e.text) == (3, "a -> b")


def test_with_the_real_builder_round_trip_and_hot_reload() -> None:
    from agentgraph_nb.graph.state import StateGraph

    def plan(s: Any) -> Any:
        return {"notes": ["plan"]}

    def web_search(s: Any) -> Any:
        return {"notes": ["search"], "n": s.get("n", 0) + 1}

    def route(s: Any) -> str:
        return "search" if s["n"] < 2 else "write"

    def write(s: Any) -> Any:
        return {"notes": ["write"]}

    ns: dict[str, Any] = {
        "__name__": "__main__",
        "plan": plan,
        "web_search": web_search,
        "route": route,
        "write": write,
    }
    cell = (
        "search = web_search [retry=3, timeout=10]\n"
        "\n"
        "START -> plan -> search\n"
        "search -> search | write ? route\n"
        "write -> END\n"
    )
    g = build(
        parse(cell), name="research", schema=CounterState, namespace=ns, builder_cls=StateGraph
    )
    assert to_dsl(g.to_json()) == cell
    app = g.compile(checkpointer=None)
    assert app.invoke({"n": 0})["notes"] == ["plan", "search", "search", "write"]
    ns["write"] = lambda s: {"notes": ["write v2"]}
    assert app.invoke({"n": 0})["notes"][-1] == "write v2"
