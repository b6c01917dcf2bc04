"""The Debugger's state inspector: HTML for a state as a collapsible tree, the change of each key
from the previous checkpoint, the writes of one superstep, a side-by-side comparison of two
checkpoints, and an error.

Pure functions from values to HTML strings (shown through ``ipywidgets.HTML``), so they are
cheap to test and need no browser. Every value is escaped; big values cost a bounded amount:
containers are cut after :data:`MAX_ITEMS` items and :data:`MAX_DEPTH` levels, long texts show
their first :data:`SHORT` characters with the rest behind a ``<details>`` expander.
"""

from __future__ import annotations

import dataclasses
import html
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from agentgraph_nb.errors import node_failure

__all__ = [
    "INSPECTOR_CSS",
    "render_compare",
    "render_error",
    "render_state",
    "render_value",
    "render_writes",
]

#: Characters of a scalar shown before the rest is folded away.
SHORT = 120
#: Characters of a long text shown at all once expanded.
LONG = 20_000
#: Items of a container shown before "... N more".
MAX_ITEMS = 100
#: Levels of nested containers shown before falling back to a short repr.
MAX_DEPTH = 6

_DOT = " \u00b7 "
_PSEUDO_WRITERS = {"__input__": "input", "__update__": "edit", "__start__": "start"}

INSPECTOR_CSS = """<style>
.agn-insp { font: 12px/1.45 var(--jp-code-font-family, ui-monospace, SFMono-Regular, Menlo, monospace);
  color: var(--jp-content-font-color1, #1f2328); }
.agn-insp ul { list-style: none; margin: 0; padding-left: 1.1em; }
.agn-insp > ul { padding-left: 0; }
.agn-insp li { margin: 1px 0; }
.agn-insp summary { cursor: pointer; }
.agn-insp .agn-k { color: #0550ae; }
.agn-insp .agn-t { color: #6e7781; }
.agn-insp .agn-s { color: #0a3069; }
.agn-insp .agn-n { color: #953800; }
.agn-insp pre { margin: 2px 0; white-space: pre-wrap; word-break: break-word; }
.agn-insp .agn-head { font-weight: 600; margin: 2px 0 4px; }
.agn-insp .agn-sub { color: #6e7781; font-weight: 400; }
.agn-insp .agn-key.agn-changed { background: #fff8c5; }
.agn-insp .agn-key.agn-added { background: #dafbe1; }
.agn-insp .agn-key.agn-removed { background: #ffebe9; text-decoration: line-through; }
.agn-insp .agn-badge { display: inline-block; font-size: 11px; padding: 0 5px; margin-left: 4px;
  border-radius: 8px; background: #eaeef2; color: #57606a; text-decoration: none; }
.agn-insp .agn-was { color: #6e7781; }
.agn-insp .agn-write { border-left: 3px solid #d0d7de; padding-left: 6px; margin: 3px 0; }
.agn-insp table { border-collapse: collapse; width: 100%; }
.agn-insp th, .agn-insp td { border: 1px solid #d0d7de; padding: 2px 6px; vertical-align: top;
  text-align: left; }
.agn-insp tr.agn-same td { color: #8c959f; }
.agn-insp tr.agn-changed td.agn-status { background: #fff8c5; }
.agn-insp tr.agn-added td.agn-status { background: #dafbe1; }
.agn-insp tr.agn-removed td.agn-status { background: #ffebe9; }
.agn-insp.agn-error { color: #82071e; background: #ffebe9; border: 1px solid #ff818266;
  padding: 4px 8px; border-radius: 4px; }
.agn-insp.agn-note { color: #57606a; }
</style>"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # a broken __repr__ must not break the inspector
        return f"<{type(value).__name__}>"


def _fields(value: Any) -> tuple[str, Mapping[str, Any]] | None:
    """A record-like object as (type name, its fields), or None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value).__name__, {
            f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)
        }
    dump = getattr(value, "model_dump", None)  # pydantic v2
    if callable(dump) and not isinstance(value, type):
        try:
            data = dump()
        except Exception:
            return None
        if isinstance(data, Mapping):
            return type(value).__name__, data
    return None


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        text, cls = repr(value) if len(value) <= SHORT and "\n" not in value else value, "agn-s"
    elif isinstance(value, (bool, int, float)) or value is None:
        text, cls = repr(value), "agn-n"
    else:
        text, cls = _safe_repr(value), ""
    if len(text) <= SHORT and "\n" not in text:
        return f'<span class="{cls}">{_e(text)}</span>'
    head = text[:SHORT].split("\n", 1)[0]
    full = (
        text
        if len(text) <= LONG
        else text[:LONG] + f"\u2026 ({len(text) - LONG:,} more characters)"
    )
    return (
        f'<details class="agn-long"><summary><span class="{cls}">{_e(head)}\u2026</span> '
        f'<span class="agn-t">({len(text):,} chars)</span></summary><pre>{_e(full)}</pre></details>'
    )


