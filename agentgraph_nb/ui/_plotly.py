"""plotly for the timeline and the dashboard, without the seconds its optional extras cost.

Why this module exists: in a fresh kernel the first ``app.timeline()`` used to take 5 to 13 s,
almost none of it ours or plotly's own work:

- ``plotly.io._renderers`` (imported by ``FigureWidget``) imports ``nbformat`` eagerly, only to
  check its version later in ``fig.show()``; ``nbformat`` imports ``jsonschema``, whose format
  checkers import ``rfc3987_syntax``, which builds ~35 Earley parsers at import: 2 to 3 s
  (python-jsonschema/jsonschema#1428). :func:`graph_objects` imports plotly with ``nbformat``
  deferred: plotly's module-level ``nbformat`` becomes a stand-in that imports the real one the
  first time plotly reads from it, so ``fig.show()`` behaves exactly as before.
- ``FigureWidget._repr_mimebundle_`` calls ``display_jupyter_version_warnings()``, which looks at
  the parent process and, under ``jupyter-lab``, imports ``jupyterlab`` (the server package,
  2 to 3 s) to warn about JupyterLab < 3. Our widgets build their bundle with
  :func:`widget_bundle` instead (what plotly returns after that check).

- A figure without a template gets plotly's default one, loaded from JSON and validated on
  first use; ours pass :data:`TEMPLATE` inline.

Measured by ``python -m benchmarks --only first_display``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from copy import deepcopy
from types import ModuleType
from typing import Any

__all__ = ["TEMPLATE", "graph_objects", "widget_bundle"]

_AXIS = {
    "gridcolor": "#EBF0F8",
    "linecolor": "#EBF0F8",
    "zerolinecolor": "#EBF0F8",
    "zerolinewidth": 2,
    "ticks": "",
    "title": {"standoff": 15},
    "automargin": True,
}
#: What our figures take from plotly's ``plotly_white`` template, given inline: a named template
#: (and the default one a figure gets without any) is loaded from a JSON file and validated on
#: first use, a third of the first figure's construction time.
TEMPLATE: dict[str, Any] = {
    "layout": {
        "font": {"color": "#2a3f5f"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "xaxis": _AXIS,
        "yaxis": _AXIS,
        "hoverlabel": {"align": "left"},
        "colorway": ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B"],
    }
}


class _Deferred:
    """Stands for a module that is imported the first time an attribute is read."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __bool__(self) -> bool:  # plotly tests ``if not nbformat``
        return importlib.util.find_spec(self._name) is not None

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<deferred import of {self._name!r}>"


def graph_objects() -> ModuleType:
    """``plotly.graph_objects`` with ``FigureWidget`` loaded, ``nbformat`` deferred (see above)."""
    if "plotly.basewidget" in sys.modules:
        return sys.modules["plotly.graph_objects"]
    defer = "nbformat" not in sys.modules and "plotly.io._renderers" not in sys.modules
    skipped: set[str] | None = None
    if defer:
        try:
            from _plotly_utils import optional_imports

            skipped = optional_imports._not_importable
            defer = isinstance(skipped, set) and "nbformat" not in skipped
        except (ImportError, AttributeError):  # another plotly layout: import it plainly
            defer = False
    if defer and skipped is not None:
        skipped.add("nbformat")  # get_module("nbformat") answers None without importing it
    try:
        import plotly.basewidget  # noqa: F401  (imports plotly.io._renderers)
        import plotly.graph_objects as go
    finally:
        if defer and skipped is not None:
            skipped.discard("nbformat")
    renderers = sys.modules.get("plotly.io._renderers")
    if defer and renderers is not None and getattr(renderers, "nbformat", 0) is None:
        setattr(renderers, "nbformat", _Deferred("nbformat"))  # noqa: B010
    return go


def widget_bundle(fig: Any, **kwargs: Any) -> dict[str, Any]:
    """The widget-view bundle of a plotly ``FigureWidget``, as plotly's own
    ``_repr_mimebundle_`` builds it, minus its Jupyter version check (see the module doc)."""
    fig._widget_layout = deepcopy(fig._layout_obj._props)
    fig._widget_data = deepcopy(fig._data)
    return {
        "application/vnd.jupyter.widget-view+json": {
            "version_major": 2,
            "version_minor": 0,
            "model_id": fig._model_id,
        }
    }
