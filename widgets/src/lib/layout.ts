// Left-to-right layered layout, two engines:
// - dagre (network-simplex ranking, edge label space, good routes) for the usual graph, and
// - our own iterative layered layout for big graphs, where dagre is slow (2.5 s at 1,000 nodes)
//   and overflows the stack (10,000 nodes): DFS back edges reversed, longest-path layering by a
//   topological order, dummy nodes for long edges (within a budget), a bounded number of
//   barycenter sweeps for the order in each layer, and an order-preserving least-squares
//   (pool-adjacent-violators) pass for the vertical coordinates. O((N + E) log N), no recursion.
import dagre from "@dagrejs/dagre";
import type { VEdge, VGraph, VNode } from "./model";

export type LayoutEngine = "dagre" | "layered";

/** Above this many drawn nodes "auto" uses the layered layout instead of dagre. */
export const DAGRE_MAX_NODES = 300;

export interface Bounds {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface LayoutInfo {
  engine: LayoutEngine;
  bounds: Bounds;
}

export function chooseEngine(g: VGraph, requested: string): LayoutEngine {
  if (requested === "dagre" || requested === "layered") return requested;
  return g.nodes.length > DAGRE_MAX_NODES ? "layered" : "dagre";
}

export function layoutGraph(g: VGraph, requested = "auto"): LayoutInfo {
  const engine = chooseEngine(g, requested);
  if (engine === "dagre") dagreLayout(g);
  else layeredLayout(g);
  finishEdges(g, engine);
  return { engine, bounds: bounds(g) };
}

// ---------------------------------------------------------------------------------------------
// dagre

function dagreLayout(g: VGraph): void {
  // Open subgraphs are dagre clusters, so that their boxes never overlap each other or the
  // nodes outside them (laid out flat, two subgraphs in the same columns could interleave).
  const subs = g.subs ?? [];
  const dg = new dagre.graphlib.Graph({ multigraph: true, compound: subs.length > 0 });
  dg.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 46, edgesep: 10, marginx: 16, marginy: 16 });
  dg.setDefaultEdgeLabel(() => ({}));
  for (const n of g.nodes) dg.setNode(String(n.id), { width: n.w, height: n.h });
  if (subs.length) {
    const innermost = new Map<number, number>();
    subs.forEach((sub, i) => {
      dg.setNode(`sub:${i}`, {});
      for (const id of sub.nodes) innermost.set(id, i); // outer ones first: the inner one wins
    });
    subs.forEach((sub, i) => {
      if (sub.parent >= 0) dg.setParent(`sub:${i}`, `sub:${sub.parent}`);
    });
    for (const [id, i] of innermost) dg.setParent(String(id), `sub:${i}`);
  }
  for (const e of g.edges) {
    if (e.s === e.t) continue; // self loops are drawn by finishEdges
    dg.setEdge(String(e.s), String(e.t), { width: e.lw, height: e.lh, labelpos: "c", minlen: 1 }, String(e.id));
  }
  dagre.layout(dg);
  for (const n of g.nodes) {
    const d = dg.node(String(n.id));
    n.x = d.x ?? 0;
    n.y = d.y ?? 0;
  }
  for (const e of g.edges) {
    if (e.s === e.t) continue;
    const d = dg.edge({ v: String(e.s), w: String(e.t), name: String(e.id) });
    e.points = (d?.points ?? []).map((p: { x: number; y: number }) => ({ x: p.x, y: p.y }));
    if (d && typeof d.x === "number" && typeof d.y === "number" && e.label) {
      e.lx = d.x;
      e.ly = d.y;
    } else {
      e.lx = NaN;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// our layered layout

const SWEEPS_SMALL = 8;
const SWEEPS_LARGE = 4;
const COORD_PASSES = 4;
const NODE_GAP = 14;
const DUMMY_GAP = 6;

function csr(n: number, from: Int32Array, to: Int32Array, count: number): [Int32Array, Int32Array] {
  const start = new Int32Array(n + 1);
  for (let i = 0; i < count; i++) start[from[i] + 1]++;
  for (let i = 0; i < n; i++) start[i + 1] += start[i];
  const fill = start.slice(0, n);
  const adj = new Int32Array(count);
  for (let i = 0; i < count; i++) adj[fill[from[i]]++] = to[i];
  return [start, adj];
}

export function layeredLayout(g: VGraph): void {
  const nodes = g.nodes;
  const edges = g.edges;
  const N = nodes.length;
  const E = edges.length;
  if (N === 0) return;

  // 1. Break cycles: edges closing a cycle in a DFS (from START, then sources, then the rest,
  //    in the order nodes were added) are reversed for ranking.
  const es = new Int32Array(E);
  const et = new Int32Array(E);
  const eid = new Int32Array(E);
  let m = 0;
  for (const e of edges) {
    if (e.s === e.t) continue;
    es[m] = e.s;
    et[m] = e.t;
    eid[m] = e.id;
    m++;
  }
  const [outStart, outEdge] = csr(N, es, Int32Array.from({ length: m }, (_, i) => i), m);
  const indeg = new Int32Array(N);
  for (let i = 0; i < m; i++) indeg[et[i]]++;
  const roots: number[] = [];
  for (const n of nodes) if (n.kind === "start") roots.push(n.id);
  for (let v = 0; v < N; v++) if (indeg[v] === 0) roots.push(v);
  for (let v = 0; v < N; v++) roots.push(v);

  const state = new Uint8Array(N);
  const reversed = new Uint8Array(m);
  const disc = new Int32Array(N);
  const stackV = new Int32Array(N);
  const stackI = new Int32Array(N);
  let dcount = 0;
  for (const r of roots) {
    if (state[r]) continue;
    let sp = 0;
    stackV[sp] = r;
    stackI[sp] = outStart[r];
    sp++;
    state[r] = 1;
    disc[r] = dcount++;
    while (sp > 0) {
      const v = stackV[sp - 1];
      const i = stackI[sp - 1];
      if (i < outStart[v + 1]) {
        stackI[sp - 1] = i + 1;
        const k = outEdge[i];
        const t = et[k];
        if (state[t] === 1) reversed[k] = 1;
        else if (state[t] === 0) {
          state[t] = 1;
          disc[t] = dcount++;
          stackV[sp] = t;
          stackI[sp] = outStart[t];
          sp++;
        }
      } else {
        state[v] = 2;
        sp--;
      }
    }
  }

  // 2. Longest-path layering over the acyclic edges (Kahn's order).
  const da = new Int32Array(m);
  const db = new Int32Array(m);
  for (let i = 0; i < m; i++) {
    da[i] = reversed[i] ? et[i] : es[i];
    db[i] = reversed[i] ? es[i] : et[i];
  }
  const [dStart, dAdj] = csr(N, da, db, m);
  const din = new Int32Array(N);
  for (let i = 0; i < m; i++) din[db[i]]++;
  const rank = new Int32Array(N);
  const queue = new Int32Array(N);
  let qh = 0;
  let qt = 0;
  const left = din.slice();
  for (let v = 0; v < N; v++) if (left[v] === 0) queue[qt++] = v;
  while (qh < qt) {
    const v = queue[qh++];
    for (let i = dStart[v]; i < dStart[v + 1]; i++) {
      const t = dAdj[i];
      if (rank[v] + 1 > rank[t]) rank[t] = rank[v] + 1;
      if (--left[t] === 0) queue[qt++] = t;
    }
  }
  // Sources other than START sit just before their nearest successor, not at the far left.
  for (let v = 0; v < N; v++) {
    if (din[v] !== 0 || dStart[v] === dStart[v + 1] || nodes[v].kind === "start") continue;
    let lo = Infinity;
    for (let i = dStart[v]; i < dStart[v + 1]; i++) lo = Math.min(lo, rank[dAdj[i]]);
    rank[v] = Math.max(0, lo - 1);
  }

  // 3. Dummy nodes along long edges, while the budget lasts (beyond it, long edges are drawn
  //    straight and take part in ordering as they are).
  let budget = Math.max(2000, 2 * N);
  const chainStart = new Int32Array(m).fill(-1);
  const chainLen = new Int32Array(m);
  const dummyRank: number[] = [];
  const dummyEdge: number[] = [];
  for (let i = 0; i < m; i++) {
    const span = rank[db[i]] - rank[da[i]];
    if (span > 1 && span - 1 <= budget) {
      budget -= span - 1;
      chainStart[i] = dummyRank.length;
      chainLen[i] = span - 1;
      for (let r = rank[da[i]] + 1; r < rank[db[i]]; r++) {
        dummyRank.push(r);
        dummyEdge.push(i);
      }
    }
  }
  const D = dummyRank.length;
  const M = N + D;
  const rankA = new Int32Array(M);
  const hA = new Float64Array(M);
  const isDummy = new Uint8Array(M);
  for (let v = 0; v < N; v++) {
    rankA[v] = rank[v];
    hA[v] = nodes[v].h;
  }
  for (let d = 0; d < D; d++) {
    rankA[N + d] = dummyRank[d];
    hA[N + d] = 2;
    isDummy[N + d] = 1;
  }
  // Segments between consecutive layers (or long edges without dummies).
  const segA: number[] = [];
  const segB: number[] = [];
  for (let i = 0; i < m; i++) {
    let prev = da[i];
    if (chainStart[i] >= 0) {
      for (let k = 0; k < chainLen[i]; k++) {
        const d = N + chainStart[i] + k;
        segA.push(prev);
        segB.push(d);
        prev = d;
      }
    }
    segA.push(prev);
    segB.push(db[i]);
  }
  const S = segA.length;
  const sa = Int32Array.from(segA);
  const sb = Int32Array.from(segB);
  const [upStart, upAdj] = csr(M, sb, sa, S);
  const [downStart, downAdj] = csr(M, sa, sb, S);

  // 4. Layers, first ordered by DFS discovery, then barycenter sweeps.
  let R = 0;
  for (let v = 0; v < M; v++) R = Math.max(R, rankA[v] + 1);
  const layers: number[][] = Array.from({ length: R }, () => []);
  const key = new Float64Array(M);
  for (let v = 0; v < N; v++) key[v] = disc[v];
  for (let d = 0; d < D; d++) key[N + d] = disc[da[dummyEdge[d]]] + 0.5;
  for (let v = 0; v < M; v++) layers[rankA[v]].push(v);
  for (const layer of layers) layer.sort((a, b) => key[a] - key[b] || a - b);

  const y = new Float64Array(M);
  const place = (layer: number[]) => {
    let acc = 0;
    for (let i = 0; i < layer.length; i++) {
      const v = layer[i];
      if (i > 0) {
        const u = layer[i - 1];
        acc += (hA[u] + hA[v]) / 2 + (isDummy[u] || isDummy[v] ? DUMMY_GAP : NODE_GAP);
      }
      y[v] = acc;
    }
    const mid = acc / 2;
    for (const v of layer) y[v] -= mid;
  };
  for (const layer of layers) place(layer);

  const bary = new Float64Array(M);
  const idx = new Float64Array(M);
  const sweepLayer = (layer: number[], start: Int32Array, adj: Int32Array) => {
    for (let i = 0; i < layer.length; i++) {
      const v = layer[i];
      idx[v] = i;
      const a = start[v];
      const b = start[v + 1];
      if (a === b) {
        bary[v] = y[v];
        continue;
      }
      let sum = 0;
      for (let k = a; k < b; k++) sum += y[adj[k]];
      bary[v] = sum / (b - a);
    }
    layer.sort((p, q) => bary[p] - bary[q] || idx[p] - idx[q]);
    place(layer);
  };
  const sweeps = M > 20000 ? SWEEPS_LARGE : SWEEPS_SMALL;
  for (let it = 0; it < sweeps; it++) {
    if (it % 2 === 0) for (let r = 1; r < R; r++) sweepLayer(layers[r], upStart, upAdj);
    else for (let r = R - 2; r >= 0; r--) sweepLayer(layers[r], downStart, downAdj);
  }

  // 5. Vertical coordinates: each layer, in order, as close as it can be to its neighbours'
  //    mean (isotonic regression with minimum gaps), alternating directions.
  let maxL = 0;
  for (const layer of layers) maxL = Math.max(maxL, layer.length);
  const off = new Float64Array(maxL);
  const want = new Float64Array(maxL);
  const wt = new Float64Array(maxL);
  const bVal = new Float64Array(maxL);
  const bW = new Float64Array(maxL);
  const bN = new Int32Array(maxL);
  const align = (layer: number[], starts: Int32Array[], adjs: Int32Array[]) => {
    const L = layer.length;
    let acc = 0;
    for (let i = 0; i < L; i++) {
      const v = layer[i];
      if (i > 0) {
        const u = layer[i - 1];
        acc += (hA[u] + hA[v]) / 2 + (isDummy[u] || isDummy[v] ? DUMMY_GAP : NODE_GAP);
      }
      off[i] = acc;
      let sum = 0;
      let cnt = 0;
      for (let s = 0; s < starts.length; s++) {
        const st = starts[s];
        const ad = adjs[s];
        for (let k = st[v]; k < st[v + 1]; k++) {
          sum += y[ad[k]];
          cnt++;
        }
      }
      want[i] = (cnt ? sum / cnt : y[v]) - off[i];
      wt[i] = cnt ? (isDummy[v] ? 2 : 1) : 0.05;
    }
    let nb = 0;
    for (let i = 0; i < L; i++) {
      bVal[nb] = want[i];
      bW[nb] = wt[i];
      bN[nb] = 1;
      nb++;
      while (nb > 1 && bVal[nb - 2] > bVal[nb - 1]) {
        const w = bW[nb - 2] + bW[nb - 1];
        bVal[nb - 2] = (bVal[nb - 2] * bW[nb - 2] + bVal[nb - 1] * bW[nb - 1]) / w;
        bW[nb - 2] = w;
        bN[nb - 2] += bN[nb - 1];
        nb--;
      }
    }
    let i = 0;
    for (let b = 0; b < nb; b++) {
      for (let k = 0; k < bN[b]; k++, i++) y[layer[i]] = bVal[b] + off[i];
    }
  };
  for (let p = 0; p < COORD_PASSES; p++) {
    if (p % 2 === 0) for (let r = 1; r < R; r++) align(layers[r], [upStart], [upAdj]);
    else for (let r = R - 2; r >= 0; r--) align(layers[r], [downStart], [downAdj]);
  }
  for (let r = 0; r < R; r++) align(layers[r], [upStart, downStart], [upAdj, downAdj]);

  // 6. Horizontal coordinates: one column per layer, as wide as its widest node, with room for
  //    edge labels between columns.
  let maxLabel = 0;
  for (const e of edges) if (e.label) maxLabel = Math.max(maxLabel, e.lw);
  const rankSep = Math.min(150, Math.max(46, maxLabel + 24));
  const colW = new Float64Array(R);
  for (let v = 0; v < N; v++) colW[rank[v]] = Math.max(colW[rank[v]], nodes[v].w);
  const colX = new Float64Array(R);
  let x = 16;
  for (let r = 0; r < R; r++) {
    colX[r] = x + colW[r] / 2;
    x += colW[r] + rankSep;
  }
  let minY = Infinity;
  for (let v = 0; v < N; v++) minY = Math.min(minY, y[v] - hA[v] / 2);
  for (let v = N; v < M; v++) minY = Math.min(minY, y[v]);
  const dy = 16 - minY;
  for (let v = 0; v < N; v++) {
    nodes[v].x = colX[rank[v]];
    nodes[v].y = y[v] + dy;
  }

  // 7. Edge routes: out of the right side, into the left side, through the dummies.
  for (let i = 0; i < m; i++) {
    const e = edges[eid[i]];
    const s = nodes[e.s];
    const t = nodes[e.t];
    const pts: { x: number; y: number }[] = [];
    const dummies: { x: number; y: number }[] = [];
    for (let k = 0; k < chainLen[i]; k++) {
      const d = N + chainStart[i] + k;
      dummies.push({ x: colX[rankA[d]], y: y[d] + dy });
    }
    if (!reversed[i]) {
      pts.push(rightOf(s), ...dummies, leftOf(t));
    } else if (dummies.length) {
      dummies.reverse();
      pts.push(leftOf(s), ...dummies, rightOf(t));
    } else {
      // A back edge between neighbouring columns: an arc below both nodes.
      const low = Math.max(s.y + s.h / 2, t.y + t.h / 2) + 22;
      pts.push({ x: s.x, y: s.y + s.h / 2 }, { x: s.x - 8, y: low }, { x: t.x + 8, y: low }, { x: t.x, y: t.y + t.h / 2 });
    }
    e.points = pts;
    e.lx = NaN;
  }
}

function rightOf(n: VNode) {
  return { x: n.x + n.w / 2, y: n.y };
}
function leftOf(n: VNode) {
  return { x: n.x - n.w / 2, y: n.y };
}

// ---------------------------------------------------------------------------------------------

function finishEdges(g: VGraph, _engine: LayoutEngine): void {
  for (const e of g.edges) {
    if (e.s === e.t) {
      const n = g.nodes[e.s];
      const top = n.y - n.h / 2;
      const dx = Math.min(18, n.w / 4);
      e.points = [
        { x: n.x + dx, y: top },
        { x: n.x + dx + 6, y: top - 26 },
        { x: n.x - dx - 6, y: top - 26 },
        { x: n.x - dx, y: top },
      ];
      e.lx = n.x;
      e.ly = top - 26;
      continue;
    }
    if (Number.isNaN(e.lx) || (e.lx === 0 && e.ly === 0)) labelAtMiddle(e);
  }
}

function labelAtMiddle(e: VEdge): void {
  const p = e.points;
  if (!p.length) {
    e.lx = e.ly = 0;
    return;
  }
  if (p.length % 2 === 1) {
    const q = p[(p.length - 1) / 2];
    e.lx = q.x;
    e.ly = q.y;
  } else {
    const a = p[p.length / 2 - 1];
    const b = p[p.length / 2];
    e.lx = (a.x + b.x) / 2;
    e.ly = (a.y + b.y) / 2;
  }
}

export function bounds(g: VGraph): Bounds {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const n of g.nodes) {
    x0 = Math.min(x0, n.x - n.w / 2);
    x1 = Math.max(x1, n.x + n.w / 2);
    y0 = Math.min(y0, n.y - n.h / 2);
    y1 = Math.max(y1, n.y + n.h / 2);
  }
  for (const e of g.edges) {
    for (const p of e.points) {
      if (p.x < x0) x0 = p.x;
      if (p.x > x1) x1 = p.x;
      if (p.y < y0) y0 = p.y;
      if (p.y > y1) y1 = p.y;
    }
    if (e.label) {
      x0 = Math.min(x0, e.lx - e.lw / 2);
      x1 = Math.max(x1, e.lx + e.lw / 2);
      y0 = Math.min(y0, e.ly - e.lh / 2);
      y1 = Math.max(y1, e.ly + e.lh / 2);
    }
  }
  if (!isFinite(x0)) return { x0: 0, y0: 0, x1: 1, y1: 1 };
  return { x0, y0, x1, y1 };
}
