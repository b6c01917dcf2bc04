"""Engine behaviour: building, routing, parallel merge, errors, retries, timeouts, streams."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import operator
import threading
import time
from typing import Annotated, Any, TypedDict

import pydantic
import pytest

from agentgraph_nb import (
    END,
    START,
    Command,
    GraphRecursionError,
    GraphValidationError,
    GraphValidationWarning,
    InvalidInputError,
    InvalidUpdateError,
    NodeTimeoutError,
    RetryPolicy,
    Send,
    StateGraph,
    interrupt,
    node_failure,
)


class S(TypedDict, total=False):
    x: int
    log: Annotated[list[str], operator.add]
    total: Annotated[int, operator.add]
    answer: str


def logger_node(name: str, **extra: Any):
    def fn(state: dict[str, Any]) -> dict[str, Any]:
        return {"log": [name], **extra}

    fn.__name__ = name
    return fn


def chain(names: list[str], schema: Any = S) -> StateGraph:
    g = StateGraph(schema, name="chain")
    prev = START
    for n in names:
        g.add_node(n, logger_node(n))
        g.add_edge(prev, n)
        prev = n
    g.add_edge(prev, END)
    return g


# -- building -------------------------------------------------------------------------------------
def test_chain_runs_in_order_and_returns_dict() -> None:
    app = chain(["a", "b", "c"]).compile()
    out = app.invoke({"x": 1})
    assert out == {"x": 1, "log": ["a", "b", "c"], "total": 0}


def test_node_kinds_sync_async_callable_object_and_decorator() -> None:
    g = StateGraph(S)

    class Obj:
        def __call__(self, s: dict[str, Any]) -> dict[str, Any]:
            return {"log": ["obj"]}

    class AObj:
        async def __call__(self, s: dict[str, Any]) -> dict[str, Any]:
            await asyncio.sleep(0)
            return {"log": ["aobj"]}

    async def anode(s: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"log": ["async"]}

    @g.node
    def deco(s: dict[str, Any]) -> None:
        return None

    @g.node("named", retry=RetryPolicy(max_attempts=2))
    def whatever(s: dict[str, Any]) -> dict[str, Any]:
        return {"log": ["named"]}

    g.add_node("obj", Obj()).add_node("aobj", AObj()).add_node(anode)
    g.add_edge(START, "deco").add_edge("deco", "named").add_edge("named", "obj")
    g.add_edge("obj", "aobj").add_edge("aobj", "anode")
    app = g.compile()
    assert app.invoke({})["log"] == ["named", "obj", "aobj", "async"]
    assert asyncio.run(app.ainvoke({}))["log"] == ["named", "obj", "aobj", "async"]


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda g: g.add_node("x", 42), "expected a function or callable"),
        (lambda g: g.add_node(START, lambda s: None), "reserved"),
        (lambda g: g.add_node("a", lambda s: None).add_node("a", lambda s: None), "already in graph"),
        (lambda g: g.add_node("a", lambda s: None, timeout=-1), "timeout"),
        (lambda g: g.add_node("a", lambda s: None, retry=3), "RetryPolicy"),
        (lambda g: g.add_weighted_edges("a", {"b": -1}), "weight"),
        (lambda g: g.add_conditional_edges("a", "notcallable"), "not callable"),
    ],
)
def test_bad_builder_calls_raise_typed_errors(bad: Any, match: str) -> None:
    with pytest.raises(GraphValidationError, match=match):
        bad(StateGraph(S))


def test_compile_rejects_unknown_nodes_with_did_you_mean() -> None:
    g = StateGraph(S).add_node("search", logger_node("search")).add_edge(START, "search")
    g.add_edge("search", "serch")
    with pytest.raises(GraphValidationError, match=r"unknown node 'serch'.*Did you mean 'search'"):
        g.compile()
    g2 = StateGraph(S).add_node("search", logger_node("search")).add_edge(START, "search")
    g2.add_conditional_edges("search", lambda s: "write", ["write"])
    with pytest.raises(GraphValidationError, match="declares target 'write'"):
        g2.compile()


def test_compile_accepts_none_for_interrupts() -> None:
    app = chain(["a", "b"]).compile(interrupt_before=None, interrupt_after=None)
    assert app.interrupt_before == app.interrupt_after == frozenset()
    assert app.invoke({})["log"] == ["a", "b"]
    app2 = chain(["a", "b"]).compile(interrupt_before="b", interrupt_after=None)
    assert app2.invoke({}, thread_id="t")["log"] == ["a"]
    with pytest.raises(GraphValidationError, match="interrupt_before must be a node name"):
        chain(["a"]).compile(interrupt_before=3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "weights, match",
    [
        ({"b": 1e308, "c": 1e308}, r"weights \{'b': 1e\+308, 'c': 1e\+308\} add up to more than the largest float"),
        ({"b": 10**400, "c": 1}, "weight of 'b' must be a finite number"),
        ({"b": float("nan"), "c": 1}, "weight of 'b' must be a finite number"),
        ({"b": float("inf")}, "weight of 'b' must be a finite number"),
        ({"b": 0, "c": 0.0}, "add up to 0"),
    ],
)
def test_weights_must_be_finite_and_add_up_to_a_finite_positive_total(weights: dict[str, Any], match: str) -> None:
    g = StateGraph(S).add_node("a", logger_node("a")).add_node("b", logger_node("b")).add_node("c", logger_node("c"))
    with pytest.raises(GraphValidationError, match=match) as ei:
        g.add_weighted_edges("a", weights)
    assert "add_weighted_edges('a')" in str(ei.value)


def test_large_finite_weights_pick_by_ratio_and_zero_weights_never() -> None:
    g = StateGraph(S).add_node("a", logger_node("a")).add_node("b", logger_node("b")).add_node("c", logger_node("c"))
    g.add_node("z", logger_node("z")).add_edge(START, "a").add_weighted_edges("a", {"b": 8e307, "z": 0, "c": 8e307})
    app = g.compile()
    picks = {app.invoke({}, seed=i)["log"][1] for i in range(40)}
    assert picks == {"b", "c"}


def test_compile_requires_entry_point() -> None:
    g = StateGraph(S).add_node("a", logger_node("a"))
    with pytest.raises(GraphValidationError, match="no entry point"):
        g.compile()


def test_compile_warns_unreachable_and_no_path_to_end() -> None:
    g = chain(["a"])
    g.add_node("orphan", logger_node("orphan"))
    with pytest.warns(GraphValidationWarning, match="orphan.*cannot be reached"):
        g.compile()
    g2 = StateGraph(S).add_node("a", logger_node("a")).add_node("b", logger_node("b"))
    g2.add_edge(START, "a").add_edge("a", "b").add_edge("b", "a")
    with pytest.warns(GraphValidationWarning, match="no path to END"):
        g2.compile()


def test_unsupported_schema() -> None:
    with pytest.raises(GraphValidationError, match="unsupported state schema"):
        StateGraph(int)


# -- state schemas --------------------------------------------------------------------------------
@dataclasses.dataclass
class DC:
    log: Annotated[list[str], operator.add] = dataclasses.field(default_factory=list)
    n: int = 5


class PM(pydantic.BaseModel):
    log: Annotated[list[str], operator.add] = []
    n: int = 5


@pytest.mark.parametrize("schema", [DC, PM])
def test_dataclass_and_pydantic_state(schema: Any) -> None:
    seen = []

    def a(s: Any) -> dict[str, Any]:
        seen.append(type(s))
        return {"log": ["a"], "n": s.n + 1}

    g = StateGraph(schema).add_node("a", a).add_edge(START, "a")
    out = g.compile().invoke({"log": ["in"]})
    assert out == {"log": ["in", "a"], "n": 6}
    assert seen == [schema]


class Query(pydantic.BaseModel):
    query: str
    n: int = 0
    notes: Annotated[list[str], operator.add] = []

    @pydantic.field_validator("n")
    @classmethod
    def _not_negative(cls, v: int) -> int:
        if v < 0:
            raise ValueError("n must be >= 0")
        return v


def test_pydantic_state_validates_the_input_naming_the_field() -> None:
    seen: list[Any] = []

    def a(s: Query) -> dict[str, Any]:
        seen.append((s.query, s.n))
        return {"notes": ["a"]}

    app = StateGraph(Query).add_node("a", a).add_edge(START, "a").compile()
    with pytest.raises(InvalidUpdateError, match=r"the input sets state key 'query' to dict \{\}, but Query.query is str") as ei:
        app.invoke({"query": {}})
    assert ei.value.key == "query" and ei.value.node == "__input__"
    assert isinstance(ei.value.__cause__, pydantic.ValidationError) and seen == []
    with pytest.raises(InvalidUpdateError, match=r"n must be >= 0"):  # field validators run too
        app.invoke({"query": "q", "n": -1})
    # reducer keys are checked as merged, with where inside the value the problem is
    with pytest.raises(InvalidUpdateError, match=r"state key 'notes'.*\(at notes\[1\]\)"):
        app.invoke({"query": "q", "notes": ["x", 2]})
    with pytest.raises(InvalidUpdateError, match=r"the input of thread 't' sets state key 'query'"):
        app.invoke({"query": 3.5}, thread_id="t")
    # valid input is coerced as pydantic does, and reaches the node
    assert app.invoke({"query": "q", "n": "4"}) == {"query": "q", "n": 4, "notes": ["a"]}
    assert seen == [("q", 4)]


def test_pydantic_state_validates_update_state_and_resume_updates_not_node_updates() -> None:
    g = StateGraph(Query).add_node("a", lambda s: {"n": 1}).add_node("b", lambda s: None)
    app = g.add_edge(START, "a").add_edge("a", "b").compile(interrupt_before="b")
    app.invoke({"query": "q"}, thread_id="t")
    with pytest.raises(InvalidUpdateError, match=r"update_state\(thread 't'\) sets state key 'n' to str 'x'") as ei:
        app.update_state("t", {"n": "x"})
    assert (ei.value.node, ei.value.key) == ("__update__", "n")
    with pytest.raises(InvalidUpdateError, match="sets state key 'query'"):
        app.invoke(Command(resume=None, update={"query": []}), thread_id="t")
    app.update_state("t", {"n": "7"})
    assert app.get_state("t").values["n"] == 7
    # a node's own updates are not validated (as in LangGraph): that would cost every step
    loose = StateGraph(Query).add_node("a", lambda s: {"n": "not a number"}).add_edge(START, "a").compile()
    assert loose.invoke({"query": "q"})["n"] == "not a number"


def test_reducer_initial_values_and_plain_keys_absent() -> None:
    app = chain(["a"]).compile()
    out = app.invoke({})
    assert "x" not in out and "answer" not in out
    assert out["log"] == ["a"] and out["total"] == 0


# -- errors in updates ----------------------------------------------------------------------------
def test_unknown_key_names_node_and_key() -> None:
    g = StateGraph(S).add_node("a", lambda s: {"anwser": "x"}).add_edge(START, "a")
    with pytest.raises(InvalidUpdateError, match=r"node 'a'.*unknown state key 'anwser'.*Did you mean 'answer'") as ei:
        g.compile().invoke({})
    assert (ei.value.node, ei.value.key, ei.value.step) == ("a", "anwser", 1)


def test_non_dict_update_names_node() -> None:
    g = StateGraph(S).add_node("a", lambda s: 42).add_edge(START, "a")
    with pytest.raises(InvalidUpdateError, match=r"node 'a' returned int 42"):
        g.compile().invoke({})


@pytest.mark.parametrize("update", [5, "ab", [1, 2], object()])
def test_command_update_that_is_not_a_dict_names_the_node_and_the_value(update: Any) -> None:
    g = StateGraph(S).add_node("a", lambda s: Command(update=update)).add_edge(START, "a")
    with pytest.raises(InvalidUpdateError, match=r"node 'a' returned Command\(update=.*\): a Command's update must be a dict") as ei:
        g.compile().invoke({})
    assert (ei.value.node, ei.value.step) == ("a", 1)


def test_command_update_as_pairs_or_mapping_still_works() -> None:
    import types

    g = StateGraph(S).add_node("a", lambda s: Command(update=[("x", 1)])).add_node(
        "b", lambda s: Command(update=types.MappingProxyType({"answer": "ok"}))
    )
    g.add_edge(START, "a").add_edge("a", "b")
    assert g.compile().invoke({}) == {"x": 1, "answer": "ok", "log": [], "total": 0}


@pytest.mark.parametrize("declared", [["b"], None, {"go": "b"}])
@pytest.mark.parametrize("out", [[["b"]], ["b", {"b": 1}], [1.5]])
def test_router_returning_a_bad_item_names_the_router_and_what_is_allowed(declared: Any, out: Any) -> None:
    def route(s: Any) -> Any:
        return out

    g = StateGraph(S).add_node("a", logger_node("a")).add_node("b", logger_node("b"))
    g.add_edge(START, "a").add_conditional_edges("a", route, declared)
    with pytest.raises(InvalidUpdateError, match=r"router 'route' of node 'a' returned .*a router must return a node name, "
                       "a list of names, Send objects or END|not one of its declared routes") as ei:
        g.compile().invoke({})
    assert (ei.value.node, ei.value.step) == ("a", 1)


def test_command_goto_with_a_bad_item_names_the_node() -> None:
    g = StateGraph(S).add_node("a", lambda s: Command(goto=[["b"]]), destinations=["b"]).add_node("b", logger_node("b"))
    g.add_edge(START, "a")
    with pytest.raises(InvalidUpdateError, match=r"Command\(goto=...\) of node 'a' returned \[\['b'\]\].*"
                       "a Command's goto must be a node name"):
        g.compile().invoke({})


def test_unknown_input_key() -> None:
    with pytest.raises(InvalidUpdateError, match="the input wrote unknown state key 'xx'"):
        chain(["a"]).compile().invoke({"xx": 1})


def test_parallel_writes_without_reducer_name_both_nodes() -> None:
    g = StateGraph(S)
    g.add_node("p", logger_node("p")).add_node("a", lambda s: {"answer": "A"}).add_node("b", lambda s: {"answer": "B"})
    g.add_edge(START, "p").add_edge("p", "a").add_edge("p", "b")
    app = g.compile()
    with pytest.raises(InvalidUpdateError, match=r"nodes 'a' and 'b' both wrote state key 'answer'.*at step 2"):
        app.invoke({}, thread_id="t")
    # nothing of the failed superstep was applied
    st = app.get_state("t")
    assert st.values["log"] == ["p"] and "answer" not in st.values


# -- parallel branches, joins, merge order --------------------------------------------------------
def test_fan_out_join_and_fixed_merge_order() -> None:
    g = StateGraph(S)

    def slow(s: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.05)
        return {"log": ["slow"]}

    g.add_node("p", logger_node("p")).add_node("slow", slow).add_node("fast", logger_node("fast"))
    g.add_node("j", logger_node("j"))
    g.add_edge(START, "p").add_edge("p", "slow").add_edge("p", "fast").add_edge(["slow", "fast"], "j")
    out = g.compile().invoke({})
    assert out["log"] == ["p", "slow", "fast", "j"]  # order added, not completion order


def test_fan_out_runs_concurrently_threads_and_async() -> None:
    g = StateGraph(S)
    barrier = threading.Barrier(2, timeout=5)

    def a(s: dict[str, Any]) -> dict[str, Any]:
        barrier.wait()  # deadlocks unless both run at once
        return {"log": ["a"]}

    def b(s: dict[str, Any]) -> dict[str, Any]:
        barrier.wait()
        return {"log": ["b"]}

    g.add_node("a", a).add_node("b", b).add_edge(START, "a").add_edge(START, "b")
    assert g.compile().invoke({})["log"] == ["a", "b"]

    g2 = StateGraph(S)
    ev: dict[str, asyncio.Event] = {}

    async def x(s: dict[str, Any]) -> dict[str, Any]:
        ev["x"].set()
        await asyncio.wait_for(ev["y"].wait(), 5)
        return {"log": ["x"]}

    async def y(s: dict[str, Any]) -> dict[str, Any]:
        ev["y"].set()
        await asyncio.wait_for(ev["x"].wait(), 5)
        return {"log": ["y"]}

    g2.add_node("x", x).add_node("y", y).add_edge(START, "x").add_edge(START, "y")

    async def main() -> dict[str, Any]:
        ev["x"], ev["y"] = asyncio.Event(), asyncio.Event()
        return await g2.compile().ainvoke({})

    assert asyncio.run(main())["log"] == ["x", "y"]


def test_join_with_branches_of_unequal_length() -> None:
    g = StateGraph(S)
    for n in ["p", "a1", "a2", "a3", "b", "j"]:
        g.add_node(n, logger_node(n))
    g.add_edge(START, "p").add_edge("p", "a1").add_edge("a1", "a2").add_edge("a2", "a3")
    g.add_edge("p", "b").add_edge(["a3", "b"], "j").add_edge("j", END)
    out = g.compile().invoke({})
    assert out["log"].count("j") == 1
    assert out["log"][-1] == "j"


def test_two_edges_into_one_node_same_step_run_once() -> None:
    g = StateGraph(S)
    for n in ["p", "a", "b", "c"]:
        g.add_node(n, logger_node(n))
    g.add_edge(START, "p").add_edge("p", "a").add_edge("p", "b").add_edge("a", "c").add_edge("b", "c")
    assert g.compile().invoke({})["log"] == ["p", "a", "b", "c"]


# -- routing --------------------------------------------------------------------------------------
def test_conditional_edges_loop_until_done() -> None:
    g = StateGraph(S)
    g.add_node("inc", lambda s: {"x": s.get("x", 0) + 1, "log": ["inc"]})
    g.add_node("done", logger_node("done"))
    g.add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: "inc" if s["x"] < 3 else "done", ["inc", "done"])
    out = g.compile().invoke({"x": 0})
    assert out["x"] == 3 and out["log"] == ["inc", "inc", "inc", "done"]


def test_router_path_map_list_and_end() -> None:
    g = StateGraph(S)
    for n in ["a", "b", "c"]:
        g.add_node(n, logger_node(n))
    g.add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: ["b", "c"])
    g.add_conditional_edges("b", lambda s: "stop", {"stop": END, "go": "c"})
    assert g.compile().invoke({})["log"] == ["a", "b", "c"]


def test_router_returning_undeclared_target_is_error() -> None:
    g = StateGraph(S)
    g.add_node("a", logger_node("a")).add_node("b", logger_node("b")).add_edge(START, "a")

    def route(s: dict[str, Any]) -> str:
        return "c"

    g.add_conditional_edges("a", route, ["b"])
    with pytest.raises(InvalidUpdateError, match=r"router 'route' of node 'a' returned 'c'.*declared targets \['b'\]"):
        g.compile().invoke({})


def test_dynamic_router_unknown_node_did_you_mean() -> None:
    g = StateGraph(S)
    g.add_node("a", logger_node("a")).add_node("write", logger_node("write")).add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: "wirte")
    with pytest.raises(InvalidUpdateError, match=r"unknown node 'wirte'.*Did you mean 'write'"):
        g.compile().invoke({})


def test_send_map_reduce_in_emit_order() -> None:
    class MS(TypedDict, total=False):
        docs: list[str]
        doc: str
        summaries: Annotated[list[str], operator.add]

    def summarize(s: dict[str, Any]) -> dict[str, Any]:
        time.sleep(0.01 * (3 - len(s["doc"])))  # finish in reverse order
        return {"summaries": [s["doc"].upper()]}

    g = StateGraph(MS)
    g.add_node("summarize", summarize)
    g.add_conditional_edges(START, lambda s: [Send("summarize", {"doc": d}) for d in s["docs"]])
    out = g.compile().invoke({"docs": ["a", "bb", "ccc"]})
    assert out["summaries"] == ["A", "BB", "CCC"]


def test_command_update_and_goto() -> None:
    g = StateGraph(S)
    g.add_node("a", lambda s: Command(update={"log": ["a"]}, goto="c"), destinations=["b", "c"])
    g.add_node("b", logger_node("b")).add_node("c", logger_node("c"))
    g.add_edge(START, "a").add_edge("b", END)
    assert g.compile().invoke({})["log"] == ["a", "c"]


def test_weighted_edges_are_seeded_and_follow_weights() -> None:
    g = StateGraph(S)
    g.add_node("pick", lambda s: {"x": s.get("x", 0) + 1})
    g.add_node("a", logger_node("a")).add_node("b", logger_node("b"))
    g.add_edge(START, "pick").add_weighted_edges("pick", {"a": 0.7, "b": 0.3})
    app = g.compile()
    runs = [app.invoke({}, seed=s)["log"][0] for s in range(400)]
    again = [app.invoke({}, seed=s)["log"][0] for s in range(400)]
    assert runs == again
    share = runs.count("a") / len(runs)
    assert 0.6 < share < 0.8


def test_recursion_limit() -> None:
    g = StateGraph(S).add_node("loop", logger_node("loop")).add_edge(START, "loop")
    g.add_conditional_edges("loop", lambda s: "loop", ["loop"])
    with pytest.warns(GraphValidationWarning, match="no path to END"):
        app = g.compile()
    with pytest.raises(GraphRecursionError, match="recursion limit of 5"):
        app.invoke({}, recursion_limit=5)


# -- failures -------------------------------------------------------------------------------------
def test_node_error_is_raised_as_is_and_names_node_step_attempt() -> None:
    def boom(s: dict[str, Any]) -> None:
        raise ZeroDivisionError("nope")

    g = chain(["a"]).add_node("boom", boom)
    g.edges.remove(("a", END))
    g.add_edge("a", "boom")
    with pytest.raises(ZeroDivisionError, match="nope") as ei:
        g.compile().invoke({})
    f = node_failure(ei.value)
    assert f is not None and (f.node, f.step, f.attempt, f.graph) == ("boom", 2, 1, "chain")
    assert ei.value.__notes__ == ["node 'boom' of graph 'chain' failed at step 2 (attempt 1)"]


def test_retry_with_backoff_then_success_and_metrics() -> None:
    calls: list[float] = []

    def flaky(s: dict[str, Any]) -> dict[str, Any]:
        calls.append(time.perf_counter())
        if len(calls) < 3:
            raise ConnectionError("down")
        return {"log": ["ok"]}

    g = StateGraph(S).add_node(
        "flaky", flaky, retry=RetryPolicy(max_attempts=3, initial_interval=0.02, backoff_factor=2, jitter=False)
    )
    g.add_edge(START, "flaky")
    app = g.compile()
    assert app.invoke({})["log"] == ["ok"]
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[0] >= 0.02 and gaps[1] >= 0.04
    st = app.metrics.node("flaky")
    assert (st.count, st.retries, st.errors) == (1, 2, 0)


def test_default_retry_never_retries_programming_errors() -> None:
    n = 0

    def bad(s: dict[str, Any]) -> None:
        nonlocal n
        n += 1
        raise KeyError("k")

    g = StateGraph(S).add_node("bad", bad, retry=RetryPolicy(initial_interval=0)).add_edge(START, "bad")
    with pytest.raises(KeyError):
        g.compile().invoke({})
    assert n == 1


def test_retry_on_predicate_and_exhaustion() -> None:
    n = 0

    def bad(s: dict[str, Any]) -> None:
        nonlocal n
        n += 1
        raise ValueError("v")

    pol = RetryPolicy(max_attempts=4, initial_interval=0, retry_on=lambda e: isinstance(e, ValueError))
    g = StateGraph(S).add_node("bad", bad, retry=pol).add_edge(START, "bad")
    with pytest.raises(ValueError, match="v") as ei:
        g.compile().invoke({})
    assert n == 4 and node_failure(ei.value).attempt == 4  # type: ignore[union-attr]


class _Response:
    """The shape of an httpx/requests response, as far as retries look."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.headers = headers or {}


