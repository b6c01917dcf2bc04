"""Debugger: a step-through view over a :class:`~agentgraph_nb.graph.session.DebugSession`.

Standard ipywidgets around the GraphView anywidget: a toolbar (Step, Continue, Run to here,
Stop, Back; keys N, C, P), a status line saying where the run is, the graph showing it (a click
selects a node and picks it for Run to here; the dots on a node's corners, B and Shift+B
toggle breakpoints; when a chat model answers in a step, its node's details open and the reply
streams in), a history slider over every checkpoint of the thread (all branches), and
beside the graph, tabs: the state inspector with the change from the previous checkpoint, an
editor to change one value and fork, a side-by-side comparison of two checkpoints. A form to
answer a pending ``interrupt()`` appears above the tabs. Its look lives in ``_debugger_look``.

Every control has a Python twin (``dbg.step()``, ``dbg.cont()``, ``dbg.fork({...})``, ...);
the buttons call them, so a notebook or a test drives the widget exactly as a click does.
Nothing here blocks a cell waiting for a click: each click runs one command and returns. For a
graph with async nodes inside a running event loop (a notebook), runs are asyncio tasks on that
loop, so the kernel stays responsive and Stop cancels them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from agentgraph_nb.constants import END
from agentgraph_nb.errors import InvalidInputError, did_you_mean, node_failure
from agentgraph_nb.export.svg import render_svg
from agentgraph_nb.graph.session import DebugSession, StateDiff
from agentgraph_nb.types import StateSnapshot
from agentgraph_nb.ui import _static, inspector
from agentgraph_nb.ui._debugger_look import DEBUGGER_CSS, KEYS, question_of, status_line
from agentgraph_nb.ui.graphview import GraphView, short_text

if TYPE_CHECKING:
    from agentgraph_nb.graph.compiled import CompiledGraph

__all__ = ["Debugger"]

_DOT = " \u00b7 "
_BLANK_DETAILS = {"input": "", "output": "", "duration": "", "attempt": "", "error": ""}


def _button(description: str, cls: str, tooltip: str, icon: str = "", **kw: Any) -> W.Button:
    layout = W.Layout(width="auto", min_width="fit-content", align_self="flex-start")
    b = W.Button(description=description, tooltip=tooltip, icon=icon, layout=layout, **kw)
    b.add_class(cls)
    return b


def _classed(widget: W.DOMWidget, cls: str) -> Any:
    widget.add_class(cls)
    return widget


def _empty_like(value: Any) -> Any:
    """The neutral value of a reducer key's type, to prefill the editor with."""
    for t, empty in (
        (list, []),
        (tuple, []),
        (dict, {}),
        (str, ""),
        (bool, False),
        (int, 0),
        (float, 0.0),
    ):
        if isinstance(value, t):
            return empty
    return None


class _Answer:
    """The form for one pending interrupt: generated from a JSON schema in the payload
    (``{"question": ..., "schema": {"type": "object", "properties": {...}}}``), else one text
    box whose content is read as JSON when it parses and as plain text otherwise."""

    def __init__(self, interrupt: Any) -> None:
        self.interrupt = interrupt
        payload = interrupt.value
        schema = payload.get("schema") if isinstance(payload, Mapping) else None
        self.fields: dict[str, tuple[W.Widget, Callable[[], Any], bool]] = {}
        if isinstance(schema, Mapping) and (
            schema.get("type") == "object" or "properties" in schema
        ):
            self.kind = "object"
            required = set(schema.get("required") or ())
            for name, spec in (schema.get("properties") or {}).items():
                self.fields[str(name)] = (
                    *self._field(str(name), spec if isinstance(spec, Mapping) else {}),
                    name in required,
                )
        elif isinstance(schema, Mapping) and schema:
            self.kind = "value"
            self.fields["answer"] = (*self._field("answer", schema), True)
        else:
            self.kind = "text"
            box = W.Textarea(
                placeholder='Your answer: JSON (true, 3, {"ok": 1}) or plain text',
                layout=W.Layout(width="100%", height="4em"),
            )
            box.add_class("agentgraph-answer")
            self.fields["answer"] = (box, lambda: self._text(box.value), True)
        self.widget = W.VBox([f[0] for f in self.fields.values()])

    @staticmethod
    def _text(text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            return text

    @staticmethod
    def _field(name: str, spec: Mapping[str, Any]) -> tuple[W.Widget, Callable[[], Any]]:
        kind = spec.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), None)
        label = str(spec.get("title") or name)
        default = spec.get("default")
        style = {"description_width": "initial"}
        tip = str(spec.get("description") or "")
        w: W.Widget
        if "enum" in spec and isinstance(spec["enum"], list) and spec["enum"]:
            opts = [(str(v), v) for v in spec["enum"]]
            w = W.Dropdown(
                options=opts,
                value=default if default in spec["enum"] else spec["enum"][0],
                description=label,
                style=style,
                tooltip=tip or None,
            )
            get: Callable[[], Any] = lambda: w.value  # noqa: E731
        elif kind == "boolean":
            w = W.Checkbox(
                value=bool(default), description=label, indent=False, tooltip=tip or None
            )
            get = lambda: bool(w.value)  # noqa: E731
        elif kind == "integer":
            w = W.IntText(
                value=int(default or 0), description=label, style=style, tooltip=tip or None
            )
            get = lambda: int(w.value)  # noqa: E731
        elif kind == "number":
            w = W.FloatText(
                value=float(default or 0), description=label, style=style, tooltip=tip or None
            )
            get = lambda: float(w.value)  # noqa: E731
        elif kind == "string" or (kind is None and not spec):
            cls = W.Textarea if spec.get("format") in ("textarea", "multiline") else W.Text
            w = cls(
                value=str(default or ""),
                description=label,
                style=style,
                tooltip=tip or None,
                placeholder=tip,
                layout=W.Layout(width="100%"),
            )
            get = lambda: w.value  # noqa: E731
        else:  # arrays, objects, anything else: JSON
            w = W.Textarea(
                value=json.dumps(default) if default is not None else "",
                description=label,
                style=style,
                placeholder=f"JSON{': ' + tip if tip else ''}",
                layout=W.Layout(width="100%"),
            )

            def get() -> Any:
                try:
                    return json.loads(w.value)
                except ValueError as exc:
                    raise InvalidInputError(
                        f"answer field {name!r}: not valid JSON ({exc})"
                    ) from None

        w.add_class(f"agentgraph-answer-{name}")
        return w, get

    def value(self) -> Any:
        if self.kind != "object":
            return self.fields["answer"][1]()
        out = {}
        for name, (w, get, required) in self.fields.items():
            v = get()
            if v == "" and not required and isinstance(w, (W.Text, W.Textarea)):
                continue  # an empty optional text field is left out, not sent as ""
            out[name] = v
        return out


