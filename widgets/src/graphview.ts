// GraphView: the graph laid out left to right, live node status, click a node for its details.
//
// Synced traits (Python side: agentgraph_nb/ui/graphview.py): graph, status, details, selected,
// edge_counts, breakpoints ("name" before, "name:after" after), current, layout_engine, renderer,
// height. The view re-renders only what a changed trait touches; a new graph rebuilds the
// drawing. Every click on a node also sends {event: "node_click", node, shift} to Python, so a
// click on the node already selected is seen too.
import css from "./lib/graphview.css";
import { layoutGraph } from "./lib/layout";
import { buildGraph, makeMeasure, type GraphJSON, type VGraph } from "./lib/model";
import { CanvasRenderer } from "./lib/canvasview";
import { SvgRenderer } from "./lib/svgview";
import { EDGE_BASE_WIDTH, STATUSES, asStatus, paletteCss, type Status } from "./lib/style";
import {
  BP_AFTER, BP_BEFORE, parseBreakpoint, selectable, type Renderer, type ViewState,
} from "./lib/view";

/** Above this many drawn nodes "auto" draws on a canvas instead of SVG. */
export const SVG_MAX_NODES = 1200;
const MAX_SCALE = 4;
const DRAG_THRESHOLD = 4;
const DETAIL_ORDER = ["input", "output", "duration", "attempt", "error"];

interface AnyModel {
  get(name: string): any;
  set(name: string, value: unknown): void;
  save_changes(): void;
  /** A custom message to the Python side (absent in stand-alone pages such as the benchmark). */
  send?(content: unknown): void;
  on(event: string, cb: (...args: any[]) => void): void;
  off(event?: string | null, cb?: ((...args: any[]) => void) | null): void;
}

let instances = 0;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K, attrs: Record<string, string> = {}, text?: string,
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else el.setAttribute(k, v);
  }
  if (text !== undefined) el.textContent = text;
  return el;
}

class GraphViewUI {
  private root: HTMLDivElement;
  private stage: HTMLDivElement;
  private panel: HTMLElement;
  private titleEl: HTMLSpanElement;
  private infoEl: HTMLSpanElement;
  private st: ViewState | null = null;
  private renderer: Renderer | null = null;
  private k = 1;
  private tx = 0;
  private ty = 0;
  private minK = 0.05;
  private fitted = false;
  private userMoved = false;
  private uid: string;
  private off: (() => void)[] = [];
  private resizeObserver: ResizeObserver | null = null;

  constructor(private model: AnyModel, el: HTMLElement) {
    this.uid = `agn-gv-${++instances}`;
    const root = h("div", { class: "agn-gv", "data-testid": "graphview" });
    const style = h("style");
    style.textContent = `${css}\n${paletteCss()}`;
    root.appendChild(style);

    const bar = h("div", { class: "agn-toolbar", role: "toolbar", "aria-label": "graph view" });
    this.titleEl = h("span", { class: "agn-title", "data-testid": "graphview-title" });
    this.infoEl = h("span", { class: "agn-info", "data-testid": "graphview-info" });
    const fit = h("button", { class: "agn-btn", type: "button", "data-testid": "graphview-fit", "aria-label": "Fit graph to view", title: "Fit" }, "Fit");
    const zin = h("button", { class: "agn-btn", type: "button", "data-testid": "graphview-zoom-in", "aria-label": "Zoom in", title: "Zoom in" }, "+");
    const zout = h("button", { class: "agn-btn", type: "button", "data-testid": "graphview-zoom-out", "aria-label": "Zoom out", title: "Zoom out" }, "\u2212");
    const legend = h("span", { class: "agn-legend", "aria-label": "status colours" });
    for (const s of STATUSES) legend.appendChild(h("span", { class: "agn-chip", "data-status": s }, s));
    bar.append(this.titleEl, this.infoEl, h("span", { class: "agn-spacer" }), legend, fit, zin, zout);
    this.stage = h("div", { class: "agn-stage", "data-testid": "graphview-stage" });
    this.panel = h("aside", { class: "agn-details", "data-testid": "graphview-details", "aria-label": "node details", "aria-live": "polite" });
    this.panel.hidden = true;
    root.append(bar, this.stage, this.panel);
    this.root = root;
    this.applyHeight();
    el.appendChild(root);

    fit.addEventListener("click", () => this.fit(true));
    zin.addEventListener("click", () => this.zoomAt(this.stage.clientWidth / 2, this.stage.clientHeight / 2, 1.25));
    zout.addEventListener("click", () => this.zoomAt(this.stage.clientWidth / 2, this.stage.clientHeight / 2, 0.8));
    this.bindPointer();
    this.listen("change:graph", () => this.build());
    this.listen("change:layout_engine", () => this.build());
    this.listen("change:renderer", () => this.build());
    this.listen("change:status", () => this.syncStatus());
    this.listen("change:details", () => this.renderDetails());
    this.listen("change:selected", () => this.syncSelected());
    this.listen("change:edge_counts", () => this.syncEdges());
    this.listen("change:breakpoints", () => this.syncBreakpoints());
    this.listen("change:current", () => this.syncCurrent());
    this.listen("change:height", () => this.applyHeight());

    // Lay out once the view is in the page (fonts and size known): now if it already is,
    // else on the first resize notification, which comes when it is attached.
    if (typeof ResizeObserver !== "undefined") {
      this.resizeObserver = new ResizeObserver(() => this.onResize());
      this.resizeObserver.observe(this.stage);
    }
    if (this.root.isConnected || !this.resizeObserver) this.build();
  }

