// What both renderers share: the view state they draw and the interface the widget drives.
import type { VGraph } from "./model";
import type { Status } from "./style";

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
  /** 1 where a node has a breakpoint. */
  breakpoints: Uint8Array;
}

export interface Renderer {
  readonly kind: "svg" | "canvas";
  setTransform(k: number, tx: number, ty: number): void;
  resize(width: number, height: number): void;
  statusChanged(ids: number[]): void;
  edgesChanged(): void;
  selectionChanged(prev: number, next: number): void;
  breakpointsChanged(ids: number[]): void;
  /** The node id under a pointer (client coordinates), or -1. */
  pick(clientX: number, clientY: number, target: EventTarget | null): number;
  destroy(): void;
}

export function selectable(g: VGraph, id: number): boolean {
  const k = g.nodes[id]?.kind;
  return k === "node" || k === "start" || k === "end";
}