def render_value(value: Any, *, depth: int = 0, open_levels: int = 1) -> str:
    """One value as HTML: scalars inline (long ones folded), containers as ``<details>`` trees.

    Args:
        value: any Python value.
        depth: the nesting level (for the depth limit).
        open_levels: how many levels of containers start expanded.
    """
    record = _fields(value)
    if record is not None:
        name, items = record
        return _container(
            f"{name} {{{_count(len(items), 'field')}}}", list(items.items()), depth, open_levels
        )
    if isinstance(value, Mapping):
        return _container(
            f"{{{_count(len(value), 'key')}}}" if value else "{}",
            list(value.items()),
            depth,
            open_levels,
        )
    if isinstance(value, (list, tuple, set, frozenset)):
        seq = sorted(value, key=_safe_repr) if isinstance(value, (set, frozenset)) else list(value)
        brackets = "[]" if isinstance(value, list) else "()" if isinstance(value, tuple) else "{}"
        label = f"{brackets[0]}{_count(len(seq), 'item')}{brackets[1]}" if seq else brackets
        return _container(label, list(enumerate(seq)), depth, open_levels)
    return _scalar(value)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _container(label: str, items: Sequence[tuple[Any, Any]], depth: int, open_levels: int) -> str:
    if not items:
        return f'<span class="agn-t">{_e(label)}</span>'
    if depth >= MAX_DEPTH:
        return _scalar(_ShortRepr(items))
    rows = []
    for k, v in items[:MAX_ITEMS]:
        key = f"[{k}]" if isinstance(k, int) else _e(k)
        rows.append(
            f'<li><span class="agn-k">{key}</span>: {render_value(v, depth=depth + 1, open_levels=open_levels - 1)}</li>'
        )
    if len(items) > MAX_ITEMS:
        rows.append(f'<li class="agn-t">\u2026 {len(items) - MAX_ITEMS:,} more</li>')
    opened = " open" if open_levels > 0 and len(items) <= 20 else ""
    return f'<details{opened}><summary class="agn-t">{_e(label)}</summary><ul>{"".join(rows)}</ul></details>'


class _ShortRepr:
    """Stands for a too-deep container: repr of its first items only."""

    def __init__(self, items: Sequence[tuple[Any, Any]]) -> None:
        self.items = items

    def __repr__(self) -> str:
        return (
            "{"
            + ", ".join(f"{k!r}: {_safe_repr(v)[:40]}" for k, v in self.items[:8])
            + (", \u2026}" if len(self.items) > 8 else "}")
        )


def _writer_names(writers: Sequence[str]) -> str:
    return ", ".join(_PSEUDO_WRITERS.get(w, w) for w in writers)


def render_state(
    values: Mapping[str, Any],
    diff: Any = None,
    *,
    title: str = "",
    keys: Sequence[str] = (),
) -> str:
    """The state as a tree, one entry per key; keys the step changed are highlighted with who
    wrote them, the key's reducer and (folded) the value before.

    Args:
        values: the state at the selected checkpoint.
        diff: a :class:`~agentgraph_nb.graph.session.StateDiff` from the previous checkpoint.
        title: a heading line.
        keys: the schema's keys, to list (greyed) the keys not set yet.
    """
    changes = {c.key: c for c in (diff.changes if diff is not None else ())}
    rows = []
    order = list(dict.fromkeys([*values, *(k for k in changes if k not in values)]))
    for key in order:
        change = changes.get(key)
        status = change.status if change is not None else "same"
        cls = f"agn-key agn-{status}"
        value = (
            values.get(key) if key in values else (change.before if change is not None else None)
        )
        badge = ""
        was = ""
        if change is not None:
            bits = [status]
            if change.writers:
                bits.append(f"by {_writer_names(change.writers)}")
            if change.reducer:
                bits.append(f"reducer {change.reducer}")
            badge = f' <span class="agn-badge" data-testid="inspector-change-{_e(key)}">{_e(_DOT.join(bits))}</span>'
            if change.status == "changed":
                was = f'<details class="agn-was"><summary>before</summary>{render_value(change.before, open_levels=0)}</details>'
        rows.append(
            f'<li class="{cls}" data-key="{_e(key)}" data-status="{status}" data-testid="inspector-key-{_e(key)}">'
            f'<span class="agn-k">{_e(key)}</span>{badge}: {render_value(value)}{was}</li>'
        )
    unset = [k for k in keys if k not in values and k not in changes]
    if unset:
        rows.append(f'<li class="agn-t">not set: {_e(", ".join(unset))}</li>')
    if not rows:
        rows.append('<li class="agn-t">(empty state)</li>')
    head = f'<div class="agn-head">{_e(title)}</div>' if title else ""
    return f'{INSPECTOR_CSS}<div class="agn-insp" data-testid="inspector">{head}<ul>{"".join(rows)}</ul></div>'


