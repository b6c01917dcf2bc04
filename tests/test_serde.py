"""The safe serializer: exact round-trips of the allowlist, key-path errors, and no code run on read."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import decimal
import enum
import math
import operator
import os
import pathlib
import pickle
import subprocess
import sys
import uuid
from typing import Annotated, Any, Literal, NamedTuple, Optional, TypedDict

import msgpack
import numpy as np
import pandas as pd
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from agentgraph_nb.checkpoint.serde import Serializer, default_serializer
from agentgraph_nb.errors import CheckpointError

# -- registered example types --------------------------------------------------------------------


class Color(enum.Enum):
    RED = 1
    GREEN = "g"
    BLUE = (1, 2)


class Perm(enum.Flag):
    R = 4
    W = 2
    X = 1


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: float


@dataclasses.dataclass
class Meta:
    tags: set[str]
    color: Color = Color.RED
    origin: Point | None = None
    derived: int = dataclasses.field(default=0, init=False)


@dataclasses.dataclass(slots=True)
class Slotted:
    a: Any
    b: list[Any] = dataclasses.field(default_factory=list)


class Doc(pydantic.BaseModel):
    text: str
    meta: Optional[Meta] = None  # noqa: UP045 - the walker must handle Optional too
    when: dt.datetime | None = None
    score: float = 0.0


class Loose(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    name: str
    _secret: int = pydantic.PrivateAttr(default=7)


class Pair(NamedTuple):
    left: Any
    right: Any


class Money:
    """A class that is neither a dataclass nor a model: stored through encode/decode."""

    def __init__(self, cents: int, currency: str) -> None:
        self.cents = cents
        self.currency = currency

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and (self.cents, self.currency) == (
            other.cents,
            other.currency,
        )

    def __hash__(self) -> int:
        return hash((self.cents, self.currency))

    def __repr__(self) -> str:
        return f"Money({self.cents!r}, {self.currency!r})"


class Foo:
    """Not registered anywhere."""


@dataclasses.dataclass
class Unregistered:
    v: int


class Evil:
    """Unpickling this runs a shell command that creates a file."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


class Picklable:
    def __init__(self, v: Any) -> None:
        self.v = v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Picklable) and other.v == self.v


def make_serializer(**kw: Any) -> Serializer:
    ser = Serializer(**kw)
    for cls in (Color, Perm, Level, Point, Meta, Slotted, Doc, Loose, Pair):
        ser.register(cls)
    ser.register(Money, encode=lambda m: [m.cents, m.currency], decode=lambda v: Money(*v))
    return ser


SER = make_serializer()


# -- exact comparison ---------------------------------------------------------------------------


