"""The dashboard, Python side: what its panels hold after known runs (history included), that
nothing it sends can break the kernel's JSON, the log latency axis, the tokens panel, and its
static picture."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from ipywidgets.widgets.widget import _remove_buffers
from test_timeline import S, chain, fan, wait_until

from agentgraph_nb import END, START, InvalidInputError, StateGraph
from agentgraph_nb.ui.dashboard import (
    PANELS,
    T_ERR,
    T_P50,
    T_P99,
    T_RATE,
    T_RETRY,
    T_TIN,
    T_TOUT,
    Dashboard,
)


@pytest.fixture
def closing() -> Any:
    made: list[Any] = []
    yield made.append
    for w in made:
        w.close()


def sent_state(widget: Any) -> dict[str, Any]:
    """What the widget's comm carries (its synced state, binary buffers taken out), checked to
    be strict JSON as the kernel sends it (no NaN or infinity)."""
    state, _, _ = _remove_buffers(widget.get_state())
    json.dumps(state, allow_nan=False)
    return state


def test_panels_show_latency_errors_retries_and_throughput(closing: Any) -> None:
    app = fan(fail_times=1)
    dash = Dashboard(app, bin_seconds=0.25)
    closing(dash)
    n0 = dash.updates_sent
    for _ in range(3):
        app.invoke({})
    dash.refresh()
    assert dash.updates_sent > n0
    fig = dash.figure
    names = ["plan", "slow", "flaky", "join"]
    for i in range(3):  # p50, p90, p99
        assert list(fig.data[T_P50 + i].x) == names
        assert np.isfinite(np.asarray(fig.data[T_P50 + i].y, dtype=float)).all()
    p50 = np.asarray(fig.data[T_P50].y, dtype=float)
    p99 = np.asarray(fig.data[T_P99].y, dtype=float)
    assert (p99 >= p50).all()
    assert p50[names.index("slow")] >= 10.0  # ms: it sleeps 10 ms
    rows = {r["node"]: r for r in app.metrics.rows()}
    assert np.asarray(fig.data[T_ERR].y).tolist() == [rows[n]["errors"] for n in names]
    assert np.asarray(fig.data[T_RETRY].y).tolist() == [0, 0, 1, 0]  # the one retry of flaky
    rate = np.asarray(fig.data[T_RATE].y, dtype=float)
    assert rate.sum() * 0.25 == pytest.approx(3)  # runs per second x bin width = runs
    assert "3 completed" in dash._header.value and "0 in flight" in dash._header.value
    assert repr(dash) == "Dashboard(graph 'fan': 4 nodes, 3 runs completed, 0 failed)"
    # a view opened now starts from the current figure, not from the one at creation
    bundle = dash._repr_mimebundle_()
    assert bundle["text/plain"] == repr(dash)
    assert list(dash.figure._widget_data[T_RETRY]["y"]) == [0, 0, 1, 0]


def test_latency_is_on_a_log_axis_and_titles_do_not_meet_legends(closing: Any) -> None:
    dash = Dashboard(fan(fail_times=0))
    closing(dash)
    layout = dash.figure.layout
    assert layout.yaxis.type == "log" and layout.yaxis.title.text == "ms"
    titles = [a.text for a in layout.annotations]
    assert titles[:3] == [f"<b>{t}</b>" for t in PANELS[:3]]
    assert titles[3] == "<b>run duration (ms, log scale): how many runs</b>"  # no token usage yet
    # each panel: its title on a line of its own (shifted up), its legend on the line below,
    # both from the panel's left edge, the plot under them
    left = {round(a.x, 3) for a in layout.annotations}
    assert left == {0.0, 0.545} and all(a.xanchor == "left" for a in layout.annotations)
    assert all(a.yshift == 30 and a.yanchor == "bottom" for a in layout.annotations)
    tops = sorted({round(a.y, 3) for a in layout.annotations})
    for legend, x, y in (
        (layout.legend, 0.0, tops[1]),
        (layout.legend2, 0.0, tops[0]),
        (layout.legend3, 0.545, tops[0]),
    ):
        assert legend.xanchor == "left" and legend.yanchor == "bottom"
        assert (legend.x, legend.y) == pytest.approx((x, y))
    assert layout.modebar.orientation == "v"  # the toolbar stays in the right margin


def test_nothing_sent_holds_nan_before_or_after_runs(closing: Any) -> None:
    """The kernel's JSON cannot carry NaN: a node that never ran has no latency yet, and that
    must travel as a gap in a float buffer, not as NaN in a list (which printed "Message
    serialization failed ... Out of range float values" on every display)."""
    app = fan(fail_times=0)
    dash = Dashboard(app)
    closing(dash)
    dash._repr_mimebundle_()
    sent_state(dash.figure)
    sent_state(dash)
    app.invoke({})
    dash.refresh()
    dash._repr_mimebundle_()
    state = sent_state(dash.figure)
    assert state["_widget_data"]  # the figure a new view starts from


def test_throughput_shows_runs_from_before_the_dashboard_opened(closing: Any) -> None:
    app = chain()
    app.batch([{}] * 30, max_concurrency=4)
    time.sleep(0.05)
    dash = Dashboard(app)  # opened after the batch
    closing(dash)
    rate = np.asarray(dash.figure.data[T_RATE].y, dtype=float)
    xs, _, width = dash._picture["throughput"]
    assert rate.sum() * width == pytest.approx(30)
    assert len(xs) >= 8  # the batch spread over the panel, not one spike on an empty axis
    assert "30 completed" in dash._header.value and "run p50" in dash._header.value


def test_runs_in_flight_are_counted_in_the_header(closing: Any) -> None:
    gate = threading.Event()
    g = StateGraph(S, name="wait")
    g.add_node("w", lambda s: (gate.wait(5), {"log": ["w"]})[1])
    g.add_edge(START, "w").add_edge("w", END)
    app = g.compile(checkpointer=None)
    dash = app.dashboard()
    closing(dash)
    threads = [threading.Thread(target=app.invoke, args=({},)) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: dash.refresh() and "2 in flight" in dash._header.value)
    finally:
        gate.set()
        for t in threads:
            t.join()
    dash.refresh()
    assert "0 in flight" in dash._header.value


class _UsageMetrics:
    """The engine's metrics, with token usage per node as chat models will report it."""

    def __init__(self, real: Any, usage: dict[str, tuple[int, int, float]]) -> None:
        self._real, self._usage = real, usage
        self.runs = real.runs

    def rows(self) -> list[dict[str, Any]]:
        return self._real.rows()

    def node(self, name: str) -> Any:
        st = self._real.node(name)
        tin, tout, cost = self._usage.get(name, (0, 0, 0.0))
        return SimpleNamespace(
            latencies=st.latencies, errors=st.errors, retries=st.retries,
            tokens_in=tin, tokens_out=tout, cost=cost,
        )  # fmt: skip


def test_tokens_and_cost_per_node_when_models_report_usage(closing: Any) -> None:
    app = chain()
    app.invoke({})
    usage = {"b": (1200, 300, 0.0125)}
    fake = SimpleNamespace(
        name="chain", metrics=_UsageMetrics(app.metrics, usage), listen=app.listen
    )
    dash = Dashboard(fake)
    closing(dash)
    fig = dash.figure
    assert fig.data[T_TIN].visible and fig.data[T_TOUT].visible
    assert np.asarray(fig.data[T_TIN].y).tolist() == [0, 1200, 0]
    assert np.asarray(fig.data[T_TOUT].y).tolist() == [0, 300, 0]
    assert list(fig.data[T_TOUT].text) == ["", "$0.0125", ""]
    assert fig.layout.annotations[3].text == f"<b>{PANELS[3]}</b>"
    assert "1,500 tokens" in dash._header.value and "$0.0125" in dash._header.value
    # without usage, the fourth panel shows how long runs take instead
    plain = Dashboard(app)
    closing(plain)
    assert not plain.figure.data[T_TIN].visible
    assert "run duration" in plain.figure.layout.annotations[3].text


def test_static_picture_draws_the_four_panels(closing: Any) -> None:
    import xml.etree.ElementTree as ET

    app = fan(fail_times=1)
    for _ in range(4):
        app.invoke({})
    dash = Dashboard(app)
    closing(dash)
    svg = dash.to_svg()
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for title in PANELS[:3]:
        assert title in texts
    assert "run duration (ms, log scale): how many runs" in texts
    for node in ("plan", "slow", "flaky", "join"):
        assert node in texts
    assert any(t and t.endswith("ms") for t in texts)  # log latency ticks carry units
    assert "nan" not in svg.lower()
    html = dash._repr_mimebundle_()["text/html"]
    assert 'data-agentgraph-static="dashboard"' in html and "data:image/svg+xml;base64," in html
    assert "4 completed" in html  # the header line, as text


def test_options_are_checked() -> None:
    app = chain()
    with pytest.raises(InvalidInputError, match="bin_seconds"):
        Dashboard(app, bin_seconds=0)
    with pytest.raises(InvalidInputError, match="window"):
        Dashboard(app, window=-1)
    with pytest.raises(InvalidInputError, match="interval"):
        Dashboard(app, interval=-1)


def test_a_flush_waits_for_a_pandas_import_in_progress_in_another_thread() -> None:
    """plotly reads pandas from sys.modules without importing it; a live view flushing while a
    cell imports pandas (``app.metrics.to_pandas()`` as a run ends) must not see it half made."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, threading\n"
        "from agentgraph_nb.ui._coalesce import Coalescer\n"
        "seen = []\n"
        "def flush():\n"  # as plotly reads it: sys.modules.get, then an attribute
        "    pd = sys.modules.get('pandas')\n"
        "    seen.append(pd is None or pd.Series is not None)\n"
        "    return True\n"
        "c = Coalescer(flush, 0.0)\n"
        "t = threading.Thread(target=lambda: __import__('pandas'))\n"
        "t.start()\n"
        "while t.is_alive():\n"
        "    c.run()\n"
        "t.join()\n"
        "print(len(seen), all(seen))\n"
    )
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert r.returncode == 0, r.stderr
    n, ok = r.stdout.split()
    assert int(n) > 0 and ok == "True", r.stdout
