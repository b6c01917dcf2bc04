"""For-each and while loops: ``add_foreach`` and ``add_while`` (graph/_loops.py)."""

from __future__ import annotations

import asyncio
import operator
import threading
import time
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import (
    END,
    START,
    ForEachInputError,
    GraphValidationError,
    ItemError,
    LoopConditionError,
    LoopLimitError,
    RetryPolicy,
    StateGraph,
)


class S(TypedDict, total=False):
    items: list[Any]
    results: list[Any]
    errors: list[Any]
    n: int
    after: bool
    log: Annotated[list[str], operator.add]


NO_WAIT = RetryPolicy(max_attempts=3, initial_interval=0, jitter=False)


def foreach_graph(fn: Any, **kw: Any) -> StateGraph:
    g = StateGraph(S, name="fe")
    g.add_foreach("each", fn, over="items", into="results", **kw)
    g.add_node("after", lambda s: {"after": True})
    g.add_edge(START, "each").add_edge("each", "after").add_edge("after", END)
    return g


# -- for-each ------------------------------------------------------------------------------------------
def test_foreach_results_come_in_input_order_whatever_the_finishing_order() -> None:
    def slow_first(x: int) -> int:
        time.sleep(0.02 * (5 - x))
        return x * 10

    app = foreach_graph(slow_first, max_concurrency=5).compile()
    assert app.invoke({"items": [0, 1, 2, 3, 4]})["results"] == [0, 10, 20, 30, 40]


async def test_foreach_async_items_in_order_under_ainvoke() -> None:
    async def f(x: int) -> int:
        await asyncio.sleep(0.01 * (4 - x))
        return -x

    app = foreach_graph(f, max_concurrency=4).compile()
    out = await app.ainvoke({"items": [0, 1, 2, 3]})
    assert out["results"] == [0, -1, -2, -3] and out["after"] is True


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("limit", [1, 3])
def test_foreach_runs_at_most_max_concurrency_items_at_once(kind: str, limit: int) -> None:
    lock = threading.Lock()
    now = [0]
    peak = [0]

    def enter() -> None:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])

    def leave() -> None:
        with lock:
            now[0] -= 1

    def f(x: int) -> int:
        enter()
        time.sleep(0.01)
        leave()
        return x

    async def af(x: int) -> int:
        enter()
        await asyncio.sleep(0.01)
        leave()
        return x

    app = foreach_graph(f if kind == "sync" else af, max_concurrency=limit).compile()
    assert app.invoke({"items": list(range(10))})["results"] == list(range(10))
    assert peak[0] == limit


def test_foreach_writes_through_the_into_reducer() -> None:
    class R(TypedDict, total=False):
        items: list[int]
        results: Annotated[list[int], operator.add]

    g = StateGraph(R)
    g.add_foreach("each", lambda x: x + 1, over="items", into="results")
    g.add_edge(START, "each")
    app = g.compile()
    assert app.invoke({"items": [1, 2], "results": [0]})["results"] == [0, 2, 3]


def test_foreach_over_an_empty_list_writes_an_empty_list_and_calls_nothing() -> None:
    calls: list[Any] = []
    app = foreach_graph(calls.append).compile()
    assert app.invoke({"items": []})["results"] == [] and calls == []


def test_foreach_accepts_a_tuple() -> None:
    app = foreach_graph(lambda x: x * 2).compile()
    assert app.invoke({"items": (1, 2)})["results"] == [2, 4]


