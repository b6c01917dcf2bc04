"""The tutorial notebooks as stored: small, without widget state, executed, with golden cells.

The notebooks themselves run under nbval (``pytest --nbval-lax ... notebooks/``); these tests check
what nbval does not: how they are stored. Re-execute them with
``python notebooks/execute_notebooks.py`` after editing.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = [
    "01_quickstart",
    "02_routing",
    "03_parallel",
    "04_failures",
    "05_persistence",
    "06_debugging",
    "07_metrics",
    "08_multi_agent",
    "09_agents",
    "10_multi_agent_teams",
    "11_durable_state",
    "12_functional_api",
    "13_control_flow",
    "14_templates",
    "15_scale_out",
]
MAX_BYTES = 200_000
WIDGET_MIMES = ("application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json")
PATHS = [p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))]


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell: dict[str, Any]) -> str:
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def marker(cell: dict[str, Any]) -> str | None:
    lines = source(cell).lstrip().splitlines()
    first = lines[0].strip().replace(" ", "") if lines else ""
    m = re.fullmatch(r"#(NBVAL_[A-Z_]+)", first)
    return m.group(1) if m else None


def text_of(out: dict[str, Any]) -> str:
    if out["output_type"] == "stream":
        t = out["text"]
    elif out["output_type"] == "error":
        t = "\n".join(out.get("traceback", []))
    else:
        t = out.get("data", {}).get("text/plain", "")
    return "".join(t) if isinstance(t, list) else t


def test_the_tutorials_are_there_in_order() -> None:
    assert [p.stem for p in PATHS] == EXPECTED


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_stored_small_and_without_widget_state(path: Path) -> None:
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size} bytes"
    nb = load(path)
    assert "widgets" not in nb["metadata"], "widget state stored: re-run notebooks/execute_notebooks.py"
    for cell in code_cells(nb):
        assert "execution" not in cell.get("metadata", {}), "timing metadata stored"
        for out in cell.get("outputs", []):
            assert not any(m in out.get("data", {}) for m in WIDGET_MIMES), (
                f"{path.name}: a widget view is stored (it cannot render without the kernel): "
                f"{source(cell)[:60]!r}"
            )


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_executed_top_to_bottom_without_errors(path: Path) -> None:
    nb = load(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    counts = []
    for cell in code_cells(nb):
        if marker(cell) == "NBVAL_SKIP":
            assert not cell.get("outputs"), f"{path.name}: a skipped cell has stored outputs"
            continue
        assert cell.get("execution_count") is not None, f"{path.name}: not executed: {source(cell)[:60]!r}"
        counts.append(cell["execution_count"])
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"{path.name}: stored error in {source(cell)[:60]!r}"
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: not run in order in one fresh kernel"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_golden_cells_are_present_and_quiet(path: Path) -> None:
    """Golden cells (``# NBVAL_CHECK_OUTPUT``) print deterministic traces: they have stored output,
    and none on stderr (log records and warnings change with logging setup, not with behaviour)."""
    golden = [c for c in code_cells(load(path)) if marker(c) == "NBVAL_CHECK_OUTPUT"]
    assert len(golden) >= 3, f"{path.name}: only {len(golden)} golden cells"
    for cell in golden:
        outs = cell.get("outputs", [])
        assert outs, f"{path.name}: golden cell without stored output: {source(cell)[:60]!r}"
        assert not any(o.get("name") == "stderr" for o in outs), (
            f"{path.name}: golden cell writes to stderr: {source(cell)[:60]!r}"
        )
        assert not any("image/svg+xml" in o.get("data", {}) for o in outs), (
            f"{path.name}: golden cell compares a drawing: {source(cell)[:60]!r}"
        )


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_skipped_cells_say_why(path: Path) -> None:
    for cell in code_cells(load(path)):
        if marker(cell) == "NBVAL_SKIP":
            assert "TODO" in source(cell), f"{path.name}: NBVAL_SKIP without a TODO saying when to enable it"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_reads_as_a_tutorial(path: Path) -> None:
    nb = load(path)
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown" and source(first).startswith(f"# {path.stem[:2]} · ")
    md = sum(c["cell_type"] == "markdown" for c in nb["cells"])
    assert md >= len(code_cells(nb)) // 2, f"{path.name}: too little explanation"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_outputs_do_not_leak_local_paths(path: Path) -> None:
    leaks = [str(ROOT), str(Path.home()), "/tmp/"]
    for cell in code_cells(load(path)):
        for out in cell.get("outputs", []):
            text = text_of(out)
            for leak in leaks:
                assert leak not in text, f"{path.name}: output mentions {leak!r}: {source(cell)[:60]!r}"


def test_sanitize_file_parses_and_masks_ids_and_times() -> None:
    cfg = (NOTEBOOKS / "nbval_sanitize.cfg").read_text()
    pairs = re.findall(r"^regex: (.*)$\n^replace: (.*)$", cfg, flags=re.MULTILINE)  # nbval's own parser
    sections = re.findall(r"^\[\w+\]$", cfg, flags=re.MULTILINE)
    assert len(pairs) == len(sections) >= 5  # every section has a regex and a replacement

    def sanitize(s: str) -> str:
        for rx, rep in pairs:
            s = re.sub(rx, rep, s)
        return s

    a = ("StateSnapshot(checkpoint_id='18eae21e24e2713e-1959-000003', run_id='905ca7ee992cfc0cddba27a8c8238e2b', "
         "created_at='2026-11-24T05:04:28.120984+00:00') id='bba3f77127e06911' <object at 0x7f6eef336500> "
         "took 0.31 s, 12 ms, thread 'debug-1a2b3c4d', uuid 123e4567-e89b-12d3-a456-426614174000")
    b = ("StateSnapshot(checkpoint_id='18eae3247459e22d-6048-000002', run_id='e851566529fe7e811ecf46bed9f52770', "
         "created_at='2027-01-02T00:00:00.5+00:00') id='8184ef1f7f368594' <object at 0x55d1c0ffee00> "
         "took 1.2 s, 3 ms, thread 'debug-99999999', uuid 00000000-0000-0000-0000-000000000000")
    assert sanitize(a) == sanitize(b)
    kept = "3 sources, 40 runs, step 4, revision 3, score 7/10"
    assert sanitize(kept) == kept


def _executor() -> Any:
    spec = importlib.util.spec_from_file_location("execute_notebooks", NOTEBOOKS / "execute_notebooks.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_strip_widgets_keeps_static_fallbacks_and_drops_stale_progress_bars() -> None:
    ex = _executor()
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    nb: dict[str, Any] = {
        "metadata": {"widgets": {"state": {}}},
        "cells": [
            {"cell_type": "code", "metadata": {"execution": {}}, "outputs": [
                {"output_type": "display_data", "metadata": {},
                 "data": {"application/vnd.jupyter.widget-view+json": view, "image/svg+xml": "<svg/>",
                          "text/plain": "<CompiledGraph 'g'>"}},
                {"output_type": "display_data", "metadata": {},
                 "data": {"application/vnd.jupyter.widget-view+json": view,
                          "text/plain": "g:   0%|          | 0/40 [00:00<?, ?run/s]"}},
                {"output_type": "display_data", "metadata": {},
                 "data": {"application/vnd.jupyter.widget-view+json": view, "text/plain": "FigureWidget(" + "x" * 10_000}},
                {"output_type": "stream", "name": "stdout", "text": "kept\n"},
            ]},
        ],
    }
    assert ex.strip_widgets(nb) == 3
    outs = nb["cells"][0]["outputs"]
    assert "widgets" not in nb["metadata"] and "execution" not in nb["cells"][0]["metadata"]
    assert outs[0]["data"] == {"image/svg+xml": "<svg/>", "text/plain": "<CompiledGraph 'g'>"}
    assert len(outs) == 3 and len(outs[1]["data"]["text/plain"]) < 300 and outs[2]["text"] == "kept\n"


def test_skip_marker_matches_nbval() -> None:
    ex = _executor()
    assert ex.is_skipped({"source": "# NBVAL_SKIP\nx = 1"})
    assert ex.is_skipped({"source": "#NBVAL_SKIP"})
    assert not ex.is_skipped({"source": "x = 1  # NBVAL_SKIP"})


WIDGET_TEXT = re.compile(r"^(<CompiledGraph '|GraphView\(|Timeline\(|Dashboard\(|Debugger\()")


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_every_widget_leaves_a_static_picture(path: Path) -> None:
    """What nbviewer and GitHub show of a widget: the static twin stored before its text (an SVG
    image, plus the Debugger's state as text), without the rule that hides it beside a live view."""
    for cell in code_cells(load(path)):
        outs = cell.get("outputs", [])
        for i, out in enumerate(outs):
            if out["output_type"] != "display_data" or not WIDGET_TEXT.match(text_of(out)):
                continue  # (a printed repr, or a DebugSession, is not a widget)
            assert i > 0, f"{path.name}: no static picture before {text_of(out)[:60]!r}"
            html = outs[i - 1].get("data", {}).get("text/html", "")
            html = "".join(html) if isinstance(html, list) else html
            assert "data-agentgraph-static" in html and 'src="data:image/svg+xml;base64,' in html, (
                f"{path.name}: no static picture before {text_of(out)[:60]!r}"
            )
            assert "<style>:root" not in html and not re.search(r"agentgraph-live-[0-9a-f]{8}", html)


def test_strip_widgets_keeps_twins_without_their_rule_and_with_stable_ids() -> None:
    ex = _executor()
    twin = (
        "<style>:root:has(.agentgraph-live-0123456789abcdef0123456789abcdef .js-plotly-plot) "
        ".jp-OutputArea-child:has(.agentgraph-static-0123456789abcdef0123456789abcdef){display:none}"
        '</style><div class="agentgraph-static agentgraph-static-0123456789abcdef0123456789abcdef" '
        'data-agentgraph-static="timeline"><img src="data:image/svg+xml;base64,AA=="></div>'
    )
    nb: dict[str, Any] = {"metadata": {}, "cells": [{"cell_type": "code", "metadata": {}, "outputs": [
        {"output_type": "display_data", "metadata": {}, "data": {"text/html": twin}},
        {"output_type": "display_data", "metadata": {}, "data": {
            "application/vnd.jupyter.widget-view+json": {"model_id": "0123"}, "text/plain": "Timeline(graph 'g': no runs yet)"}},
    ]}]}  # fmt: skip
    ex.strip_widgets(nb)
    first, second = nb["cells"][0]["outputs"]
    assert first["data"]["text/html"] == (
        '<div class="agentgraph-static agentgraph-static-1" data-agentgraph-static="timeline">'
        '<img src="data:image/svg+xml;base64,AA=="></div>'
    )
    assert second["data"] == {"text/plain": "Timeline(graph 'g': no runs yet)"}
