"""The static picture every widget leaves beside its live view (nbconvert, nbviewer, GitHub).

A widget output is a pointer to a live model: a page without the kernel, or without the widget
JavaScript (an HTML export read offline, nbviewer, GitHub), shows nothing for it. A picture in
the same mimebundle does not help everywhere: ``nbconvert --execute`` stores the widget state,
and then its HTML shows the widget view (blank offline) instead of the bundle's other formats.

So each widget displays as two outputs (:func:`display`):

1. the *static twin*: ``text/html`` with the picture (an SVG as an ``<img>`` data URI, so no
   style or id of ours can clash with the page, and GitHub's sanitizer keeps it) and any text
   (the Debugger's state), plus a ``<style>`` rule that hides it once the live view is on the
   page;
2. the widget view with its deterministic ``text/plain``.

The widget carries the CSS class ``agentgraph-live-<model id>`` (a synced ``_dom_classes``
entry), which only a rendered live view puts in the document; the twin's rule hides the twin
(and its output row in JupyterLab) once that view has drawn (for plotly figures, once plotly
has loaded, which takes seconds the first time: the picture stands in meanwhile). Where the widget cannot render,
the twin stays: an HTML export (offline or not), nbviewer, GitHub (which drops ``<style>``), a
notebook reopened without its kernel, a front end without the widget extensions. Front ends that
isolate each output in its own frame (Colab) show both.

The twin is redrawn after each cell (IPython's ``post_run_cell``) when its widget changed, with
``update_display``, so an export shows where the debugger ended and what the dashboard counted
at the end of the notebook, not only what they showed when first displayed.
"""

from __future__ import annotations

import base64
import itertools
import logging
import re
import uuid
import weakref
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape, quoteattr

__all__ = ["OpensWhenShown", "StaticTwin", "display", "escape", "img", "strip_test_ids", "twin_html"]

logger = logging.getLogger("agentgraph_nb")

STATIC_CLASS = "agentgraph-static"
LIVE_CLASS = "agentgraph-live"
_ids = itertools.count(1)
_twins: weakref.WeakSet[StaticTwin] = weakref.WeakSet()
_hooked: set[int] = set()