def test_foreach_retries_each_item_on_its_own_and_the_events_name_the_item() -> None:
    calls: dict[int, int] = {}

    def flaky(x: int) -> int:
        calls[x] = calls.get(x, 0) + 1
        if x == 1 and calls[x] < 3:
            raise ConnectionError("blip")
        return x

    app = foreach_graph(flaky, retry=NO_WAIT).compile()
    events = list(app.stream({"items": [0, 1, 2]}, mode="events"))
    assert calls == {0: 1, 1: 3, 2: 1}
    retries = [e for e in events if e.kind == "node_retry"]
    assert [(e.node, e.attempt) for e in retries] == [("each[1]", 1), ("each[1]", 2)]
    ends = sorted((e.node, e.attempt) for e in events if e.kind == "node_end" and e.node.startswith("each["))
    assert ends == [("each[0]", 1), ("each[1]", 3), ("each[2]", 1)]
    starts = [e for e in events if e.kind == "node_start" and e.node == "each[2]"]
    assert starts[0].data == 2 and starts[0].task_id == "1:0/2"
    # the loop itself is one execution of node "each", never retried as a whole
    assert [e.kind for e in events if e.node == "each"] == ["node_start", "node_end"]


def test_foreach_raise_fails_the_node_with_the_items_own_error_naming_the_index() -> None:
    ran_after: list[int] = []

    def f(x: int) -> int:
        if x == 2:
            raise ValueError("bad item two")
        return x

    g = foreach_graph(f, max_concurrency=1)
    app = g.compile()
    with pytest.raises(ValueError, match="bad item two") as info:
        app.invoke({"items": [0, 1, 2, 3]}, thread_id="t")
    assert info.value.agentgraph_item == 2  # type: ignore[attr-defined]
    assert any("for-each node 'each', item 2" in n for n in info.value.__notes__)
    snap = app.get_state("t")
    assert snap.next == ("each",) and "results" not in snap.values and not ran_after


def test_foreach_raise_stops_the_items_not_yet_started() -> None:
    started: list[int] = []

    def f(x: int) -> int:
        started.append(x)
        if x == 0:
            raise ValueError("first")
        return x

    app = foreach_graph(f, max_concurrency=1).compile()
    with pytest.raises(ValueError):
        app.invoke({"items": [0, 1, 2]})
    assert started == [0]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_foreach_skip_and_collect_record_failed_items(kind: str) -> None:
    def f(x: int) -> int:
        if x % 2:
            raise KeyError(x)
        return x

    async def af(x: int) -> int:
        return f(x)

    fn = f if kind == "sync" else af
    skip = foreach_graph(fn, on_error="skip", errors_into="errors").compile("sqlite:///:memory:")
    out = skip.invoke({"items": [0, 1, 2, 3]}, thread_id="s")
    assert out["results"] == [0, 2]
    assert out["errors"] == [ItemError(1, "KeyError: 1", 1), ItemError(3, "KeyError: 3", 1)]
    assert out["after"] is True

    collect = foreach_graph(fn, on_error="collect", retry=NO_WAIT).compile()
    out = collect.invoke({"items": [0, 1, 2]})
    assert out["results"][0] == 0 and out["results"][2] == 2
    assert isinstance(out["results"][1], ItemError) and out["results"][1].index == 1
    assert out["results"][1].attempts == 1  # KeyError is a programming error: never retried


def test_item_errors_are_stored_in_a_sqlite_checkpoint(tmp_path: Any) -> None:
    app = foreach_graph(lambda x: 1 / x, on_error="collect").compile(f"sqlite:///{tmp_path / 'c.db'}")
    app.invoke({"items": [1, 0]}, thread_id="t")
    again = foreach_graph(lambda x: 1 / x, on_error="collect").compile(f"sqlite:///{tmp_path / 'c.db'}")
    stored = again.get_state("t").values["results"]
    assert stored[0] == 1.0 and stored[1] == ItemError(1, "ZeroDivisionError: division by zero", 1)


@pytest.mark.parametrize(("value", "found"), [("abc", "str"), ({"a": 1}, "dict"), (5, "int")])
def test_foreach_over_a_value_that_is_not_a_list_names_node_key_and_type(value: Any, found: str) -> None:
    app = foreach_graph(lambda x: x).compile()
    with pytest.raises(ForEachInputError, match=f"for-each node 'each': state key 'items' holds {found}") as info:
        app.invoke({"items": value})
    assert (info.value.node, info.value.key, info.value.found) == ("each", "items", found)