class HTTPStatusError(Exception):
    """Shaped like httpx.HTTPStatusError / requests.HTTPError: the status is on ``.response``."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.response = _Response(status, headers)


class APIStatusError(Exception):
    """Shaped like openai/anthropic ``APIStatusError``: ``.status_code`` and ``.response``."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"Error code: {status}")
        self.status_code = status
        self.response = _Response(status, headers)


class RequestsHTTPError(OSError):
    """requests' errors are OSErrors; an HTTPError carries its response."""

    def __init__(self, status: int) -> None:
        super().__init__(f"{status} Server Error")
        self.response = _Response(status)


class Timeout(OSError):
    """Shaped like requests.Timeout: an OSError that is not the builtin TimeoutError."""


@pytest.mark.parametrize(
    "exc, retried",
    [
        (HTTPStatusError(401), False),
        (HTTPStatusError(404), False),
        (APIStatusError(400), False),
        (RequestsHTTPError(403), False),
        (HTTPStatusError(302), False),
        (HTTPStatusError(429), True),
        (APIStatusError(429), True),
        (HTTPStatusError(500), True),
        (APIStatusError(503), True),
        (RequestsHTTPError(502), True),
        (ConnectionError("reset"), True),
        (TimeoutError(), True),
        (Timeout("read timed out"), True),
        (ImportError("no module"), False),
        (ModuleNotFoundError("no module"), False),
        (SyntaxError("bad"), False),
        (StopIteration(), False),
        (AssertionError(), False),
        (ValueError(), False),
        (KeyError("k"), False),
        (FileNotFoundError(), False),
    ],
    ids=lambda v: f"{type(v).__name__}{getattr(getattr(v, 'response', None), 'status_code', '')}" if isinstance(v, BaseException) else str(v),
)
def test_default_retry_on_http_statuses_and_programming_errors(exc: BaseException, retried: bool) -> None:
    assert RetryPolicy().should_retry(exc) is retried


