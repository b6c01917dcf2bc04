"""Short tracebacks for the errors of runs.

A node that fails surfaces through the engine's frames (``run_loop``, ``run_sync_task``, the
drivers), which make a Python traceback 60 lines long and, for a bad update (a non-dict return,
an unknown key), never show the user's own line at all. The short form keeps what a user acts on:

    Traceback (most recent call last; 7 agentgraph_nb frames hidden, %tb shows them):
      Cell In[3], line 1, in <module>
        app.invoke({"x": 1})
      Cell In[2], line 4, in bad  <- node 'bad' returned this (step 1)
        return "oops"
    InvalidUpdateError: node 'bad' returned str 'oops': a node must return a dict ... (at step 1)

the user's frames with their source lines (frames of agentgraph_nb, and of the standard library
or installed packages it calls, are left out; a library the user's code calls shows as one line),
the node and step, and the error. For a bad update, which is found after the node returned, the
engine hands over the node's function (``AgentGraphError._node_fn``) and the short form points at
its ``return`` (or at the place that writes the unknown key), found with :mod:`ast`.

Nothing here runs until an error is shown. ``%load_ext agentgraph_nb`` turns the short form on in
IPython and Jupyter (``%tb`` still prints the full chain); :func:`short_tracebacks` turns it on
anywhere, scripts included; :func:`full_traceback` gives the full text of any error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

__all__ = [
    "full_traceback",
    "install_ipython",
    "should_shorten",
    "short_traceback",
    "short_tracebacks",
    "uninstall_ipython",
]

_PKG = os.path.dirname(os.path.abspath(__file__)) + os.sep
_ENGINE = os.path.join(_PKG, "engine") + os.sep
_MAX_CANDIDATES = 3
_MAX_FRAMES = 6  # frame entries shown; a deeper stack keeps its first 2 and last 3
_SHELL = tuple(f"{name}{os.sep}" for name in ("IPython", "ipykernel"))
_lib_dirs: tuple[str, ...] | None = None


def full_traceback(exc: BaseException) -> str:
    """The complete traceback of ``exc``, with its whole chain of causes, as Python prints it.

    Example:
        >>> try:                                                   # doctest: +SKIP
        ...     app.invoke({"x": 1})
        ... except ValueError as err:                            # what the node raised
        ...     print(agentgraph_nb.full_traceback(err))
    """
    import traceback

    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes (or contexts), outermost first, as Python would print them."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ if cur.__cause__ is not None else (None if cur.__suppress_context__ else cur.__context__)


def _frames(tb: TracebackType | None) -> Iterator[tuple[Any, int]]:
    while tb is not None:
        yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def should_shorten(exc: BaseException) -> bool:
    """Whether the short form applies: an agentgraph_nb error, or any error that came out of a run
    (a node's own exception, which the engine re-raises with its own type)."""
    from agentgraph_nb.errors import AgentGraphError

    if isinstance(exc, AgentGraphError):
        return True
    for e in _chain(exc):
        for frame, _ in _frames(e.__traceback__):
            if frame.f_code.co_filename.startswith(_ENGINE):
                return True
    return False


# -- where a frame's file belongs ------------------------------------------------------------------
def _libs() -> tuple[str, ...]:
    global _lib_dirs
    if _lib_dirs is None:
        import site
        import sysconfig

        paths = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
        try:
            paths.update(site.getsitepackages())
            paths.add(site.getusersitepackages())
        except AttributeError:  # some embedded interpreters' site module lacks these
            pass
        _lib_dirs = tuple(sorted({os.path.abspath(p) + os.sep for p in paths if p}, key=len, reverse=True))
    return _lib_dirs


def _kind(filename: str) -> str:
    """``"engine"`` (agentgraph_nb), ``"lib"`` (standard library, installed packages), ``"hidden"``
    (frozen or generated code, IPython's and ipykernel's machinery) or ``"user"``."""
    if filename.startswith(_PKG):
        return "engine"
    if filename.startswith(("<frozen", "<decorator-gen")):
        return "hidden"
    libs = _libs()
    if filename.startswith(libs):
        # the shell's own machinery (running a cell, dispatching a magic) is not a library the
        # user's code called
        for d in libs:
            if filename.startswith(d):
                return "hidden" if filename[len(d):].startswith(_SHELL) else "lib"
    return "user"


def _lib_name(filename: str) -> str:
    for d in _libs():
        if filename.startswith(d):
            first = filename[len(d):].split(os.sep, 1)[0]
            return first[:-3] if first.endswith(".py") else first
    return os.path.basename(filename)


# -- formatting ------------------------------------------------------------------------------------
def _ipython() -> Any:
    mod = sys.modules.get("IPython")
    if mod is None:
        return None
    try:
        return mod.get_ipython()
    except Exception:
        return None


class _Writer:
    """Formats frame locations like the shell in use: ``Cell In[3], line 2, in f`` in IPython,
    ``File "x.py", line 2, in f`` elsewhere."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.entries: list[list[str]] = []  # one per frame (its location and source line)

    def where(self, filename: str, lineno: int, name: str) -> str:
        fmt = getattr(getattr(self.shell, "compile", None), "format_code_name", None)
        if fmt is not None:
            try:
                label = fmt(filename)
            except Exception:
                label = None
            if label:
                return f"{label[0]} {label[1]}, line {lineno}, in {name}"
        return f'File "{filename}", line {lineno}, in {name}'

    def frame(self, filename: str, lineno: int, name: str, note: str = "", globs: Any = None) -> None:
        import linecache

        entry = [f"  {self.where(filename, lineno, name)}{f'  <- {note}' if note else ''}"]
        src = linecache.getline(filename, lineno, globs).strip()
        if src:
            entry.append(f"    {src}")
        self.entries.append(entry)

    def libs(self, files: list[str]) -> None:
        """Frames of a library the user's code called: one line."""
        if files:
            n = len(files)
            self.entries.append([f"  ... {n} frame{'s' if n > 1 else ''} in {_lib_name(files[0])}"])

    def lines(self) -> list[str]:
        """All entries; a deep stack (recursion) keeps its first and last frames."""
        entries = self.entries
        if len(entries) > _MAX_FRAMES:
            cut = len(entries) - _MAX_FRAMES + 1
            entries = [*entries[:2], [f"  ... {cut} more frames"], *entries[2 + cut:]]
        return [line for entry in entries for line in entry]


def _node_info(chain: list[BaseException]) -> tuple[Any, str | None, int | None, BaseException | None]:
    """(the node's function, its name, the step, the error that carries them) from the chain:
    a node's own exception carries a ``NodeFailure`` (see engine/_loop.py), our errors carry
    ``_node_fn``, ``node`` and ``step``."""
    from agentgraph_nb.types import NodeFailure

    for e in chain:
        failure = e.__dict__.get("agentgraph_failure") if hasattr(e, "__dict__") else None
        if isinstance(failure, NodeFailure) and failure.during == "node" and failure._fn is not None:
            return failure._fn, failure.node, failure.step, e
        fn = getattr(e, "_node_fn", None)
        if fn is not None:
            return fn, getattr(e, "node", None), getattr(e, "step", None), e
    for e in chain:
        node = getattr(e, "node", None)
        if isinstance(node, str):
            return None, node, getattr(e, "step", None), e
    return None, None, None, None


def _code_of(fn: Any) -> Any:
    """The plain function behind a node (unwrapping decorators, partials, callable objects)."""
    import functools
    import inspect

    for _ in range(8):
        try:
            fn = inspect.unwrap(fn)
        except Exception:  # a wrapper whose target is gone (e.g. a name no longer defined)
            return None
        if isinstance(fn, functools.partial):
            fn = fn.func
            continue
        if inspect.ismethod(fn):
            fn = fn.__func__
        if inspect.isfunction(fn):
            return fn
        call = getattr(type(fn), "__call__", None)  # noqa: B004
        if call is None or not inspect.isfunction(call):
            return None
        fn = call
    return None


def short_traceback(exc: BaseException, *, shell: Any = None, hint: str | None = None) -> str:
    """The short form of ``exc``'s traceback (see the module's docstring) as text.

    Args:
        exc: any exception; the short form is meant for errors of runs (:func:`should_shorten`).
        shell: the IPython shell, to name notebook cells as ``Cell In[3]`` (found by default).
        hint: what shows the full traceback (by default ``%tb`` in IPython,
            ``agentgraph_nb.full_traceback(err)`` elsewhere).
    """
    shell = _ipython() if shell is None else shell
    chain = list(_chain(exc))
    fn, node, step, carrier = _node_info(chain)
    node_fn = _code_of(fn) if fn is not None else None
    out = _Writer(shell)
    hidden = 0
    node_frame_seen = False
    for e in chain:
        prev = "engine"  # a segment starts where the engine caught or raised it
        lib_run: list[str] = []
        for frame, lineno in _frames(e.__traceback__):
            filename = frame.f_code.co_filename
            kind = _kind(filename)
            if kind == "lib" and prev in ("user", "lib-shown"):
                lib_run.append(filename)
                prev = "lib-shown"
                continue
            out.libs(lib_run)
            lib_run = []
            if kind == "user":
                note = ""
                if node_fn is not None and frame.f_code is node_fn.__code__ and not node_frame_seen:
                    node_frame_seen = True
                    note = f"node {node!r}" + (f", step {step}" if step is not None else "")
                out.frame(filename, lineno, frame.f_code.co_name, note, frame.f_globals)
                prev = "user"
            else:
                hidden += kind == "engine"
                prev = kind
        out.libs(lib_run)
    if node_fn is not None and not node_frame_seen:
        _point_at_node(out, node_fn, node, step, carrier)
    if hint is None:
        hint = "%tb" if shell is not None else "agentgraph_nb.full_traceback(err)"
    if hidden:
        what = f"{hidden} agentgraph_nb frame{'s' if hidden != 1 else ''} hidden, {hint} shows them"
    else:
        what = f"{hint} shows the full one"
    head = f"Traceback (most recent call last; {what}):"
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    lines = [head, *out.lines(), message]
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):  # where the node failed, as the engine tells it; after the message, as Python prints notes
        lines += [n for n in notes if isinstance(n, str)]
    for e in chain[1:]:
        mine = f"{type(e).__name__}: {e}"
        if mine not in message and str(e) not in message:
            lines.append(f"(caused by {mine})")
            break
    return "\n".join(lines)