def test_foreach_over_a_key_never_written_is_a_typed_error() -> None:
    app = foreach_graph(lambda x: x).compile()
    with pytest.raises(ForEachInputError, match="'items' has no value") as info:
        app.invoke({"n": 1})
    assert info.value.found == "nothing"


def test_foreach_bad_options_fail_when_building() -> None:
    g = StateGraph(S)
    with pytest.raises(GraphValidationError, match=r"node 'each': over='itemz' is not a key of the state S.*'items'"):
        g.add_foreach("each", lambda x: x, over="itemz", into="results")
    with pytest.raises(GraphValidationError, match="into='result' is not a key"):
        g.add_foreach("each", lambda x: x, over="items", into="result")
    with pytest.raises(GraphValidationError, match="max_concurrency must be an int >= 1, got 0"):
        g.add_foreach("each", lambda x: x, over="items", into="results", max_concurrency=0)
    with pytest.raises(GraphValidationError, match="on_error='ignore'"):
        g.add_foreach("each", lambda x: x, over="items", into="results", on_error="ignore")
    with pytest.raises(GraphValidationError, match="the item function must be a function"):
        g.add_foreach("each", 3, over="items", into="results")  # type: ignore[arg-type]
    assert not g.nodes and not g.loops


def test_foreach_items_may_interrupt_and_resume_independently() -> None:
    from agentgraph_nb import Command, interrupt

    def ask(x: int) -> str:
        return f"{x}:{interrupt(f'ok {x}?')}"

    app = foreach_graph(ask, max_concurrency=2).compile()
    paused = app.invoke({"items": [1, 2]}, thread_id="t")
    intrs = paused["__interrupt__"]
    assert sorted(i.value for i in intrs) == ["ok 1?", "ok 2?"]
    answers = {i.id: i.value.upper() for i in intrs}
    assert app.invoke(Command(resume=answers), thread_id="t")["results"] == ["1:OK 1?", "2:OK 2?"]


# -- while ----------------------------------------------------------------------------------------------
def while_graph(body: Any, condition: Any, max_iterations: int = 50, **kw: Any) -> StateGraph:
    g = StateGraph(S, name="wl")
    g.add_while("loop", body, condition=condition, max_iterations=max_iterations, **kw)
    g.add_node("after", lambda s: {"after": True})
    g.add_edge(START, "loop").add_edge("loop", "after").add_edge("after", END)
    return g


def inc(s: S) -> dict[str, Any]:
    return {"n": s["n"] + 1, "log": [f"i{s['n']}"]}


def test_while_runs_the_body_while_the_condition_holds_one_superstep_each() -> None:
    app = while_graph(inc, lambda s: s["n"] < 3).compile()
    out = app.invoke({"n": 0}, thread_id="t")
    assert out["n"] == 3 and out["log"] == ["i0", "i1", "i2"] and out["after"] is True
    assert "loop.iteration" not in out  # the counter is not part of the state class's keys
    steps = [(h.step, h.next) for h in app.get_state_history("t")]
    # input, 3 iterations, the exit check, after
    assert steps == [(5, ()), (4, ("after",)), (3, ("loop",)), (2, ("loop",)), (1, ("loop",)), (0, ("loop",))]
    assert app.get_state("t").values["loop.iteration"] == 0


def test_while_with_the_condition_false_at_entry_never_runs_the_body() -> None:
    calls: list[Any] = []
    app = while_graph(calls.append, lambda s: s["n"] < 3).compile()
    out = app.invoke({"n": 5})
    assert calls == [] and out["after"] is True and out["n"] == 5


