"""invoke() and ainvoke() inside a real Jupyter kernel, whose event loop is already running."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

CELLS = [
    "import asyncio\nfrom agentgraph_nb import StateGraph, START\n"
    "queue = asyncio.Queue()  # an async client bound to the kernel's own loop\n"
    "for i in range(3):\n    await queue.put(i)",
    "async def use_client(s):\n    v = await queue.get()\n    return {'got': s.get('got', []) + [v]}\n"
    "def plain(s):\n    return {'sync': True}\n"
    "g = StateGraph(dict).add_node('c', use_client).add_node('p', plain).add_edge(START, 'c').add_edge('c', 'p')\n"
    "app = g.compile()",
    "print('sync invoke', app.invoke({}))",
    "print('top-level await', await app.ainvoke({}))",
    "print('stream', list(app.stream({}, mode='updates')))",
]


@pytest.mark.timeout(120)
def test_invoke_and_ainvoke_in_a_running_kernel() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    outs = ["".join(o.get("text", "") for o in c.outputs) for c in nb.cells[2:]]
    assert outs[0].strip() == "sync invoke {'got': [0], 'sync': True}"
    assert outs[1].strip() == "top-level await {'got': [1], 'sync': True}"
    assert outs[2].strip() == "stream [{'c': {'got': [2]}}, {'p': {'sync': True}}]"


DISPLAY_CELLS = [
    "from typing import TypedDict\nfrom agentgraph_nb import StateGraph, START, END\n"
    "class S(TypedDict, total=False):\n    x: int\n"
    "g = StateGraph(S, name='k').add_node('a', lambda s: {'x': 1}).add_node('b', lambda s: {'x': 2})\n"
    "app = g.add_edge(START, 'a').add_edge('a', 'b').add_edge('b', END).compile(checkpointer=None)\n"
    "app.record()",
    "app.dashboard()",  # before any run: no latency yet (it used to go out as NaN)
    "app.batch([{}] * 20)\napp.timeline()",
    "app.dashboard()",
]


def _nan_paths(obj: object, path: str = "") -> list[str]:
    if (isinstance(obj, float) and obj != obj) or obj in (float("inf"), float("-inf")):
        return [path]
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _nan_paths(v, f"{path}.{k}")]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in _nan_paths(v, f"{path}[{i}]")]
    return []


@pytest.mark.timeout(180)
def test_dashboard_and_timeline_display_quietly_in_a_real_kernel() -> None:
    """Every message a display sends is strict JSON (the kernel printed "Message serialization
    failed ... Out of range float values are not JSON compliant" on every dashboard display),
    nothing goes to stderr, and each widget shows its static picture and then its view."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        for code in DISPLAY_CELLS:
            msg_id = kc.execute(code)
            kinds: list[str] = []
            while True:
                msg = kc.get_iopub_msg(timeout=120)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                kind = msg["msg_type"]
                if kind == "status" and msg["content"]["execution_state"] == "idle":
                    break
                content = msg["content"]
                assert kind != "error", f"{code!r}: {content.get('ename')}: {content.get('evalue')}"
                assert not (kind == "stream" and content["name"] == "stderr"), (
                    f"{code!r} wrote to stderr: {content['text']}"
                )
                assert not _nan_paths(content), f"{code!r}: NaN sent in {kind}: {_nan_paths(content)[:5]}"
                if kind == "display_data":
                    kinds.append(
                        "static" if "agentgraph-static" in content["data"].get("text/html", "")
                        else "view" if "application/vnd.jupyter.widget-view+json" in content["data"]
                        else "other"
                    )  # fmt: skip
            if code.endswith(("dashboard()", "timeline()")):
                assert kinds == ["static", "view"], f"{code!r} displayed {kinds}"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
