"""IPython magics: ``%%agentgraph`` builds a graph from a cell, ``%agentgraph`` runs and shows it.

Load with ``%load_ext agentgraph_nb``, which also shows errors of runs as short tracebacks (the
user's frames, the node and the step; ``%tb`` prints the full chain). Options are traitlets,
settable with ``%config``::

    %config AgentGraphMagics.checkpointer = "sqlite:///runs.db"
    %config AgentGraphMagics.record = False
    %config AgentGraphMagics.short_tracebacks = False
"""

from __future__ import annotations

import ast
import json
import shlex
import warnings
from typing import TYPE_CHECKING, Any, cast

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Unicode, observe

from agentgraph_nb.errors import AgentGraphError, did_you_mean
from agentgraph_nb.notebook import _dsl

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["AgentGraphMagics", "load_ipython_extension", "unload_ipython_extension"]

_SUBCOMMANDS = ("run", "show", "debug", "timeline", "dashboard", "dsl", "list", "new")


def _clean_traceback(exc: BaseException) -> BaseException:
    """Make IPython show our error's message instead of a long traceback."""
    if isinstance(exc, AgentGraphError):
        name = type(exc).__name__
        lines = [f"{name}: {line}" if i == 0 else line for i, line in enumerate(str(exc).splitlines())]
        exc._render_traceback_ = lambda: lines  # type: ignore[attr-defined]
    return exc


