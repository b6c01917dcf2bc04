// The canvas renderer, for big graphs (thousands to tens of thousands of nodes): one redraw per
// animation frame at most, only what is on screen (culling), edges and nodes batched into one
// path per colour, text only when it is big enough to read (level of detail).
import type { EdgeKind, VNode } from "./model";
import {
  BREAKPOINT, CURRENT, EDGE_BASE_WIDTH, EDGE_STYLE, HIGHLIGHT, NODE_TEXT, SELECTED, STATUS_COLORS, STATUSES, arrowDir,
  tracePath,
} from "./style";
import { BP_AFTER, BP_BEFORE, type Renderer, type ViewState } from "./view";

const TEXT_MIN_SCALE = 0.45;
const FAR_SCALE = 0.3;
const EDGE_LABEL_MIN_SCALE = 0.6;
const TEXT_MAX_VISIBLE = 4000;
const GROUP_TEXT_MIN_SCALE = 0.3;
/** Search matches whose names are drawn however far out the view is. */
const MATCH_LABELS_MAX = 200;

export class CanvasRenderer implements Renderer {
  readonly kind = "canvas" as const;
  readonly canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  private k = 1;
  private tx = 0;
  private ty = 0;
  private w = 1;
  private h = 1;
  private dpr = 1;
  private frame = 0;
  private ebox: Float64Array;
  private font: string;
  /** Milliseconds the last full draw took. */
  lastDrawMs = 0;
  draws = 0;

  constructor(host: HTMLElement, private st: ViewState) {
    this.canvas = document.createElement("canvas");
    this.canvas.className = "agn-canvas";
    this.canvas.setAttribute("data-testid", "graphview-canvas");
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", `graph ${st.g.name}: ${st.g.userNodes} nodes`);
    host.appendChild(this.canvas);
    this.ctx = this.canvas.getContext("2d") as CanvasRenderingContext2D;
    const family = getComputedStyle(host).fontFamily || "sans-serif";
    this.font = `12px ${family}`;
    const E = st.g.edges.length;
    this.ebox = new Float64Array(E * 4);
    st.g.edges.forEach((e, i) => {
      let x0 = Infinity;
      let y0 = Infinity;
      let x1 = -Infinity;
      let y1 = -Infinity;
      for (const p of e.points) {
        x0 = Math.min(x0, p.x);
        y0 = Math.min(y0, p.y);
        x1 = Math.max(x1, p.x);
        y1 = Math.max(y1, p.y);
      }
      this.ebox[i * 4] = x0;
      this.ebox[i * 4 + 1] = y0;
      this.ebox[i * 4 + 2] = x1;
      this.ebox[i * 4 + 3] = y1;
    });
    this.resize(host.clientWidth, host.clientHeight);
  }

  setTransform(k: number, tx: number, ty: number): void {
    this.k = k;
    this.tx = tx;
    this.ty = ty;
    this.schedule();
  }

  resize(width: number, height: number): void {
    this.dpr = window.devicePixelRatio || 1;
    this.w = Math.max(1, width);
    this.h = Math.max(1, height);
    this.canvas.width = Math.round(this.w * this.dpr);
    this.canvas.height = Math.round(this.h * this.dpr);
    this.canvas.style.width = `${this.w}px`;
    this.canvas.style.height = `${this.h}px`;
    this.schedule();
  }