def assert_same(a: Any, b: Any, path: str = "value") -> None:
    """Equal *and* of the same types all the way down (tuples stay tuples, NaN equals NaN)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} became {type(b).__name__}"
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    elif isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b, check_exact=True)
    elif isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), path
        if a.dtype == object:
            for x, y in zip(a.reshape(-1), b.reshape(-1), strict=True):
                assert_same(x, y, path + "[...]")
        else:
            assert a.tobytes() == b.tobytes(), path
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), path
    elif isinstance(a, dict):
        assert len(a) == len(b), path
        for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True):
            assert_same(ka, kb, f"{path} key")
            assert_same(va, vb, f"{path}[{ka!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, (set, frozenset)):
        assert sorted(map(repr, a)) == sorted(map(repr, b)), path
    elif isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        ), path
    elif isinstance(a, complex):
        assert_same(a.real, b.real, path + ".real")
        assert_same(a.imag, b.imag, path + ".imag")
    elif isinstance(a, (decimal.Decimal, dt.datetime, dt.time)):
        assert repr(a) == repr(b), path  # sign of NaN/zero, tzinfo, fold
    elif isinstance(a, enum.Enum):
        assert a is b, path
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, pydantic.BaseModel):
        assert a.model_fields_set == b.model_fields_set, path
        assert a.__pydantic_extra__ == b.__pydantic_extra__, path
        assert a.__pydantic_private__ == b.__pydantic_private__, path
        assert_same(dict(a.__dict__), dict(b.__dict__), path)
    else:
        assert a == b, path


def roundtrip(value: Any, ser: Serializer = SER) -> Any:
    data = ser.dumps(value)
    assert isinstance(data, bytes)
    out = ser.loads(data)
    assert_same(value, out)
    return out


# -- strategies ---------------------------------------------------------------------------------

fixed_tz = st.builds(
    dt.timezone,
    st.timedeltas(
        min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23, minutes=59)
    ),
)
named_tz = st.builds(
    dt.timezone,
    st.timedeltas(min_value=dt.timedelta(hours=-12), max_value=dt.timedelta(hours=12)),
    st.text(min_size=1, max_size=5),
)
tzs = st.one_of(st.none(), st.just(dt.timezone.utc), fixed_tz, named_tz, st.timezones())
ints = st.one_of(
    st.integers(),
    st.integers(min_value=2**63 - 3, max_value=2**300),
    st.integers(min_value=-(2**300), max_value=-(2**63) + 3),
)
paths = st.one_of(
    st.builds(pathlib.Path, st.text(st.characters(blacklist_characters="\x00"), max_size=10)),
    st.builds(pathlib.PurePosixPath, st.text(max_size=10)),
    st.builds(pathlib.PureWindowsPath, st.text(max_size=10)),
)
hashables = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    st.floats(allow_nan=False),
    st.text(),
    st.binary(),
    st.uuids(),
    st.decimals(allow_nan=False),
    st.datetimes(timezones=tzs, allow_imaginary=False),
    st.dates(),
    st.times(timezones=tzs),
    st.timedeltas(),
    st.complex_numbers(allow_nan=False),
    paths,
    st.sampled_from(Color),
    st.sampled_from(Level),
    st.sampled_from([Perm.R, Perm.R | Perm.W, Perm.W | Perm.X, Perm(0)]),
    st.builds(Point, st.integers(), st.floats(allow_nan=False)),
    st.builds(Money, st.integers(), st.sampled_from(["EUR", "USD"])),
)
np_dtypes = st.sampled_from(
    ["i1", "<u2", ">i4", "<i8", "<f4", "<f8", "?", "<c16", "<U3", "S2", "<M8[ns]", "<m8[s]"]
)
np_arrays = hnp.arrays(np_dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
leaves = st.one_of(
    hashables,
    st.floats(),  # NaN and infinities
    st.decimals(),
    st.complex_numbers(),
    np_arrays,
    np_arrays.filter(lambda a: a.ndim == 0).map(lambda a: a[()]),
)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(hashables, children, max_size=4),
        st.dictionaries(st.text(max_size=5), children, max_size=4),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
        st.builds(
            Meta,
            st.sets(st.text(max_size=3), max_size=3),
            st.sampled_from(Color),
            st.none() | st.builds(Point, st.integers(), st.floats(allow_nan=False)),
        ),
        st.builds(Slotted, children, st.lists(children, max_size=3)),
        st.builds(Pair, children, children),
        st.builds(Doc, text=st.text(), when=st.none() | st.datetimes()),
        st.builds(
            lambda t, m, s: Doc(text=t, meta=m, score=s),
            st.text(),
            st.none() | st.builds(Meta, st.sets(st.text(max_size=3), max_size=2)),
            st.floats(allow_nan=False),
        ),
        st.lists(children, max_size=3).map(lambda xs: np.array([*xs, None], dtype=object)),
    )


# deferred (not st.recursive) keeps the strategy's repr small
values: st.SearchStrategy[Any] = st.deferred(lambda: st.one_of(leaves, leaves, containers(values)))


# -- round-trips --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_roundtrip_is_exact(value: Any) -> None:
    roundtrip(value)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(), values, max_size=5))
def test_roundtrip_of_state_dicts(state: dict[str, Any]) -> None:
    roundtrip(state)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        2**63 - 1,
        2**63,
        2**64 - 1,
        2**64,
        -(2**63),
        -(2**63) - 1,
        10**100,
        -(10**100),
        0.0,
        -0.0,
        float("inf"),
        float("nan"),
        "",
        "é\u2603",
        "\ud800 lone surrogate",
        b"",
        b"\x00\xff",
        [],
        {},
        (),
        set(),
        frozenset(),
        ((),),
        [()],
        {(): ()},
        {1: "int key", None: 2, (1, "a"): 3},
        {frozenset({1}): {2}},
        decimal.Decimal("-0"),
        decimal.Decimal("sNaN"),
        decimal.Decimal("1.2300E+5"),
        dt.datetime(
            2024, 10, 27, 2, 30, fold=1, tzinfo=__import__("zoneinfo").ZoneInfo("Europe/Paris")
        ),
        dt.datetime(
            2024,
            1,
            1,
            12,
            tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30, microseconds=7), "IST"),
        ),
        dt.datetime.min,
        dt.datetime.max,
        dt.time(23, 59, 59, 999999, fold=1),
        dt.timedelta.min,
        dt.timedelta.max,
        uuid.UUID(int=0),
        complex(float("nan"), -0.0),
        pathlib.Path("relative/p"),
        pathlib.PureWindowsPath(r"C:\x\y"),
        Color.BLUE,
        Perm.R | Perm.W,
        Perm(0),
        Level.HIGH,
        Pair(1, (2,)),
        Money(5, "EUR"),
        Slotted({"a": (1,)}),
        Point(1, 2.5),
    ],
    ids=repr,
)
def test_roundtrip_examples(value: Any) -> None:
    roundtrip(value)


def test_plain_data_is_plain_msgpack() -> None:
    value = {"question": "q", "notes": ["a", "b"], "n": 3, "x": 1.5, "raw": b"\x00", "none": None}
    assert SER.dumps(value) == msgpack.packb(value, use_bin_type=True)


def test_dataclass_extras() -> None:
    m = Meta({"a"}, Color.GREEN, Point(1, 2.0))
    m.derived = 42  # init=False field
    out = roundtrip(m)
    assert out.derived == 42
    p = roundtrip(Point(3, 4.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 1  # type: ignore[misc]


def test_pydantic_keeps_fields_set_extra_and_private() -> None:
    d = Doc(text="t")
    out = roundtrip(d)
    assert out.model_fields_set == {"text"}
    assert out.model_dump(exclude_unset=True) == {"text": "t"}
    loose = Loose(name="n", other=[1, (2,)])  # type: ignore[call-arg]
    loose._secret = 99
    out2 = roundtrip(loose)
    assert out2.__pydantic_extra__ == {"other": [1, (2,)]} and out2._secret == 99


def test_reading_does_not_run_init_or_validators() -> None:
    calls: list[str] = []

    class Checked(pydantic.BaseModel):
        v: int

        @pydantic.field_validator("v")
        @classmethod
        def count(cls, v: int) -> int:
            calls.append("validated")
            return v

    ser = Serializer()
    ser.register(Checked)
    blob = ser.dumps(Checked(v=1))
    calls.clear()
    assert ser.loads(blob) == Checked.model_construct(v=1)
    assert calls == []


def test_classes_that_changed_since_writing_get_defaults() -> None:
    @dataclasses.dataclass
    class Item:
        a: int

    ser = Serializer()
    ser.register(Item, name="Item")
    blob = ser.dumps(Item(1))

    @dataclasses.dataclass
    class Item:  # type: ignore[no-redef]  # redefined in a notebook cell, with a new field
        a: int
        b: list[int] = dataclasses.field(default_factory=lambda: [7])

    ser.register(Item, name="Item")
    assert ser.loads(blob) == Item(1, [7])  # type: ignore[call-arg]

    class Model(pydantic.BaseModel):
        a: int

    ser.register(Model, name="Model")
    blob = ser.dumps(Model(a=1))

    class Model(pydantic.BaseModel):  # type: ignore[no-redef]
        a: int
        b: str = "new"

    ser.register(Model, name="Model")
    assert ser.loads(blob) == Model(a=1, b="new")  # type: ignore[call-arg]


def test_register_as_decorator_with_stable_name() -> None:
    ser = Serializer()

    @ser.register(name="app.Thing")
    @dataclasses.dataclass
    class Thing:
        v: int

    assert ser.registered["app.Thing"] is Thing
    assert ser.loads(ser.dumps(Thing(1))) == Thing(1)


def test_register_rejects_what_it_cannot_store() -> None:
    ser = Serializer()
    with pytest.raises(TypeError, match="encode= and decode="):
        ser.register(Foo)
    with pytest.raises(TypeError, match="both encode= and decode="):
        ser.register(Foo, encode=lambda f: 1)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="takes a class"):
        ser.register(Foo())  # type: ignore[call-overload]


def test_default_serializer_is_shared() -> None:
    assert default_serializer() is default_serializer()
    assert default_serializer().allow_pickle is False


# -- numpy and pandas ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(12, dtype=">i4").reshape(3, 4),
        np.arange(12.0).reshape(3, 4).T,  # not C-contiguous
        np.array([], dtype="f8").reshape(0, 3),
        np.array(["a", "bcd"]),
        np.array(["2020-01-01", "NaT"], dtype="M8[ns]"),
        np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,))]),
        np.array([{"x": (1,)}, None, Color.RED], dtype=object),
        np.float64("nan"),
        np.int8(-3),
        np.bool_(True),
        np.str_("hi"),
        np.datetime64("2020-01-01T00:00:00.123456789"),
    ],
    ids=lambda a: f"{type(a).__name__}-{a.dtype}",
)
def test_numpy_roundtrip(arr: Any) -> None:
    out = roundtrip(arr)
    if isinstance(out, np.ndarray):
        out[...] = out  # writeable, not a view of the blob


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": [1, 2, 3], "b": [1.5, np.nan, -0.0], "c": [True, False, True]}),
        pd.DataFrame({"s": ["x", None, "z"], "o": pd.Series([1, "a", (2,)], dtype=object)}),
        pd.DataFrame({"cat": pd.Categorical(["u", "v", "u"], categories=["v", "u"], ordered=True)}),
        pd.DataFrame({"t": pd.date_range("2020-01-01", periods=3, freq="h", tz="Europe/Paris")}),
        pd.DataFrame(
            {
                "t": pd.to_datetime(["2020-01-01", None, "2021-06-01"]),
                "d": pd.to_timedelta([1, 2, 3], unit="s"),
            }
        ),
        pd.DataFrame(
            {
                "i": pd.array([1, None, 3], dtype="Int64"),
                "f": pd.array([0.5, None, 1], dtype="Float64"),
            }
        ),
        pd.DataFrame(
            {
                "s": pd.array(["a", None, "c"], dtype="string"),
                "b": pd.array([True, None, False], dtype="boolean"),
            }
        ),
        pd.DataFrame(
            {"v": [1.0, 2.0]}, index=pd.date_range("2024-01-01", periods=2, freq="D", name="day")
        ),
        pd.DataFrame(
            {"v": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"])
        ),
        pd.DataFrame([[1, 2], [3, 4]], columns=["dup", "dup"], index=["r1", "r2"]),
        pd.DataFrame([[1, 2]], columns=pd.Index([10, 20], name="cols")),
        pd.DataFrame(),
        pd.DataFrame({"a": pd.Series([], dtype="int64")}),
    ],
)
def test_pandas_frame_roundtrip(frame: pd.DataFrame) -> None:
    roundtrip(frame)
    roundtrip(
        {"df": frame, "col": frame.iloc[:, 0] if frame.shape[1] else pd.Series([], dtype=float)}
    )


def test_pandas_series_roundtrip() -> None:
    roundtrip(pd.Series([1, 2], index=pd.RangeIndex(5, 9, 2), name=("tuple", "name")))
    roundtrip(pd.Series(["a", "b"], name=None, dtype="str"))


def test_pandas_unsupported_dtype_is_reported() -> None:
    frame = pd.DataFrame({"iv": pd.arrays.IntervalArray.from_breaks([0, 1, 2])})
    with pytest.raises(CheckpointError, match=r'state\["df"\]: .*dtype'):
        SER.dumps({"df": frame}, root="state")


def test_plain_data_never_imports_numpy_or_pandas() -> None:
    code = """
