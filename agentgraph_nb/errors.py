"""Typed errors. Every message says what went wrong, where, and what to do.

All of them derive from :class:`AgentGraphError`, so ``except AgentGraphError`` catches
anything the engine raises on its own behalf.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "AgentGraphError",
    "AgentGraphWarning",
    "CheckpointError",
    "GraphInterrupt",
    "GraphRecursionError",
    "GraphValidationError",
    "GraphValidationWarning",
    "InvalidInputError",
    "InvalidUpdateError",
    "MissingDependencyError",
    "NodeError",
    "NodeTimeoutError",
]


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""``."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


class AgentGraphError(Exception):
    """Base class of every error agentgraph_nb raises on its own behalf."""

    # The failing node's function, set by the engine when a run fails, so that a short
    # traceback can point at the node's code (e.g. the ``return`` of a bad update) even when
    # none of its frames is in the traceback. Never pickled.
    _node_fn: Any = None

    def __reduce__(self) -> Any:
        # private attributes (the node's function, IPython's ``_render_traceback_``) may not
        # pickle; the error's own fields do
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        return (type(self), self.args, state or None)


class GraphValidationError(AgentGraphError, ValueError):
    """The graph definition has a definite mistake (unknown node, duplicate name, ...)."""


class InvalidInputError(AgentGraphError, ValueError):
    """A call's arguments cannot be used (e.g. nothing to resume on a thread)."""


class InvalidUpdateError(AgentGraphError, ValueError):
    """A node's update cannot be applied: not a dict, unknown key, or conflicting parallel writes.

    Attributes:
        node: the node whose update was rejected (the first one, for conflicts).
        key: the state key involved, when there is one.
        step: the superstep, when raised by a run.
    """

    def __init__(self, message: str, *, node: str | None = None, key: str | None = None, step: int | None = None) -> None:
        super().__init__(message)
        self.node = node
        self.key = key
        self.step = step

    def __str__(self) -> str:
        msg = super().__str__()
        return msg if self.step is None else f"{msg} (at step {self.step})"


class NodeError(AgentGraphError):
    """A node failed after its retries. Chained (``raise ... from``) to the original exception.

    Attributes:
        node: the node's name.
        step: the superstep in which it failed.
        attempt: how many attempts were made (1 = no retry).
    """

    def __init__(self, message: str, *, node: str, step: int, attempt: int) -> None:
        super().__init__(message)
        self.node = node
        self.step = step
        self.attempt = attempt

    def __reduce__(self) -> Any:  # keep picklable across processes (batch in pools)
        return (_rebuild, (type(self), str(self), self.node, self.step, self.attempt))


def _rebuild(cls: type[NodeError], msg: str, node: str, step: int, attempt: int) -> NodeError:
    return cls(msg, node=node, step=step, attempt=attempt)


class NodeTimeoutError(NodeError, TimeoutError):
    """A node ran longer than its ``timeout=`` (sync and async nodes alike).

    A sync node that times out cannot be killed: its thread is abandoned and its result ignored.
    """


class MissingDependencyError(AgentGraphError, ModuleNotFoundError):
    """An optional dependency is not installed; the message names the ``pip install`` to run.

    A :class:`ModuleNotFoundError` (so ``except ImportError`` still works).

    Attributes:
        name: the missing module (as for any ``ModuleNotFoundError``).
        extra: the agentgraph_nb extra that installs it, e.g. ``"notebook"``.
    """

    def __init__(self, modules: str | Iterable[str], extra: str, feature: str = "") -> None:
        mods = [modules] if isinstance(modules, str) else list(modules)
        what = feature or "agentgraph_nb's notebook front"
        names = ", ".join(mods)
        verb = "is" if len(mods) == 1 else "are"
        super().__init__(
            f"{what} needs {names}, which {verb} not installed. "
            f'Install it with: pip install "agentgraph_nb[{extra}]"',
            name=mods[0],
        )
        self.modules = tuple(mods)
        self.extra = extra
        self.feature = feature

    def __reduce__(self) -> Any:
        return (type(self), (self.modules, self.extra, self.feature))


class GraphRecursionError(AgentGraphError, RecursionError):
    """The run reached ``recursion_limit`` supersteps without finishing."""


class CheckpointError(AgentGraphError):
    """A checkpoint store cannot be read or written (corrupt, locked, full, newer schema, ...)."""


class GraphInterrupt(BaseException):
    """Raised by :func:`agentgraph_nb.interrupt` to pause a node; the engine catches it.

    It derives from ``BaseException`` so that a node's ``except Exception`` does not swallow it.
    """

    def __init__(self, interrupts: tuple[Any, ...]) -> None:
        super().__init__(interrupts)
        self.interrupts = interrupts


class AgentGraphWarning(UserWarning):
    """Base class of agentgraph_nb's warnings."""


class GraphValidationWarning(AgentGraphWarning):
    """A likely mistake in a graph: an unreachable node, no way to END, ..."""