  statusChanged(): void {
    this.schedule();
  }
  edgesChanged(): void {
    this.schedule();
  }
  selectionChanged(): void {
    this.schedule();
  }
  breakpointsChanged(): void {
    this.schedule();
  }
  currentChanged(): void {
    this.schedule();
  }
  matchesChanged(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  /** Draws now (the widget calls this once synchronously after a build, to time it). */
  draw(): void {
    const t0 = performance.now();
    const { ctx, st, k } = this;
    const g = st.g;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.setTransform(this.dpr * k, 0, 0, this.dpr * k, this.dpr * this.tx, this.dpr * this.ty);
    const vx0 = -this.tx / k;
    const vy0 = -this.ty / k;
    const vx1 = (this.w - this.tx) / k;
    const vy1 = (this.h - this.ty) / k;
    const px = 1 / k; // one screen pixel in world units

    // Edges, batched per kind; edges with a route count get their own width.
    const visibleEdges: number[] = [];
    const eb = this.ebox;
    for (let i = 0; i < g.edges.length; i++) {
      if (eb[i * 4 + 2] < vx0 || eb[i * 4] > vx1 || eb[i * 4 + 3] < vy0 || eb[i * 4 + 1] > vy1) continue;
      visibleEdges.push(i);
    }
    const kinds = Object.keys(EDGE_STYLE) as EdgeKind[];
    const far = k < FAR_SCALE;
    ctx.lineCap = "round";
    ctx.globalAlpha = far ? 0.35 : 1;
    for (const kind of kinds) {
      const style = EDGE_STYLE[kind];
      ctx.strokeStyle = style.color;
      ctx.fillStyle = style.color;
      ctx.setLineDash(k * 6 > 3 ? style.dash : []);
      ctx.lineWidth = Math.max(EDGE_BASE_WIDTH, 0.7 * px);
      ctx.beginPath();
      let any = false;
      for (const i of visibleEdges) {
        const e = g.edges[i];
        if (e.kind !== kind) continue;
        if (st.edgeWidth[i] !== EDGE_BASE_WIDTH) continue;
        tracePath(e.points, ctx);
        any = true;
      }
      if (any) ctx.stroke();
      for (const i of visibleEdges) {
        const e = g.edges[i];
        if (e.kind !== kind || st.edgeWidth[i] === EDGE_BASE_WIDTH) continue;
        ctx.lineWidth = Math.max(st.edgeWidth[i], 0.7 * px);
        ctx.beginPath();
        tracePath(e.points, ctx);
        ctx.stroke();
      }
      if (k > 0.3) {
        ctx.setLineDash([]);
        ctx.beginPath();
        for (const i of visibleEdges) {
          const e = g.edges[i];
          if (e.kind !== kind || e.points.length < 2 || g.nodes[e.t].kind === "join") continue;
          const end = e.points[e.points.length - 1];
          const d = arrowDir(e.points);
          const bx = end.x - d.x * 8;
          const by = end.y - d.y * 8;
          ctx.moveTo(end.x, end.y);
          ctx.lineTo(bx - d.y * 4, by + d.x * 4);
          ctx.lineTo(bx + d.y * 4, by - d.x * 4);
          ctx.closePath();
        }
        ctx.fill();
      }
    }
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;

    // Nodes, batched per status; never smaller than a few pixels, so a run shows at any zoom.
    const minW = 4 * px;
    const minH = 3 * px;
    const visible: VNode[] = [];
    for (const n of g.nodes) {
      if (n.x + n.w / 2 < vx0 || n.x - n.w / 2 > vx1 || n.y + n.h / 2 < vy0 || n.y - n.h / 2 > vy1) continue;
      visible.push(n);
    }
    const round = k > 0.25;
    ctx.lineWidth = Math.max(1.2, 0.6 * px);
    // Groups look like a stack of nodes: the card behind first.
    for (const s of STATUSES) {
      ctx.beginPath();
      let any = false;
      for (const n of visible) {
        if (n.kind !== "group" || st.status[n.id] !== s) continue;
        if (round) ctx.roundRect(n.x - n.w / 2 + 4, n.y - n.h / 2 - 4, n.w, n.h, 7);
        else ctx.rect(n.x - n.w / 2 + 4, n.y - n.h / 2 - 4, n.w, n.h);
        any = true;
      }
      if (!any) continue;
      ctx.fillStyle = STATUS_COLORS[s].fill;
      ctx.strokeStyle = STATUS_COLORS[s].stroke;
      ctx.fill();
      ctx.stroke();
    }
    for (const s of STATUSES) {
      const c = STATUS_COLORS[s];
      ctx.beginPath();
      let any = false;
      for (const n of visible) {
        if ((n.kind !== "node" && n.kind !== "group") || st.status[n.id] !== s) continue;
        const w = Math.max(n.w, minW);
        const h = Math.max(n.h, minH);
        if (round) ctx.roundRect(n.x - w / 2, n.y - h / 2, w, h, 7);
        else ctx.rect(n.x - w / 2, n.y - h / 2, w, h);
        any = true;
      }
      if (!any) continue;
      ctx.fillStyle = c.fill;
      ctx.strokeStyle = c.stroke;
      ctx.fill();
      ctx.stroke();
    }
    // START/END, junctions, router stubs.
    for (const [kind, colour] of [["start", "#5f6368"], ["join", EDGE_STYLE.join.color]] as const) {
      ctx.beginPath();
      for (const n of visible) {
        if (n.kind !== kind) continue;
        ctx.moveTo(n.x + n.w / 2, n.y);
        ctx.arc(n.x, n.y, n.w / 2, 0, 2 * Math.PI);
      }
      ctx.fillStyle = colour;
      ctx.fill();
    }
    for (const n of visible) {
      if (n.kind === "end") {
        ctx.beginPath();
        ctx.arc(n.x, n.y, 10, 0, 2 * Math.PI);
        ctx.fillStyle = "#ffffff";
        ctx.strokeStyle = "#5f6368";
        ctx.lineWidth = 2;
        ctx.fill();
        ctx.stroke();
        ctx.beginPath();
        ctx.arc(n.x, n.y, 5.5, 0, 2 * Math.PI);
        ctx.fillStyle = "#5f6368";
        ctx.fill();
      } else if (n.kind === "dynamic") {
        ctx.beginPath();
        ctx.roundRect(n.x - n.w / 2, n.y - n.h / 2, n.w, n.h, n.h / 2);
        ctx.setLineDash([3, 3]);
        ctx.strokeStyle = EDGE_STYLE.dynamic.color;
        ctx.lineWidth = 1.2;
        ctx.fillStyle = "#ffffff";
        ctx.fill();
        ctx.stroke();
        ctx.setLineDash([]);
      }
    }
    // Next to run, breakpoints (before: top left, after: top right) and the selection.
    ctx.beginPath();
    let anyCurrent = false;
    for (const n of visible) {
      if (!st.current[n.id] || (n.kind !== "node" && n.kind !== "group")) continue;
      const w = Math.max(n.w, minW);
      const h = Math.max(n.h, minH);
      if (round) ctx.roundRect(n.x - w / 2, n.y - h / 2, w, h, 7);
      else ctx.rect(n.x - w / 2, n.y - h / 2, w, h);
      anyCurrent = true;
    }
    if (anyCurrent) {
      ctx.strokeStyle = CURRENT;
      ctx.lineWidth = Math.max(3, 1.5 * px);
      ctx.stroke();
    }
    ctx.beginPath();
    for (const n of visible) {
      const bits = st.breakpoints[n.id];
      if (!bits) continue;
      const y = n.y - n.h / 2 + 3;
      for (const [bit, x] of [[BP_BEFORE, n.x - n.w / 2 + 3], [BP_AFTER, n.x + n.w / 2 - 3]]) {
        if (!(bits & bit)) continue;
        ctx.moveTo(x + 4.5, y);
        ctx.arc(x, y, 4.5, 0, 2 * Math.PI);
      }
    }
    ctx.fillStyle = BREAKPOINT;
    ctx.fill();
    if (st.selected >= 0) {
      const n = g.nodes[st.selected];
      ctx.strokeStyle = SELECTED;
      ctx.lineWidth = Math.max(2.5, 2 * px);
      ctx.beginPath();
      if (n.kind === "node" || n.kind === "group") ctx.roundRect(n.x - n.w / 2 - 3, n.y - n.h / 2 - 3, n.w + 6, n.h + 6, 9);
      else ctx.arc(n.x, n.y, n.w / 2 + 3, 0, 2 * Math.PI);
      ctx.stroke();
    }
    // Search matches: an orange outline (never thinner than 2 screen pixels, so they stand out
    // zoomed far out); the widget rings the node the search jumped to in its overlay.
    const matched: VNode[] = [];
    for (const n of visible) if (st.match[n.id]) matched.push(n);
    if (matched.length) {
      ctx.strokeStyle = HIGHLIGHT;
      ctx.lineWidth = Math.max(2.5, 2.5 * px);
      ctx.beginPath();
      for (const n of matched) {
        const w = Math.max(n.w, minW) + 8 * px;
        const h = Math.max(n.h, minH) + 8 * px;
        ctx.rect(n.x - w / 2, n.y - h / 2, w, h);
      }
      ctx.stroke();
    }

    // Text, when readable.
    if (k >= TEXT_MIN_SCALE && visible.length <= TEXT_MAX_VISIBLE) {
      ctx.font = this.font;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillStyle = NODE_TEXT;
      for (const n of visible) {
        if (n.kind === "node") ctx.fillText(n.text, n.x, n.y);
      }
      for (const n of visible) {
        if (n.kind === "group") ctx.fillText(n.text, n.x - 6, n.y - 7);
      }
      ctx.font = `11px ${this.font.slice(5)}`;
      ctx.fillStyle = "#5f6368";
      for (const n of visible) {
        if (n.kind === "group") ctx.fillText(`${n.sub ?? ""}`, n.x - 6, n.y + 8);
      }
      ctx.font = `italic 11px ${this.font.slice(5)}`;
      ctx.fillStyle = EDGE_STYLE.dynamic.color;
      for (const n of visible) {
        if (n.kind === "dynamic") ctx.fillText(n.text, n.x, n.y);
      }
      if (k >= EDGE_LABEL_MIN_SCALE && visibleEdges.length <= TEXT_MAX_VISIBLE) {
        ctx.font = `11px ${this.font.slice(5)}`;
        for (const i of visibleEdges) {
          const e = g.edges[i];
          if (!e.label) continue;
          ctx.globalAlpha = 0.85;
          ctx.fillStyle = "#ffffff";
          ctx.fillRect(e.lx - e.lw / 2, e.ly - e.lh / 2, e.lw, e.lh);
          ctx.globalAlpha = 1;
          ctx.fillStyle = EDGE_STYLE[e.kind].color;
          ctx.fillText(e.label, e.lx, e.ly);
        }
      }
    }
    // Far out, groups and search matches still say what they are: labels at screen size.
    const labels: { n: VNode; text: string }[] = [];
    if (k < TEXT_MIN_SCALE && k >= GROUP_TEXT_MIN_SCALE / 4) {
      for (const n of visible) if (n.kind === "group") labels.push({ n, text: `${n.text} (${n.sub ?? ""})` });
    }
    if (k < TEXT_MIN_SCALE) {
      for (const n of matched.slice(0, MATCH_LABELS_MAX)) labels.push({ n, text: n.kind === "group" ? n.text : n.label });
      if (st.found >= 0 && !st.match[st.found]) labels.push({ n: g.nodes[st.found], text: g.nodes[st.found].label });
    }
    if (labels.length) {
      ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
      ctx.font = this.font;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      for (const { n, text } of labels) {
        const sx = n.x * k + this.tx;
        const sy = (n.y - n.h / 2) * k + this.ty - 12;
        const w = ctx.measureText(text).width + 10;
        ctx.fillStyle = "rgba(255,255,255,0.92)";
        ctx.strokeStyle = st.match[n.id] || n.id === st.found ? HIGHLIGHT : "#9aa0a6";
        ctx.lineWidth = 1;
        ctx.beginPath();
        ctx.roundRect(sx - w / 2, sy - 9, w, 18, 9);
        ctx.fill();
        ctx.stroke();
        ctx.fillStyle = NODE_TEXT;
        ctx.fillText(text, sx, sy);
      }
    }
    this.draws++;
    this.lastDrawMs = performance.now() - t0;
  }

  pick(clientX: number, clientY: number): number {
    const r = this.canvas.getBoundingClientRect();
    const x = (clientX - r.left - this.tx) / this.k;
    const y = (clientY - r.top - this.ty) / this.k;
    const nodes = this.st.g.nodes;
    for (let i = nodes.length - 1; i >= 0; i--) {
      const n = nodes[i];
      if (n.kind === "join" || n.kind === "dynamic") continue;
      if (Math.abs(x - n.x) <= n.w / 2 && Math.abs(y - n.y) <= n.h / 2) return n.id;
    }
    return -1;
  }

  destroy(): void {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.canvas.remove();
  }
}
