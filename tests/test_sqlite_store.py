"""The SQLite checkpoint store, on real files: storage methods, concurrency, and damaged files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import operator
import os
import pathlib
import pickle
import sqlite3
import subprocess
import sys
import textwrap
import threading
from typing import Annotated, Any, TypedDict

import msgpack
import pytest

from agentgraph_nb import END, START, StateGraph, interrupt
from agentgraph_nb.checkpoint import (
    BaseCheckpointer,
    CheckpointRecord,
    MemoryCheckpointer,
    PendingWrite,
    new_checkpoint_id,
    open_checkpointer,
)
from agentgraph_nb.checkpoint.serde import Serializer
from agentgraph_nb.checkpoint.sqlite import SCHEMA_VERSION, SqliteCheckpointer
from agentgraph_nb.errors import CheckpointError, GraphValidationError


def rec(
    thread: str,
    parent: str | None,
    step: int,
    *,
    values: dict[str, Any] | None = None,
    source: str = "loop",
    **kw: Any,
) -> CheckpointRecord:
    return CheckpointRecord(
        thread_id=thread,
        checkpoint_id=new_checkpoint_id(),
        parent_id=parent,
        step=step,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(),
        writes=[["node", {"n": step}]],
        values=values,
        next=[["node", None]],
        metadata={"source": source, "step": step},
        **kw,
    )


def build_thread(
    store: BaseCheckpointer, thread: str, n: int, *, snapshot_every: int = 32, nowait: bool = False
) -> list[CheckpointRecord]:
    """A linear thread of ``n`` records; full values every ``snapshot_every`` steps."""
    out: list[CheckpointRecord] = []
    parent = None
    for i in range(n):
        r = rec(thread, parent, i, values={"n": i} if i % snapshot_every == 0 else None)
        (store.put_nowait if nowait else store.put)(r)
        out.append(r)
        parent = r.checkpoint_id
    return out


@pytest.fixture
def db(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "checkpoints.db"


@pytest.fixture
def store(db: pathlib.Path) -> Any:
    s = SqliteCheckpointer(db)
    yield s
    s.close()


# -- storage methods ----------------------------------------------------------------------------


def test_put_get_roundtrip_of_every_field(store: SqliteCheckpointer) -> None:
    r = CheckpointRecord(
        thread_id="t",
        checkpoint_id=new_checkpoint_id(),
        parent_id=None,
        step=0,
        created_at="2024-01-01T00:00:00+00:00",
        writes=[["__input__", {"q": "hello", "when": dt.datetime(2024, 1, 1), "pair": (1, 2)}]],
        values={"q": "hello", "tags": {"a", "b"}, "big": 2**80},
        next=[["plan", None], ["map", {"doc": 1}]],
        barriers={"join:c": ["a"]},
        interrupts=[{"value": "ok?", "id": "i1", "node": "plan", "when": "before"}],
        resume={"i1": True, "task:0": ["x"]},
        metadata={"source": "input", "run_id": "r1"},
    )
    store.put(r)
    assert store.get("t", r.checkpoint_id) == r
    assert store.get("t") == r
    assert store.get_chain("t") == [r]


def test_unknown_thread_or_checkpoint(store: SqliteCheckpointer) -> None:
    assert store.get("nope") is None
    assert list(store.list("nope")) == []
    assert store.get_chain("nope") == []
    build_thread(store, "t", 3)
    assert store.get("t", "missing") is None
    assert store.get_chain("t", "missing") == []
    assert store.get("nope") is None
    store.delete_thread("nope")  # no error


def test_list_newest_first_with_before_limit_and_filter(store: SqliteCheckpointer) -> None:
    recs = build_thread(store, "t", 150)  # more than one page of the listing query
    ids = [r.checkpoint_id for r in recs]
    assert [r.checkpoint_id for r in store.list("t")] == ids[::-1]
    assert [r.step for r in store.list("t", limit=3)] == [149, 148, 147]
    assert [r.step for r in store.list("t", before=ids[100], limit=2)] == [99, 98]
    assert [r.step for r in store.list("t", before=ids[0])] == []
    assert list(store.list("t", limit=0)) == []
    assert [r.step for r in store.list("t", metadata_filter={"step": 7})] == [7]
    assert [r.step for r in store.list("t", metadata_filter={"source": "loop"}, limit=70)][-1] == 80
    assert list(store.list("t", metadata_filter={"source": "fork"})) == []
    assert next(store.list("t", metadata_filter={"absent": None}, limit=1)).step == 149


def test_behaves_like_the_memory_store(store: SqliteCheckpointer) -> None:
    mem = MemoryCheckpointer()
    records = []
    for t in ("a", "b"):
        parent = None
        for i in range(40):
            r = rec(
                t,
                parent,
                i,
                values={"i": i} if i % 8 == 0 else None,
                source="update" if i % 5 == 0 else "loop",
            )
            records.append(r)
            parent = r.checkpoint_id if i != 20 else records[-5].checkpoint_id  # a fork
    for r in records:
        mem.put(r)
        store.put(r)
    pw = [PendingWrite(0, "node", {"x": (1,)}, [["next", None]])]
    for s in (mem, store):
        s.put_writes("a", records[3].checkpoint_id, pw)
        s.put_writes("a", records[3].checkpoint_id, pw)
    for t in ("a", "b"):
        for kw in (
            {},
            {"limit": 5},
            {"before": records[30].checkpoint_id},
            {"metadata_filter": {"source": "update"}},
        ):
            assert list(store.list(t, **kw)) == list(mem.list(t, **kw)), kw
        for r in records:
            if r.thread_id == t:
                assert store.get(t, r.checkpoint_id) == mem.get(t, r.checkpoint_id)
                assert store.get_chain(t, r.checkpoint_id) == mem.get_chain(t, r.checkpoint_id)
                assert store.get_chain(t, r.checkpoint_id) == BaseCheckpointer.get_chain(
                    store, t, r.checkpoint_id
                )
        assert store.get(t) == mem.get(t)
    assert store.list_threads() == mem.list_threads() == ["a", "b"]
    for s in (mem, store):
        s.delete_thread("a")
    assert store.list_threads() == mem.list_threads() == ["b"]


def test_get_chain_stops_at_the_nearest_snapshot(store: SqliteCheckpointer) -> None:
    recs = build_thread(store, "t", 1000, snapshot_every=32, nowait=True)
    store.flush()
    chain = store.get_chain("t")
    assert [r.step for r in chain] == list(range(992, 1000))
    assert chain[0].values == {"n": 992} and all(r.values is None for r in chain[1:])
    assert [r.step for r in store.get_chain("t", recs[991].checkpoint_id)] == list(range(960, 992))
    assert [r.step for r in store.get_chain("t", recs[64].checkpoint_id)] == [64]
    # a branch forked from step 500 follows parent links, not insertion order
    fork = rec("t", recs[500].checkpoint_id, 501, source="fork")
    store.put(fork)
    assert [r.checkpoint_id for r in store.get_chain("t")] == [
        *(r.checkpoint_id for r in recs[480:501]),
        fork.checkpoint_id,
    ]
    # a first record without values ends the chain too
    orphan = rec("u", None, 0)
    child = rec("u", orphan.checkpoint_id, 1)
    store.put_many([orphan, child])
    assert store.get_chain("u") == [orphan, child]


def test_pending_writes(store: SqliteCheckpointer) -> None:
    recs = build_thread(store, "t", 3)
    cid = recs[1].checkpoint_id
    store.put_writes("t", cid, [PendingWrite(0, "a", {"x": 1}, [])])
    store.put_writes("t", cid, [PendingWrite(1, "b", None, [["c", {"arg": (1,)}]])])
    expected = [
        PendingWrite(0, "a", {"x": 1}, []),
        PendingWrite(1, "b", None, [["c", {"arg": (1,)}]]),
    ]
    assert store.get("t", cid).pending_writes == expected  # type: ignore[union-attr]
    assert [r.pending_writes for r in store.list("t")] == [[], expected, []]
    assert store.get_chain("t", recs[2].checkpoint_id)[1].pending_writes == expected
    with pytest.raises(KeyError, match="no checkpoint"):
        store.put_writes("t", "missing", [PendingWrite(0, "a", {}, [])])
    store.delete_thread("t")
    with sqlite3.connect(store.path) as raw:
        assert raw.execute("SELECT COUNT(*) FROM writes").fetchone() == (0,)


def test_delete_thread_removes_only_that_thread(store: SqliteCheckpointer) -> None:
    a = build_thread(store, "a", 5)
    build_thread(store, "b", 5)
    store.put_writes("a", a[0].checkpoint_id, [PendingWrite(0, "n", {}, [])])
    store.delete_thread("a")
    assert store.get("a") is None and list(store.list("a")) == []
    assert len(list(store.list("b"))) == 5
    assert store.list_threads() == ["b"]


def test_put_nowait_flush_and_read_your_writes(store: SqliteCheckpointer) -> None:
    recs = build_thread(store, "t", 2000, nowait=True)
    assert store.get("t") == recs[-1]  # reads wait for queued writes
    store.flush()
    assert len(list(store.list("t"))) == 2000
    later = rec("t", recs[-1].checkpoint_id, 2000)
    store.put_nowait(later)
    store.put(rec("t", later.checkpoint_id, 2001))  # a sync put after queued ones keeps order
    assert [r.step for r in store.list("t", limit=2)] == [2001, 2000]


def test_put_many_is_one_transaction(store: SqliteCheckpointer) -> None:
    recs = [rec("t", None, i) for i in range(100)]
    store.put_many(recs)
    assert [r.checkpoint_id for r in store.list("t")] == [r.checkpoint_id for r in reversed(recs)]
    store.put_many([])


def test_duplicate_id_is_refused_and_others_kept(store: SqliteCheckpointer) -> None:
    first = rec("t", None, 0)
    store.put(first)
    dupe = dataclasses.replace(first, step=99)
    with pytest.raises(CheckpointError, match="already exists"):
        store.put(dupe)
    assert store.get("t", first.checkpoint_id) == first
    other = rec("t", None, 1)
    store.put_nowait(dupe)
    store.put_nowait(other)
    with pytest.raises(CheckpointError, match="already exists"):
        store.flush()
    assert store.get("t", other.checkpoint_id) == other
    store.flush()  # the error is reported once


def test_value_that_cannot_be_stored_names_node_and_key_path(store: SqliteCheckpointer) -> None:
    class Foo:
        pass

    r = rec("t", None, 1)
    r.writes = [["search", {"docs": [1, {"meta": Foo()}]}]]
    for put in (store.put, store.put_nowait):
        with pytest.raises(CheckpointError) as info:
            put(r)
        msg = str(info.value)
        assert msg.startswith("cannot store the checkpoint of thread 't' at step 1: ")
        assert 'node \'search\' wrote state["docs"][1]["meta"]: cannot store object of type' in msg
        assert "Foo" in msg and "register" in msg
    r2 = rec("t", None, 2, values={"x": Foo()})
    with pytest.raises(CheckpointError, match=r'at step 2: state\["x"\]: cannot store'):
        store.put(r2)
    assert store.get("t") is None


def test_registered_classes_and_custom_serializer(db: pathlib.Path) -> None:
    @dataclasses.dataclass
    class Doc:
        text: str

    ser = Serializer()
    ser.register(Doc, name="Doc")
    with SqliteCheckpointer(db, serializer=ser) as s:
        s.put(rec("t", None, 0, values={"docs": [Doc("a")]}))
    with (
        SqliteCheckpointer(db, serializer=Serializer()) as s,
        pytest.raises(CheckpointError, match=r"'Doc'.*not registered"),
    ):
        s.get("t")
    with SqliteCheckpointer(db, serializer=ser) as s:
        assert s.get("t").values == {"docs": [Doc("a")]}  # type: ignore[union-attr]


def test_reopen_after_close_sees_everything(db: pathlib.Path) -> None:
    s = SqliteCheckpointer(db, snapshot_every=8, durability="sync")
    assert (s.snapshot_every, s.durability) == (8, "sync")
    a = build_thread(s, "a", 50, nowait=True)
    s.put_writes("a", a[10].checkpoint_id, [PendingWrite(0, "n", {"k": 1}, [])])
    build_thread(s, "b", 10)
    s.close()
    s.close()  # idempotent
    with pytest.raises(CheckpointError, match="closed"):
        s.get("a")
    with pytest.raises(CheckpointError, match="closed"):
        s.put_nowait(rec("a", None, 0))
    with SqliteCheckpointer(db) as s2:
        assert [r.checkpoint_id for r in s2.list("a")] == [r.checkpoint_id for r in reversed(a)]
        assert s2.get("a", a[10].checkpoint_id).pending_writes == [  # type: ignore[union-attr]
            PendingWrite(0, "n", {"k": 1}, [])
        ]  # type: ignore[union-attr]
        assert s2.list_threads() == ["a", "b"]


def test_unflushed_records_are_written_at_exit(db: pathlib.Path) -> None:
    code = f"""