# -- pointing at the node's code -------------------------------------------------------------------
def _point_at_node(out: _Writer, fn: Any, node: str | None, step: int | None, err: BaseException | None) -> None:
    """Lines showing where in ``fn`` the bad update comes from (its returns, or the writes of the
    unknown key), or at least where the node is defined."""
    from agentgraph_nb.errors import InvalidUpdateError

    code = fn.__code__
    at = f" (step {step})" if step is not None else ""
    who = f"node {node!r}" if node else "the node"
    found: list[int] = []
    label = f"{who}{at}"
    try:
        if isinstance(err, InvalidUpdateError):
            key = getattr(err, "key", None)
            found = _places(fn, key)
            if found:
                what = f"writes {key!r} here" if key is not None else "returned this"
                label = f"{who} {what}{at}" if len(found) == 1 else f"{who}{at}: one of these"
    except Exception:  # source unavailable or unparsable: the definition still helps
        found = []
    if not found:
        out.frame(code.co_filename, code.co_firstlineno, code.co_name, f"{label}, defined here", fn.__globals__)
        return
    for i, lineno in enumerate(found[:_MAX_CANDIDATES]):
        out.frame(code.co_filename, lineno, code.co_name, label if i == 0 else "or here", fn.__globals__)
    if len(found) > _MAX_CANDIDATES:
        out.entries.append([f"  ... and {len(found) - _MAX_CANDIDATES} more"])


