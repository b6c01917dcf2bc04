// GraphView: the graph laid out left to right, live node status, click a node for its details.
//
// Synced traits (Python side: agentgraph_nb/ui/graphview.py): graph, status, details, selected,
// edge_counts, breakpoints ("name" before, "name:after" after), current, layout_engine, renderer,
// height ("auto": sized to the graph), collapse, expanded, query, minimap, run, runs, caption,
// pin_thread, pin_run, shortcuts. The view re-renders only what a changed trait touches; a new graph
// (or a group expanded or collapsed) rebuilds the drawing. Every click on a node also sends
// {event: "node_click", node, shift} to Python, so a click on the node already selected is seen
// too; a key bound in `shortcuts` sends {event: "command", command}.
//
// Big graphs: long chains and repeated fan-outs are drawn as one group node each (a click
// expands it), the search box jumps to any node (expanding its group), the minimap shows where
// the view is and moves it, and the view never pans the graph entirely out of sight.
//
// This file is the one place that knows both the traits and the view's state (zoom, selection,
// groups open, the node found); everything it can hand off lives in lib/: the description model,
// collapsing, layout, the two renderers, the minimap, the toolbar, the search box, the details.
import css from "./lib/graphview.css";
import { layoutGraph, type Bounds } from "./lib/layout";
import { buildGraph, makeMeasure, type GraphJSON, type Measure, type VGraph, type VNode } from "./lib/model";
import { CanvasRenderer } from "./lib/canvasview";
import { SvgRenderer } from "./lib/svgview";
import { EDGE_BASE_WIDTH, STATUSES, asStatus, paletteCss, type Status } from "./lib/style";
import {
  BP_AFTER, BP_BEFORE, parseBreakpoint, selectable, type Cluster, type Renderer, type ViewState,
} from "./lib/view";
import {
  addSubGroups, collapseWanted, derive, findGroups, fmtInt, groupsToOpen, type Derived, type Groups,
} from "./lib/collapse";
import { Minimap } from "./lib/minimap";
import { h, makeToolbar, type Toolbar } from "./lib/toolbar";
import { renderDetails } from "./lib/details";
import { Search } from "./lib/search";

/** Above this many drawn nodes "auto" draws on a canvas instead of SVG. */
export const SVG_MAX_NODES = 1200;
const MAX_SCALE = 4;
const DRAG_THRESHOLD = 4;
/** The scale a search jump or "fit selection" goes to at least: names are readable. */
const READ_SCALE = 1;
/** Below this scale node names are not drawn (see the renderers). */
const TEXT_SCALE = 0.45;
/** Auto height: the graph area is between these (px), the graph at scale 1 when it fits. */
const AUTO_MIN_STAGE = 110;
const AUTO_MAX_STAGE = 540;
const PANEL_MAX_STAGE = 420;
/** Pixels of the graph that always stay on screen when panning and zooming. */
const PAN_KEEP = 48;
/** Narrower than this, the details panel sits below the graph instead of beside it. */
const NARROW = 560;
const STATUS_RANK: Status[] = ["failed", "retrying", "running", "interrupted", "pending", "done", "cached"];

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

/** The drawn node a keyboard event's target is (an SVG node has focus), or -1. */
const focusedNode = (t: EventTarget | null): number => {
  const el = t instanceof Element ? t.closest("[data-node-id]") : null;
  return el ? Number(el.getAttribute("data-node-id")) : -1;
};

const isTyping = (t: EventTarget | null): boolean =>
  t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));

function identity(full: VGraph): Derived {
  const N = full.nodes.length;
  const ids = Int32Array.from({ length: N }, (_, i) => i);
  return { g: full, drawnOf: ids, fullOf: ids, groupOf: new Int32Array(N).fill(-1) };
}

class GraphViewUI {
  private root: HTMLDivElement;
  private tb: Toolbar;
  private body: HTMLDivElement;
  private stage: HTMLDivElement;
  private overlay: HTMLDivElement;
  private foundRing: HTMLDivElement;
  private gutter: HTMLButtonElement[];
  private panel: HTMLElement;
  private panelInner: HTMLDivElement;
  private minimap: Minimap;
  private uid: string;
  private off: (() => void)[] = [];
  private resizeObserver: ResizeObserver | null = null;
  private built = false;

  // The whole graph, its groups, and per-node state by full id.
  private full: VGraph | null = null;
  private measure: Measure = (t) => t.length * 6.8;
  private groups: Groups | null = null;
  private expanded = new Set<string>();
  private fullStatus: Status[] = [];
  private fullBp = new Uint8Array(0);
  private fullCurrent = new Uint8Array(0);
  private lowerNames: string[] = [];
  private search: Search;
  /** The node the search jumped to (full id), or -1. */
  private foundFull = -1;

  // What is drawn.
  private derived: Derived | null = null;
  private st: ViewState | null = null;
  private renderer: Renderer | null = null;
  private bounds: Bounds = { x0: 0, y0: 0, x1: 1, y1: 1 };
  private k = 1;
  private tx = 0;
  private ty = 0;
  private minK = 0.05;
  private fitted = false;
  private userMoved = false;
  private hover = -1;
  private keyScope: HTMLElement | null = null;

