"""The store conformance kit: the same scenarios against any checkpoint store.

Every store that ships with agentgraph_nb (memory, SQLite, PostgreSQL, Redis) passes it in CI, and
a third-party store can run it from its own tests to show it behaves as the engine needs:
history, forks, pending writes of parallel steps, interrupts, durability modes, threads,
conflicts (optimistic concurrency), the async methods, retention, and compression and encryption
at rest when the store's serializer does them (``at_rest``: give the kit a factory of stores made
with ``Serializer(compression="zstd", keys=...)``).

Use it from pytest, one test per scenario::

    import pytest
    from agentgraph_nb.testing import STORE_SCENARIOS, store_conformance

    @pytest.mark.parametrize("scenario", STORE_SCENARIOS)
    def test_my_store(scenario):
        store_conformance(lambda: MyStore("..."), only=[scenario])

or all at once: ``store_conformance("postgresql://user:pw@host/db")``.

What it takes: a store URL (each scenario opens its own store objects from it, so a second
object can play a second process), a zero-argument callable returning a store (the same), or a
store object (the scenarios that need two objects then use it twice). Scenarios write threads
with fresh random ids, so a store holding other data is fine; none of them deletes what it did
not write. A store without :attr:`~agentgraph_nb.checkpoint.base.BaseCheckpointer.checks_conflicts`
skips the conflict scenarios; one without ``delete_checkpoints`` fails ``retention``: pass
``skip=["retention"]`` to leave it out.

A failed scenario raises :class:`AssertionError` naming the scenario and what differed.
"""

from __future__ import annotations

import operator
import os
import threading
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypedDict

from agentgraph_nb.checkpoint.base import (
    NO_CHECK,
    BaseCheckpointer,
    CheckpointRecord,
    PendingWrite,
    Retention,
    new_checkpoint_stamp,
)
from agentgraph_nb.errors import CheckpointConflictError

__all__ = ["STORE_SCENARIOS", "store_conformance"]

StoreSpec = str | BaseCheckpointer | Callable[[], BaseCheckpointer]


class _S(TypedDict, total=False):
    x: int
    log: Annotated[list[str], operator.add]
    answer: Any


class _Ctx:
    def __init__(self, spec: StoreSpec, name: str) -> None:
        self.spec = spec
        self.name = name
        self.opened: list[BaseCheckpointer] = []
        self.store = self.new_store()
        self.tag = os.urandom(4).hex()

    def new_store(self) -> BaseCheckpointer:
        """Another store object on the same data (the same object when given one)."""
        spec = self.spec
        if isinstance(spec, BaseCheckpointer):
            return spec
        if isinstance(spec, str):
            from agentgraph_nb.checkpoint import open_checkpointer

            store = open_checkpointer(spec)
        else:
            store = spec()
        self.opened.append(store)
        return store

    def thread(self, label: str = "t") -> str:
        return f"conformance-{self.tag}-{label}"

    def check(self, cond: Any, msg: str) -> None:
        if not cond:
            raise AssertionError(f"store conformance, scenario {self.name!r} on {self.store!r}: {msg}")

    def close(self) -> None:
        for s in self.opened:
            try:
                s.close()
            except Exception:  # a scenario's failure matters more than a close error
                pass


_FULL: Any = object()  # _record's default values: {"x": step}


def _record(thread_id: str, parent: str | None, step: int, values: dict[str, Any] | None = _FULL,
            writes: list[Any] | None = None) -> CheckpointRecord:
    cid, created = new_checkpoint_stamp()
    return CheckpointRecord(
        thread_id=thread_id, checkpoint_id=cid, parent_id=parent, step=step, created_at=created,
        writes=writes if writes is not None else [], values={"x": step} if values is _FULL else values,
        next=[["a"]], metadata={"source": "loop", "step": step},
    )