import sys, datetime, decimal, uuid
from agentgraph_nb.checkpoint.serde import Serializer
s = Serializer()
v = {"a": (1, {2}), "t": datetime.datetime.now(datetime.timezone.utc), "d": decimal.Decimal("1"), "u": uuid.uuid4()}
assert s.loads(s.dumps(v)) == v
bad = [m for m in ("numpy", "pandas", "pydantic") if m in sys.modules]
assert not bad, bad
"""
    subprocess.run([sys.executable, "-c", code], check=True)


# -- errors name the key path -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (
            {"docs": [1, 2, 3, Doc(text="x", meta=Meta({"a"}, origin=Foo()))]},  # type: ignore[arg-type]
            'state["docs"][3].meta.origin',
        ),  # type: ignore[arg-type]
        ({"docs": [0, 1, 2, {"meta": Foo()}]}, 'state["docs"][3]["meta"]'),
        ({"t": (1, (2, Foo()))}, 'state["t"][1][1]'),
        ({"s": Slotted([Foo()])}, 'state["s"].a[0]'),
        ({"p": Pair(1, Foo())}, 'state["p"].right'),
        ({"l": Loose(name="n", extra_field=Foo())}, 'state["l"].extra_field'),  # type: ignore[call-arg]
        ({"k": {Foo(): 1}}, 'state["k"][<'),
        ({"arr": np.array([1, Foo()], dtype=object)}, 'state["arr"][1]'),
        ({"df": pd.DataFrame({"c": [1, Foo()]})}, 'state["df"]["c"].iloc[1]'),
        ({'we"ird': [Foo()]}, 'state["we\\"ird"][0]'),
        (Foo(), "state"),
    ],
)
def test_unsupported_value_names_its_key_path(value: Any, path: str) -> None:
    with pytest.raises(CheckpointError) as info:
        SER.dumps(value, root="state")
    msg = str(info.value)
    assert msg.startswith(path), msg
    assert (
        "cannot store object of type tests" in msg
        or "cannot store object of type test_serde" in msg
    )
    assert (
        "Foo" in msg and "register it with serializer.register(Foo, encode=..., decode=...)" in msg
    )
    assert "allow_pickle=True" in msg


def test_unregistered_dataclass_and_enum_get_register_hints() -> None:
    ser = Serializer()
    with pytest.raises(
        CheckpointError,
        match=r'^state\["x"\]: .*Unregistered; register it with serializer\.register\(Unregistered\)',
    ):
        ser.dumps({"x": Unregistered(1)}, root="state")
    with pytest.raises(
        CheckpointError,
        match=r"^value\[0\]: .*register the enum with serializer\.register\(Color\)",
    ):
        ser.dumps([Color.RED])
    with pytest.raises(CheckpointError, match=r"subclass of dict.*plain dict"):
        ser.dumps({"o": collections.OrderedDict(a=1)})


def test_circular_reference_is_reported() -> None:
    loop: list[Any] = [1]
    loop.append({"again": loop})
    with pytest.raises(CheckpointError, match=r'^state\["x"\]\[1\]\["again"\]: circular reference'):
        SER.dumps({"x": loop}, root="state")


def test_failing_custom_encoder_is_chained() -> None:
    ser = Serializer()

    def boom(m: Money) -> Any:
        raise RuntimeError("no cents")

    ser.register(Money, encode=boom, decode=lambda v: v)
    with pytest.raises(
        CheckpointError, match=r'^value\["m"\]: .*encode failed: RuntimeError: no cents'
    ) as info:
        ser.dumps({"m": Money(1, "EUR")})
    assert isinstance(info.value.__cause__, RuntimeError)


# -- reading is safe ----------------------------------------------------------------------------


def _pickle_blob(marker: pathlib.Path) -> bytes:
    payload = pickle.dumps(Evil(marker))
    evil = msgpack.ExtType(0, payload)
    nested = msgpack.ExtType(1, msgpack.packb([1, evil]))  # inside a tuple, inside a dict
    return msgpack.packb({"state": {"docs": [nested]}}, use_bin_type=True)


def test_the_pickle_payload_is_live(tmp_path: pathlib.Path) -> None:
    """Control: the payload used below really runs a command when unpickled."""
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(Evil(marker)))
    assert marker.exists()


def test_pickle_payload_is_refused_and_runs_nothing(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "pwned"
    blob = _pickle_blob(marker)
    for ser in (Serializer(), SER, default_serializer()):
        with pytest.raises(
            CheckpointError, match=r"refusing to read pickled data.*allow_pickle=True"
        ):
            ser.loads(blob)
    assert not marker.exists()


def test_allow_pickle_is_an_explicit_opt_in(tmp_path: pathlib.Path) -> None:
    trusting = Serializer(allow_pickle=True)
    value = {"obj": Picklable([1, (2,)]), "plain": (1, 2)}
    blob = trusting.dumps(value)
    assert trusting.loads(blob) == value
    with pytest.raises(CheckpointError, match="refusing to read pickled data"):
        Serializer().loads(blob)
    marker = tmp_path / "trusted"
    trusting.loads(_pickle_blob(marker))
    assert marker.exists()  # what allow_pickle=True means


@pytest.mark.parametrize(
    "name", ["antigravity.Fly", "os.system", "subprocess.Popen", "tests.test_serde.Point"]
)
def test_unknown_class_name_is_refused_without_importing(name: str) -> None:
    before = set(sys.modules)
    blob = msgpack.packb(
        {"x": msgpack.ExtType(14, msgpack.packb([name, {"x": 1, "y": 2.0}]))}, use_bin_type=True
    )
    with pytest.raises(
        CheckpointError, match=r"holds an object of class .*not registered.*register"
    ):
        Serializer().loads(blob)
    assert set(sys.modules) == before
    enum_blob = msgpack.packb(msgpack.ExtType(11, msgpack.packb([name, "RED"])))
    with pytest.raises(CheckpointError, match="not registered"):
        Serializer().loads(enum_blob)


def test_data_of_registered_class_needs_registration_to_read() -> None:
    blob = SER.dumps({"p": Point(1, 2.0), "c": Color.RED})
    with pytest.raises(CheckpointError) as info:
        Serializer().loads(blob)
    assert f"{Point.__module__}.Point" in str(info.value) or f"{Color.__module__}.Color" in str(
        info.value
    )
    ser = Serializer()
    ser.register(Point)
    ser.register(Color)
    assert ser.loads(blob) == {"p": Point(1, 2.0), "c": Color.RED}


@pytest.mark.parametrize(
    "blob",
    [
        b"\xc1",  # never used
        b"\x92\x01",  # truncated array
        msgpack.packb(msgpack.ExtType(99, b"")),  # unknown ext code
        msgpack.packb(msgpack.ExtType(5, b"\x01")),  # datetime with a bad payload
        msgpack.packb(
            msgpack.ExtType(15, msgpack.packb(["|O8", [1], b"\x00" * 8]))
        ),  # object array from bytes
        msgpack.packb(msgpack.ExtType(11, msgpack.packb([f"{Color.__module__}.Color", "PURPLE"]))),
        msgpack.packb({"a": 1}) + b"extra",
    ],
)
def test_corrupt_data_raises_checkpoint_error(blob: bytes) -> None:
    with pytest.raises(CheckpointError, match="cannot read stored data"):
        SER.loads(blob)


# -- registering from the state schema ---------------------------------------------------------


class Inner(pydantic.BaseModel):
    level: Level
    tree: list[Inner] = []


@dataclasses.dataclass
class Holder:
    inner: Inner
    pairs: dict[str, Pair]


class State(TypedDict):
    question: str
    docs: Annotated[list[Doc], operator.add]
    holder: Optional[Holder]  # noqa: UP045
    mode: Literal[Color.RED, "other"]
    perms: dict[str, Perm] | None
    unresolved: NotDefinedAnywhere  # type: ignore[name-defined]  # noqa: F821


def test_register_from_annotations_walks_the_schema() -> None:
    ser = Serializer()
    found = ser.register_from_annotations(State)
    assert set(found) == {Doc, Meta, Color, Point, Holder, Inner, Level, Pair, Perm}
    assert State not in found  # a TypedDict value is a plain dict
    state = {
        "question": "q",
        "docs": [Doc(text="d", meta=Meta({"t"}, origin=Point(1, 1.0)))],
        "holder": Holder(Inner(level=Level.LOW, tree=[Inner(level=Level.HIGH)]), {"p": Pair(1, 2)}),
        "mode": Color.RED,
        "perms": {"a": Perm.R | Perm.X},
    }
    assert_same(state, ser.loads(ser.dumps(state)))
    assert ser.register_from_annotations(State) == found  # idempotent


def test_register_from_annotations_of_a_dataclass_schema() -> None:
    @dataclasses.dataclass
    class DCState:
        items: list[tuple[Point, Color]]

    ser = Serializer()
    assert ser.register_from_annotations(DCState) == [DCState, Point, Color]
    roundtrip(DCState([(Point(1, 2.0), Color.GREEN)]), ser)


# -- limits: what is written can be read; bytes cannot crash or flood the reader -----------------


@dataclasses.dataclass
class Link:
    value: int
    next: Link | None = None


def nest_tuples(depth: int) -> Any:
    v: Any = "leaf"
    for _ in range(depth):
        v = (v,)
    return v


def nest_links(depth: int) -> Any:
    v = None
    for i in range(depth):
        v = Link(i, v)
    return v


def handmade_deep(depth: int) -> bytes:
    """``depth`` tuples inside one another, as bytes: each a msgpack ext holding ``[inner]``."""
    b = msgpack.packb("leaf")
    for _ in range(depth):
        b = msgpack.packb(msgpack.ExtType(1, b"\x91" + b))  # 0x91: an array of one item
    return b


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (nest_tuples(200), 'state["x"][0][0][0]'),
        (nest_links(200), 'state["x"].next.next.next'),
        ([{"k": nest_tuples(150)}], 'state["x"][0]["k"][0][0]'),
    ],
    ids=["tuples", "linked-list", "under-lists"],
)
def test_values_nested_too_deep_are_refused_on_write_naming_path_and_limit(
    value: Any, path: str
) -> None:
    ser = Serializer()
    ser.register(Link)
    with pytest.raises(CheckpointError) as info:
        ser.dumps({"x": value}, root="state")
    msg = str(info.value)
    assert msg.startswith(path), msg
    assert "more than 100 levels deep" in msg and "Flatten it" in msg


def test_values_nested_up_to_the_limit_round_trip() -> None:
    from agentgraph_nb.checkpoint.serde import MAX_NESTING

    assert MAX_NESTING == 100
    ser = Serializer()
    ser.register(Link)
    for value in (nest_tuples(MAX_NESTING), nest_links(MAX_NESTING), [[[nest_tuples(99)]]]):
        assert ser.loads(ser.dumps(value)) == value
    with pytest.raises(CheckpointError, match="100 levels"):
        ser.dumps(nest_tuples(MAX_NESTING + 1))
    assert len(handmade_deep(250)) < 1200  # the ~1 KB row of the report


_DEEP_READER = """
import sys, threading
import msgpack
from agentgraph_nb.checkpoint.serde import Serializer
from agentgraph_nb.errors import CheckpointError

