"""Finding the graph a command names: ``module:attr``, ``path/to/file.py:attr``, or a
``.agentgraph`` file in the cell language.

How names in a ``.agentgraph`` file find their functions (outside a notebook there is no
notebook namespace): the namespace is the modules named on the file's ``# uses:`` header line
and by ``--module`` options, merged in that order (a later module wins a name); with neither,
the Python file of the same name beside it (``research.agentgraph`` -> ``research.py``). Other
header lines: ``# state: State`` (a name in that namespace, or ``module:attr``) and
``# name: research`` (default: the file's stem). Header lines are ordinary comments, so the file
is also a valid ``%%agentgraph`` cell body::

    # uses: research_nodes
    # state: State
    START -> plan -> search
    search -> search | write ? route
    write -> END

The file's directory and the current directory are on ``sys.path`` while modules are imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from agentgraph_nb.errors import (
    AgentGraphError,
    InvalidInputError,
    did_you_mean,
)

__all__ = ["Header", "LoadedGraph", "load_graph", "location", "read_header"]

_HEADER_RE = re.compile(r"^\s*#\s*(uses|state|name)\s*:\s*(.*?)\s*$")


@dataclass
class Header:
    """What a ``.agentgraph`` file's header comments say."""

    uses: list[str] = field(default_factory=list)
    state: str | None = None
    name: str | None = None


@dataclass
class LoadedGraph:
    """A graph found by :func:`load_graph`.

    Attributes:
        app: the compiled graph.
        source: where it came from (``module:attr`` or the file path).
        warnings: likely mistakes (unreachable nodes, ...), as the notebook shows them.
    """

    app: Any
    source: str
    warnings: list[str] = field(default_factory=list)


def read_header(text: str) -> Header:
    """The ``# uses:``, ``# state:`` and ``# name:`` lines at the top of a ``.agentgraph`` file
    (comment and blank lines before the first statement)."""
    h = Header()
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.lstrip().startswith("#"):
            break
        m = _HEADER_RE.match(line)
        if m is None:
            continue
        key, value = m.group(1), m.group(2)
        if key == "uses":
            h.uses.extend(v.strip() for v in value.split(",") if v.strip())
        elif key == "state":
            h.state = value or None
        else:
            h.name = value or None
    return h


class _Path:
    """Put directories first on ``sys.path`` for the duration of the block."""

    def __init__(self, *dirs: Path) -> None:
        self.dirs = [str(d) for d in dirs]

    def __enter__(self) -> None:
        for d in reversed(self.dirs):
            sys.path.insert(0, d)

    def __exit__(self, *exc: object) -> None:
        for d in self.dirs:
            try:
                sys.path.remove(d)
            except ValueError:
                pass


