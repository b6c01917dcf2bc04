"""Short tracebacks for errors of runs: in a real Jupyter kernel, in a script, and the pieces."""

from __future__ import annotations

import asyncio
import operator
import pickle
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

import nbformat
import pytest
from nbclient import NotebookClient

import agentgraph_nb
from agentgraph_nb import (
    START,
    Command,
    InvalidUpdateError,
    NodeTimeoutError,
    StateGraph,
)

ENGINE_FRAMES = ("run_sync_task", "run_loop", "coro.send", "_loop.py", "_runner.py", "compiled.py")
ANSI = re.compile(r"\x1b\[[0-9;]*m")

SETUP = """\
%load_ext agentgraph_nb
from typing import TypedDict
from agentgraph_nb import StateGraph, START

class S(TypedDict, total=False):
    x: int
"""

KERNEL_CELLS = {
    "raises": (
        "def check(v):\n"
        "    raise ValueError(f'bad input {v}')\n"
        "def boom(s):\n"
        "    check(s['x'])\n"
        "    return {'x': 2}\n"
        "app = StateGraph(S).add_node('boom', boom).add_edge(START, 'boom').compile()\n"
        "app.invoke({'x': 1})"
    ),
    "tb": "%tb",
    "non_dict": (
        "def bad(s):\n"
        "    if s.get('x') is None:\n"
        "        return {'x': 0}\n"
        "    return f\"result {s['x']}\"\n"
        "app2 = StateGraph(S).add_node('bad', bad).add_edge(START, 'bad').compile()\n"
        "app2.invoke({'x': 1})"
    ),
    "unknown_key": (
        "def typo(s):\n"
        "    return {'y': s['x'] + 1}\n"
        "app3 = StateGraph(S).add_node('typo', typo).add_edge(START, 'typo').compile()\n"
        "app3.invoke({'x': 1})"
    ),
    "async_await": (
        "import asyncio\n"
        "async def fetch(s):\n"
        "    await asyncio.sleep(0)\n"
        "    raise ConnectionResetError('peer went away')\n"
        "app4 = StateGraph(S).add_node('fetch', fetch).add_edge(START, 'fetch').compile()\n"
        "await app4.ainvoke({'x': 1})"
    ),
    "async_sync_invoke": "app4.invoke({'x': 1})",
    "magic_run": "%agentgraph run app {'x': 1}",
    "other": "1 / 0",
    "syntax": "def f(:\n    pass",
}


def _error_text(cell: Any) -> str:
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert len(errors) == 1, cell.outputs
    return ANSI.sub("", "\n".join(errors[0].traceback))


@pytest.fixture(scope="module")
def kernel_outputs() -> dict[str, str]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP)] + [nbformat.v4.new_code_cell(c) for c in KERNEL_CELLS.values()]
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True).execute()
    assert not [o for o in nb.cells[0].outputs if o.output_type == "error"], nb.cells[0].outputs
    return {name: _error_text(cell) for name, cell in zip(KERNEL_CELLS, nb.cells[1:])}


def _assert_short(text: str, *must: str) -> None:
    lines = text.splitlines()
    assert len(lines) < 15, text
    for s in must:
        assert s in text, f"{s!r} not in:\n{text}"
    for frame in ENGINE_FRAMES:
        assert frame not in text, f"{frame!r} in:\n{text}"


@pytest.mark.timeout(120)
def test_kernel_node_that_raises_shows_the_users_frames(kernel_outputs: dict[str, str]) -> None:
    text = kernel_outputs["raises"]
    _assert_short(
        text,
        # the node's own error, then the note saying where it failed
        "ValueError: bad input 1\nnode 'boom' of graph 'S' failed at step 1 (attempt 1)",
        "app.invoke({'x': 1})",  # the call site
        "in boom  <- node 'boom', step 1",  # the node's frame, named
        "check(s['x'])",
        "raise ValueError(f'bad input {v}')",  # the line that raised, in a function the node calls
        "%tb",
    )
    assert re.search(r"Cell In\[\d+\], line 4, in boom", text)


