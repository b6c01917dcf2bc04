// The graph description (app.to_json()) turned into what the view draws: nodes and edges
// with integer ids, the implicit START/END nodes when edges touch them, one junction per
// join, and a stub per dynamic router.

export const START = "__start__";
export const END = "__end__";

export interface NodeJSON {
  name: string;
  target?: string | null;
  async?: boolean;
  retry?: Record<string, unknown> | null;
  timeout?: number | null;
  [key: string]: unknown;
}

export interface GraphJSON {
  format?: string;
  version?: number;
  name?: string;
  nodes?: NodeJSON[];
  edges?: { source: string; target: string }[];
  joins?: { sources: string[]; target: string }[];
  branches?: {
    source: string;
    router?: string;
    router_target?: string | null;
    targets?: string[] | null;
    path_map?: Record<string, string> | null;
  }[];
  weighted?: { source: string; weights: Record<string, number> }[];
  error_edges?: { source: string; target: string; on: string[] }[];
}

/** node: a user node; start/end: the implicit ends; join: a join's junction; dynamic: a router
 * stub; group: collapsed chain or fan of user nodes (see collapse.ts). */
export type NodeKind = "node" | "start" | "end" | "join" | "dynamic" | "group";
export type EdgeKind = "static" | "conditional" | "weighted" | "join" | "dynamic" | "error";

export interface VNode {
  id: number;
  /** The node's name (user nodes, START/END) or a synthetic key (junctions, stubs). */
  name: string;
  label: string;
  /** The label as drawn: cut with an ellipsis to fit the widest node. */
  text: string;
  kind: NodeKind;
  meta: NodeJSON | null;
  w: number;
  h: number;
  x: number;
  y: number;
  /** Groups: the second line ("chain of 5,000") and the number of user nodes inside. */
  sub?: string;
  count?: number;
}

export interface VEdge {
  id: number;
  s: number;
  t: number;
  kind: EdgeKind;
  label: string;
  /** edge_counts keys ("src->dst") whose route frequency this drawn edge shows. */
  keys: string[];
  points: { x: number; y: number }[];
  lx: number;
  ly: number;
  lw: number;
  lh: number;
}

/** A subgraph drawn as a cluster: its path ("team", "team|inner"), every drawn node inside it
 * (its own START/END junctions too), and the enclosing subgraph's index or -1. */
export interface VSub {
  path: string;
  label: string;
  nodes: number[];
  parent: number;
}

export interface VGraph {
  name: string;
  /** Subgraphs (nodes whose description has a nested "subgraph"), outer ones first. */
  subs?: VSub[];
  nodes: VNode[];
  edges: VEdge[];
  byName: Map<string, number>;
  /** Number of user nodes (START/END, junctions and stubs excluded). */
  userNodes: number;
}

export const NODE_H = 30;
export const NODE_MIN_W = 56;
export const NODE_MAX_W = 200;
export const LABEL_H = 14;

export type Measure = (text: string) => number;

/** Text width in px of the 12px UI font: the canvas measure when there is one, else an estimate. */
export function makeMeasure(font: string): Measure {
  let ctx: CanvasRenderingContext2D | null = null;
  try {
    ctx = document.createElement("canvas").getContext("2d");
    if (ctx) ctx.font = font;
  } catch {
    ctx = null;
  }
  const cache = new Map<string, number>();
  return (text: string) => {
    let w = cache.get(text);
    if (w === undefined) {
      w = ctx ? ctx.measureText(text).width : text.length * 6.8;
      if (cache.size < 50000) cache.set(text, w);
    }
    return w;
  };
}

function fit(label: string, room: number, measure: Measure): string {
  if (measure(label) <= room) return label;
  let lo = 0;
  let hi = label.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (measure(label.slice(0, mid) + "\u2026") <= room) lo = mid;
    else hi = mid - 1;
  }
  return label.slice(0, lo) + "\u2026";
}

function fmtWeight(w: number): string {
  if (typeof w !== "number" || !isFinite(w)) return String(w);
  return String(Number(w.toPrecision(3)));
}

