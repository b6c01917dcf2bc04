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

from agentgraph_nb.errors import did_you_mean
from agentgraph_nb.export.svg import graph_size, render_svg
from agentgraph_nb.ui import _static
from agentgraph_nb.ui._loops import LoopCounts
from agentgraph_nb.ui._runs import RunPictures, key_of

__all__ = ["GraphView"]

_STATIC = Path(__file__).resolve().parent.parent / "static"

#: The statuses a node can show.
STATUSES = ("idle", "pending", "running", "done", "failed", "retrying", "interrupted", "cached")

_TEXT_LIMIT = 300
_ERROR_LIMIT = 600
_SVG_FALLBACK_MAX_NODES = 1500
#: Subgraphs with more nodes than this are drawn collapsed (one box; a click expands it).
SUBGRAPH_EXPAND_MAX = 8
#: Event kinds that change what the view shows.
_SHOWN = frozenset(
    ("run_start", "run_end", "node_start", "node_end", "node_error", "node_retry", "interrupt", "llm_end",
     "llm_token", "cache_hit")
)
#: Characters of a model's streamed answer shown in the details panel (its end).
_REPLY_LIMIT = 600


class _Reply:
    """The answer a chat model is streaming in one node execution, folded from its chunks
    (``llm_token`` events); rendered only when the view sends a batch, so a token costs an
    append, not a string rebuild."""

    __slots__ = ("calls", "id", "parts")

    def __init__(self) -> None:
        self.id: Any = None
        self.parts: list[str] = []
        self.calls: dict[Any, list[str]] = {}

    def add(self, piece: Any) -> None:
        if not isinstance(piece, Mapping):
            return
        mid = piece.get("id")
        if mid != self.id:  # the node's next model call: show that one
            self.id = mid
            self.parts = []
            self.calls = {}
        text = piece.get("content")
        if isinstance(text, str) and text:
            self.parts.append(text)
        for tc in piece.get("tool_call_chunks") or ():
            if not isinstance(tc, Mapping):
                continue
            slot = self.calls.setdefault(tc.get("index", 0), ["", ""])
            if tc.get("name") and not slot[0]:
                slot[0] = str(tc["name"])
            slot[1] += str(tc.get("arguments") or "")
        if len(self.parts) > 64:  # keep the memory of a long answer bounded
            self.parts = ["".join(self.parts)[-_REPLY_LIMIT:]]

    def text(self) -> str:
        out = "".join(self.parts)
        for name, args in self.calls.values():
            out += f"{chr(10) if out else ''}\u2192 {name}({args})"
        return out if len(out) <= _REPLY_LIMIT else "\u2026" + out[-(_REPLY_LIMIT - 1):]



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


def _subgraphs(graph: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, int]]:
    """``(path, number of nodes)`` of every subgraph in a graph description, outer ones first."""
    for n in graph.get("nodes") or ():
        sub = n.get("subgraph") if isinstance(n, Mapping) else None
        if isinstance(sub, Mapping):
            path = f"{prefix}{n['name']}"
            yield path, _leaf_count(sub)
            yield from _subgraphs(sub, f"{path}|")


def _leaf_count(graph: Mapping[str, Any]) -> int:
    """How many nodes a subgraph draws when open (those of its own subgraphs included)."""
    return sum(
        _leaf_count(n["subgraph"]) if isinstance(n.get("subgraph"), Mapping) else 1
        for n in graph.get("nodes") or () if isinstance(n, Mapping)
    )


