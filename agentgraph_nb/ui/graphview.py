"""GraphView: the graph laid out left to right, with live node status during runs.

The front end is ``widgets/src/graphview.ts``, built into ``agentgraph_nb/static/graphview.js``.
Everything the view draws is a synced trait; run events are mapped to statuses and details here
and sent to the browser in coalesced batches (at most ~20 a second), so a fast run does not
flood the kernel's message channel.
"""

from __future__ import annotations

import reprlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets
import traitlets

from agentgraph_nb.export.svg import graph_size, render_svg
from agentgraph_nb.ui import _static

__all__ = ["GraphView"]

_STATIC = Path(__file__).resolve().parent.parent / "static"

#: The statuses a node can show.
STATUSES = ("idle", "pending", "running", "done", "failed", "retrying", "interrupted")

_TEXT_LIMIT = 300
_ERROR_LIMIT = 600
_SVG_FALLBACK_MAX_NODES = 1500


class _ShortRepr(reprlib.Repr):
    def repr_instance(self, obj: Any, level: int) -> str:
        try:
            text = repr(obj)
        except Exception:  # a broken __repr__ must not break the view
            return f"<{type(obj).__name__}>"
        limit = self.maxother
        return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _make_repr() -> reprlib.Repr:
    r = _ShortRepr()
    r.maxlevel = 3
    r.maxstring = 160
    r.maxother = 160
    r.maxlong = 40
    r.maxdict = r.maxlist = r.maxtuple = r.maxset = r.maxfrozenset = r.maxdeque = r.maxarray = 8
    return r


_REPR = _make_repr()


def short_text(value: Any, limit: int = _TEXT_LIMIT) -> str:
    """A short, bounded-cost rendering of a value for the details panel ("" for None).

    Containers are cut after a few items and levels (``reprlib``), so a huge state costs no
    more than a small one; the result is cut to ``limit`` characters.
    """
    if value is None:
        return ""
    if isinstance(value, BaseException):
        text = f"{type(value).__name__}: {value}" if str(value) else type(value).__name__
    elif isinstance(value, str):
        text = value
    else:
        try:
            text = _REPR.repr(value)
        except Exception:  # a broken __repr__ must not break the view
            text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _duration(seconds: float) -> str:
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} \u00b5s"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


