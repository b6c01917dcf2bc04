// One palette for both renderers: the SVG view gets it as CSS, the canvas view reads it directly.
import type { EdgeKind } from "./model";

export const STATUSES = ["idle", "pending", "running", "done", "failed", "retrying", "interrupted", "cached"] as const;
export type Status = (typeof STATUSES)[number];

export const STATUS_COLORS: Record<Status, { fill: string; stroke: string }> = {
  idle: { fill: "#f7f7f8", stroke: "#9aa0a6" },
  pending: { fill: "#eef1f4", stroke: "#b0bec5" },
  running: { fill: "#e3f0fd", stroke: "#1e88e5" },
  done: { fill: "#e6f4ea", stroke: "#34a853" },
  failed: { fill: "#fdecea", stroke: "#d93025" },
  retrying: { fill: "#fff4e5", stroke: "#f29900" },
  interrupted: { fill: "#f3e8fd", stroke: "#9334e6" },
  // skipped: its result came from the node cache (CachePolicy)
  cached: { fill: "#e0f2f1", stroke: "#00897b" },
};

export function asStatus(s: unknown): Status {
  return typeof s === "string" && (STATUSES as readonly string[]).includes(s) ? (s as Status) : "idle";
}

export const EDGE_STYLE: Record<EdgeKind, { color: string; dash: number[] }> = {
  static: { color: "#8a939b", dash: [] },
  conditional: { color: "#5c6bc0", dash: [6, 4] },
  weighted: { color: "#00897b", dash: [] },
  join: { color: "#8d6e63", dash: [] },
  dynamic: { color: "#5c6bc0", dash: [3, 3] },
  error: { color: "#d93025", dash: [5, 4] },
};

export const EDGE_BASE_WIDTH = 1.5;
export const NODE_TEXT = "#202124";
export const BREAKPOINT = "#d93025";
export const SELECTED = "#1a73e8";
/** The outline of the nodes next to run (the `current` trait). */
export const CURRENT = "#3c4043";
/** Search matches and the node the search jumped to. */
export const HIGHLIGHT = "#e37400";

/** CSS for the status and edge colours, generated from the palette above. */
export function paletteCss(): string {
  const out: string[] = [];
  for (const s of STATUSES) {
    const c = STATUS_COLORS[s];
    out.push(
      `.agn-gv .agn-node[data-status="${s}"]>rect{fill:${c.fill};stroke:${c.stroke}}`,
      `.agn-gv .agn-mm-key[data-status="${s}"]{background:${c.stroke}}`,
      `.agn-gv .agn-chip[data-status="${s}"],.agn-gv .agn-badge[data-status="${s}"]{background:${c.fill};border-color:${c.stroke}}`,
    );
  }
  for (const [k, st] of Object.entries(EDGE_STYLE)) {
    out.push(
      `.agn-gv .agn-edge-${k}{stroke:${st.color}${st.dash.length ? `;stroke-dasharray:${st.dash.join(" ")}` : ""}}`,
      `.agn-gv .agn-elabel-${k}{fill:${st.color}}`,
      `.agn-gv .agn-arrow-${k}{fill:${st.color}}`,
    );
  }
  return out.join("\n");
}

export interface PathSink {
  moveTo(x: number, y: number): void;
  lineTo(x: number, y: number): void;
  quadraticCurveTo(cx: number, cy: number, x: number, y: number): void;
  bezierCurveTo(c1x: number, c1y: number, c2x: number, c2y: number, x: number, y: number): void;
}

type Pt = { x: number; y: number };

/** Traces an edge route: a horizontal S-curve for two points going right, else a smoothed polyline. */
export function tracePath(p: Pt[], sink: PathSink): void {
  const n = p.length;
  if (n < 2) return;
  sink.moveTo(p[0].x, p[0].y);
  if (n === 2) {
    const dx = (p[1].x - p[0].x) / 2;
    if (dx > 0) sink.bezierCurveTo(p[0].x + dx, p[0].y, p[1].x - dx, p[1].y, p[1].x, p[1].y);
    else sink.lineTo(p[1].x, p[1].y);
    return;
  }
  for (let i = 1; i < n - 1; i++) {
    const end = i < n - 2 ? { x: (p[i].x + p[i + 1].x) / 2, y: (p[i].y + p[i + 1].y) / 2 } : p[n - 1];
    sink.quadraticCurveTo(p[i].x, p[i].y, end.x, end.y);
  }
}

/** The direction (unit vector) in which an edge enters its target, for the arrow head. */
export function arrowDir(p: Pt[]): Pt {
  const n = p.length;
  const a = n === 2 && p[1].x > p[0].x ? { x: p[1].x - 1, y: p[1].y } : p[n - 2];
  const b = p[n - 1];
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len = Math.hypot(dx, dy) || 1;
  return { x: dx / len, y: dy / len };
}

/** Collects a path as an SVG `d` attribute. */
export class SvgPath implements PathSink {
  d = "";
  private static f(v: number): string {
    return String(Math.round(v * 10) / 10);
  }
  moveTo(x: number, y: number) {
    this.d += `M${SvgPath.f(x)} ${SvgPath.f(y)}`;
  }
  lineTo(x: number, y: number) {
    this.d += `L${SvgPath.f(x)} ${SvgPath.f(y)}`;
  }
  quadraticCurveTo(cx: number, cy: number, x: number, y: number) {
    this.d += `Q${SvgPath.f(cx)} ${SvgPath.f(cy)} ${SvgPath.f(x)} ${SvgPath.f(y)}`;
  }
  bezierCurveTo(a: number, b: number, c: number, d: number, x: number, y: number) {
    const f = SvgPath.f;
    this.d += `C${f(a)} ${f(b)} ${f(c)} ${f(d)} ${f(x)} ${f(y)}`;
  }
}
