"""Two writers on one thread: optimistic concurrency on the thread's newest checkpoint.

A run (or ``update_state``) remembers which checkpoint was the thread's newest when it loaded the
thread and after each of its writes; a write finding another newest is a
``CheckpointConflictError`` and stores nothing, so the thread never forks silently. Real stores,
real processes, real concurrent runs: nothing here is mocked.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

import agentgraph_nb
from agentgraph_nb import END, START, CheckpointError, StateGraph
from agentgraph_nb.checkpoint import (
    BaseCheckpointer,
    CheckpointRecord,
    MemoryCheckpointer,
    new_checkpoint_id,
)
from agentgraph_nb.checkpoint.sqlite import SqliteCheckpointer

Conflict: Any = getattr(agentgraph_nb, "CheckpointConflictError", None)

STEPS = 8


class S(TypedDict, total=False):
    i: int
    who: str


def counter(sleep: float = 0.01) -> StateGraph:
    """``inc`` runs ``STEPS`` times (one checkpoint per step), sleeping so that runs overlap."""

    async def inc(s: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(sleep)
        return {"i": s["i"] + 1}

    g = StateGraph(S, name="counter").add_node("inc", inc).add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: "inc" if s["i"] < STEPS else END, ["inc", END])
    return g


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    s = MemoryCheckpointer() if request.param == "memory" else SqliteCheckpointer(tmp_path / "runs.db")
    yield s
    s.close()


def chain_of(app: Any, thread: str) -> list[str]:
    """Checkpoint ids from the thread's newest back to its first, along the parent links."""
    by_id = {s.checkpoint_id: s for s in app.get_state_history(thread)}
    out: list[str] = []
    cur = app.get_state(thread).checkpoint_id
    while cur is not None:
        out.append(cur)
        cur = by_id[cur].parent_id
    return out


def ids_in_store(app: Any, thread: str) -> set[str]:
    return {s.checkpoint_id for s in app.get_state_history(thread)}


def check_outcome(app: Any, thread: str, results: list[Any], saved: list[list[str]], conflict: Any = None) -> None:
    """Exactly one run won, the other got a conflict naming the thread and checkpoints; the
    thread's state is the winner's, with every checkpoint of the winner on its chain."""
    kinds = ["ok" if not isinstance(r, BaseException) else
             "conflict" if type(r).__name__ in ("CheckpointConflictError", "_Remote") else repr(r) for r in results]
    assert sorted(kinds) == ["conflict", "ok"], results
    win = kinds.index("ok")
    err = results[1 - win]
    assert isinstance(err, conflict or Conflict) and isinstance(err, CheckpointError)
    assert err.thread_id == thread and thread in str(err)
    assert err.actual is not None and err.actual != err.expected and err.actual in str(err)
    stored = ids_in_store(app, thread)
    assert err.actual in stored
    assert err.checkpoint_id not in stored  # the rejected write stored nothing
    if err.expected is not None:  # the loser's last checkpoint before the conflict stays valid
        assert err.expected in stored and err.expected in str(err)
        assert app.get_state(thread, err.expected).checkpoint_id == err.expected
    state = app.get_state(thread)
    assert state.values == results[win] and state.values["i"] == STEPS and state.next == ()
    chain = chain_of(app, thread)
    assert set(saved[win]) <= set(chain), "the winner's checkpoints are all on the thread's chain"
    steps = [app.get_state(thread, c).step for c in chain]
    assert steps == list(range(len(chain) - 1, -1, -1))