  constructor(private model: AnyModel, el: HTMLElement) {
    this.uid = `agn-gv-${++instances}`;
    const root = h("div", { class: "agn-gv", "data-testid": "graphview" });
    const style = h("style");
    style.textContent = `${css}\n${paletteCss()}`;
    root.appendChild(style);
    this.tb = makeToolbar(this.uid);
    this.body = h("div", { class: "agn-body" });
    this.stage = h("div", { class: "agn-stage", "data-testid": "graphview-stage", tabindex: "0", "aria-label": "graph: drag to pan, wheel to zoom" });
    this.overlay = h("div", { class: "agn-overlay" });
    this.foundRing = h("div", { class: "agn-found-ring", "data-testid": "graphview-found" });
    this.foundRing.hidden = true;
    this.gutter = (["before", "after"] as const).map((when) => {
      const b = h("button", { class: `agn-gutter agn-gutter-${when}`, type: "button", "data-testid": `bp-toggle-${when}`, "aria-pressed": "false" });
      b.hidden = true;
      b.addEventListener("click", (e) => {
        e.stopPropagation();
        const id = Number(b.dataset.node);
        if (this.st && id >= 0) this.toggleBreakpoint(id, when === "before" ? BP_BEFORE : BP_AFTER);
      });
      return b;
    });
    this.overlay.append(this.foundRing, ...this.gutter);
    this.minimap = new Minimap((x, y) => this.centerOn(x, y));
    this.minimap.el.hidden = true;
    this.panel = h("aside", { class: "agn-details", "data-testid": "graphview-details", "aria-label": "node details", "aria-live": "polite" });
    this.panelInner = h("div", { class: "agn-details-inner" });
    this.panel.appendChild(this.panelInner);
    this.panel.hidden = true;
    this.body.append(this.stage, this.panel);
    root.append(this.tb.bar, this.body);
    this.root = root;
    this.applyHeight();
    el.appendChild(root);

    const tb = this.tb;
    tb.home.addEventListener("click", () => this.fit(true));
    tb.zoomIn.addEventListener("click", () => this.zoomStep(true));
    tb.zoomOut.addEventListener("click", () => this.zoomStep(false));
    tb.fitSelection.addEventListener("click", () => this.fitSelection());
    tb.minimap.addEventListener("click", () => this.toggleMinimap());
    tb.collapseAll.addEventListener("click", () => this.setExpanded(new Set(), true));
    tb.follow.addEventListener("change", () => this.onFollow());
    this.search = this.makeSearch();
    this.bindPointer();
    this.listen("change:graph", () => this.build());
    this.listen("change:layout_engine", () => this.build());
    this.listen("change:renderer", () => this.build());
    this.listen("change:collapse", () => this.build());
    this.listen("change:expanded", () => this.onExpandedTrait());
    this.listen("change:status", () => this.syncStatus());
    this.listen("change:details", () => {
      this.renderDetails();
      this.syncLoops();
    });
    this.listen("change:selected", () => this.syncSelected(true));
    this.listen("change:edge_counts", () => this.syncEdges());
    this.listen("change:breakpoints", () => this.syncBreakpoints());
    this.listen("change:current", () => this.syncCurrent());
    this.listen("change:height", () => this.applyHeight());
    this.listen("change:query", () => this.search.setQuery(String(this.model.get("query") ?? "")));
    this.listen("change:minimap", () => this.updateMinimap());
    for (const t of ["run", "runs", "caption", "pin_thread", "pin_run"]) this.listen(`change:${t}`, () => this.syncRun());
    this.listen("msg:custom", (msg: unknown) => this.onMessage(msg));
    this.syncRun();

    // Lay out once the view is in the page (fonts and size known): now if it already is,
    // else on the first resize notification, which comes when it is attached.
    if (typeof ResizeObserver !== "undefined") {
      this.resizeObserver = new ResizeObserver(() => this.onResize());
      this.resizeObserver.observe(this.stage);
    }
    if (this.root.isConnected || !this.resizeObserver) this.build();
  }

  private listen(event: string, cb: (...args: any[]) => void): void {
    this.model.on(event, cb);
    this.off.push(() => this.model.off(event, cb));
  }

  private send(content: Record<string, unknown>): void {
    if (typeof this.model.send === "function") this.model.send(content);
  }

  // -- size -----------------------------------------------------------------------------------

  /** A fixed CSS height, or ("auto", the default) the graph's own height at scale 1 within
   * limits: a 3-node graph is a short strip, a big one gets the room it can use. */
  private applyHeight(): void {
    const v = this.model.get("height");
    if (typeof v === "number") {
      this.root.style.height = `${v}px`;
      return;
    }
    if (v && v !== "auto") {
      this.root.style.height = String(v);
      return;
    }
    const W = this.root.clientWidth;
    this.root.classList.toggle("agn-narrow", W > 0 && W < NARROW);
    if (!this.st || W < 50) return;
    const b = this.bounds;
    const bw = b.x1 - b.x0 + 32;
    const bh = b.y1 - b.y0 + 32;
    // Too wide to read when fitted: as tall as it is at the smallest readable scale, which
    // leaves room to zoom in.
    const k = W / bw < TEXT_SCALE ? TEXT_SCALE : Math.min(1, W / bw);
    let stageH = Math.min(AUTO_MAX_STAGE, Math.max(AUTO_MIN_STAGE, bh * k));
    if (!this.panel.hidden) {
      const want = this.panelInner.offsetHeight + 20;
      if (W < NARROW) stageH += Math.min(want, 260);
      else stageH = Math.max(stageH, Math.min(want, PANEL_MAX_STAGE));
    }
    const px = `${Math.round(this.tb.bar.offsetHeight + stageH + 2)}px`;
    if (this.root.style.height !== px) this.root.style.height = px;
  }

  // -- building -------------------------------------------------------------------------------

  /** A new graph (or layout, renderer, collapse setting): everything from the description. */
  build(): void {
    this.built = true;
    this.attachKeys();
    const t0 = performance.now();
    const json = (this.model.get("graph") ?? {}) as GraphJSON;
    const family = getComputedStyle(this.root).fontFamily || "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
    this.measure = makeMeasure(`12px ${family}`);
    const full = buildGraph(json, this.measure);
    this.full = full;
    this.tb.title.textContent = full.name;
    this.root.dataset.nodeCount = String(full.userNodes);
    this.root.dataset.edgeCount = String(full.edges.length);
    const N = full.nodes.length;
    this.fullStatus = new Array<Status>(N).fill("idle");
    this.fullBp = new Uint8Array(N);
    this.fullCurrent = new Uint8Array(N);
    this.lowerNames = full.nodes.map((n) => (n.kind === "node" ? n.name.toLowerCase() : ""));
    this.readFullStatus();
    this.readFullBreakpoints();
    this.readFullCurrent();
    const groups = addSubGroups(collapseWanted(String(this.model.get("collapse") || "auto"), full) ? findGroups(full) : null, full);
    this.groups = groups && groups.list.length ? groups : null;
    this.expanded = new Set(((this.model.get("expanded") ?? []) as unknown[]).filter((k): k is string => typeof k === "string"));
    this.foundFull = -1;
    this.search.reset(N, String(this.model.get("query") ?? ""));
    this.buildDrawn(null, false, t0);
  }