@pytest.mark.timeout(120)
def test_kernel_percent_tb_still_shows_the_full_chain(kernel_outputs: dict[str, str]) -> None:
    text = kernel_outputs["tb"]
    assert "run_sync_task" in text and "run_loop" in text
    assert "ValueError: bad input 1\nnode 'boom' of graph 'S' failed at step 1 (attempt 1)" in text


@pytest.mark.timeout(120)
def test_kernel_non_dict_return_points_at_the_return_line(kernel_outputs: dict[str, str]) -> None:
    text = kernel_outputs["non_dict"]
    _assert_short(text, "InvalidUpdateError: node 'bad' returned str 'result 1'", "(at step 1)", "app2.invoke")
    # the return that can produce a string, not the one returning a dict
    assert re.search(r"Cell In\[\d+\], line 4, in bad  <- node 'bad' returned this \(step 1\)\n    return f\"result", text), text
    assert "return {'x': 0}" not in text


@pytest.mark.timeout(120)
def test_kernel_unknown_key_points_at_the_write(kernel_outputs: dict[str, str]) -> None:
    text = kernel_outputs["unknown_key"]
    _assert_short(text, "InvalidUpdateError: node 'typo' wrote unknown state key 'y'", "(at step 1)")
    assert re.search(r"line 2, in typo  <- node 'typo' writes 'y' here \(step 1\)\n    return \{'y': s\['x'\] \+ 1\}", text), text


@pytest.mark.timeout(120)
def test_kernel_async_node_short_with_await_and_with_sync_invoke(kernel_outputs: dict[str, str]) -> None:
    for name in ("async_await", "async_sync_invoke"):
        text = kernel_outputs[name]
        _assert_short(
            text,
            "ConnectionResetError: peer went away\nnode 'fetch' of graph 'S' failed at step 1 (attempt 1)",
            "in fetch  <- node 'fetch', step 1",
            "raise ConnectionResetError('peer went away')",
        )
        assert "asyncio" not in text and "nest_asyncio" not in text, text


@pytest.mark.timeout(120)
def test_kernel_magic_run_keeps_the_chain(kernel_outputs: dict[str, str]) -> None:
    text = kernel_outputs["magic_run"]
    _assert_short(text, "ValueError: bad input 1\nnode 'boom' of graph 'S' failed at step 1 (attempt 1",
                  "raise ValueError(f'bad input {v}')", "<- node 'boom', step 1")


@pytest.mark.timeout(120)
def test_kernel_other_errors_look_as_ipython_shows_them(kernel_outputs: dict[str, str]) -> None:
    text = kernel_outputs["other"]
    assert "ZeroDivisionError" in text and "Traceback (most recent call last)" in text
    assert "agentgraph_nb" not in text
    text = kernel_outputs["syntax"]
    assert "SyntaxError" in text and "def f(:" in text
    assert "agentgraph_nb" not in text and "interactiveshell" not in text and "Traceback" not in text, text


# -- scripts ---------------------------------------------------------------------------------------
SCRIPT = """\
import json
import agentgraph_nb
from agentgraph_nb import StateGraph, START
{optin}

def parse(s):
    return json.loads(s["text"])

def node(s):
    return {{"v": parse(s)}}

app = StateGraph(dict).add_node("node", node).add_edge(START, "node").compile()
app.invoke({{"text": "{{bad"}})
"""


def _run_script(tmp_path: Path, optin: str) -> str:
    script = tmp_path / "failing.py"
    script.write_text(SCRIPT.format(optin=optin))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 1
    return r.stderr


def test_script_opt_in_prints_the_short_form(tmp_path: Path) -> None:
    err = _run_script(tmp_path, "agentgraph_nb.short_tracebacks()")
    _assert_short(
        err,
        f'File "{tmp_path / "failing.py"}", line 10, in node  <- node \'node\', step 1',
        'return {"v": parse(s)}',
        'return json.loads(s["text"])',
        "frames in json",  # the library the node calls: one line
        "JSONDecodeError: Expecting property name",
        "\nnode 'node' of graph 'dict' failed at step 1 (attempt 1)\n",
        "short_tracebacks(False)",
    )


