"""(8) What an attached listener costs: the 100-node chain with no listener and with
``app.listen(lambda e: None)``. LangGraph's nearest counterpart is a no-op callback handler
(``config={"callbacks": [handler]}``), timed alongside."""

from __future__ import annotations

from typing import Any

from benchmarks._common import Config, Row, chain, compare, fmt, sync_batch, systems, timed_row

NAME = "listener"
TITLE = "overhead of an attached listener (100-node chain)"

N = 100


def _lg_handler() -> Any:
    from langchain_core.callbacks import BaseCallbackHandler

    class Noop(BaseCallbackHandler):
        pass

    return Noop()


def run(cfg: Config) -> list[Row]:
    batches = {}
    events = 0
    for s in systems():
        plain = chain(s, N)
        watched = chain(s, N)
        if s.key == "ours":
            seen: list[Any] = []
            stop = watched.listen(seen.append)
            watched.invoke({"x": 0})
            stop()
            events = len(seen)
            watched.listen(lambda e: None)
            call_w = s.invoker(watched)
        else:
            call_w = s.invoker(watched, callbacks=[_lg_handler()])
        for tag, call in (("none", s.invoker(plain)), ("listener", call_w)):
            assert call({"x": 0})["x"] == N
            batches[f"{s.key}-{tag}"] = sync_batch(call, lambda: {"x": 0})
    t = compare(batches, cfg)
    per = {k: v / N * 1e6 for k, v in t.items()}
    rows = [
        timed_row(NAME, "100-node chain, nothing attached", "per node", "µs", per["ours-none"], per["lg-none"]),
        timed_row(NAME, "100-node chain, listener attached (LG: no-op callback handler)", "per node", "µs",
                  per["ours-listener"], per["lg-listener"]),
    ]
    o_ov = per["ours-listener"] - per["ours-none"]
    l_ov = per["lg-listener"] - per["lg-none"]
    rows.append(timed_row(
        NAME, "listener overhead", "extra per node", "µs", o_ov, l_ov,
        note=f"ours +{o_ov / per['ours-none'] * 100:.0f}%, LG +{l_ov / per['lg-none'] * 100:.0f}%; "
             f"ours emits {fmt(events)} events per run",
    ))
    return rows
