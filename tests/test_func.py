"""The functional API (agentgraph_nb/func.py): durability of task results, failures, bad input,
sync/async mixes, stream modes and the events the notebook views draw from."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agentgraph_nb import (
    CheckpointError,
    Command,
    GraphValidationError,
    RetryPolicy,
    TaskCallError,
    entrypoint,
    get_stream_writer,
    interrupt,
    node_failure,
    task,
)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


def test_a_failed_entrypoint_resumes_without_rerunning_finished_tasks(db: str) -> None:
    ran: list[str] = []
    broken = True

    @task
    def fetch(n: int) -> int:
        ran.append(f"fetch{n}")
        return n * 10

    @task
    def flaky(total: int) -> int:
        ran.append("flaky")
        if broken:
            raise ConnectionRefusedError("service down")
        return total + 1

    @entrypoint(checkpointer=db)
    def flow(numbers: list[int]) -> int:
        total = sum(f.result() for f in [fetch(n) for n in numbers])
        return flaky(total).result()

    with pytest.raises(ConnectionRefusedError) as info:
        flow.invoke([1, 2], thread_id="t")
    # the task's own exception, saying which task, call and entrypoint; the engine's NodeFailure too
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "task 'flaky' (call '2:flaky', attempt 1) of entrypoint 'flow', thread 't'" in notes
    failure = node_failure(info.value)
    assert failure is not None and failure.node == "flow" and failure.thread_id == "t"
    assert sorted(ran) == ["fetch1", "fetch2", "flaky"]

    broken = False
    ran.clear()
    # a new process would see the same: the results are in the SQLite file
    assert flow.invoke(None, thread_id="t") == 31
    assert ran == ["flaky"]
    assert flow.get_state("t").values == 31


def test_results_survive_a_new_entrypoint_object_on_the_same_file(db: str) -> None:
    """What a restarted process sees: the results live in the store, not in the object."""
    ran: list[int] = []

    @task
    def work(n: int) -> int:
        ran.append(n)
        return n + 100

    def body(n: int) -> dict[str, Any]:
        got = work(n).result()
        return {"got": got, "answer": interrupt("ok?")}

    first = entrypoint(checkpointer=db, name="job")(body)
    assert "__interrupt__" in first.invoke(1, thread_id="t")
    second = entrypoint(checkpointer=db, name="job")(body)
    assert second.invoke(Command(resume="yes"), thread_id="t") == {"got": 101, "answer": "yes"}
    assert ran == [1]


def test_a_result_the_store_cannot_keep_is_a_checkpoint_error_naming_task_and_thread(db: str) -> None:
    @task
    def opens() -> Any:
        return threading.Lock()

    @entrypoint(checkpointer=db)
    def flow(_: Any) -> str:
        opens().result()
        return "never"

    with pytest.raises(CheckpointError, match=r"task 'opens' of entrypoint 'flow' returned a value the "
                                              r"checkpointer cannot store \(lock; thread 'x'\)"):
        flow.invoke(1, thread_id="x")


def test_without_a_thread_nothing_is_stored_and_any_result_is_fine(db: str) -> None:
    @task
    def opens() -> Any:
        return threading.Lock()

    @entrypoint(checkpointer=db)
    def flow(_: Any) -> str:
        return type(opens().result()).__name__

    assert flow.invoke(1) == "lock"


def test_a_task_called_outside_an_entrypoint_is_a_typed_error() -> None:
    @task
    def lonely() -> int:
        return 1

    with pytest.raises(TaskCallError, match="task 'lonely' was called outside a running @entrypoint") as info:
        lonely()
    assert info.value.task == "lonely"
    assert isinstance(info.value, RuntimeError)


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda: 1, "must take the input as its first parameter"),
        (lambda a, b: 1, r"takes one input; parameter\(s\) 'b' have no default"),
        (lambda a, *, secret: 1, r"keyword parameter\(s\) 'secret' have no default and are not injected"),
    ],
)
def test_an_entrypoint_with_a_wrong_signature_is_a_validation_error(fn: Any, message: str) -> None:
    with pytest.raises(GraphValidationError, match=message):
        entrypoint(name="bad")(fn)


def test_a_generator_entrypoint_or_task_is_rejected() -> None:
    def gen(x: Any) -> Any:
        yield x

    with pytest.raises(GraphValidationError, match="entrypoint 'gen' is a generator"):
        entrypoint()(gen)
    with pytest.raises(GraphValidationError, match="task 'gen' is a generator"):
        task(gen)


def test_sync_tasks_started_together_run_side_by_side() -> None:
    @task
    def slow(n: int) -> int:
        time.sleep(0.1)
        return n

    @entrypoint()
    def flow(ns: list[int]) -> list[int]:
        return [f.result() for f in [slow(n) for n in ns]]

    t0 = time.perf_counter()
    assert flow.invoke([1, 2, 3, 4]) == [1, 2, 3, 4]
    assert time.perf_counter() - t0 < 0.35  # four 100 ms tasks; one after another would take 400 ms


def test_async_and_sync_tasks_mix_in_both_kinds_of_entrypoint() -> None:
    @task
    async def aplus(n: int) -> int:
        await asyncio.sleep(0)
        return n + 1

    @task
    def plus(n: int) -> int:
        return n + 1

    @entrypoint()
    def sync_flow(n: int) -> int:
        return plus(aplus(n).result()).result()

    @entrypoint()
    async def async_flow(n: int) -> int:
        return await plus(await aplus(n))

    assert sync_flow.invoke(1) == 3
    assert async_flow.invoke(1) == 3
    assert asyncio.run(async_flow.ainvoke(5)) == 7


def test_stream_modes_values_custom_and_lists() -> None:
    @task
    def step(n: int) -> int:
        get_stream_writer()({"progress": n})
        return n * 2

    @entrypoint(checkpointer="memory")
    def flow(n: int, *, writer: Any) -> int:
        writer("start")
        return step(n).result() + 1

    assert list(flow.stream(3, thread_id="a", mode="values")) == [7]
    assert list(flow.stream(3, thread_id="b", mode="custom")) == ["start", {"progress": 3}]
    assert list(flow.stream(3, thread_id="c", mode=["updates", "values"])) == [
        ("updates", {"step": 6}), ("updates", {"flow": 7}), ("values", 7),
    ]


def test_history_and_state_show_the_return_values() -> None:
    @entrypoint(checkpointer="memory")
    def add(n: int, *, previous: int | None = None) -> int:
        return (previous or 0) + n

    add.invoke(2, thread_id="t")
    add.invoke(3, thread_id="t")
    assert add.get_state("t").values == 5
    outputs = [s.values for s in add.get_state_history("t")]
    assert outputs[0] == 5 and 2 in outputs and outputs[-1] is None
    assert add.get_state("t").next == ()


def test_task_executions_are_events_for_the_timeline_and_graph_view() -> None:
    events: list[Any] = []

    @task
    def fetch(n: int) -> int:
        return n

    @entrypoint(checkpointer="memory")
    def flow(ns: list[int]) -> int:
        return sum(f.result() for f in [fetch(n) for n in ns])

    flow.graph.listen(events.append)
    assert flow.invoke([1, 2], thread_id="t") == 3
    tasks = [(e.kind, e.node) for e in events if e.node == "fetch"]
    assert sorted(tasks) == [("node_end", "fetch"), ("node_end", "fetch"), ("node_start", "fetch"), ("node_start", "fetch")]
    ids = {e.task_id for e in events if e.node == "fetch"}
    assert ids == {"1:0:fetch", "1:1:fetch"}  # step 1, the calls by order
    assert next(e.node for e in events if e.kind == "node_start") == "flow"


def test_an_interrupt_in_a_task_names_the_entrypoint_and_shows_in_get_state() -> None:
    @task
    def ask() -> str:
        return interrupt("name?")

    @entrypoint(checkpointer="memory")
    def flow(_: Any) -> str:
        return "hello " + ask().result()

    paused = flow.invoke(1, thread_id="t")
    [it] = paused["__interrupt__"]
    assert it.node == "flow" and it.value == "name?"
    snap = flow.get_state("t")
    assert snap.next == ("flow",) and [i.value for i in snap.interrupts] == ["name?"]
    assert flow.invoke(Command(resume="Ada"), thread_id="t") == "hello Ada"


def test_import_agentgraph_nb_does_not_import_the_functional_api() -> None:
    import subprocess
    import sys

    code = "import sys, agentgraph_nb; print('agentgraph_nb.func' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_task_still_running_when_the_body_pauses_finishes_and_is_kept() -> None:
    """The body asks before waiting for a task it started: the task still finishes (and is
    saved) before the step ends, so answering does not run it again."""
    ran: list[int] = []

    @task
    def slow(n: int) -> int:
        time.sleep(0.05)
        ran.append(n)
        return n

    @entrypoint(checkpointer="memory")
    def flow(n: int) -> list[Any]:
        fut = slow(n)
        answer = interrupt("go?")
        return [fut.result(), answer]

    assert "__interrupt__" in flow.invoke(7, thread_id="t")
    assert ran == [7]
    assert flow.invoke(Command(resume="yes"), thread_id="t") == [7, "yes"]
    assert ran == [7]


def test_show_draws_the_tasks_that_ran_beside_the_entrypoint() -> None:
    pytest.importorskip("ipywidgets")

    @task
    def fetch(n: int) -> int:
        return n

    @task
    def total(xs: list[int]) -> int:
        return sum(xs)

    @entrypoint(checkpointer="memory")
    def flow(ns: list[int]) -> int:
        return total([f.result() for f in [fetch(n) for n in ns]]).result()

    view = flow.show()
    assert [n["name"] for n in view.graph["nodes"]] == ["flow"]
    flow.invoke([1, 2], thread_id="t")
    view.flush()
    assert [n["name"] for n in view.graph["nodes"]] == ["flow", "fetch", "total"]
    assert [n.get("kind") for n in view.graph["nodes"]] == [None, "task", "task"]
    assert view.graph["branches"][-1]["targets"] == ["fetch", "total"]
    assert view.status == {"flow": "done", "fetch": "done", "total": "done"}


def test_the_debugger_steps_task_by_task() -> None:
    pytest.importorskip("ipywidgets")
    ran: list[Any] = []

    @task
    def fetch(n: int) -> int:
        ran.append(n)
        return n * 10

    @task
    def total(xs: list[int]) -> int:
        ran.append("total")
        return sum(xs)

    @entrypoint(checkpointer="memory")
    def flow(ns: list[int]) -> int:
        return total([fetch(n).result() for n in ns]).result()

    dbg = flow.debug([1, 2])
    asked = [i.value for i in dbg.step().interrupts]
    assert asked == [{"before_task": "fetch", "call": "0:fetch", "input": 1}] and ran == []
    assert dbg.graphview.status == {"flow": "interrupted", "fetch": "pending"}  # total has not run yet
    assert [i.value["before_task"] for i in dbg.resume(None).interrupts] == ["fetch"] and ran == [1]
    assert [i.value["input"] for i in dbg.resume(None).interrupts] == [[10, 20]] and ran == [1, 2]
    assert dbg.graphview.status == {"flow": "interrupted", "fetch": "done", "total": "pending"}
    final = dbg.resume(None)
    assert dbg.graphview.status == {"flow": "done", "fetch": "done", "total": "done"}
    assert final.interrupts == () and ran == [1, 2, "total"]
    assert flow.get_state(dbg.session.thread_id).values == 30
    # other threads run straight through
    assert flow.invoke([3], thread_id="plain") == 30


@pytest.mark.parametrize("kind", ["postgres", "redis"])
async def test_an_async_entrypoint_on_a_network_store_keeps_results_through_async_connections(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path,
) -> None:
    """Real servers: task results (async and sync tasks) are saved and found again through the
    store's async methods only (the loop never blocks on the network)."""
    from agentgraph_nb.checkpoint import open_checkpointer
    from tests.conftest import store_url

    store = open_checkpointer(store_url(kind, request, tmp_path))
    sync_calls: list[str] = []
    drive = store._drive  # type: ignore[attr-defined]

    def spy(op: Any, args: Any, action: str, thread_id: Any) -> Any:
        # the engine prepares a resume in a worker thread through the sync methods (off the
        # loop, for graphs too); what counts here: no sync call on the loop, no task result
        # written through them
        try:
            asyncio.get_running_loop()
            sync_calls.append(f"{action} on the loop")
        except RuntimeError:
            items = args[2] if action == "store pending writes" else []
            if any("__task__" in repr(w) for w in items):
                sync_calls.append(f"{action} of a task result")
        return drive(op, args, action, thread_id)

    store._drive = spy  # type: ignore[attr-defined]
    ran: list[str] = []

    @task
    async def fetch(n: int) -> int:
        ran.append(f"fetch{n}")
        await asyncio.sleep(0.01)
        return n * 10

    @task
    def double(n: int) -> int:
        ran.append(f"double{n}")
        return n * 2

    @entrypoint(checkpointer=store)
    async def flow(ns: list[int]) -> dict[str, Any]:
        values = [await f for f in [fetch(n) for n in ns]]
        doubled = await double(sum(values))
        return {"doubled": doubled, "answer": interrupt("ok?")}

    paused = await flow.ainvoke([1, 2], thread_id="t")
    assert "__interrupt__" in paused
    assert sorted(ran) == ["double30", "fetch1", "fetch2"]
    assert await flow.ainvoke(Command(resume="yes"), thread_id="t") == {"doubled": 60, "answer": "yes"}
    assert sorted(ran) == ["double30", "fetch1", "fetch2"]
    assert sync_calls == [], f"the async entrypoint called the sync driver: {sync_calls}"