def test_default_retry_on_real_http_client_errors() -> None:
    httpx = pytest.importorskip("httpx")
    req = httpx.Request("GET", "https://api.example/v1")

    def status_error(code: int) -> Exception:
        return httpx.HTTPStatusError("x", request=req, response=httpx.Response(code, request=req))

    pol = RetryPolicy()
    assert [pol.should_retry(status_error(c)) for c in (401, 404, 422, 429, 500, 503)] == [False] * 3 + [True] * 3
    assert pol.should_retry(httpx.ConnectError("refused")) and pol.should_retry(httpx.ReadTimeout("slow"))
    requests = pytest.importorskip("requests")
    resp = requests.Response()
    resp.status_code = 404
    assert not pol.should_retry(requests.HTTPError("nf", response=resp))
    resp.status_code = 502
    assert pol.should_retry(requests.HTTPError("bad gw", response=resp))
    assert pol.should_retry(requests.ConnectionError("x")) and pol.should_retry(requests.ReadTimeout("x"))


def test_retry_after_header_is_the_wait_capped_by_max_interval() -> None:
    import email.utils

    pol = RetryPolicy(initial_interval=1.0, max_interval=30.0, jitter=True)
    assert pol.interval(0, None, HTTPStatusError(429, {"Retry-After": "7"})) == 7.0
    assert pol.interval(0, None, APIStatusError(503, {"retry-after": "2.5"})) == 2.5
    assert pol.interval(0, None, APIStatusError(429, {"retry-after-ms": "250"})) == 0.25
    assert pol.interval(0, None, HTTPStatusError(429, {"Retry-After": "3600"})) == 30.0  # capped
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert 17 < pol.interval(0, None, HTTPStatusError(503, {"Retry-After": when})) <= 20
    past = email.utils.formatdate(time.time() - 20, usegmt=True)
    assert pol.interval(0, None, HTTPStatusError(503, {"Retry-After": past})) == 0.0
    # no or unreadable header: the backoff (with jitter: between 1 and 1.5 s)
    assert 1.0 <= pol.interval(0, None, HTTPStatusError(503, {"Retry-After": "soon"})) <= 1.5
    assert 1.0 <= pol.interval(0, None, HTTPStatusError(503)) <= 1.5


