// What both renderers share: the view state they draw and the interface the widget drives.
import type { VGraph } from "./model";
import type { Status } from "./style";

/** Breakpoint bits per node: pause before it runs, pause after its step. */
export const BP_BEFORE = 1;
export const BP_AFTER = 2;

export interface ViewState {
  g: VGraph;
  /** Status per node id. */
  status: Status[];
  /** Stroke width per edge id (route frequency). */
  edgeWidth: Float64Array;
  /** Route count per edge id (0 when unknown). */
  edgeCount: Float64Array;
  /** Selected node id, or -1. */
  selected: number;
  /** Breakpoint bits (BP_BEFORE | BP_AFTER) per node id. */
  breakpoints: Uint8Array;
  /** 1 where a node is next to run (the `current` trait). */
  current: Uint8Array;
  /** 1 where a node matches the search box; the node the search jumped to, or -1. */
  match: Uint8Array;
  found: number;
  /** Expanded subgraphs drawn as boxes around their nodes (a click on the title collapses). */
  clusters?: Cluster[];
}

/** A drawn subgraph box, in graph coordinates; `key` is its group ("sub:team"). */
export interface Cluster {
  key: string;
  label: string;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface Renderer {
  readonly kind: "svg" | "canvas";
  setTransform(k: number, tx: number, ty: number): void;
  resize(width: number, height: number): void;
  statusChanged(ids: number[]): void;
  edgesChanged(): void;
  selectionChanged(prev: number, next: number): void;
  breakpointsChanged(ids: number[]): void;
  currentChanged(ids: number[]): void;
  /** Loop nodes' live counts ("3/10" by node name) changed; renderers without badges skip it. */
  loopsChanged?(counts: Record<string, string>): void;
  /** Search matches or the found node changed (redraw their highlight). */
  matchesChanged(): void;
  /** The node id under a pointer (client coordinates), or -1. */
  pick(clientX: number, clientY: number, target: EventTarget | null): number;
  destroy(): void;
}

export function selectable(g: VGraph, id: number): boolean {
  const k = g.nodes[id]?.kind;
  return k === "node" || k === "start" || k === "end" || k === "group";
}

/**
 * One entry of the `breakpoints` trait as [user node id, bit]: `"name"` (or `"name:before"`)
 * pauses before the node, `"name:after"` after it. A name that is itself a node wins, so a node
 * called `"x:after"` can still have a breakpoint before it. Null for anything else.
 */
export function parseBreakpoint(g: VGraph, entry: unknown): [number, number] | null {
  if (typeof entry !== "string") return null;
  const user = (name: string): number => {
    const id = g.byName.get(name);
    return id !== undefined && g.nodes[id].kind === "node" ? id : -1;
  };
  const whole = user(entry);
  if (whole >= 0) return [whole, BP_BEFORE];
  const colon = entry.lastIndexOf(":");
  if (colon < 0) return null;
  const when = entry.slice(colon + 1);
  const id = user(entry.slice(0, colon));
  if (id < 0) return null;
  if (when === "after") return [id, BP_AFTER];
  if (when === "before") return [id, BP_BEFORE];
  return null;
}