@magics_class
class AgentGraphMagics(Magics):
    """The ``%%agentgraph`` cell magic and ``%agentgraph`` line magic."""

    checkpointer = Unicode(
        "memory", help="Default checkpointer for %%agentgraph graphs: 'memory', 'sqlite:///path.db', 'postgresql://...', 'redis://...' or 'none'."
    ).tag(config=True)
    record = Bool(True, help="Record events of graphs built by %%agentgraph (for timelines and app.events()).").tag(
        config=True
    )
    display = Bool(True, help="Display the graph after a %%agentgraph cell builds it.").tag(config=True)
    short_tracebacks = Bool(
        True, help="Show errors of runs as short tracebacks (the user's frames, node and step); %tb shows all."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.sources: dict[str, str] = {}
        self._graph_cells_written: set[str] = set()
        self._switch_tracebacks({"new": self.short_tracebacks})

    @observe("short_tracebacks")
    def _switch_tracebacks(self, change: Any) -> None:
        from agentgraph_nb import _traceback

        if self.shell is not None:
            (_traceback.install_ipython if change["new"] else _traceback.uninstall_ipython)(self.shell)

    @property
    def _user_ns(self) -> dict[str, Any]:
        """The notebook's namespace (magics only run inside a shell, so ``shell`` is set)."""
        return cast("InteractiveShell", self.shell).user_ns

    # -- %%agentgraph ------------------------------------------------------------------------------
    @magic_arguments()
    @argument("name", help="Name to bind the compiled graph to in the notebook.")
    @argument("--state", "-s", default=None, help="Name of the state schema (TypedDict, dataclass, pydantic).")
    @argument("--checkpointer", "-c", default=None, help="'memory', 'sqlite:///runs.db', 'postgresql://...', 'redis://...' or 'none'.")
    @argument("--cache", default=None, help="Where nodes with [cache=...] keep results: 'memory' (default), 'sqlite:///c.db', 'redis://...'.")
    @argument("--serializer", default=None, help="Variable holding the Serializer of a store given by URL (e.g. encryption keys).")
    @argument("-i", "--inputs", default=None, help="Variable holding the input dict for --run.")
    @argument("--thread", "-t", default=None, help="thread_id for --run.")
    @argument("--run", action="store_true", help="Run the graph after building it (with -i inputs).")
    @argument("--no-display", action="store_true", help="Do not display the graph.")
    @argument("--append", action="store_true", help="Add this cell's statements to the existing graph NAME.")
    @argument("--interrupt-before", default="", help="Comma-separated nodes to pause before.")
    @argument("--interrupt-after", default="", help="Comma-separated nodes to pause after.")
    @cell_magic
    def agentgraph(self, line: str, cell: str | None = None) -> Any:
        """Build a graph from the cell and bind it to NAME.

        Usage::

            %%agentgraph research --state State --checkpointer sqlite:///runs.db
            START -> plan -> search
            search -> search | write ? route
            write -> END

        Node names are functions in the notebook (looked up on every run: redefine one and the
        next run uses it). ``%agentgraph run|show|debug|timeline|dashboard|dsl NAME [inputs]``
        does the same as ``NAME.invoke(...)``, ``NAME.show()``, ...

        The cell language
        -----------------
        """
        if cell is None:  # used as a line magic
            return self._line(line)
        try:
            args = parse_argstring(self.agentgraph, line)
        except UsageError:
            raise
        except SystemExit as exc:  # argparse on bad flags
            raise UsageError(f"%%agentgraph: bad arguments {line!r}") from exc
        name = args.name
        if not name.isidentifier():
            raise UsageError(f"%%agentgraph: {name!r} is not a valid Python name to bind the graph to")
        ns = self._user_ns
        text = cell
        if args.append:
            if name not in self.sources:
                known = ", ".join(sorted(self.sources)) or "none yet"
                raise UsageError(
                    f"%%agentgraph --append: no graph {name!r} built by %%agentgraph in this session"
                    f" (graphs: {known}).{did_you_mean(name, self.sources)}"
                )
            text = self.sources[name].rstrip("\n") + "\n" + cell
        schema: Any = dict
        if args.state:
            if args.state not in ns:
                cands = [k for k, v in ns.items() if isinstance(v, type) and not k.startswith("_")]
                raise UsageError(
                    f"%%agentgraph --state: {args.state!r} is not defined in the notebook.{did_you_mean(args.state, cands)}"
                )
            schema = ns[args.state]
        ckpt = args.checkpointer if args.checkpointer is not None else self.checkpointer
        ckpt_spec: Any = None if ckpt.lower() in ("none", "") else ckpt
        serializer = self._serializer_var(args.serializer)
        from agentgraph_nb.graph.state import StateGraph

        try:
            if args.append:
                _dsl.parse(cell, line_offset=1)  # mistakes in the new cell, by the cell's own lines
            # line numbers as the notebook shows them: the %%agentgraph line is line 1 (with
            # --append, the appended cell's lines; the earlier text comes before line 1)
            offset = 1 - (len(text.splitlines()) - len(cell.splitlines())) if args.append else 1
            parsed = _dsl.parse(text, line_offset=offset)
            builder = _dsl.build(parsed, name=name, schema=schema, namespace=ns, builder_cls=StateGraph)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                app = builder.compile(
                    checkpointer=ckpt_spec,
                    cache=args.cache,
                    serializer=serializer,
                    interrupt_before=[s for s in args.interrupt_before.split(",") if s.strip()],
                    interrupt_after=[s for s in args.interrupt_after.split(",") if s.strip()],
                )
        except AgentGraphError as exc:
            raise _clean_traceback(exc) from None
        from agentgraph_nb.notebook.checks import check_graph

        for w in caught:
            warnings.warn_explicit(w.message, w.category, "%%agentgraph", 0)
        for msg in check_graph(app):
            from agentgraph_nb.errors import GraphValidationWarning

            warnings.warn_explicit(msg, GraphValidationWarning, "%%agentgraph", 0)
        if self.record:
            app.record()
        self.sources[name] = text
        ns[name] = app
        if args.run:
            inputs = self._inputs_var(args.inputs)
            result = app.invoke(inputs, thread_id=args.thread)
            if not args.no_display and self.display:
                from IPython.display import display

                display(app)
            return result
        if args.no_display or not self.display:
            return None
        return app

    # -- %agentgraph ---------------------------------------------------------------------------------
    def _serializer_var(self, var: str | None) -> Any:
        """The Serializer that ``--serializer NAME`` names in the notebook."""
        if var is None:
            return None
        ns = self._user_ns
        if var not in ns:
            from agentgraph_nb.checkpoint.serde import Serializer

            cands = [k for k, v in ns.items() if isinstance(v, Serializer)]
            raise UsageError(f"--serializer {var}: {var!r} is not defined in the notebook.{did_you_mean(var, cands or ns)}")
        return ns[var]

    def _inputs_var(self, var: str | None) -> Any:
        if var is None:
            return {}
        ns = self._user_ns
        if var not in ns:
            raise UsageError(f"-i {var}: {var!r} is not defined in the notebook.{did_you_mean(var, ns)}")
        return ns[var]

    def _graph(self, name: str) -> Any:
        from agentgraph_nb.graph.compiled import CompiledGraph

        ns = self._user_ns
        obj = ns.get(name)
        if not isinstance(obj, CompiledGraph):
            graphs = [k for k, v in ns.items() if isinstance(v, CompiledGraph)]
            what = "is not defined" if obj is None else f"is a {type(obj).__name__}, not a compiled graph"
            raise UsageError(f"%agentgraph: {name!r} {what}.{did_you_mean(name, graphs)} Graphs: {', '.join(graphs) or 'none'}")
        return obj

    def _value(self, text: str) -> Any:
        """Inputs on the line: a Python expression in the notebook's namespace (a dict literal,
        a variable name) or JSON."""
        text = text.strip()
        if not text:
            return {}
        try:
            return eval(compile(ast.parse(text, mode="eval"), "<%agentgraph>", "eval"), self._user_ns)
        except SyntaxError:
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise UsageError(f"%agentgraph: cannot read the inputs {text!r}: {exc}") from None

    def _new(self, rest: str) -> Any:
        """``%agentgraph new TEMPLATE NAME``: the template's state and functions into the next cell
        (running that cell writes the ``%%agentgraph`` cell after it); ``--graph`` writes the
        ``%%agentgraph`` cell itself; with no arguments, the table of templates."""
        from agentgraph_nb import templates

        words = shlex.split(rest)
        graph_only = "--graph" in words
        words = [w for w in words if w != "--graph"]
        if not words:
            import pandas as pd

            return pd.DataFrame(
                [(t.name, t.summary) for t in templates.TEMPLATES.values()], columns=["template", "what it builds"]
            ).set_index("template")
        if len(words) != 2 or any(w.startswith("-") for w in words):
            raise UsageError(
                f"usage: %agentgraph new TEMPLATE NAME (templates: {', '.join(templates.TEMPLATES)}); got {rest.strip()!r}"
            )
        template, name = words
        if template not in templates.TEMPLATES:
            raise UsageError(
                f"%agentgraph new: no template {template!r}.{did_you_mean(template, templates.TEMPLATES)} "
                f"Templates: {', '.join(templates.TEMPLATES)}"
            )
        if not name.isidentifier():
            raise UsageError(f"%agentgraph new: {name!r} is not a valid Python name to bind the graph to")
        shell = cast("InteractiveShell", self.shell)
        if not graph_only:
            self._graph_cells_written.discard(name)  # a fresh stub cell writes its graph cell once
            shell.set_next_input(templates.stub_cell(template, name), replace=False)
            print(f"The {template!r} template's state and functions are in the next cell: edit them, then run it.")
            return None
        if name in self._graph_cells_written:
            print(f"The %%agentgraph cell of {name!r} was written below when this cell first ran; not writing it again "
                  f"(%agentgraph new {template} {name} starts over).")
            return None
        self._graph_cells_written.add(name)
        shell.set_next_input(templates.graph_cell(template, name), replace=False)
        print(f"The %%agentgraph cell that builds {name!r} is in the next cell: run it to build and draw the graph.")
        return None

    # IPython annotates line_magic(name) as returning ``_F | Callable[[_F], _F]``, so mypy cannot call it
    @line_magic("agentgraph")  # type: ignore[arg-type]
    def _line(self, line: str) -> Any:
        """``%agentgraph run|show|debug|timeline|dashboard|dsl|list NAME [inputs] [--thread T] [--seed N]``;
        ``%agentgraph new TEMPLATE NAME`` (see :mod:`agentgraph_nb.templates`)."""
        parts = line.strip().split(None, 2)
        if not parts:
            raise UsageError(f"usage: %agentgraph {{{'|'.join(_SUBCOMMANDS)}}} NAME [inputs]")
        cmd = parts[0]
        if cmd not in _SUBCOMMANDS:
            raise UsageError(
                f"%agentgraph: unknown command {cmd!r}.{did_you_mean(cmd, _SUBCOMMANDS)} "
                f"Commands: {', '.join(_SUBCOMMANDS)}"
            )
        if cmd == "list":
            from agentgraph_nb.graph.compiled import CompiledGraph

            return [k for k, v in self._user_ns.items() if isinstance(v, CompiledGraph) and not k.startswith("_")]
        if cmd == "new":
            return self._new(line.strip()[3:])
        if len(parts) < 2:
            raise UsageError(f"usage: %agentgraph {cmd} NAME [inputs]")
        app = self._graph(parts[1])
        rest = parts[2] if len(parts) > 2 else ""
        opts: dict[str, Any] = {}
        for flag, key, conv in (("--thread", "thread_id", str), ("--seed", "seed", int)):
            if flag in rest:
                before, _, after = rest.partition(flag)
                toks = shlex.split(after)
                if not toks:
                    raise UsageError(f"%agentgraph {cmd}: {flag} needs a value")
                try:
                    opts[key] = conv(toks[0])
                except ValueError:
                    raise UsageError(f"%agentgraph {cmd}: {flag} {toks[0]!r} is not valid") from None
                rest = before + " ".join(toks[1:])
        if cmd == "run":  # a run's errors keep their chain: the short traceback shows them
            return app.invoke(self._value(rest), **opts)
        try:
            if cmd == "show":
                return app.show()
            if cmd == "debug":
                return app.debug(self._value(rest) if rest.strip() else None, thread_id=opts.get("thread_id"))
            if cmd == "timeline":
                return app.timeline(rest.strip() or opts.get("thread_id"))
            if cmd == "dashboard":
                return app.dashboard()
            print(app.to_dsl(), end="")
            return None
        except AgentGraphError as exc:
            raise _clean_traceback(exc) from None


def _doc() -> str:
    head = (AgentGraphMagics.agentgraph.__doc__ or "").rstrip()
    return head + "\n\n" + (_dsl.__doc__ or "")


AgentGraphMagics.agentgraph.__doc__ = _doc()


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics and the short tracebacks (``%load_ext agentgraph_nb``).

    Raises:
        MissingDependencyError: a module of the notebook front is not installed (the message
            names the ``pip install`` to run).
    """
    from agentgraph_nb._lazy import EXTRA_OF, missing_modules
    from agentgraph_nb.errors import MissingDependencyError

    front = [m for m, extra in EXTRA_OF.items() if extra == "notebook"]
    missing = missing_modules(front)
    if missing:
        raise MissingDependencyError(missing, "notebook", "%load_ext agentgraph_nb")
    ipython.register_magics(AgentGraphMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """Restore IPython's own tracebacks (IPython itself forgets the magics)."""
    from agentgraph_nb import _traceback

    _traceback.uninstall_ipython(ipython)