def test_a_429_is_retried_after_the_servers_retry_after() -> None:
    calls: list[float] = []

    def api(s: dict[str, Any]) -> dict[str, Any]:
        calls.append(time.perf_counter())
        if len(calls) == 1:
            raise APIStatusError(429, {"retry-after": "0.15"})
        if len(calls) == 2:
            raise APIStatusError(404)
        return {"log": ["ok"]}

    g = StateGraph(S).add_node("api", api, retry=RetryPolicy(initial_interval=0, max_attempts=5)).add_edge(START, "api")
    with pytest.raises(APIStatusError, match="Error code: 404") as ei:
        g.compile().invoke({})
    assert node_failure(ei.value).attempt == 2 and len(calls) == 2  # type: ignore[union-attr]  # the 404 is not retried
    assert calls[1] - calls[0] >= 0.15


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_timeouts_for_sync_and_async_nodes(kind: str) -> None:
    if kind == "sync":
        def slow(s: dict[str, Any]) -> None:
            time.sleep(0.5)
    else:
        async def slow(s: dict[str, Any]) -> None:  # type: ignore[misc]
            await asyncio.sleep(0.5)

    g = StateGraph(S).add_node("slow", slow, timeout=0.05).add_edge(START, "slow")
    app = g.compile()
    t = time.perf_counter()
    with pytest.raises(NodeTimeoutError, match="timed out after 0.05s") as ei:
        app.invoke({})
    assert time.perf_counter() - t < 0.4
    assert ei.value.node == "slow"
    assert app.metrics.node("slow").timeouts == 1


