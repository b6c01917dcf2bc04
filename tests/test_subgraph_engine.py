"""Subgraphs: a compiled graph as a node, its checkpoints under namespaces of the parent's
thread, interrupts and crashes deep inside, streams and events with namespaces, handoffs to the
parent, and the typed errors of bad input. (LangGraph's own scenarios: tests/parity/test_subgraphs.py.)"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import (
    END,
    START,
    Command,
    GraphValidationError,
    InvalidInputError,
    InvalidUpdateError,
    Send,
    StateGraph,
    interrupt,
    node_failure,
)
from agentgraph_nb.errors import UnknownNamespaceError

pytestmark = pytest.mark.filterwarnings("ignore::agentgraph_nb.errors.GraphValidationWarning")


class S(TypedDict):
    x: int
    log: Annotated[list[str], operator.add]


def _counted(calls: list[str], name: str, fn: Any = None) -> Any:
    def node(s: Any) -> Any:
        calls.append(name)
        return fn(s) if fn is not None else {"log": [name]}

    node.__name__ = name
    return node


def _chain(name: str, *nodes: tuple[str, Any], **kw: Any) -> Any:
    g = StateGraph(S, name=name)
    prev = START
    for n, fn in nodes:
        g.add_node(n, fn)
        g.add_edge(prev, n)
        prev = n
    g.add_edge(prev, END)
    return g.compile(**kw)


# -- a graph as a node ------------------------------------------------------------------------------
def test_keys_flow_in_and_out_child_reducers_inside_parent_reducers_on_output() -> None:
    class Child(TypedDict):
        x: int
        notes: Annotated[list[str], operator.add]  # the child's own key: never reaches the parent

    def inc(s: Child) -> dict[str, Any]:
        return {"x": s["x"] + 1, "notes": ["inc"]}

    child = StateGraph(Child, name="child")
    child.add_node("inc", inc).add_node("inc2", inc).add_edge(START, "inc").add_edge("inc", "inc2")
    app = _chain("parent", ("team", child.compile()))
    assert app.invoke({"x": 1, "log": ["start"]}) == {"x": 3, "log": ["start"]}


def test_add_node_with_the_graph_alone_uses_its_name() -> None:
    team = _chain("team", ("a", lambda s: {"x": s["x"] * 2}))
    g = StateGraph(S, name="parent")
    g.add_node(team).add_edge(START, "team")
    assert "team" in g.nodes and g.compile().invoke({"x": 4, "log": []})["x"] == 8


def test_output_schema_limits_what_goes_up() -> None:
    class Out(TypedDict):
        x: int

    child = StateGraph(S, output_schema=Out, name="child")
    child.add_node("a", lambda s: {"x": 7, "log": ["hidden"]}).add_edge(START, "a")
    app = _chain("parent", ("team", child.compile()))
    assert app.invoke({"x": 1, "log": []}) == {"x": 7, "log": []}


def test_router_and_send_target_a_subgraph_instances_have_their_own_namespaces() -> None:
    class M(TypedDict):
        items: list[int]
        out: Annotated[list[int], operator.add]

    class One(TypedDict):
        item: int
        out: Annotated[list[int], operator.add]

    def ask(s: One) -> dict[str, Any]:
        return {"out": [s["item"] * interrupt(f"factor for {s['item']}?")]}

    one = StateGraph(One, name="one")
    one.add_node("ask", ask).add_edge(START, "ask")
    g = StateGraph(M, name="map")
    g.add_node("each", one.compile())
    g.add_conditional_edges(START, lambda s: [Send("each", {"item": i}) for i in s["items"]])
    app = g.compile()
    out = app.invoke({"items": [1, 2, 3]}, thread_id="t")
    assert len(out["__interrupt__"]) == 3
    answers = {it.id: int(it.value.split()[2].rstrip("?")) * 10 for it in out["__interrupt__"]}
    assert app.invoke(Command(resume=answers), thread_id="t")["out"] == [10, 40, 90]
    for i, item in enumerate([1, 2, 3]):
        assert app.get_state("t", namespace=f"each:{i}").values["item"] == item

    # a router choosing the subgraph (a conditional subgraph)
    g2 = StateGraph(S, name="cond")
    g2.add_node("team", _chain("team", ("a", lambda s: {"x": 100})))
    g2.add_node("other", lambda s: {"x": -1})
    g2.add_conditional_edges(START, lambda s: "team" if s["x"] > 0 else "other", ["team", "other"])
    app2 = g2.compile()
    assert app2.invoke({"x": 1, "log": []})["x"] == 100 and app2.invoke({"x": 0, "log": []})["x"] == -1


def test_three_levels_deep_and_the_same_graph_as_two_nodes() -> None:
    leaf = _chain("leaf", ("double", lambda s: {"x": s["x"] * 2}))
    mid = StateGraph(S, name="mid")
    mid.add_node("l1", leaf).add_node("l2", leaf).add_edge(START, "l1").add_edge("l1", "l2")
    top = _chain("top", ("m", mid.compile()))
    assert top.invoke({"x": 3, "log": []}, thread_id="t")["x"] == 12
    assert top.get_state("t", namespace="m|l2").values["x"] == 12
    assert top.get_state("t", namespace="m|l1").values["x"] == 6


def test_different_schemas_by_calling_invoke_in_a_node() -> None:
    class Other(TypedDict):
        text: str

    inner = StateGraph(Other, name="inner")
    inner.add_node("up", lambda s: {"text": s["text"].upper()}).add_edge(START, "up")
    inner_app = inner.compile()
    app = _chain("parent", ("call", lambda s: {"log": [inner_app.invoke({"text": s["log"][0]})["text"]]}))
    assert app.invoke({"x": 0, "log": ["hi"]})["log"] == ["hi", "HI"]


@pytest.mark.asyncio
async def test_async_subgraph_interrupt_and_resume_with_ainvoke() -> None:
    calls: list[str] = []

    async def ask(s: S) -> dict[str, Any]:
        calls.append("ask")
        return {"x": interrupt("x?")}

    async def first(s: S) -> dict[str, Any]:
        calls.append("first")
        return {"log": ["first"]}

    child = StateGraph(S, name="child")
    child.add_node("first", first).add_node("ask", ask).add_edge(START, "first").add_edge("first", "ask")
    app = _chain("parent", ("team", child.compile()))
    out = await app.ainvoke({"x": 0, "log": []}, thread_id="a")
    assert out["__interrupt__"][0].path == ("team", "ask")
    assert await app.ainvoke(Command(resume=5), thread_id="a") == {"x": 5, "log": ["first"]}
    assert calls == ["first", "ask", "ask"]  # the node that asked runs again; first does not


# -- checkpoints under namespaces -------------------------------------------------------------------
def test_interrupt_deep_inside_resumes_without_rerunning_finished_nodes(tmp_path: Path) -> None:
    calls: list[str] = []

    def approve(s: S) -> dict[str, Any]:
        calls.append("approve")
        return {"log": [f"approved={interrupt({'question': 'ok?'})}"]}

    inner = StateGraph(S, name="inner")
    inner.add_node("research", _counted(calls, "research")).add_node("approve", approve)
    inner.add_edge(START, "research").add_edge("research", "approve")
    team = StateGraph(S, name="team")
    team.add_node("lead", _counted(calls, "lead")).add_node("inner", inner.compile())
    team.add_edge(START, "lead").add_edge("lead", "inner")
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    build = lambda: _chain("parent", ("pre", _counted(calls, "pre")), ("team", team.compile()),  # noqa: E731
                           ("post", _counted(calls, "post")), checkpointer=store)
    out = build().invoke({"x": 0, "log": []}, thread_id="t")
    assert out["__interrupt__"][0].path == ("team", "inner", "approve")
    assert out["__interrupt__"][0].value == {"question": "ok?"}
    # a new process: a fresh compiled graph on the same file
    app = build()
    final = app.invoke(Command(resume="yes"), thread_id="t")
    assert "approved=yes" in final["log"] and final["log"][-1] == "post"
    assert calls == ["pre", "lead", "research", "approve", "approve", "post"]
    assert app.list_threads() == ["t"]
    app.delete_thread("t")
    assert app.checkpointer.list_threads() == []  # type: ignore[union-attr]


def test_crash_inside_a_subgraph_resumes_inside_it() -> None:
    calls: list[str] = []
    broken = {"on": True}

    def search(s: S) -> dict[str, Any]:
        calls.append("search")
        if broken["on"]:
            raise ConnectionError("search backend down")
        return {"log": ["found"]}

    researcher = _chain("researcher", ("plan", _counted(calls, "plan")), ("search", search))
    team = _chain("team", ("brief", _counted(calls, "brief")), ("researcher", researcher))
    app = _chain("parent", ("team", team), ("write", _counted(calls, "write")))
    with pytest.raises(ConnectionError) as info:
        app.invoke({"x": 0, "log": []}, thread_id="t")
    failure = node_failure(info.value)
    assert failure is not None and failure.path == ("team", "researcher", "search")
    assert failure.where == "team > researcher > search" and failure.graph == "parent"
    assert "team > researcher > search" in "\n".join(getattr(info.value, "__notes__", []))
    assert app.get_state("t").next == ("team",)
    assert app.get_state("t", namespace="team|researcher").tasks[0].error == "ConnectionError: search backend down"
    broken["on"] = False
    out = app.invoke(None, thread_id="t")
    assert out["log"][-1] == "write" and "found" in out["log"]
    assert calls == ["brief", "plan", "search", "search", "write"]


def test_get_state_subgraphs_history_update_and_fork_inside() -> None:
    def ask(s: S) -> dict[str, Any]:
        return {"log": [f"answer={interrupt('q')}", f"x={s['x']}"]}

    child = _chain("child", ("bump", lambda s: {"x": s["x"] + 1}), ("ask", ask))
    app = _chain("parent", ("team", child))
    app.invoke({"x": 1, "log": []}, thread_id="t")
    snap = app.get_state("t", subgraphs=True)
    inner = snap.tasks[0].state
    assert inner.values == {"x": 2, "log": []} and inner.next == ("ask",)
    assert inner.interrupts[0].value == "q"
    hist = app.get_state_history("t", namespace="team")
    assert [h.metadata["source"] for h in hist] == ["loop", "input"]
    # edit the subgraph's state, then answer: the subgraph goes on from the edit
    app.update_state("t", {"x": 50}, namespace="team")
    assert app.invoke(Command(resume="a"), thread_id="t")["log"] == ["answer=a", "x=50"]
    # fork from the subgraph's first checkpoint (before bump): a new branch inside it
    app2 = _chain("parent", ("team", child))
    app2.invoke({"x": 1, "log": []}, thread_id="f")
    first = app2.get_state_history("f", namespace="team")[-1]
    app2.update_state("f", {"x": 10}, namespace="team", checkpoint_id=first.checkpoint_id)
    assert app2.get_state("f", namespace="team").next == ("bump",)
    # the branch runs bump again, then ask asks anew (a new question: the fork is another position)
    again = app2.invoke(Command(resume="b"), thread_id="f")
    assert again["__interrupt__"][0].value == "q" and again["__interrupt__"][0].path == ("team", "ask")
    assert app2.invoke(Command(resume="c"), thread_id="f")["log"] == ["answer=c", "x=11"]


def test_subgraph_without_a_thread_runs_without_checkpoints() -> None:
    app = _chain("parent", ("team", _chain("team", ("a", lambda s: {"x": 9}))), checkpointer=None)
    assert app.invoke({"x": 0, "log": []}) == {"x": 9, "log": []}


# -- streams and events -----------------------------------------------------------------------------
def test_events_and_frames_carry_the_namespace() -> None:
    pytest.importorskip("pandas")
    inner = _chain("inner", ("leaf", lambda s: {"x": 1}))
    team = _chain("team", ("inner", inner))
    app = _chain("parent", ("team", team))
    seen: list[Any] = []
    app.listen(seen.append)
    app.record()
    app.invoke({"x": 0, "log": []}, thread_id="t")
    ends = {(e.namespace, e.node) for e in seen if e.kind == "node_end"}
    assert ends == {("", "team"), ("team", "inner"), ("team|inner", "leaf")}
    assert {e.thread_id for e in seen} == {"t"}
    starts = {e.namespace: e for e in seen if e.kind == "run_start"}
    top_start = starts[""]
    assert starts["team"].data["parent_run_id"] == top_start.run_id and starts["team"].data["parent_task_id"] == "1:0"
    assert starts["team|inner"].data["parent_run_id"] == starts["team"].run_id
    df = app.events()
    assert "namespace" in df.columns
    assert set(df[df.kind == "node_end"].namespace) == {"", "team", "team|inner"}
    from agentgraph_nb.observe.frames import executions_frame

    ex = executions_frame(app)
    assert list(ex[ex.namespace == "team|inner"].node) == ["leaf"]
    rows = app.metrics.rows(subgraphs=True)
    assert {(r["namespace"], r["node"]) for r in rows} == {("", "team"), ("team", "inner"), ("team|inner", "leaf")}
    assert app.metrics.to_pandas(subgraphs=True).loc[("team|inner", "leaf"), "count"] == 1


def test_stream_subgraphs_with_events_mode_and_without_subgraphs() -> None:
    app = _chain("parent", ("team", _chain("team", ("a", lambda s: {"x": 1}))))
    assert list(app.stream({"x": 0, "log": []})) == [{"team": {"x": 1, "log": []}}]
    kinds = [(ns, e.kind) for ns, e in app.stream({"x": 0, "log": []}, mode="events", subgraphs=True)]
    assert (("team",), "node_end") in kinds and ((), "node_end") in kinds


# -- handoffs ---------------------------------------------------------------------------------------
def test_handoff_to_a_parent_node_and_typed_error_at_top_level() -> None:
    def triage(s: S) -> Command:
        return Command(goto="billing", graph=Command.PARENT, update={"log": ["to billing"]})

    support = _chain("support", ("triage", triage))
    g = StateGraph(S, name="desk")
    g.add_node("support", support, destinations=("billing",))
    g.add_node("billing", lambda s: {"log": ["billing"]})
    g.add_edge(START, "support")
    assert g.compile().invoke({"x": 0, "log": []}) == {"x": 0, "log": ["to billing", "billing"]}

    top = StateGraph(S, name="alone")
    top.add_node("triage", triage).add_edge(START, "triage")
    with pytest.raises(InvalidUpdateError, match=r"node 'triage' of graph 'alone'.*not running as a subgraph"):
        top.compile().invoke({"x": 0, "log": []})
    with pytest.raises(InvalidUpdateError, match="not running as a subgraph"):
        list(top.compile().stream({"x": 0, "log": []}))


# -- bad input --------------------------------------------------------------------------------------
def test_no_shared_key_names_both_graphs() -> None:
    class Other(TypedDict):
        text: str

    other = StateGraph(Other, name="translator")
    other.add_node("t", lambda s: {}).add_edge(START, "t")
    g = StateGraph(S, name="desk")
    with pytest.raises(GraphValidationError, match=r"subgraph 'translator'.*no state key with graph 'desk'"):
        g.add_node("tr", other.compile())


def test_a_graph_containing_itself_is_refused() -> None:
    g = StateGraph(S, name="loop")
    g.add_node("a", lambda s: {}).add_edge(START, "a")
    first = g.compile()
    with pytest.raises(GraphValidationError, match=r"graph 'loop' cannot be a node of graph 'loop'"):
        g.add_node("me", first)
    h = StateGraph(S, name="outer")
    h.add_node("g", first).add_edge(START, "g")
    with pytest.raises(GraphValidationError, match=r"loop > outer > loop"):
        g.add_node("outer", h.compile())


def test_unknown_namespace_names_graph_thread_and_namespace() -> None:
    app = _chain("parent", ("team", _chain("team", ("a", lambda s: {}))), ("plain", lambda s: {}))
    app.invoke({"x": 0, "log": []}, thread_id="t")
    with pytest.raises(UnknownNamespaceError, match=r"graph 'parent', thread 't': namespace 'teem'.*Did you mean"):
        app.get_state_history("t", namespace="teem")
    with pytest.raises(UnknownNamespaceError, match="not a subgraph: 'plain'"):
        app.get_state("t", namespace="plain")
    with pytest.raises(UnknownNamespaceError, match=r"thread 'u'.*'team'.*has not run it"):
        app.get_state_history("u", namespace="team")


# -- every store ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres", "redis"])
@pytest.mark.parametrize("durability", ["sync", "exit"])
def test_every_store_keeps_namespaced_checkpoints(kind: str, durability: str, request: pytest.FixtureRequest,
                                                   tmp_path: Path) -> None:
    from tests.conftest import store_url

    url = store_url(kind, request, tmp_path)
    calls: list[str] = []

    def ask(s: S) -> dict[str, Any]:
        calls.append("ask")
        return {"x": interrupt("x?")}

    def build(store: Any) -> Any:
        inner = _chain("inner", ("prep", _counted(calls, "prep")), ("ask", ask))
        return _chain("parent", ("team", _chain("team", ("inner", inner))), checkpointer=store)

    app = build(url)
    try:
        out = app.invoke({"x": 0, "log": []}, thread_id="t", durability=durability)
        assert out["__interrupt__"][0].path == ("team", "inner", "ask")
        app2 = build(app.checkpointer if kind == "memory" else url)  # another process (memory: the same store)
        try:
            assert app2.get_state("t", subgraphs=True).tasks[0].state.tasks[0].state.next == ("ask",)
            assert app2.invoke(Command(resume=3), thread_id="t", durability=durability) == {"x": 3, "log": ["prep"]}
            assert calls == ["prep", "ask", "ask"]
            assert app2.list_threads() == ["t"]
            assert len(app2.get_state_history("t", namespace="team|inner")) >= 3
            app2.delete_thread("t")
            assert app2.checkpointer.list_threads() == []  # type: ignore[union-attr]
        finally:
            app2.checkpointer.close()  # type: ignore[union-attr]
    finally:
        app.checkpointer.close()  # type: ignore[union-attr]


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_async_run_on_a_network_store_resumes_inside(kind: str, request: pytest.FixtureRequest,
                                                           tmp_path: Path) -> None:
    from tests.conftest import store_url

    async def ask(s: S) -> dict[str, Any]:
        return {"x": interrupt("x?")}

    def sync_ask(s: S) -> dict[str, Any]:
        return {"log": [f"sync {interrupt('y?')}"]}

    async def pre(s: S) -> dict[str, Any]:
        return {"log": ["pre"]}

    inner = StateGraph(S, name="inner")
    inner.add_node("ask", ask).add_edge(START, "ask")
    sync_inner = _chain("sync_inner", ("sync_ask", sync_ask))  # a sync subgraph inside an async run
    g = StateGraph(S, name="parent")
    g.add_node("pre", pre).add_node("team", inner.compile()).add_node("helper", sync_inner)
    g.add_edge(START, "pre").add_edge("pre", "team").add_edge("team", "helper")
    app = g.compile(checkpointer=store_url(kind, request, tmp_path))
    try:
        out = await app.ainvoke({"x": 0, "log": []}, thread_id="t")
        assert out["__interrupt__"][0].path == ("team", "ask")
        out = await app.ainvoke(Command(resume=4), thread_id="t")
        assert out["__interrupt__"][0].path == ("helper", "sync_ask")
        assert await app.ainvoke(Command(resume=5), thread_id="t") == {
            "x": 4, "log": ["pre", "pre", "pre", "pre", "sync 5"]}
    finally:
        app.checkpointer.close()  # type: ignore[union-attr]


# -- "messages" from inside a subgraph (real openai SDK against the local model server) ---------------
@pytest.mark.parametrize("use_async", [False, True])
def test_messages_stream_from_inside_a_subgraph_carries_its_namespace(use_async: bool) -> None:
    pytest.importorskip("openai")
    from agentgraph_nb.llm import OpenAIChat
    from agentgraph_nb.testing import ModelServer

    class Q(TypedDict, total=False):
        question: str
        answer: str

    with ModelServer(token_delay=0.0) as server:
        model = OpenAIChat("test-model", base_url=server.base_url)

        if use_async:
            async def agent(s: Q) -> dict[str, Any]:
                return {"answer": (await model.ainvoke(s["question"]))["content"]}
        else:
            def agent(s: Q) -> dict[str, Any]:  # type: ignore[misc]
                return {"answer": model.invoke(s["question"])["content"]}

        inner = StateGraph(Q, name="researcher")
        inner.add_node("agent", agent).add_edge(START, "agent")
        g = StateGraph(Q, name="team")
        g.add_node("researcher", inner.compile()).add_edge(START, "researcher")
        app = g.compile()
        items = list(app.stream({"question": "one two"}, mode=["messages", "updates"], subgraphs=True, thread_id="m"))
    tokens = [(ns, p) for ns, m, p in items if m == "messages"]
    assert "".join(c["content"] for _, (c, _) in tokens) == "You said: one two"
    assert {ns for ns, _ in tokens} == {("researcher",)}
    meta = tokens[0][1][1]
    assert meta["node"] == "agent" and meta["namespace"] == "researcher" and meta["thread_id"] == "m"
    assert items[-1] == ((), "updates", {"researcher": {"question": "one two", "answer": "You said: one two"}})


# -- exports keep the nesting -----------------------------------------------------------------------
def _leaf(s: S) -> dict[str, Any]:
    return {"x": 2}


def _first(s: S) -> dict[str, Any]:
    return {"x": 1}


def test_exports_keep_the_nesting() -> None:
    inner = StateGraph(S, name="inner")
    inner.add_node("leaf", _leaf).add_edge(START, "leaf").add_edge("leaf", END)
    mid = StateGraph(S, name="research")
    mid.add_node("first", _first).add_node("inner", inner.compile()).add_edge(START, "first")
    mid.add_edge("first", "inner").add_edge("inner", END)
    top = StateGraph(S, name="top")
    top.add_node("team", mid.compile()).add_node("first", _first)
    top.add_edge(START, "team").add_edge("team", "first").add_edge("first", END)
    app = top.compile()
    data = app.to_json()
    team = next(n for n in data["nodes"] if n["name"] == "team")
    assert team["ref"] == "research" and team["subgraph"]["name"] == "research"
    inner_json = next(n for n in team["subgraph"]["nodes"] if n["name"] == "inner")["subgraph"]
    assert [n["name"] for n in inner_json["nodes"]] == ["leaf"]
    # back from JSON: the nested graphs are rebuilt (or taken from the namespace by name)
    rebuilt = StateGraph.from_json(data, schema=S, namespace={"_first": _first, "first": _first, "leaf": _leaf, "S": S})
    assert rebuilt.compile().invoke({"x": 0, "log": []}, thread_id="j")["x"] == 1
    assert rebuilt.compile().to_json()["nodes"][0]["subgraph"]["nodes"][1]["subgraph"]["name"] == "inner"
    given = StateGraph.from_json(data, schema=S, namespace={"first": _first, "research": mid.compile()})
    assert given.nodes["team"].fn.app.name == "research"  # type: ignore[attr-defined]

    dot = app.to_dot()
    assert 'subgraph "cluster_team" {' in dot and 'subgraph "cluster_team/inner" {' in dot
    assert '"__start__" -> "team/__start__";' in dot and '"team/__end__" -> "first";' in dot
    assert '"team/first" -> "team/inner/__start__";' in dot
    mermaid = app.to_mermaid()
    assert 'subgraph n_team ["team: research"]' in mermaid and "subgraph n_team__n_inner" in mermaid
    assert "__start__ --> n_team" in mermaid and "n_team__n_inner__n_leaf" in mermaid
    dsl = app.to_dsl()
    assert "team = research" in dsl and "# team: subgraph 'research'" in dsl and "#   START -> first -> inner -> END" in dsl


def test_cell_language_uses_a_compiled_graph_bound_by_name_as_a_subgraph() -> None:
    from agentgraph_nb.notebook._dsl import build, parse

    research = _chain("research", ("find", lambda s: {"x": s["x"] + 5}))

    def publish(s: S) -> dict[str, Any]:
        return {"log": [f"published {s['x']}"]}

    ns = {"research": research, "publish": publish}
    app = build(parse("START -> team -> publish -> END\nteam = research\n"), name="desk", schema=S, namespace=ns,
                builder_cls=StateGraph).compile()
    assert app.invoke({"x": 1, "log": []}, thread_id="c") == {"x": 6, "log": ["published 6"]}
    assert app.get_state("c", namespace="team").values["x"] == 6
    assert "team = research" in app.to_dsl()


def test_breakpoints_inside_a_subgraph_step_through_it() -> None:
    calls: list[str] = []
    inner = _chain("inner", ("a", _counted(calls, "a")), ("b", _counted(calls, "b")))
    app = _chain("parent", ("team", inner), ("post", _counted(calls, "post")))
    # stop before b inside team (per call), then go on
    out = app.invoke({"x": 0, "log": []}, thread_id="t", interrupt_before=["team|b"])
    assert out["__interrupt__"][0].path == ("team", "b") and out["__interrupt__"][0].when == "before"
    assert calls == ["a"] and app.get_state("t", namespace="team").next == ("b",)
    assert app.invoke(None, thread_id="t")["log"] == ["a", "b", "post"]
    # "team|*": before every node of team, one step at a time (stepping into the subgraph)
    calls.clear()
    seen = []
    out = app.invoke({"x": 0, "log": []}, thread_id="s", interrupt_before=["team|*"])
    while "__interrupt__" in out:
        seen.append(out["__interrupt__"][0].path)
        out = app.invoke(None, thread_id="s", interrupt_before=["team|*"])
    assert seen == [("team", "a"), ("team", "b")] and calls == ["a", "b", "post"]
    # compiled in, and after a node
    app2 = _chain("parent", ("team", inner), ("post", lambda s: {}), interrupt_after=["team|a"])
    assert app2.invoke({"x": 0, "log": []}, thread_id="u")["__interrupt__"][0].path == ("team", "a")
    with pytest.raises(InvalidInputError, match=r"'team\|c': graph 'inner' has no node 'c'"):
        app.invoke({"x": 0, "log": []}, thread_id="v", interrupt_before=["team|c"])
    with pytest.raises(InvalidInputError, match="node 'post' of graph 'parent' is not a subgraph"):
        app.invoke({"x": 0, "log": []}, thread_id="v", interrupt_before=["post|x"])
    with pytest.raises(GraphValidationError, match="has no node 'nope'"):
        _chain("p", ("team", inner), interrupt_before=["nope|a"])


# -- breakpoints inside a subgraph, handoff logging, custom stream items --------------------------
def _inner_ab(**compile_kw: Any) -> Any:
    g = StateGraph(S, name="inner")
    g.add_node("a", lambda s: {"x": s["x"] + 1, "log": ["a"]})
    g.add_node("b", lambda s: {"x": s["x"] + 10, "log": ["b"]})
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", END)
    return g.compile(**compile_kw)


def _outer(inner: Any, checkpointer: Any = "memory") -> Any:
    g = StateGraph(S, name="outer")
    g.add_node("sub", inner)
    g.add_node("c", lambda s: {"x": s["x"] + 100, "log": ["c"]})
    g.add_edge(START, "sub").add_edge("sub", "c").add_edge("c", END)
    return g.compile(checkpointer=checkpointer)


def test_inner_breakpoints_passed_are_not_pending_any_more(tmp_path: Path) -> None:
    app = _outer(_inner_ab(interrupt_before=["a", "b"]), f"sqlite:///{tmp_path / 'c.db'}")
    first = app.invoke({"x": 0, "log": []}, thread_id="t")["__interrupt__"]
    assert [i.path for i in first] == [("sub", "a")]
    second = app.invoke(None, thread_id="t")["__interrupt__"]
    assert [i.path for i in second] == [("sub", "b")]
    # only the breakpoint the run stands at now is pending (not the one passed before it)
    assert [i.path for i in app.get_state("t").interrupts] == [("sub", "b")]
    assert [i.path for t in app.get_state("t").tasks for i in t.interrupts] == [("sub", "b")]
    done = app.invoke(None, thread_id="t")
    assert done == {"x": 111, "log": ["a", "b", "c"]}
    assert app.get_state("t").interrupts == ()


def test_interrupt_after_the_last_node_of_a_subgraph_pauses_the_parent() -> None:
    app = _outer(_inner_ab(interrupt_after=["b"]))
    paused = app.invoke({"x": 0, "log": []}, thread_id="t")
    assert [(i.path, i.when) for i in paused["__interrupt__"]] == [(("sub", "b"), "after")]
    assert paused["x"] == 0  # the parent has not taken the subgraph's output yet, and c has not run
    snap = app.get_state("t", subgraphs=True)
    assert snap.next == ("sub",)
    assert snap.tasks[0].state.values["x"] == 11  # the subgraph's own state, after b
    assert app.invoke(None, thread_id="t") == {"x": 111, "log": ["a", "b", "c"]}


def test_a_top_level_interrupt_after_on_the_last_node_still_just_finishes() -> None:
    app = _inner_ab(interrupt_after=["b"], checkpointer="memory")
    assert app.invoke({"x": 0, "log": []}, thread_id="t") == {"x": 11, "log": ["a", "b"]}
    assert app.get_state("t").next == ()


def test_a_handoff_to_the_parent_is_not_logged_as_a_failed_run(caplog: pytest.LogCaptureFixture) -> None:
    class T(TypedDict):
        x: int
        log: Annotated[list[str], operator.add]

    inner = StateGraph(T, name="agent_a")
    inner.add_node("hand", lambda s: Command(goto="b", graph=Command.PARENT, update={"log": ["handoff"]}))
    inner.add_edge(START, "hand")
    g = StateGraph(T, name="team")
    g.add_node("a", inner.compile(), destinations=("b",))
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_edge(START, "a").add_edge("b", END)
    with caplog.at_level("INFO", logger="agentgraph_nb"):
        out = g.compile().invoke({"x": 0, "log": []})
    assert out["log"] == ["handoff", "b"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
    assert any("agent_a" in r.getMessage() and "completed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("use_async", [False, True])
def test_custom_stream_items_of_a_subgraph_carry_its_namespace(use_async: bool) -> None:
    import asyncio

    from agentgraph_nb import get_stream_writer

    def a(s: Any) -> Any:
        get_stream_writer()({"at": "inner a"})
        return {"x": 1}

    def top(s: Any) -> Any:
        get_stream_writer()({"at": "top"})
        return {}

    inner = StateGraph(S, name="inner")
    inner.add_node("a", a).add_edge(START, "a")
    g = StateGraph(S, name="outer")
    g.add_node("top", top).add_node("sub", inner.compile())
    g.add_edge(START, "top").add_edge("top", "sub")
    app = g.compile()

    async def collect(**kw: Any) -> list[Any]:
        return [it async for it in app.astream({"x": 0, "log": []}, **kw)]

    def items(**kw: Any) -> list[Any]:
        return asyncio.run(collect(**kw)) if use_async else list(app.stream({"x": 0, "log": []}, **kw))

    assert items(mode="custom", subgraphs=True) == [((), {"at": "top"}), (("sub",), {"at": "inner a"})]
    # without subgraphs=True, every custom item comes plain, as before
    assert items(mode="custom") == [{"at": "top"}, {"at": "inner a"}]