def test_while_reaching_max_iterations_is_a_typed_error_and_nothing_after_runs() -> None:
    app = while_graph(inc, lambda s: s["n"] < 100, max_iterations=4).compile()
    with pytest.raises(LoopLimitError, match=r"while loop 'loop' reached max_iterations=4") as info:
        app.invoke({"n": 0}, thread_id="t")
    assert (info.value.node, info.value.limit) == ("loop", 4)
    assert isinstance(info.value, RecursionError)
    snap = app.get_state("t")
    assert snap.values["n"] == 4 and "after" not in snap.values and snap.next == ("loop",)
    # the checkpoint is intact: fix the state and resume; the loop exits and the graph finishes
    app.update_state("t", {"n": 100})
    out = app.invoke(None, thread_id="t")
    assert out["after"] is True and out["n"] == 100


def test_while_limit_counts_per_entry_into_the_loop() -> None:
    class C(TypedDict, total=False):
        n: int
        rounds: int

    g = StateGraph(C)
    g.add_while("loop", lambda s: {"n": s["n"] + 1}, condition=lambda s: s["n"] % 3 != 0 or s["n"] == s["rounds"] * 3,
                max_iterations=3)
    g.add_node("outer", lambda s: {"rounds": s["rounds"] + 1})
    g.add_edge(START, "loop").add_edge("loop", "outer")
    g.add_conditional_edges("outer", lambda s: "loop" if s["rounds"] < 4 else END, ["loop", END])
    out = g.compile().invoke({"n": 0, "rounds": 0})
    assert out == {"n": 12, "rounds": 4}  # four entries of 3 iterations each: 12 in all, the limit 3 per entry


def test_while_a_condition_that_raises_names_the_loop() -> None:
    def cond(s: S) -> bool:
        raise KeyError("missing")

    app = while_graph(inc, cond).compile()
    with pytest.raises(LoopConditionError, match="while loop 'loop': its condition 'cond' raised KeyError") as info:
        app.invoke({"n": 0})
    assert isinstance(info.value.__cause__, KeyError) and info.value.node == "loop"


def test_while_a_condition_that_is_neither_true_nor_false_names_the_loop() -> None:
    class Ambiguous:
        def __bool__(self) -> bool:
            raise ValueError("truth value is ambiguous")

    app = while_graph(inc, lambda s: Ambiguous()).compile()
    with pytest.raises(LoopConditionError, match="returned Ambiguous .*neither true nor false"):
        app.invoke({"n": 0})


def test_while_leaves_through_a_conditional_edge() -> None:
    g = StateGraph(S)
    g.add_while("loop", inc, condition=lambda s: s["n"] < 2)
    g.add_node("big", lambda s: {"log": ["big"]})
    g.add_node("small", lambda s: {"log": ["small"]})
    g.add_edge(START, "loop")
    g.add_conditional_edges("loop", lambda s: "big" if s["n"] > 2 else "small", {"big": "big", "small": "small"})
    app = g.compile()
    assert app.invoke({"n": 0})["log"] == ["i0", "i1", "small"]
    assert app.invoke({"n": 5})["log"] == ["big"]


async def test_while_with_an_async_body_under_ainvoke() -> None:
    async def body(s: S) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"n": s["n"] * 2}

    out = await while_graph(body, lambda s: s["n"] < 10).compile().ainvoke({"n": 1})
    assert out["n"] == 16 and out["after"] is True


def test_while_steps_one_iteration_at_a_time_with_interrupt_before() -> None:
    app = while_graph(inc, lambda s: s["n"] < 3).compile(interrupt_before=["loop"])
    app.invoke({"n": 0}, thread_id="t")
    seen = []
    for _ in range(3):
        seen.append(app.get_state("t").values["n"])
        app.invoke(None, thread_id="t")
    assert seen == [0, 1, 2]
    assert app.invoke(None, thread_id="t")["after"] is True


