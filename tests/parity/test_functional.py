"""Parity with LangGraph: the functional API (``@entrypoint``, ``@task``).

LangGraph's scenarios (libs/langgraph/tests/test_pregel.py and test_pregel_async.py, 1.2.x)
re-expressed on our API: ``config={"configurable": {"thread_id": t}}`` becomes ``thread_id=t``,
``stream_mode=`` becomes ``mode=``. Each test names the LangGraph test it follows. The
checkpointer LangGraph's fixture parametrizes is a real SQLite file here (it serializes, as
LangGraph's savers do) unless the scenario has none.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agentgraph_nb import (
    START,
    Command,
    Interrupt,
    StateGraph,
    entrypoint,
    interrupt,
    task,
)


@pytest.fixture(params=["memory", "sqlite"])
def saver(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory" if request.param == "memory" else f"sqlite:///{tmp_path / 'runs.db'}"


def test_imp_task(saver: str) -> None:
    """Follows test_imp_task: tasks run concurrently, each streams its update, the interrupt
    ends the stream, and resuming does not run the finished tasks again."""
    calls = 0
    lock = threading.Lock()

    @task()
    def mapper(n: int) -> str:
        nonlocal calls
        with lock:
            calls += 1
        time.sleep(n / 100)
        return str(n) * 2

    @entrypoint(checkpointer=saver)
    def graph(numbers: list[int]) -> list[str]:
        futures = [mapper(i) for i in numbers]
        mapped = [f.result() for f in futures]
        answer = interrupt("question")
        return [m + answer for m in mapped]

    chunks = list(graph.stream([0, 1], thread_id="1"))
    assert sorted(chunks[:-1], key=str) == [{"mapper": "00"}, {"mapper": "11"}]
    last = chunks[-1]
    assert list(last) == ["__interrupt__"] and last["__interrupt__"][0].value == "question"
    assert calls == 2
    assert graph.invoke(Command(resume="answer"), thread_id="1") == ["00answer", "11answer"]
    assert calls == 2


def test_imp_nested(saver: str) -> None:
    """Follows test_imp_nested: a task that calls a task, and a compiled graph invoked inside
    the entrypoint; nested tasks stream their updates too. (LangGraph's graph there has the
    state ``list[str]``; a bare type is not a state schema here, so it is the same list with a
    last-value reducer, ``Annotated[list, lambda old, new: new]``.)"""
    from typing import Annotated

    def mynode(items: list[str]) -> list[str]:
        return [it + "a" for it in items]

    builder = StateGraph(Annotated[list, lambda old, new: new])
    builder.add_node("mynode", mynode).add_edge(START, "mynode")
    add_a = builder.compile(checkpointer=None)

    @task
    def submapper(n: int) -> str:
        time.sleep(n / 100)
        return str(n)

    @task()
    def mapper(n: int) -> str:
        sub = submapper(n)
        time.sleep(n / 100)
        return sub.result() * 2

    @entrypoint(checkpointer=saver)
    def graph(numbers: list[int]) -> list[str]:
        mapped = [f.result() for f in [mapper(i) for i in numbers]]
        answer = interrupt("question")
        return add_a.invoke([m + answer for m in mapped])

    chunks = list(graph.stream([0, 1], thread_id="1"))
    assert sorted(chunks[:-1], key=str) == [{"mapper": "00"}, {"mapper": "11"}, {"submapper": "0"}, {"submapper": "1"}]
    assert "__interrupt__" in chunks[-1]
    assert graph.invoke(Command(resume="answer"), thread_id="1") == ["00answera", "11answera"]


def test_imp_stream_order(saver: str) -> None:
    """Follows test_imp_stream_order: tasks that depend on each other stream in call order,
    the entrypoint's own return value last; get_state().values is that return value."""

    @task()
    def foo(state: dict) -> tuple:
        return state["a"] + "foo", "bar"

    @task
    def bar(a: str, b: str, c: str | None = None) -> dict:
        return {"a": a + b, "c": (c or "") + "bark"}

    @task
    def baz(state: dict) -> dict:
        return {"a": state["a"] + "baz", "c": "something else"}

    @entrypoint(checkpointer=saver)
    def graph(state: dict) -> dict:
        fut_foo = foo(state)
        fut_bar = bar(*fut_foo.result())
        fut_baz = baz(fut_bar.result())
        return fut_baz.result()

    chunks = list(graph.stream({"a": "0"}, thread_id="1"))
    assert [next(iter(c)) for c in chunks] == ["foo", "bar", "baz", "graph"]
    assert tuple(chunks[0]["foo"]) == ("0foo", "bar")  # SQLite gives a tuple back as a list (JSON)
    assert chunks[1:] == [
        {"bar": {"a": "0foobar", "c": "bark"}},
        {"baz": {"a": "0foobarbaz", "c": "something else"}},
        {"graph": {"a": "0foobarbaz", "c": "something else"}},
    ]
    assert graph.get_state("1").values == {"a": "0foobarbaz", "c": "something else"}