  private built = false;

  private listen(event: string, cb: () => void): void {
    this.model.on(event, cb);
    this.off.push(() => this.model.off(event, cb));
  }

  private applyHeight(): void {
    const v = this.model.get("height");
    this.root.style.height = typeof v === "number" ? `${v}px` : v || "480px";
  }

  // -- building ---------------------------------------------------------------------------

  build(): void {
    this.built = true;
    const t0 = performance.now();
    this.renderer?.destroy();
    this.renderer = null;
    this.st = null;
    this.placedFor = -1;
    this.stage.replaceChildren();
    const json = (this.model.get("graph") ?? {}) as GraphJSON;
    const family = getComputedStyle(this.root).fontFamily || "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
    const font = `12px ${family}`;
    const g = buildGraph(json, makeMeasure(font));
    this.titleEl.textContent = g.name;
    this.root.dataset.nodeCount = String(g.userNodes);
    this.root.dataset.edgeCount = String(g.edges.length);
    if (!g.nodes.length) {
      this.stage.appendChild(h("div", { class: "agn-empty" }, "No nodes"));
      this.infoEl.textContent = "";
      this.root.dataset.ready = "true";
      return;
    }
    const info = layoutGraph(g, String(this.model.get("layout_engine") || "auto"));
    const t1 = performance.now();
    const st: ViewState = {
      g,
      status: new Array<Status>(g.nodes.length).fill("idle"),
      edgeWidth: new Float64Array(g.edges.length).fill(EDGE_BASE_WIDTH),
      edgeCount: new Float64Array(g.edges.length),
      selected: -1,
      breakpoints: new Uint8Array(g.nodes.length),
      current: new Uint8Array(g.nodes.length),
    };
    this.st = st;
    this.readStatus(st);
    this.readEdges(st);
    this.readBreakpoints(st);
    this.readCurrent(st);
    const sel = g.byName.get(String(this.model.get("selected") ?? ""));
    st.selected = sel !== undefined ? sel : -1;

    const wanted = String(this.model.get("renderer") || "auto");
    const useCanvas = wanted === "canvas" || (wanted !== "svg" && g.nodes.length > SVG_MAX_NODES);
    this.renderer = useCanvas ? new CanvasRenderer(this.stage, st) : new SvgRenderer(this.stage, st, this.uid);
    this.bounds = info.bounds;
    this.fitted = false;
    this.userMoved = false;
    this.fit(false);
    if (this.renderer instanceof CanvasRenderer) this.renderer.draw();
    const t2 = performance.now();

    const d = this.root.dataset;
    d.layout = info.engine;
    d.renderer = this.renderer.kind;
    d.layoutMs = (t1 - t0).toFixed(1);
    d.renderMs = (t2 - t0).toFixed(1);
    d.ready = "true";
    this.infoEl.textContent =
      `${g.userNodes} node${g.userNodes === 1 ? "" : "s"} \u00b7 ${info.engine} \u00b7 ${this.renderer.kind}`;
    this.renderDetails();
  }

  private bounds = { x0: 0, y0: 0, x1: 1, y1: 1 };

  // -- traits -> view -----------------------------------------------------------------------

  private readStatus(st: ViewState): number[] {
    const raw = (this.model.get("status") ?? {}) as Record<string, unknown>;
    const changed: number[] = [];
    for (const n of st.g.nodes) {
      if (n.kind !== "node") continue;
      const s = asStatus(raw[n.name]);
      if (st.status[n.id] !== s) {
        st.status[n.id] = s;
        changed.push(n.id);
      }
    }
    return changed;
  }

