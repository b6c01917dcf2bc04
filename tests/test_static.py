"""The static pictures widgets leave for HTML exports, nbviewer and GitHub (``ui/_static.py``):
each widget displays as its static twin, then the live view; the twin hides itself while the
live view is on the page, and is redrawn after cells when its widget changed."""

from __future__ import annotations

import base64
import re
from typing import Any
from unittest import mock

import pytest
from test_timeline import chain, fan

from agentgraph_nb.ui import _static
from agentgraph_nb.ui.graphview import GraphView

VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def closing() -> Any:
    made: list[Any] = []
    yield made.append
    for w in made:
        w.close()


class Published:
    """What ``IPython.display.display``/``update_display`` were asked to publish."""

    def __init__(self) -> None:
        self.outputs: list[tuple[dict[str, Any], str | None]] = []
        self.updates: list[tuple[dict[str, Any], str]] = []

    def display(self, obj: Any, raw: bool = False, display_id: str | None = None, **_: Any) -> None:
        assert raw and isinstance(obj, dict)
        self.outputs.append((obj, display_id))

    def update(self, obj: Any, raw: bool = False, display_id: str = "", **_: Any) -> None:
        self.updates.append((obj, display_id))


@pytest.fixture
def published() -> Any:
    p = Published()
    with (
        mock.patch("IPython.display.display", p.display),
        mock.patch("IPython.display.update_display", p.update),
    ):
        yield p


def picture(html: str) -> str:
    """The SVG inside a twin's <img> data URI."""
    m = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert m, html[:200]
    return base64.b64decode(m.group(1)).decode()


def check_pair(widget: Any, published: Published, kind: str) -> str:
    (twin, twin_id), (live, live_id) = published.outputs
    html = twin["text/html"]
    assert list(twin) == ["text/html"] and twin_id
    uid = widget.model_id
    assert f'data-agentgraph-static="{kind}"' in html
    assert (
        f":root:has(.agentgraph-live-{uid}" in html and f".agentgraph-live-{uid} " in html
    )  # hidden once drawn
    assert f"agentgraph-live-{uid}" in widget._dom_classes
    assert VIEW in live and live[VIEW]["model_id"] == uid and "text/plain" in live
    assert not {"text/html", "image/svg+xml"} & set(live)  # the twin carries the picture
    assert live_id is None
    return html


def test_timeline_displays_its_picture_then_the_widget(published: Published, closing: Any) -> None:
    app = fan(fail_times=1)
    app.record()
    app.invoke({})
    tl = app.timeline()
    closing(tl)
    tl._ipython_display_()
    html = check_pair(tl, published, "timeline")
    svg = picture(html)
    assert "fan: 5 executions, 3 steps, 1 retried" in svg and "retried attempt" in svg
    assert 'alt="Timeline(graph &apos;fan&apos;: 5 executions' in html or "alt=" in html
    # redrawn after a cell that changed it, not after one that did not
    _static._refresh_all()
    assert published.updates == []
    app.invoke({})
    _static._refresh_all()
    ((upd, display_id),) = published.updates
    assert display_id == published.outputs[0][1]
    assert "fan: 4 executions, 3 steps" in picture(upd["text/html"])  # the new run replaced it


def test_dashboard_displays_its_picture_then_the_widget(published: Published, closing: Any) -> None:
    app = chain()
    app.invoke({})
    dash = app.dashboard()
    closing(dash)
    dash._ipython_display_()
    html = check_pair(dash, published, "dashboard")
    assert "1 completed" in html and "latency per node" in picture(html)


@pytest.mark.parametrize("kind", ["timeline", "dashboard"])
def test_plotly_widgets_open_their_comm_after_the_picture_is_out(
    kind: str, published: Published, closing: Any
) -> None:
    """JupyterLab handles a kernel's messages in order, and a plotly widget's opening message
    holds the ones after it until plotly's 4.6 MB bundle has loaded: the picture must go out
    first, or it appears only with the live figure (3-4 s after the cell ran, measured)."""
    app = chain()
    app.record()
    app.invoke({})
    widget = app.timeline() if kind == "timeline" else app.dashboard()
    closing(widget)
    figure = widget if kind == "timeline" else widget.figure
    opened: list[int] = []
    import ipywidgets
    import plotly.graph_objects as go

    real_open = ipywidgets.Widget.open

    def spy(self: Any) -> None:
        opened.append(len(published.outputs))
        real_open(self)

    assert figure.comm is None and widget.comm is None  # built, not shown: nothing sent yet
    with mock.patch.object(go.FigureWidget, "open", spy):  # what our mixin's open() calls
        widget._ipython_display_()
    assert opened and opened[0] == 1  # the twin was published, the view not yet
    check_pair(widget, published, kind)
    assert figure.comm is not None and figure._model_id == figure.comm.comm_id


def test_graph_and_debugger_pictures(published: Published, closing: Any) -> None:
    app = fan(fail_times=0)
    view = app.show()
    closing(view)
    view._ipython_display_()
    html = check_pair(view, published, "graph")
    assert 'data-node="plan"' in picture(html)
    published.outputs.clear()
    dbg = app.debug({"log": []}, thread_id="static", breakpoints=["join"])
    closing(dbg)
    dbg._ipython_display_()
    html = check_pair(dbg, published, "debugger")
    assert "step 0" in html and "next: plan" in html  # where the run is, as text
    assert "data-testid" not in html  # the live widget's test ids are not duplicated
    assert 'data-node="plan"' in picture(html)
    dbg.cont()
    _static._refresh_all()
    dbg_id = published.outputs[0][1]
    text = [u for u, i in published.updates if i == dbg_id][-1]["text/html"]
    assert "next: join" in text and "slow" in text  # the state and where the run stopped


def test_compiled_graph_in_a_kernel_shows_svg_then_graphview(published: Published) -> None:
    app = chain()
    with mock.patch("agentgraph_nb.notebook.display._in_kernel", return_value=True):
        app._ipython_display_()
    (twin, _), (live, _) = published.outputs
    assert 'data-agentgraph-static="graph"' in twin["text/html"]
    assert live["text/plain"].startswith("<CompiledGraph 'chain'") and VIEW in live
    published.outputs.clear()
    app._ipython_display_()  # outside a kernel: text and SVG, one output, no widget
    ((only, _),) = published.outputs
    assert set(only) == {"text/plain", "image/svg+xml"}


def test_a_failing_picture_never_breaks_the_display(published: Published, closing: Any) -> None:
    view = GraphView({"name": "g", "nodes": [{"name": "a"}], "edges": []})
    closing(view)
    with mock.patch("agentgraph_nb.ui.graphview.render_svg", side_effect=RuntimeError("boom")):
        view._ipython_display_()
    assert "no static picture: RuntimeError" in published.outputs[0][0]["text/html"]


def test_strip_test_ids() -> None:
    html = '<div data-testid="inspector" class="a"><span data-testid="x">v</span></div>'
    assert _static.strip_test_ids(html) == '<div class="a"><span>v</span></div>'