def _places(fn: Any, key: str | None) -> list[int]:
    """Absolute line numbers in ``fn``: where it writes ``key`` (a dict literal's key, a ``key=``
    keyword, ``x[key] = ...``), or, with no key, the ``return`` statements whose value can be
    something other than a dict, None or a Command (the definite ones when there are any)."""
    import ast
    import inspect
    import textwrap

    src, start = inspect.getsourcelines(fn)
    tree = ast.parse(textwrap.dedent("".join(src)))
    fnode = _function_node(tree, fn.__name__)
    if fnode is None:
        return []
    body: list[ast.AST] = [fnode.body] if isinstance(fnode, ast.Lambda) else list(fnode.body)
    if key is not None:
        lines = []
        for n in _walk(body, nested=True):
            if isinstance(n, ast.Dict):
                lines += [k.lineno for k in n.keys if isinstance(k, ast.Constant) and k.value == key]
            elif isinstance(n, ast.keyword) and n.arg == key:
                lines.append(n.lineno)
            elif isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store):
                sl = n.slice
                if isinstance(sl, ast.Constant) and sl.value == key:
                    lines.append(n.lineno)
        if lines:
            return sorted({start + ln - 1 for ln in lines})
    if isinstance(fnode, ast.Lambda):
        values: list[tuple[int, ast.AST | None]] = [(fnode.body.lineno, fnode.body)]
    else:
        values = [(n.lineno, n.value) for n in _walk(body, nested=False) if isinstance(n, ast.Return)]
    bad = [ln for ln, v in values if _surely_not_update(v)]
    maybe = [ln for ln, v in values if not _surely_update(v) and not _surely_not_update(v)]
    chosen = bad or maybe or [ln for ln, v in values if v is not None]
    return sorted({start + ln - 1 for ln in chosen})


def _function_node(tree: Any, name: str) -> Any:
    import ast

    for n in ast.walk(tree):
        if name == "<lambda>" and isinstance(n, ast.Lambda):
            return n
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name:
            return n
    return None


def _walk(nodes: list[Any], *, nested: bool) -> Iterator[Any]:
    """The AST nodes under ``nodes``; with ``nested=False``, not those of nested functions or
    classes (their returns are not the node's)."""
    import ast

    todo = list(nodes)
    while todo:
        n = todo.pop()
        yield n
        if not nested and isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        todo.extend(ast.iter_child_nodes(n))


def _called(v: Any) -> str:
    import ast

    if isinstance(v, ast.Call):
        f = v.func
        return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
    return ""