def img(svg: str, alt: str, *, max_width: int | None = None) -> str:
    """An ``<img>`` showing ``svg`` (a data URI: self-contained, no network) at its own size,
    shrunk to fit narrower pages (``max_width`` caps it further)."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    m = re.match(r'<svg[^>]*?\swidth="([\d.]+)"', svg)
    width = float(m.group(1)) if m else None
    if width is not None and max_width is not None:
        width = min(width, max_width)
    size = f'width="{round(width)}" ' if width is not None else ""
    return (
        f'<img src="data:image/svg+xml;base64,{data}" alt={quoteattr(alt)} {size}'
        f'style="max-width:100%;height:auto;display:block">'
    )


def strip_test_ids(html: str) -> str:
    """``html`` without ``data-testid`` attributes: the live view beside the twin carries the
    same HTML, and a test (or a user's script) looking one up must find the live one."""
    return re.sub(r'\sdata-testid="[^"]*"', "", html)


def twin_html(uid: str, body: str, *, kind: str, ready: str = "*") -> str:
    """The twin's HTML: ``body`` in a marked ``<div>``, with the rule that hides it once the
    live view of the widget ``uid`` has drawn (an element matching ``ready`` inside it)."""
    live, static = f"{LIVE_CLASS}-{uid}", f"{STATIC_CLASS}-{uid}"
    # what the view draws may be its own element (plotly draws into the widget's element)
    drawn = f".{live} *" if ready == "*" else f".{live}:is({ready}), .{live} {ready}"
    rule = (
        f"<style>:root:has({drawn}) .jp-OutputArea-child:has(.{static}),"
        f":root:has({drawn}) .{static}{{display:none!important}}</style>"
    )
    return (
        f'{rule}<div class="{STATIC_CLASS} {static}" data-agentgraph-static="{kind}" '
        f'style="max-width:100%;overflow-x:auto">{body}</div>'
    )


class OpensWhenShown:
    """Mixin for an ipywidget (before the widget class in the bases): its comm opens when the
    widget is first shown or its ``model_id`` is first asked for (a container holding it
    serializes it), not when it is built.

    Why: JupyterLab handles a kernel's messages one after another, and the opening message of a
    plotly ``FigureWidget`` (which carries plotly's 4.6 MB front-end bundle) holds every later
    message until that bundle has loaded in the page, 2-3 s the first time. Built this way, the
    static twin is published first and appears at once; the live figure follows. Traits set
    before the comm opens travel in its opening message. The model id is chosen at build time,
    so the twin's CSS can name the live view before it exists.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._agentgraph_deferred = True
        super().__init__(*args, **kwargs)
        if getattr(self, "_model_id", None) is None:
            self._model_id = uuid.uuid4().hex

    def open(self) -> None:
        """Open the comm, unless the widget has not been shown yet (see the class doc)."""
        if getattr(self, "_agentgraph_deferred", False):
            return
        super().open()  # type: ignore[misc]

    def open_now(self) -> None:
        """Open the comm now (showing the widget does this)."""
        self._agentgraph_deferred = False
        self.open()

    @property
    def model_id(self) -> str:
        """The widget's model id; asking for it opens the comm (the front end needs the model)."""
        if getattr(self, "comm", None) is None:
            self.open_now()
        return str(self.comm.comm_id)  # type: ignore[attr-defined]


class StaticTwin:
    """The static twin of one widget: displays it, and redraws it after cells when the widget's
    ``version()`` changed.

    Args:
        widget: the ipywidget whose live view hides the twin (gets the live class).
        render: returns the twin's inner HTML (the picture and text).
        kind: what the twin shows (``graph``, ``timeline``, ``dashboard``, ``debugger``), for
            tests and readers of the HTML.
        version: a cheap value that changes when the picture would.
        before: called before a redraw (e.g. a live view's pending flush).
        ready: a CSS selector matching, inside the live view, what it draws once ready (plotly
            takes seconds to load its 4.6 MB bundle in the page: the picture stands in meanwhile).
    """

    def __init__(
        self,
        widget: Any,
        render: Callable[[], str],
        *,
        kind: str,
        version: Callable[[], Any] = lambda: None,
        before: Callable[[], Any] | None = None,
        ready: str = "*",
    ) -> None:
        self._widget = weakref.ref(widget)
        self._ready = ready
        self._render = render
        self.kind = kind
        self._version = version
        self._before = before
        self._display_ids: list[str] = []
        self._shown: Any = object()
        # the id the widget's model will have (an OpensWhenShown widget knows it before its
        # comm opens, and asking for ``model_id`` would open it)
        uid = getattr(widget, "_model_id", None) or getattr(widget, "model_id", None)
        self.uid = str(uid or f"x{next(_ids)}")

    def html(self) -> str:
        """The twin's HTML now (also what the widget's own mimebundle carries)."""
        try:
            body = self._render()
        except Exception as exc:  # a picture must never break the display of the live widget
            logger.debug("agentgraph_nb: static picture failed", exc_info=True)
            body = f"<pre>(no static picture: {type(exc).__name__})</pre>"
        return twin_html(self.uid, body, kind=self.kind, ready=self._ready)

    def display(self) -> None:
        """Publish the twin (a new output, with a display id for later redraws)."""
        from IPython.display import display as ipy_display

        widget = self._widget()
        if widget is not None and hasattr(widget, "add_class"):
            widget.add_class(f"{LIVE_CLASS}-{self.uid}")
        self._shown = self._version()
        display_id = f"agentgraph-{self.uid}-{len(self._display_ids) + 1}"
        ipy_display({"text/html": self.html()}, raw=True, display_id=display_id)
        self._display_ids.append(display_id)
        _twins.add(self)
        _hook()

    def refresh(self) -> bool:
        """Redraw every displayed copy if the widget changed since; returns whether it did."""
        if not self._display_ids or self._widget() is None:
            return False
        if self._before is not None:
            self._before()
        version = self._version()
        if version == self._shown:
            return False
        self._shown = version
        from IPython.display import update_display

        html = self.html()
        for display_id in self._display_ids:
            update_display({"text/html": html}, raw=True, display_id=display_id)
        return True


def display(
    widget: Any, twin: StaticTwin, bundle: dict[str, Any] | Callable[[], dict[str, Any]]
) -> None:
    """Show ``widget``: its static twin, then the widget view (``bundle``, or what it returns
    when a callable, without the static formats, which the twin carries). An
    :class:`OpensWhenShown` widget opens its comm after the twin is out."""
    from IPython.display import display as ipy_display

    twin.display()
    if isinstance(widget, OpensWhenShown):
        widget.open_now()
    if callable(bundle):
        bundle = bundle()
    live = {k: v for k, v in bundle.items() if k not in ("text/html", "image/svg+xml", "image/png")}
    ipy_display(live, raw=True)


def _refresh_all(*_: Any) -> None:
    for twin in list(_twins):
        try:
            twin.refresh()
        except Exception:  # never break the user's cell for a picture
            logger.debug("agentgraph_nb: static picture refresh failed", exc_info=True)


def _hook() -> None:
    """Register the after-cell redraw once per IPython shell."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return
    ip = get_ipython()
    if ip is None or id(ip) in _hooked:
        return
    ip.events.register("post_run_cell", _refresh_all)
    _hooked.add(id(ip))