def _chain_graph(names: Sequence[str] = ("a", "b", "c"), counts: dict[str, int] | None = None,
                 fail: set[str] | None = None) -> Any:
    from agentgraph_nb import START, StateGraph

    g = StateGraph(_S, name="conformance")
    prev = START
    for n in names:
        def fn(s: dict[str, Any], n: str = n) -> dict[str, Any]:
            if counts is not None:
                counts[n] = counts.get(n, 0) + 1
            if fail is not None and n in fail:
                raise RuntimeError(f"{n} failed")
            return {"log": [n], "x": s.get("x", 0) + 1}

        g.add_node(n, fn)
        g.add_edge(prev, n)
        prev = n
    return g


# -- scenarios --------------------------------------------------------------------------------------
def _put_get(c: _Ctx) -> None:
    s, t = c.store, c.thread()
    c.check(s.get(t) is None, "get() of an unknown thread is not None")
    r0 = _record(t, None, 0)
    s.put(r0)
    r1 = _record(t, r0.checkpoint_id, 1, values=None, writes=[["a", {"x": 1}]])
    s.put(r1)
    got = s.get(t)
    c.check(got is not None and got.checkpoint_id == r1.checkpoint_id, "get() is not the newest checkpoint")
    assert got is not None
    c.check(got.values is None and got.writes == [["a", {"x": 1}]] and got.parent_id == r0.checkpoint_id,
            f"the record did not round-trip: {got}")
    c.check(got.metadata == {"source": "loop", "step": 1} and got.next == [["a"]], "metadata or next changed")
    old = s.get(t, r0.checkpoint_id)
    c.check(old is not None and old.values == {"x": 0}, "get(thread, id) of an older checkpoint")
    c.check(s.get(t, "no-such-id") is None, "get() of an unknown checkpoint is not None")
    chain = s.get_chain(t)
    c.check([r.checkpoint_id for r in chain] == [r0.checkpoint_id, r1.checkpoint_id],
            "get_chain() is not snapshot..checkpoint, oldest first")


def _list(c: _Ctx) -> None:
    s, t = c.store, c.thread()
    recs = []
    parent = None
    for i in range(70):  # more than one page of most stores
        r = _record(t, parent, i)
        r.metadata = {"source": "loop", "even": i % 2 == 0}
        s.put(r)
        recs.append(r)
        parent = r.checkpoint_id
    ids = [r.checkpoint_id for r in s.list(t)]
    c.check(ids == [r.checkpoint_id for r in reversed(recs)], "list() is not every checkpoint, newest first")
    c.check([r.checkpoint_id for r in s.list(t, limit=3)] == ids[:3], "list(limit=3)")
    c.check([r.checkpoint_id for r in s.list(t, before=recs[10].checkpoint_id)] == ids[-10:], "list(before=...)")
    even = [r.step for r in s.list(t, metadata_filter={"even": True})]
    c.check(even == list(range(68, -1, -2)), "list(metadata_filter=...)")
    c.check(list(s.list(c.thread("none"))) == [], "list() of an unknown thread is not empty")


def _history_and_fork(c: _Ctx) -> None:
    counts: dict[str, int] = {}
    app = _chain_graph(counts=counts).compile(checkpointer=c.store)
    t = c.thread()
    out = app.invoke({"x": 0}, thread_id=t)
    c.check(out == {"x": 3, "log": ["a", "b", "c"]}, f"final state {out}")
    hist = app.get_state_history(t)
    c.check([h.step for h in hist] == [3, 2, 1, 0], f"history steps {[h.step for h in hist]}")
    for h in hist:
        c.check(app.get_state(t, h.checkpoint_id).values == h.values, "a checkpoint's state does not rebuild")
    after_a = next(h for h in hist if h.step == 1)
    again = app.invoke(None, thread_id=t, checkpoint_id=after_a.checkpoint_id)
    c.check(again == out and counts == {"a": 1, "b": 2, "c": 2}, "a fork re-ran the wrong nodes")
    hist2 = app.get_state_history(t)
    c.check(len(hist2) == 6 and {h.checkpoint_id for h in hist} <= {h.checkpoint_id for h in hist2},
            "the fork did not add a branch beside the original history")
    edited = app.update_state(t, {"x": 100}, checkpoint_id=after_a.checkpoint_id)
    state = app.get_state(t)
    c.check(state.checkpoint_id == edited and state.values["x"] == 100 and state.parent_id == after_a.checkpoint_id,
            "update_state() did not write a child of the chosen checkpoint")


