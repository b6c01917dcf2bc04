"""The Redis store's single-record write script (``_PUT_ONE``) on a real redis-server: a retried
write whose reply was lost is not an error, an existing id is refused, the order of a thread's
checkpoints follows their writes (also after records written by the many-record script, and
after the thread is deleted), the head check refuses a stale writer, and nothing is stored then."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentgraph_nb.checkpoint.base import CheckpointRecord, new_checkpoint_stamp
from agentgraph_nb.errors import CheckpointConflictError, CheckpointError
from tests.conftest import store_url


def _rec(thread: str, parent: str | None, step: int) -> CheckpointRecord:
    cid, created = new_checkpoint_stamp()
    return CheckpointRecord(thread_id=thread, checkpoint_id=cid, parent_id=parent, step=step, created_at=created,
                            writes=[["n", {"x": step}]], values={"x": step}, next=[], metadata={"source": "loop"})


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    from agentgraph_nb.checkpoint.redis import RedisCheckpointer

    s = RedisCheckpointer(store_url("redis", request, tmp_path))
    yield s
    s.close()


def _ids(store: Any, thread: str) -> list[str]:
    return [r.checkpoint_id for r in store.list(thread)]


def test_order_retries_duplicates_and_conflicts(store: Any) -> None:
    a = _rec("t", None, 0)
    store.put(a, expected=None)
    store.put(a, expected=None)  # the same write again (a reply lost, the client retried): stored once
    assert _ids(store, "t") == [a.checkpoint_id]
    b = _rec("t", a.checkpoint_id, 1)
    store.put(b, expected=a.checkpoint_id)
    with pytest.raises(CheckpointError, match="exists") as info:
        store.put(a, expected=b.checkpoint_id)  # an id the thread has, not its newest
    assert not isinstance(info.value, CheckpointConflictError)
    stale = _rec("t", a.checkpoint_id, 1)
    with pytest.raises(CheckpointConflictError) as conflict:
        store.put(stale, expected=a.checkpoint_id)
    assert conflict.value.actual == b.checkpoint_id and "'t'" in str(conflict.value)
    fork = _rec("t", a.checkpoint_id, 1)  # a child of an older checkpoint, written at the head
    store.put(fork, expected=b.checkpoint_id)
    assert _ids(store, "t") == [fork.checkpoint_id, b.checkpoint_id, a.checkpoint_id]
    assert store.get("t").checkpoint_id == fork.checkpoint_id
    assert stale.checkpoint_id not in _ids(store, "t")


def test_records_of_the_many_record_script_then_single_ones_keep_their_order(store: Any) -> None:
    a = _rec("m", None, 0)
    b = _rec("m", a.checkpoint_id, 1)
    store.put_many([a, b], expected=None)
    c = _rec("m", b.checkpoint_id, 2)
    store.put(c, expected=b.checkpoint_id)
    assert _ids(store, "m") == [c.checkpoint_id, b.checkpoint_id, a.checkpoint_id]
    assert "m" in store.list_threads()
    store.delete_thread("m")
    assert store.get("m") is None and "m" not in store.list_threads()
    d = _rec("m", None, 0)
    store.put(d, expected=None)
    e = _rec("m", d.checkpoint_id, 1)
    store.put(e, expected=d.checkpoint_id)
    assert _ids(store, "m") == [e.checkpoint_id, d.checkpoint_id] and "m" in store.list_threads()


def test_threads_are_listed_in_order_of_creation(store: Any) -> None:
    for t in ("first", "second", "third"):
        store.put(_rec(t, None, 0), expected=None)
    store.put(_rec("first", store.get("first").checkpoint_id, 1), expected=store.get("first").checkpoint_id)
    assert [t for t in store.list_threads() if t in ("first", "second", "third")] == ["first", "second", "third"]
