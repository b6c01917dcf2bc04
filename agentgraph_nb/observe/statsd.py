"""A StatsD sink for runs (extra ``statsd``): counters and timers per graph and node over UDP.

``instrument(app, host=, port=)`` sends, with ``prefix`` (default ``agentgraph``) and the graph's
and node's names (characters StatsD treats specially become ``_``):

* ``<prefix>.<graph>.runs.<status>`` (count) and ``<prefix>.<graph>.run`` (timer, ms)
* ``<prefix>.<graph>.<node>.ok`` / ``.error`` / ``.retry`` (counts) and ``<prefix>.<graph>.<node>`` (timer, ms)
* ``<prefix>.<graph>.<node>.interrupt``, ``.tokens_in``, ``.tokens_out`` (counts)

A run's metrics are sent together when it ends (``pipeline()``: a few packets per run, not one per
metric). UDP is fire-and-forget: a StatsD server that is down costs nothing and breaks nothing.

Example:
    >>> from agentgraph_nb.observe import statsd                   # doctest: +SKIP
    >>> statsd.instrument(app, host="127.0.0.1", port=8125)        # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from agentgraph_nb._lazy import requires_extra

if TYPE_CHECKING:
    from agentgraph_nb.types import Event

__all__ = ["StatsdSink", "instrument"]

logger = logging.getLogger("agentgraph_nb.observe")
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def _clean(name: str) -> str:
    return _UNSAFE.sub("_", name) or "_"


class StatsdSink:
    """What :func:`instrument` returns: ``uninstrument()`` stops sending (also a context manager).

    Attributes:
        client: the ``statsd.StatsClient`` used.
    """

    def __init__(self, app: Any, client: Any = None, *, host: str = "127.0.0.1", port: int = 8125,
                 prefix: str = "agentgraph") -> None:
        with requires_extra("agentgraph_nb.observe.statsd"):
            import statsd
        self.client = client if client is not None else statsd.StatsClient(host, port)
        self.base = f"{_clean(prefix)}.{_clean(getattr(app, 'name', '') or 'graph')}"
        self._names: dict[str, str] = {}
        self._pipes: dict[str, Any] = {}  # run -> its pipeline, sent when the run ends
        self._failed_once = False
        self._unsubscribe = app.listen(self._on_event)

    def uninstrument(self) -> None:
        self._unsubscribe()

    def __enter__(self) -> StatsdSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstrument()

    def _node(self, node: str) -> str:
        name = self._names.get(node)
        if name is None:
            name = self._names[node] = f"{self.base}.{_clean(node)}"
        return name

    def _on_event(self, ev: Event) -> None:
        try:
            kind = ev.kind
            c = self._pipes.get(ev.run_id)
            if c is None:
                if kind != "run_start":
                    return
                self._pipes[ev.run_id] = self.client.pipeline() if hasattr(self.client, "pipeline") else self.client
                return
            if kind == "node_end":
                n = self._node(ev.node)
                c.incr(n + ".ok")
                c.timing(n, ev.duration * 1000)
            elif kind == "node_error":
                n = self._node(ev.node)
                c.incr(n + ".error")
                c.timing(n, ev.duration * 1000)
            elif kind == "node_retry":
                c.incr(self._node(ev.node) + ".retry")
            elif kind == "run_end":
                self._pipes.pop(ev.run_id, None)
                c.incr(f"{self.base}.runs.{_clean((ev.data or {}).get('status', 'completed'))}")
                c.timing(f"{self.base}.run", ev.duration * 1000)
                if c is not self.client:
                    c.send()
            elif kind == "interrupt":
                c.incr(self._node(ev.node or "_") + ".interrupt")
            elif kind == "llm_end":
                d, n = ev.data or {}, self._node(ev.node)
                c.incr(n + ".tokens_in", int(d.get("tokens_in") or 0))
                c.incr(n + ".tokens_out", int(d.get("tokens_out") or 0))
        except Exception:
            if not self._failed_once:
                self._failed_once = True
                logger.exception("agentgraph_nb StatsD sink failed on a %s event (not logged again)", ev.kind)


def instrument(app: Any, client: Any = None, *, host: str = "127.0.0.1", port: int = 8125,
               prefix: str = "agentgraph") -> StatsdSink:
    """Send ``app``'s run and node counters and timers to a StatsD server.

    Args:
        app: a compiled graph.
        client: a ``statsd.StatsClient`` (or anything with ``incr``/``timing``); default: one for
            ``host:port``.
        host, port: the StatsD server (UDP).
        prefix: the first part of every metric name.

    Raises:
        MissingDependencyError: the ``statsd`` package is not installed (``pip install
            "agentgraph_nb[statsd]"``).
    """
    return StatsdSink(app, client, host=host, port=port, prefix=prefix)