def _long_run_rebuilds(c: _Ctx) -> None:
    app = _loop_graph(80).compile(checkpointer=c.store)
    t = c.thread()
    app.invoke({"x": 0}, thread_id=t)
    hist = app.get_state_history(t)
    c.check(len(hist) == 81, f"{len(hist)} checkpoints for 80 steps and the input")
    for h in hist[::7]:
        v = app.get_state(t, h.checkpoint_id).values
        c.check(v["x"] == h.step and len(v["log"]) == h.step, f"state at step {h.step} rebuilt wrong: {v}")


def _pending_writes(c: _Ctx) -> None:
    from agentgraph_nb import END, START, StateGraph

    counts: dict[str, int] = {}
    broken = {"on": True}

    def ok(s: dict[str, Any]) -> dict[str, Any]:
        counts["ok"] = counts.get("ok", 0) + 1
        return {"log": ["ok"]}

    def bad(s: dict[str, Any]) -> dict[str, Any]:
        counts["bad"] = counts.get("bad", 0) + 1
        if broken["on"]:
            raise RuntimeError("bad failed")
        return {"log": ["bad"]}

    g = StateGraph(_S, name="parallel")
    g.add_node("ok", ok)
    g.add_node("bad", bad)
    g.add_node("join", lambda s: {"x": len(s["log"])})
    g.add_edge(START, "ok")
    g.add_edge(START, "bad")
    g.add_edge(["ok", "bad"], "join")
    g.add_edge("join", END)
    app = g.compile(checkpointer=c.store)
    t = c.thread()
    try:
        app.invoke({"x": 0}, thread_id=t)
        c.check(False, "the failing node did not fail the run")
    except RuntimeError:  # the node's own exception reaches the caller
        pass
    state = app.get_state(t)
    c.check(state.next == ("bad",), f"next after a failed sibling is {state.next}, not ('bad',)")
    rec = c.store.get(t)
    c.check(rec is not None and any(pw.node == "ok" for pw in rec.pending_writes),
            "the finished sibling's result is not stored as a pending write")
    broken["on"] = False
    out = app.invoke(None, thread_id=t)
    c.check(counts == {"ok": 1, "bad": 2}, f"resuming re-ran finished work: {counts}")
    c.check(sorted(out["log"]) == ["bad", "ok"] and out["x"] == 2, f"resumed state {out}")


def _interrupts(c: _Ctx) -> None:
    from agentgraph_nb import END, START, Command, StateGraph, interrupt

    def ask(s: dict[str, Any]) -> dict[str, Any]:
        first = interrupt("first?")
        second = interrupt("second?")
        return {"answer": [first, second]}

    g = StateGraph(_S, name="ask")
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    app = g.compile(checkpointer=c.store, interrupt_before=[])
    t = c.thread()
    out = app.invoke({"x": 1}, thread_id=t)
    c.check("__interrupt__" in out and out["__interrupt__"][0].value == "first?", f"no first interrupt: {out}")
    c.check([i.value for i in app.get_state(t).interrupts] == ["first?"], "get_state().interrupts")
    out = app.invoke(Command(resume="A"), thread_id=t)
    c.check(out["__interrupt__"][0].value == "second?", "the second interrupt() did not ask")
    out = app.invoke(Command(resume="B"), thread_id=t)
    c.check(out.get("answer") == ["A", "B"] and "__interrupt__" not in out, f"answers in order: {out}")


def _durability(c: _Ctx) -> None:
    app = _chain_graph().compile(checkpointer=c.store)
    for d in ("sync", "async", "exit"):
        t = c.thread(d)
        out = app.invoke({"x": 0}, thread_id=t, durability=d)
        c.check(out["x"] == 3, f"durability={d}: {out}")
        c.check([h.step for h in app.get_state_history(t)] == [3, 2, 1, 0], f"durability={d}: history")


