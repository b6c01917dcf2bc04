"""GraphView, Python side: traits, events -> statuses, coalesced sending, threads, repr; and the
static SVG fallback (agentgraph_nb.export.svg)."""

from __future__ import annotations

import itertools
import operator
import threading
import time
import xml.etree.ElementTree as ET
from typing import Annotated, Any, TypedDict

import pytest

pytest.importorskip("anywidget")

from agentgraph_nb.export.svg import graph_size, render_svg
from agentgraph_nb.types import Event, Interrupt
from agentgraph_nb.ui._synthetic import synthetic_graph
from agentgraph_nb.ui.graphview import GraphView, short_text

SVG_NS = "{http://www.w3.org/2000/svg}"

RESEARCH: dict[str, Any] = {
    "format": "agentgraph_nb/graph",
    "version": 1,
    "name": "research",
    "state": {"schema": "State", "keys": {"notes": {"type": "list[str]", "reducer": "add"}}},
    "nodes": [
        {"name": n, "target": f"mymod:{n}", "async": False, "retry": None, "timeout": None}
        for n in ("plan", "search", "write", "a", "b", "join", "explore", "review")
    ],
    "edges": [
        {"source": "__start__", "target": "plan"},
        {"source": "plan", "target": "search"},
        {"source": "plan", "target": "a"},
        {"source": "plan", "target": "b"},
        {"source": "join", "target": "explore"},
        {"source": "write", "target": "__end__"},
    ],
    "joins": [{"sources": ["a", "b"], "target": "join"}],
    "branches": [
        {
            "source": "search",
            "router": "route",
            "router_target": "mymod:route",
            "targets": ["search", "write"],
            "path_map": None,
        },
        {
            "source": "review",
            "router": "decide",
            "router_target": "mymod:decide",
            "targets": None,
            "path_map": None,
        },
        {
            "source": "write",
            "router": "check",
            "router_target": "mymod:check",
            "targets": None,
            "path_map": {"ok": "__end__", "again": "plan"},
        },
    ],
    "weighted": [{"source": "explore", "weights": {"a": 0.7, "review": 0.3}}],
}
NODES = [n["name"] for n in RESEARCH["nodes"]]


def ev(kind: str, node: str = "", *, run_id: str = "r1", **kw: Any) -> Event:
    return Event(kind=kind, run_id=run_id, thread_id="t1", step=1, node=node, **kw)