from agentgraph_nb.checkpoint import CheckpointRecord, new_checkpoint_id
from agentgraph_nb.checkpoint.sqlite import SqliteCheckpointer
s = SqliteCheckpointer({str(db)!r})
for i in range(500):
    s.put_nowait(CheckpointRecord("t", new_checkpoint_id(), None, i, "now", [], {{"i": i}}, []))
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    with SqliteCheckpointer(db) as s:
        assert len(list(s.list("t"))) == 500


def test_idle_writer_stops_and_restarts(db: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc
    import time
    import weakref

    from agentgraph_nb.checkpoint import sqlite as sqlite_mod

    monkeypatch.setattr(sqlite_mod, "_IDLE", 0.05)
    s = SqliteCheckpointer(db)
    build_thread(s, "t", 10, nowait=True)
    s.flush()
    deadline = time.monotonic() + 5
    while s._writer is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert s._writer is None  # no thread kept for an idle store
    build_thread(s, "u", 10, nowait=True)
    assert len(list(s.list("u"))) == 10
    deadline = time.monotonic() + 5
    while s._writer is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    ref = weakref.ref(s)
    del s
    gc.collect()
    assert ref() is None  # a forgotten store (a re-run notebook cell) is not kept alive


def test_missing_directory(tmp_path: pathlib.Path) -> None:
    with pytest.raises(CheckpointError, match=r"cannot be opened.*directory exists"):
        SqliteCheckpointer(tmp_path / "no" / "such" / "dir.db")


def test_in_memory_database() -> None:
    with SqliteCheckpointer(":memory:") as s:
        recs = build_thread(s, "t", 40, snapshot_every=8, nowait=True)
        assert [r.step for r in s.get_chain("t")] == list(range(32, 40))
        assert s.get("t") == recs[-1]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="snapshot_every"):
        SqliteCheckpointer(":memory:", snapshot_every=0)
    with pytest.raises(ValueError, match="durability"):
        SqliteCheckpointer(":memory:", durability="later")  # type: ignore[arg-type]


