"""The ``agentgraph`` commands (click). Parsing and printing live here; finding graphs in
:mod:`agentgraph_nb.cli._load`."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from agentgraph_nb.cli._load import LoadedGraph, load_graph
from agentgraph_nb.cli._output import Timer, dumps, ms, percentile, report, table
from agentgraph_nb.cli._store import show_history, show_threads
from agentgraph_nb.errors import AgentGraphError, InvalidInputError, node_failure

__all__ = ["cli"]

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(message: str, code: int = 1) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def _errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Our typed errors become a message on stderr and exit code 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AgentGraphError as exc:
            _fail(report(exc, str(kwargs.get("graph") or "")))
        except ModuleNotFoundError as exc:  # MissingDependencyError included: it names the pip install
            _fail(f"error: {exc}")
        except Exception as exc:  # a node's own exception, told where it failed (node_failure)
            if node_failure(exc) is None:
                raise
            _fail(report(exc, str(kwargs.get("graph") or "")))

    return wrapper


def _graph_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--state", default=None, metavar="NAME",
        help="For a .agentgraph file: the state schema (a name in its modules, or module:attr); "
        "overrides its '# state:' line.",
    )(fn)
    fn = click.option(
        "-m", "--module", "modules", multiple=True, metavar="MODULE",
        help="For a .agentgraph file: a module (or file.py) whose functions its node names call. "
        "Repeatable; adds to the file's '# uses:' line.",
    )(fn)
    return click.argument("graph", metavar="GRAPH")(fn)


def _load(graph: str, modules: tuple[str, ...], state: str | None, checkpointer: str | None = None) -> LoadedGraph:
    return load_graph(graph, modules=modules, state=state, checkpointer=checkpointer)


def _read_input(text: str | None) -> Any:
    """A JSON value from the command line: the text itself, ``@file``, or ``-`` for stdin."""
    if text is None:
        return {}
    where = "the input"
    if text == "-":
        text, where = sys.stdin.read(), "standard input"
    elif text.startswith("@"):
        path = Path(text[1:])
        try:
            text, where = path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise InvalidInputError(f"cannot read the input file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"{where} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}): {text[:80]!r}. "
            """Quote it for the shell: '{"question": "q"}', or pass @file.json"""
        ) from None


# -- the group ------------------------------------------------------------------------------------


def _version() -> str:
    from agentgraph_nb import __version__

    return __version__


@click.group(context_settings=_CONTEXT)
@click.version_option(_version(), "--version", "-V", prog_name="agentgraph")
def cli() -> None:
    """Validate, run, export, inspect, profile and benchmark agentgraph_nb graphs.

    GRAPH is module:attr (a StateGraph, a compiled graph, or a function returning one; the
    current directory is importable), path/to/file.py:attr, or a .agentgraph file in the
    %%agentgraph cell language. A .agentgraph file's node names call functions of the modules
    on its '# uses: module' line or given with --module (else of the .py file of the same
    name beside it).

    \b
    Examples:
      agentgraph validate research.agentgraph
      agentgraph run myapp.graphs:research '{"question": "q"}' --stream
      agentgraph export research.agentgraph --format mermaid -o graph.mmd
      agentgraph inspect sqlite:///runs.db --thread t1
    """


@cli.command(context_settings=_CONTEXT)
@_graph_options
@click.option("--strict", is_flag=True, help="Treat warnings (unreachable nodes, no way to END, ...) as errors.")
@_errors
def validate(graph: str, modules: tuple[str, ...], state: str | None, strict: bool) -> None:
    """Check a graph: exit code 0 when it compiles, 1 with the error otherwise.

    Errors in a .agentgraph file are shown as FILE:LINE:COLUMN with the line and a caret, as
    the notebook shows them; warnings name the nodes.
    """
    loaded = _load(graph, modules, state)
    app = loaded.app
    for w in loaded.warnings:
        click.echo(f"warning: {w}", err=True)
    p = app.plan
    edges = sum(len(n.succ) + len(n.branches) + len(n.weighted) for n in [p.start, *p.nodes]) + len(p.joins)
    if strict and loaded.warnings:
        _fail(f"{graph}: {len(loaded.warnings)} warning(s), and --strict makes them errors")
    click.echo(f"ok: {loaded.source}: graph {app.name!r}, {len(p.nodes)} nodes, {edges} edges")


@cli.command(context_settings=_CONTEXT)
@_graph_options
@click.argument("input", required=False, metavar="[INPUT]")
@click.option("-t", "--thread", default=None, help="thread_id of the run (checkpoints are kept under it).")
@click.option(
    "-c", "--checkpointer", default=None, metavar="URL",
    help="Where checkpoints go: memory, sqlite:///runs.db. Default: the graph's own (memory for a builder).",
)
@click.option(
    "--stream", "stream_mode", is_flag=False, flag_value="updates", default=None,
    type=click.Choice(["updates", "values", "events"]),
    help="Print each update (or state, or event) as a JSON line as the run goes (default mode: updates).",
)
@click.option("--resume", default=None, metavar="VALUE", help="Answer a paused thread's interrupt (JSON, else text); needs --thread.")
@click.option("--seed", type=int, default=None, help="Seed for weighted edges and jitter (reproducible runs).")
@click.option("--progress/--no-progress", default=None, help="Show each node as it finishes on stderr (default: when stderr is a terminal).")
@click.option("--indent", type=int, default=None, help="Indent the final state's JSON.")
@_errors
def run(
    graph: str, modules: tuple[str, ...], state: str | None, input: str | None, thread: str | None,
    checkpointer: str | None, stream_mode: str | None, resume: str | None, seed: int | None,
    progress: bool | None, indent: int | None,
) -> None:
    """Run a graph on INPUT (JSON text, @file.json, or - for stdin; default {}) and print the final
    state as JSON.

    A run that pauses at an interrupt prints its state with "__interrupt__"; answer it with
    --resume VALUE --thread T (use a store that outlives the process: --checkpointer sqlite:///runs.db).
    """
    from agentgraph_nb.types import Command

    if resume is not None:
        if thread is None:
            raise click.UsageError("--resume needs --thread: the thread whose interrupt it answers")
        if input is not None:
            raise click.UsageError("give INPUT or --resume, not both")
        try:
            value: Any = json.loads(resume)
        except json.JSONDecodeError:
            value = resume
        inp: Any = Command(resume=value)
    else:
        inp = _read_input(input)
    app = _load(graph, modules, state, checkpointer).app
    show = sys.stderr.isatty() if progress is None else progress
    unlisten = None
    if show:
        def on_event(e: Any) -> None:
            if e.kind == "node_end":
                click.echo(f"[step {e.step}] {e.node} done in {ms(e.duration)} ms", err=True)
            elif e.kind == "node_retry":
                click.echo(f"[step {e.step}] {e.node} retrying (attempt {e.attempt + 1})", err=True)
            elif e.kind == "node_error":
                click.echo(f"[step {e.step}] {e.node} failed", err=True)
            elif e.kind == "interrupt":
                click.echo(f"[step {e.step}] paused at {e.node or 'an interrupt'}", err=True)

        unlisten = app.listen(on_event)
    kwargs: dict[str, Any] = {"thread_id": thread}
    if seed is not None:
        kwargs["seed"] = seed
    try:
        if stream_mode is None:
            result = app.invoke(inp, **kwargs)
            click.echo(dumps(result, indent=indent))
            if isinstance(result, dict) and result.get("__interrupt__"):
                how = f"--thread {thread} --resume VALUE" if thread else "a --thread (and a sqlite checkpointer)"
                click.echo(f"paused at an interrupt: answer it with {how}", err=True)
        else:
            for chunk in app.stream(inp, mode=stream_mode, **kwargs):
                if stream_mode == "events":
                    chunk = {
                        "kind": chunk.kind, "step": chunk.step, "node": chunk.node,
                        "duration": chunk.duration, "attempt": chunk.attempt,
                        "run_id": chunk.run_id, "thread_id": chunk.thread_id,
                    }
                click.echo(dumps(chunk))
    finally:
        if unlisten is not None:
            unlisten()
        app.close()


_FORMATS = ("dot", "mermaid", "json", "svg", "dsl")


@cli.command(context_settings=_CONTEXT)
@_graph_options
@click.option("-f", "--format", "fmt", type=click.Choice(_FORMATS), default="mermaid", show_default=True, help="Output format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None, help="Write to this file instead of stdout.")
@_errors
def export(graph: str, modules: tuple[str, ...], state: str | None, fmt: str, output: str | None) -> None:
    """Print a graph as Graphviz DOT, Mermaid, JSON, a static SVG, or %%agentgraph cell text (dsl)."""
    app = _load(graph, modules, state).app
    if fmt == "dot":
        text = app.to_dot()
    elif fmt == "mermaid":
        text = app.to_mermaid()
    elif fmt == "json":
        text = json.dumps(app.to_json(), indent=2)
    elif fmt == "svg":
        from agentgraph_nb.export.svg import render_svg

        text = render_svg(app.to_json())
    else:
        text = app.to_dsl()
    if not text.endswith("\n"):
        text += "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(f"cannot write {output!r}: {exc.strerror or exc}") from None
        click.echo(f"wrote {output} ({fmt}, {len(text)} characters)", err=True)


@cli.command(context_settings=_CONTEXT)
@click.argument("url", metavar="URL")
@click.option("-t", "--thread", default=None, help="Show this thread's history and state (else: list the threads).")
@click.option("-n", "--limit", type=int, default=20, show_default=True, help="At most this many checkpoints of the history.")
@click.option(
    "-g", "--graph", default=None, metavar="GRAPH",
    help="The graph whose runs the store holds: its reducers rebuild the state exactly "
    "(without it, each write replaces a key's value).",
)
@click.option("-k", "--checkpoint", default=None, metavar="ID", help="With --thread: the state at this checkpoint (else: the newest).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@_errors
def inspect(url: str, thread: str | None, limit: int, graph: str | None, checkpoint: str | None, as_json: bool) -> None:
    """Show what a checkpoint store (sqlite:///runs.db) holds: its threads, or with --thread T
    that thread's history (newest first) and its state, as tables."""
    from agentgraph_nb.checkpoint import open_checkpointer

    if not url.startswith(("sqlite:", "postgres", "redis")) and "://" not in url:
        raise InvalidInputError(f"{url!r} is not a store URL: give e.g. sqlite:///runs.db")
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
        if not path.is_file():
            raise InvalidInputError(f"no store at {url}: {str(path)!r} does not exist")
    store = open_checkpointer(url)
    try:
        if thread is None:
            if checkpoint is not None:
                raise click.UsageError("--checkpoint needs --thread")
            show_threads(store, as_json)
        else:
            show_history(store, url, thread, limit, graph, as_json, checkpoint)
    finally:
        store.close()


# -- profile and bench ----------------------------------------------------------------------------


@cli.command(context_settings=_CONTEXT)
@_graph_options
@click.argument("input", required=False, metavar="[INPUT]")
@click.option("--seed", type=int, default=None, help="Seed for weighted edges.")
@_errors
def profile(graph: str, modules: tuple[str, ...], state: str | None, input: str | None, seed: int | None) -> None:
    """Run a graph once on INPUT and print where the time went, per node."""
    inp = _read_input(input)
    app = _load(graph, modules, state, checkpointer="memory").app
    timer = Timer()
    unlisten = app.listen(timer)
    t = time.perf_counter()
    try:
        app.invoke(inp, **({"seed": seed} if seed is not None else {}))
    finally:
        wall = time.perf_counter() - t
        unlisten()
        app.close()
    total = sum(sum(v) for v in timer.times.values()) or 1e-12
    rows = sorted(timer.times.items(), key=lambda kv: -sum(kv[1]))
    click.echo(table(
        [(n, len(v), ms(sum(v)), ms(sum(v) / len(v)), f"{100 * sum(v) / total:.1f}%") for n, v in rows],
        ["node", "calls", "total ms", "mean ms", "share"], right=(1, 2, 3, 4),
    ))
    click.echo(f"\nrun: {ms(wall)} ms wall, {ms(sum(sum(v) for v in timer.times.values()))} ms in nodes")


@cli.command(context_settings=_CONTEXT)
@_graph_options
@click.argument("input", required=False, metavar="[INPUT]")
@click.option("-n", "--runs", type=click.IntRange(1), default=20, show_default=True, help="Timed runs.")
@click.option("--warmup", type=click.IntRange(0), default=2, show_default=True, help="Untimed runs first.")
@click.option("--seed", type=int, default=None, help="Seed for weighted edges (the same for every run).")
@_errors
def bench(
    graph: str, modules: tuple[str, ...], state: str | None, input: str | None, runs: int, warmup: int, seed: int | None
) -> None:
    """Run a graph N times on INPUT and print p50/p99 per node and per run (no checkpoints)."""
    inp = _read_input(input)
    app = _load(graph, modules, state).app  # runs without a thread_id keep no checkpoints
    kw = {"seed": seed} if seed is not None else {}
    try:
        for _ in range(warmup):
            app.invoke(inp, **kw)
        timer = Timer()
        unlisten = app.listen(timer)
        walls = []
        try:
            for _ in range(runs):
                t = time.perf_counter()
                app.invoke(inp, **kw)
                walls.append(time.perf_counter() - t)
        finally:
            unlisten()
    finally:
        app.close()
    rows = [(n, len(v), ms(percentile(v, 50)), ms(percentile(v, 99)), ms(sum(v) / len(v))) for n, v in timer.times.items()]
    rows.append(("(run)", len(walls), ms(percentile(walls, 50)), ms(percentile(walls, 99)), ms(sum(walls) / len(walls))))
    click.echo(table(rows, ["node", "calls", "p50 ms", "p99 ms", "mean ms"], right=(1, 2, 3, 4)))