def render_writes(writes: Mapping[str, Any], *, step: int) -> str:
    """What each node wrote at one superstep (several nodes when they ran in parallel)."""
    if not writes:
        return f'{INSPECTOR_CSS}<div class="agn-insp agn-note">Step {step}: no writes.</div>'
    real = [w for w in writes if w not in _PSEUDO_WRITERS]
    if len(real) > 1:
        head = f"Step {step}: {len(real)} nodes ran in parallel"
    elif real:
        head = f"Step {step}: {real[0]} ran"
    else:
        head = f"Step {step}: {_writer_names(list(writes))}"
    blocks = []
    for node, update in writes.items():
        updates = update if isinstance(update, list) else [update]
        body = "".join(render_value(u, open_levels=2) for u in updates)
        blocks.append(
            f'<div class="agn-write" data-node="{_e(node)}" data-testid="inspector-write-{_e(node)}">'
            f'<span class="agn-k">{_e(_PSEUDO_WRITERS.get(node, node))}</span> wrote {body}</div>'
        )
    return f'{INSPECTOR_CSS}<div class="agn-insp" data-testid="inspector-writes"><div class="agn-head">{_e(head)}</div>{"".join(blocks)}</div>'


def render_compare(
    diff: Any,
    a_values: Mapping[str, Any],
    b_values: Mapping[str, Any],
    *,
    a_label: str = "a",
    b_label: str = "b",
) -> str:
    """Two checkpoints side by side: one row per key (key, a, b, status), changed keys first."""
    changed = {c.key: c for c in diff.changes}
    rows = []
    for key, c in changed.items():
        a = "" if key not in a_values else render_value(a_values[key], open_levels=1)
        b = "" if key not in b_values else render_value(b_values[key], open_levels=1)
        rows.append(
            f'<tr class="agn-{c.status}" data-key="{_e(key)}"><td class="agn-k">{_e(key)}</td><td>{a}</td>'
            f'<td>{b}</td><td class="agn-status">{_e(c.status)}</td></tr>'
        )
    for key in dict.fromkeys([*a_values, *b_values]):
        if key in changed:
            continue
        v = render_value(a_values.get(key, b_values.get(key)), open_levels=0)
        rows.append(
            f'<tr class="agn-same" data-key="{_e(key)}"><td class="agn-k">{_e(key)}</td><td>{v}</td><td>{v}</td><td>same</td></tr>'
        )
    summary = (
        f"{_count(len(changed), 'key')} differ{'s' if len(changed) == 1 else ''}"
        if changed
        else "no differences"
    )
    return (
        f'{INSPECTOR_CSS}<div class="agn-insp" data-testid="compare"><div class="agn-head">{_e(summary)}</div>'
        f"<table><thead><tr><th>key</th><th>{_e(a_label)}</th><th>{_e(b_label)}</th><th>status</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def render_error(exc: BaseException | None, *, message: str = "") -> str:
    """An error (type, message, where it failed: node/step/attempt from
    :func:`~agentgraph_nb.node_failure`, the chain of causes and a folded traceback), or a plain
    message; "" when there is neither."""
    if exc is None and not message:
        return ""
    if exc is None:
        return f'{INSPECTOR_CSS}<div class="agn-insp agn-error" data-testid="debugger-error">{_e(message)}</div>'
    lines = [f"<b>{_e(type(exc).__name__)}</b>: {_e(exc)}"]
    failure = node_failure(exc)
    if failure is not None:
        # routing failures happen after the node's one successful attempt: no attempt to name
        where = [f"node {failure.node}", f"step {failure.step}"] + (
            [f"attempt {failure.attempt}"] if failure.during == "node" else ["while routing after it"]
        )
    else:
        where = [f"{k} {getattr(exc, k)}" for k in ("node", "step") if getattr(exc, k, None) not in (None, "")]
    if where:
        lines.append(f'<span class="agn-sub">{_e(", ".join(where))}</span>')
    cause = exc.__cause__ or exc.__context__
    seen = {id(exc)}
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        lines.append(f"caused by <b>{_e(type(cause).__name__)}</b>: {_e(cause)}")
        cause = cause.__cause__ or cause.__context__
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    lines.append(f"<details><summary>traceback</summary><pre>{_e(tb[-LONG:])}</pre></details>")
    if message:
        lines.insert(0, _e(message))
    return f'{INSPECTOR_CSS}<div class="agn-insp agn-error" data-testid="debugger-error">{"<br>".join(lines)}</div>'