  private syncStatus(): void {
    if (!this.st || !this.renderer) return;
    const changed = this.readStatus(this.st);
    if (changed.length) this.renderer.statusChanged(changed);
    if (this.st.selected >= 0) this.renderDetails();
  }

  private readEdges(st: ViewState): void {
    const counts = (this.model.get("edge_counts") ?? {}) as Record<string, number>;
    let max = 0;
    for (const v of Object.values(counts)) if (typeof v === "number" && v > max) max = v;
    st.g.edges.forEach((e, i) => {
      let c = 0;
      for (const key of e.keys) {
        const v = counts[key];
        if (typeof v === "number" && v > c) c = v;
      }
      st.edgeCount[i] = c;
      st.edgeWidth[i] = c > 0 && max > 0 ? EDGE_BASE_WIDTH + (4.5 * Math.log1p(c)) / Math.log1p(max) : EDGE_BASE_WIDTH;
    });
  }

  private syncEdges(): void {
    if (!this.st || !this.renderer) return;
    this.readEdges(this.st);
    this.renderer.edgesChanged();
  }

  private readBreakpoints(st: ViewState): number[] {
    const list = (this.model.get("breakpoints") ?? []) as unknown[];
    const next = new Uint8Array(st.g.nodes.length);
    for (const entry of list) {
      const bp = parseBreakpoint(st.g, entry);
      if (bp) next[bp[0]] |= bp[1];
    }
    const changed: number[] = [];
    for (let i = 0; i < next.length; i++) if (next[i] !== st.breakpoints[i]) changed.push(i);
    st.breakpoints = next;
    return changed;
  }

  private readCurrent(st: ViewState): number[] {
    const list = (this.model.get("current") ?? []) as unknown[];
    const next = new Uint8Array(st.g.nodes.length);
    for (const name of list) {
      const id = typeof name === "string" ? st.g.byName.get(name) : undefined;
      if (id !== undefined && st.g.nodes[id].kind === "node") next[id] = 1;
    }
    const changed: number[] = [];
    for (let i = 0; i < next.length; i++) if (next[i] !== st.current[i]) changed.push(i);
    st.current = next;
    return changed;
  }

  private syncCurrent(): void {
    if (!this.st || !this.renderer) return;
    const changed = this.readCurrent(this.st);
    if (changed.length) this.renderer.currentChanged(changed);
  }

  private syncBreakpoints(): void {
    if (!this.st || !this.renderer) return;
    const changed = this.readBreakpoints(this.st);
    if (changed.length) this.renderer.breakpointsChanged(changed);
    this.renderDetails();
  }

  private syncSelected(): void {
    if (!this.st || !this.renderer) return;
    const id = this.st.g.byName.get(String(this.model.get("selected") ?? ""));
    const next = id !== undefined ? id : -1;
    const prev = this.st.selected;
    this.st.selected = next;
    if (prev !== next) this.renderer.selectionChanged(prev, next);
    this.renderDetails();
  }

  // -- view -> traits -----------------------------------------------------------------------

  private select(id: number): void {
    if (!this.st) return;
    const name = id >= 0 ? this.st.g.nodes[id].name : "";
    this.model.set("selected", name);
    this.model.save_changes();
    this.syncSelected();
  }

  /** Toggles a node's breakpoint before (`"name"`) or after (`"name:after"`) it. */
  private toggleBreakpoint(id: number, bit: number): void {
    const st = this.st;
    if (!st) return;
    const list = (this.model.get("breakpoints") ?? []) as unknown[];
    const kept = list.filter((entry) => {
      const bp = parseBreakpoint(st.g, entry);
      return !(bp && bp[0] === id && bp[1] === bit);
    });
    const name = st.g.nodes[id].name;
    if (kept.length === list.length) kept.push(bit === BP_AFTER ? `${name}:after` : name);
    this.model.set("breakpoints", kept);
    this.model.save_changes();
    this.syncBreakpoints();
  }

  /** What a click (or Enter / Space) on a node does: with Shift or Alt, toggle its breakpoint
   * before the node, else select it; then tell Python, which sees every click this way, also
   * one on the node already selected (no `selected` change). */
  private clickNode(id: number, shift: boolean): void {
    if (!this.st) return;
    const n = this.st.g.nodes[id];
    if (shift && n.kind === "node") this.toggleBreakpoint(id, BP_BEFORE);
    else this.select(id);
    if (typeof this.model.send === "function") {
      this.model.send({ event: "node_click", node: n.name, shift });
    }
  }

