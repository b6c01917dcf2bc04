"""Checkpoints at rest: zstd compression and AES-GCM encryption (Serializer(compression=, keys=,
active_key=)) on the SQLite file and real PostgreSQL and Redis servers: nothing of the state is
readable in the stored bytes, a wrong or missing key is a CheckpointError naming the key id, the
store and the thread, keys rotate (store.reencrypt()), and a record moved elsewhere is refused."""

from __future__ import annotations

import operator
import os
import sqlite3
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import END, START, Command, StateGraph, interrupt
from agentgraph_nb.checkpoint.serde import Serializer
from agentgraph_nb.errors import CheckpointError
from tests.conftest import store_url

pytest.importorskip("zstandard")
pytest.importorskip("cryptography")

MARKER = "TOPSECRET-MARKER-7f3a"
K1, K2 = os.urandom(32), os.urandom(32)
KINDS = ["sqlite", "postgres", "redis"]


class S(TypedDict, total=False):
    secret: str
    log: Annotated[list[str], operator.add]
    answer: Any


def _store(kind: str, url: str, ser: Serializer) -> Any:
    if kind == "sqlite":
        from agentgraph_nb import SqliteCheckpointer

        return SqliteCheckpointer(url[len("sqlite:///"):], serializer=ser)
    if kind == "postgres":
        from agentgraph_nb.checkpoint.postgres import PostgresCheckpointer

        return PostgresCheckpointer(url, serializer=ser)
    from agentgraph_nb.checkpoint.redis import RedisCheckpointer

    return RedisCheckpointer(url, serializer=ser)


def _graph() -> StateGraph:
    """Parallel steps (one fails once: pending writes of the other), then an interrupt."""
    fails = {"n": 1}
    g = StateGraph(S, name="secret")
    g.add_node("a", lambda s: {"log": [f"a saw {s['secret']}"]})

    def b(s: dict[str, Any]) -> dict[str, Any]:
        if fails["n"]:
            fails["n"] -= 1
            raise RuntimeError("b fails once")
        return {"log": [f"b saw {s['secret']}"]}

    def ask(s: dict[str, Any]) -> dict[str, Any]:
        return {"answer": interrupt(f"{MARKER}: approve?")}

    g.add_node("b", b)
    g.add_node("ask", ask)
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    g.add_edge(["a", "b"], "ask")
    g.add_edge("ask", END)
    return g


def _run(app: Any, thread: str) -> None:
    with pytest.raises(RuntimeError, match="fails once"):
        app.invoke({"secret": MARKER * 3, "log": []}, thread_id=thread)
    app.invoke(None, thread_id=thread)  # resumes: runs b only, then stops at the interrupt
    state = app.get_state(thread)
    assert state.interrupts and MARKER in str(state.interrupts[0].value)


def _raw_bytes(kind: str, url: str, store: Any, *, rows_only: bool = False) -> bytes:
    """Every byte the store keeps, read behind its back (for SQLite: the files, or its rows)."""
    if kind == "sqlite":
        store.close()
        path = Path(url[len("sqlite:///"):])
        if rows_only:
            with sqlite3.connect(path) as conn:
                rows = conn.execute("SELECT metadata, payload FROM checkpoints").fetchall()
                rows += conn.execute("SELECT payload, payload FROM writes").fetchall()
            return b"|".join(a + b for a, b in rows)
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    if kind == "postgres":
        import psycopg

        with psycopg.connect(store._conninfo if hasattr(store, "_conninfo") else url.split("?")[0]) as conn:
            schema = store.schema
            out = b""
            for table in ("agentgraph_checkpoints", "agentgraph_writes"):
                for row in conn.execute(f'SELECT * FROM "{schema}".{table}').fetchall():
                    out += b"|".join(bytes(v) if isinstance(v, (bytes, memoryview)) else str(v).encode() for v in row)
            return out
    import redis

    client = redis.Redis.from_url(url.split("?")[0])
    out = b""
    for key in client.scan_iter(f"{store.prefix}:*"):
        kind_ = client.type(key)
        if kind_ == b"hash":
            out += b"".join(k + v for k, v in client.hgetall(key).items())
        elif kind_ == b"list":
            out += b"".join(client.lrange(key, 0, -1))
        elif kind_ == b"zset":
            out += b"".join(client.zrange(key, 0, -1))
        elif kind_ == b"string":
            out += client.get(key) or b""
    return out