  /**
   * Lays out and draws what is visible with the current expanded groups. `anchor`: keep this
   * full node at this screen point (expanding or collapsing a group under the pointer);
   * `keepView`: keep the zoom and pan; else fit.
   */
  private buildDrawn(anchor: { full: number; sx: number; sy: number } | null, keepView: boolean, t0 = performance.now()): void {
    this.renderer?.destroy();
    this.renderer = null;
    this.st = null;
    this.hover = -1;
    this.stage.replaceChildren(this.overlay, this.minimap.el);
    const full = this.full;
    if (!full || !full.nodes.length) {
      this.stage.appendChild(h("div", { class: "agn-empty" }, "No nodes"));
      this.tb.info.textContent = "";
      this.root.dataset.ready = "true";
      this.placeOverlay();
      this.renderDetails();
      return;
    }
    const der = this.groups ? derive(full, this.groups, this.expanded, this.measure) : identity(full);
    this.derived = der;
    const g = der.g;
    const info = layoutGraph(g, String(this.model.get("layout_engine") || "auto"));
    const t1 = performance.now();
    const M = g.nodes.length;
    const st: ViewState = {
      g,
      status: new Array<Status>(M).fill("idle"),
      edgeWidth: new Float64Array(g.edges.length).fill(EDGE_BASE_WIDTH),
      edgeCount: new Float64Array(g.edges.length),
      selected: -1,
      breakpoints: new Uint8Array(M),
      current: new Uint8Array(M),
      match: new Uint8Array(M),
      found: -1,
    };
    st.clusters = this.clusters(der);
    this.st = st;
    for (let d = 0; d < M; d++) this.aggregate(d);
    this.readEdges(st);
    const sel = full.byName.get(String(this.model.get("selected") ?? ""));
    if (sel !== undefined && der.groupOf[der.drawnOf[sel]] < 0) st.selected = der.drawnOf[sel];
    if (this.foundFull >= 0) st.found = der.drawnOf[this.foundFull];

    const wanted = String(this.model.get("renderer") || "auto");
    const useCanvas = wanted === "canvas" || (wanted !== "svg" && M > SVG_MAX_NODES);
    this.renderer = useCanvas ? new CanvasRenderer(this.stage, st) : new SvgRenderer(this.stage, st, this.uid);
    this.syncLoops();
    this.bounds = info.bounds;
    this.minimap.setGraph(st, info.bounds);
    this.minK = Math.min(0.1, this.fitScale(info.bounds) * 0.5);
    this.applyHeight();
    if (anchor) {
      const n = g.nodes[der.drawnOf[anchor.full]];
      this.tx = anchor.sx - n.x * this.k;
      this.ty = anchor.sy - n.y * this.k;
      this.userMoved = true;
      this.clampPan();
      this.applyTransform();
    } else if (keepView && this.userMoved) {
      this.clampPan();
      this.applyTransform();
    } else {
      this.fitted = false;
      this.userMoved = false;
      this.fit(false);
    }
    if (this.renderer instanceof CanvasRenderer) this.renderer.draw();
    const t2 = performance.now();

    const d = this.root.dataset;
    d.layout = info.engine;
    d.renderer = this.renderer.kind;
    d.layoutMs = (t1 - t0).toFixed(1);
    d.renderMs = (t2 - t0).toFixed(1);
    d.drawnCount = String(g.nodes.filter((n) => n.kind === "node" || n.kind === "group").length);
    d.groups = String(g.nodes.filter((n) => n.kind === "group").length);
    d.ready = "true";
    const groupsDrawn = Number(d.groups);
    this.tb.info.textContent =
      `${fmtInt(full.userNodes)} node${full.userNodes === 1 ? "" : "s"}` +
      (groupsDrawn ? ` \u00b7 ${groupsDrawn} group${groupsDrawn === 1 ? "" : "s"}` : "");
    this.tb.info.title = `laid out with ${info.engine}, drawn with ${this.renderer.kind}` +
      (groupsDrawn ? "; long chains and repeated fan-outs are grouped: click a group to expand it" : "");
    this.tb.collapseAll.hidden = !this.groups || this.expanded.size === 0;
    this.updateLegend();
    this.search.render();
    this.renderDetails();
  }

