// Collapsing big graphs for drawing: long chains (a -> b -> ... -> z, each link the only way out
// of one node and the only way into the next) and repeated fan-outs (siblings with the same
// predecessors and successors, e.g. the 200 parallel workers of a map step) become one group
// node each, which the user expands with a click. A fan of chains (parallel pipelines) is one
// fan group whose members are chain groups. Everything is linear in nodes plus edges.
import type { EdgeKind, Measure, VEdge, VGraph, VNode } from "./model";
import { NODE_MAX_W, NODE_MIN_W } from "./model";

/** Chains and fans shorter than this stay as they are. */
export const GROUP_MIN = 5;
/** "auto" collapses only graphs with more user nodes than this. */
export const COLLAPSE_AUTO_NODES = 200;
export const GROUP_H = 40;

export interface Group {
  /** Stable name: "chain:<first node>", "fan:<first node>" or "sub:<subgraph path>" (what the
   * `expanded` trait holds). */
  key: string;
  kind: "chain" | "fan" | "sub";
  /** Full-graph ids of every user node inside (a fan's chains flattened), in order. */
  members: number[];
  /** Chains of a fan: their group indices (empty for chains). */
  chains: number[];
  /** The fan this chain belongs to (the subgraph this subgraph is in), or -1. */
  parent: number;
  /** How many members sit inside this fan's chains (0 for chains). */
  chainsSize: number;
}

export interface Groups {
  list: Group[];
  byKey: Map<string, number>;
  /** Per full node id: its chain group or -1. */
  chainOf: Int32Array;
  /** Per full node id: its fan group or -1 (also for nodes inside a chain of that fan). */
  fanOf: Int32Array;
  /** Per full node id: the innermost subgraph group it is in, or -1 (absent: no subgraphs). */
  subOf?: Int32Array;
}

export function collapseWanted(mode: string, g: VGraph): boolean {
  if (mode === "off") return false;
  if (mode === "on") return true;
  return g.userNodes > COLLAPSE_AUTO_NODES;
}

const isUser = (n: VNode) => n.kind === "node";

/** Finds the groups of `g` (empty when nothing is long or wide enough). */
export function findGroups(g: VGraph, min = GROUP_MIN): Groups {
  const N = g.nodes.length;
  const indeg = new Int32Array(N);
  const outdeg = new Int32Array(N);
  const selfLoop = new Uint8Array(N);
  const outEdge = new Int32Array(N).fill(-1);
  for (const e of g.edges) {
    if (e.s === e.t) {
      selfLoop[e.s] = 1;
      continue;
    }
    outdeg[e.s]++;
    indeg[e.t]++;
    outEdge[e.s] = e.id;
  }
  const list: Group[] = [];
  const chainOf = new Int32Array(N).fill(-1);
  const fanOf = new Int32Array(N).fill(-1);

  // Chains: follow links a -> b where a has one way out, b one way in, both plain user nodes.
  const next = new Int32Array(N).fill(-1);
  const hasPrev = new Uint8Array(N);
  for (let v = 0; v < N; v++) {
    if (outdeg[v] !== 1 || selfLoop[v] || !isUser(g.nodes[v])) continue;
    const e = g.edges[outEdge[v]];
    const w = e.t;
    if (indeg[w] !== 1 || selfLoop[w] || !isUser(g.nodes[w]) || e.kind !== "static") continue;
    next[v] = w;
    hasPrev[w] = 1;
  }
  for (let v = 0; v < N; v++) {
    if (hasPrev[v] || next[v] < 0) continue;
    const members = [v];
    for (let w = next[v]; w >= 0 && members.length <= N; w = next[w]) members.push(w);
    if (members.length < min) continue;
    const gi = list.length;
    list.push({ key: `chain:${g.nodes[v].name}`, kind: "chain", members, chains: [], parent: -1, chainsSize: 0 });
    for (const m of members) chainOf[m] = gi;
  }

  // Fans: units (a node, or a chain as one) with the same predecessor and successor units.
  // Adjacency in flat arrays (no per-node sets: this runs on 10,000-node graphs).
  const unit = new Int32Array(N);
  for (let v = 0; v < N; v++) unit[v] = chainOf[v] >= 0 ? N + chainOf[v] : v;
  const U = N + list.length;
  const pc = new Int32Array(U + 1);
  const sc = new Int32Array(U + 1);
  for (const e of g.edges) {
    const a = unit[e.s];
    const b = unit[e.t];
    if (a === b) continue;
    sc[a + 1]++;
    pc[b + 1]++;
  }
  for (let u = 0; u < U; u++) {
    pc[u + 1] += pc[u];
    sc[u + 1] += sc[u];
  }
  const pAdj = new Int32Array(pc[U]);
  const sAdj = new Int32Array(sc[U]);
  const pf = pc.slice(0, U);
  const sf = sc.slice(0, U);
  for (const e of g.edges) {
    const a = unit[e.s];
    const b = unit[e.t];
    if (a === b) continue;
    sAdj[sf[a]++] = b;
    pAdj[pf[b]++] = a;
  }
  const sig = (adj: Int32Array, from: number, to: number): string => {
    if (to - from === 1) return String(adj[from]);
    const part = Array.from(adj.subarray(from, to)).sort((x, y) => x - y);
    let out = "";
    let last = -1;
    for (const x of part) {
      if (x === last) continue;
      out += out ? `,${x}` : String(x);
      last = x;
    }
    return out;
  };
  const buckets = new Map<string, number[]>();
  for (let v = 0; v < N; v++) {
    if (!isUser(g.nodes[v]) || selfLoop[v]) continue;
    const u = unit[v];
    if (u >= N && g.nodes[v].id !== list[u - N].members[0]) continue; // a chain counts once
    if (pc[u] === pc[u + 1] && sc[u] === sc[u + 1]) continue;
    const key = `${sig(pAdj, pc[u], pc[u + 1])}|${sig(sAdj, sc[u], sc[u + 1])}`;
    const b = buckets.get(key);
    if (b) b.push(u);
    else buckets.set(key, [u]);
  }
  for (const units of buckets.values()) {
    if (units.length < min) continue;
    const gi = list.length;
    const members: number[] = [];
    const chains: number[] = [];
    for (const u of units) {
      if (u >= N) {
        const ci = u - N;
        chains.push(ci);
        list[ci].parent = gi;
        for (const m of list[ci].members) members.push(m);
      } else members.push(u);
    }
    const chainsSize = chains.reduce((a, c) => a + list[c].members.length, 0);
    list.push({ key: `fan:${g.nodes[members[0]].name}`, kind: "fan", members, chains, parent: -1, chainsSize });
    for (const m of members) fanOf[m] = gi;
  }
  const byKey = new Map<string, number>();
  list.forEach((grp, i) => byKey.set(grp.key, i));
  return { list, byKey, chainOf, fanOf };
}

