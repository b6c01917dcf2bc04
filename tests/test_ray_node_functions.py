"""How a node's function reaches a Ray worker: inline with each task when it pickles small, through
the object store (put once) when it is large. Both kinds run on the real two-node cluster."""

from __future__ import annotations

import os
import sys
from typing import Any, TypedDict

import pytest

from agentgraph_nb import END, START, StateGraph

cloudpickle = pytest.importorskip("ray.cloudpickle", reason="ray is not installed (pip install 'agentgraph_nb[ray]')")
# Ray workers cannot import this test module: its node functions travel by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class S(TypedDict, total=False):
    x: int
    small_pid: int
    big_pid: int
    checksum: int


def small(s: S) -> dict[str, Any]:
    return {"x": s["x"] + 1, "small_pid": os.getpid()}


def make_big() -> Any:
    table = bytes(range(256)) * 1024  # 256 KiB captured by the closure: too large to go inline

    def big(s: S) -> dict[str, Any]:
        return {"x": s["x"] * 10, "big_pid": os.getpid(), "checksum": sum(table[:: 4096])}

    return big


def test_small_and_large_node_functions_both_run_on_workers(ray_executor: Any) -> None:
    big = make_big()
    assert len(cloudpickle.dumps(small)) < 64 << 10 < len(cloudpickle.dumps(big))
    g = StateGraph(S, name="fns").add_node("small", small).add_node("big", big)
    app = g.add_edge(START, "small").add_edge("small", "big").add_edge("big", END).compile()
    events: list[Any] = []
    for x in (1, 2):  # the second run reuses what the first sent (the large function's ref)
        events.clear()
        out = app.invoke({"x": x}, executor=ray_executor, listeners=[events.append])
        assert out["x"] == (x + 1) * 10
        assert out["checksum"] == sum((bytes(range(256)) * 1024)[:: 4096])
        assert os.getpid() not in (out["small_pid"], out["big_pid"])  # both ran in Ray workers
        workers = {e.node: e.data["pid"] for e in events if e.kind == "node_worker"}
        assert workers == {"small": out["small_pid"], "big": out["big_pid"]}
    # what the tasks were given: the small function itself, an object ref (put once) for the large one
    import ray

    assert ray_executor._fn_ref(small) is small
    ref = ray_executor._fn_ref(big)
    assert isinstance(ref, ray.ObjectRef) and ray_executor._fn_ref(big) is ref