class GraphView(anywidget.AnyWidget):
    """The graph laid out left to right with live node status; click a node for its details.

    Args:
        graph_json: the graph description, as ``app.to_json()`` returns it.
        **kwargs: initial values of the traits below.

    Traits (synced with the browser):
        graph: the graph description.
        status: node -> ``idle``, ``pending``, ``running``, ``done``, ``failed``,
            ``retrying`` or ``interrupted``.
        details: node -> ``{"input", "output", "duration", "attempt", "error"}``, each a short
            string (set by :meth:`on_event`; an ``interrupt`` entry appears for paused nodes).
        selected: the node clicked in the view ("" for none); set it to open a node's details.
            A click on the node already selected does not change it: use
            :meth:`on_node_click` to see every click.
        edge_counts: ``"src->dst"`` -> how often that route was taken, drawn as edge thickness.
        breakpoints: ``"name"`` for a breakpoint before a node (a dot on its top left),
            ``"name:after"`` for one after it (top right). Shift-click a node toggles the one
            before it; the details panel's checkboxes toggle either.
        current: node names drawn as next to run (a thick dark outline).
        layout_engine: ``auto`` (dagre for small graphs, the layered layout for big ones),
            ``dagre`` or ``layered``.
        renderer: ``auto`` (SVG, canvas above 1,200 drawn nodes), ``svg`` or ``canvas``.
        height: CSS height of the view.

    Options (not synced):
        reset_on_run_start: whether a ``run_start`` event marks every node ``pending``
            (default True). A debugger that continues a run from a checkpoint sets it False,
            so the nodes that ran in earlier steps stay ``done``.

    Example:
        >>> view = GraphView.from_app(app)      # doctest: +SKIP
        >>> unsubscribe = view.attach(app)      # doctest: +SKIP
        >>> app.invoke({"question": "q"})       # doctest: +SKIP
        >>> view.status["plan"]                 # doctest: +SKIP
        'done'
    """

    _esm = _STATIC / "graphview.js"

    graph = traitlets.Dict().tag(sync=True)
    status = traitlets.Dict(value_trait=traitlets.Unicode()).tag(sync=True)
    details = traitlets.Dict().tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    edge_counts = traitlets.Dict().tag(sync=True)
    breakpoints = traitlets.List(traitlets.Unicode()).tag(sync=True)
    current = traitlets.List(traitlets.Unicode()).tag(sync=True)
    layout_engine = traitlets.Enum(("auto", "dagre", "layered"), default_value="auto").tag(
        sync=True
    )
    renderer = traitlets.Enum(("auto", "svg", "canvas"), default_value="auto").tag(sync=True)
    height = traitlets.Unicode("480px").tag(sync=True)
    reset_on_run_start = traitlets.Bool(True)

    #: Seconds between two sends of live updates to the browser (20 a second).
    flush_interval: float = 0.05

    def __init__(self, graph_json: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if graph_json is not None:
            kwargs["graph"] = dict(graph_json)
        super().__init__(**kwargs)
        self._lock = threading.RLock()
        self._status_state: dict[str, str] = dict(self.status)
        self._details_state: dict[str, dict[str, str]] = dict(self.details)
        self._dirty = False
        self._last_flush = float("-inf")
        self._timer: threading.Timer | None = None
        self._active_runs: set[str] = set()
        self._unsubscribe: Callable[[], Any] | None = None
        self._flushing = False
        self._node_click_handlers = ipywidgets.CallbackDispatcher()
        self.on_msg(self._on_front_end_msg)
        #: How many batches were sent to the browser (for tests and curiosity).
        self.flush_count = 0

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_app(cls, app: Any, **kwargs: Any) -> GraphView:
        """A view of a compiled graph (``app.to_json()``); call :meth:`attach` for live status."""
        return cls(app.to_json(), **kwargs)

    def attach(self, app: Any) -> Callable[[], Any]:
        """Follow ``app``'s runs: ``app.listen(self.on_event)``. Returns the unsubscribe
        callable (also called by :meth:`detach` and :meth:`close`)."""
        self.detach()
        unsubscribe = app.listen(self.on_event)
        self._unsubscribe = unsubscribe
        return unsubscribe

    def detach(self) -> None:
        """Stop following the app given to :meth:`attach` (no-op when not attached)."""
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    def close(self) -> None:
        """Detach, cancel any pending send, and close the widget."""
        self.detach()
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        super().close()

    # -- clicks -------------------------------------------------------------------------------

    def on_node_click(self, callback: Callable[[str, bool], Any], remove: bool = False) -> None:
        """Call ``callback(node, shift)`` on every click on a node in the view (Enter or Space on
        a focused node too), also on the node already selected, which leaves :attr:`selected`
        unchanged. ``shift`` is True when Shift or Alt was held: the view then toggled the
        node's breakpoint before it instead of selecting it. ``remove=True`` unregisters
        ``callback``. An exception in a callback is shown, not raised."""
        self._node_click_handlers.register_callback(callback, remove=remove)

    def click(self, node: str, *, shift: bool = False) -> None:
        """Do what a click on ``node`` in the browser does: select it (``shift``: toggle its
        breakpoint before it instead), then call the :meth:`on_node_click` callbacks."""
        names = self.node_names
        if node not in names and node not in ("__start__", "__end__"):
            raise ValueError(f"click: unknown node {node!r}")
        if shift and node in names:
            bps = list(self.breakpoints)
            kept = [b for b in bps if b not in (node, f"{node}:before")]
            self.breakpoints = kept if len(kept) < len(bps) else [*bps, node]
        else:
            self.selected = node
        self._node_click_handlers(node, shift)

    def _on_front_end_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, Mapping) or content.get("event") != "node_click":
            return
        node = content.get("node")
        if isinstance(node, str) and node:
            self._node_click_handlers(node, bool(content.get("shift")))

    # -- events ---------------------------------------------------------------------------------

    @property
    def node_names(self) -> list[str]:
        """The graph's node names, in the order they were added."""
        return [
            n["name"]
            for n in self.graph.get("nodes") or ()
            if isinstance(n, Mapping) and "name" in n
        ]

    def on_event(self, event: Any) -> None:
        """Listener for run events (:class:`agentgraph_nb.types.Event`): update statuses and
        details. Safe to call from any thread; the browser gets the result in batches, at most
        one per :attr:`flush_interval`, the last one never lost, and at once on ``run_end``."""
        kind = event.kind
        node = event.node
        with self._lock:
            if kind == "node_start":
                old = self._details_state.get(node, {})
                self._status_state[node] = "running"
                self._details_state[node] = {
                    "input": short_text(event.data),
                    "output": "",
                    "duration": "",
                    "attempt": str(event.attempt or 1),
                    "error": old.get("error", "") if (event.attempt or 1) > 1 else "",
                }
            elif kind == "node_end":
                self._status_state[node] = "done"
                self._update_details(
                    node,
                    output=short_text(event.data),
                    duration=_duration(event.duration),
                    attempt=str(event.attempt or 1),
                )
            elif kind == "node_error":
                self._status_state[node] = "failed"
                self._update_details(
                    node,
                    error=short_text(event.data, _ERROR_LIMIT),
                    duration=_duration(event.duration),
                    attempt=str(event.attempt or 1),
                )
            elif kind == "node_retry":
                self._status_state[node] = "retrying"
                self._update_details(
                    node,
                    error=short_text(event.data, _ERROR_LIMIT),
                    attempt=str(event.attempt or 1),
                )
            elif kind == "interrupt":
                for name, value in self._interrupted(event):
                    self._status_state[name] = "interrupted"
                    self._update_details(name, interrupt=short_text(value))
            elif kind == "run_start":
                if not self._active_runs and self.reset_on_run_start:
                    self._status_state = dict.fromkeys(self.node_names, "pending")
                self._active_runs.add(event.run_id)
            elif kind == "run_end":
                self._active_runs.discard(event.run_id)
                if not self._active_runs:
                    # What never ran (or was cancelled) in this run is idle again, not waiting.
                    for name, s in self._status_state.items():
                        if s in ("pending", "running", "retrying"):
                            self._status_state[name] = "idle"
                self._dirty = True
                self._flush_locked(time.monotonic())
                return
            else:  # step_start, state_update, checkpoint: nothing to show
                return
            self._dirty = True
            self._schedule_locked()

    def _update_details(self, node: str, **fields: str) -> None:
        # Copy on write: a dict already sent to the browser is never mutated.
        base = self._details_state.get(node) or {
            "input": "",
            "output": "",
            "duration": "",
            "attempt": "",
            "error": "",
        }
        self._details_state[node] = {**base, **fields}

    @staticmethod
    def _interrupted(event: Any) -> Iterable[tuple[str, Any]]:
        data = event.data
        items = data if isinstance(data, (tuple, list)) else (data,) if data is not None else ()
        found = False
        for item in items:
            name = getattr(item, "node", "") or ""
            if name:
                found = True
                yield name, getattr(item, "value", item)
        if not found and event.node:
            yield event.node, data

    # -- coalesced sending ------------------------------------------------------------------------

    def _schedule_locked(self) -> None:
        now = time.monotonic()
        wait = self.flush_interval - (now - self._last_flush)
        if wait <= 0:
            self._flush_locked(now)
        elif self._timer is None:
            timer = threading.Timer(wait, self._on_timer)
            timer.daemon = True
            self._timer = timer
            timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
            if self._dirty:
                self._flush_locked(time.monotonic())

    def _flush_locked(self, now: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._dirty:
            return
        self._dirty = False
        self._last_flush = now
        self.flush_count += 1
        self._flushing = True
        try:
            with self.hold_sync():
                self.status = dict(self._status_state)
                self.details = dict(self._details_state)
        finally:
            self._flushing = False

    @traitlets.observe("status", "details")
    def _adopt_external(self, change: Mapping[str, Any]) -> None:
        # Someone else set the trait (a debugger, the user): events continue from their picture.
        if getattr(self, "_flushing", True):
            return
        with self._lock:
            if change["name"] == "status":
                self._status_state = dict(change["new"])
            else:
                self._details_state = dict(change["new"])

    def flush(self) -> None:
        """Send any pending updates to the browser now."""
        with self._lock:
            self._flush_locked(time.monotonic())

    def reset(self) -> None:
        """Back to the idle picture: no statuses, no details."""
        with self._lock:
            self._status_state = {}
            self._details_state = {}
            self._active_runs.clear()
            self._dirty = True
            self._flush_locked(time.monotonic())

    # -- display ---------------------------------------------------------------------------------

    def __repr__(self) -> str:
        nodes, edges = graph_size(self.graph)
        name = self.graph.get("name") or "graph"
        return f"GraphView({name}: {nodes} node{'' if nodes == 1 else 's'}, {edges} edge{'' if edges == 1 else 's'})"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget view, its text repr, and (graphs up to 1,500 nodes) a static SVG for
        places that cannot run the widget (nbconvert, GitHub)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict) and len(self.graph.get("nodes") or ()) <= _SVG_FALLBACK_MAX_NODES:
            data["image/svg+xml"] = render_svg(self.graph, status=self.status)
        return bundle

    def _live_bundle(self) -> dict[str, Any]:
        """The view and the text, no SVG (the static twin carries the picture)."""
        bundle: Any = super()._repr_mimebundle_()
        return dict(bundle[0] if isinstance(bundle, tuple) else bundle or {})

    def _ipython_display_(self) -> None:
        """In IPython: the static picture, then the live view (see ``ui/_static.py``)."""
        _static.display(self, self.static_twin(), self._live_bundle())

    def static_twin(self, text: str | None = None) -> _static.StaticTwin:
        """The static picture shown beside this view (one per view; ``text`` is its alt text)."""
        twin: _static.StaticTwin | None = getattr(self, "_twin", None)
        if twin is None:
            alt = text or repr(self)
            twin = _static.StaticTwin(
                self,
                lambda: self._static_html(alt),
                kind="graph",
                ready='[data-ready="true"]',
                version=lambda: (self.flush_count, tuple(sorted(self.status.items()))),
            )
            self._twin = twin
        return twin

    def _static_html(self, alt: str) -> str:
        if len(self.graph.get("nodes") or ()) > _SVG_FALLBACK_MAX_NODES:
            return f"<pre>{_static.escape(alt)} (too big for a static picture)</pre>"
        return _static.img(render_svg(self.graph, status=self.status), alt)
