"""Nodes given as import paths: ``g.add_node("fetch", "mypkg.tools:fetch")``.

The module is located when the node is added (``importlib.util.find_spec``: a missing module is
an error right away, naming the node and the path; only parent packages are imported), and the
function itself is imported when the graph first runs (or when something asks whether it is
async). A module that fails to import or an attribute that is not there is a
:class:`~agentgraph_nb.NodeImportError` naming the node and the path, with a did-you-mean for the
attribute.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from typing import Any

from agentgraph_nb._callables import is_async_callable
from agentgraph_nb.errors import NodeImportError, did_you_mean

__all__ = ["LazyNode", "is_import_path"]


def is_import_path(text: str) -> bool:
    """Whether ``text`` looks like ``"package.module:attribute"``."""
    mod, sep, attr = text.partition(":")
    return bool(sep) and all(p.isidentifier() for p in mod.split(".")) and all(
        p.isidentifier() for p in attr.split("."))


class LazyNode:
    """A node function imported from ``"module:attribute"`` on first use."""

    def __init__(self, node: str, target: str) -> None:
        self.node = node
        self.target = target
        if not isinstance(target, str) or not is_import_path(target):
            raise NodeImportError(
                f"node {node!r}: {target!r} is not an import path; write \"package.module:function\" "
                "(a dotted module, a colon, then the function's name)", node=node, target=str(target))
        module, _, attr = target.partition(":")
        self.module = module
        self.attr = attr
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError) as exc:  # a parent package is missing or fails
            raise NodeImportError(f"node {node!r}: cannot locate module {module!r} of {target!r}: {exc}",
                                  node=node, target=target) from exc
        if spec is None:
            raise NodeImportError(f"node {node!r}: no module named {module!r} (from {target!r}); "
                                  "is it installed, or on sys.path?", node=node, target=target)
        # what exports show: the target's own name (to_json writes module:qualname)
        self.__module__ = module
        self.__qualname__ = attr
        self.__name__ = attr.rsplit(".", 1)[-1]
        self._fn: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<lazy node {self.node!r}: {self.target}{'' if self._fn is None else ' (loaded)'}>"

    @property
    def loaded(self) -> bool:
        """Whether the function has been imported."""
        return self._fn is not None

    def resolve(self) -> Any:
        """The function (imported on the first call)."""
        fn = self._fn
        if fn is not None:
            return fn
        with self._lock:
            if self._fn is None:
                self._fn = self._load()
            return self._fn

    def _load(self) -> Any:
        node, target = self.node, self.target
        try:
            obj: Any = importlib.import_module(self.module)
        except Exception as exc:
            raise NodeImportError(f"node {node!r}: importing {self.module!r} (for {target!r}) failed: "
                                  f"{type(exc).__name__}: {exc}", node=node, target=target) from exc
        for part in self.attr.split("."):
            if not hasattr(obj, part):
                names = [n for n in dir(obj) if not n.startswith("_")]
                raise NodeImportError(
                    f"node {node!r}: {getattr(obj, '__name__', self.module)!r} has no attribute {part!r} "
                    f"(from {target!r}).{did_you_mean(part, names)}", node=node, target=target)
            obj = getattr(obj, part)
        if not callable(obj):
            raise NodeImportError(f"node {node!r}: {target!r} is {type(obj).__name__}, not a function",
                                  node=node, target=target)
        return obj

    @property
    def is_async(self) -> bool:
        """Whether the function is async (imports it: the engine asks when a run starts)."""
        return is_async_callable(self.resolve())

    def __call__(self, state: Any) -> Any:
        return self.resolve()(state)