# -- concurrency --------------------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import os, sys, time
    from agentgraph_nb.checkpoint import CheckpointRecord, new_checkpoint_id
    from agentgraph_nb.checkpoint.sqlite import SqliteCheckpointer
    path, thread, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    while not os.path.exists(go):
        time.sleep(0.001)
    s = SqliteCheckpointer(path)
    parent = None
    for i in range(n):
        r = CheckpointRecord(thread, new_checkpoint_id(), parent, i, "now", [["n", {"i": i}]],
                             {"i": i} if i % 32 == 0 else None, [])
        if i % 10 == 0:
            s.put(r)
        else:
            s.put_nowait(r)
        parent = r.checkpoint_id
    s.close()
    """
)


def test_two_writer_processes_lose_nothing(db: pathlib.Path, tmp_path: pathlib.Path) -> None:
    go = tmp_path / "go"
    n = 1500
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(db), f"p{i}", str(n), str(go)])
        for i in range(2)
    ]
    go.touch()  # both open the new file and write at the same time
    for p in procs:
        assert p.wait(timeout=240) == 0
    with SqliteCheckpointer(db) as s:
        assert sorted(s.list_threads()) == ["p0", "p1"]
        for t in ("p0", "p1"):
            steps = [r.step for r in s.list(t)]
            assert steps == list(range(n - 1, -1, -1))
            assert [r.step for r in s.get_chain(t)] == list(range(1472, n))


def test_threads_share_one_store(store: SqliteCheckpointer) -> None:
    errors: list[BaseException] = []

    def work(t: str) -> None:
        try:
            build_thread(store, t, 300, nowait=t.endswith("0"))
            for r in store.list(t, limit=5):
                assert r.thread_id == t
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    store.flush()
    assert sorted(store.list_threads()) == [f"t{i}" for i in range(6)]
    assert all(len(list(store.list(f"t{i}"))) == 300 for i in range(6))


_FORK_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from agentgraph_nb.checkpoint import CheckpointRecord, new_checkpoint_id
    from agentgraph_nb.checkpoint.sqlite import SqliteCheckpointer

    def build(store, thread, n, nowait=False):
        parent = None
        for i in range(n):
            r = CheckpointRecord(thread, new_checkpoint_id(), parent, i, "2026-01-01T00:00:00+00:00",
                                 [["node", {"n": i}]], {"n": i} if i == 0 else None, [["node", None]])
            (store.put_nowait if nowait else store.put)(r)
            parent = r.checkpoint_id

    store = SqliteCheckpointer(sys.argv[1])
    build(store, "parent", 3)
    pid = os.fork()  # this interpreter has one thread: no fork-with-threads warning on 3.12+
    if pid == 0:
        try:
            build(store, "child", 3, nowait=True)
            store.flush()
            os._exit(0 if len(list(store.list("parent"))) == 3 else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_uses_its_own_connection(db: pathlib.Path) -> None:
    # Forked in a fresh single-threaded interpreter: forking pytest's own (threaded) process is
    # deprecated on Python 3.12+ and warns; -W error turns any such warning into a failure.
    proc = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", _FORK_SCRIPT, str(db)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    with SqliteCheckpointer(db) as store:
        assert [r.step for r in store.list("child")] == [2, 1, 0]
        assert [r.step for r in store.list("parent")] == [2, 1, 0]


# -- damaged, foreign, locked and full files ----------------------------------------------------


def _make_store_file(db: pathlib.Path) -> bytes:
    with SqliteCheckpointer(db) as s:
        build_thread(s, "t", 20)
    return db.read_bytes()


def test_not_a_sqlite_file(db: pathlib.Path) -> None:
    db.write_bytes(b"these are my notes, not a database\n" * 10)
    before = db.read_bytes()
    with pytest.raises(
        CheckpointError, match=r"checkpoints\.db is not a SQLite database.*not modified"
    ):
        SqliteCheckpointer(db)
    assert db.read_bytes() == before


def test_foreign_sqlite_database(db: pathlib.Path) -> None:
    with sqlite3.connect(db) as raw:
        raw.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        raw.execute("CREATE TABLE meta (k, v)")
        raw.execute("INSERT INTO users (name) VALUES ('ada')")
    raw.close()
    before = db.read_bytes()
    with pytest.raises(
        CheckpointError, match=r"another application \(tables: meta, users\).*not modified"
    ) as info:
        SqliteCheckpointer(db)
    assert str(db) in str(info.value)
    assert db.read_bytes() == before
    assert not pathlib.Path(f"{db}-wal").exists()  # the journal mode was not switched


def test_corrupt_files(db: pathlib.Path, tmp_path: pathlib.Path) -> None:
    _make_store_file(db)
    with sqlite3.connect(db) as raw:
        page_size = raw.execute("PRAGMA page_size").fetchone()[0]
        root = raw.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'checkpoints'"
        ).fetchone()[0]
    raw.close()
    good = db.read_bytes()
    garbage = bytes((i * 7 + 3) % 256 for i in range(page_size))
    damaged = {
        "page1": good[:100] + b"\xff" * (page_size - 100) + good[page_size:],
        "table": good[: (root - 1) * page_size] + garbage + good[root * page_size :],
        "truncated": good[: len(good) // 2 + 7],
    }
    for name, data in damaged.items():
        path = tmp_path / f"{name}.db"
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match=r"corrupt|damaged|malformed") as info:
            with SqliteCheckpointer(path) as s:
                list(s.list("t"))
                s.get_chain("t")
        assert str(path) in str(info.value), name
        assert path.read_bytes() == data, name


def test_newer_schema_version_is_refused(db: pathlib.Path) -> None:
    _make_store_file(db)
    with sqlite3.connect(db) as raw:
        raw.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    raw.close()
    before = db.read_bytes()
    with pytest.raises(
        CheckpointError, match=r"written by a newer agentgraph_nb.*Upgrade agentgraph_nb"
    ) as info:
        SqliteCheckpointer(db)
    assert str(db) in str(info.value)
    assert db.read_bytes() == before


def test_locked_database_times_out_with_a_clear_error(db: pathlib.Path) -> None:
    _make_store_file(db)
    s = SqliteCheckpointer(db, timeout=0.2)
    assert len(list(s.list("t"))) == 20
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        before = db.read_bytes()
        with pytest.raises(
            CheckpointError, match=r"locked by another connection.*0\.2 s.*timeout="
        ) as info:
            s.put(rec("t", None, 99))
        assert str(db) in str(info.value)
        s.put_nowait(rec("t", None, 100))
        with pytest.raises(CheckpointError, match="locked"):
            s.flush()
        with pytest.raises(CheckpointError, match="locked"):
            s.delete_thread("t")
        assert len(list(s.list("t"))) == 20  # readers are not blocked (WAL)
        assert db.read_bytes() == before
    finally:
        other.execute("ROLLBACK")
        other.close()
    s.put(rec("t", None, 101))
    assert s.get("t").step == 101  # type: ignore[union-attr]
    s.close()


class _TinyDisk(SqliteCheckpointer):
    """SQLite reports "database or disk is full" once the file would grow."""

    def _connect(self) -> sqlite3.Connection:
        conn = super()._connect()
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {max(pages, 8)}")
        return conn


def test_full_disk_is_a_checkpoint_error_and_keeps_earlier_data(db: pathlib.Path) -> None:
    _make_store_file(db)
    before = db.read_bytes()
    s = _TinyDisk(db)
    big = rec("t", None, 99, values={"blob": b"x" * 200_000})
    with pytest.raises(
        CheckpointError, match=r"disk is full.*earlier checkpoints are intact"
    ) as info:
        s.put(big)
    assert str(db) in str(info.value)
    s.put_nowait(big)
    with pytest.raises(CheckpointError, match="disk is full"):
        s.flush()
    assert [r.step for r in s.list("t", limit=1)] == [19]
    s.close()
    assert db.read_bytes() == before


def test_os_level_disk_full_maps_to_checkpoint_error(store: SqliteCheckpointer) -> None:
    err = store._error(OSError(errno.ENOSPC, "No space left on device"), "store checkpoints")
    assert isinstance(err, CheckpointError) and "disk is full" in str(err)
    err = store._error(sqlite3.OperationalError("database or disk is full"), "store checkpoints")
    assert "disk is full" in str(err) and store.path in str(err)


def test_tampered_pickle_in_a_store_runs_nothing(db: pathlib.Path, tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> Any:
            return (os.system, (f"touch {marker}",))

    _make_store_file(db)
    evil = msgpack.packb(
        [[], {"x": msgpack.ExtType(0, pickle.dumps(Evil()))}, [], {}, [], {}], use_bin_type=True
    )
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE checkpoints SET payload = ? WHERE step = 19", (evil,))
        (first,) = raw.execute("SELECT checkpoint_id FROM checkpoints WHERE step = 0").fetchone()
    raw.close()
    with SqliteCheckpointer(db) as s:
        with pytest.raises(CheckpointError, match="refusing to read pickled data") as info:
            s.get("t")
        assert "thread 't'" in str(info.value) and str(db) in str(info.value)
        with pytest.raises(CheckpointError, match="refusing to read pickled data"):
            list(s.list("t"))
        with pytest.raises(CheckpointError, match="refusing to read pickled data"):
            s.get_chain("t")
        assert s.get("t", first).step == 0  # type: ignore[union-attr]  # the rest is readable
    assert not marker.exists()


# -- open_checkpointer --------------------------------------------------------------------------


def test_open_checkpointer_specs(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert isinstance(open_checkpointer(None), MemoryCheckpointer)
    assert isinstance(open_checkpointer("memory"), MemoryCheckpointer)
    mem = MemoryCheckpointer()
    assert open_checkpointer(mem) is mem
    with open_checkpointer("sqlite:///rel/../runs.db") as s:
        assert isinstance(s, SqliteCheckpointer) and s.path == str(tmp_path / "runs.db")
    absolute = tmp_path / "abs dir"
    absolute.mkdir()
    with open_checkpointer(
        f"sqlite:///{absolute}/x.db?snapshot_every=4&durability=sync&timeout=2"
    ) as s:
        assert isinstance(s, SqliteCheckpointer)
        assert (s.path, s.snapshot_every, s.durability, s.timeout) == (
            str(absolute / "x.db"),
            4,
            "sync",
            2.0,
        )
    for spec in ("sqlite://:memory:", "sqlite:///:memory:", "sqlite://"):
        with open_checkpointer(spec) as s:
            assert isinstance(s, SqliteCheckpointer) and s.in_memory
    with open_checkpointer(tmp_path / "p.db") as s:
        assert isinstance(s, SqliteCheckpointer)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (
            "mongodb://localhost",
            r"unknown checkpointer 'mongodb://localhost'\. The 'mongodb' scheme is not supported.*Supported: None or "
            r"'memory'.*sqlite:///.*postgresql://.*redis://",
        ),
        (
            "postgress://localhost/db",
            r"The 'postgress' scheme is not supported\. Did you mean 'postgresql'\?",
        ),
        ("runs.db", r"Did you mean 'sqlite:///runs\.db'\?"),
        ("memroy", r"Did you mean 'memory'\?"),
        ("sqlit:///x.db", r"Did you mean 'sqlite'\?"),
        ("sqlite://runs.db", r"three slashes.*Did you mean 'sqlite:///runs\.db'\?"),
        ("sqlite:runs.db", r"not a SQLite URL"),
        (
            "sqlite:///x.db?snapshot=3",
            r"unknown option 'snapshot'.*Did you mean 'snapshot_every'\?",
        ),
        ("sqlite:///x.db?timeout=soon", r"timeout='soon' is not a valid float"),
        ("sqlite:///x.db?durability=never", r"durability must be"),
        (42, r"not supported \(a int\)"),
    ],
)
def test_open_checkpointer_rejects_unknown_specs(
    spec: Any, match: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GraphValidationError, match=match) as info:
        open_checkpointer(spec)
    assert not isinstance(info.value, CheckpointError)
    assert isinstance(info.value, ValueError)


def test_package_import_does_not_load_sqlite_or_the_serializer() -> None:
    code = (
        "import sys, agentgraph_nb, agentgraph_nb.checkpoint as c\n"
        "bad = [m for m in ('agentgraph_nb.checkpoint.sqlite', 'agentgraph_nb.checkpoint.serde') if m in sys.modules]\n"
        "assert not bad, bad\n"
        "assert c.SqliteCheckpointer.__name__ == 'SqliteCheckpointer'\n"
        "assert 'agentgraph_nb.checkpoint.sqlite' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_checkpoint_stamps_sort_by_time_and_carry_it_in_iso_8601() -> None:
    import datetime as dt
    import time as _time

    from agentgraph_nb.checkpoint.base import new_checkpoint_stamp

    stamps = []
    for _ in range(2000):
        stamps.append(new_checkpoint_stamp())
        if len(stamps) % 500 == 0:
            _time.sleep(0.3)  # cross second boundaries (the formatted second is cached)
    ids = [cid for cid, _ in stamps]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for cid, created in stamps:
        when = dt.datetime.fromisoformat(created)
        assert when.tzinfo is not None and when.utcoffset() == dt.timedelta(0)
        ns = int(cid.split("-")[0], 16)
        assert abs(when.timestamp() * 1e9 - ns) < 2_000  # the same clock reading, to the microsecond


# -- what is written can be read by any process; damaged rows are named errors -------------------

_DEEP_APP = """
import dataclasses, sys, threading
from typing import Any, Optional, TypedDict
from agentgraph_nb import END, START, StateGraph