def test_script_without_opt_in_keeps_pythons_traceback(tmp_path: Path) -> None:
    err = _run_script(tmp_path, "")
    assert "run_sync_task" in err and "\nnode 'node' of graph 'dict' failed at step 1 (attempt 1)\n" in err


# -- the pieces ------------------------------------------------------------------------------------
class State(TypedDict, total=False):
    x: int
    notes: Annotated[list[int], operator.add]


def _failure(app: Any, inputs: Any = None) -> BaseException:
    try:
        app.invoke({"x": 1} if inputs is None else inputs)
    except Exception as exc:
        return exc
    raise AssertionError("the run did not fail")


def _graph(*nodes: tuple[str, Any], **options: Any) -> Any:
    g = StateGraph(State)
    for name, fn in nodes:
        g.add_node(name, fn, **options)
        g.add_edge(START, name)
    return g.compile()


def _short(exc: BaseException) -> str:
    text = agentgraph_nb.short_traceback(exc)
    _assert_short(text)
    return text


def test_parallel_sync_nodes_on_threads() -> None:
    def ok(s: Any) -> Any:
        return {"notes": [1]}

    def fails(s: Any) -> Any:
        raise KeyError("nope")

    text = _short(_failure(_graph(("ok", ok), ("fails", fails))))
    assert "in fails  <- node 'fails', step 1" in text and 'raise KeyError("nope")' in text
    assert "threading" not in text and "concurrent" not in text


def test_lambda_and_callable_object_returns() -> None:
    text = _short(_failure(_graph(("lam", lambda s: "oops"))))
    assert "in <lambda>  <- node 'lam' returned this (step 1)" in text

    class Node:
        def __call__(self, s: Any) -> Any:
            if s["x"]:
                return [1, 2]
            return {"x": 1}

    text = _short(_failure(_graph(("obj", Node()))))
    assert "in __call__  <- node 'obj' returned this (step 1)\n    return [1, 2]" in text


def test_several_possible_returns_are_all_shown() -> None:
    def two(s: Any) -> Any:
        if s["x"] > 5:
            return s["x"]
        return s.get("notes")

    text = _short(_failure(_graph(("two", two))))
    assert "<- node 'two' (step 1): one of these\n    return s[\"x\"]" in text
    assert "<- or here\n    return s.get(\"notes\")" in text


def test_unknown_key_written_through_a_command() -> None:
    def cmd(s: Any) -> Any:
        upd = {"x": 2}
        upd["typo"] = 3
        return Command(update=upd)

    text = _short(_failure(_graph(("cmd", cmd))))
    assert "in cmd  <- node 'cmd' writes 'typo' here (step 1)\n    upd[\"typo\"] = 3" in text


def test_conflicting_parallel_writes_point_at_a_writer() -> None:
    def p1(s: Any) -> Any:
        return {"x": 1}

    def p2(s: Any) -> Any:
        return {"x": 2}

    text = _short(_failure(_graph(("p1", p1), ("p2", p2))))
    assert "<- node 'p1' writes 'x' here (step 1)" in text and "both wrote state key 'x'" in text


def test_timeout_points_at_the_node_definition() -> None:
    def slow(s: Any) -> Any:
        time.sleep(0.3)
        return {}

    exc = _failure(_graph(("slow", slow), timeout=0.05))
    assert isinstance(exc, NodeTimeoutError)
    text = _short(exc)
    assert "in slow  <- node 'slow' (step 1), defined here\n    def slow(s: Any) -> Any:" in text


def test_async_node_under_ainvoke() -> None:
    async def fetch(s: Any) -> Any:
        await asyncio.sleep(0)
        raise ConnectionResetError("peer went away")

    app = _graph(("fetch", fetch))
    with pytest.raises(ConnectionResetError) as ei:
        asyncio.run(app.ainvoke({"x": 1}))
    text = _short(ei.value)
    assert "in fetch  <- node 'fetch', step 1" in text
    # asyncio.run(), which the caller calls, is one line (asyncio's own, or nest_asyncio2's once an
    # earlier run in this process made the loop re-entrant); the engine's use of asyncio is not shown
    assert re.search(r"\.\.\. \d+ frames in (asyncio|nest_asyncio2)\n", text), text
    assert "base_events" not in text and "tasks.py" not in text