def wait_until(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def view() -> Any:
    v = GraphView(RESEARCH)
    yield v
    v.close()


# -- traits -----------------------------------------------------------------------------------


def test_traits_from_graph_json(view: GraphView) -> None:
    assert view.graph == RESEARCH
    assert view.graph is not RESEARCH  # a copy: the caller's dict is not shared
    assert view.status == {} and view.details == {} and view.edge_counts == {}
    assert view.selected == "" and view.breakpoints == [] and view.current == []
    assert view.layout_engine == "auto" and view.renderer == "auto"
    assert view.reset_on_run_start is True
    assert view.node_names == NODES
    keys = view.trait_names(sync=True)
    for name in ("graph", "status", "details", "selected", "edge_counts", "breakpoints", "current"):
        assert name in keys
    assert "reset_on_run_start" not in keys  # a Python-side option
    assert "export default" in str(view._esm) or "render" in str(view._esm)


def test_esm_is_the_built_bundle() -> None:
    from agentgraph_nb.ui import graphview

    path = graphview._STATIC / "graphview.js"
    assert path.is_file()
    text = path.read_text(encoding="utf-8")
    assert text.startswith("/* agentgraph_nb graphview widget")
    assert "import(" not in text and 'from"http' not in text and 'from "http' not in text
    assert str(GraphView(RESEARCH)._esm) == text


def test_from_app_calls_to_json() -> None:
    class App:
        calls = 0

        def to_json(self) -> dict[str, Any]:
            App.calls += 1
            return RESEARCH

    v = GraphView.from_app(App(), height="300px")
    assert App.calls == 1 and v.graph == RESEARCH and v.height == "300px"


def test_attach_listens_and_detach_unsubscribes() -> None:
    class App:
        def __init__(self) -> None:
            self.listeners: list[Any] = []

        def listen(self, cb: Any) -> Any:
            self.listeners.append(cb)
            return lambda: self.listeners.remove(cb)

    app = App()
    v = GraphView(RESEARCH)
    unsubscribe = v.attach(app)
    assert app.listeners == [v.on_event] and callable(unsubscribe)
    app.listeners[0](ev("run_start"))
    v.detach()
    assert app.listeners == []
    v.attach(app)
    v.close()
    assert app.listeners == []


def test_unknown_layout_engine_is_rejected() -> None:
    import traitlets

    with pytest.raises(traitlets.TraitError):
        GraphView(RESEARCH, layout_engine="graphviz")


# -- events -> statuses -----------------------------------------------------------------------


def test_run_start_marks_every_node_pending(view: GraphView) -> None:
    view.on_event(ev("run_start"))
    view.flush()
    assert view.status == dict.fromkeys(NODES, "pending")


def test_node_events_map_to_statuses_and_details(view: GraphView) -> None:
    view.on_event(ev("run_start"))
    view.on_event(ev("step_start"))
    view.on_event(ev("node_start", "plan", data={"question": "q"}, attempt=1))
    view.flush()
    assert view.status["plan"] == "running"
    assert view.details["plan"]["input"] == "{'question': 'q'}"
    view.on_event(ev("node_end", "plan", data={"notes": ["p"]}, duration=0.0123, attempt=1))
    view.on_event(ev("state_update", data={"notes": ["p"]}))
    view.on_event(ev("checkpoint", data="ckpt-1"))
    view.on_event(ev("node_start", "search", data={}, attempt=1))
    view.on_event(ev("node_retry", "search", data=ConnectionError("flaky"), attempt=1))
    view.flush()
    assert view.status["plan"] == "done"
    assert view.details["plan"] == {
        "input": "{'question': 'q'}",
        "output": "{'notes': ['p']}",
        "duration": "12.3 ms",
        "attempt": "1",
        "error": "",
    }
    assert view.status["search"] == "retrying"
    assert view.details["search"]["error"] == "ConnectionError: flaky"
    view.on_event(ev("node_start", "search", data={}, attempt=2))
    view.flush()
    assert view.status["search"] == "running"
    assert view.details["search"]["attempt"] == "2"
    assert view.details["search"]["error"] == "ConnectionError: flaky"  # kept while retrying
    view.on_event(ev("node_error", "search", data=ValueError("bad"), duration=1.5, attempt=2))
    view.on_event(ev("run_end", duration=2.0))
    assert view.status["search"] == "failed"
    assert view.details["search"]["error"] == "ValueError: bad"
    assert view.details["search"]["duration"] == "1.50 s"
    # nodes that never ran are idle again once the run is over
    assert view.status["write"] == "idle"


def test_interrupt_marks_the_paused_nodes(view: GraphView) -> None:
    view.on_event(ev("run_start"))
    view.on_event(ev("node_start", "write", data={}, attempt=1))
    view.on_event(ev("interrupt", data=(Interrupt(value="approve?", id="i1", node="write"),)))
    view.on_event(ev("run_end"))
    assert view.status["write"] == "interrupted"
    assert view.details["write"]["interrupt"] == "approve?"


def test_new_run_resets_to_pending_but_keeps_details(view: GraphView) -> None:
    view.on_event(ev("run_start"))
    view.on_event(ev("node_start", "plan", data=1, attempt=1))
    view.on_event(ev("node_end", "plan", data=2, attempt=1))
    view.on_event(ev("run_end"))
    view.on_event(ev("run_start", run_id="r2"))
    view.flush()
    assert view.status["plan"] == "pending"
    assert view.details["plan"]["output"] == "2"


def test_run_start_keeps_statuses_when_reset_is_off() -> None:
    v = GraphView(RESEARCH, reset_on_run_start=False)
    v.status = {"plan": "done", "search": "pending"}  # a debugger's picture of a checkpoint
    v.on_event(ev("run_start"))
    v.on_event(ev("node_start", "search", data={}, attempt=1))
    v.flush()
    assert v.status == {"plan": "done", "search": "running"}
    v.on_event(ev("node_end", "search", data={}, attempt=1))
    v.on_event(ev("run_end"))
    assert v.status == {"plan": "done", "search": "done"}
    v.reset_on_run_start = True
    v.on_event(ev("run_start", run_id="r2"))
    v.flush()
    assert v.status == dict.fromkeys(NODES, "pending")
    v.close()


def test_details_are_short_strings() -> None:
    huge = {"notes": [f"note {i}" * 50 for i in range(10_000)], "deep": [[[[[1]]]]]}
    text = short_text(huge)
    assert isinstance(text, str) and len(text) <= 300
    assert short_text(None) == ""
    assert short_text("x" * 1000).endswith("\u2026")

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert short_text(Broken()) == "<Broken>"


def test_external_status_is_adopted(view: GraphView) -> None:
    view.status = {"plan": "done"}
    view.on_event(ev("node_start", "search", data={}, attempt=1))
    view.flush()
    assert view.status == {"plan": "done", "search": "running"}


# -- clicks -----------------------------------------------------------------------------------


def front_end_click(view: GraphView, node: str, shift: bool = False) -> None:
    """The custom message the browser sends on a click on a node (after its trait changes)."""
    view._handle_custom_msg({"event": "node_click", "node": node, "shift": shift}, [])


def test_every_node_click_reaches_on_node_click(view: GraphView) -> None:
    clicks: list[tuple[str, bool]] = []
    view.on_node_click(lambda node, shift: clicks.append((node, shift)))
    view.selected = "plan"  # the browser selects, then sends the click
    front_end_click(view, "plan")
    front_end_click(view, "plan")  # the same node again: no trait change, still a click
    front_end_click(view, "write", shift=True)
    front_end_click(view, "__end__")
    assert clicks == [("plan", False), ("plan", False), ("write", True), ("__end__", False)]
    assert view.selected == "plan"  # a click message alone changes no trait
    # other messages and malformed clicks are ignored
    view._handle_custom_msg({"event": "something else", "node": "plan"}, [])
    view._handle_custom_msg({"event": "node_click", "node": ""}, [])
    view._handle_custom_msg({"event": "node_click"}, [])
    view._handle_custom_msg("node_click", [])
    assert len(clicks) == 4


def test_on_node_click_remove_and_failing_callbacks(view: GraphView) -> None:
    seen: list[str] = []

    def boom(node: str, shift: bool) -> None:
        raise RuntimeError("callback bug")

    def record(node: str, shift: bool) -> None:
        seen.append(node)

    view.on_node_click(boom)
    view.on_node_click(record)
    view.on_node_click(record)  # registered once
    front_end_click(view, "plan")  # a failing callback is reported, not raised; others run
    assert seen == ["plan"]
    view.on_node_click(record, remove=True)
    front_end_click(view, "plan")
    assert seen == ["plan"]


def test_click_is_the_python_twin_of_a_browser_click(view: GraphView) -> None:
    clicks: list[tuple[str, bool]] = []
    view.on_node_click(lambda node, shift: clicks.append((node, shift)))
    view.click("plan")
    view.click("plan")
    assert view.selected == "plan" and clicks == [("plan", False), ("plan", False)]
    view.breakpoints = ["a:after"]
    view.click("write", shift=True)  # shift: toggles the breakpoint before the node
    assert view.breakpoints == ["a:after", "write"] and view.selected == "plan"
    view.click("write", shift=True)
    assert view.breakpoints == ["a:after"]
    view.breakpoints = ["write:before"]
    view.click("write", shift=True)
    assert view.breakpoints == []
    view.click("__start__", shift=True)  # START has no breakpoints: it is selected
    assert view.selected == "__start__" and clicks[-1] == ("__start__", True)
    with pytest.raises(ValueError, match="unknown node"):
        view.click("nope")


# -- coalescing -------------------------------------------------------------------------------


def test_burst_is_coalesced_and_final_state_is_right(view: GraphView) -> None:
    sends: list[dict[str, str]] = []
    view.observe(lambda change: sends.append(change["new"]), names="status")
    t0 = time.monotonic()
    view.on_event(ev("run_start"))
    for i in range(10_000):
        node = NODES[i % len(NODES)]
        view.on_event(ev("node_start", node, data={"i": i}, attempt=1))
        view.on_event(ev("node_end", node, data={"i": i}, duration=0.001, attempt=1))
    elapsed = time.monotonic() - t0
    view.on_event(ev("run_end"))
    # about one send per interval (plus the first and the one on run_end; a timer that fires
    # late on a loaded machine can add one or two), never one per event (20,000 here)
    assert view.flush_count <= elapsed / view.flush_interval + 5
    assert len(sends) <= view.flush_count
    assert view.status == dict.fromkeys(NODES, "done")
    last = NODES[9_999 % len(NODES)]
    assert view.details[last]["output"] == "{'i': 9999}"


def test_trailing_change_is_never_left_unsent(view: GraphView) -> None:
    view.on_event(ev("run_start"))  # sends at once (nothing sent for a while)
    assert view.status["plan"] == "pending"
    view.on_event(ev("node_start", "plan", data={}, attempt=1))  # inside the interval: held back
    wait_until(lambda: view.status.get("plan") == "running", timeout=2.0)
    assert view._timer is None


def test_run_end_flushes_at_once(view: GraphView) -> None:
    view.on_event(ev("run_start"))
    view.on_event(ev("node_start", "plan", data={}, attempt=1))
    view.on_event(ev("node_end", "plan", data={}, attempt=1))
    view.on_event(ev("run_end"))
    assert view.status["plan"] == "done"  # no waiting for the timer
    assert view._timer is None


def test_events_from_many_threads() -> None:
    graph = synthetic_graph(64, seed=3)
    v = GraphView(graph)
    names = v.node_names
    v.on_event(ev("run_start"))
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(k: int) -> None:
        try:
            barrier.wait()
            for rep in range(200):
                for name in names[k::8]:
                    v.on_event(ev("node_start", name, data={"rep": rep}, attempt=1))
                    v.on_event(ev("node_end", name, data={"rep": rep}, attempt=1))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    v.on_event(ev("run_end"))
    assert not errors
    assert v.status == dict.fromkeys(names, "done")
    assert all(v.details[n]["output"] == "{'rep': 199}" for n in names)
    time.sleep(3 * v.flush_interval)  # no stray timer sends after the end
    assert v._timer is None
    v.close()


# -- display ----------------------------------------------------------------------------------


def test_repr_is_deterministic(view: GraphView) -> None:
    assert repr(view) == "GraphView(research: 8 nodes, 15 edges)"
    assert (
        repr(GraphView({"name": "one", "nodes": [{"name": "x"}], "edges": []}))
        == "GraphView(one: 1 node, 0 edges)"
    )
    assert repr(GraphView()) == "GraphView(graph: 0 nodes, 0 edges)"


def test_mimebundle_has_text_widget_and_svg(view: GraphView) -> None:
    bundle = view._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert data["text/plain"] == repr(view)
    assert "application/vnd.jupyter.widget-view+json" in data
    ET.fromstring(data["image/svg+xml"])


# -- static SVG -------------------------------------------------------------------------------


def _svg_nodes(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [g.get("data-node") for g in root.iter(f"{SVG_NS}g") if g.get("data-node")]


def test_render_svg_contains_every_node_and_is_valid_xml() -> None:
    svg = render_svg(RESEARCH)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    drawn = _svg_nodes(svg)
    assert sorted(drawn) == sorted([*NODES, "__start__", "__end__"])
    texts = {t.text for t in root.iter(f"{SVG_NS}text")}
    assert {"route", "check: again", "0.7", "0.3", "decide ?"} <= texts
    assert svg == render_svg(RESEARCH)  # deterministic


def test_render_svg_start_end_only_when_touched_and_escapes() -> None:
    graph = {
        "name": "a<b",
        "nodes": [{"name": "x&y"}, {"name": "<z>"}],
        "edges": [{"source": "x&y", "target": "<z>"}],
    }
    svg = render_svg(graph)
    assert sorted(_svg_nodes(svg)) == ["<z>", "x&y"]
    assert render_svg({"name": "empty", "nodes": []}).startswith("<svg")
    ET.fromstring(render_svg({"name": "empty", "nodes": []}))


def test_render_svg_status_colours() -> None:
    svg = render_svg(RESEARCH, status={"plan": "failed"})
    root = ET.fromstring(svg)
    plan = next(g for g in root.iter(f"{SVG_NS}g") if g.get("data-node") == "plan")
    assert plan.find(f"{SVG_NS}rect").get("stroke") == "#d93025"


def test_render_svg_handles_cycles_and_self_loops() -> None:
    graph = {
        "name": "loop",
        "nodes": [{"name": n} for n in "abc"],
        "edges": [
            {"source": "a", "target": "b"},
            {"source": "b", "target": "c"},
            {"source": "c", "target": "a"},
        ],
        "branches": [{"source": "b", "router": "r", "targets": ["b"], "path_map": None}],
    }
    assert sorted(_svg_nodes(render_svg(graph))) == ["a", "b", "c"]


@pytest.mark.parametrize("n", [1000])
def test_render_svg_is_fast_for_big_graphs(n: int) -> None:
    graph = synthetic_graph(n, seed=1)
    t0 = time.perf_counter()
    svg = render_svg(graph)
    elapsed = time.perf_counter() - t0
    assert len(_svg_nodes(svg)) == n + 2
    assert elapsed < 5.0, f"render_svg took {elapsed:.2f} s for {n} nodes"


def test_render_svg_10000_nodes_without_recursion_error() -> None:
    # a 10,000-node chain with a back edge: deep for any recursive layout
    names = [f"n{i}" for i in range(10_000)]
    graph = {
        "name": "chain",
        "nodes": [{"name": n} for n in names],
        "edges": [{"source": a, "target": b} for a, b in itertools.pairwise(names)]
        + [{"source": names[-1], "target": names[0]}],
    }
    assert len(_svg_nodes(render_svg(graph))) == 10_000


def test_graph_size_counts() -> None:
    assert graph_size(RESEARCH) == (8, 15)
    assert graph_size({"nodes": []}) == (0, 0)


# -- with the real engine ---------------------------------------------------------------------


class RunState(TypedDict, total=False):
    q: str
    notes: Annotated[list[str], operator.add]


def test_live_statuses_from_a_real_run() -> None:
    import agentgraph_nb

    StateGraph = getattr(agentgraph_nb, "StateGraph", None)
    if StateGraph is None:
        pytest.skip("engine not available")
    from agentgraph_nb import END, START

    S = RunState

    def plan(s: S) -> dict[str, Any]:
        return {"notes": ["p"]}

    def search(s: S) -> dict[str, Any]:
        return {"notes": ["s"]}

    def route(s: S) -> str:
        return "write" if len(s["notes"]) > 2 else "search"

    def write(s: S) -> dict[str, Any]:
        raise ValueError("no ink")

    g = StateGraph(S, name="research")
    g.add_node("plan", plan)
    g.add_node("search", search)
    g.add_node("write", write)
    g.add_edge(START, "plan")
    g.add_edge("plan", "search")
    g.add_conditional_edges("search", route, ["search", "write"])
    g.add_edge("write", END)
    app = g.compile()
    v = GraphView.from_app(app)
    assert repr(v) == "GraphView(research: 3 nodes, 5 edges)"
    unsubscribe = v.attach(app)
    with pytest.raises(ValueError, match="no ink"):
        app.invoke({"q": "x"})
    assert v.status == {"plan": "done", "search": "done", "write": "failed"}
    assert "no ink" in v.details["write"]["error"]
    assert v.details["search"]["output"] == "{'notes': ['s']}"
    unsubscribe()


def test_show_paints_simulated_routes_as_edge_counts() -> None:
    from agentgraph_nb import START, StateGraph

    g = StateGraph(dict).add_node("pick", lambda s: None).add_node("a", lambda s: None).add_node("b", lambda s: None)
    g.add_edge(START, "pick").add_weighted_edges("pick", {"a": 0.8, "b": 0.2})
    app = g.compile(checkpointer=None)
    routes = app.simulate({}, n=200, seed=1)
    view = app.show(routes=routes)
    assert view.edge_counts["pick->a"] + view.edge_counts["pick->b"] == 200
    assert view.edge_counts["pick->a"] > view.edge_counts["pick->b"]
    assert app.show(routes={"pick->a": 3}).edge_counts == {"pick->a": 3}


# -- which run is shown, pins ---------------------------------------------------------------


def tev(kind: str, node: str = "", *, thread: str | None, run_id: str, **kw: Any) -> Event:
    return Event(kind=kind, run_id=run_id, thread_id=thread, step=1, node=node, **kw)


def run_on(
    v: GraphView, thread: str | None, run_id: str, nodes: list[str], status: str = "completed"
) -> None:
    v.on_event(tev("run_start", thread=thread, run_id=run_id))
    for n in nodes:
        v.on_event(tev("node_start", n, thread=thread, run_id=run_id, data={}, attempt=1))
        v.on_event(tev("node_end", n, thread=thread, run_id=run_id, data={}, attempt=1))
    v.on_event(tev("run_end", thread=thread, run_id=run_id, data={"status": status}))


def test_the_view_says_which_run_it_shows(view: GraphView) -> None:
    assert view.height == "auto" and view.run == {} and view.runs == []
    run_on(view, "A", "r1", ["plan"])
    assert view.run["thread_id"] == "A" and view.run["state"] == "ended"
    assert view.run["label"] == "thread A \u00b7 run ended at step 1"
    run_on(view, None, "0123456789abcdef", ["search"], status="failed")
    assert view.run["label"] == "run 01234567 \u00b7 failed at step 1"
    assert view.status["search"] == "done" and view.status["plan"] == "idle"  # its own picture
    assert [r["key"] for r in view.runs] == ["run:0123456789abcdef", "thread:A"]


def test_a_pinned_view_ignores_other_threads(view: GraphView) -> None:
    run_on(view, "A", "r1", ["plan", "search"])
    view.pin(thread_id="A")
    assert view.pin_thread == "A" and view.run["pinned"] is True
    shown = dict(view.status)
    view.on_event(tev("run_start", thread="B", run_id="r2"))
    view.on_event(tev("node_start", "write", thread="B", run_id="r2", data={}, attempt=1))
    view.flush()
    assert view.status == shown and view.run["thread_id"] == "A"
    assert "thread:B" in [r["key"] for r in view.runs]  # it can be pinned to B from the menu
    view.pin(thread_id="B")  # B's own picture, kept while A was shown
    assert view.status["write"] == "running" and view.run["thread_id"] == "B"
    view.unpin()
    assert view.pin_thread == "" and view.run["thread_id"] == "B"  # the latest run
    view.pin_run = "r1"  # what the menu sets for a run without a thread (none seen here)
    assert view.run["label"] == "run r1 \u00b7 no run yet" and view.status == {}
    with pytest.raises(ValueError, match="exactly one"):
        view.pin()


def test_an_unpinned_view_follows_the_latest_run(view: GraphView) -> None:
    run_on(view, "A", "r1", ["plan"])
    view.on_event(tev("run_start", thread="B", run_id="r2"))
    view.flush()
    assert view.run["thread_id"] == "B" and view.run["state"] == "running"
    assert view.status == dict.fromkeys(NODES, "pending")
    # A's late events update A's picture only
    view.on_event(tev("node_start", "write", thread="A", run_id="r1", data={}, attempt=1))
    view.flush()
    assert view.status["write"] == "pending"
    view.on_event(tev("run_end", thread="B", run_id="r2", data={"status": "interrupted"}))
    assert view.run["label"] == "thread B \u00b7 paused at step 1"


def test_pictures_are_bounded() -> None:
    v = GraphView(RESEARCH)
    for i in range(50):
        run_on(v, f"t{i}", f"r{i}", ["plan"])
    assert len(v._runs.pictures) <= 16 and v.run["thread_id"] == "t49"
    assert len(v.runs) == 8
    v.reset()
    assert v.status == {} and v.run == {} and v.runs == []
    v.close()


def test_find_expand_fit_and_commands(view: GraphView) -> None:
    sent: list[Any] = []
    view.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    view.find("write")
    assert view.selected == "write" and sent[-1] == {"cmd": "find", "node": "write"}
    with pytest.raises(ValueError, match="Did you mean 'write'"):
        view.find("wirte")
    view.fit()
    assert sent[-1] == {"cmd": "fit"}
    view.expand("chain:n0")
    view.expand("chain:n0")
    assert view.expanded == ["chain:n0"]
    view.collapse_all()
    assert view.expanded == []
    commands: list[str] = []
    view.on_command(commands.append)
    view.shortcuts = {"n": "step"}
    view._handle_custom_msg({"event": "command", "command": "step"}, [])
    view._handle_custom_msg({"event": "command", "command": "rm -rf"}, [])  # not bound: ignored
    assert commands == ["step"]
    for name in ("collapse", "expanded", "query", "minimap", "pin_thread", "run", "shortcuts"):
        assert name in view.trait_names(sync=True)
