"""Interleaved timing for the node-library benchmarks: median per-call time of several
callables, measured in alternating batches so that drift (other processes, CPU frequency)
hits them alike."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["interleaved", "paired", "report"]


def interleaved(calls: dict[str, Callable[[], Any]], *, batch: int = 200, rounds: int = 15, warmup: int = 100) -> dict[str, float]:
    """Median seconds per call of each callable over ``rounds`` alternating batches."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in calls}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            order = list(calls.items())
            if r % 2:
                order.reverse()
            for name, fn in order:
                t = time.perf_counter()
                for _ in range(batch):
                    fn()
                samples[name].append((time.perf_counter() - t) / batch)
    finally:
        if gc_was:
            gc.enable()
    return {k: statistics.median(v) for k, v in samples.items()}


def paired(base: Callable[[], Any], other: Callable[[], Any], *, batch: int = 100, rounds: int = 41, warmup: int = 100) -> tuple[float, float, float]:
    """(base, other, median of the per-round differences) in seconds per call.

    Each round times a batch of ``base`` and a batch of ``other`` back to back (alternating which
    goes first), so the load of the machine in that moment hits both; the median of the rounds'
    differences is far steadier than the difference of two medians when the floor is noisy.
    """
    for _ in range(warmup):
        base()
        other()
    b: list[float] = []
    o: list[float] = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            pair = [(b, base), (o, other)]
            if r % 2:
                pair.reverse()
            for out, fn in pair:
                t = time.perf_counter()
                for _ in range(batch):
                    fn()
                out.append((time.perf_counter() - t) / batch)
    finally:
        if gc_was:
            gc.enable()
    return statistics.median(b), statistics.median(o), statistics.median(y - x for x, y in zip(b, o))


def report(title: str, times: dict[str, float], base: str, target_us: float) -> list[str]:
    """Lines of a small table: each callable's µs per call and its difference to ``base``."""
    lines = [title, f"{'case':<44} {'µs/call':>9} {'vs bare':>9}"]
    for name, t in times.items():
        diff = (t - times[base]) * 1e6
        lines.append(f"{name:<44} {t * 1e6:9.1f} {'' if name == base else f'{diff:+9.1f}'}")
    return lines
