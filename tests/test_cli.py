"""The ``agentgraph`` command line, run as a user runs it: a separate process, in a directory
holding the user's module and ``.agentgraph`` files. The README's examples run as pasted."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("click")

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

GREET = '''\
import operator
from typing import Annotated, TypedDict

from agentgraph_nb import END, START, StateGraph, interrupt


class State(TypedDict, total=False):
    name: str
    greeting: str
    log: Annotated[list[str], operator.add]


def hello(state):
    return {"greeting": f"Hello, {state['name']}!", "log": ["hello"]}


def ask(state):
    return {"log": [f"asked: {interrupt('shout it?')}"]}


def shout(state):
    return {"greeting": state["greeting"].upper(), "log": ["shout"]}


def boom(state):
    raise RuntimeError("no luck")


def lonely(state):
    return None


graph = StateGraph(State, name="greet")
graph.add_node("hello", hello).add_node("shout", shout)
graph.add_edge(START, "hello").add_edge("hello", "shout").add_edge("shout", END)
app = graph.compile()


def make():
    return graph


broken = StateGraph(State).add_node("boom", boom).add_edge(START, "boom")
warned = StateGraph(State).add_node("hello", hello).add_node("lonely", lonely).add_edge(START, "hello")
not_a_graph = 42
'''


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), e.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    e.pop("COLUMNS", None)
    return e


def ag(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentgraph_nb", *args], cwd=cwd, env=env(), capture_output=True, text=True,
        input=stdin, timeout=120,
    )


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    (tmp_path / "greet.py").write_text(GREET)
    (tmp_path / "greet.agentgraph").write_text("# uses: greet\n# state: State\nSTART -> hello -> ask -> shout -> END\n")
    return tmp_path


# -- help -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cmd", ["", "validate", "run", "export", "inspect", "profile", "bench"])
def test_help_everywhere(proj: Path, cmd: str) -> None:
    r = ag(proj, *([cmd] if cmd else []), "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"Usage: agentgraph {cmd}".rstrip()) and "-h, --help" in r.stdout


def test_version_and_unknown_command(proj: Path) -> None:
    from agentgraph_nb import __version__

    assert ag(proj, "--version").stdout.strip() == f"agentgraph, version {__version__}"
    r = ag(proj, "valdiate", "x")
    assert r.returncode == 2 and "No such command 'valdiate'" in r.stderr and "validate" in r.stderr


# -- validate -------------------------------------------------------------------------------------


def test_validate_module_attr_builder_compiled_factory_and_file(proj: Path) -> None:
    for spec, nodes in (("greet:graph", 2), ("greet:app", 2), ("greet:make", 2), ("greet.py:graph", 2), ("greet.agentgraph", 3)):
        r = ag(proj, "validate", spec)
        assert r.returncode == 0, (spec, r.stderr)
        assert r.stdout.startswith(f"ok: {spec}: graph ") and f"{nodes} nodes" in r.stdout


def test_validate_file_error_has_file_line_column_and_the_notebook_text(proj: Path) -> None:
    (proj / "bad.agentgraph").write_text("# uses: greet\n\nSTART -> hello -> shuot -> END\n")
    r = ag(proj, "validate", "bad.agentgraph")
    assert r.returncode == 1
    first, line, caret = r.stderr.splitlines()[:3]
    assert first.startswith("bad.agentgraph:3:19: error: node 'shuot': 'shuot' is not defined in module greet.")
    assert "Did you mean 'shout'?" in first
    assert line == "    START -> hello -> shuot -> END" and caret == "                      ^^^^^"
    # the same message the notebook shows, but for where the names come from
    from agentgraph_nb.graph.state import StateGraph
    from agentgraph_nb.notebook import _dsl

    with pytest.raises(_dsl.DslSyntaxError) as ei:
        _dsl.build(_dsl.parse("START -> hello -> shuot -> END"), name="g", schema=dict,
                   namespace={"hello": len, "shout": len}, builder_cls=StateGraph)
    assert ei.value.msg.replace("the notebook", "module greet").replace("in a cell above", "in greet") in first


def test_validate_syntax_error_and_missing_module(proj: Path) -> None:
    (proj / "syntax.agentgraph").write_text("# uses: greet\nSTRAT -> hello\n")
    r = ag(proj, "validate", "syntax.agentgraph")
    assert r.returncode == 1 and r.stderr.startswith("syntax.agentgraph:2:1: error:") and "'START'" in r.stderr
    (proj / "nomod.agentgraph").write_text("# uses: nosuchmodule\nSTART -> hello\n")
    r = ag(proj, "validate", "nomod.agentgraph")
    assert r.returncode == 1 and "no module named 'nosuchmodule'" in r.stderr
    (proj / "orphan.agentgraph").write_text("START -> hello\n")
    r = ag(proj, "validate", "orphan.agentgraph")
    assert r.returncode == 1 and "orphan.agentgraph:1:10:" in r.stderr and "# uses: mymodule" in r.stderr


def test_validate_uses_module_option_and_sibling_py(proj: Path) -> None:
    (proj / "plain.agentgraph").write_text("START -> hello -> shout -> END\n")
    r = ag(proj, "validate", "plain.agentgraph", "--module", "greet", "--state", "State")
    assert r.returncode == 0, r.stderr
    (proj / "greet2.py").write_text(GREET)
    (proj / "greet2.agentgraph").write_text("START -> hello -> END\n")
    assert ag(proj, "validate", "greet2.agentgraph").returncode == 0
    r = ag(proj, "validate", "plain.agentgraph", "-m", "greet", "--state", "Stat")
    assert r.returncode == 1 and "Did you mean 'State'?" in r.stderr


def test_validate_bad_names_and_warnings(proj: Path) -> None:
    r = ag(proj, "validate", "greet:grap")
    assert r.returncode == 1 and "Did you mean 'graph'?" in r.stderr
    r = ag(proj, "validate", "greet:not_a_graph")
    assert r.returncode == 1 and "is a int, not a graph" in r.stderr
    r = ag(proj, "validate", "nothing")
    assert r.returncode == 1 and "module:attr" in r.stderr
    r = ag(proj, "validate", "greet:warned")
    assert r.returncode == 0 and "warning:" in r.stderr and "'lonely'" in r.stderr
    r = ag(proj, "validate", "greet:warned", "--strict")
    assert r.returncode == 1


# -- run ------------------------------------------------------------------------------------------


def test_run_prints_the_final_state_from_text_file_or_stdin(proj: Path) -> None:
    want = {"name": "Ada", "greeting": "HELLO, ADA!", "log": ["hello", "shout"]}
    r = ag(proj, "run", "greet:graph", '{"name": "Ada"}')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == want
    (proj / "in.json").write_text('{"name": "Ada"}')
    assert json.loads(ag(proj, "run", "greet:graph", "@in.json").stdout) == want
    assert json.loads(ag(proj, "run", "greet:graph", "-", stdin='{"name": "Ada"}').stdout) == want
    r = ag(proj, "run", "greet:graph", "{name: Ada}")
    assert r.returncode == 1 and "is not JSON" in r.stderr
    r = ag(proj, "run", "greet:graph", "@missing.json")
    assert r.returncode == 1 and "cannot read the input file" in r.stderr


def test_run_stream_modes_and_progress(proj: Path) -> None:
    r = ag(proj, "run", "greet:graph", '{"name": "Ada"}', "--stream")
    assert [json.loads(x) for x in r.stdout.splitlines()] == [
        {"hello": {"greeting": "Hello, Ada!", "log": ["hello"]}},
        {"shout": {"greeting": "HELLO, ADA!", "log": ["shout"]}},
    ]
    r = ag(proj, "run", "greet:graph", '{"name": "Ada"}', "--stream", "values")
    assert [json.loads(x)["log"] for x in r.stdout.splitlines()] == [[], ["hello"], ["hello", "shout"]]
    r = ag(proj, "run", "greet:graph", '{"name": "Ada"}', "--stream", "events")
    kinds = [json.loads(x)["kind"] for x in r.stdout.splitlines()]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end" and kinds.count("node_end") == 2
    r = ag(proj, "run", "greet:graph", '{"name": "Ada"}', "--progress")
    assert re.search(r"^\[step 1\] hello done in [\d.]+ ms$", r.stderr, re.M) and "[step 2] shout done" in r.stderr


def test_run_interrupt_and_resume_across_processes(proj: Path) -> None:
    db = "sqlite:///runs.db"
    r = ag(proj, "run", "greet.agentgraph", '{"name": "Ada"}', "--thread", "t1", "--checkpointer", db)
    out = json.loads(r.stdout)
    assert out["__interrupt__"][0]["value"] == "shout it?" and "--resume VALUE" in r.stderr
    r = ag(proj, "run", "greet.agentgraph", "--thread", "t1", "--checkpointer", db, "--resume", '"yes"')
    assert json.loads(r.stdout)["log"] == ["hello", "asked: yes", "shout"]
    r = ag(proj, "run", "greet.agentgraph", "--resume", "yes")
    assert r.returncode == 2 and "--resume needs --thread" in r.stderr


def test_run_failure_names_the_node_and_exits_1(proj: Path) -> None:
    r = ag(proj, "run", "greet:broken", "{}")
    assert r.returncode == 1 and r.stdout == ""
    assert "error: RuntimeError: no luck" in r.stderr and "node 'boom' of graph" in r.stderr
    assert "failed at step 1" in r.stderr
    assert "Traceback" not in r.stderr


# -- export ---------------------------------------------------------------------------------------


def test_export_every_format_to_stdout_and_file(proj: Path) -> None:
    checks = {
        "dot": lambda t: t.startswith('digraph "greet"'),
        "mermaid": lambda t: t.startswith("flowchart") or t.startswith("graph"),
        "json": lambda t: json.loads(t)["name"] == "greet",
        "svg": lambda t: t.startswith("<svg") and 'data-node="shout"' in t,
        "dsl": lambda t: t.strip() == "START -> hello -> ask -> shout -> END",
    }
    for fmt, ok in checks.items():
        r = ag(proj, "export", "greet.agentgraph", "--format", fmt)
        assert r.returncode == 0 and ok(r.stdout), (fmt, r.stdout[:200], r.stderr)
    r = ag(proj, "export", "greet:graph", "-f", "mermaid", "-o", "g.mmd")
    assert r.returncode == 0 and (proj / "g.mmd").read_text() == ag(proj, "export", "greet:graph").stdout
    r = ag(proj, "export", "greet:graph", "-o", "no/such/dir/g.mmd")
    assert r.returncode == 1 and r.stderr.startswith("error: InvalidInputError: cannot write 'no/such/dir/g.mmd'")
    r = ag(proj, "export", "greet:graph", "-f", "png")
    assert r.returncode == 2 and "'png' is not one of" in r.stderr


# -- inspect --------------------------------------------------------------------------------------


def test_inspect_threads_history_and_state(proj: Path) -> None:
    db = "sqlite:///runs.db"
    for t in ("t1", "t2"):
        ag(proj, "run", "greet:graph", '{"name": "Ada"}', "--thread", t, "-c", db)
    r = ag(proj, "inspect", db)
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["thread", "checkpoints", "step", "updated", "next", "bytes"]
    assert [ln.split()[:3] for ln in lines[2:]] == [["t1", "3", "2"], ["t2", "3", "2"]]
    r = ag(proj, "inspect", db, "--thread", "t1", "--graph", "greet:graph")
    assert r.returncode == 0, r.stderr
    assert "checkpoint" in r.stdout and re.search(r"^\S+\s+2\s+loop\s+\S+\s+shout\s+\(done\)$", r.stdout, re.M)
    assert re.search(r'^log\s+list\s+\["hello", "shout"\]$', r.stdout, re.M)
    data = json.loads(ag(proj, "inspect", db, "--thread", "t1", "--json").stdout)
    assert [h["step"] for h in data["history"]] == [2, 1, 0] and data["state"]["greeting"] == "HELLO, ADA!"
    first = data["history"][1]["checkpoint"]  # after step 1: hello has run, shout has not
    data = json.loads(ag(proj, "inspect", db, "-t", "t1", "-k", first, "--json", "-g", "greet:graph").stdout)
    assert data["checkpoint"] == first and data["state"] == {"name": "Ada", "greeting": "Hello, Ada!", "log": ["hello"]}
    r = ag(proj, "inspect", db, "-t", "t1", "-k", first + "x")
    assert r.returncode == 1 and f"no checkpoint '{first}x'. Did you mean '{first}'?" in r.stderr
    r = ag(proj, "inspect", db, "--thread", "t11")
    assert r.returncode == 1 and "no thread 't11'. Did you mean 't1'? Threads: t1, t2" in r.stderr
    r = ag(proj, "inspect", "sqlite:///nope.db")
    assert r.returncode == 1 and "does not exist" in r.stderr


# -- profile and bench ----------------------------------------------------------------------------


def test_profile_and_bench_tables(proj: Path) -> None:
    r = ag(proj, "profile", "greet:graph", '{"name": "Ada"}')
    assert r.returncode == 0, r.stderr
    rows = r.stdout.splitlines()
    assert rows[0].split() == ["node", "calls", "total", "ms", "mean", "ms", "share"]
    assert sorted(x.split()[0] for x in rows[2:4]) == ["hello", "shout"] and "run:" in r.stdout
    r = ag(proj, "bench", "greet:graph", '{"name": "Ada"}', "-n", "30", "--warmup", "1")
    rows = {x.split()[0]: x.split() for x in r.stdout.splitlines()[2:]}
    assert set(rows) == {"hello", "shout", "(run)"} and all(v[1] == "30" for v in rows.values())
    assert all(float(v[3]) >= float(v[2]) for v in rows.values())  # p99 >= p50


# -- packaging and the missing extra ----------------------------------------------------------------


def test_console_script_is_declared() -> None:
    tomllib = pytest.importorskip("tomllib")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"agentgraph": "agentgraph_nb.cli:main"}
    from agentgraph_nb.cli import main

    assert main(["--version"]) == 0


def test_without_click_the_command_names_the_pip_install(tmp_path: Path) -> None:
    code = "import sys; sys.modules['click'] = None; from agentgraph_nb.cli import main; sys.exit(main(['--help']))"
    r = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and 'pip install "agentgraph_nb[cli]"' in r.stderr


def test_import_stays_light() -> None:
    code = (
        "import sys, agentgraph_nb, agentgraph_nb.nodes; "
        "print(sorted(m for m in ('click', 'httpx', 'sqlalchemy', 'jinja2', 'jsonschema', 'agentgraph_nb.cli._app') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


@pytest.mark.parametrize(("name", "blocked", "extra"), [("http_get", "httpx", "http"), ("sql_query", "sqlalchemy", "sql")])
def test_missing_node_extra_names_the_pip_install(name: str, blocked: str, extra: str) -> None:
    code = (
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "from agentgraph_nb import MissingDependencyError\n"
        "try:\n"
        f"    from agentgraph_nb.nodes import {name}\n"
        "except MissingDependencyError as e:\n"
        "    print(e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True, timeout=60)
    assert f'pip install "agentgraph_nb[{extra}]"' in r.stdout and f"agentgraph_nb.nodes.{name}" in r.stdout, r.stdout + r.stderr


# -- the README, as pasted ------------------------------------------------------------------------


def _shim(tmp: Path) -> Path:
    """An ``agentgraph`` on PATH that runs this tree, as the installed console script would."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    script = bin_dir / "agentgraph"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m agentgraph_nb "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.index("\n## ", start + 4)
    return text[start:end]