def test_timeout_is_retried_by_default_policy() -> None:
    n = 0

    def sometimes_slow(s: dict[str, Any]) -> dict[str, Any]:
        nonlocal n
        n += 1
        if n == 1:
            time.sleep(0.3)
        return {"log": ["ok"]}

    g = StateGraph(S).add_node("s", sometimes_slow, timeout=0.05, retry=RetryPolicy(initial_interval=0))
    g.add_edge(START, "s")
    assert g.compile().invoke({})["log"] == ["ok"]


def test_failed_parallel_sibling_keeps_completed_writes_pending() -> None:
    runs: dict[str, int] = {"ok": 0, "bad": 0}
    fail = {"on": True}

    def ok(s: dict[str, Any]) -> dict[str, Any]:
        runs["ok"] += 1
        return {"log": ["ok"]}

    def bad(s: dict[str, Any]) -> dict[str, Any]:
        runs["bad"] += 1
        if fail["on"]:
            raise RuntimeError("bad")
        return {"log": ["bad"]}

    g = StateGraph(S).add_node("ok", ok).add_node("bad", bad).add_edge(START, "ok").add_edge(START, "bad")
    app = g.compile()
    with pytest.raises(RuntimeError, match="bad") as ei:
        app.invoke({}, thread_id="t")
    assert node_failure(ei.value).node == "bad"  # type: ignore[union-attr]
    assert app.get_state("t").next == ("bad",)
    fail["on"] = False
    out = app.invoke(None, thread_id="t")
    assert out["log"] == ["ok", "bad"]
    assert runs == {"ok": 1, "bad": 2}