@dataclasses.dataclass
class Link:
    value: int
    next: Optional["Link"] = None

class State(TypedDict, total=False):
    kind: str
    depth: int
    deep: Any
    link: Optional[Link]  # so that the engine registers Link

def nest(kind, depth):
    v = None
    for i in range(depth):
        v = Link(i, v) if kind == "links" else (v,)
    return v

def depth_of(v):
    n = 0
    while isinstance(v, (tuple, Link)):
        v, n = (v[0] if type(v) is tuple else v.next), n + 1
    return n

g = StateGraph(State, name="deep")
g.add_node("build", lambda s: {"deep": nest(s["kind"], s["depth"])})
g.add_edge(START, "build")
g.add_edge("build", END)
app = g.compile(checkpointer="sqlite:///" + sys.argv[1])

def report(thread, what, fn):
    try:
        print(thread, what, "ok", fn(), flush=True)
    except Exception as exc:
        print(thread, what, type(exc).__name__, exc, flush=True)

def main():
    for thread in sys.argv[3:]:
        if sys.argv[2] == "write":
            kind, depth = thread.split(":")
            report(thread, "invoke", lambda: depth_of(
                app.invoke({"kind": kind, "depth": int(depth)}, thread_id=thread)["deep"]))
        else:
            report(thread, "get_state", lambda: depth_of(app.get_state(thread).values.get("deep")))
            report(thread, "history", lambda: len(app.get_state_history(thread)))
            report(thread, "resume", lambda: depth_of(app.invoke(None, thread_id=thread).get("deep")))