def test_readme_command_line_block_runs_as_pasted(tmp_path: Path) -> None:
    section = _section("Command line")
    block = re.findall(r"```bash\n(.*?)```", section, re.S)[0]
    e = env()
    e["PATH"] = f"{_shim(tmp_path)}{os.pathsep}{e['PATH']}"
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run(["bash", "-e", "-c", block], cwd=work, env=e, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "ok: greet.agentgraph: graph 'greet', 3 nodes" in out
    assert '{"log": ["hello", "shout"], "name": "Ada", "greeting": "HELLO, ADA!"}' in out
    assert '"__interrupt__"' in out and '{"shout": {"greeting": "HELLO, ADA!", "log": ["shout"]}}' in out
    assert re.search(r'^log\s+list\s+\["hello", "asked: yes", "shout"\]$', out, re.M)
    assert (work / "greet.mmd").is_file() and "(run)" in out
    # the error shown in the README is what validate prints for that mistake
    shown = re.findall(r"```text\n(.*?)```", section, re.S)[0]
    (work / "bad.agentgraph").write_text((work / "greet.agentgraph").read_text().replace("ask -> shout", "shuot"))
    bad = subprocess.run(["agentgraph", "validate", "bad.agentgraph"], cwd=work, env=e, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr == shown, bad.stderr


def test_readme_node_library_example_runs_as_pasted(tmp_path: Path) -> None:
    pytest.importorskip("httpx")
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("jinja2")
    code = re.findall(r"```python\n(.*?)```", _section("Node library"), re.S)[0]
    (tmp_path / "example.py").write_text(code)
    for expected in ("Oslo: 70.7 F, 1 reading(s)", "Oslo: 70.7 F, 2 reading(s)"):
        r = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == expected
    assert json.loads((tmp_path / "reports" / "Oslo.json").read_text()) == expected