export interface Derived {
  /** What is drawn: nodes outside collapsed groups, one node per collapsed group. */
  g: VGraph;
  /** Per full node id: the drawn node it is shown as. */
  drawnOf: Int32Array;
  /** Per drawn node id: the full node id, or -1 for a group node. */
  fullOf: Int32Array;
  /** Per drawn node id: the group index, or -1. */
  groupOf: Int32Array;
}

/** `gr` (or an empty set of groups) plus one "sub:<path>" group per subgraph of `g`: a
 * subgraph is collapsed unless its key is in `expanded` (the Python side puts the small ones
 * there by default). */
export function addSubGroups(gr: Groups | null, g: VGraph): Groups | null {
  const subs = g.subs ?? [];
  if (!subs.length) return gr;
  const N = g.nodes.length;
  const out: Groups = gr ?? { list: [], byKey: new Map(), chainOf: new Int32Array(N).fill(-1), fanOf: new Int32Array(N).fill(-1) };
  const subOf = new Int32Array(N).fill(-1);
  const base = out.list.length;
  subs.forEach((s, i) => {
    const gi = base + i;
    const members = s.nodes.filter((v) => g.nodes[v].kind === "node");
    out.list.push({ key: `sub:${s.path}`, kind: "sub", members, chains: [], parent: s.parent >= 0 ? base + s.parent : -1, chainsSize: 0 });
    out.byKey.set(`sub:${s.path}`, gi);
    for (const v of s.nodes) subOf[v] = gi; // inner subgraphs come later and overwrite: innermost wins
  });
  out.subOf = subOf;
  return out;
}

/** The subgraph groups full node `v` is in, outermost first. */
function subsOf(gr: Groups, v: number): number[] {
  const out: number[] = [];
  for (let s = gr.subOf ? gr.subOf[v] : -1; s >= 0; s = gr.list[s].parent) out.unshift(s);
  return out;
}

/** The group a full node is drawn inside with this set of expanded groups, or -1. */
export function collapsedGroup(gr: Groups, expanded: Set<string>, v: number): number {
  for (const s of subsOf(gr, v)) if (!expanded.has(gr.list[s].key)) return s;
  const f = gr.fanOf[v];
  if (f >= 0 && !expanded.has(gr.list[f].key)) return f;
  const c = gr.chainOf[v];
  if (c >= 0 && !expanded.has(gr.list[c].key)) return c;
  return -1;
}

/** The groups to expand so that full node `v` is drawn as itself (outermost first). */
export function groupsToOpen(gr: Groups, v: number): string[] {
  const out: string[] = subsOf(gr, v).map((s) => gr.list[s].key);
  if (gr.fanOf[v] >= 0) out.push(gr.list[gr.fanOf[v]].key);
  if (gr.chainOf[v] >= 0) out.push(gr.list[gr.chainOf[v]].key);
  return out;
}

