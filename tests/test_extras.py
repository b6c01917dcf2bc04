"""Extras: what the package imports is declared, the notebook extra stays light, the README's first
command gets a JupyterLab, and a missing optional dependency names the pip install to run."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from agentgraph_nb._lazy import EXTRA_OF

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
SERVER = {"jupyterlab", "ipykernel", "jupyter-server", "notebook", "jupyter"}


def _name(req: str) -> str:
    """The normalized distribution name of a requirement string."""
    return re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower().replace("_", "-")


def _names(reqs: list[str]) -> set[str]:
    return {_name(r) for r in reqs}


def _resolved(extra: str) -> set[str]:
    """The distributions an extra brings, following ``agentgraph_nb[...]`` references."""
    out: set[str] = set()
    for req in EXTRAS[extra]:
        if _name(req) == "agentgraph-nb":
            for inner in re.search(r"\[(.*)\]", req).group(1).split(","):  # type: ignore[union-attr]
                out |= _resolved(inner.strip())
        else:
            out.add(_name(req))
    return out


def _imported_modules() -> set[str]:
    mods: set[str] = set()
    for path in (ROOT / "agentgraph_nb").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods.update(a.name.partition(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods.add(node.module.partition(".")[0])
    return {m for m in mods if m not in sys.stdlib_module_names and m != "agentgraph_nb"}


def test_every_import_is_declared_in_the_dependencies_or_its_extra() -> None:
    core = _names(PYPROJECT["project"]["dependencies"])
    dists = packages_distributions()
    for mod in sorted(_imported_modules()):
        dist = {_name(d) for d in dists.get(mod, [mod])}
        if dist & core:
            continue
        assert mod in EXTRA_OF, f"agentgraph_nb imports {mod!r}: declare it and map it in _lazy.EXTRA_OF"
        assert dist & _resolved(EXTRA_OF[mod]), f"{mod!r} is not in the {EXTRA_OF[mod]!r} extra"
    # and the other way: every optional module we map is one an extra installs
    for mod, extra in EXTRA_OF.items():
        dist = {_name(d) for d in dists.get(mod, [mod])}
        assert dist & _resolved(extra), (mod, extra)


def test_notebook_extra_is_light_and_lab_adds_jupyterlab() -> None:
    assert not _resolved("notebook") & SERVER, "the notebook extra must not pull a Jupyter server or kernel"
    assert {"jupyterlab", "ipykernel"} <= _resolved("lab")
    assert _resolved("notebook") <= _resolved("lab") <= _resolved("dev")


def test_readme_first_command_installs_lab_and_binder_matches() -> None:
    readme = (ROOT / "README.md").read_text()
    first = re.findall(r"```bash\n(.*?)```", readme, re.S)[0].strip()
    assert first == 'pip install -e ".[lab]" && jupyter lab notebooks/01_quickstart.ipynb'
    assert "--allow-root" in readme
    assert 'pip install --no-cache-dir -e ".[lab]"' in (ROOT / "binder" / "postBuild").read_text()
    assert "openai" in _resolved("lab")  # notebooks 09 and 14 run after the README's first command
    reqs = [
        line.strip()
        for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert _names(reqs) == _names(PYPROJECT["project"]["dependencies"]) | _resolved("lab")


# -- a missing optional dependency -------------------------------------------------------------------
CASES = {
    "timeline": ("plotly", "app.timeline()"),
    "dashboard": ("numpy", "app.dashboard()"),
    "show": ("anywidget", "app.show()"),
    "debug": ("ipywidgets", "app.debug({'x': 1})"),
    "metrics": ("pandas", "app.metrics.to_pandas()"),
    "events": ("pandas", "app.events()"),
    "batch": ("tqdm", "app.batch([{'x': 1}], progress=True)"),
    "ui": ("plotly", "__import__('agentgraph_nb.ui', fromlist=['x']).Timeline"),
    "load_ext": ("ipywidgets", "InteractiveShell.instance().run_line_magic('load_ext', 'agentgraph_nb')"),
}

SCRIPT = """\
import sys
sys.modules[{blocked!r}] = None          # as if it were not installed
from agentgraph_nb import START, MissingDependencyError, StateGraph
from IPython.core.interactiveshell import InteractiveShell

app = StateGraph(dict).add_node("n", lambda s: {{"y": 1}}).add_edge(START, "n").compile()
app.record()
app.invoke({{"x": 1}})
try:
    {action}
except ImportError as exc:
    assert isinstance(exc, ModuleNotFoundError) and isinstance(exc, MissingDependencyError), type(exc)
    assert exc.name == {blocked!r}, exc.name
    print(exc)
else:
    print("no error")
"""


@pytest.mark.parametrize("case", sorted(CASES))
def test_missing_dependency_names_the_pip_install(case: str) -> None:
    blocked, action = CASES[case]
    code = SCRIPT.format(blocked=blocked, action=action)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    out = r.stdout.strip()
    assert f"needs {blocked}" in out and 'pip install "agentgraph_nb[notebook]"' in out, out


def test_without_nest_asyncio2_a_sync_run_in_a_loop_warns_and_still_works() -> None:
    code = textwrap.dedent(
        """
        import asyncio, sys, warnings
        sys.modules["nest_asyncio2"] = None
        from agentgraph_nb import AgentGraphWarning, START, StateGraph

        async def node(s):
            await asyncio.sleep(0)
            return {"y": 1}

        app = StateGraph(dict).add_node("n", node).add_edge(START, "n").compile()

        async def cell():  # a notebook cell: a loop is running
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                print(app.invoke({}), app.invoke({}))
            print([str(w.message)[:41] for w in caught if issubclass(w.category, AgentGraphWarning)])

        asyncio.run(cell())
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["{'y': 1} {'y': 1}", "['nest_asyncio2 is not installed, so a sync']"]


def test_with_nest_asyncio2_async_nodes_run_on_the_callers_loop() -> None:
    import asyncio

    from agentgraph_nb import START, StateGraph

    loops = []

    async def node(s: dict[str, int]) -> dict[str, int]:
        loops.append(asyncio.get_running_loop())
        return {"y": 1}

    app = StateGraph(dict).add_node("n", node).add_edge(START, "n").compile()

    async def cell() -> asyncio.AbstractEventLoop:
        assert app.invoke({}) == {"y": 1}
        return asyncio.get_running_loop()

    assert loops == [asyncio.run(cell())]
