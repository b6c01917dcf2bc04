"""Packing rich state: the serializer's ``dumps``/``loads`` of a state of 20 dataclasses (each
with a UUID, a set, a tz-aware datetime, a float and a list), a set and a datetime.

    python -m benchmarks.serde [--rounds 15]

Side by side, in one run (microseconds per checkpoint's state, median of the rounds, interleaved):

- **ours**: ``Serializer().dumps`` / ``loads`` of this checkout;
- **before**: the same calls of the serializer as of commit 0833025 (read from git), whose bytes
  are the format on disk: the run checks that ours writes exactly the same bytes;
- **floor**: the same design (ext types nested inside ext types, a Python hook per non-plain
  value) on ormsgpack, the fastest msgpack for Python, and ormsgpack's own native packing of
  dataclasses/UUIDs/datetimes (a lower bound a safe, typed format cannot reach: it reads back
  dicts and strings, not the objects);
- **LangGraph**: ``JsonPlusSerializer.dumps_typed`` / ``loads_typed`` (its checkpoint serializer).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["main"]

BASE = "0833025"
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Doc:
    id: uuid.UUID
    title: str
    tags: set[str]
    when: dt.datetime
    score: float = 0.5
    notes: list[str] = field(default_factory=list)


T0 = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.timezone.utc)


def make_state() -> dict[str, Any]:
    docs = [Doc(uuid.UUID(int=i), f"doc {i}", {f"t{i}", "all"}, T0 + dt.timedelta(minutes=i), i / 4, [f"n{i}"])
            for i in range(20)]
    return {"docs": docs, "seen": {f"s{i}" for i in range(10)}, "title": "x", "at": T0}


def _before_module() -> Any:
    """agentgraph_nb/checkpoint/serde.py as of BASE, imported as a module of its own."""
    try:
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{BASE}:agentgraph_nb/checkpoint/serde.py"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "serde_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("serde_before", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["serde_before"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _ormsgpack_same_design() -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]] | None:
    try:
        import ormsgpack
    except ImportError:
        return None
    name = f"{Doc.__module__}.{Doc.__qualname__}"
    ext, unpackb = ormsgpack.Ext, ormsgpack.unpackb
    # ormsgpack hands dataclasses, UUIDs and datetimes to default only with these options
    opts = ormsgpack.OPT_PASSTHROUGH_DATACLASS | ormsgpack.OPT_PASSTHROUGH_DATETIME | ormsgpack.OPT_PASSTHROUGH_UUID

    def pack(v: Any) -> bytes:
        return ormsgpack.packb(v, default=hook, option=opts)

    def hook(o: Any) -> Any:
        tp = type(o)
        if tp is Doc:
            return ext(14, pack([name, {"id": o.id, "title": o.title, "tags": o.tags, "when": o.when,
                                        "score": o.score, "notes": o.notes}]))
        if tp is set:
            return ext(2, pack(list(o)))
        if tp is dt.datetime:
            return ext(5, pack([o.year, o.month, o.day, o.hour, o.minute, o.second, o.microsecond, o.fold, "utc"]))
        if tp is uuid.UUID:
            return ext(9, o.bytes)
        raise TypeError(tp)

    def ext_hook(code: int, data: bytes) -> Any:
        if code == 14:
            _, d = unpackb(data, ext_hook=ext_hook)
            obj = Doc.__new__(Doc)
            obj.__dict__.update(d)
            return obj
        if code == 2:
            return set(unpackb(data, ext_hook=ext_hook))
        if code == 5:
            y, mo, d, h, mi, s, us, fold, _ = unpackb(data)
            return dt.datetime(y, mo, d, h, mi, s, us, tzinfo=dt.timezone.utc, fold=fold)
        if code == 9:
            return uuid.UUID(bytes=data)
        raise ValueError(code)

    def loads(b: bytes) -> Any:
        return unpackb(b, ext_hook=ext_hook)

    return pack, loads


def _time(fns: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median µs per call of each function, rounds interleaved."""
    for f in fns.values():  # warm up, and size each round to ~20 ms
        f()
    counts = {}
    for k, f in fns.items():
        t = time.perf_counter()
        n = 0
        while time.perf_counter() - t < 0.02:
            f()
            n += 1
        counts[k] = max(n, 1)
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            n = counts[k]
            t = time.perf_counter()
            for _ in range(n):
                f()
            samples[k].append((time.perf_counter() - t) / n * 1e6)
    return {k: statistics.median(v) for k, v in samples.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.serde", description=__doc__)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)

    from agentgraph_nb.checkpoint.serde import Serializer

    state = make_state()
    ours = Serializer()
    ours.register(Doc)
    blob = ours.dumps(state)
    assert ours.loads(blob) == state
    fns: dict[str, Callable[[], Any]] = {
        "ours dumps": lambda: ours.dumps(state),
        "ours loads": lambda: ours.loads(blob),
    }
    notes = []
    before_mod = _before_module()
    if before_mod is not None:
        before = before_mod.Serializer()
        before.register(Doc)
        same = before.dumps(state) == blob
        notes.append(f"bytes written by ours and by {BASE}: {'identical' if same else 'DIFFERENT'}")
        if not same:
            print("ERROR: the on-disk format changed", file=sys.stderr)
            return 1
        fns["before dumps"] = lambda: before.dumps(state)
        fns["before loads"] = lambda: before.loads(blob)
    else:
        notes.append(f"before: git show {BASE} failed (not a git checkout?); not measured")
    floor = _ormsgpack_same_design()
    if floor is not None:
        fdumps, floads = floor
        fblob = fdumps(state)
        assert floads(fblob) == state
        import ormsgpack

        fns["floor dumps"] = lambda: fdumps(state)
        fns["floor loads"] = lambda: floads(fblob)
        nblob = ormsgpack.packb(state, default=list)
        fns["native dumps"] = lambda: ormsgpack.packb(state, default=list)
        fns["native loads"] = lambda: ormsgpack.unpackb(nblob)
    else:
        notes.append("ormsgpack is not installed: no floor")
    try:
        from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
    except ImportError:
        notes.append("LangGraph is not installed: not measured")
    else:
        lg = JsonPlusSerializer()
        typed = lg.dumps_typed(state)
        fns["LangGraph dumps"] = lambda: lg.dumps_typed(state)
        fns["LangGraph loads"] = lambda: lg.loads_typed(typed)
    res = _time(fns, args.rounds)

    def cell(k: str) -> str:
        return f"{res[k]:.1f}" if k in res else "-"

    print(f"Rich state: 20 dataclasses (UUID, set, datetime, float, list each) + a set + a datetime; "
          f"{len(blob):,} bytes. Median of {args.rounds} interleaved rounds, µs per call.\n")
    print("| | ours | before (" + BASE + ") | floor: same design on ormsgpack | ormsgpack native | LangGraph JsonPlus |")
    print("|---|---:|---:|---:|---:|---:|")
    for op in ("dumps", "loads"):
        print(f"| {op} | {cell('ours ' + op)} | {cell('before ' + op)} | {cell('floor ' + op)} | "
              f"{cell('native ' + op)} | {cell('LangGraph ' + op)} |")
    if "before dumps" in res:
        print(f"\nours vs before: dumps {res['before dumps'] / res['ours dumps']:.1f}x faster, "
              f"loads {res['before loads'] / res['ours loads']:.1f}x faster")
    if "floor dumps" in res:
        print(f"ours vs the floor: dumps {res['ours dumps'] / res['floor dumps']:.1f}x, "
              f"loads {res['ours loads'] / res['floor loads']:.1f}x")
    if "LangGraph dumps" in res:
        print(f"ours vs LangGraph: dumps {res['LangGraph dumps'] / res['ours dumps']:.1f}x faster, "
              f"loads {res['LangGraph loads'] / res['ours loads']:.1f}x faster")
    for n in notes:
        print(f"- {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
