"""Side-by-side benchmarks: agentgraph_nb against LangGraph, same workloads, same run.

    python -m benchmarks                 # every workload, medians of 5 repetitions
    python -m benchmarks --quick         # small sizes, few repetitions (a smoke test, < 60 s)
    python -m benchmarks --only chain,fanout --repeat 9
    python -m benchmarks.profile         # cProfile of our hot paths (chain, 3-node runs, 10k concurrent)

Prints a markdown table (figures of both systems, the ratio, the target, pass/fail) and writes
it to ``benchmarks/results/latest.md`` and ``latest.json``. Ratios are "how many times better
agentgraph_nb is": LangGraph's time over ours, or our throughput over LangGraph's. Needs the
``bench`` extra (``langgraph>=1.0``, ``langgraph-checkpoint-sqlite``, ``pyinstrument``).

One module per workload; each exposes ``NAME``, ``TITLE`` and ``run(cfg) -> list[Row]``.
"""

WORKLOADS = (
    "chain",
    "runs",
    "fanout",
    "checkpoint",
    "concurrency",
    "scale",
    "imports",
    "listener",
    "first_display",
    "subgraphs",
    "loops",
)