def test_interrupt_functional(saver: str) -> None:
    """Follows test_interrupt_functional: interrupt() in the entrypoint's body, between tasks."""

    @task
    def foo(state: dict) -> dict:
        return {"a": state["a"] + "foo"}

    @task
    def bar(state: dict) -> dict:
        return {"a": state["a"] + "bar", "b": state["b"]}

    @entrypoint(checkpointer=saver)
    def graph(inputs: dict) -> dict:
        fut_foo = foo(inputs)
        value = interrupt("Provide value for bar:")
        return bar({**fut_foo.result(), "b": value}).result()

    paused = graph.invoke({"a": ""}, thread_id="1")
    assert list(paused) == ["__interrupt__"]
    assert [i.value for i in paused["__interrupt__"]] == ["Provide value for bar:"]
    assert graph.invoke(Command(resume="bar"), thread_id="1") == {"a": "foobar", "b": "bar"}


def test_interrupt_task_functional(saver: str) -> None:
    """Follows test_interrupt_task_functional: interrupt() inside a task; the same task may
    pause twice (two calls, each answered in turn)."""

    @task
    def foo(state: dict) -> dict:
        return {"a": state["a"] + "foo"}

    @task
    def bar(state: dict) -> dict:
        value = interrupt("Provide value for bar:")
        return {"a": state["a"] + value}

    @entrypoint(checkpointer=saver)
    def graph(inputs: dict) -> dict:
        return bar(foo(inputs).result()).result()

    paused = graph.invoke({"a": ""}, thread_id="1")
    assert isinstance(paused["__interrupt__"][0], Interrupt)
    assert paused["__interrupt__"][0].value == "Provide value for bar:"
    assert graph.invoke(Command(resume="bar"), thread_id="1") == {"a": "foobar"}

    @entrypoint(checkpointer=saver)
    def twice(inputs: dict) -> dict:
        first = bar(foo(inputs).result()).result()
        return bar(first).result()

    assert "__interrupt__" in twice.invoke({"a": ""}, thread_id="2")
    assert "__interrupt__" in twice.invoke(Command(resume="bar"), thread_id="2")
    assert twice.invoke(Command(resume="baz"), thread_id="2") == {"a": "foobarbaz"}


def test_multiple_interrupts_functional(saver: str) -> None:
    """Follows test_multiple_interrupts_functional: three interrupts between task calls; each
    task runs once in all, though the body runs four times."""
    counter = 0

    @task
    def double(x: int) -> int:
        nonlocal counter
        counter += 1
        return 2 * x

    @entrypoint(checkpointer=saver)
    def graph(state: dict) -> dict:
        values: list[Any] = []
        for idx in [1, 2, 3]:
            values.extend([double(idx).result(), interrupt({"a": "boo"})])
        return {"values": values}

    graph.invoke({}, thread_id="t")
    graph.invoke(Command(resume="a"), thread_id="t")
    graph.invoke(Command(resume="b"), thread_id="t")
    assert graph.invoke(Command(resume="c"), thread_id="t") == {"values": [2, "a", 4, "b", 6, "c"]}
    assert counter == 3