def test_task_retry_policy() -> None:
    """``@task(retry_policy=...)`` (LangGraph's API; its suite has no behavioural test of it):
    a flaky task succeeds on its third attempt, each attempt an event."""
    attempts = 0

    @task(retry_policy=RetryPolicy(max_attempts=3, initial_interval=0.0, jitter=False, retry_on=ConnectionError))
    def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("down")
        return "up"

    @entrypoint()
    def graph(_: Any) -> str:
        return flaky().result()

    assert graph.invoke(1) == "up"
    assert attempts == 3


def test_batch_runs_many_inputs_and_returns_the_return_values() -> None:
    @task
    def double(n: int) -> int:
        return n * 2

    @entrypoint(checkpointer="memory")
    def flow(n: int) -> int:
        if n < 0:
            raise ValueError(f"negative: {n}")
        return double(n).result() + 1

    assert flow.batch([1, 2, 3]) == [3, 5, 7]
    out = flow.batch([1, -1], return_exceptions=True, thread_ids=["a", "b"])
    assert out[0] == 3 and isinstance(out[1], ValueError)
    assert asyncio.run(flow.abatch([4, 5])) == [9, 11]


def test_the_timeline_draws_a_bar_per_task_call() -> None:
    pytest.importorskip("plotly")

    @task
    def fetch(n: int) -> int:
        time.sleep(0.01)
        return n

    @entrypoint(checkpointer="memory")
    def flow(ns: list[int]) -> int:
        return sum(f.result() for f in [fetch(n) for n in ns])

    flow.record()
    flow.invoke([1, 2, 3], thread_id="t")
    tl = flow.timeline("t")
    assert tl.executions == 4  # the entrypoint and its three task calls
    svg = tl.to_svg()
    assert "fetch" in svg and "flow" in svg
