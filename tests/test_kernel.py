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