  // -- details panel ------------------------------------------------------------------------

  /** The node the details panel was last placed for (-1: closed). */
  private placedFor = -1;

  private renderDetails(): void {
    const st = this.st;
    const panel = this.panel;
    if (!st || st.selected < 0) {
      panel.hidden = true;
      panel.replaceChildren();
      delete panel.dataset.node;
      this.placedFor = -1;
      return;
    }
    const n = st.g.nodes[st.selected];
    const status = n.kind === "node" ? st.status[n.id] : "";
    const all = (this.model.get("details") ?? {}) as Record<string, Record<string, unknown>>;
    const det = all[n.name];
    panel.hidden = false;
    panel.dataset.node = n.name;
    const head = h("header");
    head.appendChild(h("span", { class: "agn-name", "data-testid": "graphview-details-name" }, n.kind === "node" ? n.name : n.label));
    if (status) head.appendChild(h("span", { class: "agn-badge", "data-status": status, "data-testid": "graphview-details-status" }, status));
    const close = h("button", { class: "agn-btn agn-close", type: "button", "aria-label": "Close details", "data-testid": "graphview-details-close" }, "\u00d7");
    close.addEventListener("click", () => this.select(-1));
    head.appendChild(close);
    const parts: Node[] = [head];
    const meta = n.meta;
    if (meta) {
      const bits: string[] = [];
      if (meta.target) bits.push(String(meta.target));
      if (meta.async) bits.push("async");
      const retry = meta.retry as Record<string, unknown> | null | undefined;
      if (retry && typeof retry === "object") bits.push(`retry \u00d7${retry.max_attempts ?? "?"}`);
      if (typeof meta.timeout === "number") bits.push(`timeout ${meta.timeout}s`);
      if (bits.length) parts.push(h("div", { class: "agn-meta" }, bits.join(" \u00b7 ")));
    }
    if (n.kind === "node") {
      const row = h("div", { class: "agn-bps" });
      for (const [bit, when, testid] of [
        [BP_BEFORE, "before", "graphview-breakpoint-toggle"],
        [BP_AFTER, "after", "graphview-breakpoint-after-toggle"],
      ] as const) {
        const label = h("label", { title: `Pause ${when} ${n.name} runs` });
        const box = h("input", { type: "checkbox", "data-testid": testid, "aria-label": `Breakpoint ${when} ${n.name}` });
        box.checked = !!(st.breakpoints[n.id] & bit);
        box.addEventListener("change", () => this.toggleBreakpoint(n.id, bit));
        label.append(box, document.createTextNode(`Break ${when}`));
        row.appendChild(label);
      }
      parts.push(row);
    }
    if (det && typeof det === "object") {
      const keys = [...DETAIL_ORDER.filter((k) => k in det), ...Object.keys(det).filter((k) => !DETAIL_ORDER.includes(k))];
      for (const key of keys) {
        const v = det[key];
        if (v === null || v === undefined || v === "") continue;
        const f = h("div", { class: "agn-field", "data-field": key, "data-testid": `graphview-details-${key}` });
        f.append(h("div", { class: "agn-k" }, key), h("pre", {}, String(v)));
        parts.push(f);
      }
    } else if (n.kind === "node") {
      parts.push(h("div", { class: "agn-meta" }, "Not run yet."));
    }
    panel.replaceChildren(...parts);
    if (this.placedFor !== st.selected) {
      this.placedFor = st.selected;
      this.placePanel(n.x, n.w);
    }
  }

  /** Puts the panel on the side away from the node it was opened for (right unless that covers
   * the node), so the node stays visible and can be clicked again. Placed once per selection:
   * the panel does not jump while the graph is panned or updated. */
  private placePanel(x: number, w: number): void {
    const W = this.stage.clientWidth;
    const pw = this.panel.offsetWidth;
    const sx = x * this.k + this.tx;
    const half = (w * this.k) / 2;
    const coversRight = sx + half > W - pw - 16;
    const coversLeft = sx - half < pw + 16;
    this.panel.classList.toggle("agn-details-left", coversRight && !coversLeft);
  }

  // -- zoom and pan -------------------------------------------------------------------------

  private applyTransform(): void {
    this.renderer?.setTransform(this.k, this.tx, this.ty);
  }