class Debugger(W.VBox):
    """Step through a run of ``app`` one superstep at a time, look at and edit its state.

    Args:
        app: a compiled graph with a checkpointer (the default in-memory one will do).
        inputs: the run's input; None to attach to an existing ``thread_id``.
        thread_id: the thread to debug (default: a new ``debug-...`` thread).
        breakpoints: node names to pause before; ``"name:after"`` pauses after that node.

    Every control has a Python twin that updates the widget exactly as the click does:
    :meth:`step`, :meth:`cont`, :meth:`run_to`, :meth:`stop`, :meth:`back`, :meth:`select`,
    :meth:`fork`, :meth:`compare`, :meth:`resume`, :meth:`toggle_breakpoint`; :attr:`state`,
    :attr:`history`, :attr:`session`. A wrong argument (an unknown node, stepping a finished
    run) raises :class:`~agentgraph_nb.errors.InvalidInputError` (a click shows it in the
    error area instead); a failure of the graph being debugged (a node's exception, ...) never
    raises: it is shown in the error area, kept in :attr:`error`, and the last checkpoint is
    selected so the run can be fixed and continued.

    Example:
        >>> dbg = app.debug({"question": "q"}, breakpoints=["write"])   # doctest: +SKIP
        >>> dbg.step()                      # one superstep              # doctest: +SKIP
        >>> dbg.cont()                      # to the breakpoint          # doctest: +SKIP
        >>> dbg.fork({"question": "other"}) # edit and branch            # doctest: +SKIP
    """

    #: Where runs go: ``None`` (default) runs them as asyncio tasks when the graph has async
    #: nodes and an event loop is running (a notebook), so the kernel stays responsive and Stop
    #: cancels them; ``True`` does so for any graph; ``False`` always runs in the caller.
    background: bool | None = None

    def __init__(
        self,
        app: CompiledGraph,
        inputs: Any = None,
        *,
        thread_id: str | None = None,
        breakpoints: Sequence[str] = (),
    ) -> None:
        session = DebugSession(app, inputs, thread_id=thread_id, breakpoints=breakpoints)
        super().__init__()
        self.add_class("agentgraph-debugger")
        self.app = app
        self._session = session
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested = False
        self._syncing = 0
        self._error: BaseException | None = None
        self._message = ""
        self._note = ""
        self._editor_token: tuple[Any, ...] | None = None
        self._answer_ids: tuple[str, ...] | None = None
        self._answers: list[_Answer] = []
        self._timeline: list[tuple[str, str]] = []
        self._labels: dict[str, str] = {}
        self._compare_opts: list[tuple[str, str]] = []
        self._snap: StateSnapshot = session.state
        self._opened = False
        self._build()
        # Listening only while a run of ours goes on: other runs of the app pay nothing for us.
        self._unlisten: Callable[[], Any] | None = None
        self._sync_breakpoints()
        self._render()
        self._twin = _static.StaticTwin(
            self,
            self._static_html,
            kind="debugger",
            ready='[data-ready="true"]',
            version=lambda: (
                self.status_html.value,
                self.inspector_html.value,
                self.graphview.status,
            ),
        )

    # -- building -----------------------------------------------------------------------------

    def _build(self) -> None:
        app = self.app
        # A Continue resumes from a checkpoint: the nodes that ran before it stay "done". The
        # view shows this thread only, whatever else runs on the app.
        self.graphview = GraphView.from_app(app, reset_on_run_start=False, shortcuts=KEYS)
        self.graphview.pin(thread_id=self._session.thread_id)
        names = self.graphview.node_names
        self.step_button = _button(
            "Step",
            "agentgraph-step",
            "Run one superstep: every node that is ready, in parallel (N)",
            "step-forward",
        )
        self.cont_button = _button(
            "Continue",
            "agentgraph-continue",
            "Run to the next breakpoint, interrupt, or the end (C)",
            "play",
        )
        self.run_to_button = _button(
            "Run to here",
            "agentgraph-run-to",
            "Run until the node selected in the graph is about to run",
            "forward",
        )
        self.stop_button = _button(
            "Stop",
            "agentgraph-stop",
            "Stop the running Continue: in-flight async nodes are cancelled, the last checkpoint stays "
            "(sync nodes cannot be cancelled: interrupt the kernel)",
            "stop",
        )
        self.back_button = _button(
            "Back",
            "agentgraph-back",
            "Select the previous checkpoint; the next Step forks from it (P)",
            "step-backward",
        )
        self.step_in_button = _button(
            "Step in",
            "agentgraph-step-in",
            "Run until the next node inside a subgraph is about to run, and pause there",
            "level-down",
        )
        self.step_out_button = _button(
            "Step out",
            "agentgraph-step-out",
            "Finish the subgraph the run is paused in and pause right after it",
            "level-up",
        )
        self._subgraphs = self._session.subgraph_paths()
        if not self._subgraphs:
            self.step_in_button.layout.display = self.step_out_button.layout.display = "none"
        self.subgraph_pick = _classed(
            W.Dropdown(
                options=[("(where the run is paused)", ""), *((p.replace("|", " > "), p) for p in self._subgraphs)],
                value="",
                description="subgraph",
                style={"description_width": "60px"},
                layout=W.Layout(width="auto"),
            ),
            "agentgraph-subgraph-pick",
        )
        self.subgraph_html = _classed(W.HTML(), "agentgraph-subgraph")
        self.run_to_target = _classed(
            W.Dropdown(
                options=[("(click a node)", ""), *((n, n) for n in names)],
                value="",
                description="to",
                layout=W.Layout(width="170px"),
                style={"description_width": "18px"},
                tooltip="The node 'Run to here' runs to (click one in the graph)",
            ),
            "agentgraph-run-to-target",
        )
        self.status_html = _classed(W.HTML(), "agentgraph-status")
        self.error_html = _classed(W.HTML(), "agentgraph-error")
        self.breakpoints_html = _classed(W.HTML(), "agentgraph-breakpoints")
        self.history_slider = _classed(
            W.SelectionSlider(
                options=[("step 0", "")],
                description="History",
                continuous_update=False,
                layout=W.Layout(width="100%"),
                style={"description_width": "52px"},
                readout=True,
            ),
            "agentgraph-history",
        )
        self.inspector_html = _classed(W.HTML(), "agentgraph-inspector")
        self.writes_html = _classed(W.HTML(), "agentgraph-writes")
        # human in the loop
        self.interrupt_html = _classed(W.HTML(), "agentgraph-interrupt-payload")
        self.answer_box = W.VBox()
        self.resume_button = _button(
            "Resume",
            "agentgraph-resume",
            "Answer the interrupt and continue",
            "reply",
        )
        self.interrupt_box = _classed(
            W.VBox(
                [self.interrupt_html, self.answer_box, self.resume_button],
                layout=W.Layout(
                    display="none",
                    border="1px solid #c5a3f0",
                    padding="6px",
                    margin="0 0 6px 0",
                    flex="0 0 auto",
                ),
            ),
            "agentgraph-interrupt",
        )
        # time travel
        keys = list(app.schema.keys)
        self.edit_key = _classed(
            W.Dropdown(
                options=keys,
                value=keys[0] if keys else None,
                description="key",
                style={"description_width": "30px"},
            ),
            "agentgraph-fork-key",
        )
        self.edit_value = _classed(
            W.Textarea(
                layout=W.Layout(width="100%", height="7em"),
                placeholder="the key's new value, as JSON",
            ),
            "agentgraph-fork-value",
        )
        self.edit_hint = _classed(W.HTML(), "agentgraph-fork-hint")
        self.fork_button = _button(
            "Fork",
            "agentgraph-fork",
            "Set the key to this JSON value at the selected checkpoint, as a new branch",
            "code-branch",
        )
        self.compare_a = _classed(
            W.Dropdown(
                description="a", style={"description_width": "15px"}, layout=W.Layout(width="auto")
            ),
            "agentgraph-compare-a",
        )
        self.compare_b = _classed(
            W.Dropdown(
                description="b", style={"description_width": "15px"}, layout=W.Layout(width="auto")
            ),
            "agentgraph-compare-b",
        )
        self.compare_button = _button(
            "Compare",
            "agentgraph-compare",
            "Show the two checkpoints' states side by side",
            "columns",
        )
        self.compare_html = _classed(W.HTML(), "agentgraph-compare-result")

        toolbar = _classed(
            W.HBox(
                [
                    self.step_button,
                    self.step_in_button,
                    self.step_out_button,
                    self.cont_button,
                    self.back_button,
                    self.stop_button,
                    self.run_to_button,
                    self.run_to_target,
                    W.HTML(
                        '<span class="agn-dbg-keys" title="Keyboard shortcuts while the debugger has '
                        'the focus (click in it first)">keys: <b>N</b> step \u00b7 <b>C</b> continue '
                        "\u00b7 <b>P</b> back \u00b7 <b>B</b> breakpoint on the selected node</span>",
                        layout=W.Layout(margin="0 0 0 auto"),
                    ),
                ],
            ),
            "agn-dbg-bar",
        )
        for part in (self.inspector_html, self.writes_html):
            part.layout.flex = "0 0 auto"  # the tab scrolls; its parts keep their height
        edit = W.VBox(
            [
                W.HTML(
                    '<div class="agn-dbg-title">Change a value at the selected checkpoint</div>'
                ),
                self.edit_key,
                self.edit_value,
                self.edit_hint,
                self.fork_button,
            ]
        )
        compare = W.VBox(
            [
                W.HBox(
                    [self.compare_a, self.compare_b, self.compare_button],
                    layout=W.Layout(flex_flow="row wrap"),
                ),
                self.compare_html,
            ]
        )
        self.tabs = _classed(
            W.Tab(
                children=[W.VBox([self.inspector_html, self.writes_html]), edit, compare,
                          W.VBox([self.subgraph_pick, self.subgraph_html])][: 4 if self._subgraphs else 3],
                titles=["State", "Edit & fork", "Compare", "Subgraph"][: 4 if self._subgraphs else 3],
                layout=W.Layout(flex="1 1 auto", max_height="520px"),
            ),
            "agentgraph-tabs",
        )
        side = _classed(
            W.VBox(
                [self.interrupt_box, self.tabs],
                layout=W.Layout(flex="2 1 0", min_width="280px", padding="0 0 0 8px"),
            ),
            "agn-dbg-side",
        )
        self.graphview.layout = W.Layout(width="100%")
        left = W.VBox(
            [self.graphview, self.history_slider, self.breakpoints_html],
            layout=W.Layout(flex="3 1 0", min_width="0"),
        )
        main = W.HBox([left, side], layout=W.Layout(width="100%", align_items="flex-start"))
        self.children = [
            W.HTML(DEBUGGER_CSS, layout=W.Layout(display="none")),
            toolbar,
            self.status_html,
            self.error_html,
            main,
        ]
        self.add_class("agentgraph-keys")  # the GraphView's key handler covers the whole debugger

        self.step_button.on_click(lambda _: self._guard(self.step))
        self.step_in_button.on_click(lambda _: self._guard(self.step_in))
        self.step_out_button.on_click(lambda _: self._guard(self.step_out))
        self.subgraph_pick.observe(lambda _: self._guard(self._sync_subgraph), names="value")
        self.cont_button.on_click(lambda _: self._guard(self.cont))
        self.run_to_button.on_click(lambda _: self._guard(self.run_to))
        self.stop_button.on_click(lambda _: self._guard(self.stop))
        self.back_button.on_click(lambda _: self._guard(self.back))
        self.fork_button.on_click(self._on_fork_click)
        self.compare_button.on_click(lambda _: self._guard(self.compare))
        self.resume_button.on_click(self._on_resume_click)
        self.graphview.on_node_click(self._on_node_click)
        self.graphview.on_command(self._on_key_command)
        self.graphview.observe(self._on_view_breakpoints, names="breakpoints")
        self.history_slider.observe(self._on_slider, names="value")
        self.edit_key.observe(lambda _: self._sync_editor(force=True), names="value")
        self.run_to_target.observe(lambda _: self._sync_buttons(), names="value")

    # -- looking ----------------------------------------------------------------------------

    @property
    def session(self) -> DebugSession:
        """The engine-level session this widget is a view of."""
        return self._session

    @property
    def state(self) -> StateSnapshot:
        """The snapshot at the selected checkpoint."""
        return self._session.state

    @property
    def history(self) -> list[StateSnapshot]:
        """Every checkpoint of the thread, newest first, all branches."""
        return self._session.history

    @property
    def breakpoints(self) -> list[str]:
        """Breakpoints as ``name`` (before) and ``name:after``, sorted."""
        return self._session.breakpoints

    @property
    def done(self) -> bool:
        """True when nothing is left to run from the selected checkpoint."""
        return self._session.done

    def diff(self, checkpoint_id: str | None = None) -> StateDiff:
        """What the step that produced a checkpoint (default: the selected one) changed, key by
        key, with who wrote each key and its reducer (what the inspector highlights)."""
        return self._session.diff(checkpoint_id)

    def branches(self) -> list[list[str]]:
        """The thread's branches as lists of checkpoint ids, root to leaf."""
        return self._session.branches()

    @property
    def error(self) -> BaseException | None:
        """The failure shown in the error area (a node's error, a wrong click), or None."""
        return self._error

    @property
    def running(self) -> bool:
        """True while a run goes on in the background (Stop cancels it)."""
        return self._task is not None

    def label(self, checkpoint_id: str) -> str:
        """The history slider's label of a checkpoint, e.g. ``"step 2 · branch 2"``."""
        return self._labels.get(checkpoint_id, checkpoint_id)

    # -- moving (the buttons call these) -----------------------------------------------------

    def step(self) -> Any:
        """Run one superstep (Step). Returns the new snapshot, or the asyncio task running it
        (``await`` it) when the run goes in the background."""
        self._check_idle()
        if self._session.done:
            raise InvalidInputError(
                f"thread {self._session.thread_id!r}: the run is finished; nothing to step"
            )
        return self._launch("step")

    def cont(self) -> Any:
        """Continue to the next breakpoint, interrupt or the end (Continue). Returns like :meth:`step`."""
        self._check_idle()
        if self._session.done:
            raise InvalidInputError(
                f"thread {self._session.thread_id!r}: the run is finished; nothing to continue"
            )
        return self._launch("cont")

    def step_in(self) -> Any:
        """Run until the next node inside a subgraph is about to run (Step in); the Subgraph
        tab then shows that subgraph's state and history. Returns like :meth:`step`."""
        self._check_idle()
        if self._session.done:
            raise InvalidInputError(
                f"thread {self._session.thread_id!r}: the run is finished; nothing to step"
            )
        self._session._step_in_kw()  # no subgraphs: the error now, not in the background
        return self._launch("step_in")

    def step_out(self) -> Any:
        """Finish the subgraph the run is paused in and pause right after it (Step out).
        Returns like :meth:`step`."""
        self._check_idle()
        self._session._step_out_kw()
        return self._launch("step_out")

    @property
    def where(self) -> str:
        """The subgraph the run is paused inside (``"team|inner"``), or ``""``."""
        return self._session.where

    def subgraph_state(self, namespace: str | None = None) -> StateSnapshot:
        """A subgraph's newest snapshot on the thread (default: where the run is paused)."""
        return self._session.subgraph_state(namespace)

    def subgraph_history(self, namespace: str | None = None) -> list[StateSnapshot]:
        """A subgraph's checkpoints on the thread, newest first."""
        return self._session.subgraph_history(namespace)

    def run_to(self, node: str | None = None) -> Any:
        """Continue until ``node`` (default: the node picked in the graph) is about to run
        (Run to here). Returns like :meth:`step`."""
        self._check_idle()
        node = node or self.run_to_target.value
        names = self.graphview.node_names
        if not node:
            raise InvalidInputError(
                "run to: pick a node first (click it in the graph) or pass its name"
            )
        if node not in names:
            raise InvalidInputError(f"run to: unknown node {node!r}.{did_you_mean(node, names)}")
        if self._session.done:
            raise InvalidInputError(
                f"thread {self._session.thread_id!r}: the run is finished; nothing to run"
            )
        if self.run_to_target.value != node:
            with self._quiet():
                self.run_to_target.value = node
        return self._launch("run_to", node)

    def resume(self, value: Any) -> Any:
        """Answer the pending ``interrupt()`` with ``value`` and continue (Resume). With several
        interrupts pending, ``value`` is ``{interrupt_id: answer}``. Returns like :meth:`step`."""
        self._check_idle()
        if not [i for i in self._session.state.interrupts if i.when == "during"]:
            raise InvalidInputError(
                "resume: no interrupt is waiting for an answer at the selected checkpoint"
            )
        return self._launch("resume", value)

    def stop(self) -> bool:
        """Cancel the run going on in the background (Stop): in-flight async nodes are cancelled
        and the last checkpoint is selected. Returns whether there was something to stop."""
        task, loop = self._task, self._loop
        if task is None or task.done() or loop is None:
            self._note = "Nothing is running."
            self._render_status()
            return False
        self._stop_requested = True
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:
            task.cancel()
        else:  # a click handled on another thread: cancel on the task's own loop
            loop.call_soon_threadsafe(task.cancel)
        self._note = "Stopping\u2026"
        self._render_status()
        return True

    def back(self) -> StateSnapshot:
        """Select the previous checkpoint (Back); the next Step forks from it."""
        self._check_idle()
        self._clear_error()
        snap = self._session.back()
        self._note = ""
        self._render()
        return snap

    def select(self, checkpoint_id: str) -> StateSnapshot:
        """Select any checkpoint of the thread, on any branch (the history slider)."""
        self._check_idle()
        self._clear_error()
        snap = self._session.select(checkpoint_id)
        self._note = ""
        self._render()
        return snap

    def fork(self, values: Mapping[str, Any], *, as_node: str | None = None) -> StateSnapshot:
        """Change the selected state (values merge through the keys' reducers) into a new branch
        and select it (Fork); the original timeline stays as it was."""
        self._check_idle()
        if not isinstance(values, Mapping):
            raise InvalidInputError(
                f"fork: give a dict of state keys to values, not {type(values).__name__}"
            )
        self._clear_error()
        snap = self._session.fork(dict(values), as_node=as_node)
        self._note = f"Forked: {', '.join(map(str, values))} changed in a new checkpoint; the old one is kept."
        self._editor_token = None
        self._render()
        return snap

    def compare(self, a: str | None = None, b: str | None = None) -> StateDiff:
        """Show two checkpoints (default: the ones picked in the Compare dropdowns) side by side
        and return their :class:`~agentgraph_nb.graph.session.StateDiff`."""
        a = a or self.compare_a.value
        b = b or self.compare_b.value
        if not a or not b:
            raise InvalidInputError("compare: pick two checkpoints")
        sess = self._session
        va = sess.app.get_state(sess.thread_id, a).values
        vb = sess.app.get_state(sess.thread_id, b).values
        diff = sess.compare(a, b)
        with self._quiet():
            ids = {v for _, v in self._compare_opts}
            if a in ids:
                self.compare_a.value = a
            if b in ids:
                self.compare_b.value = b
        self.compare_html.value = inspector.render_compare(
            diff, va, vb, a_label=self.label(a), b_label=self.label(b)
        )
        self.tabs.selected_index = 2  # the table where the user is looking, not below the fold
        return diff

    def toggle_breakpoint(self, name: str, when: str | None = None) -> bool:
        """Toggle a breakpoint before (default) or after a node (``"name:after"`` or
        ``when="after"``), as a click on the dot at the node's top left (top right: after), or
        B (Shift+B) on the selected node, does. Returns whether it is now set."""
        on = self._session.toggle_breakpoint(name, when=when)
        self._sync_breakpoints()
        self._render_status()
        return on

    # -- running ----------------------------------------------------------------------------

    def _check_idle(self) -> None:
        if self._task is not None:
            raise InvalidInputError("a run is in progress: wait for it, or stop() it first")

    def _graph_is_async(self) -> bool:
        all_sync = getattr(self.app, "_all_sync", None)  # re-reads hot-reloaded nodes
        if callable(all_sync):
            return not all_sync()
        return any(n.get("async") for n in self.graphview.graph.get("nodes") or ())

    def _background_loop(self) -> asyncio.AbstractEventLoop | None:
        if self.background is False:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        if self.background is None and not self._graph_is_async():
            return None
        return loop

    def _launch(self, name: str, *args: Any) -> Any:
        sess = self._session
        self._clear_error()
        self._note = ""
        self.graphview.current = []  # what runs next is known again when the run stops
        self._opened = False  # the details of a node whose model answers open once per command
        if self._unlisten is None:
            self._unlisten = self.app.listen(self._on_event)
        loop = self._background_loop()
        if loop is not None:
            self._stop_requested = False
            self._loop = loop
            task = loop.create_task(self._drive(name, args))
            self._task = task
            task.add_done_callback(self._task_done)
            self._sync_buttons()
            self._render_status()
            return task
        try:
            getattr(sess, name)(*args)
        except Exception as exc:  # the graph failed: show it, keep the widget usable
            self._after_run(error=exc)
        except BaseException:  # KeyboardInterrupt: select what was saved, then let it through
            sess.select(sess.app.get_state(sess.thread_id).checkpoint_id)  # type: ignore[arg-type]
            self._after_run(note="Interrupted.")
            raise
        else:
            self._after_run()
        return sess.state

    async def _drive(self, name: str, args: tuple[Any, ...]) -> StateSnapshot:
        try:
            await getattr(self._session, "a" + name)(*args)
        except asyncio.CancelledError:
            if not self._stop_requested:
                self._after_run(note="Cancelled.")
                raise
            task = asyncio.current_task()
            uncancel = getattr(task, "uncancel", None)
            if uncancel is not None:
                uncancel()
            self._after_run(
                note="Stopped: the last checkpoint is selected; Continue resumes from it."
            )
        except Exception as exc:
            self._after_run(error=exc)
        else:
            self._after_run()
        return self._session.state

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if self._task is task:  # cancelled before it started: _drive never ran
            self._after_run(note="Stopped before it started.")

    def _after_run(self, *, error: BaseException | None = None, note: str = "") -> None:
        unlisten, self._unlisten = self._unlisten, None
        if unlisten is not None:
            unlisten()
        self._task = None
        self._stop_requested = False
        self._error = error
        self._message = ""
        self._note = note
        self.graphview.flush()
        self._render()

    def _guard(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call a command from a click: a wrong click shows its error instead of raising."""
        try:
            return fn(*args)
        except Exception as exc:
            self._error = exc
            self._render_error()
            return None

    def _clear_error(self) -> None:
        self._error = None
        self._message = ""
        self._render_error()

    # -- clicks -----------------------------------------------------------------------------

    def _on_node_click(self, name: str, shift: bool) -> None:
        # A click selects the node (its details open in the view) and picks it for Run to here.
        if shift or name not in self.graphview.node_names:
            return  # shift-click: the view toggled the breakpoint itself (_on_view_breakpoints)
        self.run_to_target.value = name

    def _on_key_command(self, command: str) -> None:
        # N, C, P with the focus in the debugger: what the (enabled) button does.
        button = {
            "step": self.step_button,
            "continue": self.cont_button,
            "back": self.back_button,
        }.get(command)
        if button is not None and not button.disabled:
            button.click()

    def _on_view_breakpoints(self, change: Mapping[str, Any]) -> None:
        # Shift-click or the details panel's checkboxes: "name" is before, "name:after" after.
        if self._syncing:
            return
        sess = self._session
        names = set(self.graphview.node_names)
        want: dict[str, set[str]] = {"before": set(), "after": set()}
        for entry in change["new"]:
            node, when = entry, "before"
            if entry not in names:
                head, _, tail = entry.rpartition(":")
                if tail in want:
                    node, when = head, tail
            if node in names:
                want[when].add(node)
        for when, have in (("before", sess.before), ("after", sess.after)):
            for n in sorted(want[when] ^ have):
                sess.toggle_breakpoint(n, when=when)
        self._sync_breakpoints()
        self._render_status()

    def _on_slider(self, change: Mapping[str, Any]) -> None:
        cid = change["new"]
        if self._syncing or not cid or cid == self._session.selected:
            return
        self._guard(self.select, cid)

    def _on_fork_click(self, _: Any = None) -> None:
        key = self.edit_key.value
        text = self.edit_value.value
        try:
            value = json.loads(text)
        except ValueError as exc:
            self._error = None
            self._message = f"{key}: not valid JSON ({exc}); nothing was forked."
            self._render_error()
            return
        self._guard(self.fork, {key: value})

    def _on_resume_click(self, _: Any = None) -> None:
        try:
            if len(self._answers) == 1:
                value = self._answers[0].value()
            else:
                value = {a.interrupt.id: a.value() for a in self._answers}
        except Exception as exc:
            self._error = exc
            self._render_error()
            return
        self._guard(self.resume, value)

    def _on_event(self, event: Any) -> None:
        # Live statuses during a run of this thread (the view keeps "done" on run_start).
        if event.thread_id == self._session.thread_id:
            self.graphview.on_event(event)
            if event.kind == "llm_token" and not self._opened and not self.graphview.selected:
                # a model answers in the step: open its node's details, where the answer streams
                self._opened = True
                self.graphview.selected = event.node

    #: Ask the engine for ``llm_token`` events (the GraphView shows them as ``reply``).
    _on_event.llm_tokens = True  # type: ignore[attr-defined]

    # -- rendering ----------------------------------------------------------------------------

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        self._syncing += 1
        try:
            yield
        finally:
            self._syncing -= 1

    def _render(self) -> None:
        sess = self._session
        hist = sess.history
        st = sess.state
        self._snap = st
        by_id = {s.checkpoint_id: s for s in hist}
        self._build_timeline(hist)
        with self._quiet():
            opts = [(label, cid) for cid, label in self._timeline]
            if list(self.history_slider.options) != opts:
                self.history_slider.options = opts
            if st.checkpoint_id in self._labels and self.history_slider.value != st.checkpoint_id:
                self.history_slider.value = st.checkpoint_id
        title = f"{self.label(st.checkpoint_id or '')}{_DOT}next: {', '.join(st.next) or END}"
        self.inspector_html.value = inspector.render_state(
            st.values, sess.diff(), title=title, keys=list(self.app.schema.keys)
        )
        self.writes_html.value = inspector.render_writes(st.writes, step=st.step)
        self._paint_graph(st, by_id)
        self.graphview.caption = (
            f"thread {sess.thread_id} \u00b7 {self.label(st.checkpoint_id or '')}"
        )
        self._sync_editor()
        self._sync_compare(hist)
        self._sync_interrupts(st)
        self._sync_subgraph()
        self._render_error()
        self._render_status()

    def _sync_subgraph(self) -> None:
        """The Subgraph tab: the chosen subgraph's (or the one the run is paused in) state and
        its checkpoints on this thread; its nodes' statuses in the graph."""
        if not self._subgraphs:
            return
        sess = self._session
        ns = self.subgraph_pick.value or sess.where
        if not ns:
            self.subgraph_html.value = (
                '<div class="agn-dbg-title">The run is not paused inside a subgraph: Step in, or pick one.</div>'
            )
            return
        try:
            hist = sess.subgraph_history(ns)
        except Exception as exc:  # the thread has not run it yet
            self.subgraph_html.value = f'<div class="agn-dbg-title">{inspector._e(str(exc))}</div>'
            return
        snap = hist[0]
        title = f"subgraph {ns.replace('|', ' > ')}{_DOT}step {snap.step}{_DOT}next: {', '.join(snap.next) or END}"
        rows = "".join(
            f"<tr><td>{h.step}</td><td>{inspector._e(', '.join(h.writes) or '(input)')}</td>"
            f"<td>{inspector._e(', '.join(h.next) or END)}</td></tr>"
            for h in hist[:30]
        )
        self.subgraph_html.value = (
            inspector.render_state(snap.values, None, title=title)
            + '<div class="agn-dbg-title">history (newest first)</div>'
            + f'<table class="agentgraph-subgraph-history"><tr><th>step</th><th>wrote</th><th>next</th></tr>{rows}</table>'
        )
        # the nodes inside: done where this execution wrote, pending where it goes next
        call = snap.metadata.get("call")
        status = dict(self.graphview.status)
        for h in reversed(hist):
            if h.metadata.get("call") != call:
                continue
            for node in h.writes:
                status[f"{ns}|{node}"] = "done"
        for node in snap.next:
            status[f"{ns}|{node}"] = "pending"
        for intr in snap.interrupts:
            if intr.when == "during":
                status[f"{ns}|{intr.node}"] = "interrupted"
        self.graphview.status = status

    def _build_timeline(self, hist: list[StateSnapshot]) -> None:
        """Oldest first, each checkpoint labelled with its step and branch: the first child of a
        checkpoint continues its parent's branch, a later child starts a new one."""
        branch: dict[str, int] = {}
        continued: set[str] = set()
        count = 0
        timeline = []
        seen: set[str] = set()
        for s in reversed(hist):
            cid = s.checkpoint_id or ""
            p = s.parent_id
            if p is not None and p in branch and p not in continued:
                continued.add(p)
                branch[cid] = branch[p]
            else:
                count += 1
                branch[cid] = count
            b = branch[cid]
            label = f"step {s.step}{_DOT}{'main' if b == 1 else f'branch {b}'}"
            if (s.metadata or {}).get("source") == "update":
                label += f"{_DOT}edit"
            if label in seen:
                k = 2
                while f"{label} ({k})" in seen:
                    k += 1
                label = f"{label} ({k})"
            seen.add(label)
            timeline.append((cid, label))
        self._timeline = timeline
        self._labels = dict(timeline)

    def _paint_graph(self, st: StateSnapshot, by_id: Mapping[Any, StateSnapshot]) -> None:
        """Statuses for the selected checkpoint: done for the nodes that ran on its way from the
        input, pending for what runs next, interrupted / failed where the run stopped."""
        names = set(self.graphview.node_names)
        status = dict.fromkeys(self.graphview.node_names, "idle")
        old = self.graphview.details
        details: dict[str, dict[str, str]] = {}
        chain: list[StateSnapshot] = []
        cur: str | None = st.checkpoint_id
        while cur is not None and cur in by_id and len(chain) <= len(by_id):
            chain.append(by_id[cur])
            cur = by_id[cur].parent_id
        for snap in reversed(chain):
            for node, update in snap.writes.items():
                if node not in names:
                    continue
                status[node] = "done"
                out = short_text(update)
                prev = old.get(node) or {}
                base = prev if prev.get("output") == out else _BLANK_DETAILS
                details[node] = {**base, "output": out, "error": "", "step": str(snap.step)}
        for node in st.next:
            if node in names:
                status[node] = "pending"
        for intr in st.interrupts:
            if intr.when == "during" and intr.node in names:
                status[intr.node] = "interrupted"
                details[intr.node] = {
                    **_BLANK_DETAILS,
                    **details.get(intr.node, {}),
                    "interrupt": short_text(intr.value),
                }
        err = self._error
        failure = node_failure(err)
        failed = failure.node if failure is not None else None
        if failed in names and st.checkpoint_id == self._latest_id():
            status[failed] = "failed"
            details[failed] = {
                **_BLANK_DETAILS,
                **details.get(failed, {}),
                "error": short_text(err, 600),
            }
        with self.graphview.hold_sync():
            self.graphview.status = status
            self.graphview.details = details
            self.graphview.current = [n for n in st.next if n in names]

    def _latest_id(self) -> str | None:
        sess = self._session
        return sess.app.get_state(sess.thread_id).checkpoint_id

    def _sync_breakpoints(self) -> None:
        sess = self._session
        with self._quiet():
            self.graphview.breakpoints = sess.breakpoints
        items = [f"before {n}" for n in sorted(sess.before)] + [
            f"after {n}" for n in sorted(sess.after)
        ]
        if items:
            body = ", ".join(
                f'<code data-testid="breakpoint">{inspector._e(i)}</code>' for i in items
            )
        else:
            body = (
                '<span style="color:#6e7781">none: point at a node and click the dot on its top '
                "left corner (top right: after), or select it and press B (Shift+B: after)</span>"
            )
        self.breakpoints_html.value = (
            f'<div data-testid="debugger-breakpoints"><b>Breakpoints:</b> {body}</div>'
        )

    def _sync_editor(self, *, force: bool = False) -> None:
        st = self._snap
        key = self.edit_key.value
        token = (st.checkpoint_id, key)
        if not force and token == self._editor_token:
            return  # keep what the user is typing
        self._editor_token = token
        if key is None:
            self.edit_value.value = ""
            self.edit_hint.value = ""
            return
        reducer = self.app.schema.reducer_names.get(key)
        value = st.values.get(key)
        hint = ""
        if reducer:
            value = _empty_like(value)
            hint = (
                f"<i>{inspector._e(key)}</i> has reducer <code>{inspector._e(reducer)}</code>: Fork merges "
                "the value you enter into it (e.g. appends to a list); it does not replace it."
            )
        try:
            text = (
                json.dumps(value, indent=2, ensure_ascii=False)
                if key in st.values or reducer
                else ""
            )
        except (TypeError, ValueError):
            text = ""
            hint = (
                f"<i>{inspector._e(key)}</i> holds a {inspector._e(type(value).__name__)}, not JSON: "
                "Fork sets it to the JSON value you enter."
            )
        self.edit_value.value = text
        self.edit_hint.value = (
            f'<span style="color:#6e7781;font-size:12px">{hint}</span>' if hint else ""
        )

    def _sync_compare(self, hist: list[StateSnapshot]) -> None:
        """New checkpoints reset the pair to compare: the main branch's leaf against the newest
        other leaf, or (one branch) the selected checkpoint against its parent."""
        branches = self._session.branches()
        leaves = [path[-1] for path in branches]
        opts = [
            (self.label(cid) + (f"{_DOT}leaf" if cid in leaves else ""), cid)
            for cid, _ in reversed(self._timeline)
        ]
        if opts == self._compare_opts:
            return
        self._compare_opts = opts
        order = [cid for _, cid in opts]  # newest first
        main_leaf = leaves[0] if leaves else None
        others = [cid for cid in order if cid in leaves and cid != main_leaf]
        a: str | None
        b: str | None
        if others:
            a, b = main_leaf, others[0]
        else:
            b = self._snap.checkpoint_id
            a = self._snap.parent_id or b
        with self._quiet():
            self.compare_a.options = opts
            self.compare_b.options = opts
            self.compare_a.value = a
            self.compare_b.value = b

    def _sync_interrupts(self, st: StateSnapshot) -> None:
        pending = [i for i in st.interrupts if i.when == "during"]
        ids = tuple(i.id for i in pending)
        if ids == self._answer_ids:
            return  # keep what the user is typing
        self._answer_ids = ids
        if not pending:
            self._answers = []
            self.answer_box.children = ()
            self.interrupt_html.value = ""
            self.interrupt_box.layout.display = "none"
            return
        self._answers = [_Answer(i) for i in pending]
        parts = []
        for i in pending:
            payload = i.value
            question = question_of(payload)
            rest: Any = None if isinstance(payload, str) else payload
            if isinstance(payload, Mapping):
                asked = next(
                    (
                        k
                        for k in ("question", "message", "prompt")
                        if isinstance(payload.get(k), str)
                    ),
                    None,
                )
                if asked is not None:
                    rest = {kk: vv for kk, vv in payload.items() if kk not in (asked, "schema")}
            body = inspector.render_value(rest, open_levels=1) if rest not in (None, {}) else ""
            parts.append(
                f'<div data-testid="interrupt-{inspector._e(i.node)}"><b>{inspector._e(" > ".join(i.path) or i.node)}</b> asks: '
                f'<span data-testid="interrupt-question">{inspector._e(question)}</span>{body}</div>'
            )
        self.interrupt_html.value = (
            f'{inspector.INSPECTOR_CSS}<div class="agn-insp">{"".join(parts)}</div>'
        )
        if len(self._answers) == 1:
            self.answer_box.children = (self._answers[0].widget,)
        else:
            self.answer_box.children = tuple(
                W.VBox([W.HTML(f"<i>{inspector._e(a.interrupt.node)}</i>"), a.widget])
                for a in self._answers
            )
        self.interrupt_box.layout.display = "flex"

    def _sync_buttons(self) -> None:
        busy = self._task is not None
        st = self._snap
        done = not st.next
        self.step_button.disabled = busy or done
        self.step_in_button.disabled = busy or done
        self.step_out_button.disabled = busy or not self._session.where
        self.cont_button.disabled = busy or done
        self.run_to_button.disabled = busy or done or not self.run_to_target.value
        self.back_button.disabled = busy or st.parent_id is None
        self.stop_button.disabled = not busy
        self.fork_button.disabled = busy
        self.resume_button.disabled = busy
        self.history_slider.disabled = busy

    def _render_status(self) -> None:
        st = self._snap
        failure = node_failure(self._error)
        state, where = status_line(
            running=self._task is not None,
            step=st.step,
            next_nodes=st.next,
            interrupts=st.interrupts,
            failed=failure.node if failure is not None else None,
            error=self._error,
            at_latest=st.checkpoint_id == self._latest_id(),
            note=self._note,
        )
        self.status_html.value = (
            f'<div class="agn-dbg-status" data-testid="debugger-status" data-state="{state}" '
            f'role="status" aria-live="polite"><span class="agn-dbg-where">{where}</span></div>'
        )
        self._sync_buttons()

    def _render_error(self) -> None:
        html = inspector.render_error(self._error, message=self._message)
        caught = [t for t in self._snap.tasks if getattr(t, "caught", None) is not None]
        if caught:  # an error edge caught a failure: its handler runs next
            html += "".join(
                f'<div class="agn-dbg-caught" data-testid="debugger-caught" role="note" '
                f'style="border-left:3px solid #d93025;padding:2px 8px;margin:4px 0;color:#a50e0e">'
                f"caught: {inspector._e(t.caught.describe())} → handler {inspector._e(repr(t.name))} runs next</div>"
                for t in caught
            )
        self.error_html.value = html

    # -- lifecycle and display ------------------------------------------------------------------

    def close(self) -> None:
        """Cancel a background run, stop listening to the graph's runs, close the widgets."""
        unlisten = getattr(self, "_unlisten", None)
        if unlisten is not None:
            self._unlisten = None
            unlisten()
        task = getattr(self, "_task", None)
        if task is not None and not task.done():
            self.stop()
        view = getattr(self, "graphview", None)
        if view is not None:
            view.close()
        super().close()

    def __repr__(self) -> str:
        return self._session.summary()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget view, :meth:`DebugSession.summary` (whole, not cut) as text/plain, and
        the static picture (where the run is, the graph, the state) as text/html."""
        bundle = self._live_bundle(**kwargs)
        bundle["text/html"] = self._twin.html()
        return bundle

    def _live_bundle(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs)
        data = dict(bundle[0] if isinstance(bundle, tuple) else bundle)
        data["text/plain"] = repr(self)
        return data

    def _ipython_display_(self) -> None:
        """In IPython: the static picture, then the live widget (see ``ui/_static.py``)."""
        _static.display(self, self._twin, self._live_bundle())

    def _static_html(self) -> str:
        """What an export shows in place of the widget: the status line, the graph coloured as
        at the selected checkpoint, what the step wrote and the state (the same HTML the
        widget shows; no buttons)."""
        view = self.graphview
        graph = (
            _static.img(
                render_svg(view.graph, status=view.status), f"graph {self.app.name}", max_width=720
            )
            if len(view.graph.get("nodes") or ()) <= 1500
            else ""
        )
        parts = [
            self.status_html.value,
            self.error_html.value,
            graph,
            self.writes_html.value,
            self.inspector_html.value,
        ]
        return _static.strip_test_ids("".join(p for p in parts if p))