def test_while_resumes_after_a_crash_with_its_count_intact(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    crash = [True]

    def body(s: S) -> dict[str, Any]:
        if s["n"] == 2 and crash[0]:
            raise RuntimeError("power cut")
        return {"n": s["n"] + 1, "log": [f"i{s['n']}"]}

    with pytest.raises(RuntimeError):
        while_graph(body, lambda s: s["n"] < 5, max_iterations=5).compile(url).invoke({"n": 0}, thread_id="t")
    crash[0] = False
    app = while_graph(body, lambda s: s["n"] < 5, max_iterations=5).compile(url)  # "a new process"
    assert app.get_state("t").values["loop.iteration"] == 2
    out = app.invoke(None, thread_id="t")
    assert out["n"] == 5 and out["log"] == ["i0", "i1", "i2", "i3", "i4"]


def test_while_bad_options_fail_when_building() -> None:
    g = StateGraph(S)
    with pytest.raises(GraphValidationError, match="max_iterations must be an int >= 1, got 0"):
        g.add_while("loop", inc, condition=lambda s: True, max_iterations=0)
    with pytest.raises(GraphValidationError, match="condition= must be a function"):
        g.add_while("loop", inc, condition=True)  # type: ignore[arg-type]
    root = StateGraph(Annotated[int, operator.add])
    with pytest.raises(GraphValidationError, match="needs a state with keys"):
        root.add_while("loop", inc, condition=lambda s: True)


def test_a_join_after_a_while_loop_is_rejected_at_compile() -> None:
    g = while_graph(inc, lambda s: False)
    g.add_node("b", lambda s: None).add_node("c", lambda s: None)
    g.add_edge(START, "b").add_edge(["loop", "b"], "c")
    with pytest.raises(GraphValidationError, match="while loop 'loop' is a source of the join into 'c'"):
        g.compile()


def test_a_graph_without_loops_compiles_as_before() -> None:
    g = StateGraph(S)
    g.add_node("a", lambda s: {"n": 1}).add_edge(START, "a")
    app = g.compile()
    assert app.plan.nodes[0].make_input({"n": 0}) == {"n": 0} and "loop.iteration" not in app.schema.keys


# -- exports -------------------------------------------------------------------------------------------
def double(x: int) -> int:
    return 2 * x


def small(s: S) -> bool:
    return s["n"] < 3


def exported_graph() -> StateGraph:
    g = StateGraph(S, name="ex")
    g.add_foreach("each", double, over="items", into="results", max_concurrency=2, retry=NO_WAIT,
                  on_error="skip", errors_into="errors")
    g.add_while("loop", inc, condition=small, max_iterations=7)
    g.add_edge(START, "each").add_edge("each", "loop").add_edge("loop", END)
    return g


def test_to_json_describes_the_loops_and_from_json_rebuilds_them() -> None:
    app = exported_graph().compile()
    nodes = {n["name"]: n for n in app.to_json()["nodes"]}
    assert nodes["each"]["target"].endswith(":double") and nodes["each"]["retry"]["max_attempts"] == 3
    assert nodes["each"]["loop"] == {"kind": "foreach", "over": "items", "into": "results", "max_concurrency": 2,
                                     "on_error": "skip", "errors_into": "errors"}
    assert nodes["loop"]["target"].endswith(":inc")
    assert nodes["loop"]["loop"]["kind"] == "while" and nodes["loop"]["loop"]["max_iterations"] == 7
    assert nodes["loop"]["loop"]["condition"] == "small"
    again = StateGraph.from_json(app.to_json(), schema=S, namespace={"double": double, "inc": inc, "small": small})
    assert again.to_json() == app.to_json()
    out = again.compile().invoke({"items": [1, 2], "n": 0})
    assert out["results"] == [2, 4] and out["n"] == 3


def test_from_json_imports_no_loop_condition_it_was_not_allowed_to() -> None:
    data = exported_graph().compile().to_json()
    with pytest.raises(GraphValidationError, match="the condition 'small' of while loop 'loop'"):
        StateGraph.from_json(data, schema=S, namespace={"double": double, "inc": inc})


def test_mermaid_and_dot_draw_loop_nodes_as_self_edges_with_how_they_loop() -> None:
    app = exported_graph().compile()
    mermaid = app.to_mermaid()
    assert 'n_each -.->|"↻ for each in items, 2 at once"| n_each' in mermaid
    assert 'n_loop -.->|"↻ while small, max 7"| n_loop' in mermaid
    dot = app.to_dot()
    assert '"each" -> "each" [style=bold, color="#0891b2", label="↻ for each in items, 2 at once"];' in dot
    assert '"loop" -> "loop" [style=bold, color="#0891b2", label="↻ while small, max 7"];' in dot


# -- the %%agentgraph cell language ----------------------------------------------------------------
def dsl_build(text: str, ns: dict[str, Any], schema: Any = S) -> StateGraph:
    from agentgraph_nb.notebook._dsl import build, parse

    return build(parse(text), name="cell", schema=schema, namespace=ns, builder_cls=StateGraph)  # type: ignore[no-any-return]


def dsl_error(text: str, ns: dict[str, Any] | None = None) -> Any:
    from agentgraph_nb.notebook._dsl import DslSyntaxError

    with pytest.raises(DslSyntaxError) as info:
        dsl_build(text, ns if ns is not None else {"double": double, "inc": inc, "small": small})
    return info.value


CELL = """\
START -> each -> loop -> END
each = double [foreach=items, into=results, max_concurrency=2, on_error=skip, errors_into=errors, retry=3]
loop = inc [while=small, max_iterations=7]
"""


def test_dsl_builds_foreach_and_while_nodes() -> None:
    ns: dict[str, Any] = {"double": double, "inc": inc, "small": small}
    g = dsl_build(CELL, ns)
    assert g.loops["each"].over == "items" and g.loops["each"].max_concurrency == 2
    assert g.nodes["each"].retry is not None and g.nodes["each"].retry.max_attempts == 3
    assert g.loops["loop"].max_iterations == 7
    app = g.compile()
    out = app.invoke({"items": [1, 2], "n": 0})
    assert (out["results"], out["errors"], out["n"]) == ([2, 4], [], 3)
    ns["small"] = lambda s: s["n"] < 5  # the condition is looked up when it runs (hot reload)
    assert app.invoke({"items": [], "n": 0})["n"] == 5


def test_to_dsl_round_trips_loop_nodes() -> None:
    ns: dict[str, Any] = {"double": double, "inc": inc, "small": small}
    app = dsl_build(CELL, ns).compile()
    text = app.to_dsl()
    assert "each = double [foreach=items, into=results, max_concurrency=2, on_error=skip, errors_into=errors, retry=3]" in text
    assert "loop = inc [while=small, max_iterations=7]" in text
    again = dsl_build(text, ns).compile()
    assert {k: v for k, v in again.to_json().items()} == app.to_json()
    # and from a graph built in Python, defaults left out
    g = StateGraph(S)
    g.add_foreach("each", double, over="items", into="results").add_while("loop", inc, condition=small)
    g.add_edge(START, "each").add_edge("each", "loop")
    text = g.compile().to_dsl()
    assert "each = double [foreach=items, into=results]" in text and "loop = inc [while=small]" in text
    def loops(data: dict[str, Any]) -> list[Any]:
        # (the cell's functions are the notebook's: their targets name __main__)
        return [(n["name"], n["retry"], {k: v for k, v in n["loop"].items() if k != "condition_target"})
                for n in data["nodes"]]

    assert loops(dsl_build(text, ns).to_json()) == loops(g.to_json())


def test_to_dsl_refuses_a_lambda_condition() -> None:
    g = StateGraph(S)
    g.add_while("loop", inc, condition=lambda s: False).add_edge(START, "loop")
    with pytest.raises(ValueError, match="while loop 'loop'.*condition '<lambda>' has no name"):
        g.compile().to_dsl()


@pytest.mark.parametrize(("line", "message", "column"), [
    ("each = double [foreach=itemz, into=results]", "foreach='itemz' is not a key of the state S. Did you mean 'items'?", 16),
    ("each = double [foreach=items, into=result]", "into='result' is not a key of the state S", 31),
    ("each = double [foreach=items]", "foreach= needs into=", 16),
    ("each = double [into=results]", "into= goes with foreach=", 16),
    ("each = double [foreach=items, into=results, max_concurrency=0]", "max_concurrency must be a whole number >= 1", 61),
    ("each = double [foreach=items, into=results, on_error=ignore]", "on_error is one of raise, skip, collect", 54),
    ("each = double [foreach=items, into=results, timeout=3]", "timeout does not apply to a for-each node", 45),
    ("loop = inc [while=smal]", "the condition of while loop 'loop': 'smal' is not defined in the notebook. Did you mean 'small'?", 13),
    ("loop = inc [while=small, max_iterations=0]", "max_iterations must be a whole number >= 1", 41),
    ("loop = inc [max_iterations=3]", "max_iterations= goes with while=", 13),
    ("loop = inc [while=small, foreach=items, into=results]", "cannot be both a for-each (foreach=) and a while loop", 13),
])
def test_dsl_loop_mistakes_have_line_and_column(line: str, message: str, column: int) -> None:
    e = dsl_error(f"START -> {line.split()[0]}\n{line}")
    assert message in e.msg and e.line == 2 and e.column == column, (e.msg, e.column)


def test_the_magic_builds_a_loop_cell_and_round_trips_it(capsys: pytest.CaptureFixture[str]) -> None:
    import textwrap

    pytest.importorskip("IPython")  # the notebook extra

    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "agentgraph_nb")
    ip.run_line_magic("config", "AgentGraphMagics.record = False")
    ip.user_ns.update({"S": S, "double": double, "inc": inc, "small": small})

    def run(code: str) -> None:
        ip.run_cell(textwrap.dedent(code), store_history=False).raise_error()

    run("%%agentgraph loops --state S --no-display\n" + CELL)
    assert ip.user_ns["loops"].invoke({"items": [3], "n": 1})["results"] == [6]
    run("%agentgraph dsl loops")
    text = capsys.readouterr().out
    run("%%agentgraph loops2 --state S --no-display\n" + text)
    assert ip.user_ns["loops2"].to_json()["nodes"] == ip.user_ns["loops"].to_json()["nodes"]


