"""Redis streams: the producer/consumer nodes and StreamTrigger against a real redis-server."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import pytest

pytest.importorskip("redis")

import redis

from agentgraph_nb import START, StateGraph
from agentgraph_nb.errors import MessageDecodeError, QueueConnectError
from agentgraph_nb.nodes import StreamTrigger, stream_add, stream_read


@pytest.fixture
def url(redis_server: Any) -> str:
    return str(redis_server.url)


@pytest.fixture
def r(url: str) -> Any:
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield client
    client.close()


def one(node: Any, state: dict[str, Any], aio: bool = False) -> dict[str, Any]:
    app = StateGraph(dict).add_node("q", node).add_edge(START, "q").compile(checkpointer=None)
    return asyncio.run(app.ainvoke(state)) if aio else app.invoke(state)


class Worker:
    """A graph whose node records each message and fails the first ``fail`` calls per message."""

    def __init__(self, fail: int = 0, r: Any = None, group: str = "g") -> None:
        self.fail = fail
        self.calls: list[Any] = []
        self.pending_during_run: list[int] = []
        self.r = r
        self.group = group
        self.lock = threading.Lock()

    def __call__(self, state: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.calls.append(state["message"])
            n = sum(1 for c in self.calls if c == state["message"])
        if self.r is not None:  # not acknowledged while the run is going
            self.pending_during_run.append(self.r.xpending("jobs", self.group)["pending"])
        if n <= self.fail:
            raise RuntimeError(f"boom {n}")
        return {"out": state["message"]["n"] * 10}

    def app(self, checkpointer: Any = "memory") -> Any:
        return StateGraph(dict).add_node("work", self).add_edge(START, "work").compile(checkpointer=checkpointer)


@pytest.mark.parametrize("aio", [False, True])
def test_add_then_read_with_and_without_a_group(url: str, r: Any, aio: bool) -> None:
    out = one(stream_add("s:{name}", {"n": "{n}", "who": "{name}"}, url=url, into="mid", aio=aio), {"name": "a", "n": 1}, aio)
    one(stream_add("s:a", "{n}", url=url, aio=aio), {"n": 2}, aio)
    assert r.xlen("s:a") == 2 and out["mid"] == r.xrange("s:a")[0][0].decode()
    got = one(stream_read("s:a", url=url, aio=aio), {}, aio)["messages"]
    assert [m["data"] for m in got] == [{"n": 1, "who": "a"}, 2] and got[0]["id"] == out["mid"]
    after = one(stream_read("s:a", url=url, after="{last}", aio=aio), {"last": out["mid"]}, aio)["messages"]
    assert [m["data"] for m in after] == [2]
    grouped = stream_read("s:a", url=url, group="g", count=1, aio=aio)
    assert [m["data"] for m in one(grouped, {}, aio)["messages"]] == [{"n": 1, "who": "a"}]
    assert [m["data"] for m in one(grouped, {}, aio)["messages"]] == [2]
    assert one(grouped, {}, aio)["messages"] == []
    assert r.xpending("s:a", "g")["pending"] == 0  # acknowledged


def test_read_of_an_undecodable_message_raises_and_acks_nothing(url: str, r: Any) -> None:
    r.xadd("s", {"data": b'{"ok": 1}'})
    bad = r.xadd("s", {"data": b"\xffnot json"}).decode()
    with pytest.raises(MessageDecodeError) as ei:
        one(stream_read("s", url=url, group="g"), {})
    e = ei.value
    assert (e.node, e.queue, e.message_id) == ("q", "s", bad)
    assert f"(message {bad})" in str(e)
    assert r.xpending("s", "g")["pending"] == 2  # neither acknowledged: nothing half done


def test_entries_of_other_producers_read_as_their_fields(url: str, r: Any) -> None:
    r.xadd("s", {"kind": "order", "total": "12"})
    assert one(stream_read("s", url=url), {})["messages"][0]["data"] == {"kind": "order", "total": "12"}


def test_trigger_runs_once_per_message_and_acks_after_the_run(url: str, r: Any) -> None:
    w = Worker(r=r)
    app = w.app()
    seen: list[Any] = []
    with StreamTrigger(app, "jobs", url=url, group="g", on_result=lambda ev, out: seen.append(out["out"])) as t:
        for n in range(3):
            r.xadd("jobs", {"data": f'{{"n": {n}}}'})
        assert t.wait(3, timeout=10)
    assert sorted(seen) == [0, 10, 20]
    assert len(w.pending_during_run) == 3 and all(p >= 1 for p in w.pending_during_run)
    assert r.xpending("jobs", "g")["pending"] == 0
    assert t.stats["succeeded"] == 3 and t.stats["failed"] == 0 and not t.running
    mid = t.results[0][0].id
    assert app.get_state(f"redis_stream:{mid}").values["message_id"] == mid  # one thread per message


def test_a_failed_run_stays_pending_and_is_retried_resuming_its_thread(url: str, r: Any) -> None:
    w = Worker(fail=1, r=r)
    app = w.app()
    with StreamTrigger(app, "jobs", url=url, group="g", retry_delay=0.05) as t:
        mid = r.xadd("jobs", {"data": '{"n": 4}'}).decode()
        assert t.wait(1, timeout=10)
    assert t.stats == {**t.stats, "runs": 2, "failed": 1, "retried": 1, "succeeded": 1, "given_up": 0}
    assert isinstance(t.failures[0][1], Exception) and "boom 1" in str(t.failures[0][1])
    assert r.xpending("jobs", "g")["pending"] == 0
    assert app.get_state(f"redis_stream:{mid}").values["out"] == 40


def test_given_up_messages_and_undecodable_ones_go_to_the_dead_letter_stream(url: str, r: Any) -> None:
    w = Worker(fail=99)
    errors: list[BaseException] = []
    t = StreamTrigger(w.app(), "jobs", url=url, group="g", max_attempts=2, retry_delay=0.01, dead_letter="jobs:dead",
                      on_error=lambda ev, exc: errors.append(exc))
    with t:
        m1 = r.xadd("jobs", {"data": '{"n": 1}'}).decode()
        m2 = r.xadd("jobs", {"data": b"\xff\xfe"}).decode()
        assert t.wait(2, timeout=10)
    assert len(w.calls) == 2  # two attempts of the first; none for the undecodable one
    dead = {d[1][b"source_id"].decode(): d[1] for d in r.xrange("jobs:dead")}
    assert sorted(dead) == sorted([m1, m2])
    assert dead[m1][b"data"] == b'{"n": 1}' and b"boom 2" in dead[m1][b"error"]
    assert b"MessageDecodeError" in dead[m2][b"error"] and dead[m2][b"data"] == b"\xff\xfe"
    dec = next(e for e in errors if isinstance(e, MessageDecodeError))
    assert dec.queue == "jobs" and dec.message_id == m2 and "jobs" in str(dec) and m2 in str(dec)
    assert t.stats["undecodable"] == 1 and t.stats["given_up"] == 2
    assert r.xpending("jobs", "g")["pending"] == 0


def test_on_restart_the_trigger_first_takes_what_its_consumer_left_pending(url: str, r: Any) -> None:
    r.xgroup_create("jobs", "g", id="0", mkstream=True)
    r.xadd("jobs", {"data": '{"n": 7}'})
    r.xreadgroup("g", "c1", {"jobs": ">"})  # delivered to c1, which then "crashed"
    assert r.xpending("jobs", "g")["pending"] == 1
    w = Worker()
    with StreamTrigger(w.app(), "jobs", url=url, group="g", consumer="c1") as t:
        assert t.wait(1, timeout=10)
    assert w.calls == [{"n": 7}] and r.xpending("jobs", "g")["pending"] == 0
    # another consumer's stale message is claimed with claim_idle
    r.xadd("jobs", {"data": '{"n": 8}'})
    r.xreadgroup("g", "c2", {"jobs": ">"})
    with StreamTrigger(w.app(), "jobs", url=url, group="g", consumer="c3", claim_idle=0) as t:
        assert t.wait(1, timeout=10)
    assert w.calls[-1] == {"n": 8}


def test_two_triggers_in_one_group_share_the_messages(url: str, r: Any) -> None:
    w = Worker()
    app = w.app(checkpointer=None)
    with StreamTrigger(app, "jobs", url=url, group="g", consumer="a", batch=1) as a, \
            StreamTrigger(app, "jobs", url=url, group="g", consumer="b", batch=1) as b:
        for n in range(20):
            r.xadd("jobs", {"data": f'{{"n": {n}}}'})
        deadline = 10.0
        import time

        t0 = time.monotonic()
        while a.stats["succeeded"] + b.stats["succeeded"] < 20 and time.monotonic() - t0 < deadline:
            time.sleep(0.02)
    assert sorted(c["n"] for c in w.calls) == list(range(20))  # each exactly once


def test_unreachable_server_fails_at_start(url: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = StreamTrigger(Worker().app(), "jobs", url=f"redis://127.0.0.1:{port}/0", group="g")
    with pytest.raises(QueueConnectError, match=f"cannot reach Redis at redis://127.0.0.1:{port}/0.*'jobs'"):
        t.start()
    assert not t.running


def test_stop_is_prompt_and_serve_runs_on_the_callers_loop(url: str, r: Any) -> None:
    w = Worker()

    async def main() -> None:
        t = StreamTrigger(w.app(), "jobs", url=url, group="g")
        task = asyncio.create_task(t.serve())
        await asyncio.sleep(0.2)
        r.xadd("jobs", {"data": '{"n": 5}'})
        for _ in range(200):
            if t.stats["succeeded"]:
                break
            await asyncio.sleep(0.02)
        t.stop()
        await asyncio.wait_for(task, 2)

    asyncio.run(main())
    assert w.calls == [{"n": 5}]


def test_the_trigger_survives_a_server_restart(url: str, r: Any, redis_server: Any) -> None:
    w = Worker()
    with StreamTrigger(w.app(), "jobs", url=url, group="g") as t:
        r.xadd("jobs", {"data": '{"n": 1}'})
        assert t.wait(1, timeout=10)
        redis_server.stop()
        import time

        time.sleep(0.8)  # the trigger's reads fail meanwhile; it keeps trying
        redis_server.start()  # empty (no persistence): the group is made again
        r2 = redis.Redis.from_url(url)
        for _ in range(100):
            try:
                r2.xadd("jobs", {"data": '{"n": 2}'})
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        assert t.wait(2, timeout=15), t.stats
        r2.close()
    assert [c["n"] for c in w.calls] == [1, 2]
    assert t.stats["source_errors"] >= 1 and t.running is False
