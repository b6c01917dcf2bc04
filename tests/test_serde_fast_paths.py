"""The serializer's fast paths (packers reused per thread and nesting level, leaf values packed
and read without nesting, dataclasses through their __dict__) write exactly the bytes of the
format on disk, and stay correct when re-entered, when a value fails half-way, across threads and
after a large value."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import pathlib
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from agentgraph_nb.checkpoint.serde import Serializer
from agentgraph_nb.errors import CheckpointError


class Color(enum.Enum):
    RED = "red"

@dataclass
class Inner:
    when: dt.datetime
    span: dt.timedelta

@dataclass
class Outer:
    id: uuid.UUID
    nums: frozenset
    pair: tuple
    inner: Inner
    price: decimal.Decimal
    color: Color
    day: dt.date
    at: dt.time
    z: complex
    path: pathlib.PurePosixPath
    big: int
    extra: list = field(default_factory=list)

def value():
    tz = dt.timezone(dt.timedelta(hours=2), "CEST")
    return {"o": [Outer(uuid.UUID(int=7), frozenset({1, 2, 3}), (1, (2, "x")),
                        Inner(dt.datetime(2026, 12, 5, 8, 0, 1, 5, tzinfo=tz), dt.timedelta(days=1, seconds=3)),
                        decimal.Decimal("1.25"), Color.RED, dt.date(2026, 1, 2), dt.time(3, 4, 5, tzinfo=dt.timezone.utc),
                        1 + 2j, pathlib.PurePosixPath("/a/b"), 2**70, ["e"]) for _ in range(2)],
            "naive": dt.datetime(2020, 1, 1), "s": "caf\u00e9 \udc80"}

def ser():
    s = Serializer()
    for c in (Color, Inner, Outer):
        s.register(c, name=c.__name__)
    return s


# Written by the serializer as of commit 0833025 (before the fast paths) from value() above.
GOLDEN = bytes.fromhex(
    "83a16f92c7fd0e92a54f757465728ca26964d80900000000000000000000000000000007a46e756d73d60393010203a4"
    "70616972d7019201d6019202a178a5696e6e6572c7370e92a5496e6e657282a47768656ec71c0599cd07ea0c05080001"
    "050095a5666978656400cd1c2000a443455354a47370616ed60893010300a57072696365d60a312e3235a5636f6c6f72"
    "c70b0b92a5436f6c6f72a3524544a3646179c70506ce000b4922a26174c70a07960304050000a3757463a17ac7130c92"
    "cb3ff0000000000000cb4000000000000000a470617468c7110d92aa707572655f706f736978a42f612f62a3626967c7"
    "0904400000000000000000a5657874726191a165c7fd0e92a54f757465728ca26964d809000000000000000000000000"
    "00000007a46e756d73d60393010203a470616972d7019201d6019202a178a5696e6e6572c7370e92a5496e6e657282a4"
    "7768656ec71c0599cd07ea0c05080001050095a5666978656400cd1c2000a443455354a47370616ed60893010300a570"
    "72696365d60a312e3235a5636f6c6f72c70b0b92a5436f6c6f72a3524544a3646179c70506ce000b4922a26174c70a07"
    "960304050000a3757463a17ac7130c92cb3ff0000000000000cb4000000000000000a470617468c7110d92aa70757265"
    "5f706f736978a42f612f62a3626967c70904400000000000000000a5657874726191a165a56e61697665c70c0599cd07"
    "e401010000000000c0a173a9636166c3a920edb280"
)


def test_the_bytes_are_those_of_the_format_on_disk() -> None:
    assert ser().dumps(value()) == GOLDEN
    assert ser().loads(GOLDEN) == value()


def test_an_encode_function_that_calls_dumps_again_gets_its_own_packer() -> None:
    s = ser()

    class Box:
        def __init__(self, v: Any) -> None:
            self.v = v

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Box) and other.v == self.v

    # encode packs the inner value with the same serializer, from inside its packing
    s.register(Box, name="Box", encode=lambda b: s.dumps(b.v), decode=lambda raw: Box(s.loads(raw)))
    v = {"a": [Box({"x": (1, 2), "o": value()["o"][0]}), Box(Box(3))], "b": value()}
    assert s.loads(s.dumps(v)) == v
    assert s.dumps(value()) == GOLDEN


def test_a_value_failing_half_way_leaves_the_packers_usable() -> None:
    s = ser()
    for _ in range(3):
        with pytest.raises(CheckpointError, match=r"state\[.o.\]\[0\]\.extra\[1\]"):
            bad = value()
            bad["o"][0].extra.append(object())
            s.dumps(bad, root="state")
        assert s.dumps(value()) == GOLDEN


def test_after_a_large_value_small_ones_are_still_right() -> None:
    s = ser()
    big = {"blob": [(i, "x" * 100) for i in range(2000)], "o": value()["o"]}
    assert s.loads(s.dumps(big)) == big
    assert s.dumps(value()) == GOLDEN


def test_threads_packing_at_once_each_get_their_bytes() -> None:
    s = ser()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(300):
                assert s.dumps(value()) == GOLDEN
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_dataclasses_whose_dict_is_not_their_fields_still_store_their_fields() -> None:
    s = ser()
    o = value()["o"][0]
    o.not_a_field = 1  # an extra attribute: the __dict__ is not the field dict
    back = s.loads(s.dumps(o))
    assert back == value()["o"][0] and not hasattr(back, "not_a_field")
    # fields in another order in __dict__ (set in another order): stored in field order
    p = Inner.__new__(Inner)
    p.span, p.when = o.inner.span, o.inner.when
    assert s.dumps(p) == s.dumps(o.inner)


def test_leaf_values_with_bad_payloads_are_checkpoint_errors() -> None:
    s = ser()
    for code, payload in [(9, b"short"), (5, bytes.fromhex("93010203")), (13, bytes.fromhex("92a178a179"))]:
        import msgpack

        with pytest.raises(CheckpointError, match="cannot read"):
            s.loads(msgpack.packb(msgpack.ExtType(code, payload)))
    assert isinstance(s.loads(s.dumps(pathlib.PurePosixPath("/\udc80"))), pathlib.PurePosixPath)