threading.stack_size(1 << 20)  # a 1 MB thread stack, as on musl or Windows
t = threading.Thread(target=main)
t.start()
t.join()
"""


def _deep_app(db: pathlib.Path, mode: str, *threads: str) -> dict[tuple[str, str], str]:
    proc = subprocess.run(
        [sys.executable, "-c", _DEEP_APP, str(db), mode, *threads],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (mode, proc.returncode, proc.stdout, proc.stderr[-3000:])
    out = {}
    for line in proc.stdout.splitlines():
        thread, what, result = line.split(" ", 2)
        out[thread, what] = result
    return out


def test_deep_values_are_refused_on_write_and_never_crash_a_reading_process(
    db: pathlib.Path,
) -> None:
    # A state 200 levels deep used to be stored, and then killed every process that read it
    # (get_state, history, resume) with SIGSEGV: each level re-entered msgpack's C unpacker.
    threads = ("tuples:200", "links:200", "tuples:100", "links:100")
    wrote = _deep_app(db, "write", *threads)
    for kind, path in (("tuples", 'state["deep"][0][0][0]'), ("links", 'state["deep"].next.next')):
        refused = wrote[f"{kind}:200", "invoke"]
        assert refused.startswith("CheckpointError cannot store the checkpoint of thread"), refused
        assert f"node 'build' wrote {path}" in refused and "more than 100 levels deep" in refused
        assert wrote[f"{kind}:100", "invoke"] == "ok 100"
    # a fresh process, reading in a thread with a 1 MB stack
    read = _deep_app(db, "read", *threads)
    for kind in ("tuples", "links"):
        assert read[f"{kind}:100", "get_state"] == "ok 100"
        assert read[f"{kind}:100", "history"] == "ok 2"
        assert read[f"{kind}:200", "get_state"] == "ok 0"  # the input checkpoint: no "deep"
        assert read[f"{kind}:200", "history"] == "ok 1"
        assert "more than 100 levels deep" in read[f"{kind}:200", "resume"]  # refused again


def test_a_handmade_deep_row_is_a_checkpoint_error_in_a_reading_process(db: pathlib.Path) -> None:
    _deep_app(db, "write", "tuples:3")
    deep = msgpack.packb("leaf")
    for _ in range(250):  # ~1 KB: 250 tuples inside one another
        deep = msgpack.packb(msgpack.ExtType(1, b"\x91" + deep))
    value = msgpack.ExtType(1, b"\x91" + deep)
    row = msgpack.packb([[["build", {"deep": value}]], {"deep": value}, [], {}, [], {}])
    with sqlite3.connect(db) as raw:
        (cid,) = raw.execute("SELECT checkpoint_id FROM checkpoints ORDER BY seq DESC").fetchone()
        raw.execute("UPDATE checkpoints SET payload = ? WHERE checkpoint_id = ?", (row, cid))
    raw.close()
    before = db.read_bytes()
    read = _deep_app(db, "read", "tuples:3")
    for what in ("get_state", "history", "resume"):
        msg = read["tuples:3", what]
        assert msg.startswith(f"CheckpointError cannot read checkpoint {cid!r} of thread "
                              f"'tuples:3' from {db}: cannot read stored data: its values nest "
                              "more than 100 levels deep"), (what, msg)
    assert db.read_bytes() == before


class PausedState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    answer: Any


def _ask(s: Any) -> Any:
    return {"answer": interrupt("ok?")}


def _paused_graph(path: pathlib.Path) -> Any:
    """``a`` fans out to ``b`` and ``ask`` (which interrupts), joined by ``join``."""
    g = StateGraph(PausedState, name="paused")
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_node("ask", _ask)
    g.add_node("join", lambda s: {"log": ["join"]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("a", "ask")
    g.add_edge(["b", "ask"], "join")
    g.add_edge("join", END)
    return g.compile(checkpointer=f"sqlite:///{path}")


def _edit_payload(index: int, value: Any) -> Any:
    def edit(raw: sqlite3.Connection, cid: str) -> None:
        (blob,) = raw.execute("SELECT payload FROM checkpoints WHERE checkpoint_id = ?", (cid,)).fetchone()
        fields = Serializer().loads(blob)
        fields[index] = value
        raw.execute("UPDATE checkpoints SET payload = ? WHERE checkpoint_id = ?",
                    (Serializer().dumps(fields), cid))
    return edit


def _edit_sql(sql: str, *args: Any) -> Any:
    def edit(raw: sqlite3.Connection, cid: str) -> None:
        raw.execute(sql, (*args, cid))
    return edit


def _edit_write(node: str, value: Any) -> Any:
    return _edit_sql("UPDATE writes SET payload = ? WHERE node = ? AND checkpoint_id = ?",
                     msgpack.packb(value), node)


_MALFORMED = {
    "payload not a list": (_edit_sql("UPDATE checkpoints SET payload = ? WHERE checkpoint_id = ?",
                                     msgpack.packb({str(i): i for i in range(6)})), "its payload is a dict"),
    "payload of 5 fields": (_edit_sql("UPDATE checkpoints SET payload = ? WHERE checkpoint_id = ?",
                                      msgpack.packb([[], {}, [], {}, []])), "its payload is a list, not the list of its 6"),
    "writes not a list": (_edit_payload(0, "b"), "writes is a str, not a list"),
    "write of 1 item": (_edit_payload(0, [["b"]]), "writes[0] is a list, not a [node, update] pair"),
    "write of a non-dict": (_edit_payload(0, [["b", 5]]), "writes[0] holds an int where the update dict"),
    "values not a dict": (_edit_payload(1, [1, 2]), "values is a list, not a dict"),
    "next not pairs": (_edit_payload(2, ["join"]), "next[0] is a str, not a [node, arg] pair"),
    "next of 3 items": (_edit_payload(2, [["join", 1, 2]]), "next[0] is a list, not a [node, arg] pair"),
    "barriers not a dict": (_edit_payload(3, [["b"]]), "barriers is a list, not a dict"),
    "barrier not names": (_edit_payload(3, {"join": "b"}), "barriers['join'] is a str, not a list"),
    "interrupts not dicts": (_edit_payload(4, [1]), "interrupts is a list, not a list of dicts"),
    "resume not a dict": (_edit_payload(5, []), "resume is a list, not a dict"),
    "metadata not a dict": (_edit_sql("UPDATE checkpoints SET metadata = ? WHERE checkpoint_id = ?",
                                      msgpack.packb([1])), "metadata is a list, not a dict"),
    "step not an int": (_edit_sql("UPDATE checkpoints SET step = 'x' WHERE checkpoint_id = ?"),
                        "step is a str, not an int"),
    "created_at not a str": (_edit_sql("UPDATE checkpoints SET created_at = X'05' WHERE checkpoint_id = ?"),
                             "created_at is a bytes, not a str"),
    "pending write not a pair": (_edit_write("b", {"log": ["b"]}),
                                 "the payload of a pending write of node 'b' is a dict, not an [update, goto]"),
    "pending update not a dict": (_edit_write("b", [["b"], []]),
                                  "pending write of node 'b': update is a list, not a dict"),
    "pending goto malformed": (_edit_write("b", [{"log": ["b"]}, "join"]),
                               "pending write of node 'b': goto is a str, not a list"),
    "interrupt without id": (_edit_write("__interrupt__", [{"value": "ok?"}, []]),
                             "pending write of node '__interrupt__': update is not a dict with an 'id'"),
    "pending task_index not an int": (_edit_sql("UPDATE writes SET task_index = 'x' WHERE checkpoint_id = ?"),
                                      "task_index is a str, not an int"),
}


@pytest.fixture(scope="module")
def paused_file(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A thread paused in a parallel step: pending writes of a node and of an interrupt."""
    path = tmp_path_factory.mktemp("paused") / "paused.db"
    app = _paused_graph(path)
    app.invoke({"log": []}, thread_id="t")
    snap = app.get_state("t")
    assert snap.interrupts and snap.pending_writes == {"b": {"log": ["b"]}}
    app.checkpointer.close()
    return path


