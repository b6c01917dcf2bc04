"""Where our engine spends its time: ``python -m benchmarks.profile [--top 25] [--pyinstrument]``.

Profiles (cProfile, sorted by own time; or pyinstrument's call tree) agentgraph_nb alone on
  * ``chain100``: the 100-node chain, ``invoke()`` 2,000 times;
  * ``runs3``: the 3-node graph, ``invoke()`` 20,000 times;
  * ``concurrent10k``: 10,000 concurrent ``ainvoke`` runs of the 3-node graph whose nodes sleep 10 ms;
  * ``fanout_send``: the 100-branch ``Send`` fan-out with sync nodes, ``invoke()`` 300 times;
  * ``listener``: the 100-node chain with ``app.listen(lambda e: None)``, ``invoke()`` 1,000 times.
and writes the reports to ``benchmarks/results/profile.txt`` (and prints them).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, chain, sleepy, system


def _chain100() -> Callable[[], Any]:
    app = chain(system("ours"), 100)

    def work() -> None:
        for _ in range(2000):
            app.invoke({"x": 0})

    return work


def _runs3() -> Callable[[], Any]:
    app = chain(system("ours"), 3)

    def work() -> None:
        for _ in range(20000):
            app.invoke({"x": 0})

    return work


def _concurrent10k() -> Callable[[], Any]:
    app = chain(system("ours"), 3, sleepy)

    def work() -> None:
        async def main() -> None:
            await asyncio.gather(*(app.ainvoke({"x": 0}) for _ in range(10_000)))

        asyncio.run(main())

    return work


def _fanout_send() -> Callable[[], Any]:
    from benchmarks.fanout import send_fanout

    app = send_fanout(system("ours"), 100)

    def work() -> None:
        for _ in range(300):
            app.invoke({"items": []})

    return work


def _listener() -> Callable[[], Any]:
    app = chain(system("ours"), 100)
    app.listen(lambda e: None)

    def work() -> None:
        for _ in range(1000):
            app.invoke({"x": 0})

    return work


CASES: dict[str, Callable[[], Callable[[], Any]]] = {
    "chain100": _chain100,
    "runs3": _runs3,
    "concurrent10k": _concurrent10k,
    "fanout_send": _fanout_send,
    "listener": _listener,
}


def profile_case(name: str, top: int, use_pyinstrument: bool) -> str:
    work = CASES[name]()
    if use_pyinstrument:
        from pyinstrument import Profiler

        prof = Profiler(interval=0.0005, async_mode="enabled")
        prof.start()
        work()
        prof.stop()
        return prof.output_text(unicode=True, color=False, show_all=False)
    pr = cProfile.Profile()
    pr.enable()
    work()
    pr.disable()
    buf = io.StringIO()
    st = pstats.Stats(pr, stream=buf)
    st.sort_stats("tottime").print_stats(top)
    st.sort_stats("cumulative").print_stats(top)
    text = buf.getvalue()
    root = str(Path(__file__).resolve().parent.parent) + "/"
    return text.replace(root, "").replace(sys.prefix + "/lib/python3", "py3")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    ap.add_argument("cases", nargs="*", metavar="CASE", help=f"default: all of {', '.join(CASES)}")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--pyinstrument", action="store_true", help="pyinstrument call trees instead of cProfile")
    ap.add_argument("--out", type=Path, default=RESULTS / "profile.txt")
    args = ap.parse_args(argv)
    bad = [c for c in args.cases if c not in CASES]
    if bad:
        ap.error(f"unknown case(s) {', '.join(bad)}; choose from {', '.join(CASES)}")
    out = []
    for name in args.cases or list(CASES):
        text = profile_case(name, args.top, args.pyinstrument)
        out.append(f"=== {name} ===\n{text}")
        print(out[-1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(out), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