def _threads(c: _Ctx) -> None:
    s = c.store
    app = _chain_graph().compile(checkpointer=s)
    ts = [c.thread(f"th{i}") for i in range(3)]
    for t in ts:
        app.invoke({"x": 0}, thread_id=t)
    listed = s.list_threads()
    c.check(all(t in listed for t in ts), "list_threads() misses a thread")
    mine = [t for t in listed if t in ts]
    c.check(mine == ts, f"list_threads() is not in order of creation: {mine}")
    s.delete_thread(ts[1])
    c.check(ts[1] not in s.list_threads(), "a deleted thread is still listed")
    c.check(s.get(ts[1]) is None and list(s.list(ts[1])) == [], "a deleted thread still has checkpoints")
    c.check(app.get_state(ts[0]).values["x"] == 3, "deleting a thread touched another")
    s.delete_thread(c.thread("never-written"))  # not an error


def _conflicts(c: _Ctx) -> None:
    s = c.store
    if not s.checks_conflicts:
        return
    other = c.new_store()
    t = c.thread()
    r0 = _record(t, None, 0)
    s.put(r0, expected=None)
    late = _record(t, None, 0)
    try:
        other.put(late, expected=None)
        c.check(False, "a second first checkpoint of a thread (expected=None) was stored")
    except CheckpointConflictError as e:
        c.check(e.thread_id == t and e.actual == r0.checkpoint_id and e.expected is None,
                f"conflict names the wrong checkpoints: {e}")
    r1 = _record(t, r0.checkpoint_id, 1)
    other.put(r1, expected=r0.checkpoint_id)
    stale = _record(t, r0.checkpoint_id, 1)
    try:
        s.put(stale, expected=r0.checkpoint_id)
        c.check(False, "a write with a stale expected= was stored")
    except CheckpointConflictError as e:
        c.check(e.actual == r1.checkpoint_id and e.checkpoint_id == stale.checkpoint_id and t in str(e),
                f"conflict names the wrong checkpoints: {e}")
    c.check(s.get(t, stale.checkpoint_id) is None, "the refused checkpoint was stored")
    c.check(s.get(t).checkpoint_id == r1.checkpoint_id, "the winner is not the thread's newest")  # type: ignore[union-attr]
    # put_many: all or none
    batch = [_record(t, r0.checkpoint_id, 1), _record(t, None, 2)]
    try:
        s.put_many(batch, expected=r0.checkpoint_id)
        c.check(False, "put_many with a stale expected= stored something")
    except CheckpointConflictError:
        pass
    c.check(all(s.get(t, r.checkpoint_id) is None for r in batch), "put_many stored part of a refused batch")
    s.put_many(batch, expected=r1.checkpoint_id)
    c.check(s.get(t).checkpoint_id == batch[-1].checkpoint_id, "put_many's last record is not the newest")  # type: ignore[union-attr]
    # put_nowait: the refusal reaches its writer through flush(checkpoint_id=...)
    bg = _record(t, r0.checkpoint_id, 9)
    try:  # a store without a background writer refuses at once
        s.put_nowait(bg, expected=r0.checkpoint_id)
        s.flush(checkpoint_id=bg.checkpoint_id)
        c.check(False, "flush(checkpoint_id=...) of a refused background write did not raise")
    except CheckpointConflictError as e:
        c.check(e.checkpoint_id == bg.checkpoint_id, f"the background refusal names {e.checkpoint_id}")
    ok = _record(t, batch[-1].checkpoint_id, 3)
    s.put_nowait(ok, expected=batch[-1].checkpoint_id)
    s.flush(checkpoint_id=ok.checkpoint_id)
    c.check(s.get(t).checkpoint_id == ok.checkpoint_id, "a background write was not stored")  # type: ignore[union-attr]