def handmade_deep(depth):
    b = msgpack.packb("leaf")
    for _ in range(depth):
        b = msgpack.packb(msgpack.ExtType(1, b"\\x91" + b))
    return b

def read(depth):
    try:
        v = Serializer().loads(handmade_deep(depth))
    except CheckpointError as exc:
        print(depth, "CheckpointError", exc, flush=True)
        return
    n = 0
    while type(v) is tuple:
        v, n = v[0], n + 1
    print(depth, "read", n, flush=True)

threading.stack_size(int(sys.argv[1]) * 1024)  # a small thread stack, as on musl or Windows
for depth in map(int, sys.argv[2:]):
    t = threading.Thread(target=read, args=(depth,))
    t.start()
    t.join()
"""


def test_deep_bytes_never_crash_the_reader() -> None:
    # Each nested ext level was a nested msgpack.unpackb, ~40 KB of C stack: 250 levels (a 1 KB
    # blob) overflowed an 8 MB stack and killed the process with SIGSEGV. Read in a fresh
    # process, in threads with a 1 MB stack: the limit reads back, one level more is refused.
    proc = subprocess.run(
        [sys.executable, "-c", _DEEP_READER, "1024", "100", "101", "250", "20000"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stdout.splitlines()
    assert lines[0] == "100 read 100"
    for line, depth in zip(lines[1:], (101, 250, 20000), strict=True):
        assert line.startswith(f"{depth} CheckpointError cannot read stored data: its values nest "
                               "more than 100 levels deep"), line


P61 = 2**61 - 1  # hash(k * P61 + 5) == hash(5) for every int k


def _bigint(i: int) -> msgpack.ExtType:
    return msgpack.ExtType(4, i.to_bytes(i.bit_length() // 8 + 1, "big", signed=True))


def test_map_keys_crafted_to_share_one_hash_are_refused() -> None:
    # 20,000 distinct int keys of one hash took ~4 s to load (quadratic: 629 KB took 13 s).
    pairs = [(_bigint(5 + k * P61), 0) for k in range(20_000)]
    blob = msgpack.Packer().pack_map_pairs(pairs)
    with pytest.raises(CheckpointError, match="more than 16 distinct dict keys share one hash"):
        SER.loads(blob)
    nested = msgpack.packb({"state": [msgpack.ExtType(1, msgpack.packb([msgpack.ExtType(
        14, msgpack.packb([f"{Point.__module__}.Point", {"x": 1, "y": 2.0}]))]))],
        "m": msgpack.ExtType(1, b"\x91" + blob)})
    with pytest.raises(CheckpointError, match="share one hash"):
        SER.loads(nested)


def test_set_items_crafted_to_share_one_hash_are_refused() -> None:
    items = msgpack.packb([_bigint(5 + k * P61) for k in range(20_000)])
    for code in (2, 3):  # set, frozenset
        with pytest.raises(CheckpointError, match="more than 16 distinct set items share one hash"):
            SER.loads(msgpack.packb(msgpack.ExtType(code, items)))
    model = msgpack.ExtType(14, msgpack.packb(
        [f"{Doc.__module__}.Doc", [{"text": "t"}, msgpack.ExtType(1, items), None, None]]))
    with pytest.raises(CheckpointError, match="distinct field names share one hash"):
        SER.loads(msgpack.packb(model))  # a pydantic model's fields_set
    flood = {5 + k * P61 for k in range(17)}
    with pytest.raises(CheckpointError, match=r'^state\["s"\]: cannot store a set in which more than 16'):
        SER.dumps({"s": flood}, root="state")


def test_multiindex_levels_crafted_to_share_one_hash_are_refused() -> None:
    # factorizing an object level hashes its values: quadratic too (8,000 rows: 3 s)
    rows = [msgpack.ExtType(1, msgpack.packb(["x" if k == 0 else _bigint(5 + k * P61), 1]))
            for k in range(8_000)]
    series = msgpack.ExtType(18, msgpack.packb([["o", [0] * 8_000], ["m", rows, [None, None]], None]))
    with pytest.raises(CheckpointError, match="values of a MultiIndex level share one hash"):
        SER.loads(msgpack.packb(series))


def test_hash_collisions_of_real_data_still_round_trip() -> None:
    assert hash(-1) == hash(-2)
    few = {5 + k * P61 for k in range(16)}
    value = {
        "ints": {-1: "a", -2: "b", **{i: i for i in range(1000)}},
        "few": {k: 1 for k in few},
        "set": few | {-1, -2},
        "tuples": {(i, str(i)): i for i in range(100)},
        "floats": {0.5 * i: i for i in range(100)},
        "mixed": {"a": 1, 2: "b", None: 3, b"c": 4, (1, 2): 5, Color.RED: 6},
        "index": pd.Series(range(6), index=pd.MultiIndex.from_tuples([(-1, "a"), (-2, "a")] * 3)),
    }
    roundtrip(value)


def _series(values: Any, index: Any) -> bytes:
    return msgpack.packb(msgpack.ExtType(18, msgpack.packb([values, index, None])))


def test_pandas_columns_must_match_their_index() -> None:
    # 20 bytes used to load as a 20-million-row Series: pandas broadcasts a scalar column.
    bomb = _series(["n", 5], ["r", 0, 20_000_000, 1, None])
    assert len(bomb) < 25
    with pytest.raises(CheckpointError, match="a pandas column or index holds int where its array"):
        SER.loads(bomb)
    short = _series(["o", [1, 2]], ["r", 0, 10**7, 1, None])
    with pytest.raises(CheckpointError, match="a Series has 2 values for an index of 10000000 rows"):
        SER.loads(short)
    frame = msgpack.ExtType(17, msgpack.packb(
        [["r", 0, 10**7, 1, None], ["i", ["o", ["a"]], None, None], [["o", [1]]]]))
    with pytest.raises(CheckpointError, match="a DataFrame column has 1 values for an index of"):
        SER.loads(msgpack.packb(frame))
    labels = msgpack.ExtType(17, msgpack.packb(
        [["r", 0, 1, 1, None], ["i", ["o", ["a", "b"]], None, None], [["o", [1]]]]))
    with pytest.raises(CheckpointError, match="a DataFrame has 1 columns but 2 column labels"):
        SER.loads(msgpack.packb(labels))
    roundtrip(pd.DataFrame(index=pd.RangeIndex(10**12)))  # lazy: no memory, legitimately small


def test_numpy_arrays_of_zero_size_items_are_bounded() -> None:
    bomb = msgpack.packb(msgpack.ExtType(15, msgpack.packb(["|V0", [10**6, 10**6], b""])))
    with pytest.raises(CheckpointError, match="claims 1,000,000,000,000 zero-size items"):
        SER.loads(bomb)
    empty_struct = msgpack.packb(msgpack.ExtType(15, msgpack.packb([[["f", "|V0"]], [10**9], b""])))
    with pytest.raises(CheckpointError, match="zero-size items"):
        SER.loads(empty_struct)
    roundtrip(np.zeros(1000, dtype="V0"))
    with pytest.raises(CheckpointError, match=r'^state\["a"\]: cannot store a numpy array of more'):
        SER.dumps({"a": np.zeros(1 << 17, dtype="V0")}, root="state")


def test_register_from_annotations_walks_typing_extensions_typeddicts() -> None:
    # typing.is_typeddict misses typing_extensions' TypedDict before Python 3.12 (LangGraph code
    # and NotRequired on 3.10 use it): the classes in its keys must still be registered
    import typing_extensions

    @dataclasses.dataclass
    class _Inner:
        x: int

    State = typing_extensions.TypedDict("State", {"inner": typing_extensions.NotRequired[_Inner]})  # noqa: UP013
    ser = Serializer()
    assert ser.register_from_annotations(State) == [_Inner]
    assert ser.loads(ser.dumps({"inner": _Inner(1)})) == {"inner": _Inner(1)}
