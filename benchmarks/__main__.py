"""``python -m benchmarks [--quick] [--only NAME[,NAME]] [--repeat N]``: run the workloads on
agentgraph_nb and LangGraph, print the markdown table and save it as
``benchmarks/results/latest.md`` and ``latest.json`` (``partial.*`` for ``--only``/``--quick`` runs)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks import WORKLOADS
from benchmarks._common import LG, OURS, RESULTS, Config, Row, fmt, fmt_ratio, systems


def _table(rows: list[Row]) -> str:
    head = (f"| workload | case | metric | unit | {OURS} | {LG} | {OURS} vs {LG} | target | pass | note |\n"
            "|---|---|---|---|---:|---:|---:|---|:-:|---|")
    lines = [head]
    for r in rows:
        mark = "" if r.passed is None else ("pass" if r.passed else "**FAIL**")
        lines.append(
            f"| {r.workload} | {r.case} | {r.metric} | {r.unit} | {fmt(r.ours)} | {fmt(r.lg)} | "
            f"{fmt_ratio(r.ratio)} | {r.target} | {mark} | {r.note} |"
        )
    return "\n".join(lines)


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes and few repetitions (a smoke test)")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help=f"run only these workloads (comma-separated or repeated): {', '.join(WORKLOADS)}")
    ap.add_argument("--repeat", type=int, default=None, help="repetitions per measurement (median reported); "
                    "default 5, or 3 with --quick")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where latest.md and latest.json go")
    ap.add_argument("--no-save", action="store_true", help="print only")
    args = ap.parse_args(argv)

    only = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    unknown = [n for n in only if n not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    names = [n for n in WORKLOADS if not only or n in only]
    repeat = args.repeat if args.repeat is not None else (3 if args.quick else 5)
    if repeat < 1:
        ap.error("--repeat must be >= 1")
    cfg = Config(quick=args.quick, repeat=repeat, min_time=0.05 if args.quick else 0.2)

    from tqdm import tqdm

    syss = systems()
    started = datetime.now(timezone.utc)
    load0 = _loadavg()
    t0 = time.perf_counter()
    rows: list[Row] = []
    timings: dict[str, float] = {}
    errors: dict[str, str] = {}
    bar = tqdm(names, desc="benchmarks", unit="workload", file=sys.stderr)
    for name in bar:
        bar.set_postfix_str(name)
        mod = importlib.import_module(f"benchmarks.{name}")
        t = time.perf_counter()
        try:
            rows += mod.run(cfg)
        except Exception as exc:  # one broken workload must not lose the others' figures
            errors[name] = f"{type(exc).__name__}: {exc}"
            cfg.note(f"{name}: FAILED: {type(exc).__name__}: {exc}")
            traceback.print_exc()
        timings[name] = time.perf_counter() - t
    bar.close()
    total = time.perf_counter() - t0

    failed = [r for r in rows if r.passed is False]
    with_target = [r for r in rows if r.passed is not None]
    meta: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(total, 1),
        "command": "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
        "quick": cfg.quick,
        "repeat": cfg.repeat,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": load0,
        "loadavg_end": _loadavg(),
        "versions": {s.label: s.version() for s in syss},
        "workload_seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    header = (
        f"# agentgraph_nb vs LangGraph\n\n"
        f"{meta['started']} · {meta['command'].strip()} · {OURS} {meta['versions'][OURS]}, "
        f"{LG} {meta['versions'][LG]} · Python {meta['python']} · {meta['cpus']} CPUs · "
        f"load {load0} → {meta['loadavg_end']} · {total:.0f} s\n\n"
        f"Medians of {cfg.repeat} repetitions (interleaved between the systems). The ratio is how many times "
        f"better {OURS} is (LangGraph's time over ours, or our throughput over LangGraph's).\n\n"
    )
    notes = "".join(f"- {n}\n" for n in cfg.notes)
    summary = f"\n\n{len(with_target) - len(failed)} of {len(with_target)} targets pass.\n"
    md = header + _table(rows) + summary + (f"\nNotes:\n{notes}" if notes else "")
    print(md)
    if not args.no_save:
        args.out.mkdir(parents=True, exist_ok=True)
        # a partial or quick run must not overwrite the full table the README quotes
        stem = "latest" if not (args.only or args.quick) else "partial"
        (args.out / f"{stem}.md").write_text(md, encoding="utf-8")
        (args.out / f"{stem}.json").write_text(json.dumps(
            {"meta": meta, "rows": [r.to_json() for r in rows], "notes": cfg.notes, "errors": errors},
            indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"saved {args.out / (stem + '.md')} and {args.out / (stem + '.json')}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