def test_async_sibling_cancelled_when_one_fails() -> None:
    cancelled = []

    async def slow(s: dict[str, Any]) -> dict[str, Any]:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return {}

    async def bad(s: dict[str, Any]) -> None:
        raise RuntimeError("x")

    g = StateGraph(S).add_node("slow", slow).add_node("bad", bad).add_edge(START, "slow").add_edge(START, "bad")
    t = time.perf_counter()
    with pytest.raises(RuntimeError, match="x"):
        asyncio.run(g.compile().ainvoke({}))
    assert cancelled == [True] and time.perf_counter() - t < 2


# -- streams, events, logging -----------------------------------------------------------------------
def test_stream_modes() -> None:
    app = chain(["a", "b"]).compile()
    assert list(app.stream({"x": 1}, mode="updates")) == [{"a": {"log": ["a"]}}, {"b": {"log": ["b"]}}]
    vals = list(app.stream({"x": 1}, mode="values"))
    assert [v["log"] for v in vals] == [[], ["a"], ["a", "b"]]
    both = list(app.stream({"x": 1}, mode=["updates", "values"]))
    assert both[0] == ("values", {"x": 1, "log": [], "total": 0})
    with pytest.raises(InvalidInputError, match="unknown stream mode 'update'.*Did you mean 'updates'"):
        list(app.stream({}, mode="update"))


def test_stream_none_update_still_yields() -> None:
    g = StateGraph(S).add_node("n", lambda s: None).add_edge(START, "n")
    assert list(g.compile().stream({})) == [{"n": None}]


def test_events_kinds_and_fields() -> None:
    def flaky_factory() -> Any:
        n = {"i": 0}

        def flaky(s: dict[str, Any]) -> dict[str, Any]:
            n["i"] += 1
            if n["i"] == 1:
                raise ConnectionError("x")
            return {"log": ["f"]}

        return flaky

    g = StateGraph(S).add_node("f", flaky_factory(), retry=RetryPolicy(initial_interval=0)).add_edge(START, "f")
    app = g.compile()
    events = list(app.stream({}, thread_id="e", mode="events"))
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    for k in ("step_start", "node_start", "node_retry", "node_end", "state_update", "checkpoint"):
        assert k in kinds
    end = next(e for e in events if e.kind == "node_end")
    assert end.node == "f" and end.attempt == 2 and end.duration >= 0 and end.thread_id == "e"
    assert all(e.run_id == events[0].run_id for e in events)
    ts = [e.ts for e in events]
    assert ts == sorted(ts)


def test_listener_attach_detach_and_broken_listener_does_not_break_run() -> None:
    app = chain(["a"]).compile()
    got: list[str] = []
    off = app.listen(lambda e: got.append(e.kind))

    def broken(e: Any) -> None:
        raise ValueError("listener bug")

    off2 = app.listen(broken)
    app.invoke({})
    assert "node_end" in got
    off()
    off2()
    n = len(got)
    app.invoke({})
    assert len(got) == n


def test_logging_records_with_extra(caplog: pytest.LogCaptureFixture) -> None:
    def boom(s: dict[str, Any]) -> None:
        raise ValueError("bad")

    g = StateGraph(S).add_node("boom", boom).add_edge(START, "boom")
    with caplog.at_level(logging.DEBUG, logger="agentgraph_nb"), pytest.raises(ValueError):
        g.compile().invoke({}, thread_id="th")
    recs = [r for r in caplog.records if r.name == "agentgraph_nb"]
    err = [r for r in recs if r.levelno == logging.ERROR and getattr(r, "node", "") == "boom"]
    assert err and err[0].thread_id == "th" and err[0].step == 1  # type: ignore[attr-defined]
    assert any(r.levelno == logging.INFO and "started" in r.getMessage() for r in recs)


# -- batch, cancellation, loops ---------------------------------------------------------------------
def test_batch_and_abatch_order_and_exceptions() -> None:
    def maybe(s: dict[str, Any]) -> dict[str, Any]:
        if s["x"] == 3:
            raise ValueError("three")
        return {"total": s["x"]}

    g = StateGraph(S).add_node("m", maybe).add_edge(START, "m")
    app = g.compile()
    res = app.batch([{"x": i} for i in range(6)], max_concurrency=3, return_exceptions=True)
    assert [r["total"] if isinstance(r, dict) else "err" for r in res] == [0, 1, 2, "err", 4, 5]
    res2 = asyncio.run(app.abatch([{"x": i} for i in (1, 2)], max_concurrency=1))
    assert [r["total"] for r in res2] == [1, 2]