def test_task_before_interrupt_resume(saver: str) -> None:
    """Follows test_task_before_interrupt_resume: tasks defined inside the body; one asks in
    a loop, each answer resumes to the next question."""

    @entrypoint(checkpointer=saver)
    def workflow(number_of_topics: int) -> dict:
        @task
        def setup() -> int:
            return number_of_topics

        @task
        def ask(question: str) -> str:
            return interrupt(question)

        answers = [ask(f"Whats the answer for topic {i + 1}?").result() for i in range(setup().result())]
        return {"answers": answers}

    result = workflow.invoke(2, thread_id="1")
    assert [i.value for i in result["__interrupt__"]] == ["Whats the answer for topic 1?"]
    result = workflow.invoke(Command(resume="answer1"), thread_id="1")
    assert [i.value for i in result["__interrupt__"]] == ["Whats the answer for topic 2?"]
    assert workflow.invoke(Command(resume="answer2"), thread_id="1") == {"answers": ["answer1", "answer2"]}


def test_multiple_tasks_before_interrupt_resume(saver: str) -> None:
    """Follows test_multiple_tasks_before_interrupt_resume."""

    @entrypoint(checkpointer=saver)
    def workflow(inputs: dict) -> dict:
        @task
        def step_a(x: int) -> int:
            return x + 1

        @task
        def step_b(x: int) -> int:
            return x * 2

        @task
        def ask(question: str) -> str:
            return interrupt(question)

        b = step_b(step_a(inputs["x"]).result()).result()
        return {"computed": b, "answer": ask(f"Result so far is {b}. What next?").result()}

    result = workflow.invoke({"x": 5}, thread_id="1")
    assert result["__interrupt__"][0].value == "Result so far is 12. What next?"
    assert workflow.invoke(Command(resume="continue"), thread_id="1") == {"computed": 12, "answer": "continue"}


def test_sync_streaming_with_functional_api() -> None:
    """Follows test_sync_streaming_with_functional_api: a task's update is yielded when the
    task finishes, not when the entrypoint does."""
    delay = 0.05

    @task()
    def slow() -> dict:
        time.sleep(delay)
        return {"tic": time.monotonic()}

    @entrypoint()
    def graph(inputs: dict) -> list:
        return [slow().result(), slow().result()]

    arrivals = [time.monotonic() for chunk in graph.stream({}) if "slow" in chunk]
    assert len(arrivals) == 2
    assert arrivals[1] - arrivals[0] > delay * 0.8


def test_entrypoint_without_checkpointer() -> None:
    """Follows test_entrypoint_without_checkpointer: with no checkpointer, ``previous`` is
    always None, with or without a thread id."""

    @entrypoint()
    def echo(inputs: Any) -> Any:
        return inputs

    assert echo.invoke({"a": "1"}, thread_id="1") == {"a": "1"}

    @entrypoint()
    def foo(inputs: Any, *, previous: Any) -> Any:
        return {"previous": previous, "current": inputs}

    assert foo.invoke({"a": "1"}, thread_id="1") == {"current": {"a": "1"}, "previous": None}
    assert foo.invoke({"a": "1"}, thread_id="1") == {"current": {"a": "1"}, "previous": None}


def test_entrypoint_stateful(saver: str) -> None:
    """Follows test_entrypoint_stateful: ``previous`` is the last return value on the thread;
    a stream yields the return value under the entrypoint's name."""
    seen: list[Any] = []

    @entrypoint(checkpointer=saver)
    def foo(inputs: Any, *, previous: Any) -> Any:
        seen.append(previous)
        return {"previous": previous, "current": inputs}

    assert foo.invoke({"a": "1"}, thread_id="1") == {"current": {"a": "1"}, "previous": None}
    assert foo.invoke({"a": "2"}, thread_id="1") == {"current": {"a": "2"}, "previous": {"current": {"a": "1"}, "previous": None}}
    assert seen == [None, {"current": {"a": "1"}, "previous": None}]
    assert list(foo.stream({"a": "1"}, thread_id="2")) == [{"foo": {"current": {"a": "1"}, "previous": None}}]