def _racing_runs(c: _Ctx) -> None:
    """Two runs (two store objects, two threads of this process) resume one thread at once:
    exactly one wins, the other gets a conflict, the thread is the winner's."""
    if not c.store.checks_conflicts:
        return
    from agentgraph_nb import END, START, StateGraph

    barrier = threading.Barrier(2, timeout=30)
    g = StateGraph(_S, name="race")
    g.add_node("step", lambda s: {"x": s.get("x", 0) + 1})
    g.add_edge(START, "step")
    g.add_edge("step", END)
    t = c.thread()
    apps = [g.compile(checkpointer=c.store), g.compile(checkpointer=c.new_store())]
    apps[0].update_state(t, {"x": 0})
    results: list[Any] = [None, None]

    def go(k: int) -> None:
        try:
            # both have loaded the thread before either writes: they meet at run_start
            results[k] = apps[k].invoke({"x": 10 * (k + 1)}, thread_id=t,
                                        listeners=[lambda e: e.kind == "run_start" and barrier.wait()])
        except Exception as exc:
            results[k] = exc

    threads = [threading.Thread(target=go, args=(k,)) for k in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    kinds = sorted("conflict" if isinstance(r, CheckpointConflictError) else "ok" if isinstance(r, dict) else repr(r)
                   for r in results)
    c.check(kinds == ["conflict", "ok"], f"two racing runs ended {kinds}, not one winner and one conflict")
    win = next(r for r in results if isinstance(r, dict))
    c.check(apps[0].get_state(t).values == win, "the thread's state is not the winner's")


def _async_methods(c: _Ctx) -> None:
    import asyncio  # here, not at the top: importing agentgraph_nb.testing stays light

    s, t = c.store, c.thread()

    async def main() -> None:
        r0 = _record(t, None, 0)
        await s.aput(r0, expected=None if s.checks_conflicts else NO_CHECK)
        r1 = _record(t, r0.checkpoint_id, 1, values=None, writes=[["a", {"x": 1}]])
        await s.aput(r1, expected=r0.checkpoint_id if s.checks_conflicts else NO_CHECK)
        await s.aput_writes(t, r1.checkpoint_id, [PendingWrite(0, "a", {"x": 2}, [])])
        got = await s.aget(t)
        c.check(got is not None and got.checkpoint_id == r1.checkpoint_id and
                [pw.node for pw in got.pending_writes] == ["a"], "aget()/aput_writes()")
        chain = await s.aget_chain(t)
        c.check([r.checkpoint_id for r in chain] == [r0.checkpoint_id, r1.checkpoint_id], "aget_chain()")
        listed = [r.checkpoint_id async for r in s.alist(t)]
        c.check(listed == [r1.checkpoint_id, r0.checkpoint_id], "alist()")
        c.check(t in await s.alist_threads(), "alist_threads()")
        if s.checks_conflicts:
            try:
                await s.aput(_record(t, r0.checkpoint_id, 1), expected=r0.checkpoint_id)
                c.check(False, "aput() with a stale expected= was stored")
            except CheckpointConflictError:
                pass
        r2 = _record(t, r1.checkpoint_id, 2)
        await s.aput_nowait(r2, expected=r1.checkpoint_id if s.checks_conflicts else NO_CHECK)
        await s.aflush(r2.checkpoint_id if s.checks_conflicts else None)
        c.check((await s.aget(t)).checkpoint_id == r2.checkpoint_id, "aput_nowait() + aflush()")  # type: ignore[union-attr]
        await s.adelete_thread(t)
        c.check(await s.aget(t) is None, "adelete_thread()")

    asyncio.run(main())


def _ainvoke(c: _Ctx) -> None:
    """Many concurrent ``ainvoke`` runs, each on its own thread, all correct; ``astream`` too."""
    import asyncio

    from agentgraph_nb import END, START, Command, StateGraph, interrupt

    async def step(s: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"x": s.get("x", 0) + 1, "log": ["s"]}

    def ask(s: dict[str, Any]) -> dict[str, Any]:
        return {"answer": interrupt("ok?")}

    g = StateGraph(_S, name="async")
    g.add_node("a", step)
    g.add_node("b", step)
    g.add_node("ask", ask)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "ask")
    g.add_edge("ask", END)
    app = g.compile(checkpointer=c.store)
    ts = [c.thread(f"a{i}") for i in range(40)]

    async def main() -> None:
        outs = await asyncio.gather(*(app.ainvoke({"x": i}, thread_id=t) for i, t in enumerate(ts)))
        for i, out in enumerate(outs):
            c.check(out["x"] == i + 2 and "__interrupt__" in out, f"ainvoke run {i}: {out}")
        outs = await asyncio.gather(*(app.ainvoke(Command(resume=i), thread_id=t) for i, t in enumerate(ts)))
        for i, out in enumerate(outs):
            c.check(out["answer"] == i and out["x"] == i + 2, f"resumed ainvoke run {i}: {out}")
        t = c.thread("stream")
        ups = [u async for u in app.astream({"x": 0}, thread_id=t, durability="async")]
        c.check([next(iter(u)) for u in ups][:2] == ["a", "b"], f"astream updates {ups}")
        hist = [h async for h in _ahistory(c.store, t)]
        c.check([h.step for h in hist] == [2, 1, 0], f"astream's checkpoints {[h.step for h in hist]}")

    asyncio.run(main())
    for i, t in enumerate(ts[:5]):
        c.check(app.get_state(t).values["answer"] == i, "an ainvoke run's state, read back in sync")