  /** The boxes of the expanded subgraphs that are drawn (outer ones first), around their nodes. */
  private clusters(der: Derived): Cluster[] {
    const full = this.full;
    const gr = this.groups;
    if (!full || !gr || !full.subs?.length) return [];
    const out: Cluster[] = [];
    const depth = new Map<number, number>();
    full.subs.forEach((s, i) => {
      const gi = gr.byKey.get(`sub:${s.path}`);
      if (gi === undefined || !this.expanded.has(gr.list[gi].key)) return;
      const d0 = s.parent >= 0 ? depth.get(s.parent) : 0;
      if (d0 === undefined) return; // inside a collapsed subgraph
      depth.set(i, d0 + 1);
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const v of s.nodes) {
        const n = der.g.nodes[der.drawnOf[v]];
        x0 = Math.min(x0, n.x - n.w / 2);
        x1 = Math.max(x1, n.x + n.w / 2);
        y0 = Math.min(y0, n.y - n.h / 2);
        y1 = Math.max(y1, n.y + n.h / 2);
      }
      if (!isFinite(x0)) return;
      out.push({ key: gr.list[gi].key, label: s.path.replace(/\|/g, " > "), x0: x0 - 12, y0: y0 - 24, x1: x1 + 12, y1: y1 + 10 });
    });
    return out;
  }

  // -- per-node state: full graph -> drawn graph -----------------------------------------------

  /** Drawn node `d`'s status, breakpoints, current and match flags from its full node(s). */
  private aggregate(d: number): void {
    const st = this.st;
    const der = this.derived;
    if (!st || !der) return;
    const gi = der.groupOf[d];
    if (gi < 0) {
      const v = der.fullOf[d];
      st.status[d] = this.fullStatus[v];
      st.breakpoints[d] = this.fullBp[v];
      st.current[d] = this.fullCurrent[v];
      st.match[d] = this.search.flags[v];
      return;
    }
    const members = this.groups!.list[gi].members;
    const seen = new Set<Status>();
    let bp = 0;
    let cur = 0;
    let match = 0;
    for (const v of members) {
      seen.add(this.fullStatus[v]);
      bp |= this.fullBp[v];
      cur |= this.fullCurrent[v];
      match |= this.search.flags[v];
    }
    st.status[d] = STATUS_RANK.find((s) => seen.has(s)) ?? "idle";
    st.breakpoints[d] = bp;
    st.current[d] = cur;
    st.match[d] = match;
  }

  /** The drawn nodes showing these full nodes, each once, after re-aggregating them. */
  private touch(fullIds: number[]): number[] {
    const der = this.derived;
    if (!der || !this.st) return [];
    const out = new Set<number>();
    for (const v of fullIds) out.add(der.drawnOf[v]);
    for (const d of out) this.aggregate(d);
    return [...out];
  }

  private readFullStatus(): number[] {
    const full = this.full;
    if (!full) return [];
    const raw = (this.model.get("status") ?? {}) as Record<string, unknown>;
    const changed: number[] = [];
    for (const n of full.nodes) {
      if (n.kind !== "node") continue;
      const s = asStatus(raw[n.name]);
      if (this.fullStatus[n.id] !== s) {
        this.fullStatus[n.id] = s;
        changed.push(n.id);
      }
    }
    return changed;
  }

  private syncStatus(): void {
    if (!this.st || !this.renderer) return;
    const changed = this.touch(this.readFullStatus());
    if (changed.length) {
      this.renderer.statusChanged(changed);
      this.minimap.changed();
      this.updateLegend();
    }
    if (this.st.selected >= 0) this.renderDetails();
  }

  /** Loop nodes' live counts ("3/10", from details[node].loop) onto their badges. */
  private syncLoops(): void {
    if (!this.renderer?.loopsChanged) return;
    const all = (this.model.get("details") ?? {}) as Record<string, Record<string, unknown>>;
    const counts: Record<string, string> = {};
    for (const [name, d] of Object.entries(all)) if (d && typeof d.loop === "string") counts[name] = d.loop;
    this.renderer.loopsChanged(counts);
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

  private readFullBreakpoints(): number[] {
    const full = this.full;
    if (!full) return [];
    const list = (this.model.get("breakpoints") ?? []) as unknown[];
    const next = new Uint8Array(full.nodes.length);
    for (const entry of list) {
      const bp = parseBreakpoint(full, entry);
      if (bp) next[bp[0]] |= bp[1];
    }
    const changed: number[] = [];
    for (let i = 0; i < next.length; i++) if (next[i] !== this.fullBp[i]) changed.push(i);
    this.fullBp = next;
    return changed;
  }

  private readFullCurrent(): number[] {
    const full = this.full;
    if (!full) return [];
    const list = (this.model.get("current") ?? []) as unknown[];
    const next = new Uint8Array(full.nodes.length);
    for (const name of list) {
      const id = typeof name === "string" ? full.byName.get(name) : undefined;
      if (id !== undefined && full.nodes[id].kind === "node") next[id] = 1;
    }
    const changed: number[] = [];
    for (let i = 0; i < next.length; i++) if (next[i] !== this.fullCurrent[i]) changed.push(i);
    this.fullCurrent = next;
    return changed;
  }

  private syncCurrent(): void {
    if (!this.st || !this.renderer) return;
    const changed = this.touch(this.readFullCurrent());
    if (changed.length) this.renderer.currentChanged(changed);
  }

  private syncBreakpoints(): void {
    if (!this.st || !this.renderer) return;
    const changed = this.touch(this.readFullBreakpoints());
    if (changed.length) this.renderer.breakpointsChanged(changed);
    this.renderDetails();
    this.placeOverlay();
  }

  /** The `selected` trait changed: show it (expanding the groups it is in, when it comes from Python). */
  private syncSelected(fromTrait: boolean): void {
    if (!this.st || !this.renderer || !this.full) return;
    const name = String(this.model.get("selected") ?? "");
    const v = this.full.byName.get(name);
    if (fromTrait && v !== undefined && this.groups && this.derived && this.derived.groupOf[this.derived.drawnOf[v]] >= 0) {
      this.openGroupsOf(v);
    }
    const st = this.st!;
    const der = this.derived!;
    const next = v !== undefined && der.groupOf[der.drawnOf[v]] < 0 ? der.drawnOf[v] : -1;
    const prev = st.selected;
    st.selected = next;
    if (prev !== next) this.renderer!.selectionChanged(prev, next);
    this.renderDetails();
    this.placeOverlay();
  }

  // -- view -> traits -------------------------------------------------------------------------

  private select(id: number): void {
    if (!this.st) return;
    const name = id >= 0 ? this.st.g.nodes[id].name : "";
    this.model.set("selected", name);
    this.model.save_changes();
    this.syncSelected(false);
  }

  /** Toggles a node's breakpoint before (`"name"`) or after (`"name:after"`) it. */
  private toggleBreakpoint(id: number, bit: number): void {
    const st = this.st;
    const full = this.full;
    if (!st || !full || st.g.nodes[id]?.kind !== "node") return;
    const name = st.g.nodes[id].name;
    const fid = full.byName.get(name);
    const list = (this.model.get("breakpoints") ?? []) as unknown[];
    const kept = list.filter((entry) => {
      const bp = parseBreakpoint(full, entry);
      return !(bp && bp[0] === fid && bp[1] === bit);
    });
    if (kept.length === list.length) kept.push(bit === BP_AFTER ? `${name}:after` : name);
    this.model.set("breakpoints", kept);
    this.model.save_changes();
    this.syncBreakpoints();
  }

  /** What a click (or Enter / Space) on a node does: on a group, expand it; with Shift or Alt,
   * toggle the node's breakpoint before it; else select it. Then tell Python, which sees every
   * click on a node this way, also one on the node already selected (no `selected` change). */
  private clickNode(id: number, shift: boolean): void {
    if (!this.st) return;
    const n = this.st.g.nodes[id];
    if (n.kind === "group") {
      this.expandGroup(n);
      return;
    }
    if (shift && n.kind === "node") this.toggleBreakpoint(id, BP_BEFORE);
    else this.select(id);
    this.send({ event: "node_click", node: n.name, shift });
  }

  // -- groups ---------------------------------------------------------------------------------

  private setExpanded(next: Set<string>, save: boolean, anchor: { full: number; sx: number; sy: number } | null = null): void {
    this.expanded = next;
    if (save) {
      this.model.set("expanded", [...next]);
      this.model.save_changes();
    }
    this.buildDrawn(anchor, true);
  }

  private onExpandedTrait(): void {
    const next = new Set(((this.model.get("expanded") ?? []) as unknown[]).filter((k): k is string => typeof k === "string"));
    if (next.size === this.expanded.size && [...next].every((k) => this.expanded.has(k))) return;
    if (this.full) this.setExpanded(next, false);
  }

  private expandGroup(n: VNode): void {
    const gi = this.groups?.byKey.get(n.name);
    if (gi === undefined || !this.groups) return;
    const first = this.groups.list[gi].members[0];
    const next = new Set(this.expanded);
    next.add(n.name);
    // The first node inside lands where the group's left end was.
    this.setExpanded(next, true, { full: first, sx: (n.x - n.w / 2) * this.k + this.tx + 40, sy: n.y * this.k + this.ty });
  }

  private collapseGroup(key: string): void {
    const gr = this.groups;
    const gi = gr?.byKey.get(key);
    if (!gr || gi === undefined || !this.st || !this.derived) return;
    const next = new Set(this.expanded);
    next.delete(key);
    for (const c of gr.list[gi].chains) next.delete(gr.list[c].key);
    const first = gr.list[gi].members[0];
    const n = this.st.g.nodes[this.derived.drawnOf[first]];
    this.setExpanded(next, true, { full: first, sx: n.x * this.k + this.tx, sy: n.y * this.k + this.ty });
  }

  /** Expands the groups full node `v` is inside; false when it was already visible. */
  private openGroupsOf(v: number): boolean {
    if (!this.groups) return false;
    const open = groupsToOpen(this.groups, v).filter((k) => !this.expanded.has(k));
    if (!open.length) return false;
    const next = new Set(this.expanded);
    for (const k of open) next.add(k);
    this.setExpanded(next, true);
    return true;
  }

  // -- search ---------------------------------------------------------------------------------

  private makeSearch(): Search {
    return new Search(this.tb, this.uid, {
      names: () => this.lowerNames,
      label: (v) => this.full?.nodes[v].name ?? "",
      inGroup: (v) => !!this.derived && this.derived.groupOf[this.derived.drawnOf[v]] >= 0,
      found: () => this.foundFull,
      changed: (query) => {
        if (!query.trim()) this.foundFull = -1;
        this.showMatches();
      },
      jump: (v) => this.jumpTo(v),
      commit: (query) => {
        if (String(this.model.get("query") ?? "") !== query) {
          this.model.set("query", query);
          this.model.save_changes();
        }
      },
    });
  }

  /** Matches changed: redraw their highlight and the results list. */
  private showMatches(): void {
    const st = this.st;
    if (st && this.derived) {
      for (let d = 0; d < st.g.nodes.length; d++) this.aggregate(d);
      st.found = this.foundFull >= 0 ? this.derived.drawnOf[this.foundFull] : -1;
      this.renderer?.matchesChanged();
      this.minimap.changed();
    }
    this.search.render();
    this.placeOverlay();
  }

  /** Jumps to full node `v`: expands its groups, selects it, centres it at a readable scale,
   * and rings it. */
  private jumpTo(v: number): void {
    const full = this.full;
    if (!full || v < 0 || v >= full.nodes.length) return;
    this.foundFull = v;
    this.search.jumped(v);
    this.openGroupsOf(v);
    const st = this.st;
    const der = this.derived;
    if (!st || !der) return;
    const d = der.drawnOf[v];
    this.select(d); // opens the details panel: the stage's size is final after this
    this.showMatches();
    const n = st.g.nodes[d];
    this.k = Math.min(MAX_SCALE, Math.max(this.k, READ_SCALE));
    this.centerOn(n.x, n.y);
    this.root.dataset.found = n.name;
    this.send({ event: "found", node: n.name });
  }

  // -- details panel ----------------------------------------------------------------------------

  private renderDetails(): void {
    const st = this.st;
    const panel = this.panel;
    const wasOpen = !panel.hidden;
    if (!st || st.selected < 0) {
      panel.hidden = true;
      this.panelInner.replaceChildren();
      delete panel.dataset.node;
    } else {
      const n = st.g.nodes[st.selected];
      const all = (this.model.get("details") ?? {}) as Record<string, Record<string, unknown>>;
      const groups: { key: string; label: string }[] = [];
      const fid = this.full?.byName.get(n.name);
      if (this.groups && fid !== undefined) {
        for (const key of groupsToOpen(this.groups, fid)) {
          const grp = this.groups.list[this.groups.byKey.get(key)!];
          const count = fmtInt(grp.members.length);
          groups.push({
            key,
            label: grp.kind === "sub" ? `the subgraph ${key.slice(4).replace(/\|/g, " > ")}` : grp.kind === "chain" ? `a chain of ${count} nodes` : `a fan-out of ${count} nodes`,
          });
        }
      }
      panel.hidden = false;
      panel.dataset.node = n.name;
      renderDetails(this.panelInner, {
        node: n,
        status: n.kind === "node" ? st.status[n.id] : "",
        details: all[n.name],
        breakpoints: st.breakpoints[n.id],
        groups,
        close: () => this.select(-1),
        toggleBreakpoint: (bit) => this.toggleBreakpoint(n.id, bit),
        collapse: (key) => this.collapseGroup(key),
      });
    }
    if (wasOpen !== !panel.hidden) this.applyHeight();
  }

  // -- overlay: the found ring and the breakpoint gutter ------------------------------------------

  private placeOverlay(): void {
    const st = this.st;
    const ring = this.foundRing;
    const { k, tx, ty } = this;
    const W = this.stage.clientWidth;
    const H = this.stage.clientHeight;
    const onScreen = (n: VNode) =>
      (n.x + n.w / 2) * k + tx > 0 && (n.x - n.w / 2) * k + tx < W && (n.y + n.h / 2) * k + ty > 0 && (n.y - n.h / 2) * k + ty < H;
    if (st && st.found >= 0 && onScreen(st.g.nodes[st.found])) {
      const n = st.g.nodes[st.found];
      const pad = 6;
      ring.hidden = false;
      ring.dataset.node = n.name;
      const s = ring.style;
      s.left = `${(n.x - n.w / 2) * k + tx - pad}px`;
      s.top = `${(n.y - n.h / 2) * k + ty - pad}px`;
      s.width = `${Math.max(6, n.w * k) + 2 * pad}px`;
      s.height = `${Math.max(6, n.h * k) + 2 * pad}px`;
    } else {
      ring.hidden = true;
      delete ring.dataset.node;
    }
    const id = st ? (this.hover >= 0 ? this.hover : st.selected) : -1;
    const n = st && id >= 0 ? st.g.nodes[id] : null;
    const show = !!n && n.kind === "node" && n.h * k >= 22;
    this.gutter.forEach((b, i) => {
      b.hidden = !show;
      if (!show || !n || !st) return;
      const bit = i === 0 ? BP_BEFORE : BP_AFTER;
      const when = i === 0 ? "before" : "after";
      const on = !!(st.breakpoints[n.id] & bit);
      b.dataset.node = String(n.id);
      b.setAttribute("aria-pressed", String(on));
      b.setAttribute("aria-label", `${on ? "Remove" : "Add"} breakpoint ${when} ${n.name}`);
      b.title = `${on ? "Remove the" : "Pause"} ${on ? `breakpoint ${when}` : when} ${n.name}${on ? "" : " runs"} (${i === 0 ? "B" : "Shift+B"})`;
      const x = i === 0 ? n.x - n.w / 2 + 3 : n.x + n.w / 2 - 3;
      b.style.left = `${x * k + tx}px`;
      b.style.top = `${(n.y - n.h / 2 + 3) * k + ty}px`;
    });
  }

  // -- legend and run ---------------------------------------------------------------------------

  private legendKey = "";

  /** The legend names the statuses on screen (none while everything is idle). */
  private updateLegend(): void {
    const st = this.st;
    const present = new Set<Status>(st ? st.status : []);
    const shown = STATUSES.filter((s) => s !== "idle" && present.has(s));
    const key = shown.join(",");
    if (key === this.legendKey) return;
    this.legendKey = key;
    this.tb.legend.replaceChildren(...shown.map((s) => h("span", { class: "agn-chip", "data-status": s }, s)));
    this.tb.legend.hidden = !shown.length;
  }

  private syncRun(): void {
    const run = (this.model.get("run") ?? {}) as Record<string, unknown>;
    const runs = (this.model.get("runs") ?? []) as { key?: string; label?: string }[];
    const caption = String(this.model.get("caption") ?? "");
    const pinThread = String(this.model.get("pin_thread") ?? "");
    const pinRun = String(this.model.get("pin_run") ?? "");
    const text = caption || String(run.label ?? "");
    const chip = this.tb.run;
    chip.hidden = !text;
    chip.textContent = text;
    chip.dataset.state = String(run.state ?? "");
    const value = pinThread ? `thread:${pinThread}` : pinRun ? `run:${pinRun}` : "";
    const sel = this.tb.follow;
    const opts: [string, string][] = [["", "Latest run"]];
    for (const r of runs) if (r && typeof r.key === "string") opts.push([r.key, `Pin to ${r.label ?? r.key}`]);
    if (value && !opts.some(([v]) => v === value)) opts.push([value, `Pin to ${value.replace(":", " ")}`]);
    sel.replaceChildren(...opts.map(([v, label]) => {
      const o = h("option", { value: v }, label);
      o.selected = v === value;
      return o;
    }));
    sel.value = value;
    sel.hidden = !!caption || opts.length < 2;
    sel.classList.toggle("agn-pinned", !!value);
    this.root.dataset.pinned = value;
  }

  private onFollow(): void {
    const v = this.tb.follow.value;
    const [kind, ...rest] = v.split(":");
    const id = rest.join(":");
    this.model.set("pin_thread", kind === "thread" ? id : "");
    this.model.set("pin_run", kind === "run" ? id : "");
    this.model.save_changes();
    this.syncRun();
  }

  // -- zoom and pan -------------------------------------------------------------------------------

  private applyTransform(): void {
    this.renderer?.setTransform(this.k, this.tx, this.ty);
    const d = this.root.dataset;
    d.scale = this.k.toFixed(4);
    this.placeOverlay();
    this.minimap.setView(this.k, this.tx, this.ty, this.stage.clientWidth, this.stage.clientHeight);
    this.updateMinimap();
  }

  private fitScale(b: Bounds): number {
    const W = this.stage.clientWidth;
    const H = this.stage.clientHeight;
    if (W < 2 || H < 2) return 1;
    return Math.min(W / (b.x1 - b.x0 + 32), H / (b.y1 - b.y0 + 32), 1.25);
  }

  /** Shows a box of the graph whole, centred, no bigger than `maxK`. */
  private fitBox(b: Bounds, maxK: number): void {
    const W = this.stage.clientWidth;
    const H = this.stage.clientHeight;
    const k = Math.min(this.fitScale(b), maxK);
    this.k = k;
    this.tx = (W - (b.x1 - b.x0) * k) / 2 - b.x0 * k;
    this.ty = (H - (b.y1 - b.y0) * k) / 2 - b.y0 * k;
  }

  /** Home: the whole graph. */
  fit(byUser: boolean): void {
    if (!this.renderer) return;
    const W = this.stage.clientWidth;
    const H = this.stage.clientHeight;
    if (W < 2 || H < 2) {
      this.applyTransform();
      return;
    }
    this.minK = Math.min(0.1, this.fitScale(this.bounds) * 0.5);
    this.fitBox(this.bounds, 1.25);
    this.fitted = true;
    if (byUser) this.userMoved = false;
    this.applyTransform();
  }

  /** The selected node and its neighbours (else the search matches) at a readable scale. */
  private fitSelection(): void {
    const st = this.st;
    if (!st || !this.renderer) return;
    const ids = new Set<number>();
    if (st.selected >= 0) {
      ids.add(st.selected);
      for (const e of st.g.edges) {
        if (e.s === st.selected) ids.add(e.t);
        if (e.t === st.selected) ids.add(e.s);
      }
    } else {
      for (let i = 0; i < st.match.length; i++) if (st.match[i]) ids.add(i);
    }
    if (!ids.size) return;
    let x0 = Infinity;
    let y0 = Infinity;
    let x1 = -Infinity;
    let y1 = -Infinity;
    for (const id of ids) {
      const n = st.g.nodes[id];
      x0 = Math.min(x0, n.x - n.w / 2 - 24);
      x1 = Math.max(x1, n.x + n.w / 2 + 24);
      y0 = Math.min(y0, n.y - n.h / 2 - 24);
      y1 = Math.max(y1, n.y + n.h / 2 + 24);
    }
    this.fitBox({ x0, y0, x1, y1 }, 1.25);
    this.userMoved = true;
    this.applyTransform();
  }

  /** Centres graph point (x, y) at the current scale. */
  private centerOn(x: number, y: number): void {
    this.tx = this.stage.clientWidth / 2 - x * this.k;
    this.ty = this.stage.clientHeight / 2 - y * this.k;
    this.userMoved = true;
    this.clampPan();
    this.applyTransform();
  }

  /** Keeps part of the graph on screen, however far it is panned or zoomed. */
  private clampPan(): void {
    const W = this.stage.clientWidth;
    const H = this.stage.clientHeight;
    if (W < 2 || H < 2) return;
    const b = this.bounds;
    const { k } = this;
    const mx = Math.min(PAN_KEEP, W / 4, ((b.x1 - b.x0) * k) / 2 + 1);
    const my = Math.min(PAN_KEEP, H / 4, ((b.y1 - b.y0) * k) / 2 + 1);
    const x0 = b.x0 * k + this.tx;
    const x1 = b.x1 * k + this.tx;
    const y0 = b.y0 * k + this.ty;
    const y1 = b.y1 * k + this.ty;
    if (x1 < mx) this.tx += mx - x1;
    else if (x0 > W - mx) this.tx -= x0 - (W - mx);
    if (y1 < my) this.ty += my - y1;
    else if (y0 > H - my) this.ty -= y0 - (H - my);
  }

  private zoomAt(x: number, y: number, factor: number): void {
    const k = Math.min(MAX_SCALE, Math.max(this.minK, this.k * factor));
    const f = k / this.k;
    this.tx = x - (x - this.tx) * f;
    this.ty = y - (y - this.ty) * f;
    this.k = k;
    this.userMoved = true;
    this.clampPan();
    this.applyTransform();
  }

  /** A zoom button or key: bigger steps while names are too small to read. */
  private zoomStep(zoomIn: boolean): void {
    const far = this.k < TEXT_SCALE;
    const factor = zoomIn ? (far ? 2 : 1.25) : far ? 0.5 : 0.8;
    this.zoomAt(this.stage.clientWidth / 2, this.stage.clientHeight / 2, factor);
  }

  // -- minimap ------------------------------------------------------------------------------------

  private minimapShown = false;

  /** "auto": shown while part of the graph is off screen or too small to read. */
  private updateMinimap(): void {
    const mode = String(this.model.get("minimap") || "auto");
    const W = this.stage.clientWidth;
    const H = this.stage.clientHeight;
    let show = false;
    if (this.st && this.renderer) {
      if (mode === "on") show = true;
      else if (mode === "auto" && W >= 320 && H >= this.minimap.height + 60) {
        const b = this.bounds;
        const { k, tx, ty } = this;
        const offScreen = b.x0 * k + tx < -2 || b.y0 * k + ty < -2 || b.x1 * k + tx > W + 2 || b.y1 * k + ty > H + 2;
        show = offScreen || k < TEXT_SCALE;
      }
    }
    if (show !== this.minimapShown) {
      this.minimapShown = show;
      this.minimap.el.hidden = !show;
      this.tb.minimap.setAttribute("aria-pressed", String(show));
      this.root.dataset.minimap = show ? "shown" : "hidden";
    }
  }

  private toggleMinimap(): void {
    this.model.set("minimap", this.minimapShown ? "off" : "on");
    this.model.save_changes();
    this.updateMinimap();
  }

  // -- input ----------------------------------------------------------------------------------------

  private onResize(): void {
    if (!this.built) {
      this.build();
      return;
    }
    this.applyHeight();
    if (!this.renderer) return;
    this.renderer.resize(this.stage.clientWidth, this.stage.clientHeight);
    if (!this.fitted || !this.userMoved) this.fit(false);
    else {
      this.clampPan();
      this.applyTransform();
    }
  }

  private onMessage(msg: unknown): void {
    if (!msg || typeof msg !== "object") return;
    const m = msg as Record<string, unknown>;
    if (m.cmd === "find" && typeof m.node === "string" && this.full) {
      const v = this.full.byName.get(m.node);
      if (v !== undefined) this.jumpTo(v);
    } else if (m.cmd === "fit") this.fit(true);
    else if (m.cmd === "fit_selection") this.fitSelection();
  }

  /** Keys work wherever the focus is inside the view, or inside the widget that embeds it (a
   * Debugger marks its element `agentgraph-keys`), and not while typing in a text box. */
  private attachKeys(): void {
    const scope = (this.root.closest(".agentgraph-keys") as HTMLElement | null) ?? this.root;
    if (scope === this.keyScope) return;
    this.keyScope?.removeEventListener("keydown", this.onKey);
    this.keyScope = scope;
    scope.addEventListener("keydown", this.onKey);
    // JupyterLab's command-mode shortcuts (a, b, c, ...) must not fire for keys meant for us.
    scope.setAttribute("data-lm-suppress-shortcuts", "true");
    scope.setAttribute("data-p-suppress-shortcuts", "true");
  }

  private onKey = (e: KeyboardEvent): void => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target)) return;
    const inView = e.target instanceof Node && this.root.contains(e.target);
    const key = e.key;
    const commands = (this.model.get("shortcuts") ?? {}) as Record<string, string>;
    const lower = key.length === 1 ? key.toLowerCase() : key;
    let done = true;
    if (!e.shiftKey && typeof commands[lower] === "string") this.send({ event: "command", command: commands[lower] });
    else if (key === "/") this.search.focus();
    else if (key === "Home" || key === "0") this.fit(true);
    else if (lower === "f") this.fitSelection();
    else if (lower === "m") this.toggleMinimap();
    else if (key === "+" || key === "=") this.zoomStep(true);
    else if (key === "-" || key === "_") this.zoomStep(false);
    else if (lower === "b") {
      const st = this.st;
      const focused = inView ? focusedNode(e.target) : -1;
      const id = focused >= 0 ? focused : st ? st.selected : -1;
      if (st && id >= 0 && st.g.nodes[id].kind === "node") this.toggleBreakpoint(id, e.shiftKey ? BP_AFTER : BP_BEFORE);
      else done = false;
    } else if (inView && key.startsWith("Arrow")) {
      const step = 60;
      this.tx += key === "ArrowLeft" ? step : key === "ArrowRight" ? -step : 0;
      this.ty += key === "ArrowUp" ? step : key === "ArrowDown" ? -step : 0;
      this.userMoved = true;
      this.clampPan();
      this.applyTransform();
    } else if (inView && key === "Escape") this.select(-1);
    else if (inView && (key === "Enter" || key === " ") && this.renderer && this.st) {
      const id = focusedNode(e.target);
      if (id >= 0 && selectable(this.st.g, id)) this.clickNode(id, e.shiftKey);
      else done = false;
    } else done = false;
    if (done) {
      e.preventDefault();
      e.stopPropagation();
    }
  };

  private bindPointer(): void {
    const stage = this.stage;
    let down: { x: number; y: number; tx: number; ty: number; target: EventTarget | null; id: number } | null = null;
    let moved = false;
    let hoverFrame = 0;
    let lastMove: PointerEvent | null = null;
    const onDown = (e: PointerEvent) => {
      if (e.button !== 0) return;
      if (e.target instanceof Element && e.target.closest(".agn-gutter, .agn-minimap")) return;
      down = { x: e.clientX, y: e.clientY, tx: this.tx, ty: this.ty, target: e.target, id: e.pointerId };
      moved = false;
    };
    const hoverAt = () => {
      hoverFrame = 0;
      const e = lastMove;
      if (!e || !this.renderer || !this.st) return;
      if (e.target instanceof Element && e.target.closest(".agn-gutter")) return;
      const id = this.renderer.pick(e.clientX, e.clientY, e.target);
      const next = id >= 0 && this.st.g.nodes[id].kind === "node" ? id : -1;
      if (next !== this.hover) {
        this.hover = next;
        this.placeOverlay();
      }
    };
    const onMove = (e: PointerEvent) => {
      if (!down || e.pointerId !== down.id) {
        if (!down && e.pointerType !== "touch") {
          lastMove = e;
          if (!hoverFrame) hoverFrame = requestAnimationFrame(hoverAt);
        }
        return;
      }
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
      this.clampPan();
      this.applyTransform();
    };
    const onUp = (e: PointerEvent) => {
      if (!down || e.pointerId !== down.id) return;
      const d = down;
      down = null;
      stage.classList.remove("agn-dragging");
      if (moved || !this.renderer || !this.st) return;
      const cluster = d.target instanceof Element ? d.target.closest("[data-cluster]") : null;
      if (cluster) {
        this.collapseGroup(cluster.getAttribute("data-cluster") ?? "");
        return;
      }
      const id = this.renderer.pick(e.clientX, e.clientY, d.target);
      if (id < 0 || !selectable(this.st.g, id)) return;
      this.clickNode(id, e.shiftKey || e.altKey);
    };
    const onLeave = () => {
      if (this.hover >= 0) {
        this.hover = -1;
        this.placeOverlay();
      }
    };
    const onWheel = (e: WheelEvent) => {
      if (!this.renderer) return;
      e.preventDefault();
      const r = stage.getBoundingClientRect();
      const unit = e.deltaMode === 1 ? 0.05 : e.deltaMode === 2 ? 1 : 0.0015;
      this.zoomAt(e.clientX - r.left, e.clientY - r.top, Math.exp(-e.deltaY * unit));
    };
    const onDblClick = (e: MouseEvent) => {
      if (!this.renderer || !this.st) return;
      if (e.target instanceof Element && e.target.closest(".agn-gutter, .agn-minimap")) return;
      const r = stage.getBoundingClientRect();
      if (this.k < READ_SCALE) this.zoomAt(e.clientX - r.left, e.clientY - r.top, Math.min(2, READ_SCALE / this.k) || 2);
    };
    stage.addEventListener("pointerdown", onDown);
    stage.addEventListener("pointermove", onMove);
    stage.addEventListener("pointerup", onUp);
    stage.addEventListener("pointercancel", onUp);
    stage.addEventListener("pointerleave", onLeave);
    stage.addEventListener("wheel", onWheel, { passive: false });
    stage.addEventListener("dblclick", onDblClick);
  }

  destroy(): void {
    for (const f of this.off) f();
    this.off = [];
    this.keyScope?.removeEventListener("keydown", this.onKey);
    this.resizeObserver?.disconnect();
    this.renderer?.destroy();
    this.minimap.destroy();
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