def test_entrypoint_stateful_update_state(saver: str) -> None:
    """Follows test_entrypoint_stateful_update_state: update_state sets what the next call
    sees as ``previous``, before the first call and between calls."""
    states: list[Any] = []

    @entrypoint(checkpointer=saver)
    def foo(inputs: Any, *, previous: Any) -> Any:
        states.append(previous)
        return {"previous": previous, "current": inputs}

    foo.update_state("1", {"a": "-1"})
    assert foo.invoke({"a": "1"}, thread_id="1") == {"current": {"a": "1"}, "previous": {"a": "-1"}}
    assert foo.invoke({"a": "2"}, thread_id="1") == {
        "current": {"a": "2"},
        "previous": {"current": {"a": "1"}, "previous": {"a": "-1"}},
    }
    foo.update_state("1", {"a": "3"})
    assert list(foo.stream({"a": "1"}, thread_id="1")) == [{"foo": {"current": {"a": "1"}, "previous": {"a": "3"}}}]
    assert states == [{"a": "-1"}, {"current": {"a": "1"}, "previous": {"a": "-1"}}, {"a": "3"}]


def test_entrypoint_with_return_and_save(saver: str) -> None:
    """Follows test_entrypoint_with_return_and_save: ``entrypoint.final(value, save)``."""
    previous_: Any = "unset"

    @entrypoint(checkpointer=saver)
    def foo(msg: str, *, previous: Any) -> entrypoint.final[int, list[str]]:
        nonlocal previous_
        previous_ = previous
        previous = previous or []
        return entrypoint.final(value=len(previous), save=[*previous, msg])

    assert foo.invoke("hello", thread_id="1") == 0
    assert previous_ is None
    assert foo.invoke("goodbye", thread_id="1") == 1
    assert previous_ == ["hello"]
    assert foo.invoke("definitely", thread_id="1") == 2
    assert previous_ == ["hello", "goodbye"]


def test_named_tasks_functional() -> None:
    """Follows test_named_tasks_functional: task names from ``name=``, methods, partials and
    callable objects, in stream order."""

    class Foo:
        def foo(self, value: str) -> str:
            return value + "foo"

    f = Foo()
    foo = task(f.foo, name="custom_foo")
    other_foo = task(f.foo, name="other_foo")

    @task(name="custom_bar")
    def bar(value: str) -> str:
        return value + "|bar"

    def baz(update: str, value: str) -> str:
        return value + f"|{update}"

    baz_task = task(functools.partial(baz, "baz"))
    custom_baz_task = task(functools.partial(baz, "custom_baz"), name="custom_baz")

    class Qux:
        def __call__(self, value: str) -> str:
            return value + "|qux"

    qux_task = task(Qux(), name="qux")

    @entrypoint()
    def workflow(inputs: str) -> str:
        foo_result = foo(inputs).result()
        other_foo(inputs).result()
        out = custom_baz_task(baz_task(bar(foo_result).result()).result()).result()
        return qux_task(out).result()

    assert list(workflow.stream("", mode="updates")) == [
        {"custom_foo": "foo"},
        {"other_foo": "foo"},
        {"custom_bar": "foo|bar"},
        {"baz": "foo|bar|baz"},
        {"custom_baz": "foo|bar|baz|custom_baz"},
        {"qux": "foo|bar|baz|custom_baz|qux"},
        {"workflow": "foo|bar|baz|custom_baz|qux"},
    ]


def test_imp_exception(saver: str) -> None:
    """Follows test_imp_exception: a task's exception reaches ``.result()`` with its own type
    and can be caught there; the stream shows only the tasks that finished."""

    @task()
    def my_task(number: int) -> int:
        time.sleep(0.01)
        return number * 2

    @task()
    def task_with_exception(number: int) -> int:
        raise Exception("This is a test exception")

    @entrypoint(checkpointer=saver)
    def my_workflow(number: int) -> str:
        my_task(number).result()
        try:
            task_with_exception(number).result()
        except Exception as e:
            assert str(e) == "This is a test exception"
        my_task(number).result()
        return "done"

    assert my_workflow.invoke(1, thread_id="1") == "done"
    assert list(my_workflow.stream(1, thread_id="1")) == [{"my_task": 2}, {"my_task": 2}, {"my_workflow": "done"}]