def test_deep_recursion_keeps_the_first_and_last_frames() -> None:
    def countdown(n: int) -> int:
        if n == 0:
            raise ZeroDivisionError("bottom")
        return countdown(n - 1)

    def deep(s: Any) -> Any:
        return {"x": countdown(30)}

    text = _short(_failure(_graph(("deep", deep))))
    assert "in deep  <- node 'deep', step 1" in text and "... 28 more frames" in text
    lines = text.splitlines()
    assert lines[-3:] == [
        '    raise ZeroDivisionError("bottom")',
        "ZeroDivisionError: bottom",
        "node 'deep' of graph 'State' failed at step 1 (attempt 1)",
    ]


def test_errors_stay_picklable_and_full_traceback_has_everything() -> None:
    exc = _failure(_graph(("lam", lambda s: "oops")))
    assert isinstance(exc, InvalidUpdateError) and exc._node_fn is not None
    back = pickle.loads(pickle.dumps(exc))
    assert (back.node, back.step, str(back)) == (exc.node, exc.step, str(exc)) and back._node_fn is None
    full = agentgraph_nb.full_traceback(exc)
    assert "run_sync_task" in full and "normalize_result" in full


def test_short_form_only_for_errors_of_runs() -> None:
    from agentgraph_nb._traceback import should_shorten

    assert not should_shorten(_plain_error())
    assert should_shorten(_failure(_graph(("lam", lambda s: "oops"))))


def _plain_error() -> BaseException:
    try:
        {}["k"]
    except KeyError as exc:
        return exc
    raise AssertionError


def test_ipython_handler_chains_to_an_existing_one() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from agentgraph_nb import _traceback

    ip = InteractiveShell.instance()
    seen: list[str] = []
    _traceback.uninstall_ipython(ip)
    ip.set_custom_exc((LookupError,), lambda shell, et, ev, tb, tb_offset=None: seen.append(type(ev).__name__))
    try:
        _traceback.install_ipython(ip)
        ip.run_cell("{}['k']", store_history=False)
        assert seen == ["KeyError"]
        _traceback.uninstall_ipython(ip)
        ip.run_cell("[][1]", store_history=False)
        assert seen == ["KeyError", "IndexError"]
    finally:
        _traceback.uninstall_ipython(ip)
        ip.set_custom_exc((), None)


def test_notebook_dsl_graph_points_through_the_hot_reload_proxy(capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "agentgraph_nb")  # a no-op if an earlier test loaded it in this shell
    # off, then on: installs the handler even where an earlier test took it away
    ip.run_line_magic("config", "AgentGraphMagics.short_tracebacks = False")
    ip.run_line_magic("config", "AgentGraphMagics.short_tracebacks = True")
    cell = "def plan(s):\n    return {}\ndef twice(s):\n    if s['x']:\n        return s['x'] * 2\n    return {}\n"
    assert ip.run_cell(cell, store_history=False).success
    assert ip.run_cell("%%agentgraph g --no-display\nSTART -> plan -> twice -> END", store_history=False).success
    capsys.readouterr()
    res = ip.run_cell("%agentgraph run g {'x': 3}", store_history=False)
    assert isinstance(res.error_in_exec, InvalidUpdateError)
    text = capsys.readouterr().out
    _assert_short(text, "in twice  <- node 'twice' returned this (step 2)\n    return s['x'] * 2")
    ip.run_line_magic("config", "AgentGraphMagics.short_tracebacks = False")  # %config switches it off
    try:
        ip.run_cell("%agentgraph run g {'x': 3}", store_history=False)
        assert "run_sync_task" in capsys.readouterr().out
    finally:
        ip.run_line_magic("config", "AgentGraphMagics.short_tracebacks = True")


def test_script_hook_switches_on_and_off() -> None:
    code = textwrap.dedent(
        """
        import sys, agentgraph_nb
        before = sys.excepthook
        agentgraph_nb.short_tracebacks()
        on = sys.excepthook
        agentgraph_nb.short_tracebacks(False)
        print(on is not before, sys.excepthook is before)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["True", "True"], r.stderr