def test_cancelling_an_async_run_stops_it() -> None:
    started = asyncio.Event if False else None  # noqa: F841

    async def slow(s: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(10)
        return {}

    app = StateGraph(S).add_node("slow", slow).add_edge(START, "slow").compile()

    async def main() -> None:
        task = asyncio.create_task(app.ainvoke({}))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    t = time.perf_counter()
    asyncio.run(main())
    assert time.perf_counter() - t < 2
    assert app.metrics.summary()["runs_failed"] == 1


def test_invoke_inside_running_loop_uses_that_loop_for_async_nodes() -> None:
    """An async client bound to the notebook's loop keeps working under sync invoke()."""

    async def notebook_cell() -> dict[str, Any]:
        queue: asyncio.Queue[int] = asyncio.Queue()  # bound to this (the "notebook's") loop
        await queue.put(41)
        outer = asyncio.get_running_loop()

        async def use_client(s: dict[str, Any]) -> dict[str, Any]:
            assert asyncio.get_running_loop() is outer
            v = await queue.get()
            return {"total": v + 1}

        app = StateGraph(S).add_node("c", use_client).add_edge(START, "c").compile()
        return app.invoke({})  # sync call inside a running loop

    assert asyncio.run(notebook_cell())["total"] == 42


def test_sync_graph_invoke_inside_running_loop() -> None:
    async def cell() -> dict[str, Any]:
        return chain(["a", "b"]).compile().invoke({})

    assert asyncio.run(cell())["log"] == ["a", "b"]


# -- exports --------------------------------------------------------------------------------------
def route_fn(s: dict[str, Any]) -> str:
    return "b"


def test_exports_and_json_round_trip() -> None:
    g = StateGraph(S, name="exp")
    for n in ["a", "b", "c", "d"]:
        g.add_node(n, logger_node(n), retry=RetryPolicy(max_attempts=2) if n == "a" else None)
    g.add_edge(START, "a").add_conditional_edges("a", route_fn, ["b", "c"])
    g.add_weighted_edges("b", {"c": 0.5, "d": 0.5}).add_edge(["c", "d"], END)
    app = g.compile()
    data = app.to_json()
    assert [n["name"] for n in data["nodes"]] == ["a", "b", "c", "d"]
    assert data["branches"][0]["router"] == "route_fn"
    ns = {n: logger_node(n) for n in "abcd"} | {"route_fn": route_fn}
    g2 = StateGraph.from_json(data, schema=S, namespace=ns)
    assert g2.to_json() | {"nodes": None} == data | {"nodes": None}
    assert [n["retry"] for n in g2.to_json()["nodes"]] == [n["retry"] for n in data["nodes"]]
    dot = app.to_dot()
    assert dot.startswith('digraph "exp"') and '"a" -> "b" [style=dashed, label="route_fn"]' in dot
    mm = app.to_mermaid()
    assert mm.startswith("flowchart LR") and 'n_b -->|"0.5"| n_c' in mm


def _graph_file(target: str, router_target: str | None = None) -> dict[str, Any]:
    data = chain(["a"]).to_json()
    data["nodes"][0]["target"] = target
    if router_target is not None:
        data["branches"] = [{"source": "a", "router": "pick", "router_target": router_target, "targets": None,
                             "path_map": None}]
    return data


def test_from_json_imports_nothing_the_caller_did_not_allow(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    marker = tmp_path / "imported.txt"
    (tmp_path / "agn_side_effect_mod.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\ndef fn(state):\n    return None\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for target in ("os:system", "agn_side_effect_mod:fn", "subprocess:getoutput"):
        with pytest.raises(GraphValidationError, match=rf"node 'a' refers to '{target}', which is not in namespace=") as ei:
            StateGraph.from_json(_graph_file(target), schema=S)
        assert "allow_modules" in str(ei.value)
        # a namespace that lacks the node, or an allowlist of other modules, changes nothing
        with pytest.raises(GraphValidationError, match="may not be imported"):
            StateGraph.from_json(_graph_file(target), schema=S, namespace={"os": __import__("os")},
                                 allow_modules=["agn_side_effect_mo", "json"])
    with pytest.raises(GraphValidationError, match=r"router 'pick' of the conditional edge from 'a' refers to 'os:system'"):
        StateGraph.from_json(_graph_file("agn_side_effect_mod:fn", "os:system"), schema=S,
                             namespace={"a": logger_node("a")})
    assert not marker.exists() and "agn_side_effect_mod" not in sys.modules
    # exact names only: the file cannot walk from an object in the namespace to another one
    with pytest.raises(GraphValidationError, match="may not be imported"):
        StateGraph.from_json(_graph_file("x:os.system"), schema=S, namespace={"os": __import__("os")})
    # what the caller allows is used
    g = StateGraph.from_json(_graph_file("agn_side_effect_mod:fn"), schema=S, allow_modules=["agn_side_effect_mod"])
    assert marker.exists() and g.nodes["a"].fn is sys.modules["agn_side_effect_mod"].fn


def test_from_json_resolves_by_node_name_ref_or_function_name() -> None:
    def write_report(s: Any) -> dict[str, Any]:
        return {"log": ["report"]}

    data = _graph_file("notebook:write_report")
    assert StateGraph.from_json(data, schema=S, namespace={"write_report": write_report}).nodes["a"].fn is write_report
    data["nodes"][0]["ref"] = "write_v2"
    other = logger_node("v2")
    assert StateGraph.from_json(data, schema=S, namespace={"write_v2": other, "write_report": write_report}).nodes["a"].fn is other
    # a non-callable under the node's name is skipped, not used
    assert StateGraph.from_json(data, schema=S, namespace={"a": 5, "write_v2": other}).nodes["a"].fn is other
    app = StateGraph.from_json(data, schema=S, allow_modules=["tests"], namespace={"write_v2": other}).compile()
    assert app.invoke({})["log"] == ["v2"]


def test_from_json_rejects_malformed_files_with_typed_errors() -> None:
    data = _graph_file("x:y")
    data["nodes"][0]["retry"] = {"max_attempts": 0}
    with pytest.raises(GraphValidationError, match="node 'a' has an invalid retry policy"):
        StateGraph.from_json(data, schema=S, namespace={"a": logger_node("a")})
    with pytest.raises(GraphValidationError, match="malformed graph data"):
        StateGraph.from_json({"format": "agentgraph_nb/graph", "version": 1, "nodes": [{}]}, schema=S)
    with pytest.raises(GraphValidationError, match="expected a dict or JSON text"):
        StateGraph.from_json([1, 2], schema=S)  # type: ignore[arg-type]


def test_ctrl_c_in_a_node_stops_the_run_and_keeps_the_checkpoint() -> None:
    state = {"interrupt": True}

    def b(s: dict[str, Any]) -> dict[str, Any]:
        if state["interrupt"]:
            raise KeyboardInterrupt
        return {"log": ["b"]}

    g = StateGraph(S).add_node("a", logger_node("a")).add_node("b", b).add_edge(START, "a").add_edge("a", "b")
    app = g.compile()
    with pytest.raises(KeyboardInterrupt):
        app.invoke({}, thread_id="k")
    st = app.get_state("k")
    assert st.values["log"] == ["a"] and st.next == ("b",)
    assert app.metrics.summary()["runs_failed"] == 1
    state["interrupt"] = False
    assert app.invoke(None, thread_id="k")["log"] == ["a", "b"]


# -- the loop coroutine under a stream (driven through the stream trampoline) ----------------------
def _two_async_steps(log: list[str]) -> Any:
    async def first(s: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"log": ["first"]}

    async def second(s: dict[str, Any]) -> dict[str, Any]:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            log.append("second cancelled")
            raise
        finally:
            log.append("second finally")
        return {"log": ["second"]}

    return (StateGraph(S).add_node("first", first).add_node("second", second)
            .add_edge(START, "first").add_edge("first", "second").compile())


def test_cancelling_an_astream_reaches_the_awaiting_node() -> None:
    log: list[str] = []
    app = _two_async_steps(log)
    got: list[Any] = []

    async def consume() -> None:
        async for upd in app.astream({}, mode="updates"):
            got.append(upd)

    async def main() -> None:
        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)  # "second" is sleeping now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert got == [{"first": {"log": ["first"]}}]
    assert log == ["second cancelled", "second finally"]
    assert app.metrics.summary()["runs_failed"] == 1


def test_leaving_an_astream_early_closes_the_run() -> None:
    log: list[str] = []
    events: list[str] = []
    app = _two_async_steps(log)

    async def main() -> list[Any]:
        got = []
        agen = app.astream({}, mode=["updates", "events"], listeners=[lambda e: events.append(e.kind)])
        async for mode, _payload in agen:
            got.append(mode)
            if mode == "updates":
                break  # after "first": the loop is parked between steps
        await agen.aclose()  # type: ignore[attr-defined]
        return got

    got = asyncio.run(main())
    assert got[-1] == "updates" and "second finally" not in log  # "second" never started
    assert events[-1] == "run_end" and "node_start" in events
    assert events.count("node_start") == 1


def test_exceptions_and_results_of_awaited_futures_reach_the_node_under_astream() -> None:
    """Whatever the event loop sends or throws back into the parked loop reaches the node."""

    async def waits(s: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        ok: asyncio.Future[int] = loop.create_future()
        loop.call_later(0.01, ok.set_result, 41)
        bad: asyncio.Future[int] = loop.create_future()
        loop.call_later(0.01, bad.set_exception, KeyError("k"))
        try:
            await bad
        except KeyError as exc:
            caught = str(exc)
        try:
            await asyncio.wait_for(asyncio.sleep(5), 0.01)
        except asyncio.TimeoutError:
            caught += " timeout"
        return {"total": await ok + 1, "answer": caught}

    app = StateGraph(S).add_node("w", waits).add_edge(START, "w").compile()

    async def main() -> list[Any]:
        return [v async for v in app.astream({}, mode="values")]

    values = asyncio.run(main())
    assert values[-1]["total"] == 42 and values[-1]["answer"] == "'k' timeout"
    # and the same through sync stream() (a private loop drives the trampoline)
    assert list(app.stream({}, mode="values"))[-1]["answer"] == "'k' timeout"


def test_inline_async_node_retries_and_interrupts_like_the_general_path() -> None:
    calls: list[int] = []

    async def flaky(s: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("flaky")
        answer = interrupt("ok?")
        return {"answer": answer}

    app = (StateGraph(S).add_node("f", flaky, retry=RetryPolicy(max_attempts=3, initial_interval=0.001, jitter=False))
           .add_edge(START, "f").compile())
    out = asyncio.run(app.ainvoke({}, thread_id="t"))
    assert len(calls) == 3 and out["__interrupt__"][0].value == "ok?"
    out = asyncio.run(app.ainvoke(Command(resume="yes"), thread_id="t"))
    assert out["answer"] == "yes" and len(calls) == 4
    summary = app.metrics.summary()
    assert summary["runs_completed"] == 1 and summary["runs_interrupted"] == 1

    def always(s: dict[str, Any]) -> dict[str, Any]:
        raise ConnectionError("no")

    app2 = StateGraph(S).add_node("a", always, retry=RetryPolicy(max_attempts=2, initial_interval=0.001)).add_edge(
        START, "a").compile()
    with pytest.raises(ConnectionError, match="no") as ei:
        asyncio.run(app2.ainvoke({}))
    assert ei.value.__notes__ == ["node 'a' of graph 'S' failed at step 1 (attempt 2)"]


# -- which run interrupt() answers to -------------------------------------------------------------
def _asking(name: str = "ask") -> Any:
    def helper() -> Any:
        return interrupt(f"{name}?")

    async def ask(s: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"answer": helper()}  # from a function the node calls, after an await

    return ask


def test_interrupt_without_thread_from_inline_nodes_helpers_and_timeouts() -> None:
    app = StateGraph(S).add_node("ask", _asking()).add_edge(START, "ask").compile()
    out = asyncio.run(app.ainvoke({}))
    assert [i.value for i in out["__interrupt__"]] == ["ask?"]
    assert app.invoke({})["__interrupt__"][0].node == "ask"  # sync invoke of an async graph

    def sync_ask(s: dict[str, Any]) -> dict[str, Any]:
        return {"answer": interrupt("sync?")}

    for timeout in (None, 5.0):  # with a timeout the node runs on a worker thread
        g = StateGraph(S).add_node("s", sync_ask, timeout=timeout).add_edge(START, "s").compile()
        assert g.invoke({})["__interrupt__"][0].value == "sync?"
        assert asyncio.run(g.ainvoke({}))["__interrupt__"][0].value == "sync?"
    timed = StateGraph(S).add_node("ask", _asking("timed"), timeout=5.0).add_edge(START, "ask").compile()
    assert asyncio.run(timed.ainvoke({}))["__interrupt__"][0].value == "timed?"


def test_interrupt_in_a_task_the_node_starts_needs_a_thread() -> None:
    async def fan_out(s: dict[str, Any]) -> dict[str, Any]:
        answers = await asyncio.gather(asyncio.create_task(_asking("child")({})))
        return answers[0]

    app = StateGraph(S).add_node("f", fan_out).add_edge(START, "f").compile()
    out = asyncio.run(app.ainvoke({}, thread_id="t"))
    assert out["__interrupt__"][0].value == "child?"
    assert asyncio.run(app.ainvoke(Command(resume="yes"), thread_id="t"))["answer"] == "yes"
    with pytest.raises(RuntimeError, match="only in runs with a thread_id"):
        asyncio.run(app.ainvoke({}))


def test_interrupt_in_a_subgraph_belongs_to_the_subgraph() -> None:
    inner = StateGraph(S).add_node("ask", _asking("inner")).add_edge(START, "ask").compile()
    seen: list[Any] = []

    async def outer_node(s: dict[str, Any]) -> dict[str, Any]:
        res = await inner.ainvoke({})  # no thread: the inner run pauses, the outer one goes on
        seen.append(res["__interrupt__"][0].value)
        return {"answer": "outer done"}

    outer = StateGraph(S).add_node("o", outer_node).add_edge(START, "o").compile()
    out = asyncio.run(outer.ainvoke({}, thread_id="t"))
    assert seen == ["inner?"] and out["answer"] == "outer done" and "__interrupt__" not in out
