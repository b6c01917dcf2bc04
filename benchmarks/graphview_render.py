"""How long GraphView takes to render big graphs in Chromium.

    python benchmarks/graphview_render.py                    # 1,000 and 10,000 nodes
    python benchmarks/graphview_render.py --sizes 100 1000 3000 10000 --repeat 5
    python benchmarks/graphview_render.py --layout dagre --sizes 500 800
    python benchmarks/graphview_render.py --collapse off   # no chain/fan-out groups

Loads the built bundle (agentgraph_nb/static/graphview.js) into a blank Chromium page with a
minimal stand-in for the anywidget model (no Jupyter, no server: requests are answered by
Playwright), renders a synthetic graph description and prints, per size, the median over
``--repeat`` runs of: ``layout`` (graph -> positions), ``render`` (render() returned: layout plus
building the SVG or the first canvas draw) and ``paint`` (until the second animation frame after
render(), i.e. the browser has styled, laid out and painted the view), with the layout engine and
renderer that "auto" chose, and ``zoom frame``: the median time from a wheel-zoom event to the
second animation frame after it (one frame is ~16 ms; this is how interactive the view stays).
Needs Chromium (``/usr/bin/chromium`` or ``--chromium``) and the
``playwright`` Python package; never downloads a browser.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agentgraph_nb.ui._synthetic import synthetic_graph  # noqa: E402

BUNDLE = ROOT / "agentgraph_nb" / "static" / "graphview.js"
ORIGIN = "http://agentgraph-bench.invalid"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]

PAGE = """<!doctype html><html><head><meta charset="utf-8"></head>
<body style="margin:0"><script type="module">
import widget from "__ORIGIN__/graphview.js";
class FakeModel {
  constructor(state) { this.state = state; this.handlers = {}; }
  get(k) { return this.state[k]; }
  set(k, v) { this.state[k] = v; for (const f of this.handlers["change:" + k] || []) f(); }
  save_changes() {}
  on(e, f) { (this.handlers[e] ||= []).push(f); }
  off(e, f) { this.handlers[e] = (this.handlers[e] || []).filter((g) => g !== f); }
}
window.agnRender = (graph, opts) => new Promise((resolve) => {
  document.body.replaceChildren();
  const el = document.createElement("div");
  el.style.width = "1200px";
  document.body.appendChild(el);
  const model = new FakeModel({graph, status: {}, details: {}, selected: "", edge_counts: {},
    breakpoints: [], layout_engine: opts.layout, renderer: opts.renderer, collapse: opts.collapse,
    height: "700px"});
  const t0 = performance.now();
  widget.render({model, el});
  const t1 = performance.now();
  requestAnimationFrame(() => requestAnimationFrame(() => {
    const d = el.querySelector("[data-testid=graphview]").dataset;
    resolve({render: t1 - t0, paint: performance.now() - t0, layout: Number(d.layoutMs),
             engine: d.layout, renderer: d.renderer, nodes: Number(d.nodeCount),
             drawn: Number(d.drawnCount || d.nodeCount)});
  }));
});
window.agnZoom = async (steps) => {
  const stage = document.querySelector("[data-testid=graphview-stage]");
  const r = stage.getBoundingClientRect();
  const times = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    stage.dispatchEvent(new WheelEvent("wheel", {deltaY: i % 2 ? 200 : -200, clientX: r.left + r.width / 3,
      clientY: r.top + r.height / 2, bubbles: true, cancelable: true}));
    await new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(res)));
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
};
window.agnReady = true;
</script></body></html>"""


def measure(
    sizes: list[int],
    repeat: int = 3,
    chromium: str = "/usr/bin/chromium",
    layout: str = "auto",
    renderer: str = "auto",
    collapse: str = "auto",
) -> list[dict]:
    """Median timings (ms) per size; see the module docstring."""
    from playwright.sync_api import sync_playwright

    bundle = BUNDLE.read_bytes()
    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})

        def serve(route):
            url = route.request.url
            if url.endswith("/graphview.js"):
                route.fulfill(body=bundle, content_type="text/javascript")
            else:
                route.fulfill(body=PAGE.replace("__ORIGIN__", ORIGIN), content_type="text/html")

        page.route(f"{ORIGIN}/**", serve)
        page.goto(f"{ORIGIN}/index.html")
        page.wait_for_function("window.agnReady === true")
        for n in sizes:
            graph = synthetic_graph(n, seed=n)
            runs = [
                page.evaluate(
                    "([g, o]) => window.agnRender(g, o)",
                    [graph, {"layout": layout, "renderer": renderer, "collapse": collapse}],
                )
                for _ in range(repeat)
            ]
            zoom = page.evaluate("(n) => window.agnZoom(n)", 20)
            first = runs[0]
            results.append(
                {
                    "nodes": first["nodes"],
                    "drawn": first["drawn"],
                    "engine": first["engine"],
                    "renderer": first["renderer"],
                    "layout_ms": statistics.median(r["layout"] for r in runs),
                    "render_ms": statistics.median(r["render"] for r in runs),
                    "paint_ms": statistics.median(r["paint"] for r in runs),
                    "zoom_frame_ms": zoom,
                }
            )
        browser.close()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--layout", default="auto", choices=["auto", "dagre", "layered"])
    ap.add_argument("--renderer", default="auto", choices=["auto", "svg", "canvas"])
    ap.add_argument(
        "--collapse", default="auto", choices=["auto", "on", "off"], help="chain/fan-out groups"
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object per size")
    args = ap.parse_args(argv)
    rows = measure(
        args.sizes, args.repeat, args.chromium, args.layout, args.renderer, args.collapse
    )
    for r in rows:
        if args.json:
            print(json.dumps(r))
        else:
            print(
                f"{r['nodes']:>6} nodes ({r['drawn']:>6} drawn)  {r['engine']:>7}/{r['renderer']:<6}"
                f"  layout {r['layout_ms']:8.1f} ms"
                f"  render {r['render_ms']:8.1f} ms  paint {r['paint_ms']:8.1f} ms"
                f"  zoom frame {r['zoom_frame_ms']:6.1f} ms"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