def test_falsy_return_from_task(saver: str) -> None:
    """Follows test_falsy_return_from_task: a task returning a falsy value (False) is kept
    and not run again on resume. (LangGraph checks this on its "debug" stream mode, which we do
    not have; we count the task's runs instead.)"""
    runs = 0

    @task
    def falsy_task() -> bool:
        nonlocal runs
        runs += 1
        return False

    @entrypoint(checkpointer=saver)
    def graph(state: dict) -> dict:
        falsy_task().result()
        interrupt("test")
        return {"ok": True}

    graph.invoke({"a": 5}, thread_id="1")
    assert graph.invoke(Command(resume="123"), thread_id="1") == {"ok": True}
    assert runs == 1


def test_imp_task_async(saver: str) -> None:
    """Follows test_pregel_async.py::test_imp_task: async tasks started together run side by
    side (asyncio); awaiting a future gives the value; resuming re-runs none of them."""
    calls = 0

    @task()
    async def mapper(n: int) -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return str(n) * 2

    @entrypoint(checkpointer=saver)
    async def graph(numbers: list[int]) -> list[str]:
        futures = [mapper(i) for i in numbers]
        mapped = [await f for f in futures]
        answer = interrupt("question")
        return [m + answer for m in mapped]

    async def main() -> None:
        t0 = time.perf_counter()
        chunks = [c async for c in graph.astream([0, 1, 2], thread_id="1")]
        assert time.perf_counter() - t0 < 0.14  # three 50 ms tasks side by side, not one after another
        assert sorted(chunks[:-1], key=str) == [{"mapper": "00"}, {"mapper": "11"}, {"mapper": "22"}]
        assert "__interrupt__" in chunks[-1]
        assert await graph.ainvoke(Command(resume="a"), thread_id="1") == ["00a", "11a", "22a"]

    asyncio.run(main())
    assert calls == 3


async def test_imp_task_cancel(saver: str) -> None:
    """Follows test_pregel_async.py::test_imp_task_cancel: a cancelled task is not saved, so
    resuming runs that call again (and the body cancels it again)."""
    calls = 0
    cancels = 0

    @task()
    async def mapper(n: int) -> str:
        nonlocal calls, cancels
        calls += 1
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            cancels += 1
            raise
        return str(n) * 2

    @entrypoint(checkpointer=saver)
    async def graph(numbers: list[int]) -> list[str]:
        futures = [mapper(i) for i in numbers]
        await asyncio.sleep(0.1)
        futures.pop().cancel()
        mapped = await asyncio.gather(*futures)
        answer = interrupt("question")
        return [m + answer for m in mapped]

    chunks = [c async for c in graph.astream([0, 1], thread_id="1")]
    assert chunks[0] == {"mapper": "00"} and [i.value for i in chunks[1]["__interrupt__"]] == ["question"]
    assert len(chunks) == 2 and calls == 2 and cancels == 1
    assert await graph.ainvoke(Command(resume="answer"), thread_id="1") == ["00answer"]
    assert calls == 3 and cancels == 2


async def test_imp_sync_from_async(saver: str) -> None:
    """Follows test_pregel_async.py::test_imp_sync_from_async: a sync entrypoint and sync
    tasks, streamed with ``astream``."""

    @task()
    def foo(state: dict) -> dict:
        return {"a": state["a"] + "foo", "b": "bar"}

    @task
    def bar(a: str, b: str, c: str | None = None) -> dict:
        return {"a": a + b, "c": (c or "") + "bark"}

    @task()
    def baz(state: dict) -> dict:
        return {"a": state["a"] + "baz", "c": "something else"}

    @entrypoint(checkpointer=saver)
    def graph(state: dict) -> dict:
        foo_result = foo(state).result()
        return baz(bar(foo_result["a"], foo_result["b"]).result()).result()

    assert [c async for c in graph.astream({"a": "0"}, thread_id="1")] == [
        {"foo": {"a": "0foo", "b": "bar"}},
        {"bar": {"a": "0foobar", "c": "bark"}},
        {"baz": {"a": "0foobarbaz", "c": "something else"}},
        {"graph": {"a": "0foobarbaz", "c": "something else"}},
    ]


