"""(5) R concurrent ``ainvoke`` runs of a 3-node graph whose nodes ``await asyncio.sleep(0.01)``,
all started at once with ``asyncio.gather``: wall time and peak memory per run (the growth of
the peak RSS during the runs, divided by R: ``VmHWM``, the ``ru_maxrss`` of this process alone,
reset to the current RSS just before the runs through ``/proc/self/clear_refs`` so that an
earlier peak, from imports or inherited from the parent at exec, cannot hide it). Each (system, R)
runs in a child process with a time limit (LangGraph 130 s; ours 60 s, but at R = 1M it may run to
240 s so that a miss is measured rather than cut off; with --quick 30 s and 15 s) and a 12 GiB
address-space limit; once a size fails for a system, its larger sizes are skipped.

The floor: the same R coroutines doing the same three sleeps with no framework at all ("bare
asyncio"), measured in the same run and given in each row's note. At R = 1M a second pair of rows
repeats ours and the floor with the garbage collector's thresholds raised during the runs
(``gc.set_threshold(50_000, 20, 100)``; no target): with the defaults, each full collection walks
every live object, a million runs' worth, and the burst triggers dozens of them."""

from __future__ import annotations

from typing import Any

from benchmarks._common import Config, Row, run_child, timed_row

NAME = "concurrency"
TITLE = "R concurrent ainvoke runs (3 nodes, each sleeps 10 ms)"

LIMITS = {"ours": 60.0, "lg": 130.0, "asyncio": 240.0}
QUICK_LIMITS = {"ours": 30.0, "lg": 15.0, "asyncio": 30.0}
BIG = 1_000_000
BIG_LIMIT = 240.0  # ours at R = 1M: measure the miss instead of stopping at the 60 s target
MEM_LIMIT = 12 << 30
GC_TUNED = (50_000, 20, 100)  # the second R = 1M pair: young collections 70x rarer, no full ones in a burst


def child(system: str, r: int, gc_tuned: bool = False) -> dict[str, Any]:
    import asyncio
    import gc
    import time

    from benchmarks._common import maxrss_bytes, reset_maxrss

    if system == "asyncio":

        async def node(s: dict[str, Any]) -> dict[str, Any]:
            await asyncio.sleep(0.01)
            return {"x": s["x"] + 1}

        async def call(s: dict[str, Any]) -> dict[str, Any]:
            return await node(await node(await node(s)))

    else:
        from benchmarks._common import chain, sleepy
        from benchmarks._common import system as get_system

        s = get_system(system)
        call = s.invoker(chain(s, 3, sleepy), aio=True)

    gc_time = [0.0, 0.0, 0]  # started at, seconds in collections, full collections

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_time[0] = time.perf_counter()
        else:
            gc_time[1] += time.perf_counter() - gc_time[0]
            gc_time[2] += info["generation"] == 2

    async def main() -> dict[str, Any]:
        assert (await call({"x": 0}))["x"] == 3  # warm up
        gc.collect()
        gc.callbacks.append(on_gc)
        reset = reset_maxrss()
        rss0 = maxrss_bytes()
        before = gc.get_threshold()
        if gc_tuned:
            gc.set_threshold(*GC_TUNED)
        t = time.perf_counter()
        outs = await asyncio.gather(*(call({"x": 0}) for _ in range(r)))
        wall = time.perf_counter() - t
        gc.set_threshold(*before)
        gc.callbacks.remove(on_gc)
        rss1 = maxrss_bytes()
        bad = sum(1 for o in outs if o["x"] != 3)
        return {"wall_s": wall, "rss_before": rss0, "rss_after": rss1, "bytes_per_run": (rss1 - rss0) / r,
                "bad": bad, "peak_reset": reset, "gc_s": gc_time[1], "gc_full": gc_time[2]}

    return asyncio.run(main())


def _floor_note(b: dict[str, Any]) -> str:
    if "error" in b:
        return f"bare asyncio: {b['error']}"
    return (f"bare asyncio (same sleeps, no framework): {b['wall_s']:.3g} s ({b['gc_s']:.3g} s in garbage "
            f"collection), {b['bytes_per_run'] / 1024:.2f} KiB/run")


def run(cfg: Config) -> list[Row]:
    sizes = (1_000, 10_000) if cfg.quick else (1_000, 10_000, 100_000, BIG)
    limits = QUICK_LIMITS if cfg.quick else LIMITS
    failed: dict[str, str] = {}
    last: dict[str, tuple[int, float]] = {}
    rows: list[Row] = []
    for r in sizes:
        res: dict[str, dict[str, Any]] = {}
        for key in ("ours", "lg", "asyncio"):
            if key in failed:
                res[key] = {"error": f"skipped ({failed[key]})"}
                continue
            limit = BIG_LIMIT if (key == "ours" and r == BIG and not cfg.quick) else limits[key]
            if key == "lg" and key in last and last[key][1] * r / last[key][0] > limit:
                # LangGraph's time grows at least linearly with R: do not spend the limit to learn it
                proj = last[key][1] * r / last[key][0]
                failed[key] = f"projected ≥ {proj:.0f} s from R={last[key][0]:,} > limit {limit:g} s"
                res[key] = {"error": f"skipped ({failed[key]})"}
                continue
            res[key] = out = _measure(key, r, limit)
            if "error" in out:
                failed[key] = f"{out['error']} at R={r:,}"
            else:
                last[key] = (r, out["wall_s"])
        rows += _rows(f"R = {r:,}", r == BIG, res)
    if not cfg.quick:
        tuned = {key: _measure(key, BIG, BIG_LIMIT, gc_tuned=True) for key in ("ours", "asyncio")}
        tuned["lg"] = {"error": "not run"}
        rows += _rows(f"R = {BIG:,}, gc.set_threshold{GC_TUNED}", False, tuned)
    if cfg.quick:
        cfg.note("concurrency: --quick runs R = 1k and 10k only, with time limits of 30 s (ours) and 15 s (LG)")
    return rows


def _measure(key: str, r: int, limit: float, gc_tuned: bool = False) -> dict[str, Any]:
    out = run_child("benchmarks.concurrency:child", {"system": key, "r": r, "gc_tuned": gc_tuned},
                    timeout=limit, mem_bytes=MEM_LIMIT)
    if "error" in out:
        if out["error"] == "timeout":
            out["error"] = f"timeout > {limit:g} s"
    elif out.get("bad"):
        out = {"error": f"{out['bad']} runs returned a wrong state"}
    return out


def _rows(case: str, big: bool, res: dict[str, dict[str, Any]]) -> list[Row]:
    o, lg = res["ours"], res["lg"]
    notes = [f"{name}: {v['error']}" for name, v in (("ours", o), ("LG", lg)) if "error" in v]
    if "gc_s" in o:
        notes.append(f"ours: {o['gc_s']:.3g} s of it in garbage collection ({o['gc_full']} full collections)")
    notes.append(_floor_note(res["asyncio"]))
    note = "; ".join(notes)
    wall = timed_row(NAME, case, "wall time", "s", o.get("wall_s"), lg.get("wall_s"),
                     max_ours=60.0 if big else None, target="< 60 s" if big else "", note=note)
    kib_o = o["bytes_per_run"] / 1024 if "bytes_per_run" in o else None
    kib_l = lg["bytes_per_run"] / 1024 if "bytes_per_run" in lg else None
    mem = timed_row(NAME, case, "peak RSS per run", "KiB", kib_o, kib_l,
                    max_ours=4.0 if big else None, target="≤ 4 KiB" if big else "", note=note)
    if big and "error" in o:
        wall.passed = mem.passed = False
    return [wall, mem]