@pytest.mark.parametrize("shape", list(_MALFORMED))
def test_malformed_rows_are_checkpoint_errors_naming_file_thread_checkpoint_and_field(
    shape: str, paused_file: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    edit, problem = _MALFORMED[shape]
    db = tmp_path / "damaged.db"
    db.write_bytes(paused_file.read_bytes())
    with sqlite3.connect(db) as raw:
        (cid,) = raw.execute("SELECT checkpoint_id FROM checkpoints ORDER BY seq DESC").fetchone()
        edit(raw, cid)
    raw.close()
    before = db.read_bytes()
    app = _paused_graph(db)
    calls = {
        "get_state": lambda: app.get_state("t"),
        "get_state_history": lambda: app.get_state_history("t"),
        "resume": lambda: app.invoke(None, thread_id="t"),
        "filtered history": lambda: app.get_state_history("t", filter={"source": "loop"}),
    }
    for name, call in calls.items():
        with pytest.raises(CheckpointError) as info:
            call()
        msg = str(info.value)
        assert msg.startswith(f"cannot read checkpoint {cid!r} of thread 't' from {db}: "), (name, msg)
        assert problem in msg, (name, msg)
    app.checkpointer.close()
    assert db.read_bytes() == before  # nothing was written


def test_list_threads_names_a_damaged_thread_id(paused_file: pathlib.Path, tmp_path: pathlib.Path) -> None:
    db = tmp_path / "damaged.db"
    db.write_bytes(paused_file.read_bytes())
    with sqlite3.connect(db) as raw:
        (cid,) = raw.execute("SELECT checkpoint_id FROM checkpoints ORDER BY seq DESC").fetchone()
        raw.execute("UPDATE checkpoints SET thread_id = X'07' WHERE checkpoint_id = ?", (cid,))
    raw.close()
    with SqliteCheckpointer(db) as s, pytest.raises(CheckpointError) as info:
        s.list_threads()
    assert str(info.value).startswith(
        f"cannot list the threads of {db}: checkpoint {cid!r} has thread id b'\\x07', a bytes, "
        "not a str"
    )
# -- damaged parent links: a cycle or a missing parent is an error, promptly ------------------------
_DAMAGE = {
    # checkpoint ids are referred to by step: 3 -> 4 means "the parent of step 3 becomes step 4"
    "two-cycle": (3, 4),
    "self-loop": (3, 3),
    "missing parent": (3, None),
}


def _damaged_thread(db: pathlib.Path, how: str) -> tuple[Any, list[str]]:
    """A 7-checkpoint thread (a snapshot at step 0 only), then its parent links edited by hand."""
    from typing import TypedDict

    from agentgraph_nb import END, START, StateGraph

    class S(TypedDict, total=False):
        i: int

    g = StateGraph(S).add_node("inc", lambda s: {"i": s["i"] + 1}).add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: "inc" if s["i"] < 6 else END, ["inc", END])
    app = g.compile(checkpointer=f"sqlite:///{db}?snapshot_every=100")
    app.invoke({"i": 0}, thread_id="t")
    ids = [s.checkpoint_id for s in reversed(app.get_state_history("t"))]
    assert len(ids) == 7
    child, parent = _DAMAGE[how]
    with sqlite3.connect(db) as raw:
        raw.execute(
            "UPDATE checkpoints SET parent_id = ? WHERE checkpoint_id = ?",
            (ids[parent] if parent is not None else "gone-0000", ids[child]),
        )
    raw.close()
    return app, ids