async def test_async_entrypoint_without_checkpointer() -> None:
    """Follows test_pregel_async.py::test_async_entrypoint_without_checkpointer."""

    @entrypoint()
    async def echo(inputs: Any) -> Any:
        return inputs

    assert await echo.ainvoke({"a": "1"}, thread_id="1") == {"a": "1"}

    @entrypoint()
    async def foo(inputs: Any, *, previous: Any) -> Any:
        return {"previous": previous, "current": inputs}

    assert await foo.ainvoke({"a": "1"}, thread_id="1") == {"current": {"a": "1"}, "previous": None}
    assert await foo.ainvoke({"a": "1"}, thread_id="1") == {"current": {"a": "1"}, "previous": None}


def _participants(saver: str) -> Any:
    @task
    async def add_participant(name: str) -> str:
        feedback = interrupt(f"Hey do you want to add {name}?")
        if feedback is False:
            return f"The user changed their mind and doesn't want to add {name}!"
        if feedback is True:
            return f"Added {name}!"
        raise ValueError("Invalid feedback")

    @entrypoint(checkpointer=saver)
    async def program(_state: Any) -> list[str]:
        first = await add_participant("James")
        second = await add_participant("Will")
        return [first, second]

    return program


async def test_handles_multiple_interrupts_from_tasks(saver: str) -> None:
    """Follows test_pregel_async.py::test_handles_multiple_interrupts_from_tasks: two tasks
    ask in turn; get_state().tasks shows the pending question on the entrypoint's task."""
    program = _participants(saver)
    result = await program.ainvoke("this is ignored", thread_id="1")
    assert [i.value for i in result["__interrupt__"]] == ["Hey do you want to add James?"]
    state = program.get_state("1")
    assert [i.value for i in state.tasks[0].interrupts] == ["Hey do you want to add James?"]
    result = await program.ainvoke(Command(resume=True), thread_id="1")
    assert [i.value for i in result["__interrupt__"]] == ["Hey do you want to add Will?"]
    assert [i.value for i in program.get_state("1").tasks[0].interrupts] == ["Hey do you want to add Will?"]
    assert await program.ainvoke(Command(resume=True), thread_id="1") == ["Added James!", "Added Will!"]


async def test_interrupts_in_tasks_surfaced_once(saver: str) -> None:
    """Follows test_pregel_async.py::test_interrupts_in_tasks_surfaced_once: each pause yields
    exactly one ``__interrupt__`` chunk."""
    program = _participants(saver)
    chunks = [c async for c in program.astream("this is ignored", thread_id="1") if "__interrupt__" in c]
    assert len(chunks) == 1
    assert [i.value for i in program.get_state("1").tasks[0].interrupts] == ["Hey do you want to add James?"]
    chunks = [c async for c in program.astream(Command(resume=True), thread_id="1") if "__interrupt__" in c]
    assert len(chunks) == 1
    assert [i.value for i in program.get_state("1").tasks[0].interrupts] == ["Hey do you want to add Will?"]
    assert await program.ainvoke(Command(resume=True), thread_id="1") == ["Added James!", "Added Will!"]


async def test_async_streaming_with_functional_api() -> None:
    """Follows test_pregel_async.py::test_async_streaming_with_functional_api: each async
    task's update arrives when it finishes."""
    delay = 0.05

    @task()
    async def slow() -> dict:
        await asyncio.sleep(delay)
        return {"tic": time.monotonic()}

    @entrypoint()
    async def graph(inputs: dict) -> list:
        return [await slow(), await slow()]

    arrivals = [time.monotonic() async for chunk in graph.astream({}) if "slow" in chunk]
    assert len(arrivals) == 2
    assert arrivals[1] - arrivals[0] > delay * 0.8