# -- two processes, one SQLite file -----------------------------------------------------------
_RACER = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    from typing import TypedDict
    from agentgraph_nb import END, START, StateGraph
    db, name, ready, go, mode, steps = sys.argv[1:7]
    class S(TypedDict, total=False):
        i: int
    def inc(s):
        time.sleep(0.05)  # 8 steps: both runs overlap unless one starts 0.4 s late
        return {"i": s["i"] + 1}
    g = StateGraph(S).add_node("inc", inc).add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: "inc" if s["i"] < int(steps) else END, ["inc", END])
    app = g.compile(checkpointer=f"sqlite:///{db}")
    saved = []
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.001)
    try:
        out = app.invoke({"i": 0}, thread_id="t", durability=mode,
                         listeners=[lambda e: e.kind == "checkpoint" and saved.append(e.data)])
        print(json.dumps({"kind": "ok", "values": out, "saved": saved}))
    except Exception as e:
        print(json.dumps({"kind": type(e).__name__, "msg": str(e), "saved": saved,
                          "thread_id": getattr(e, "thread_id", None), "expected": getattr(e, "expected", None),
                          "actual": getattr(e, "actual", None), "checkpoint_id": getattr(e, "checkpoint_id", None)}))
    """
)


class _Remote(CheckpointError):
    """A conflict reported by a child process (same fields as CheckpointConflictError)."""

    def __init__(self, d: dict[str, Any]) -> None:
        super().__init__(d["msg"])
        self.thread_id, self.expected, self.actual = d["thread_id"], d["expected"], d["actual"]
        self.checkpoint_id = d["checkpoint_id"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_two_processes_on_one_sqlite_thread(tmp_path: Path, durability: str) -> None:
    db = tmp_path / "shared.db"
    SqliteCheckpointer(db).close()  # both open an existing file
    go = tmp_path / "go"
    procs = []
    for name in ("p", "q"):
        ready = tmp_path / f"ready-{name}"
        procs.append((ready, subprocess.Popen(
            [sys.executable, "-c", _RACER, str(db), name, str(ready), str(go), durability, str(STEPS)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )))
    deadline = time.monotonic() + 60
    while not all(r.exists() for r, _ in procs) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # both start the same thread at the same moment
    outs = []
    for _, p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    results: list[Any] = []
    for o in outs:
        if o["kind"] == "ok":
            results.append(o["values"])
        elif o["kind"] == "CheckpointConflictError":
            results.append(_Remote(o))
        else:
            results.append(RuntimeError(o))
    with SqliteCheckpointer(db) as s:
        # the loser's error crossed the process boundary as JSON
        check_outcome(counter().compile(checkpointer=s), "t", results, [o["saved"] for o in outs], _Remote)


# -- two concurrent ainvoke in one process --------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_two_concurrent_ainvoke_on_one_thread(store: Any, durability: str) -> None:
    app = counter().compile(checkpointer=store)
    saved: list[list[str]] = [[], []]

    def keep(k: int) -> Any:
        return lambda e: e.kind == "checkpoint" and saved[k].append(e.data)

    results = await asyncio.gather(
        *(app.ainvoke({"i": 0, "who": w}, thread_id="t", durability=durability, listeners=[keep(k)])
          for k, w in enumerate("ab")),
        return_exceptions=True,
    )
    check_outcome(app, "t", list(results), saved)


def test_sequential_runs_on_one_thread_never_conflict(store: Any) -> None:
    app = counter(0).compile(checkpointer=store)
    for durability in ("sync", "async", "exit", "sync"):
        app.invoke({"i": 0}, thread_id="t", durability=durability)
    assert len(app.get_state_history("t")) == 4 * (STEPS + 1)


# -- update_state racing a run ----------------------------------------------------------------------
def test_update_state_during_a_run_makes_the_run_lose(store: Any) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(s: dict[str, Any]) -> dict[str, Any]:
        started.set()
        assert release.wait(10)
        return {"i": s["i"] + 1}

    g = StateGraph(S).add_node("slow", slow).add_edge(START, "slow").add_edge("slow", END)
    app = g.compile(checkpointer=store)
    outcome: list[BaseException | dict[str, Any]] = []

    def run() -> None:
        try:
            outcome.append(app.invoke({"i": 0}, thread_id="t"))
        except BaseException as exc:
            outcome.append(exc)

    t = threading.Thread(target=run)
    t.start()
    assert started.wait(10)
    input_cp = app.get_state("t").checkpoint_id  # the run's input checkpoint
    edit = app.update_state("t", {"who": "human"})  # the edit wins: it wrote first
    release.set()
    t.join(10)
    assert Conflict is not None and isinstance(outcome[0], Conflict), outcome
    err = outcome[0]
    assert (err.thread_id, err.expected, err.actual) == ("t", input_cp, edit)
    state = app.get_state("t")
    assert state.checkpoint_id == edit and state.values == {"i": 0, "who": "human"}
    assert state.next == ("slow",)  # the edit kept what runs next: resuming runs it
    assert app.invoke(None, thread_id="t") == {"i": 1, "who": "human"}


_gate: dict[str, Any] = {}


def slow_add(a: list[str], b: list[str]) -> list[str]:
    """A reducer that holds ``update_state`` between its load and its write, when asked to."""
    if _gate and b == ["edit"]:
        _gate["inside"].set()
        assert _gate["release"].wait(10)
    return [*a, *b]


class L(TypedDict, total=False):
    log: Annotated[list[str], slow_add]


def test_update_state_loses_to_a_run_that_wrote_meanwhile(store: Any) -> None:
    inside, release = threading.Event(), threading.Event()
    g = StateGraph(L).add_node("n", lambda s: {"log": ["n"]}).add_edge(START, "n").add_edge("n", END)
    app = g.compile(checkpointer=store)
    app.invoke({"log": ["first"]}, thread_id="t")
    before = app.get_state("t").checkpoint_id
    outcome: list[Any] = []

    def edit() -> None:
        try:
            outcome.append(app.update_state("t", {"log": ["edit"]}))
        except BaseException as exc:
            outcome.append(exc)

    _gate.update(inside=inside, release=release)
    try:
        t = threading.Thread(target=edit)
        t.start()
        assert inside.wait(10)
        app.invoke({"log": ["second"]}, thread_id="t")  # a run writes while the edit is being made
        newest = app.get_state("t").checkpoint_id
        release.set()
        t.join(10)
    finally:
        _gate.clear()
    assert Conflict is not None and isinstance(outcome[0], Conflict), outcome
    assert (outcome[0].expected, outcome[0].actual) == (before, newest)
    assert app.get_state("t").values == {"log": ["first", "n", "second", "n"]}


# -- forks are not conflicts ----------------------------------------------------------------------
def test_fork_and_update_from_an_older_checkpoint_still_work(store: Any) -> None:
    app = counter(0).compile(checkpointer=store)
    app.invoke({"i": 0}, thread_id="t")
    hist = app.get_state_history("t")
    old = next(s for s in hist if s.step == 3)
    assert app.invoke(None, thread_id="t", checkpoint_id=old.checkpoint_id) == {"i": STEPS}
    edited = app.update_state("t", {"i": 100}, checkpoint_id=old.checkpoint_id)
    assert app.get_state("t").checkpoint_id == edited
    assert app.invoke(None, thread_id="t") == {"i": 101}
    assert len(app.get_state_history("t")) == (STEPS + 1) + (STEPS - 3) + 1 + 1


# -- the store protocol -------------------------------------------------------------------------------
def rec(thread: str, parent: str | None, step: int) -> CheckpointRecord:
    return CheckpointRecord(thread, new_checkpoint_id(), parent, step, "now", [["n", {"i": step}]], {"i": step}, [])


def test_store_put_checks_the_expected_newest(store: Any) -> None:
    assert Conflict is not None
    a = rec("t", None, 0)
    store.put(a, expected=None)  # a new thread: no checkpoint expected
    b = rec("t", a.checkpoint_id, 1)
    store.put(b, expected=a.checkpoint_id)
    fork = rec("t", a.checkpoint_id, 1)  # a child of an older checkpoint: fine if b is expected
    stale = rec("t", a.checkpoint_id, 1)
    with pytest.raises(Conflict) as info:
        store.put(stale, expected=a.checkpoint_id)
    e = info.value
    assert (e.thread_id, e.expected, e.actual, e.checkpoint_id) == ("t", a.checkpoint_id, b.checkpoint_id,
                                                                     stale.checkpoint_id)
    with pytest.raises(Conflict):
        store.put(rec("t", None, 0), expected=None)  # the thread is no longer new
    store.put(fork, expected=b.checkpoint_id)
    assert store.get("t").checkpoint_id == fork.checkpoint_id
    assert [r.checkpoint_id for r in store.list("t")] == [fork.checkpoint_id, b.checkpoint_id, a.checkpoint_id]
    store.put(rec("t", None, 0))  # without expected=: not checked (stores used directly)
    with pytest.raises(Conflict):
        store.put(rec("u", None, 0), expected="nope")
    assert "u" not in store.list_threads()


def test_store_put_many_is_all_or_nothing(store: Any) -> None:
    assert Conflict is not None
    a = rec("t", None, 0)
    store.put(a)
    b1 = rec("t", a.checkpoint_id, 1)
    b2 = rec("t", b1.checkpoint_id, 2)
    store.put_many([b1, b2], expected=a.checkpoint_id)
    c1 = rec("t", a.checkpoint_id, 1)
    c2 = rec("t", c1.checkpoint_id, 2)
    with pytest.raises(Conflict) as info:
        store.put_many([c1, c2], expected=a.checkpoint_id)
    assert info.value.actual == b2.checkpoint_id
    assert {r.checkpoint_id for r in store.list("t")} == {a.checkpoint_id, b1.checkpoint_id, b2.checkpoint_id}


def test_background_writes_report_a_conflict_to_its_writer_only(tmp_path: Path) -> None:
    assert Conflict is not None
    with SqliteCheckpointer(tmp_path / "bg.db") as s:
        a = rec("t", None, 0)
        s.put(a)
        win = rec("t", a.checkpoint_id, 1)
        lose = rec("t", a.checkpoint_id, 1)
        lose2 = rec("t", lose.checkpoint_id, 2)
        other = rec("u", None, 0)
        s.put_nowait(win, expected=a.checkpoint_id)
        s.put_nowait(lose, expected=a.checkpoint_id)
        s.put_nowait(other, expected=None)
        s.flush()  # the winner's wait (and every read) does not see the loser's conflict
        assert s.get("t").checkpoint_id == win.checkpoint_id and s.get("u") is not None
        with pytest.raises(Conflict) as info:  # the loser's next write raises it
            s.put_nowait(lose2, expected=lose.checkpoint_id)
        assert (info.value.expected, info.value.actual, info.value.checkpoint_id) == (
            a.checkpoint_id, win.checkpoint_id, lose.checkpoint_id)
        # ... or its flush, naming its last checkpoint; rows chained on a rejected one are
        # rejected with the first conflict
        l1 = rec("t", a.checkpoint_id, 1)
        l2 = rec("t", l1.checkpoint_id, 2)
        s.put_nowait(l1, expected=a.checkpoint_id)
        s.put_nowait(l2, expected=l1.checkpoint_id)
        with pytest.raises(Conflict) as info:
            s.flush(checkpoint_id=l2.checkpoint_id)
        assert (info.value.expected, info.value.checkpoint_id) == (a.checkpoint_id, l1.checkpoint_id)
        s.flush(checkpoint_id=l2.checkpoint_id)  # reported once
        assert s.get("t", l1.checkpoint_id) is None and s.get("t", l2.checkpoint_id) is None


def test_conflict_error_is_typed_exported_and_picklable() -> None:
    import pickle

    assert Conflict is not None and "CheckpointConflictError" in agentgraph_nb.__all__
    e = Conflict(thread_id="t", expected="a", actual="b", checkpoint_id="c", store="SqliteCheckpointer('x.db')")
    assert isinstance(e, CheckpointError)
    for word in ("'t'", "'a'", "'b'", "'c'", "x.db"):
        assert word in str(e)
    e2 = pickle.loads(pickle.dumps(e))
    assert (e2.thread_id, e2.expected, e2.actual, e2.checkpoint_id, str(e2)) == ("t", "a", "b", "c", str(e))


class OldStore(BaseCheckpointer):
    """A third-party store written before ``expected=`` existed (no ``checks_conflicts``)."""

    def __init__(self) -> None:
        self.threads: dict[str, dict[str, CheckpointRecord]] = {}

    def put(self, record: CheckpointRecord) -> None:  # type: ignore[override]
        self.threads.setdefault(record.thread_id, {})[record.checkpoint_id] = record

    def put_writes(self, thread_id: str, checkpoint_id: str, writes: Any) -> None:
        rec = self.threads[thread_id][checkpoint_id]
        rec.pending_writes = [*rec.pending_writes, *writes]

    def get(self, thread_id: str, checkpoint_id: str | None = None) -> CheckpointRecord | None:
        recs = self.threads.get(thread_id) or {}
        if checkpoint_id is None:
            return recs[next(reversed(recs))] if recs else None
        return recs.get(checkpoint_id)

    def list(self, thread_id: str, **kw: Any) -> Any:
        assert not any(kw.values())
        return iter(list(reversed((self.threads.get(thread_id) or {}).values())))

    def list_threads(self) -> list[str]:
        return list(self.threads)

    def delete_thread(self, thread_id: str) -> None:
        self.threads.pop(thread_id, None)

    def flush(self) -> None:  # type: ignore[override]
        pass


def test_a_store_without_the_check_still_works() -> None:
    old = OldStore()
    app = counter(0).compile(checkpointer=old)
    for durability in ("sync", "async", "exit"):
        assert app.invoke({"i": 0}, thread_id="t", durability=durability) == {"i": STEPS}
    first = app.get_state_history("t")[-1]
    edited = app.update_state("t", {"i": STEPS - 1}, checkpoint_id=first.checkpoint_id)
    assert app.get_state("t").checkpoint_id == edited


@pytest.mark.parametrize("durability", ["sync", "exit"])
async def test_a_store_without_the_check_gets_the_engines_check(durability: str) -> None:
    app = counter().compile(checkpointer=OldStore())
    saved: list[list[str]] = [[], []]
    results = await asyncio.gather(
        *(app.ainvoke({"i": 0, "who": w}, thread_id="t", durability=durability,
                      listeners=[lambda e, k=k: e.kind == "checkpoint" and saved[k].append(e.data)])
          for k, w in enumerate("ab")),
        return_exceptions=True,
    )
    check_outcome(app, "t", list(results), saved)
