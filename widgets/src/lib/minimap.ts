// The minimap: the whole graph in a small corner picture (nodes in their status colours) with a
// rectangle for what the view shows. A click or drag on it moves the view there, so a graph of
// thousands of nodes can be crossed in one gesture and is never lost off screen. The picture is
// redrawn only when the graph or a status changes; moving the view only moves the rectangle.
import type { Bounds } from "./layout";
import { STATUS_COLORS } from "./style";
import type { ViewState } from "./view";

const MAX_W = 200;
const MAX_H = 120;
const MIN_SIDE = 36;
const PAD = 4;
const IDLE = "#9aa0a6";
/** Above this many edges the minimap draws nodes only. */
const EDGES_MAX = 4000;

export class Minimap {
  readonly el: HTMLDivElement;
  private canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D | null;
  private vp: HTMLDivElement;
  private st: ViewState | null = null;
  private s = 1;
  private ox = 0;
  private oy = 0;
  private w = MAX_W;
  private h = MAX_H;
  private frame = 0;
  draws = 0;

  /** `jump(x, y)`: centre the view on this graph point. */
  constructor(private jump: (x: number, y: number) => void) {
    this.el = document.createElement("div");
    this.el.className = "agn-minimap";
    this.el.setAttribute("data-testid", "graphview-minimap");
    this.el.setAttribute("role", "img");
    this.el.setAttribute("aria-label", "minimap: click or drag to move the view");
    this.el.title = "Minimap: click or drag to move the view";
    this.canvas = document.createElement("canvas");
    this.ctx = this.canvas.getContext("2d");
    this.vp = document.createElement("div");
    this.vp.className = "agn-minimap-vp";
    this.vp.setAttribute("data-testid", "graphview-minimap-viewport");
    this.el.append(this.canvas, this.vp);
    let dragging = -1;
    const go = (e: PointerEvent) => {
      const r = this.canvas.getBoundingClientRect();
      this.jump((e.clientX - r.left - this.ox) / this.s, (e.clientY - r.top - this.oy) / this.s);
    };
    this.el.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      e.stopPropagation();
      e.preventDefault();
      dragging = e.pointerId;
      try {
        this.el.setPointerCapture(e.pointerId);
      } catch {
        /* the pointer may already be gone */
      }
      go(e);
    });
    this.el.addEventListener("pointermove", (e) => {
      if (e.pointerId !== dragging) return;
      e.stopPropagation();
      go(e);
    });
    const up = (e: PointerEvent) => {
      if (e.pointerId === dragging) dragging = -1;
      e.stopPropagation();
    };
    this.el.addEventListener("pointerup", up);
    this.el.addEventListener("pointercancel", up);
    this.el.addEventListener("wheel", (e) => e.stopPropagation(), { passive: true });
  }

  /** The minimap's height in px for the current graph. */
  get height(): number {
    return this.h;
  }

  setGraph(st: ViewState, b: Bounds): void {
    this.st = st;
    const bw = Math.max(1, b.x1 - b.x0);
    const bh = Math.max(1, b.y1 - b.y0);
    // As wide as it can be; a very long graph is a strip, never thinner than MIN_SIDE.
    let w = MAX_W;
    let h = Math.round((MAX_W * bh) / bw);
    if (h > MAX_H) {
      h = MAX_H;
      w = Math.max(MIN_SIDE * 2, Math.round((MAX_H * bw) / bh));
    }
    h = Math.max(MIN_SIDE, h);
    this.w = w;
    this.h = h;
    this.s = Math.min((w - 2 * PAD) / bw, (h - 2 * PAD) / bh);
    this.ox = (w - bw * this.s) / 2 - b.x0 * this.s;
    this.oy = (h - bh * this.s) / 2 - b.y0 * this.s;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    this.el.style.width = `${w}px`;
    this.el.style.height = `${h}px`;
    this.draw();
  }

  /** Statuses changed: redraw on the next frame (at most one redraw per frame). */
  changed(): void {
    if (this.frame || !this.st) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  private draw(): void {
    const ctx = this.ctx;
    const st = this.st;
    if (!ctx || !st) return;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const { s, ox, oy } = this;
    const g = st.g;
    if (g.edges.length <= EDGES_MAX) {
      ctx.strokeStyle = "rgba(138,147,155,0.45)";
      ctx.lineWidth = 0.6;
      ctx.beginPath();
      for (const e of g.edges) {
        const p = e.points;
        if (p.length < 2) continue;
        ctx.moveTo(p[0].x * s + ox, p[0].y * s + oy);
        ctx.lineTo(p[p.length - 1].x * s + ox, p[p.length - 1].y * s + oy);
      }
      ctx.stroke();
    }
    const byColour = new Map<string, number[]>();
    for (const n of g.nodes) {
      if (n.kind !== "node" && n.kind !== "group") continue;
      const status = st.status[n.id];
      const colour = st.match[n.id] || n.id === st.found ? "#e37400" : status === "idle" ? IDLE : STATUS_COLORS[status].stroke;
      let list = byColour.get(colour);
      if (!list) byColour.set(colour, (list = []));
      list.push(n.id);
    }
    // Highlights last, so a match is never hidden under its neighbours.
    const order = [...byColour.keys()].sort((a, b) => (a === "#e37400" ? 1 : 0) - (b === "#e37400" ? 1 : 0));
    for (const colour of order) {
      ctx.fillStyle = colour;
      ctx.beginPath();
      const big = colour === "#e37400" ? 2 : 0;
      for (const id of byColour.get(colour) ?? []) {
        const n = g.nodes[id];
        const w = Math.max(1.5 + big, n.w * s);
        const h = Math.max(1.5 + big, n.h * s);
        ctx.rect(n.x * s + ox - w / 2, n.y * s + oy - h / 2, w, h);
      }
      ctx.fill();
    }
    this.draws++;
  }

  /** Moves the rectangle to what a view of size W x H shows at scale k, offset (tx, ty). */
  setView(k: number, tx: number, ty: number, W: number, H: number): void {
    const x0 = Math.max(0, (-tx / k) * this.s + this.ox);
    const y0 = Math.max(0, (-ty / k) * this.s + this.oy);
    const x1 = Math.min(this.w, ((W - tx) / k) * this.s + this.ox);
    const y1 = Math.min(this.h, ((H - ty) / k) * this.s + this.oy);
    const w = Math.max(4, x1 - x0);
    const h = Math.max(4, y1 - y0);
    const st = this.vp.style;
    st.left = `${Math.min(x0, this.w - 4)}px`;
    st.top = `${Math.min(y0, this.h - 4)}px`;
    st.width = `${w}px`;
    st.height = `${h}px`;
  }

  destroy(): void {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.el.remove();
  }
}
