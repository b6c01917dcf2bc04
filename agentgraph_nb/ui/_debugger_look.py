"""How the Debugger looks and talks: its stylesheet (the GraphView's look, applied to the
ipywidgets around it) and the status line, which says where the run is in the user's words
("Paused before `search` (breakpoint) — step 3", "Waiting for your answer: Publish?",
"Finished in 4 steps"), never in the session's repr."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from agentgraph_nb.errors import node_failure

__all__ = ["DEBUGGER_CSS", "KEYS", "status_line"]

#: Keyboard shortcuts of the Debugger (with the focus anywhere inside it): key -> command.
KEYS = {"n": "step", "c": "continue", "p": "back"}

_ACCENT = "#1a73e8"

# Scoped to the Debugger's element; selectors carry enough weight to win over the ipywidgets
# defaults (JupyterLab, VS Code and solara all load those first).
DEBUGGER_CSS = f"""<style>
.agentgraph-debugger {{ gap: 6px; font-size: 12px; }}
.agentgraph-debugger .agn-dbg-bar {{
  display: flex; flex-wrap: wrap; align-items: center; gap: 6px; padding: 5px 8px;
  border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 6px;
  background: var(--jp-layout-color1, #fafafa);
}}
.agentgraph-debugger .agn-dbg-bar > .widget-html {{ margin: 0; }}
.agentgraph-debugger button.widget-button,
.agentgraph-debugger button.widget-toggle-button {{
  height: 26px; min-width: 0; margin: 0; padding: 0 10px; font-size: 12px; line-height: 24px;
  border: 1px solid var(--jp-border-color1, #c4c7c5); border-radius: 4px; box-shadow: none;
  background: var(--jp-layout-color0, #ffffff); color: var(--jp-ui-font-color1, #202124);
}}
.agentgraph-debugger button.widget-button:hover:enabled {{ background: var(--jp-layout-color2, #eeeeee); }}
.agentgraph-debugger button.widget-button:focus-visible {{ outline: 2px solid {_ACCENT}; outline-offset: 1px; }}
.agentgraph-debugger button.widget-button:disabled {{ opacity: 0.45; cursor: default; }}
.agentgraph-debugger button.widget-button i.fa {{ margin-right: 5px; font-size: 11px; }}
.agentgraph-debugger button.agentgraph-continue,
.agentgraph-debugger button.agentgraph-resume {{ background: {_ACCENT}; border-color: {_ACCENT}; color: #ffffff; }}
.agentgraph-debugger button.agentgraph-continue:hover:enabled,
.agentgraph-debugger button.agentgraph-resume:hover:enabled {{ background: #1765cc; }}
.agentgraph-debugger button.agentgraph-stop:enabled {{ color: #b3261e; border-color: #e6a29c; }}
.agentgraph-debugger .agn-kbd {{
  display: inline-block; min-width: 14px; padding: 0 3px; margin-left: 5px; border: 1px solid #c4c7c5;
  border-bottom-width: 2px; border-radius: 3px; font: 10px/13px var(--jp-code-font-family, monospace);
  color: #5f6368; text-align: center; background: #ffffff;
}}
.agentgraph-debugger .agentgraph-run-to-target select {{ height: 26px; font-size: 12px; }}
.agentgraph-debugger .agentgraph-run-to-target label {{ font-size: 12px; }}
.agentgraph-debugger .agn-dbg-status {{
  display: flex; align-items: center; gap: 8px; padding: 5px 10px; border-radius: 6px;
  border-left: 4px solid #9aa0a6; background: var(--jp-layout-color1, #f8f9fa); font-size: 13px;
  color: var(--jp-ui-font-color1, #202124);
}}
.agentgraph-debugger .agn-dbg-status code {{ font-size: 12px; padding: 0 3px; border-radius: 3px; background: rgba(0,0,0,0.06); }}
.agentgraph-debugger .agn-dbg-status[data-state="ready"] {{ border-left-color: #9aa0a6; }}
.agentgraph-debugger .agn-dbg-status[data-state="running"] {{ border-left-color: #1e88e5; background: #eef5fd; }}
.agentgraph-debugger .agn-dbg-status[data-state="paused"] {{ border-left-color: #d93025; background: #fdf3f2; }}
.agentgraph-debugger .agn-dbg-status[data-state="stepped"] {{ border-left-color: #3c4043; }}
.agentgraph-debugger .agn-dbg-status[data-state="waiting"] {{ border-left-color: #9334e6; background: #f6effd; }}
.agentgraph-debugger .agn-dbg-status[data-state="failed"] {{ border-left-color: #d93025; background: #fdecea; }}
.agentgraph-debugger .agn-dbg-status[data-state="finished"] {{ border-left-color: #34a853; background: #eef7f0; }}
.agentgraph-debugger .agn-dbg-status .agn-dbg-where {{ flex: 1; }}
.agentgraph-debugger .agn-dbg-status .agn-dbg-more {{ color: var(--jp-ui-font-color2, #5f6368); font-size: 12px; }}
.agentgraph-debugger .agn-dbg-keys {{ color: var(--jp-ui-font-color2, #5f6368); font-size: 11px; white-space: nowrap; }}
.agentgraph-debugger .agentgraph-breakpoints {{ font-size: 12px; color: var(--jp-ui-font-color1, #3c4043); }}
.agentgraph-debugger .agentgraph-breakpoints code {{ color: #b3261e; }}
.agentgraph-debugger .agn-dbg-side .lm-TabBar-tab, .agentgraph-debugger .agn-dbg-side .p-TabBar-tab {{
  font-size: 12px; min-width: 0; flex: 0 1 auto; padding: 0 12px;
}}
.agentgraph-debugger .agn-dbg-side .widget-tab-contents {{ padding: 6px; overflow: auto; }}
.agentgraph-debugger .agentgraph-history .widget-readout {{ min-width: 150px; text-align: left; }}
.agentgraph-debugger .agn-dbg-title {{ font-weight: 600; font-size: 12px; margin: 2px 0 4px; }}
</style>"""


def _code(name: str) -> str:
    return f"<code>{html.escape(name)}</code>"


def _names(names: Sequence[str]) -> str:
    return ", ".join(_code(n) for n in names)


def question_of(payload: Any) -> str:
    """The question an ``interrupt()`` payload asks: the string itself, or its ``question`` /
    ``message`` / ``prompt`` entry; "" when it has none."""
    if isinstance(payload, str):
        return payload
    if isinstance(payload, Mapping):
        for key in ("question", "message", "prompt"):
            if isinstance(payload.get(key), str):
                return str(payload[key])
    return ""


def _short(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def status_line(
    *,
    running: bool,
    step: int,
    next_nodes: Sequence[str],
    interrupts: Sequence[Any],
    failed: str | None,
    error: BaseException | None,
    at_latest: bool,
    note: str = "",
) -> tuple[str, str]:
    """``(state, html)``: where the run is, in words, for the Debugger's status bar.

    ``state`` is one of ready, running, stepped, paused, waiting, failed, finished (the bar's
    colour); ``html`` names nodes in ``<code>``.
    """
    during = [i for i in interrupts if getattr(i, "when", "") == "during"]
    before = [i.node for i in interrupts if getattr(i, "when", "") == "before"]
    after = [i.node for i in interrupts if getattr(i, "when", "") == "after"]
    more = ""
    if running:
        state, where = "running", f"Running from step {step}\u2026 Stop cancels it."
    elif during:
        state = "waiting"
        asks = [q for q in (question_of(i.value) for i in during) if q]
        if asks:
            where = "Waiting for your answer: " + html.escape(_short(asks[0]))
        else:
            where = f"Waiting for your answer to {_names([i.node for i in during])}"
        more = "Fill in the form and press Resume."
    elif before:
        state, where = "paused", f"Paused before {_names(before)} (breakpoint) \u2014 step {step}"
    elif after:
        state, where = "paused", f"Paused after {_names(after)} (breakpoint) \u2014 step {step}"
    elif failed and at_latest:
        state = "failed"
        what = f"{type(error).__name__}" if error is not None else "an error"
        failure = node_failure(error)
        at = failure.step if failure is not None else None
        where = f"{_code(failed)} failed at step {at if isinstance(at, int) else step} ({html.escape(what)})"
        more = "Fix it and Continue: the run resumes without re-running the nodes that finished."
    elif not next_nodes:
        state = "finished"
        where = f"Finished in {step} step{'' if step == 1 else 's'}"
    elif step == 0:
        state = "ready"
        where = f"Ready: {_names(next_nodes)} run{'s' if len(next_nodes) == 1 else ''} first"
        more = "Step runs one superstep; Continue runs to a breakpoint or the end."
    else:
        state = "stepped"
        where = f"Paused at step {step} \u2014 next: {_names(next_nodes)}"
    if not running and not at_latest and next_nodes:
        more = "Viewing an earlier checkpoint: Step or Continue from here starts a new branch."
    if note:
        more = f"{html.escape(note)} {more}".strip()
    return state, where if not more else f'{where}. <span class="agn-dbg-more">{more}</span>'