async def _ahistory(store: BaseCheckpointer, t: str) -> Any:
    async for r in store.alist(t):
        yield r


def _loop_graph(steps: int) -> Any:
    from agentgraph_nb import END, START, StateGraph

    g = StateGraph(_S, name="loop")
    g.add_node("inc", lambda s: {"x": s.get("x", 0) + 1, "log": [str(s.get("x", 0))]})
    g.add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: "inc" if s["x"] < steps else END, ["inc", END])
    return g


def _retention(c: _Ctx) -> None:
    s = c.store
    app = _loop_graph(40).compile(checkpointer=s)
    t = c.thread()
    app.invoke({"x": 0}, thread_id=t)
    before = app.get_state_history(t)
    deleted = s.prune(t, Retention(keep_last=4))
    after = app.get_state_history(t)
    kept = {h.checkpoint_id for h in after}
    c.check(deleted == len(before) - len(after) and deleted > 0, f"prune() deleted {deleted} of {len(before)}")
    c.check({h.checkpoint_id for h in before[:4]} <= kept, "prune(keep_last=4) dropped one of the newest 4")
    for h in before[:4]:
        c.check(app.get_state(t, h.checkpoint_id).values == h.values, "a kept checkpoint no longer rebuilds")
    c.check(app.invoke(None, thread_id=t)["x"] == 40, "the pruned thread does not resume")
    t2 = c.thread("age")
    app.invoke({"x": 0}, thread_id=t2)
    c.check(s.prune(t2, Retention(max_age=3600)) == 0, "prune(max_age=1h) deleted fresh checkpoints")
    s.prune(t2, Retention(max_age=1e-9))
    c.check(app.get_state(t2).values["x"] == 40, "prune() dropped the newest checkpoint or its chain")


def _corrupt_input_rejected(c: _Ctx) -> None:
    """A value the serializer cannot store is a CheckpointError naming the thread."""
    from agentgraph_nb.errors import CheckpointError

    if getattr(c.store, "serializer", None) is None:
        return  # keeps values as they are (the in-memory store): nothing to refuse
    t = c.thread()
    rec = _record(t, None, 0, values={"x": object()})
    try:
        c.store.put(rec)
        c.check(False, "an object() value was stored")
    except CheckpointError as e:
        c.check(t in str(e) or "x" in str(e), f"the error names neither thread nor key: {e}")
    except TypeError:
        pass  # a store with its own serialization: still refused, and nothing stored
    c.check(c.store.get(t) is None, "a refused record was stored")