def _surely_update(v: Any) -> bool:
    import ast

    return (
        v is None
        or (isinstance(v, ast.Constant) and v.value is None)
        or isinstance(v, (ast.Dict, ast.DictComp))
        or _called(v) in ("dict", "Command")
    )


def _surely_not_update(v: Any) -> bool:
    import ast

    if isinstance(v, ast.Constant):
        return v.value is not None
    return isinstance(
        v, (ast.JoinedStr, ast.List, ast.ListComp, ast.Tuple, ast.Set, ast.SetComp, ast.GeneratorExp,
            ast.Compare, ast.Lambda)
    ) or _called(v) in ("str", "list", "tuple", "set", "int", "float", "bool", "Send")


# -- switching it on -------------------------------------------------------------------------------
def _handler(shell: Any, etype: type[BaseException], value: BaseException, tb: TracebackType | None,
             tb_offset: int | None = None) -> None:
    """IPython's custom exception handler: the short form for errors of runs, IPython's own
    display (or the handler that was there before ours) for everything else."""
    prev_types, prev_handler = getattr(shell, "_agentgraph_prev_exc", ((), None))
    stb: list[str] | None = None
    if not hasattr(value, "_render_traceback_"):
        try:
            if should_shorten(value):
                stb = short_traceback(value, shell=shell).splitlines()
        except Exception:  # never let the short form hide an error: fall back to the full one
            stb = None
    if stb is None:
        if prev_handler is not None and prev_types and isinstance(value, prev_types):
            prev_handler(etype, value, tb, tb_offset=tb_offset)
        elif isinstance(value, SyntaxError) and not _ran_user_code(tb):
            # a cell that does not parse (IPython calls us inside its except clause, so
            # showsyntaxerror finds the error): what IPython shows without a custom handler
            shell.showsyntaxerror()
        else:  # an error while the cell ran: likewise
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
        return
    # showtraceback renders what _render_traceback_ returns, and also records the error for %tb,
    # %debug and %pdb; %tb, called later without it, shows the full chain
    value._render_traceback_ = lambda: stb  # type: ignore[attr-defined]
    try:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    finally:
        del value._render_traceback_  # type: ignore[attr-defined]


def _ran_user_code(tb: TracebackType | None) -> bool:
    return any(_kind(frame.f_code.co_filename) == "user" for frame, _ in _frames(tb))


def install_ipython(shell: Any) -> None:
    """Show errors of runs in ``shell`` in the short form (``%load_ext agentgraph_nb`` does this).
    A custom exception handler already set (by another extension) keeps handling its own types."""
    if getattr(shell, "_agentgraph_prev_exc", None) is not None:
        return
    prev = (tuple(getattr(shell, "custom_exceptions", ()) or ()), getattr(shell, "CustomTB", None))
    shell._agentgraph_prev_exc = prev
    shell.set_custom_exc((Exception,), _handler)


def uninstall_ipython(shell: Any) -> None:
    """Undo :func:`install_ipython`: restore the handler that was there before."""
    prev = getattr(shell, "_agentgraph_prev_exc", None)
    if prev is None:
        return
    shell._agentgraph_prev_exc = None
    types_, handler = prev
    if types_ and handler is not None:
        shell.custom_exceptions = types_
        shell.CustomTB = handler
    else:
        shell.set_custom_exc((), None)


_prev_hook: Callable[..., Any] | None = None


def _excepthook(etype: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    prev = _prev_hook or sys.__excepthook__
    try:
        hint = "agentgraph_nb.short_tracebacks(False)"
        text = short_traceback(value, hint=hint) if should_shorten(value) else None
    except Exception:
        text = None
    if text is None:
        prev(etype, value, tb)
    else:
        print(text, file=sys.stderr)


def short_tracebacks(enabled: bool = True) -> None:
    """Show errors of runs in the short form: in IPython and Jupyter (what ``%load_ext
    agentgraph_nb`` does) or, in a script, for errors that end the program (``sys.excepthook``).

    The full traceback stays available: ``%tb`` in IPython, :func:`full_traceback` anywhere, and
    the error's ``__traceback__`` and ``__cause__`` are untouched.

    Example:
        >>> import agentgraph_nb
        >>> agentgraph_nb.short_tracebacks()          # doctest: +SKIP
        >>> agentgraph_nb.short_tracebacks(False)     # back to Python's own tracebacks
    """
    global _prev_hook
    shell = _ipython()
    if shell is not None:
        (install_ipython if enabled else uninstall_ipython)(shell)
        return
    if enabled and sys.excepthook is not _excepthook:
        _prev_hook = sys.excepthook
        sys.excepthook = _excepthook
    elif not enabled and sys.excepthook is _excepthook:
        sys.excepthook = _prev_hook or sys.__excepthook__
        _prev_hook = None