@pytest.mark.parametrize("compression", [None, "zstd"])
@pytest.mark.parametrize("kind", KINDS)
def test_nothing_of_the_state_is_readable_in_the_stored_bytes(
    kind: str, compression: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # control: without keys the marker is there to be found (so the grep below can fail)
    url = store_url(kind, request, tmp_path)
    plain = _store(kind, url, Serializer())
    _run(_graph().compile(checkpointer=plain), "t")
    assert MARKER.encode() in _raw_bytes(kind, url, plain)
    plain.close()

    url = store_url(kind, request, tmp_path)
    ser = Serializer(compression=compression, keys={"k1": K1}, compression_threshold=64)
    store = _store(kind, url, ser)
    app = _graph().compile(checkpointer=store)
    _run(app, "t")
    history = app.get_state_history("t")
    assert len(history) >= 2 and any(h.values.get("log") for h in history)
    raw = _raw_bytes(kind, url, store)
    assert raw and MARKER.encode() not in raw and b"a saw" not in raw
    # another store object (another process) with the key reads it all and resumes
    again = _store(kind, url, Serializer(compression=compression, keys={"k1": K1}))
    app2 = _graph().compile(checkpointer=again)
    out = app2.invoke(Command(resume="yes"), thread_id="t")
    assert out["answer"] == "yes" and sorted(out["log"]) == [f"a saw {MARKER * 3}", f"b saw {MARKER * 3}"]
    again.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_wrong_or_missing_key_names_the_key_store_and_thread(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = store_url(kind, request, tmp_path)
    store = _store(kind, url, Serializer(keys={"k1": K1}))
    _run(_graph().compile(checkpointer=store), "t-secret")
    store.close()

    for ser, what in [
        (Serializer(keys={"k1": K2}), "key 'k1': the key is wrong"),  # same id, other key
        (Serializer(keys={"k9": K2}), "key 'k1', which this serializer does not have"),
        (Serializer(), "encrypted with key 'k1', and this serializer has no keys"),
    ]:
        other = _store(kind, url, ser)
        app = _graph().compile(checkpointer=other)
        with pytest.raises(CheckpointError) as info:
            app.get_state("t-secret")
        msg = str(info.value)
        assert what in msg and "'t-secret'" in msg and other.where if kind != "sqlite" else True
        assert (str(other.path) if kind == "sqlite" else other.where) in msg
        with pytest.raises(CheckpointError, match="k1"):
            app.invoke(Command(resume="x"), thread_id="t-secret")
        other.close()


@pytest.mark.parametrize("kind", KINDS)
def test_keys_rotate_and_reencrypt_moves_every_record_to_the_active_key(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = store_url(kind, request, tmp_path)
    old = _store(kind, url, Serializer(keys={"k1": K1}, compression="zstd", compression_threshold=16))
    _run(_graph().compile(checkpointer=old), "t1")
    _run(_graph().compile(checkpointer=old), "t2")
    old.close()

    both = Serializer(keys={"k2": K2, "k1": K1}, active_key="k2", compression="zstd", compression_threshold=16)
    rotated = _store(kind, url, both)
    app = _graph().compile(checkpointer=rotated)
    before = [h.values for h in app.get_state_history("t1")]  # old records read with the old key
    assert rotated.reencrypt("t1") > 0
    assert rotated.reencrypt("t1") == 0  # already under k2: nothing to do
    # t1 is now readable with k2 alone, t2 not yet
    only_new = _store(kind, url, Serializer(keys={"k2": K2}))
    app_new = _graph().compile(checkpointer=only_new)
    assert [h.values for h in app_new.get_state_history("t1")] == before
    with pytest.raises(CheckpointError, match="key 'k1'.*'t2'|'t2'.*key 'k1'"):
        app_new.get_state_history("t2")
    assert rotated.reencrypt() > 0  # the whole store
    assert app_new.invoke(Command(resume="ok"), thread_id="t2")["answer"] == "ok"  # new writes: k2
    raw = _raw_bytes(kind, url, only_new, rows_only=True)
    assert b"\x02k1" not in raw and b"\x02k2" in raw  # the key ids in the headers
    # the old key alone no longer reads anything
    only_old = _store(kind, url, Serializer(keys={"k1": K1}))
    with pytest.raises(CheckpointError, match="key 'k2', which this serializer does not have"):
        _graph().compile(checkpointer=only_old).get_state("t1")
    for s in (rotated, only_old):
        s.close()


def test_a_record_moved_to_another_thread_or_field_does_not_decrypt(tmp_path: Path) -> None:
    from agentgraph_nb import SqliteCheckpointer

    path = tmp_path / "moved.db"
    store = SqliteCheckpointer(path, serializer=Serializer(keys={"k1": K1}))
    _run(_graph().compile(checkpointer=store), "victim")
    _run(_graph().compile(checkpointer=store), "attacker")
    store.close()
    with sqlite3.connect(path) as conn:  # copy the attacker's newest payload over the victim's
        head = conn.execute(
            "SELECT payload FROM checkpoints WHERE thread_id = 'attacker' ORDER BY seq DESC LIMIT 1"
        ).fetchone()[0]
        conn.execute(
            "UPDATE checkpoints SET payload = ? WHERE seq = "
            "(SELECT max(seq) FROM checkpoints WHERE thread_id = 'victim')", (head,))
    store = SqliteCheckpointer(path, serializer=Serializer(keys={"k1": K1}))
    with pytest.raises(CheckpointError, match=r"'victim'.*key 'k1'.*moved"):
        _graph().compile(checkpointer=store).get_state("victim")
    store.close()


def test_plain_records_are_refused_unless_allowed_and_reencrypt_encrypts_them(tmp_path: Path) -> None:
    from agentgraph_nb import SqliteCheckpointer

    path = tmp_path / "plain.db"
    store = SqliteCheckpointer(path, serializer=Serializer())
    _run(_graph().compile(checkpointer=store), "t")
    store.close()
    strict = SqliteCheckpointer(path, serializer=Serializer(keys={"k1": K1}))
    with pytest.raises(CheckpointError, match="not encrypted while this serializer encrypts.*allow_plaintext"):
        _graph().compile(checkpointer=strict).get_state("t")
    strict.close()
    lenient = SqliteCheckpointer(path, serializer=Serializer(keys={"k1": K1}, allow_plaintext=True))
    app = _graph().compile(checkpointer=lenient)
    assert MARKER in app.get_state("t").values["secret"]
    assert lenient.reencrypt() > 0
    lenient.close()
    assert MARKER.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("plain.db*"))
    strict = SqliteCheckpointer(path, serializer=Serializer(keys={"k1": K1}))
    assert MARKER in _graph().compile(checkpointer=strict).get_state("t").values["secret"]
    strict.close()


def test_compression_shrinks_large_records_and_any_serializer_reads_them(tmp_path: Path) -> None:
    ser = Serializer(compression="zstd")
    big = {"text": "lorem ipsum " * 2000, "n": list(range(100))}
    blob = ser.dumps(big)
    assert blob[0] == 0xC1 and len(blob) < len(Serializer().dumps(big)) / 10
    assert Serializer().loads(blob) == big  # reading needs no setting, only the extra
    small = ser.dumps({"x": 1})
    assert small == Serializer().dumps({"x": 1})  # below the threshold: stored as is
    # a frame that claims no size, or a corrupt one, is a CheckpointError
    import zstandard

    no_size = bytes([0xC1, 1, 1]) + zstandard.ZstdCompressor(write_content_size=False).compress(b"\x90")
    with pytest.raises(CheckpointError, match="does not declare a size"):
        ser.loads(no_size)
    with pytest.raises(CheckpointError, match="zstd frame is corrupt"):
        ser.loads(blob[:-5])
    with pytest.raises(CheckpointError, match="format version 7"):
        ser.loads(bytes([0xC1, 7, 1]) + b"x")


def test_bad_serializer_arguments_are_value_errors_naming_them() -> None:
    with pytest.raises(ValueError, match="key 'k1' must be 16, 24 or 32 bytes"):
        Serializer(keys={"k1": b"short"})
    with pytest.raises(ValueError, match="several keys.*active_key"):
        Serializer(keys={"k1": K1, "k2": K2})
    with pytest.raises(ValueError, match="active_key='k3' is not one of the keys"):
        Serializer(keys={"k1": K1}, active_key="k3")
    with pytest.raises(ValueError, match="compression='lz4' is not supported"):
        Serializer(compression="lz4")
    assert "keys=['k2', 'k1'], active_key='k2'" in repr(Serializer(keys={"k2": K2, "k1": K1}, active_key="k2"))
    assert "\\x" not in repr(Serializer(keys={"k1": K1}))  # never the key itself


def test_a_missing_extra_names_the_pip_install() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['zstandard'] = None; sys.modules['cryptography'] = None\n"
        "from agentgraph_nb.checkpoint.serde import Serializer\n"
        "for kw in ({'compression': 'zstd'}, {'keys': {'k': b'0' * 32}}):\n"
        "    try: Serializer(**kw)\n"
        "    except ImportError as e: print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}).stdout
    assert "agentgraph_nb[zstd]" in out and "agentgraph_nb[crypto]" in out
