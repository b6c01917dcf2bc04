"""Node caching: CachePolicy per node, compile(cache=...) stores (memory, a real SQLite file shared
between processes, a real redis-server), hits as events and metrics, TTLs, clear_cache, and the
typed errors of bad keys and bad cache URLs."""

from __future__ import annotations

import asyncio
import logging
import operator
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

import pytest

from agentgraph_nb import (
    END,
    START,
    CacheError,
    CacheKeyError,
    CachePolicy,
    Command,
    GraphValidationError,
    Send,
    StateGraph,
)
from agentgraph_nb.cache import MemoryCache, open_cache


class S(TypedDict, total=False):
    x: int
    y: int
    path: Annotated[list[str], operator.add]
    blob: Any


def _graph(fn: Any, **opts: Any) -> StateGraph:
    g = StateGraph(S, name="cached")
    g.add_node("f", fn, **opts)
    g.add_edge(START, "f")
    g.add_edge("f", END)
    return g


class Counter:
    """A node that counts its runs (so a test sees whether a hit skipped it)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, s: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(s["x"])
        return {"y": s["x"] * 10}


def test_a_hit_skips_the_node_and_applies_its_saved_update() -> None:
    f = Counter()
    app = _graph(f, cache=CachePolicy()).compile()
    assert app.invoke({"x": 1}) == {"x": 1, "y": 10, "path": []}
    assert app.invoke({"x": 1}) == {"x": 1, "y": 10, "path": []}
    assert app.invoke({"x": 2})["y"] == 20
    assert f.calls == [1, 2]
    st = app.metrics.node("f")
    assert (st.cache_hits, st.cache_misses, st.count) == (1, 2, 2)
    row = app.metrics.to_pandas().loc["f"]
    assert (row["cache_hits"], row["cache_misses"]) == (1, 2)


def test_a_hit_is_an_event_and_streams_like_an_update() -> None:
    f = Counter()
    app = _graph(f, cache=CachePolicy()).compile()
    app.invoke({"x": 3})
    events = list(app.stream({"x": 3}, mode="events"))
    kinds = [e.kind for e in events if e.node == "f"]
    assert kinds == ["cache_hit"]  # no node_start/node_end: the node did not run
    hit = next(e for e in events if e.kind == "cache_hit")
    assert hit.data == {"y": 30} and hit.step == 1 and hit.task_id == "1:0"
    assert list(app.stream({"x": 3}, mode="updates")) == [{"f": {"y": 30}}]
    assert f.calls == [3]


def test_langgraph_name_cache_policy_and_true_work_and_both_is_an_error() -> None:
    f = Counter()
    app = _graph(f, cache_policy=CachePolicy()).compile()
    app.invoke({"x": 1})
    app.invoke({"x": 1})
    assert f.calls == [1]
    g = _graph(Counter(), cache=True)
    assert g.nodes["f"].cache_policy == CachePolicy()
    with pytest.raises(GraphValidationError, match="'f'.*not both"):
        _graph(Counter(), cache=CachePolicy(), cache_policy=CachePolicy())
    with pytest.raises(GraphValidationError, match="node 'f': cache= takes a CachePolicy"):
        _graph(Counter(), cache=60)
    with pytest.raises(ValueError, match="ttl must be a positive number"):
        CachePolicy(ttl=0)


def test_command_goto_is_replayed_from_the_cache() -> None:
    runs: list[str] = []

    def route(s: dict[str, Any]) -> Command[Literal["a", "b"]]:
        runs.append("route")
        return Command(update={"path": ["route"]}, goto="a" if s["x"] > 0 else "b")

    g = StateGraph(S, name="routed")
    g.add_node("route", route, cache=CachePolicy())
    g.add_node("a", lambda s: {"path": ["a"]})
    g.add_node("b", lambda s: {"path": ["b"]})
    g.add_edge(START, "route")
    for db in ("memory", None):
        app = g.compile(cache=db)
        runs.clear()
        assert app.invoke({"x": 1})["path"] == ["route", "a"]
        assert app.invoke({"x": 1})["path"] == ["route", "a"]
        assert app.invoke({"x": -1})["path"] == ["route", "b"]
        assert runs == ["route", "route"]


def test_command_goto_with_send_survives_a_file_cache(tmp_path: Path) -> None:
    runs: list[int] = []

    def fan(s: dict[str, Any]) -> Command[Any]:
        runs.append(s["x"])
        return Command(goto=[Send("leaf", {"x": i}) for i in range(s["x"])])

    g = StateGraph(S, name="fan")
    g.add_node("fan", fan, cache=CachePolicy(), destinations=["leaf"])
    g.add_node("leaf", lambda s: {"path": [f"leaf{s['x']}"]}, cache=CachePolicy())
    g.add_edge(START, "fan")
    app = g.compile(cache=f"sqlite:///{tmp_path}/c.db")
    first = app.invoke({"x": 3})
    second = app.invoke({"x": 3})
    assert first == second and first["path"] == ["leaf0", "leaf1", "leaf2"]
    assert runs == [3]
    assert app.metrics.node("leaf").cache_hits == 3  # the Send payloads are keys too


def test_ttl_expires() -> None:
    f = Counter()
    app = _graph(f, cache=CachePolicy(ttl=0.2)).compile()
    app.invoke({"x": 1})
    app.invoke({"x": 1})
    assert f.calls == [1]
    time.sleep(0.3)
    app.invoke({"x": 1})
    assert f.calls == [1, 1]


def test_key_func_chooses_what_counts_as_the_same_input() -> None:
    f = Counter()
    app = _graph(f, cache=CachePolicy(key_func=lambda s: s["x"] % 2)).compile()
    assert [app.invoke({"x": x})["y"] for x in (1, 3, 2)] == [10, 10, 20]  # 3 hits 1's entry
    assert f.calls == [1, 2]


def test_a_key_func_that_raises_is_a_typed_error_naming_the_node() -> None:
    f = Counter()
    app = _graph(f, cache=CachePolicy(key_func=lambda s: s["missing"])).compile()
    with pytest.raises(CacheKeyError, match=r"node 'f': CachePolicy.key_func raised KeyError") as ei:
        app.invoke({"x": 1})
    assert ei.value.node == "f" and isinstance(ei.value.__cause__, KeyError)
    assert f.calls == []


def test_an_unpackable_key_is_a_typed_error_naming_the_node() -> None:
    app = _graph(Counter(), cache=CachePolicy(key_func=lambda s: object())).compile()
    with pytest.raises(CacheKeyError, match="node 'f': cannot make a cache key from the key its CachePolicy.key_func"):
        app.invoke({"x": 1})


def test_an_unpackable_input_asks_for_a_key_func() -> None:
    class Opaque:
        pass

    app = _graph(Counter(), cache=CachePolicy()).compile()
    with pytest.raises(CacheKeyError, match=r"node 'f': cannot make a cache key from its input.*key_func") as ei:
        app.invoke({"x": 1, "blob": Opaque()})
    assert ei.value.node == "f"


def test_a_result_the_file_cache_cannot_store_runs_uncached_with_a_warning(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    class Opaque:
        pass

    calls: list[int] = []

    def f(s: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        return {"blob": Opaque()}

    app = _graph(f, cache=CachePolicy()).compile(cache=f"sqlite:///{tmp_path}/c.db")
    with caplog.at_level(logging.WARNING, logger="agentgraph_nb"):
        out = app.invoke({"x": 1})
        out2 = app.invoke({"x": 1})
    assert isinstance(out["blob"], Opaque) and isinstance(out2["blob"], Opaque)
    assert calls == [1, 1]
    assert "node 'f': cache store failed, running uncached" in caplog.text


def test_editing_the_function_starts_afresh() -> None:
    store = MemoryCache()
    calls: list[str] = []

    def f(s: dict[str, Any]) -> dict[str, Any]:
        calls.append("v1")
        return {"y": 1}

    _graph(f, cache=CachePolicy()).compile(cache=store).invoke({"x": 1})

    def f(s: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-redef]  # a cell run again, edited
        calls.append("v2")
        return {"y": 2}

    app = _graph(f, cache=CachePolicy()).compile(cache=store)
    assert app.invoke({"x": 1})["y"] == 2
    assert app.invoke({"x": 1})["y"] == 2
    assert calls == ["v1", "v2"]


def test_clear_cache_by_node_and_all() -> None:
    a, b = Counter(), Counter()
    g = StateGraph(S, name="two")
    g.add_node("a", a, cache=CachePolicy())
    g.add_node("b", lambda s: (b(s), {"x": s["x"]})[1], cache=CachePolicy())
    g.add_node("plain", lambda s: None)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "plain")
    app = g.compile()
    app.invoke({"x": 1})
    assert app.clear_cache("a") == 1
    app.invoke({"x": 1})
    assert (a.calls, b.calls) == ([1, 1], [1])
    assert app.clear_cache() == 2
    app.invoke({"x": 1})
    assert (a.calls, b.calls) == ([1, 1, 1], [1, 1])
    with pytest.raises(GraphValidationError, match="node 'plain' of graph 'two' is not cached"):
        app.clear_cache(["plain"])
    with pytest.raises(GraphValidationError, match="Did you mean 'a'"):
        app.clear_cache("aa")


def test_unknown_cache_urls_and_objects_are_typed_errors() -> None:
    g = _graph(Counter(), cache=CachePolicy())
    with pytest.raises(CacheError, match="unknown cache 'mongodb'"):
        g.compile(cache="mongodb://x")
    with pytest.raises(CacheError, match="got int"):
        g.compile(cache=5)
    with pytest.raises(CacheError, match="needs a file"):
        open_cache("sqlite:///:memory:")


def test_cache_false_turns_caching_off_and_no_policy_means_no_store() -> None:
    f = Counter()
    app = _graph(f, cache=CachePolicy()).compile(cache=False)
    app.invoke({"x": 1})
    app.invoke({"x": 1})
    assert f.calls == [1, 1] and app.cache is None
    assert _graph(Counter()).compile().cache is None
    assert app.clear_cache() == 0


def test_async_runs_and_parallel_branches_hit() -> None:
    calls: list[str] = []

    async def slow(s: dict[str, Any]) -> dict[str, Any]:
        calls.append("slow")
        await asyncio.sleep(0)
        return {"path": ["slow"]}

    def quick(s: dict[str, Any]) -> dict[str, Any]:
        calls.append("quick")
        return {"path": ["quick"]}

    g = StateGraph(S, name="par")
    g.add_node("slow", slow, cache=CachePolicy())
    g.add_node("quick", quick, cache=CachePolicy())
    g.add_edge(START, "slow")
    g.add_edge(START, "quick")
    app = g.compile()
    first = asyncio.run(app.ainvoke({"x": 1}))
    second = asyncio.run(app.ainvoke({"x": 1}))
    assert first == second and first["path"] == ["slow", "quick"]
    assert sorted(calls) == ["quick", "slow"]

    # a lone async node in the loop's inline path
    g2 = _graph(slow, cache=CachePolicy())
    app2 = g2.compile()
    asyncio.run(app2.ainvoke({"x": 1}))
    asyncio.run(app2.ainvoke({"x": 1}))
    assert calls.count("slow") == 2


def test_a_failed_node_is_not_cached() -> None:
    calls: list[int] = []

    def flaky(s: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first time fails")
        return {"y": 1}

    app = _graph(flaky, cache=CachePolicy()).compile()
    with pytest.raises(ValueError):
        app.invoke({"x": 1})
    assert app.invoke({"x": 1})["y"] == 1
    assert app.invoke({"x": 1})["y"] == 1
    assert calls == [1, 1]


_CHILD = """
import sys
from typing import TypedDict
from agentgraph_nb import StateGraph, START, CachePolicy