/** 5000 -> "5,000" (toLocaleString is slow enough to matter for hundreds of groups). */
export function fmtInt(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

function groupText(full: VGraph, grp: Group): { label: string; sub: string } {
  if (grp.kind === "sub") {
    const path = grp.key.slice(4);
    const k = grp.members.length;
    return { label: path.slice(path.lastIndexOf("|") + 1), sub: `subgraph \u00b7 ${fmtInt(k)} node${k === 1 ? "" : "s"}` };
  }
  const first = full.nodes[grp.members[0]].name;
  const last = full.nodes[grp.members[grp.members.length - 1]].name;
  const n = fmtInt(grp.members.length);
  if (grp.kind === "chain") return { label: `${first} \u2192 \u2026 \u2192 ${last}`, sub: `chain of ${n}` };
  const parallel = fmtInt(grp.chains.length + grp.members.length - grp.chainsSize);
  return {
    label: `${first} \u2026 ${last}`,
    sub: grp.chains.length ? `${parallel} in parallel \u00b7 ${n} nodes` : `${n} in parallel`,
  };
}

function fitText(label: string, room: number, measure: Measure): string {
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

/** The graph to draw for a set of expanded groups (the full graph itself when nothing is collapsed). */
export function derive(full: VGraph, gr: Groups, expanded: Set<string>, measure: Measure): Derived {
  const N = full.nodes.length;
  const drawnOf = new Int32Array(N);
  let anyCollapsed = false;
  for (const grp of gr.list) {
    if (!expanded.has(grp.key) && (grp.parent < 0 || expanded.has(gr.list[grp.parent].key))) anyCollapsed = true;
  }
  if (!anyCollapsed) {
    for (let v = 0; v < N; v++) drawnOf[v] = v;
    const fullOf = Int32Array.from({ length: N }, (_, i) => i);
    return { g: full, drawnOf, fullOf, groupOf: new Int32Array(N).fill(-1) };
  }
  const nodes: VNode[] = [];
  const fullOfL: number[] = [];
  const groupOfL: number[] = [];
  const drawnGroup = new Map<number, number>();
  for (let v = 0; v < N; v++) {
    const gi = collapsedGroup(gr, expanded, v);
    if (gi < 0) {
      const n = full.nodes[v];
      drawnOf[v] = nodes.length;
      nodes.push({ id: nodes.length, name: n.name, label: n.label, text: n.text, kind: n.kind, meta: n.meta, w: n.w, h: n.h, x: 0, y: 0 });
      fullOfL.push(v);
      groupOfL.push(-1);
      continue;
    }
    let d = drawnGroup.get(gi);
    if (d === undefined) {
      const grp = gr.list[gi];
      const { label, sub } = groupText(full, grp);
      const w = Math.min(NODE_MAX_W + 40, Math.max(NODE_MIN_W + 40, Math.max(measure(label), measure(sub) * 0.92) + 36));
      d = nodes.length;
      drawnGroup.set(gi, d);
      nodes.push({
        id: d, name: grp.key, label, text: fitText(label, w - 30, measure), kind: "group", meta: null,
        w, h: GROUP_H, x: 0, y: 0, sub, count: grp.members.length,
      });
      fullOfL.push(-1);
      groupOfL.push(gi);
    }
    drawnOf[v] = d;
  }
  const edges: VEdge[] = [];
  const seen = new Map<string, number>();
  const isGroup = new Uint8Array(nodes.length);
  for (const d of drawnGroup.values()) isGroup[d] = 1;
  for (const e of full.edges) {
    const s = drawnOf[e.s];
    const t = drawnOf[e.t];
    if (s === t && e.s !== e.t) continue; // inside a group
    if (isGroup[s] || isGroup[t]) {
      // The many edges into or out of a group are one drawn edge (their route counts merged).
      const k = `${s},${t},${e.kind},${e.label}`;
      const have = seen.get(k);
      if (have !== undefined) {
        const keys = edges[have].keys;
        for (const key of e.keys) keys.push(key);
        continue;
      }
      seen.set(k, edges.length);
    }
    edges.push({
      id: edges.length, s, t, kind: e.kind as EdgeKind, label: e.label, keys: e.keys.slice(), points: [],
      lx: 0, ly: 0, lw: e.lw, lh: e.lh,
    });
  }
  const byName = new Map<string, number>();
  for (const n of nodes) byName.set(n.name, n.id);
  return {
    g: { name: full.name, nodes, edges, byName, userNodes: full.userNodes },
    drawnOf,
    fullOf: Int32Array.from(fullOfL),
    groupOf: Int32Array.from(groupOfL),
  };
}