  fit(byUser: boolean): void {
    const W = this.stage.clientWidth;
    const H = this.stage.clientHeight;
    if (!this.renderer) return;
    if (W < 2 || H < 2) {
      this.applyTransform();
      return;
    }
    const b = this.bounds;
    const m = 16;
    const bw = b.x1 - b.x0 + 2 * m;
    const bh = b.y1 - b.y0 + 2 * m;
    const k = Math.min(W / bw, H / bh, 1.25);
    this.minK = Math.min(0.1, k * 0.5);
    this.k = k;
    this.tx = (W - (b.x1 - b.x0) * k) / 2 - b.x0 * k;
    this.ty = (H - (b.y1 - b.y0) * k) / 2 - b.y0 * k;
    this.fitted = true;
    if (byUser) this.userMoved = false;
    this.applyTransform();
  }

  private zoomAt(x: number, y: number, factor: number): void {
    const k = Math.min(MAX_SCALE, Math.max(this.minK, this.k * factor));
    const f = k / this.k;
    this.tx = x - (x - this.tx) * f;
    this.ty = y - (y - this.ty) * f;
    this.k = k;
    this.userMoved = true;
    this.applyTransform();
  }

  private onResize(): void {
    if (!this.built) {
      this.build();
      return;
    }
    if (!this.renderer) return;
    this.renderer.resize(this.stage.clientWidth, this.stage.clientHeight);
    if (!this.fitted || !this.userMoved) this.fit(false);
    else this.applyTransform();
  }

  private bindPointer(): void {
    const stage = this.stage;
    let down: { x: number; y: number; tx: number; ty: number; target: EventTarget | null; id: number } | null = null;
    let moved = false;
    const onDown = (e: PointerEvent) => {
      if (e.button !== 0) return;
      down = { x: e.clientX, y: e.clientY, tx: this.tx, ty: this.ty, target: e.target, id: e.pointerId };
      moved = false;
    };
    const onMove = (e: PointerEvent) => {
      if (!down || e.pointerId !== down.id) return;
      const dx = e.clientX - down.x;
      const dy = e.clientY - down.y;
      if (!moved && Math.hypot(dx, dy) < DRAG_THRESHOLD) return;
      if (!moved) {
        moved = true;
        stage.classList.add("agn-dragging");
        try {
          stage.setPointerCapture(e.pointerId);
        } catch {
          /* the pointer may already be gone */
        }
      }
      this.tx = down.tx + dx;
      this.ty = down.ty + dy;
      this.userMoved = true;
      this.applyTransform();
    };
    const onUp = (e: PointerEvent) => {
      if (!down || e.pointerId !== down.id) return;
      const d = down;
      down = null;
      stage.classList.remove("agn-dragging");
      if (moved || !this.renderer || !this.st) return;
      const id = this.renderer.pick(e.clientX, e.clientY, d.target);
      if (id < 0 || !selectable(this.st.g, id)) return;
      this.clickNode(id, e.shiftKey || e.altKey);
    };
    const onWheel = (e: WheelEvent) => {
      if (!this.renderer) return;
      e.preventDefault();
      const r = stage.getBoundingClientRect();
      const unit = e.deltaMode === 1 ? 0.05 : e.deltaMode === 2 ? 1 : 0.0015;
      this.zoomAt(e.clientX - r.left, e.clientY - r.top, Math.exp(-e.deltaY * unit));
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        this.select(-1);
        return;
      }
      if ((e.key === "Enter" || e.key === " ") && this.renderer && this.st) {
        const id = this.renderer.pick(0, 0, e.target);
        if (id >= 0 && selectable(this.st.g, id)) {
          e.preventDefault();
          this.clickNode(id, e.shiftKey || e.altKey);
        }
      }
    };
    stage.addEventListener("pointerdown", onDown);
    stage.addEventListener("pointermove", onMove);
    stage.addEventListener("pointerup", onUp);
    stage.addEventListener("pointercancel", onUp);
    stage.addEventListener("wheel", onWheel, { passive: false });
    this.root.addEventListener("keydown", onKey);
  }

  destroy(): void {
    for (const f of this.off) f();
    this.off = [];
    this.resizeObserver?.disconnect();
    this.renderer?.destroy();
    this.root.remove();
  }

  get graph(): VGraph | null {
    return this.st?.g ?? null;
  }
}

export default {
  render({ model, el }: { model: AnyModel; el: HTMLElement }) {
    const ui = new GraphViewUI(model, el);
    return () => ui.destroy();
  },
};
