"""The engine's scenarios under the Ray executor, on a real two-node cluster: each one runs in
this process and with ``executor=RayExecutor(...)`` (sync ``invoke`` and async ``ainvoke``), and
what the user sees must be the same (final state, errors, stream items, events, history), while
the nodes really ran in Ray workers (a ``node_worker`` event per execution, other processes).

Side effects that a test counts go through files (a worker is another process: a closure's list
would fill in the worker's copy).
"""

from __future__ import annotations

import asyncio
import operator
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

pytest.importorskip("ray")

from ray import cloudpickle

from agentgraph_nb import (
    END,
    START,
    CachePolicy,
    Command,
    RetryPolicy,
    Send,
    StateGraph,
    caught_error,
    get_stream_writer,
    interrupt,
)
from agentgraph_nb.checkpoint.memory import MemoryCheckpointer
from agentgraph_nb.checkpoint.sqlite import SqliteCheckpointer

# the node functions below travel to the workers by value (the workers do not import tests/)
cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.timeout(600)


class S(TypedDict, total=False):
    x: int
    log: Annotated[list[str], operator.add]
    total: Annotated[int, operator.add]
    out: str


class Hits:
    """A counter that works across processes: one line per hit in a file."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def hit(self, name: str) -> int:
        with open(self.path, "a") as f:
            f.write(name + "\n")
        return self.count(name)

    def count(self, name: str) -> int:
        try:
            with open(self.path) as f:
                return sum(1 for line in f if line.strip() == name)
        except FileNotFoundError:
            return 0


def log(name: str, delay: float = 0.0, **extra: Any) -> Callable[[Any], Any]:
    def fn(state: Any) -> Any:
        if delay:
            time.sleep(delay)
        return {"log": [name], **extra}

    fn.__name__ = name
    return fn


# -- scenarios: each builds a graph and runs it with run(app, **kw) -> what the user sees ---------------
@dataclass
class Outcome:
    value: Any = None
    error: tuple[str, str] | None = None
    events: list[tuple[str, str]] | None = None


def _chain(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    g = StateGraph(S)
    g.add_sequence([log("a"), log("b"), log("c")]).add_edge(START, "a").add_edge("c", END)
    return g.compile(), lambda app, **kw: app.invoke({"x": 1}, **kw)


def _fanout_merge_order(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    # the slow branch comes first in task order: its write must still merge first
    g = StateGraph(S).add_node("start", log("start")).add_node("slow", log("slow", 0.4, total=1))
    g.add_node("fast", log("fast", 0.0, total=10)).add_node("join", log("join"))
    g.add_edge(START, "start").add_edge("start", "slow").add_edge("start", "fast")
    g.add_edge(["slow", "fast"], "join").add_edge("join", END)
    return g.compile(), lambda app, **kw: app.invoke({}, **kw)


def _send_map_reduce(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    class M(TypedDict, total=False):
        items: list[int]
        squares: Annotated[list[int], operator.add]

    def square(arg: Any) -> Any:
        time.sleep(0.05 * (5 - arg["i"]))  # later items finish first
        return {"squares": [arg["i"] ** 2]}

    g = StateGraph(M).add_node("square", square)
    g.add_conditional_edges(START, lambda s: [Send("square", {"i": i}) for i in s["items"]], ["square"])
    g.add_edge("square", END)
    return g.compile(), lambda app, **kw: app.invoke({"items": [1, 2, 3, 4, 5]}, **kw)


def _conditional_loop(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    def inc(s: Any) -> Any:
        return {"x": s["x"] + 1, "log": [f"inc{s['x']}"]}

    g = StateGraph(S).add_node("inc", inc).add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: END if s["x"] >= 4 else "inc", ["inc", END])
    return g.compile(), lambda app, **kw: app.invoke({"x": 0}, **kw)


def _command_goto(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    def router(s: Any) -> Any:
        return Command(update={"log": ["router"]}, goto="b" if s["x"] > 0 else "a")

    g = StateGraph(S).add_node("router", router, destinations=("a", "b"))
    g.add_node("a", log("a")).add_node("b", log("b")).add_edge(START, "router")
    g.add_edge("a", END).add_edge("b", END)
    return g.compile(), lambda app, **kw: app.invoke({"x": 1}, **kw)


def _retry(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    hits = Hits(tmp / "retry")

    def flaky(s: Any) -> Any:
        if hits.hit("flaky") < 3:
            raise ConnectionError("refused")
        return {"out": "ok"}

    g = StateGraph(S).add_node("flaky", flaky, retry=RetryPolicy(max_attempts=3, initial_interval=0.01, jitter=False))
    g.add_edge(START, "flaky").add_edge("flaky", END)

    def run(app: Any, **kw: Any) -> Any:
        Path(hits.path).unlink(missing_ok=True)
        return app.invoke({}, **kw), hits.count("flaky")

    return g.compile(), run


def _retry_exhausted(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    def broken(s: Any) -> Any:
        raise ConnectionError("still refused")

    g = StateGraph(S).add_node("broken", broken, retry=RetryPolicy(max_attempts=2, initial_interval=0.01))
    g.add_edge(START, "broken").add_edge("broken", END)
    return g.compile(), lambda app, **kw: app.invoke({}, **kw)


def _value_error(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    def bad(s: Any) -> Any:
        raise ValueError(f"bad x={s['x']}")

    g = StateGraph(S).add_node("a", log("a")).add_node("bad", bad).add_edge(START, "a").add_edge("a", "bad")
    return g.compile(), lambda app, **kw: app.invoke({"x": 7}, **kw)


def _timeout(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    g = StateGraph(S).add_node("slow", log("slow", 1.0), timeout=0.2).add_edge(START, "slow").add_edge("slow", END)
    return g.compile(), lambda app, **kw: app.invoke({}, **kw)


def _invalid_update(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    g = StateGraph(S).add_node("a", log("a", out="A")).add_node("b", log("b", out="B"))
    g.add_edge(START, "a").add_edge(START, "b")
    return g.compile(), lambda app, **kw: app.invoke({}, **kw)


def _recursion(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    g = StateGraph(S).add_node("spin", log("spin")).add_edge(START, "spin")
    g.add_conditional_edges("spin", lambda s: "spin" if len(s["log"]) < 100 else END, ["spin", END])
    return g.compile(), lambda app, **kw: app.invoke({}, recursion_limit=5, **kw)


def _interrupt_resume(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    hits = Hits(tmp / "intr")

    def ask(s: Any) -> Any:
        hits.hit("ask")
        first = interrupt("name?")
        second = interrupt("age?")
        return {"out": f"{first}/{second}"}

    g = StateGraph(S).add_node("a", log("a")).add_node("ask", ask).add_node("z", log("z"))
    g.add_edge(START, "a").add_edge("a", "ask").add_edge("ask", "z").add_edge("z", END)

    def run(app: Any, **kw: Any) -> Any:
        Path(hits.path).unlink(missing_ok=True)
        tid = f"t{time.time_ns()}"
        r1 = app.invoke({}, thread_id=tid, **kw)
        r2 = app.invoke(Command(resume="ada"), thread_id=tid, **kw)
        r3 = app.invoke(Command(resume=36), thread_id=tid, **kw)
        vals = [[i.value for i in r.get("__interrupt__", [])] for r in (r1, r2)]
        return vals, r3, hits.count("ask"), app.get_state(tid).next

    return g.compile(checkpointer=MemoryCheckpointer()), run


def _breakpoints(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    g = StateGraph(S)
    g.add_sequence([log("a"), log("b"), log("c")]).add_edge(START, "a").add_edge("c", END)

    def run(app: Any, **kw: Any) -> Any:
        tid = f"t{time.time_ns()}"
        r1 = app.invoke({}, thread_id=tid, interrupt_before=["b"], **kw)
        n1 = app.get_state(tid).next
        r2 = app.invoke(None, thread_id=tid, interrupt_after=["b"], **kw)
        n2 = app.get_state(tid).next
        r3 = app.invoke(None, thread_id=tid, **kw)
        return r1, n1, r2, n2, r3

    return g.compile(checkpointer=MemoryCheckpointer()), run


def _failed_branch_resume(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    hits = Hits(tmp / "branch")
    flag = tmp / "fixed"

    def good(s: Any) -> Any:
        hits.hit("good")
        return {"log": ["good"]}

    def fragile(s: Any) -> Any:
        time.sleep(0.2)  # finishes after good
        hits.hit("fragile")
        if not os.path.exists(str(flag)):
            raise RuntimeError("disk full")
        return {"log": ["fragile"]}

    g = StateGraph(S).add_node("good", good).add_node("fragile", fragile).add_node("end", log("end"))
    g.add_edge(START, "good").add_edge(START, "fragile").add_edge(["good", "fragile"], "end")

    def run(app: Any, **kw: Any) -> Any:
        Path(hits.path).unlink(missing_ok=True)
        flag.unlink(missing_ok=True)
        tid = f"t{time.time_ns()}"
        try:
            app.invoke({}, thread_id=tid, **kw)
            err = None
        except RuntimeError as e:
            err = str(e)
        nxt = app.get_state(tid).next
        flag.touch()
        done = app.invoke(None, thread_id=tid, **kw)
        return err, nxt, done, hits.count("good"), hits.count("fragile")

    return g.compile(checkpointer=SqliteCheckpointer(str(tmp / "branch.db"))), run


def _history_and_fork(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    g = StateGraph(S)
    g.add_sequence([log("a"), log("b"), log("c")]).add_edge(START, "a").add_edge("c", END)

    def run(app: Any, **kw: Any) -> Any:
        tid = f"t{time.time_ns()}"
        app.invoke({"x": 1}, thread_id=tid, **kw)
        hist = list(app.get_state_history(tid))
        after_a = next(h for h in hist if h.values.get("log") == ["a"])
        forked = app.invoke(None, thread_id=tid, checkpoint_id=after_a.config["checkpoint_id"], **kw)
        app.update_state(tid, {"log": ["edited"]})
        return [(h.values, h.next) for h in hist], forked, app.get_state(tid).values

    return g.compile(checkpointer=MemoryCheckpointer()), run


def _stream_modes(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    def talk(s: Any) -> Any:
        w = get_stream_writer()
        w({"progress": 0.5})
        w({"progress": 1.0})
        return {"log": ["talk"]}

    g = StateGraph(S).add_node("a", log("a")).add_node("talk", talk).add_edge(START, "a").add_edge("a", "talk")
    return g.compile(), lambda app, **kw: list(app.stream({}, mode=["updates", "values", "custom"], **kw))


def _events(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    g = StateGraph(S)
    g.add_sequence([log("a"), log("b")]).add_edge(START, "a").add_edge("b", END)

    def run(app: Any, **kw: Any) -> Any:
        seen: list[Any] = []
        app.invoke({}, listeners=[seen.append], **kw)
        return [(e.kind, e.node, e.step, e.task_id) for e in seen if e.kind != "node_worker"]

    return g.compile(), run


def _async_nodes(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    async def fetch(s: Any) -> Any:
        await asyncio.sleep(0.05)
        return {"log": ["fetch"], "total": 2}

    g = StateGraph(S).add_node("fetch", fetch).add_node("b", log("b")).add_edge(START, "fetch").add_edge("fetch", "b")
    return g.compile(), lambda app, **kw: app.invoke({}, **kw)


def _subgraph(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    inner = StateGraph(S, name="team")
    inner.add_sequence([log("research"), log("write")]).add_edge(START, "research").add_edge("write", END)
    g = StateGraph(S).add_node("plan", log("plan")).add_node("team", inner.compile()).add_node("ship", log("ship"))
    g.add_edge(START, "plan").add_edge("plan", "team").add_edge("team", "ship")

    def run(app: Any, **kw: Any) -> Any:
        tid = f"t{time.time_ns()}"
        seen: list[Any] = []
        out = app.invoke({}, thread_id=tid, listeners=[seen.append], **kw)
        ends = [(e.namespace, e.node) for e in seen if e.kind == "node_end"]
        return out, ends, app.get_state(tid, namespace="team").values

    return g.compile(checkpointer=MemoryCheckpointer()), run


def _subgraph_interrupt(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    def approve(s: Any) -> Any:
        return {"out": interrupt("approve?")}

    inner = StateGraph(S, name="desk").add_node("draft", log("draft")).add_node("approve", approve)
    inner.add_edge(START, "draft").add_edge("draft", "approve")
    g = StateGraph(S).add_node("desk", inner.compile()).add_node("pub", log("pub"))
    g.add_edge(START, "desk").add_edge("desk", "pub")

    def run(app: Any, **kw: Any) -> Any:
        tid = f"t{time.time_ns()}"
        r1 = app.invoke({}, thread_id=tid, **kw)
        r2 = app.invoke(Command(resume="yes"), thread_id=tid, **kw)
        return [i.value for i in r1["__interrupt__"]], r2

    return g.compile(checkpointer=MemoryCheckpointer()), run


def _foreach(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    class F(TypedDict, total=False):
        items: list[int]
        results: list[int]

    def double(i: int) -> int:
        return i * 2

    g = StateGraph(F).add_foreach("each", double, over="items", into="results", max_concurrency=2)
    g.add_edge(START, "each").add_edge("each", END)
    return g.compile(), lambda app, **kw: app.invoke({"items": [3, 1, 2]}, **kw)


def _while(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    def body(s: Any) -> Any:
        return {"x": s["x"] * 2}

    g = StateGraph(S).add_while("grow", body, condition=lambda s: s["x"] < 50, max_iterations=20)
    g.add_edge(START, "grow").add_edge("grow", END)
    return g.compile(), lambda app, **kw: app.invoke({"x": 1}, **kw)


def _error_edge(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    def fetch(s: Any) -> Any:
        raise ConnectionError("host down")

    def fallback(s: Any) -> Any:
        err = caught_error()
        return {"out": f"fallback after {err.node}: {err.error_type}" if err else "no error"}

    g = StateGraph(S).add_node("fetch", fetch).add_node("fallback", fallback)
    g.add_edge(START, "fetch").add_edge("fetch", END).add_error_edge("fetch", "fallback", on=(ConnectionError,))
    g.add_edge("fallback", END)
    return g.compile(), lambda app, **kw: app.invoke({}, **kw)


def _saga(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    hits = Hits(tmp / "saga")

    def refund(s: Any) -> Any:
        hits.hit("refund")

    def ship(s: Any) -> Any:
        raise RuntimeError("no truck")

    g = StateGraph(S).add_node("charge", log("charge"), compensate=refund).add_node("ship", ship)
    g.add_edge(START, "charge").add_edge("charge", "ship")

    def run(app: Any, **kw: Any) -> Any:
        Path(hits.path).unlink(missing_ok=True)
        try:
            app.invoke({}, **kw)
        except Exception as e:
            return type(e).__name__, str(e).splitlines()[0], hits.count("refund")
        return None

    return g.compile(), run


def _cache(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    hits = Hits(tmp / "cache")

    def rate(s: Any) -> Any:
        hits.hit("rate")
        return {"total": s["x"] * 3}

    g = StateGraph(S).add_node("rate", rate, cache=CachePolicy(ttl=60)).add_edge(START, "rate")

    def run(app: Any, **kw: Any) -> Any:
        Path(hits.path).unlink(missing_ok=True)
        return app.invoke({"x": 2}, **kw), app.invoke({"x": 2}, **kw), hits.count("rate")

    return g.compile(cache="memory"), run


def _pydantic_state(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    import pydantic

    class P(pydantic.BaseModel):
        name: str = ""
        n: int = 0

    def greet(s: P) -> Any:
        return {"name": s.name.upper(), "n": s.n + 1}

    g = StateGraph(P).add_node("greet", greet).add_edge(START, "greet").add_edge("greet", END)
    return g.compile(), lambda app, **kw: app.invoke({"name": "ada"}, **kw)


def _large_value(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    class B(TypedDict, total=False):
        blob: bytes
        sizes: Annotated[list[int], operator.add]

    def measure(s: Any) -> Any:
        return {"sizes": [len(s["blob"]), s["blob"][:3].count(b"a")]}

    g = StateGraph(B).add_node("m1", measure).add_node("m2", measure)
    g.add_edge(START, "m1").add_edge(START, "m2")
    return g.compile(), lambda app, **kw: app.invoke({"blob": b"a" * (3 << 20)}, **kw)


def _step_timeout(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    g = StateGraph(S).add_node("a", log("a", 0.01)).add_node("slow", log("slow", 1.5))
    g.add_edge(START, "a").add_edge(START, "slow")
    return g.compile(step_timeout=0.5), lambda app, **kw: app.invoke({}, **kw)


def _durability_exit(tmp: Path) -> tuple[Any, Callable[..., Any]]:
    g = StateGraph(S)
    g.add_sequence([log("a"), log("b")]).add_edge(START, "a").add_edge("b", END)

    def run(app: Any, **kw: Any) -> Any:
        tid = f"t{time.time_ns()}"
        out = app.invoke({}, thread_id=tid, durability="exit", **kw)
        return out, [h.values for h in app.get_state_history(tid)]

    return g.compile(checkpointer=MemoryCheckpointer()), run


SCENARIOS = {f.__name__[1:]: f for f in [
    _chain, _fanout_merge_order, _send_map_reduce, _conditional_loop, _command_goto, _retry, _retry_exhausted,
    _value_error, _timeout, _invalid_update, _recursion, _interrupt_resume, _breakpoints, _failed_branch_resume,
    _history_and_fork, _stream_modes, _events, _async_nodes, _subgraph, _subgraph_interrupt, _foreach, _while,
    _error_edge, _saga, _cache, _pydantic_state, _large_value, _step_timeout, _durability_exit,
]}
# scenarios whose graph has no node that runs on a worker (loops run on the driver: their items do not)
_DRIVER_ONLY = {"foreach", "while"}


def _outcome(fn: Callable[[], Any], seen: list[Any]) -> Outcome:
    try:
        value = fn()
        error = None
    except Exception as e:  # the error is part of what the user sees
        value, error = None, (type(e).__name__, str(e).splitlines()[0])
    return Outcome(_scrub(value), error)


def _scrub(v: Any) -> Any:
    """Drop what differs between any two runs (checkpoint ids in configs, interrupt ids)."""
    if isinstance(v, dict):
        return {k: _scrub(x) for k, x in v.items() if k != "__interrupt__"} | (
            {"__interrupt__": [i.value for i in v["__interrupt__"]]} if "__interrupt__" in v else {})
    if isinstance(v, (list, tuple)):
        return type(v)(_scrub(x) for x in v) if not hasattr(v, "_fields") else tuple(_scrub(x) for x in v)
    return v


def _run(name: str, tmp: Path, mode: str, executor: Any) -> tuple[Outcome, list[Any]]:
    app, run = SCENARIOS[name](tmp)
    seen: list[Any] = []
    app.listen(seen.append)
    kw = {} if executor is None else {"executor": executor}
    target = app if mode == "sync" else _Async(app)
    return _outcome(lambda: run(target, **kw), seen), seen


class _Async:
    """The app with ``invoke``/``stream`` going through ``ainvoke``/``astream`` (each on a fresh loop)."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)

    def invoke(self, *a: Any, **kw: Any) -> Any:
        return asyncio.run(self._app.ainvoke(*a, **kw))

    def stream(self, *a: Any, **kw: Any) -> Any:
        async def collect() -> list[Any]:
            return [x async for x in self._app.astream(*a, **kw)]

        return asyncio.run(collect())


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_same_under_ray(name: str, mode: str, ray_executor: Any, tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    (tmp_path / "ray").mkdir()
    local, _ = _run(name, tmp_path / "local", mode, None)
    before = ray_executor.tasks
    remote, seen = _run(name, tmp_path / "ray", mode, ray_executor)
    assert remote == local
    placed = [e for e in seen if e.kind == "node_worker"]
    if name in _DRIVER_ONLY:
        return
    if name in ("timeout", "step_timeout"):
        # the engine gave up on the step before its tasks came back (on a loaded machine even the fast
        # branch's first task, which may wait for a worker process to start, can miss the 0.5 s limit)
        assert ray_executor.tasks > before
        return
    assert ray_executor.tasks > before, "no node ran as a Ray task"
    assert placed, "no node_worker event"
    assert all(e.data["pid"] != os.getpid() for e in placed)
    # every node execution that ended after running remotely has its node_worker event first
    ids = {(e.run_id, e.task_id, e.attempt) for e in placed}
    assert len(ids) == len(placed)


def test_async_ainvoke_awaits_ray_tasks_without_blocking_the_loop(ray_executor: Any) -> None:
    g = StateGraph(S).add_node("a", log("a", 0.5)).add_node("b", log("b", 0.5))
    g.add_edge(START, "a").add_edge(START, "b")
    app = g.compile()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    async def main() -> Any:
        t = asyncio.create_task(ticker())
        out = await app.ainvoke({}, executor=ray_executor)
        t.cancel()
        return out

    out = asyncio.run(main())
    assert sorted(out["log"]) == ["a", "b"]
    assert ticks >= 10  # the loop ran on while both nodes ran on the cluster (>= 0.5 s)