@pytest.mark.timeout(20)
@pytest.mark.parametrize("how", list(_DAMAGE))
def test_damaged_parent_links_are_reported_promptly(db: pathlib.Path, how: str) -> None:
    app, ids = _damaged_thread(db, how)
    store = app.checkpointer
    named = [ids[3]] + ([ids[4]] if how == "two-cycle" else ["gone-0000"] if how == "missing parent" else [])
    reads = {
        "get_chain (newest)": lambda: store.get_chain("t"),
        "get_chain (by id)": lambda: store.get_chain("t", ids[5]),
        "get_state": lambda: app.get_state("t"),
        "get_state (by id)": lambda: app.get_state("t", ids[6]),
        "get_state_history": lambda: app.get_state_history("t"),
        "invoke(None)": lambda: app.invoke(None, thread_id="t"),
        "update_state": lambda: app.update_state("t", {"i": 0}),
    }
    for what, read in reads.items():
        with pytest.raises(CheckpointError) as info:
            read()
        msg = str(info.value)
        assert "'t'" in msg and str(db) in msg, (what, msg)
        assert all(cid in msg for cid in named), (what, msg)
        assert ("cycle" if how != "missing parent" else "missing") in msg, (what, msg)
    # checkpoints before the damage still read (they have a snapshot on their way)
    assert app.get_state("t", ids[2]).values == {"i": 2}
    assert [r.checkpoint_id for r in store.get_chain("t", ids[2])] == ids[:3]
    store.close()