# -- GraphView counts and Timeline bars ------------------------------------------------------------
def test_graphview_counts_items_and_iterations_live() -> None:
    pytest.importorskip("anywidget")  # the notebook extra
    from agentgraph_nb.ui.graphview import GraphView

    seen: list[tuple[str | None, str | None]] = []
    view: Any = None

    def body(s: S) -> dict[str, Any]:
        view.flush()
        seen.append(((view.details.get("each") or {}).get("loop"), (view.details.get("loop") or {}).get("loop")))
        return inc(s)

    g = StateGraph(S, name="live")
    g.add_foreach("each", double, over="items", into="results", max_concurrency=1)
    g.add_while("loop", body, condition=small, max_iterations=7)
    g.add_edge(START, "each").add_edge("each", "loop")
    app = g.compile()
    view = GraphView.from_app(app)
    view.attach(app)
    try:
        app.invoke({"items": [5, 6, 7, 8], "n": 0})
        view.flush()
        assert seen == [("4/4", None), ("4/4", "1/7"), ("4/4", "2/7")]
        assert view.details["loop"]["loop"] == "3/7" and view.status == {"each": "done", "loop": "done"}
        bundle = view._repr_mimebundle_()
        svg = (bundle[0] if isinstance(bundle, tuple) else bundle)["image/svg+xml"]
        assert ">\u21bb 4/4</text>" in svg and ">\u21bb 3/7</text>" in svg  # the static picture too
    finally:
        view.close()