export function buildGraph(g: GraphJSON, measure: Measure): VGraph {
  const nodes: VNode[] = [];
  const edges: VEdge[] = [];
  const byName = new Map<string, number>();
  const subs: VSub[] = [];

  const addNode = (name: string, kind: NodeKind, label: string, meta: NodeJSON | null): number => {
    const id = nodes.length;
    let w: number;
    let h: number;
    if (kind === "start" || kind === "end") {
      w = h = 20;
    } else if (kind === "join") {
      w = h = 10;
    } else if (kind === "dynamic") {
      w = Math.min(NODE_MAX_W, Math.max(40, measure(label) + 16));
      h = 22;
    } else {
      w = Math.min(NODE_MAX_W, Math.max(NODE_MIN_W, measure(label) + 24));
      h = NODE_H;
    }
    nodes.push({ id, name, label, text: kind === "node" ? fit(label, w - 20, measure) : kind === "dynamic" ? fit(label, w - 12, measure) : label, kind, meta, w, h, x: 0, y: 0 });
    byName.set(name, id);
    for (const s of open) subs[s].nodes.push(id);
    return id;
  };
  const addEdge = (s: number, t: number, kind: EdgeKind, label: string, keys: string[]) => {
    const lw = label ? Math.min(160, measure(label) + 6) : 0;
    edges.push({
      id: edges.length, s, t, kind, label, keys, points: [], lx: 0, ly: 0, lw, lh: label ? LABEL_H : 0,
    });
  };
  /** The subgraphs being filled (outermost first): each node added joins all of them. */
  const open: number[] = [];
  let declared = 0;

  // One graph's nodes and edges, its names prefixed with its path ("team|"). A subgraph node
  // is its own START and END (two junctions, "team|__start__" / "team|__end__") with its nodes
  // between them: edges into the node go to its START, edges out of it leave from its END.
  const addGraph = (g: GraphJSON, p: string): void => {
    const subNames = new Set<string>();
    const first = nodes.length;
    const ref = (name: string, asSource: boolean): number => {
      if (subNames.has(name)) return byName.get(`${p}${name}|${asSource ? END : START}`)!;
      const full = p + name;
      const id = byName.get(full);
      if (id !== undefined) return id;
      if (name === START) return p ? addNode(full, "join", "", null) : addNode(START, "start", "START", null);
      if (name === END) return p ? addNode(full, "join", "", null) : addNode(END, "end", "END", null);
      // A name the description does not declare: draw it anyway rather than drop the edge.
      return addNode(full, "node", name, null);
    };
    const src = (name: string) => ref(name, true);
    const dst = (name: string) => ref(name, false);
    for (const n of g.nodes ?? []) {
      if (!n || typeof n.name !== "string" || byName.has(p + n.name)) continue;
      const inner = n.subgraph as GraphJSON | undefined;
      if (inner && typeof inner === "object" && Array.isArray(inner.nodes)) {
        subNames.add(n.name);
        const si = subs.length;
        subs.push({ path: p + n.name, label: n.name, nodes: [], parent: open.length ? open[open.length - 1] : -1 });
        open.push(si);
        addNode(`${p}${n.name}|${START}`, "join", "", n);
        addGraph(inner, `${p}${n.name}|`);
        open.pop();
      } else {
        addNode(p + n.name, "node", n.name, n);
        declared++;
      }
    }

    // Command(goto=...) destinations a node declared: dashed like a router's choices.
    for (const n of g.nodes ?? []) {
      const dests = n && Array.isArray(n.destinations) ? (n.destinations as unknown[]) : [];
      for (const d of dests) {
        if (typeof d === "string") addEdge(src(n.name), dst(d), "conditional", "goto", [`${p}${n.name}->${p}${d}`]);
      }
    }

    for (const e of g.edges ?? []) {
      addEdge(src(e.source), dst(e.target), "static", "", [`${p}${e.source}->${p}${e.target}`]);
    }
    (g.joins ?? []).forEach((j, i) => {
      const jn = addNode(`${p}__join__${i}`, "join", "", null);
      const keys = j.sources.map((s) => `${p}${s}->${p}${j.target}`);
      for (const s of j.sources) addEdge(src(s), jn, "join", "", [`${p}${s}->${p}${j.target}`]);
      addEdge(jn, dst(j.target), "join", "", keys);
    });
    (g.branches ?? []).forEach((b, i) => {
      const router = b.router || "route";
      const from = src(b.source);
      if (b.path_map && Object.keys(b.path_map).length) {
        // Keys and targets are drawn in the order given; several keys to one target share an edge.
        const byTarget = new Map<string, string[]>();
        for (const [key, target] of Object.entries(b.path_map)) {
          const list = byTarget.get(target) ?? [];
          if (key !== target) list.push(key);
          byTarget.set(target, list);
        }
        for (const [target, ks] of byTarget) {
          const label = ks.length ? `${router}: ${ks.join(", ")}` : router;
          addEdge(from, dst(target), "conditional", label, [`${p}${b.source}->${p}${target}`]);
        }
      } else if (b.targets && b.targets.length) {
        for (const target of Array.from(new Set(b.targets))) {
          addEdge(from, dst(target), "conditional", router, [`${p}${b.source}->${p}${target}`]);
        }
      } else {
        const stub = addNode(`${p}__dynamic__${i}`, "dynamic", `${router} ?`, null);
        addEdge(from, stub, "dynamic", "", []);
      }
    });
    for (const w of g.weighted ?? []) {
      const from = src(w.source);
      for (const [target, weight] of Object.entries(w.weights ?? {})) {
        addEdge(from, dst(target), "weighted", fmtWeight(weight), [`${p}${w.source}->${p}${target}`]);
      }
    }
    // Error edges (add_error_edge): where a node's final failure continues; dashed red.
    for (const e of g.error_edges ?? []) {
      const on = (e.on ?? []).map((x) => x.slice(x.lastIndexOf(":") + 1));
      const label = on.length === 1 && on[0] === "Exception" ? "on error" : `on ${on.join(" | ")}`;
      addEdge(src(e.source), dst(e.target), "error", label, [`${p}${e.source}-!->${p}${e.target}`]);
    }
    if (p) {
      // A subgraph finishes where its nodes stop: those ends are drawn into its END.
      const end = dst(END);
      const leaving = new Uint8Array(nodes.length);
      for (const e of edges) leaving[e.s] = 1;
      for (let v = first; v < nodes.length; v++) {
        const n = nodes[v];
        const own = n.name.slice(p.length);
        const bar = own.indexOf("|");
        const mine = bar < 0 || (own.indexOf("|", bar + 1) < 0 && own.endsWith(`|${END}`));
        if (!leaving[v] && v !== end && mine && (n.kind === "node" || n.kind === "join")) addEdge(v, end, "static", "", []);
      }
    }
  };
  addGraph(g, "");
  return { name: g.name ?? "graph", nodes, edges, byName, userNodes: declared, subs };
}