@pytest.mark.timeout(20)
def test_memory_store_cycles_and_missing_parents_are_reported() -> None:
    from typing import TypedDict

    from agentgraph_nb import START, StateGraph

    class S(TypedDict, total=False):
        i: int

    mem = MemoryCheckpointer()
    recs = [rec("t", None, 0, values={"n": 0})]
    for i in range(1, 5):
        recs.append(rec("t", recs[-1].checkpoint_id, i))
    for r in recs:
        mem.put(r)
    app = StateGraph(S).add_node("n", lambda s: None).add_edge(START, "n").compile(checkpointer=mem)
    ids = [r.checkpoint_id for r in recs]
    recs[2].parent_id = ids[3]  # 4 -> 3 -> 2 -> 3 -> ...
    for read in (lambda: mem.get_chain("t"), lambda: BaseCheckpointer.get_chain(mem, "t", ids[3])):
        with pytest.raises(CheckpointError, match="cycle") as info:
            read()
        assert ids[2] in str(info.value) and ids[3] in str(info.value) and "'t'" in str(info.value)
    recs[2].parent_id = "gone"
    with pytest.raises(CheckpointError, match=rf"missing.*{ids[2]}|{ids[2]}.*missing"):
        mem.get_chain("t")
    # a cycle between checkpoints that all hold values: no chain to rebuild, but the history's
    # walks (branches, the debugger) would never end
    recs[2].parent_id = ids[1]
    for r in recs[1:]:
        r.values = {"n": r.step}
    assert app.get_state("t").values == {"n": 4}
    recs[1].parent_id = ids[4]
    with pytest.raises(CheckpointError, match="cycle"):
        app.get_state_history("t")
