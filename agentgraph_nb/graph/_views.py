"""The notebook-facing methods of a compiled graph. Each imports its (heavy) implementation
only when called, so the engine never imports IPython, ipywidgets, plotly or pandas; a missing
one is a :class:`~agentgraph_nb.errors.MissingDependencyError` naming the ``pip install`` to run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from agentgraph_nb._lazy import requires_extra

if TYPE_CHECKING:
    from agentgraph_nb.graph.compiled import CompiledGraph

__all__ = ["ViewsMixin"]


class ViewsMixin:
    """Mixed into :class:`~agentgraph_nb.graph.compiled.CompiledGraph`."""

    _recorder: Any = None

    # -- recording --------------------------------------------------------------------------------
    def record(self, max_events: int = 200_000) -> Any:
        """Start keeping this graph's events (bounded) for :meth:`events` and :meth:`timeline`
        after the fact. Returns the recorder; calling again returns the same one.
        Runs pay for events only while something records or listens."""
        if self._recorder is None:
            from agentgraph_nb.observe.recorder import EventRecorder

            self._recorder = EventRecorder(max_events=max_events)
            self._recorder.attach(self)  # type: ignore[arg-type]
        return self._recorder

    def events(self, *, run_id: str | None = None, thread_id: str | None = None) -> Any:
        """Recorded events as a pandas DataFrame (see :meth:`record`), one row per event:
        run, thread, step, node, kind, start, end, duration, attempt, error, task."""
        with requires_extra("app.events()"):
            from agentgraph_nb.observe.frames import events_frame

        return events_frame(self, run_id=run_id, thread_id=thread_id)

    # -- widgets ----------------------------------------------------------------------------------
    def show(self, routes: Any = None) -> Any:
        """The GraphView widget for this graph, live during runs.

        Args:
            routes: route frequencies to draw as edge thickness: the DataFrame
                :meth:`simulate` returns, or a ``{"src->dst": count}`` dict.
        """
        with requires_extra("app.show()"):
            from agentgraph_nb.ui.graphview import GraphView

        view = GraphView.from_app(self)
        view.attach(self)
        if routes is not None:
            if isinstance(routes, Mapping):
                view.edge_counts = dict(routes)
            else:
                from agentgraph_nb.observe.simulate import route_counts

                view.edge_counts = route_counts(routes)
        return view

    def debug(self, inputs: Any = None, *, thread_id: str | None = None, breakpoints: Sequence[str] = ()) -> Any:
        """A step-through Debugger widget (graph, controls, state inspector, time travel)."""
        with requires_extra("app.debug()"):
            from agentgraph_nb.ui.debugger import Debugger

        app = cast("CompiledGraph", self)  # only ever mixed into CompiledGraph
        return Debugger(app, inputs, thread_id=thread_id, breakpoints=breakpoints)

    def timeline(self, run_or_thread: str | None = None, **options: Any) -> Any:
        """A plotly Gantt chart of node executions, live during runs (or of a past run/thread).
        Options: ``max_bars`` (default 2000), ``interval`` (seconds between redraws, 0.05),
        ``scale`` (``"auto"``, ``"linear"``, ``"stretched"``), ``lanes`` (``"auto"``: one lane per
        Ray worker for runs with ``executor="ray"``, else per task; ``"task"``, ``"worker"``)."""
        with requires_extra("app.timeline()"):
            from agentgraph_nb.ui.timeline import timeline

        return timeline(self, run_or_thread, **options)

    def dashboard(self, **options: Any) -> Any:
        """Live latency, throughput, error and retry metrics as one widget.
        Options: ``interval``, ``bin_seconds``, ``window``, ``workers`` (a Ray executor: adds a
        panel of its workers, see :class:`~agentgraph_nb.ui.dashboard.Dashboard`)."""
        with requires_extra("app.dashboard()"):
            from agentgraph_nb.ui.dashboard import Dashboard

        return Dashboard(self, **options)

    def simulate(
        self,
        inputs: Any,
        n: int = 1000,
        *,
        seed: int | None = None,
        stubs: Mapping[str, Callable[..., Any]] | None = None,
        progress: bool = False,
    ) -> Any:
        """Run the graph ``n`` times (nodes optionally swapped for ``stubs``) and report how often
        each route was taken, as a DataFrame."""
        from agentgraph_nb.observe.simulate import simulate

        return simulate(self, inputs, n, seed=seed, stubs=stubs, progress=progress)

    # -- display ----------------------------------------------------------------------------------
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Widget view in JupyterLab, plus a static SVG and a text summary everywhere else."""
        from agentgraph_nb.notebook.display import mimebundle

        return mimebundle(self)

    def _ipython_display_(self) -> None:
        """In IPython: a static picture for exports, then the live GraphView (``ui/_static.py``)."""
        from agentgraph_nb.notebook.display import ipython_display

        ipython_display(self)