def _at_rest(c: _Ctx) -> None:
    """With a compressing or encrypting serializer (``store.serializer``): a large state,
    pending writes and an interrupt round-trip through a second store object, and
    ``reencrypt()`` rewrites nothing that is already under the active key."""
    ser = getattr(c.store, "serializer", None)
    if ser is None or not (getattr(ser, "encrypted", False) or "compression=" in repr(ser)):
        return  # plain bytes (or none): the other scenarios cover it
    from agentgraph_nb import Command, interrupt

    t = c.thread("rest")
    big = "at rest " * 4000  # above any compression threshold
    counts: dict[str, int] = {}
    g = _chain_graph(("a", "b"), counts, fail={"b"})

    def ask(s: dict[str, Any]) -> dict[str, Any]:
        return {"answer": interrupt({"q": big[:100]})}

    g.add_node("ask", ask)
    g.add_edge("b", "ask")
    app = g.compile(checkpointer=c.store)
    try:
        app.invoke({"x": 0, "log": [big]}, thread_id=t)
        c.check(False, "node b did not fail")
    except RuntimeError:
        pass
    other = c.new_store()
    g2 = _chain_graph(("a", "b"), counts)
    g2.add_node("ask", ask)
    g2.add_edge("b", "ask")
    app2 = g2.compile(checkpointer=other)
    snap = app2.get_state(t)
    c.check(snap.values.get("log") == [big, "a"], "a large state did not round-trip through another store object")
    app2.invoke(None, thread_id=t)
    c.check(counts.get("a") == 1, "resuming ran node a again: its pending write was lost")
    c.check(app2.get_state(t).interrupts[0].value == {"q": big[:100]}, "the interrupt did not round-trip")
    reenc = getattr(other, "reencrypt", None)
    if callable(reenc) and getattr(ser, "encrypted", False):
        try:
            n = reenc(t)
        except NotImplementedError:
            n = None
        if n is not None:
            c.check(n == 0, f"reencrypt() rewrote {n} records that were already under the active key")
    out = app2.invoke(Command(resume="ok"), thread_id=t)
    c.check(out.get("answer") == "ok" and out.get("log") == [big, "a", "b"], f"the resumed run ended with {out!r}")


_SCENARIOS: dict[str, Callable[[_Ctx], None]] = {
    "put_get": _put_get,
    "list": _list,
    "history_and_fork": _history_and_fork,
    "long_run_rebuilds": _long_run_rebuilds,
    "pending_writes": _pending_writes,
    "interrupts": _interrupts,
    "durability": _durability,
    "threads": _threads,
    "conflicts": _conflicts,
    "racing_runs": _racing_runs,
    "async_methods": _async_methods,
    "ainvoke": _ainvoke,
    "retention": _retention,
    "unstorable_value": _corrupt_input_rejected,
    "at_rest": _at_rest,
}

STORE_SCENARIOS: tuple[str, ...] = tuple(_SCENARIOS)
"""The names of the scenarios, for ``pytest.mark.parametrize``."""


def store_conformance(
    store: StoreSpec,
    *,
    only: Sequence[str] | None = None,
    skip: Sequence[str] = (),
) -> list[str]:
    """Run the conformance scenarios against a store; return the names of those that ran.

    Args:
        store: a store URL, a zero-argument callable returning a store, or a store object.
        only: run just these scenarios (names from :data:`STORE_SCENARIOS`).
        skip: leave these out.

    Raises:
        AssertionError: a scenario failed; the message names it, the store and what differed.
        ValueError: an unknown scenario name.

    Example:
        >>> store_conformance("sqlite:///conformance.db")
        ['put_get', 'list', 'history_and_fork', ...]
    """
    names = list(only) if only is not None else list(_SCENARIOS)
    unknown = [n for n in [*names, *skip] if n not in _SCENARIOS]
    if unknown:
        from agentgraph_nb.errors import did_you_mean

        raise ValueError(f"unknown scenario {unknown[0]!r}.{did_you_mean(unknown[0], _SCENARIOS)} "
                         f"Scenarios: {', '.join(_SCENARIOS)}")
    ran = []
    for name in names:
        if name in skip:
            continue
        ctx = _Ctx(store, name)
        try:
            _SCENARIOS[name](ctx)
        finally:
            ctx.close()
        ran.append(name)
    return ran