def _inner_nodes(graph: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Mapping[str, Any]]]:
    """``(path, node)`` of every node inside the subgraphs of a graph description
    (``"team|approve"``), a subgraph's own nodes before those of the subgraphs in it."""
    for n in graph.get("nodes") or ():
        sub = n.get("subgraph") if isinstance(n, Mapping) else None
        if isinstance(sub, Mapping):
            p = f"{prefix}{n['name']}|"
            for m in sub.get("nodes") or ():
                if isinstance(m, Mapping) and "name" in m:
                    yield f"{p}{m['name']}", m
            yield from _inner_nodes(sub, p)


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
            string (set by :meth:`on_event`; an ``interrupt`` entry appears for paused nodes;
            a node that calls a chat model gets ``model``, ``tokens``, ``cost`` and ``reply``,
            the answer as the model streams it, live).
        selected: the node clicked in the view ("" for none); set it to open a node's details.
            A click on the node already selected does not change it: use
            :meth:`on_node_click` to see every click.
        edge_counts: ``"src->dst"`` -> how often that route was taken, drawn as edge thickness.
        breakpoints: ``"name"`` for a breakpoint before a node (a dot on its top left),
            ``"name:after"`` for one after it (top right). The dots on a hovered node's
            corners, the B key (Shift+B: after), shift-click and the details panel's
            checkboxes toggle them.
        current: node names drawn as next to run (a thick dark outline).
        layout_engine: ``auto`` (dagre for small graphs, the layered layout for big ones),
            ``dagre`` or ``layered``.
        renderer: ``auto`` (SVG, canvas above 1,200 drawn nodes), ``svg`` or ``canvas``.
        height: ``auto`` (default: as tall as the graph needs, 110-540 px of drawing) or a CSS
            height such as ``"480px"``.
        collapse: ``auto`` (graphs over 200 nodes draw chains and fan-outs of 5 or more nodes
            as one group each; a click on a group expands it), ``on`` or ``off``.
        expanded: the groups expanded (``"chain:<first node>"``, ``"fan:<first node>"``).
        query: the text in the search box; matching nodes are highlighted.
        minimap: ``auto`` (shown while part of the graph is off screen or too small to
            read), ``on`` or ``off``.
        pin_thread, pin_run: the thread or run the view is pinned to ("": follow the latest
            run); see :meth:`pin`.
        run: the run shown (read-only): ``thread_id``, ``run_id``, ``state`` (running,
            ended, paused, failed), ``step``, ``label``.
        runs: the recent threads and runs the view can be pinned to (read-only).
        caption: a text shown instead of the run's label (a Debugger names its checkpoint).
        shortcuts: key -> command name: pressing the key with the focus inside the view (or the
            widget around it marked ``agentgraph-keys``) calls the :meth:`on_command`
            callbacks.

    Options (not synced):
        reset_on_run_start: whether a ``run_start`` event marks every node ``pending``
            (default True). A debugger that continues a run from a checkpoint sets it False,
            so the nodes that ran in earlier steps stay ``done``.

    Example:
        >>> view = GraphView.from_app(app)      # doctest: +SKIP
        >>> unsubscribe = view.attach(app)      # doctest: +SKIP
        >>> app.invoke({"question": "q"}, thread_id="t1")  # doctest: +SKIP
        >>> view.status["plan"], view.run["label"]          # doctest: +SKIP
        ('done', 'thread t1 · run ended at step 2')
        >>> view.pin(thread_id="t1")  # other threads' runs no longer change it  # doctest: +SKIP
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
    height = traitlets.Unicode("auto").tag(sync=True)
    collapse = traitlets.Enum(("auto", "on", "off"), default_value="auto").tag(sync=True)
    expanded = traitlets.List(traitlets.Unicode()).tag(sync=True)
    query = traitlets.Unicode("").tag(sync=True)
    minimap = traitlets.Enum(("auto", "on", "off"), default_value="auto").tag(sync=True)
    pin_thread = traitlets.Unicode("").tag(sync=True)
    pin_run = traitlets.Unicode("").tag(sync=True)
    run = traitlets.Dict().tag(sync=True)
    runs = traitlets.List(traitlets.Dict()).tag(sync=True)
    caption = traitlets.Unicode("").tag(sync=True)
    shortcuts = traitlets.Dict(value_trait=traitlets.Unicode()).tag(sync=True)
    reset_on_run_start = traitlets.Bool(True)

    #: Seconds between two sends of live updates to the browser (20 a second).
    flush_interval: float = 0.05

    def __init__(self, graph_json: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if graph_json is not None:
            kwargs["graph"] = dict(graph_json)
        super().__init__(**kwargs)
        self._lock = threading.RLock()
        self._runs = RunPictures()
        if self.status or self.details:
            pic = self._runs.shown_picture()
            pic.status = dict(self.status)
            pic.details = dict(self.details)
        # chat-model calls of each node's current execution: (picture, node) -> [calls, in, out, cost]
        self._llm: dict[tuple[Any, str], list[Any]] = {}
        # answers being streamed: (picture key, node) -> reply; the ones changed since the last send
        self._replies: dict[tuple[Any, str], _Reply] = {}
        self._replies_changed: set[tuple[Any, str]] = set()
        # a subgraph run's id -> the id of the top-level run it is part of
        self._sub_runs: dict[str, str] = {}
        self._loops = LoopCounts()  # live iteration counts of loop nodes ("3/10")
        self._dirty = False
        self._last_flush = float("-inf")
        self._timer: threading.Timer | None = None
        self._unsubscribe: Callable[[], Any] | None = None
        self._flushing = False
        self._node_click_handlers = ipywidgets.CallbackDispatcher()
        self._command_handlers = ipywidgets.CallbackDispatcher()
        self.on_msg(self._on_front_end_msg)
        #: How many batches were sent to the browser (for tests and curiosity).
        self.flush_count = 0
        if self.pin_thread or self.pin_run:
            self._on_pin({})

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

    def on_command(self, callback: Callable[[str], Any], remove: bool = False) -> None:
        """Call ``callback(command)`` when a key bound in :attr:`shortcuts` is pressed in the view
        (a Debugger binds N, C and P to ``step``, ``continue`` and ``back``). ``remove=True``
        unregisters ``callback``. An exception in a callback is shown, not raised."""
        self._command_handlers.register_callback(callback, remove=remove)

    def _on_front_end_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, Mapping):
            return
        event = content.get("event")
        if event == "node_click":
            node = content.get("node")
            if isinstance(node, str) and node:
                self._node_click_handlers(node, bool(content.get("shift")))
        elif event == "command":
            command = content.get("command")
            if isinstance(command, str) and command in self.shortcuts.values():
                self._command_handlers(command)

    # -- finding your way in a big graph ------------------------------------------------------

    def find(self, node: str) -> None:
        """Jump to ``node`` as the search box does: expand the group it is in, select it,
        centre it at a readable zoom and ring it.

        Example:
            >>> view.find("n4242")  # doctest: +SKIP
        """
        names = self.node_names
        if node not in names:
            raise ValueError(f"find: unknown node {node!r}.{did_you_mean(node, names)}")
        self.selected = node
        self.send({"cmd": "find", "node": node})

    def fit(self) -> None:
        """Zoom and pan the view to the whole graph (the Home button)."""
        self.send({"cmd": "fit"})

    def expand(self, group: str) -> None:
        """Expand a group (``"chain:<first node>"`` or ``"fan:<first node>"``; see the
        ``data-group`` of a group in the page, or :attr:`expanded`)."""
        if group not in self.expanded:
            self.expanded = [*self.expanded, group]

    def collapse_all(self) -> None:
        """Collapse every expanded group again."""
        self.expanded = []

    # -- which run is shown ----------------------------------------------------------------------

    def pin(self, *, thread_id: str | None = None, run_id: str | None = None) -> None:
        """Show only this thread's (or run's) runs: runs of other threads, such as a
        Debugger's, no longer change the view. :meth:`unpin` follows the latest run again.

        Example:
            >>> view.pin(thread_id="t1")  # doctest: +SKIP
        """
        if bool(thread_id) == bool(run_id):
            raise ValueError("pin: give exactly one of thread_id and run_id")
        with self.hold_sync():
            self.pin_thread = thread_id or ""
            self.pin_run = run_id or ""

    def unpin(self) -> None:
        """Follow the latest run of the app again (the default)."""
        with self.hold_sync():
            self.pin_thread = ""
            self.pin_run = ""

    @traitlets.observe("pin_thread", "pin_run")
    def _on_pin(self, _change: Mapping[str, Any]) -> None:
        if not hasattr(self, "_runs"):
            return
        if self.pin_thread:
            key: str | None = key_of(self.pin_thread, "")
        elif self.pin_run:
            key = key_of(None, self.pin_run)
        else:
            key = None
        with self._lock:
            if key == self._runs.pin:
                return
            self._runs.set_pin(key)
            self._dirty = True
            self._flush_locked(time.monotonic(), menu=True)

    # -- events ---------------------------------------------------------------------------------

    @property
    def node_names(self) -> list[str]:
        """The graph's node names, in the order they were added, then the nodes inside its
        subgraphs by path (``"team|approve"``, ``"team|inner|x"``), as breakpoints name them."""
        own = [n["name"] for n in self.graph.get("nodes") or () if isinstance(n, Mapping) and "name" in n]
        return own + [name for name, _ in _inner_nodes(self.graph)]

    @traitlets.observe("graph")
    def _open_small_subgraphs(self, change: Mapping[str, Any]) -> None:
        # Subgraphs up to SUBGRAPH_EXPAND_MAX nodes are drawn open, bigger ones collapsed.
        old = {path for path, _ in _subgraphs(change["old"] or {})}
        opened = [f"sub:{path}" for path, size in _subgraphs(change["new"] or {})
                  if path not in old and size <= SUBGRAPH_EXPAND_MAX]
        if opened:
            self.expanded = [*self.expanded, *(k for k in opened if k not in self.expanded)]

    def _sub_event(self, event: Any) -> tuple[str, str] | None:
        """A subgraph's event as ``(node path, top run id)`` (``"team|approve"``), or None for
        its run start and end, which do not change the picture of the run it is part of."""
        ns = event.namespace
        if event.kind == "run_start":
            data = event.data if isinstance(event.data, Mapping) else {}
            parent = str(data.get("parent_run_id") or "")
            self._sub_runs[event.run_id] = self._sub_runs.get(parent, parent)
            return None
        if event.kind == "run_end":
            self._sub_runs.pop(event.run_id, None)
            return None
        path = "|".join(seg.split(":", 1)[0] for seg in ns.split("|"))
        return (f"{path}|{event.node}" if event.node else path), self._sub_runs.get(event.run_id, event.run_id)

    def on_event(self, event: Any) -> None:
        """Listener for run events (:class:`agentgraph_nb.types.Event`): update statuses and
        details. Safe to call from any thread; the browser gets the result in batches, at most
        one per :attr:`flush_interval`, the last one never lost, and at once on ``run_end``.

        Each thread (or run without a thread) has its own picture; the view shows the latest
        run started, or the thread or run it is pinned to (:meth:`pin`)."""
        kind = event.kind
        node = event.node
        run_id = event.run_id
        with self._lock:
            if getattr(event, "namespace", ""):
                sub = self._sub_event(event)
                if sub is None:
                    return
                node, run_id = sub
            runs = self._runs
            starting = kind == "run_start"
            if (
                kind not in _SHOWN
                and runs.pictures.get(key_of(event.thread_id, run_id)) is None
            ):
                return  # step_start, state_update, checkpoint: nothing to show
            pic, new = runs.for_event(event.thread_id, run_id, starting)
            if starting and new and not self.reset_on_run_start:
                shown = runs.current()
                if shown is not None and shown is not pic:
                    pic.copy_from(shown)  # a debugger continues from the picture it drew
            wanted = runs.wants(pic, starting)
            pic.run_id = run_id
            if run_id == event.run_id:  # a subgraph counts its own steps
                pic.step = event.step
            loop = self._loops.on_event(pic.key, kind, node, event.data) if self._loops.active(self.graph) else None
            if loop is not None and loop[2]:  # an item of a for-each: counted on the for-each node
                if loop[1] is not None:
                    self._update_details(pic, loop[0], loop=loop[1])
            elif kind == "llm_token":
                at = (pic.key, node)
                reply = self._replies.get(at)
                if reply is None:
                    reply = self._replies[at] = _Reply()
                reply.add(event.data)
                self._replies_changed.add(at)
            elif kind == "node_start":
                self._llm.pop((pic.key, node), None)
                self._replies.pop((pic.key, node), None)
                self._replies_changed.discard((pic.key, node))
                old = pic.details.get(node, {})
                pic.status[node] = "running"
                pic.details[node] = {
                    "input": short_text(event.data),
                    "output": "",
                    "duration": "",
                    "attempt": str(event.attempt or 1),
                    "error": old.get("error", "") if (event.attempt or 1) > 1 else "",
                }
            elif kind == "node_end":
                pic.status[node] = "done"
                self._update_details(
                    pic,
                    node,
                    output=short_text(event.data),
                    duration=_duration(event.duration),
                    attempt=str(event.attempt or 1),
                )
            elif kind == "node_error":
                pic.status[node] = "failed"
                self._update_details(
                    pic,
                    node,
                    error=short_text(event.data, _ERROR_LIMIT),
                    duration=_duration(event.duration),
                    attempt=str(event.attempt or 1),
                )
            elif kind == "node_retry":
                pic.status[node] = "retrying"
                self._update_details(
                    pic,
                    node,
                    error=short_text(event.data, _ERROR_LIMIT),
                    attempt=str(event.attempt or 1),
                )
            elif kind == "cache_hit":  # skipped: its saved result was applied
                pic.status[node] = "cached"
                pic.details[node] = {"input": "", "output": short_text(event.data), "duration": "",
                                     "attempt": "", "error": "", "cached": "yes: skipped, its saved result applied"}
            elif kind == "llm_end":
                self._llm_details(pic, node, event.data)
            elif kind == "interrupt":
                for name, value in self._interrupted(event, node):
                    pic.status[name] = "interrupted"
                    self._update_details(pic, name, interrupt=short_text(value))
            elif starting:
                if not pic.active and self.reset_on_run_start:
                    pic.status = dict.fromkeys(self.node_names, "pending")
                pic.active.add(event.run_id)
                pic.outcome = "running"
                runs.latest = pic.key
            elif kind == "run_end":
                pic.active.discard(event.run_id)
                if not pic.active:
                    # What never ran (or was cancelled) in this run is idle again, not waiting.
                    for name, s in pic.status.items():
                        if s in ("pending", "running", "retrying"):
                            pic.status[name] = "idle"
                    data = event.data if isinstance(event.data, Mapping) else {}
                    pic.outcome = str(data.get("status") or "completed")
            if loop is not None and not loop[2] and loop[1] is not None:  # a loop node's own count
                self._update_details(pic, node, loop=loop[1])
            if wanted:
                runs.shown = pic.key
            if runs.shown != pic.key:
                if starting or kind == "run_end":
                    self._dirty = True  # the pin menu lists the run
                    self._flush_locked(time.monotonic(), menu=True)
                return
            self._dirty = True
            if starting or kind == "run_end":
                self._flush_locked(time.monotonic(), menu=True)
            else:
                self._schedule_locked()

    #: Ask the engine for ``llm_token`` events: a chat model's answer shows in the running
    #: node's details (``reply``) as it streams.
    on_event.llm_tokens = True  # type: ignore[attr-defined]

    def _llm_details(self, pic: Any, node: str, data: Any) -> None:
        """A chat-model call of the running node: model, tokens and cost so far in its details."""
        if not isinstance(data, Mapping):
            return
        tot = self._llm.setdefault((pic.key, node), [0, 0, 0, None])
        tot[0] += 1
        tot[1] += int(data.get("tokens_in") or 0)
        tot[2] += int(data.get("tokens_out") or 0)
        if data.get("cost") is not None:
            tot[3] = (tot[3] or 0.0) + float(data["cost"])
        calls = f" ({tot[0]} calls)" if tot[0] > 1 else ""
        fields = {"model": str(data.get("model", "")), "tokens": f"{tot[1]:,} in, {tot[2]:,} out{calls}"}
        if tot[3] is not None:
            fields["cost"] = f"${tot[3]:.3g}"
        self._update_details(pic, node, **fields)

    @staticmethod
    def _update_details(pic: Any, node: str, **fields: str) -> None:
        # Copy on write: a dict already sent to the browser is never mutated.
        base = pic.details.get(node) or {
            "input": "",
            "output": "",
            "duration": "",
            "attempt": "",
            "error": "",
        }
        pic.details[node] = {**base, **fields}

    @staticmethod
    def _interrupted(event: Any, node: str) -> Iterable[tuple[str, Any]]:
        """The nodes an interrupt event pauses; one deep inside a subgraph pauses the subgraph
        node and the inner node by its path (``"team"`` and ``"team|approve"``)."""
        data = event.data
        items = data if isinstance(data, (tuple, list)) else (data,) if data is not None else ()
        prefix = node.rpartition("|")[0] if node != event.node else ""
        found = False
        for item in items:
            name = getattr(item, "node", "") or ""
            if name:
                found = True
                value = getattr(item, "value", item)
                yield (f"{prefix}|{name}" if prefix else name), value
                path = tuple(getattr(item, "path", ()) or ())
                if len(path) > 1 and not prefix:
                    yield "|".join(path), value
        if not found and node:
            yield node, data

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

    def _flush_locked(self, now: float, *, menu: bool = False) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._dirty:
            return
        self._dirty = False
        self._last_flush = now
        self.flush_count += 1
        self._flushing = True
        runs = self._runs
        if self._replies_changed:
            for at in self._replies_changed:
                owner = runs.pictures.get(at[0])
                reply = self._replies.get(at)
                if owner is not None and reply is not None:
                    self._update_details(owner, at[1], reply=reply.text())
            self._replies_changed.clear()
        pic = runs.current()
        try:
            with self.hold_sync():
                self.status = dict(pic.status) if pic is not None else {}
                self.details = dict(pic.details) if pic is not None else {}
                shown = (
                    pic.describe(pinned=runs.pin is not None) if pic is not None and pic.key else {}
                )
                if shown != self.run:
                    self.run = shown
                if menu:
                    listed = runs.menu()
                    if listed != self.runs:
                        self.runs = listed
        finally:
            self._flushing = False

    @traitlets.observe("status", "details")
    def _adopt_external(self, change: Mapping[str, Any]) -> None:
        # Someone else set the trait (a debugger, the user): events continue from their picture.
        if getattr(self, "_flushing", True):
            return
        with self._lock:
            pic = self._runs.shown_picture()
            if change["name"] == "status":
                pic.status = dict(change["new"])
            else:
                pic.details = dict(change["new"])

    @property
    def _status_state(self) -> dict[str, str]:
        """The statuses the view shows next (for tests)."""
        pic = self._runs.current()
        return pic.status if pic is not None else {}

    def flush(self) -> None:
        """Send any pending updates to the browser now."""
        with self._lock:
            self._flush_locked(time.monotonic())

    def reset(self) -> None:
        """Back to the idle picture: no statuses, no details, no runs remembered."""
        with self._lock:
            self._runs.clear()
            self._replies.clear()
            self._replies_changed.clear()
            self._dirty = True
            self._flush_locked(time.monotonic(), menu=True)

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
            data["image/svg+xml"] = render_svg(self.graph, status=self.status, loop_counts=self._loop_texts())
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
        return _static.img(render_svg(self.graph, status=self.status, expanded=self.expanded,
                                      loop_counts=self._loop_texts()), alt)

    def _loop_texts(self) -> dict[str, str]:
        """Loop nodes' live counts (``"3/10"``), for the static picture."""
        return {n: str(d["loop"]) for n, d in self.details.items() if isinstance(d, Mapping) and d.get("loop")}
