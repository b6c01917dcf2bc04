"""Lazy imports: heavy standard modules on first use (keeping ``import agentgraph_nb`` fast for
scripts that never need them), and the optional dependencies of the notebook front, whose absence
becomes an error that names the ``pip install`` to run."""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

__all__ = ["EXTRA_OF", "LazyModule", "missing_modules", "requires_extra"]

EXTRA_OF: dict[str, str] = {
    "IPython": "notebook",
    "traitlets": "notebook",
    "ipywidgets": "notebook",
    "anywidget": "notebook",
    "plotly": "notebook",
    "_plotly_utils": "notebook",  # ships in the plotly distribution
    "pandas": "notebook",
    "numpy": "notebook",
    "tqdm": "notebook",
    "nest_asyncio2": "notebook",
    "pydantic": "pydantic",
    "psycopg": "postgres",
    "redis": "redis",
    "hiredis": "redis",
    "zstandard": "zstd",
    "cryptography": "crypto",
    "openai": "llm",
    "anthropic": "anthropic",
    "mcp": "mcp",
    "langchain_core": "langchain",
    # the node library and the command line (agentgraph_nb.nodes, agentgraph_nb.cli)
    "httpx": "http",
    "sqlalchemy": "sql",
    "jinja2": "util",
    "jsonschema": "util",
    "click": "cli",
    "pyarrow": "parquet",  # Parquet files (with pandas)
    # observability (agentgraph_nb.observe)
    "opentelemetry": "otel",
    "prometheus_client": "prometheus",
    "statsd": "statsd",
    "ray": "ray",  # Health(ray=True); the Ray executor
    "aio_pika": "rabbitmq",
    "aiokafka": "kafka",
    "watchfiles": "watch",
}
"""Each optional top-level module agentgraph_nb imports, and the extra that installs it."""


class LazyModule:
    """Stands in for a module in another module's globals until first attribute access, then
    replaces itself there with the real module (so later accesses cost nothing extra)."""

    def __init__(self, name: str, owner: str, alias: str) -> None:
        self._name = name
        self._owner = owner
        self._alias = alias

    def __getattr__(self, attr: str) -> Any:
        mod = importlib.import_module(self._name)
        owner = sys.modules.get(self._owner)
        if owner is not None:
            setattr(owner, self._alias, mod)
        return getattr(mod, attr)


class requires_extra:
    """Turn the ``ModuleNotFoundError`` of an optional dependency, raised inside the block, into a
    :class:`~agentgraph_nb.errors.MissingDependencyError` naming the ``pip install`` to run.

    Example::

        with requires_extra("app.timeline()"):
            from agentgraph_nb.ui.timeline import timeline   # imports plotly

    Any other error, including a missing module that is not one of ours, passes through unchanged.
    The check runs only when an import fails: a successful import costs nothing extra.
    """

    __slots__ = ("feature",)

    def __init__(self, feature: str = "") -> None:
        self.feature = feature

    def __enter__(self) -> None:
        return None

    def __exit__(self, etype: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None or not isinstance(exc, ModuleNotFoundError):
            return
        from agentgraph_nb.errors import MissingDependencyError

        if isinstance(exc, MissingDependencyError):
            return
        top = (exc.name or "").partition(".")[0]
        extra = EXTRA_OF.get(top)
        if extra is not None:
            raise MissingDependencyError(top, extra, self.feature) from exc


def missing_modules(names: Iterable[str]) -> list[str]:
    """Which of ``names`` cannot be imported (found without importing them)."""
    import importlib.util

    out = []
    for name in names:
        if name in sys.modules:
            if sys.modules[name] is None:  # blocked, as ``sys.modules[name] = None`` does
                out.append(name)
            continue
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(name)
    return out
