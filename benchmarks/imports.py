"""(7) Import time: a fresh interpreter times ``import agentgraph_nb`` against
``import langgraph.graph`` with ``time.perf_counter`` around the import; median of 5 (one
discarded run first, so both read warm files and compiled bytecode)."""

from __future__ import annotations

import statistics
import subprocess
import sys

from benchmarks._common import ROOT, Config, Row, timed_row

NAME = "imports"
TITLE = "import time"

MODULES = {"ours": "agentgraph_nb", "lg": "langgraph.graph"}
CODE = "import time; t = time.perf_counter(); import {mod}; print(time.perf_counter() - t)"


def _once(mod: str) -> float:
    out = subprocess.run([sys.executable, "-c", CODE.format(mod=mod)], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=120)
    return float(out.stdout.strip().splitlines()[-1])


def run(cfg: Config) -> list[Row]:
    n = 3 if cfg.quick else 5
    samples: dict[str, list[float]] = {k: [] for k in MODULES}
    for mod in MODULES.values():
        _once(mod)
    for _ in range(n):
        for key, mod in MODULES.items():
            samples[key].append(_once(mod))
    med = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
    return [timed_row(NAME, f"import {MODULES['ours']} vs import {MODULES['lg']}", "import time", "ms",
                      med["ours"], med["lg"], max_ours=100.0, target="≤100 ms",
                      note=f"median of {n} fresh interpreters")]