def _import(name: str, *, what: str) -> ModuleType:
    if name.endswith(".py") or "/" in name or "\\" in name:
        path = Path(name)
        if not path.is_file():
            raise InvalidInputError(f"{what}: no Python file {name!r}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = mod
        with _Path(path.resolve().parent):
            spec.loader.exec_module(mod)
        return mod
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise InvalidInputError(
                f"{what}: no module named {name!r} (looked in the current directory and on sys.path; "
                f"run from the directory that holds it, or set PYTHONPATH)"
            ) from None
        raise


def _is_graph(obj: Any) -> str | None:
    from agentgraph_nb.graph.compiled import CompiledGraph
    from agentgraph_nb.graph.state import StateGraph

    if isinstance(obj, CompiledGraph):
        return "compiled"
    if isinstance(obj, StateGraph):
        return "builder"
    return None


def _compile(obj: Any, checkpointer: str | None, out: list[str]) -> Any:
    kind = _is_graph(obj)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if kind == "builder":
            app = obj.compile(checkpointer=checkpointer or "memory")
        else:
            app = obj
            if checkpointer is not None:
                app = obj.builder.compile(
                    checkpointer=checkpointer,
                    interrupt_before=sorted(obj.interrupt_before),
                    interrupt_after=sorted(obj.interrupt_after),
                    name=obj.name,
                )
    out.extend(str(w.message) for w in caught)
    return app


def _checks(app: Any, out: list[str]) -> None:
    from agentgraph_nb.notebook.checks import check_graph

    for msg in check_graph(app):
        if msg not in out:
            out.append(msg)


def load_graph(
    spec: str,
    *,
    modules: tuple[str, ...] | list[str] = (),
    state: str | None = None,
    checkpointer: str | None = None,
) -> LoadedGraph:
    """Find, build and compile the graph ``spec`` names.

    Args:
        spec: ``module:attr`` or ``file.py:attr`` (a ``StateGraph``, a compiled graph, or a
            function returning one of them), or a path to a ``.agentgraph`` file.
        modules: for a ``.agentgraph`` file: modules whose names the file's nodes use.
        state: for a ``.agentgraph`` file: the state schema's name (overrides ``# state:``).
        checkpointer: a store URL for the compiled graph (``"memory"``, ``"sqlite:///runs.db"``);
            None keeps a compiled graph's own, and gives a builder an in-memory one.

    Raises:
        InvalidInputError: the module, attribute or file cannot be found, or is not a graph.
        GraphValidationError: the graph has a definite mistake (in a ``.agentgraph`` file, a
            :class:`~agentgraph_nb.notebook._dsl.DslSyntaxError` with line and column).

    Example:
        >>> load_graph("examples.research:graph").app.invoke({"question": "q"})  # doctest: +SKIP
    """
    found: list[str] = []
    if spec.endswith(".agentgraph") or (Path(spec).is_file() and ":" not in spec):
        return _load_dsl(Path(spec), modules=list(modules), state=state, checkpointer=checkpointer)
    mod_name, sep, attr = spec.rpartition(":")
    if not sep or not mod_name or not attr:
        raise InvalidInputError(
            f"cannot tell which graph {spec!r} is: name it as module:attr (e.g. myapp.graphs:research), "
            "path/to/file.py:attr, or a .agentgraph file"
        )
    with _Path(Path.cwd()):
        mod = _import(mod_name, what=spec)
    obj: Any = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [k for k in dir(obj) if not k.startswith("_")]
            graphs = [k for k in names if _is_graph(getattr(obj, k, None))]
            have = f" Graphs there: {', '.join(graphs)}." if graphs else ""
            raise InvalidInputError(f"{spec}: {mod_name!r} has no {part!r}.{did_you_mean(part, names)}{have}")
        obj = getattr(obj, part)
    if _is_graph(obj) is None and callable(obj) and not isinstance(obj, type):
        obj = obj()
    if _is_graph(obj) is None:
        raise InvalidInputError(
            f"{spec} is a {type(obj).__name__}, not a graph: name a StateGraph, a compiled graph, or a "
            "function returning one"
        )
    app = _compile(obj, checkpointer, found)
    _checks(app, found)
    return LoadedGraph(app, spec, found)


def _load_dsl(path: Path, *, modules: list[str], state: str | None, checkpointer: str | None) -> LoadedGraph:
    from agentgraph_nb.graph.state import StateGraph
    from agentgraph_nb.notebook import _dsl

    if not path.is_file():
        raise InvalidInputError(f"no such file: {str(path)!r}")
    text = path.read_text(encoding="utf-8")
    header = read_header(text)
    parsed = _dsl.parse(text)  # syntax first: a typo is reported even when modules are missing
    names = [*header.uses, *modules]
    here = path.resolve().parent
    if not names and (here / f"{path.stem}.py").is_file():
        names = [str(here / f"{path.stem}.py")]
    ns: dict[str, Any] = {"__name__": "__agentgraph__"}
    with _Path(here, Path.cwd()):
        for name in names:
            mod = _import(name, what=f"{path}: module {name!r}")
            ns.update({k: v for k, v in vars(mod).items() if not k.startswith("__")})
    schema: Any = dict
    state_name = state or header.state
    if state_name:
        if ":" in state_name:
            m, _, a = state_name.rpartition(":")
            with _Path(here, Path.cwd()):
                schema = getattr(_import(m, what=f"state {state_name!r}"), a)
        elif state_name in ns:
            schema = ns[state_name]
        else:
            cands = [k for k, v in ns.items() if isinstance(v, type)]
            raise InvalidInputError(
                f"{path}: state {state_name!r} is not defined in {', '.join(names) or 'any module'}."
                f"{did_you_mean(state_name, cands)} Name the module with '# uses: module' or --module."
            )
    if not names and parsed.nodes:
        first = parsed.nodes[0]
        raise parsed.error(
            f"node {first.name!r}: no module provides the functions of this file. Add a "
            f"'# uses: mymodule' line at the top, pass --module mymodule, or put them in {path.stem}.py beside it",
            first.span,
        )
    shown = ", ".join(Path(n).name if n.endswith(".py") else n for n in names)
    where = (f"module{'s' if len(names) > 1 else ''} {shown}", f"in {shown}")
    builder = _dsl.build(
        parsed, name=header.name or path.stem, schema=schema, namespace=ns, builder_cls=StateGraph, where=where
    )
    found: list[str] = []
    app = _compile(builder, checkpointer, found)  # its errors name the nodes, as in the notebook
    _checks(app, found)
    return LoadedGraph(app, str(path), found)


def location(exc: AgentGraphError, source: str) -> str:
    """``file:line:column: `` for an error in a ``.agentgraph`` file, else ``""``."""
    line = getattr(exc, "line", None)
    col = getattr(exc, "column", None)
    if line is None or not source.endswith(".agentgraph"):
        return ""
    return f"{source}:{line}:{col}: "