def test_timeline_draws_a_bar_per_item() -> None:
    pytest.importorskip("plotly")  # the notebook extra
    app = foreach_graph(double, max_concurrency=2).compile()
    app.record()
    app.invoke({"items": [1, 2, 3]})
    tl = app.timeline()
    try:
        names = sorted(str(t) for trace in tl.data for t in (() if trace.text is None else trace.text))
        assert {"each[0]", "each[1]", "each[2]", "each", "after"} <= set(names)
    finally:
        tl.close()


def test_timeline_items_that_run_side_by_side_get_lanes_of_their_own() -> None:
    pytest.importorskip("plotly")  # the notebook extra
    import threading

    both = threading.Barrier(2, timeout=5)  # the two items of a pair are running at once

    def slow(x: int) -> int:
        both.wait()
        return x

    app = foreach_graph(slow, max_concurrency=2).compile()
    app.record()
    app.invoke({"items": [1, 2, 3, 4]})
    tl = app.timeline()
    try:
        lanes = {x.node: x.lane for x in tl._log.executions.values()}
        assert lanes["each"] == 0 and lanes["each[0]"] != lanes["each[1]"] and lanes["each[2]"] != lanes["each[3]"]
        assert {lanes[f"each[{i}]"] for i in range(4)} <= {1, 2}  # freed lanes are reused, below the node's
    finally:
        tl.close()


