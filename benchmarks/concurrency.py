"""(5) R concurrent ``ainvoke`` runs of a 3-node graph whose nodes ``await asyncio.sleep(0.01)``,
all started at once with ``asyncio.gather``: wall time and peak memory per run (the growth of
the peak RSS during the runs, divided by R: ``VmHWM``, the ``ru_maxrss`` of this process alone,
reset to the current RSS just before the runs through ``/proc/self/clear_refs`` so that an
earlier peak, from imports or inherited from the parent at exec, cannot hide it). Each (system, R) runs in a child process with a
time limit (ours 60 s, LangGraph 130 s; with --quick 30 s and 15 s) and a 12 GiB address-space limit; once a size fails for
a system, its larger sizes are skipped."""

from __future__ import annotations

from typing import Any

from benchmarks._common import Config, Row, run_child, timed_row

NAME = "concurrency"
TITLE = "R concurrent ainvoke runs (3 nodes, each sleeps 10 ms)"

LIMITS = {"ours": 60.0, "lg": 130.0}
QUICK_LIMITS = {"ours": 30.0, "lg": 15.0}
MEM_LIMIT = 12 << 30


def child(system: str, r: int) -> dict[str, Any]:
    import asyncio
    import gc
    import time

    from benchmarks._common import chain, maxrss_bytes, reset_maxrss, sleepy
    from benchmarks._common import system as get_system

    s = get_system(system)
    app = chain(s, 3, sleepy)
    call = s.invoker(app, aio=True)

    async def main() -> dict[str, Any]:
        assert (await call({"x": 0}))["x"] == 3  # warm up
        gc.collect()
        reset = reset_maxrss()
        rss0 = maxrss_bytes()
        t = time.perf_counter()
        outs = await asyncio.gather(*(call({"x": 0}) for _ in range(r)))
        wall = time.perf_counter() - t
        rss1 = maxrss_bytes()
        bad = sum(1 for o in outs if o["x"] != 3)
        return {"wall_s": wall, "rss_before": rss0, "rss_after": rss1, "bytes_per_run": (rss1 - rss0) / r,
                "bad": bad, "peak_reset": reset}

    return asyncio.run(main())


def run(cfg: Config) -> list[Row]:
    sizes = (1_000, 10_000) if cfg.quick else (1_000, 10_000, 100_000, 1_000_000)
    failed: dict[str, str] = {}
    last: dict[str, tuple[int, float]] = {}
    rows: list[Row] = []
    for r in sizes:
        res: dict[str, dict[str, Any]] = {}
        for key in ("ours", "lg"):
            if key in failed:
                res[key] = {"error": f"skipped ({failed[key]})"}
                continue
            limit = (QUICK_LIMITS if cfg.quick else LIMITS)[key]
            if key == "lg" and key in last and last[key][1] * r / last[key][0] > limit:
                # LangGraph's time grows at least linearly with R: do not spend the limit to learn it
                proj = last[key][1] * r / last[key][0]
                failed[key] = f"projected ≥ {proj:.0f} s from R={last[key][0]:,} > limit {limit:g} s"
                res[key] = {"error": f"skipped ({failed[key]})"}
                continue
            out = run_child("benchmarks.concurrency:child", {"system": key, "r": r}, timeout=limit,
                            mem_bytes=MEM_LIMIT)
            if "error" in out:
                if out["error"] == "timeout":
                    out["error"] = f"timeout > {limit:g} s"
                failed[key] = f"{out['error']} at R={r:,}"
            elif out.get("bad"):
                out = {"error": f"{out['bad']} runs returned a wrong state"}
                failed[key] = out["error"]
            else:
                last[key] = (r, out["wall_s"])
            res[key] = out
        o, lg = res["ours"], res["lg"]
        notes = [f"{name}: {v['error']}" for name, v in (("ours", o), ("LG", lg)) if "error" in v]
        note = "; ".join(notes)
        big = r == 1_000_000
        wall = timed_row(NAME, f"R = {r:,}", "wall time", "s", o.get("wall_s"), lg.get("wall_s"),
                         max_ours=60.0 if big else None, target="< 60 s" if big else "", note=note)
        kib_o = o["bytes_per_run"] / 1024 if "bytes_per_run" in o else None
        kib_l = lg["bytes_per_run"] / 1024 if "bytes_per_run" in lg else None
        mem = timed_row(NAME, f"R = {r:,}", "peak RSS per run", "KiB", kib_o, kib_l,
                        max_ours=4.0 if big else None, target="≤ 4 KiB" if big else "", note=note)
        if big and "error" in o:
            wall.passed = mem.passed = False
        rows += [wall, mem]
    if cfg.quick:
        cfg.note("concurrency: --quick runs R = 1k and 10k only, with time limits of 30 s (ours) and 15 s (LG)")
    return rows
