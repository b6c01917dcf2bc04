"""How a compiled graph shows itself: a live GraphView in JupyterLab, a static SVG (drawn
locally, no network) for nbconvert/nbviewer/GitHub, and a deterministic text summary."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["ipython_display", "mimebundle", "text_summary"]

logger = logging.getLogger("agentgraph_nb")


def text_summary(app: Any) -> str:
    """A deterministic one-paragraph summary (what nbval compares)."""
    data = app.to_json()
    nodes = [n["name"] for n in data["nodes"]]
    edges = len(data["edges"]) + sum(len(j["sources"]) for j in data["joins"])
    routes = len(data["branches"]) + len(data["weighted"])
    return (
        f"<CompiledGraph {data['name']!r}: {len(nodes)} nodes ({', '.join(nodes)}), "
        f"{edges} edges, {routes} routers>"
    )


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except Exception:
        return False
    return ip is not None and getattr(ip, "kernel", None) is not None


def ipython_display(app: Any) -> None:
    """``display(app)`` in IPython: in a kernel, the static picture (an SVG that exports,
    nbviewer and GitHub show, hidden while the live view is on the page; see
    ``ui/_static.py``), then the live GraphView with the text summary; elsewhere, the text
    and the SVG."""
    from IPython.display import display

    view = None
    if _in_kernel():
        try:
            view = app.show()
        except ImportError:
            view = None
        except Exception:  # the static picture is still there
            logger.debug("agentgraph_nb: widget view unavailable", exc_info=True)
    if view is None:
        display(mimebundle(app, with_view=False), raw=True)
        return
    from agentgraph_nb.ui import _static

    summary = text_summary(app)
    live = {**view._live_bundle(), "text/plain": summary}
    _static.display(view, view.static_twin(summary), live)


def mimebundle(app: Any, *, with_view: bool = True) -> dict[str, Any]:
    """The mimebundle for ``app``: text/plain always; image/svg+xml; the widget view in a kernel."""
    bundle: dict[str, Any] = {"text/plain": text_summary(app)}
    if with_view and _in_kernel():
        try:
            view = app.show()
            wb = view._repr_mimebundle_()
            if isinstance(wb, tuple):
                wb = wb[0]
            for k, v in (wb or {}).items():
                if k != "text/plain":
                    bundle[k] = v
        except ImportError:
            pass
        except Exception:  # the static picture is still there
            logger.debug("agentgraph_nb: widget view unavailable", exc_info=True)
    if "image/svg+xml" not in bundle:
        from agentgraph_nb.export.svg import render_svg

        bundle["image/svg+xml"] = render_svg(app.to_json())
    return bundle