def test_the_debugger_steps_a_while_loop_one_iteration_at_a_time() -> None:
    from agentgraph_nb import DebugSession

    app = while_graph(inc, lambda s: s["n"] < 3).compile()
    dbg = DebugSession(app, {"n": 0})
    seen = []
    while not dbg.done:
        snap = dbg.step()
        seen.append((snap.values.get("n"), snap.values.get("loop.iteration"), snap.next))
    assert seen == [(1, 1, ("loop",)), (2, 2, ("loop",)), (3, 3, ("loop",)), (3, 0, ("after",)), (3, 0, ())]
    dbg.back()
    assert dbg.state.values["loop.iteration"] == 0 and dbg.state.next == ("after",)


def test_the_static_picture_draws_the_loop_badge_with_the_count() -> None:
    from agentgraph_nb.export.svg import render_svg

    graph = exported_graph().compile().to_json()
    svg = render_svg(graph)
    assert svg.count("data-loop=") == 2 and ">\u21bb</text>" in svg
    svg = render_svg(graph, status={"each": "done"}, loop_counts={"each": "3/3"})
    assert 'data-loop="each"' in svg and ">\u21bb 3/3</text>" in svg


# -- durability: finished items are not run again --------------------------------------------------
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_foreach_resume_runs_only_the_items_not_finished(tmp_path: Any, kind: str) -> None:
    url = f"sqlite:///{tmp_path / 'fe.db'}"
    calls: list[int] = []
    broken = [True]

    def f(x: int) -> int:
        calls.append(x)
        if x == 3 and broken[0]:
            raise ConnectionError("the service went away")
        return x * 10

    async def af(x: int) -> int:
        return f(x)

    fn = f if kind == "sync" else af
    with pytest.raises(ConnectionError):
        foreach_graph(fn, max_concurrency=1).compile(url).invoke({"items": [0, 1, 2, 3, 4]}, thread_id="t")
    assert calls == [0, 1, 2, 3]
    broken[0] = False
    calls.clear()
    app = foreach_graph(fn, max_concurrency=1).compile(url)  # "a new process": only the store carries over
    out = app.invoke(None, thread_id="t")
    assert out["results"] == [0, 10, 20, 30, 40] and out["after"] is True
    assert calls == [3, 4]
    # a later run of the loop on the same thread starts afresh
    calls.clear()
    assert app.invoke({"items": [0, 1]}, thread_id="t")["results"] == [0, 10] and calls == [0, 1]


def test_foreach_resume_after_an_interrupt_answers_and_keeps_the_finished_items() -> None:
    from agentgraph_nb import Command, interrupt

    calls: list[int] = []

    def f(x: int) -> Any:
        calls.append(x)
        return interrupt(f"ok {x}?") if x == 1 else x

    app = foreach_graph(f, max_concurrency=1).compile()
    app.invoke({"items": [0, 1, 2]}, thread_id="t")
    assert calls == [0, 1, 2]
    calls.clear()
    assert app.invoke(Command(resume="yes"), thread_id="t")["results"] == [0, "yes", 2]
    assert calls == [1]