class S(TypedDict, total=False):
    x: int
    y: int

def f(s):
    with open(sys.argv[2], "a") as fh:
        fh.write("ran\\n")
    return {"y": s["x"] + 1}

g = StateGraph(S, name="shared")
g.add_node("f", f, cache=CachePolicy())
g.add_edge(START, "f")
print(g.compile(cache="sqlite:///" + sys.argv[1]).invoke({"x": 41})["y"])
"""


def test_the_sqlite_cache_is_shared_between_processes(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(_CHILD))
    db, log = tmp_path / "c.db", tmp_path / "ran.log"
    root = str(Path(__file__).resolve().parents[1])
    outs = [subprocess.run([sys.executable, str(script), str(db), str(log)], capture_output=True, text=True,
                           env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"}, check=True).stdout.strip()
            for _ in range(2)]
    assert outs == ["42", "42"]
    assert log.read_text().splitlines() == ["ran"]  # the second process hit the first one's entry


def test_the_sqlite_cache_expires_and_clears(tmp_path: Path) -> None:
    f = Counter()
    url = f"sqlite:///{tmp_path}/c.db"
    app = _graph(f, cache=CachePolicy(ttl=0.3)).compile(cache=url)
    app.invoke({"x": 1})
    app.invoke({"x": 1})
    assert f.calls == [1]
    time.sleep(0.4)
    app.invoke({"x": 1})
    assert f.calls == [1, 1]
    assert app.clear_cache() == 1
    app.close()  # closes the connection; it reopens on the next use
    app.invoke({"x": 1})
    assert f.calls == [1, 1, 1]


def test_the_redis_cache_on_a_real_server(redis_server: Any) -> None:
    f = Counter()
    url = redis_server.url
    g = _graph(f, cache=CachePolicy(ttl=0.5))
    one, two = g.compile(cache=url), g.compile(cache=url)
    one.clear_cache()
    one.invoke({"x": 7})
    assert two.invoke({"x": 7})["y"] == 70  # another app (another process would do the same)
    assert asyncio.run(two.ainvoke({"x": 7}))["y"] == 70  # the async path (worker thread)
    assert f.calls == [7]
    time.sleep(0.6)
    two.invoke({"x": 7})
    assert f.calls == [7, 7]
    assert two.clear_cache("f") == 1
    one.close()
    two.close()


def test_an_unreachable_redis_cache_runs_the_node_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("redis")
    from tests._servers import _free_port

    f = Counter()
    app = _graph(f, cache=CachePolicy()).compile(cache=f"redis://127.0.0.1:{_free_port()}/0")
    with caplog.at_level(logging.WARNING, logger="agentgraph_nb"):
        assert app.invoke({"x": 2})["y"] == 20
    assert f.calls == [2]
    assert "cache lookup failed" in caplog.text


# -- the cell language: [cache=...] and the to_dsl/to_json round trip ----------------------------------
def test_the_cell_language_caches_and_round_trips() -> None:
    from agentgraph_nb.notebook._dsl import build, parse

    calls: list[int] = []

    def f(s: dict[str, Any]) -> dict[str, Any]:
        calls.append(s["x"])
        return {"y": s["x"]}

    text = "START -> f -> g -> END\nf [retry=2, cache=60]\ng [cache=true]\n"
    ns = {"f": f, "g": lambda s: None}
    app = build(parse(text), name="cell", schema=S, namespace=ns, builder_cls=StateGraph).compile()
    assert app.builder.nodes["f"].cache_policy == CachePolicy(ttl=60)
    assert app.builder.nodes["g"].cache_policy == CachePolicy()
    app.invoke({"x": 1})
    app.invoke({"x": 1})
    assert calls == [1]
    dsl = app.to_dsl()
    assert "f [retry=2, cache=60]" in dsl and "g [cache=true]" in dsl
    again = build(parse(dsl), name="cell", schema=S, namespace=ns, builder_cls=StateGraph).compile()
    assert again.to_dsl() == dsl
    rebuilt = StateGraph.from_json(app.to_json(), schema=S, namespace=ns)
    assert rebuilt.nodes["f"].cache_policy == CachePolicy(ttl=60)


def test_a_key_func_is_named_in_exports_as_not_expressible() -> None:
    def by_x(s: dict[str, Any]) -> Any:
        return s["x"]

    app = _graph(Counter(), cache=CachePolicy(ttl=5, key_func=by_x)).compile()
    node = app.to_json()["nodes"][0]
    assert node["cache"] == {"ttl": 5, "key_func": by_x.__qualname__}
    assert "f = Counter [cache=5]  # set in Python, not expressible here: cache key_func=" in app.to_dsl()


@pytest.mark.parametrize("bad", ["cache=0", "cache=-1", "cache=yes"])
def test_bad_cache_options_in_a_cell_are_errors_with_the_line(bad: str) -> None:
    from agentgraph_nb.notebook._dsl import DslSyntaxError, parse

    with pytest.raises(DslSyntaxError, match="cache is true, false or a TTL in seconds > 0"):
        parse(f"START -> f\nf [{bad}]\n")


# -- the notebook views --------------------------------------------------------------------------------
def test_the_timeline_marks_a_cache_hit_with_a_star() -> None:
    pytest.importorskip("plotly")
    from agentgraph_nb.ui.timeline import MARK_TRACE, STATUSES

    f = Counter()
    app = _graph(f, cache=CachePolicy()).compile(checkpointer=None)
    app.record()
    app.invoke({"x": 1})
    app.invoke({"x": 1})
    tl = app.timeline()
    try:
        tl.refresh()
        cached = tl.data[list(STATUSES).index("cached")]
        assert list(cached.text) == ["f"] and float(cached.x[0]) < 1e-6  # no width: the node did not run
        assert "cache hit" in cached.hovertext[0]
        assert list(tl.data[MARK_TRACE].marker.symbol) == ["star"]
        assert repr(tl).endswith("1 from cache)")
        assert f.calls == [1]
    finally:
        tl.close()


def test_the_events_frame_has_the_hit() -> None:
    pytest.importorskip("pandas")
    app = _graph(Counter(), cache=CachePolicy()).compile(checkpointer=None)
    app.record()
    app.invoke({"x": 1})
    app.invoke({"x": 1})
    df = app.events()
    assert list(df[df.node == "f"].kind) == ["node_start", "node_end", "cache_hit"]


def test_the_dashboard_counts_hits_and_misses_per_node() -> None:
    pytest.importorskip("plotly")
    app = _graph(Counter(), cache=CachePolicy()).compile(checkpointer=None)
    for x in (1, 1, 1, 2):
        app.invoke({"x": x})
    dash = app.dashboard()
    try:
        dash.refresh()
        assert "cache 2 hits, 2 misses (f 2/4)" in dash._header.value
        assert "cache 2 hits" in dash._static_html()
    finally:
        dash.close()


def test_the_graphview_shows_a_hit_as_cached() -> None:
    pytest.importorskip("anywidget")
    from agentgraph_nb.export.svg import STATUS_COLORS
    from agentgraph_nb.ui.graphview import STATUSES, GraphView

    app = _graph(Counter(), cache=CachePolicy()).compile(checkpointer=None)
    view = GraphView.from_app(app)
    try:
        view.attach(app)
        app.invoke({"x": 1})
        assert view.status["f"] == "done"
        app.invoke({"x": 1})
        assert view.status["f"] == "cached"
        assert view.details["f"]["cached"].startswith("yes") and view.details["f"]["output"] == "{'y': 10}"
        assert "cached" in STATUSES and "cached" in STATUS_COLORS
    finally:
        view.close()
    bundle = (Path(__file__).resolve().parents[1] / "agentgraph_nb" / "static" / "graphview.js").read_text()
    assert '"cached"' in bundle  # the front end knows the status (rebuilt bundle)


def test_a_node_that_asked_a_human_is_not_cached() -> None:
    from agentgraph_nb import interrupt

    def ask(s: dict[str, Any]) -> dict[str, Any]:
        return {"y": interrupt("how many?")}

    app = _graph(ask, cache=CachePolicy()).compile()
    app.invoke({"x": 1}, thread_id="t1")
    assert app.invoke(Command(resume=5), thread_id="t1")["y"] == 5
    paused = app.invoke({"x": 1}, thread_id="t2")  # the same input asks again, not the cached 5
    assert "__interrupt__" in paused and app.metrics.node("f").cache_hits == 0
