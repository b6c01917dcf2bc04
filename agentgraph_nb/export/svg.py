"""A static SVG picture of a graph description (``app.to_json()``), drawn locally.

Pure Python: no network, no graphviz binary. It is the fallback that nbconvert, nbviewer and
GitHub show where the live GraphView widget cannot run. The graph is laid out left to right in
layers, the same way the widget lays out big graphs: edges closing a cycle (found by a DFS from
START) are reversed for ranking, nodes are ranked by the longest path in a topological order,
long edges get dummy nodes (within a budget), a bounded number of barycenter sweeps orders each
layer, and an order-preserving least-squares pass sets the vertical positions. Iterative
throughout (no recursion), about O((N + E) log N): a 1,000-node graph takes well under a second.
The output is deterministic, so notebooks that store it compare equal under nbval.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

__all__ = ["STATUS_COLORS", "graph_size", "render_svg"]

START = "__start__"
END = "__end__"

#: fill and stroke per node status; the widget uses the same palette.
STATUS_COLORS: dict[str, tuple[str, str]] = {
    "idle": ("#f7f7f8", "#9aa0a6"),
    "pending": ("#eef1f4", "#b0bec5"),
    "running": ("#e3f0fd", "#1e88e5"),
    "done": ("#e6f4ea", "#34a853"),
    "failed": ("#fdecea", "#d93025"),
    "retrying": ("#fff4e5", "#f29900"),
    "interrupted": ("#f3e8fd", "#9334e6"),
    "cached": ("#e0f2f1", "#00897b"),  # skipped: its result came from the node cache
}
_EDGE_STYLE: dict[str, tuple[str, str]] = {  # colour, dash array
    "static": ("#8a939b", ""),
    "conditional": ("#5c6bc0", "6 4"),
    "weighted": ("#00897b", ""),
    "join": ("#8d6e63", ""),
    "dynamic": ("#5c6bc0", "3 3"),
}
_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
_CHAR_W = 6.8  # average advance of the 12px UI font
_NODE_H = 30.0
_NODE_MIN_W = 56.0
_NODE_MAX_W = 200.0
_LABEL_H = 14.0
_NODE_GAP = 14.0
_DUMMY_GAP = 6.0
_MARGIN = 16.0
_MAX_WIDTH = 960  # the picture is scaled down to this width (its viewBox keeps full detail)


@dataclass
class _Node:
    id: int
    name: str
    label: str
    kind: str  # node, start, end, join, dynamic
    w: float
    h: float
    x: float = 0.0
    y: float = 0.0


@dataclass
class _Edge:
    s: int
    t: int
    kind: str  # static, conditional, weighted, join, dynamic
    label: str = ""
    points: list[tuple[float, float]] = field(default_factory=list)
    lx: float = 0.0
    ly: float = 0.0

    @property
    def lw(self) -> float:
        return min(160.0, len(self.label) * _CHAR_W * 11 / 12 + 6) if self.label else 0.0


def _text_w(text: str) -> float:
    return len(text) * _CHAR_W


def _fmt_weight(w: Any) -> str:
    if isinstance(w, (int, float)) and not isinstance(w, bool):
        return f"{float(w):.3g}"
    return str(w)


def _clip(text: str, room: float, char_w: float = _CHAR_W) -> str:
    if len(text) * char_w <= room:
        return text
    keep = max(1, int(room / char_w) - 1)
    return text[:keep] + "\u2026"


class _Graph:
    """The drawn graph: nodes (with implicit START/END, join junctions, dynamic-router stubs)
    and edges, built from the description exactly as the widget builds it."""

    def __init__(self, graph: Mapping[str, Any], expanded: Iterable[str] = ()) -> None:
        self.nodes: list[_Node] = []
        self.edges: list[_Edge] = []
        self.by_name: dict[str, int] = {}
        #: the open subgraphs drawn as boxes: (path, ids of the nodes inside), outer ones first
        self.clusters: list[tuple[str, list[int]]] = []
        self._open: list[list[int]] = []
        self._expanded = set(expanded)
        self.user_nodes = 0
        self._build(graph, "")

    def _build(self, graph: Mapping[str, Any], p: str) -> None:
        """One graph's nodes and edges, names prefixed with its path (``"team|"``). An open
        subgraph is its own START and END junctions (``"team|__start__"``) with its nodes
        between them, as the widget draws it."""
        subs: set[str] = set()
        first = len(self.nodes)

        def ref(name: str, as_source: bool) -> int:
            if name in subs:
                return self.by_name[f"{p}{name}|{END if as_source else START}"]
            if p and name in (START, END):
                got = self.by_name.get(p + name)
                return self._add(p + name, "join", "") if got is None else got
            return self._id(p + name)

        def src(name: str) -> int:
            return ref(name, True)

        def dst(name: str) -> int:
            return ref(name, False)

        for n in graph.get("nodes") or ():
            name = n.get("name") if isinstance(n, Mapping) else None
            if not isinstance(name, str) or p + name in self.by_name:
                continue
            inner = n.get("subgraph")
            if isinstance(inner, Mapping) and f"sub:{p}{name}" in self._expanded:
                subs.add(name)
                self.clusters.append((p + name, []))
                self._open.append(self.clusters[-1][1])
                self._add(f"{p}{name}|{START}", "join", "")
                self._build(inner, f"{p}{name}|")
                self._open.pop()
            else:
                self._add(p + name, "node", name)
                self.user_nodes += 1
        for n in graph.get("nodes") or ():
            if isinstance(n, Mapping) and n.get("destinations"):
                for d in n["destinations"]:
                    self._edge(src(n["name"]), dst(d), "conditional", "goto")
        for e in graph.get("edges") or ():
            self._edge(src(e["source"]), dst(e["target"]), "static")
        for i, j in enumerate(graph.get("joins") or ()):
            jn = self._add(f"{p}__join__{i}", "join", "")
            for s in j["sources"]:
                self._edge(src(s), jn, "join")
            self._edge(jn, dst(j["target"]), "join")
        for i, b in enumerate(graph.get("branches") or ()):
            router = b.get("router") or "route"
            start = src(b["source"])
            path_map = b.get("path_map")
            targets = b.get("targets")
            if path_map:
                by_target: dict[str, list[str]] = {}
                for key, target in path_map.items():
                    keys = by_target.setdefault(target, [])
                    if key != target:
                        keys.append(str(key))
                for target, keys in by_target.items():
                    label = f"{router}: {', '.join(keys)}" if keys else router
                    self._edge(start, dst(target), "conditional", label)
            elif targets:
                for target in dict.fromkeys(targets):
                    self._edge(start, dst(target), "conditional", router)
            else:
                stub = self._add(f"{p}__dynamic__{i}", "dynamic", f"{router} ?")
                self._edge(start, stub, "dynamic")
        for w in graph.get("weighted") or ():
            start = src(w["source"])
            for target, weight in (w.get("weights") or {}).items():
                self._edge(start, dst(target), "weighted", _fmt_weight(weight))
        if p:  # a subgraph finishes where its nodes stop: draw those ends into its END
            end = ref(END, False)
            leaving = {e.s for e in self.edges}
            for node in self.nodes[first:]:
                own = node.name[len(p):]
                if node.id not in leaving and node.id != end and node.kind in ("node", "join") \
                        and (own.count("|") == 0 or (own.count("|") == 1 and own.endswith(f"|{END}"))):
                    self._edge(node.id, end, "static")

    def _add(self, name: str, kind: str, label: str) -> int:
        if kind in ("start", "end"):
            w = h = 20.0
        elif kind == "join":
            w = h = 10.0
        elif kind == "dynamic":
            w, h = min(_NODE_MAX_W, max(40.0, _text_w(label) * 11 / 12 + 16)), 22.0
        else:
            w, h = min(_NODE_MAX_W, max(_NODE_MIN_W, _text_w(label) + 24)), _NODE_H
        node = _Node(len(self.nodes), name, label, kind, w, h)
        self.nodes.append(node)
        self.by_name[name] = node.id
        for members in self._open:
            members.append(node.id)
        return node.id

    def _id(self, name: str) -> int:
        found = self.by_name.get(name)
        if found is not None:
            return found
        if name == START:
            return self._add(START, "start", "START")
        if name == END:
            return self._add(END, "end", "END")
        return self._add(name, "node", name)  # undeclared: drawn rather than dropped

    def _edge(self, s: int, t: int, kind: str, label: str = "") -> None:
        self.edges.append(_Edge(s, t, kind, label))


def graph_size(graph: Mapping[str, Any]) -> tuple[int, int]:
    """``(nodes, edges)`` of a description as drawn: user nodes (START/END not counted) and
    connections (static edges, each source of a join, each router target, each weighted
    target; a router with dynamic targets counts one)."""
    g = _Graph(graph)
    junction_out = sum(1 for n in g.nodes if n.kind == "join")
    return g.user_nodes, len(g.edges) - junction_out


# ---------------------------------------------------------------------------------------------
# layout


def _pav_place(
    layer: list[int], want: list[float], wt: list[float], off: list[float], y: list[float]
) -> None:
    """Order-preserving weighted least squares: y[layer[i]] - off[i] nondecreasing, close to want."""
    vals: list[float] = []
    ws: list[float] = []
    ns: list[int] = []
    for i in range(len(layer)):
        vals.append(want[i] - off[i])
        ws.append(wt[i])
        ns.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            w = ws[-2] + ws[-1]
            vals[-2] = (vals[-2] * ws[-2] + vals[-1] * ws[-1]) / w
            ws[-2] = w
            ns[-2] += ns[-1]
            vals.pop()
            ws.pop()
            ns.pop()
    i = 0
    for v, n in zip(vals, ns, strict=True):
        for _ in range(n):
            y[layer[i]] = v + off[i]
            i += 1


_BOX_TOP, _BOX_BOTTOM = 24.0, 10.0  # a subgraph's box around its nodes: room for its label above


def _separate_clusters(g: _Graph, rank_a: list[int], y: list[float], h_a: list[float], dummy: list[bool],
                       pairs: list[tuple[int, int, int]], chain: list[list[int]], da: list[int],
                       db: list[int]) -> None:
    """Move things down so that no two boxes of top-level subgraphs, and no node outside them,
    overlap: each box (its nodes, and the bends of edges between them) is a block over the columns
    it spans; blocks are taken top to bottom and each goes where it is, or lower, below what is
    already placed in those columns."""
    n_nodes = len(g.nodes)
    tops = {path for path, ids in g.clusters if "|" not in path and ids}
    block_of: list[Any] = [None] * len(rank_a)
    for v in range(n_nodes):
        head = g.nodes[v].name.split("|", 1)[0]
        if "|" in g.nodes[v].name and head in tops:
            block_of[v] = head
    for k in range(len(pairs)):
        own = block_of[da[k]]
        if own is not None and own == block_of[db[k]]:
            for d in chain[k]:
                block_of[d] = own
    blocks: dict[Any, list[int]] = {}
    for v in range(len(rank_a)):
        blocks.setdefault(block_of[v] if block_of[v] is not None else v, []).append(v)
    placed = []
    for key, members in blocks.items():
        boxed = isinstance(key, str)
        top = min(y[v] - h_a[v] / 2 for v in members) - (_BOX_TOP if boxed else 0.0)
        bottom = max(y[v] + h_a[v] / 2 for v in members) + (_BOX_BOTTOM if boxed else 0.0)
        own = [rank_a[v] for v in members]
        gap = _DUMMY_GAP if all(dummy[v] for v in members) else _NODE_GAP
        placed.append(((top + bottom) / 2, top, bottom - top, range(min(own), max(own) + 1), members, gap))
    placed.sort(key=lambda b: b[0])
    floor: dict[int, float] = {}
    for _, top, height, cols, members, gap in placed:
        low = max((floor[r] + gap for r in cols if r in floor), default=top)
        new_top = max(top, low)
        if new_top > top:
            shift = new_top - top
            for v in members:
                y[v] += shift
        for r in cols:
            floor[r] = new_top + height


def _layout(g: _Graph) -> None:
    nodes, edges = g.nodes, g.edges
    n_nodes = len(nodes)
    if not n_nodes:
        return
    pairs = [(i, e.s, e.t) for i, e in enumerate(edges) if e.s != e.t]
    m = len(pairs)
    out: list[list[int]] = [[] for _ in range(n_nodes)]
    indeg = [0] * n_nodes
    for k, (_, s, t) in enumerate(pairs):
        out[s].append(k)
        indeg[t] += 1

    # 1. cycles: DFS from START, then sources, then everything, in the order nodes were added
    roots = [n.id for n in nodes if n.kind == "start"]
    roots += [v for v in range(n_nodes) if indeg[v] == 0]
    roots += range(n_nodes)
    state = [0] * n_nodes
    rev = [False] * m
    disc = [0] * n_nodes
    count = 0
    for r in roots:
        if state[r]:
            continue
        state[r] = 1
        disc[r] = count
        count += 1
        stack = [(r, iter(out[r]))]
        while stack:
            v, edge_iter = stack[-1]
            nk = next(edge_iter, None)
            if nk is None:
                state[v] = 2
                stack.pop()
                continue
            k = nk
            t = pairs[k][2]
            if state[t] == 1:
                rev[k] = True
            elif state[t] == 0:
                state[t] = 1
                disc[t] = count
                count += 1
                stack.append((t, iter(out[t])))

    # 2. longest-path ranks in a topological order
    da = [t if rev[k] else s for k, (_, s, t) in enumerate(pairs)]
    db = [s if rev[k] else t for k, (_, s, t) in enumerate(pairs)]
    dout: list[list[int]] = [[] for _ in range(n_nodes)]
    din = [0] * n_nodes
    for k in range(m):
        dout[da[k]].append(db[k])
        din[db[k]] += 1
    rank = [0] * n_nodes
    left = din[:]
    queue = deque(v for v in range(n_nodes) if left[v] == 0)
    while queue:
        v = queue.popleft()
        for t in dout[v]:
            if rank[v] + 1 > rank[t]:
                rank[t] = rank[v] + 1
            left[t] -= 1
            if left[t] == 0:
                queue.append(t)
    for v in range(n_nodes):
        if din[v] == 0 and dout[v] and nodes[v].kind != "start":
            rank[v] = max(0, min(rank[t] for t in dout[v]) - 1)

    # 3. dummies along long edges, within a budget
    budget = max(2000, 2 * n_nodes)
    chain: list[list[int]] = [[] for _ in range(m)]
    rank_a = rank[:]
    h_a = [n.h for n in nodes]
    dummy = [False] * n_nodes
    key = [float(d) for d in disc]
    for k in range(m):
        span = rank[db[k]] - rank[da[k]]
        if span > 1 and span - 1 <= budget:
            budget -= span - 1
            for r in range(rank[da[k]] + 1, rank[db[k]]):
                chain[k].append(len(rank_a))
                rank_a.append(r)
                h_a.append(2.0)
                dummy.append(True)
                key.append(disc[da[k]] + 0.5)
    total = len(rank_a)
    up: list[list[int]] = [[] for _ in range(total)]
    down: list[list[int]] = [[] for _ in range(total)]
    for k in range(m):
        prev = da[k]
        for d in (*chain[k], db[k]):
            down[prev].append(d)
            up[d].append(prev)
            prev = d

    # 4. order each layer: DFS order, then barycenter sweeps
    n_ranks = max(rank_a) + 1
    layers: list[list[int]] = [[] for _ in range(n_ranks)]
    for v in range(total):
        layers[rank_a[v]].append(v)
    for layer in layers:
        layer.sort(key=lambda v: (key[v], v))
    y = [0.0] * total

    def gap(u: int, v: int) -> float:
        return (h_a[u] + h_a[v]) / 2 + (_DUMMY_GAP if dummy[u] or dummy[v] else _NODE_GAP)

    def place(layer: list[int]) -> None:
        acc = 0.0
        for i, v in enumerate(layer):
            if i:
                acc += gap(layer[i - 1], v)
            y[v] = acc
        mid = acc / 2
        for v in layer:
            y[v] -= mid

    for layer in layers:
        place(layer)
    sweeps = 8 if total <= 20000 else 4
    for it in range(sweeps):
        order = range(1, n_ranks) if it % 2 == 0 else range(n_ranks - 2, -1, -1)
        nbrs = up if it % 2 == 0 else down
        for r in order:
            layer = layers[r]
            pos = {v: i for i, v in enumerate(layer)}
            bary = {
                v: (sum(y[u] for u in nbrs[v]) / len(nbrs[v]) if nbrs[v] else y[v]) for v in layer
            }
            layer.sort(key=lambda v: (bary[v], pos[v]))
            place(layer)

    # 5. vertical coordinates: close to the neighbours' mean, order and gaps kept
    def align(layer: list[int], sides: Iterable[list[list[int]]]) -> None:
        sides = list(sides)
        off: list[float] = []
        want: list[float] = []
        wt: list[float] = []
        acc = 0.0
        for i, v in enumerate(layer):
            if i:
                acc += gap(layer[i - 1], v)
            off.append(acc)
            ys = [y[u] for side in sides for u in side[v]]
            want.append(sum(ys) / len(ys) if ys else y[v])
            wt.append((2.0 if dummy[v] else 1.0) if ys else 0.05)
        _pav_place(layer, want, wt, off, y)

    for p in range(4):
        if p % 2 == 0:
            for r in range(1, n_ranks):
                align(layers[r], [up])
        else:
            for r in range(n_ranks - 2, -1, -1):
                align(layers[r], [down])
    for r in range(n_ranks):
        align(layers[r], [up, down])

    if g.clusters:
        _separate_clusters(g, rank_a, y, h_a, dummy, pairs, chain, da, db)

    # 6. columns
    max_label = max((e.lw for e in edges if e.label), default=0.0)
    rank_sep = min(150.0, max(46.0, max_label + 24))
    col_w = [0.0] * n_ranks
    for v in range(n_nodes):
        col_w[rank[v]] = max(col_w[rank[v]], nodes[v].w)
    col_x = [0.0] * n_ranks
    x = _MARGIN
    for r in range(n_ranks):
        col_x[r] = x + col_w[r] / 2
        x += col_w[r] + rank_sep
    min_y = min(min(y[v] - h_a[v] / 2 for v in range(n_nodes)), min(y[n_nodes:], default=0.0))
    dy = _MARGIN - min_y
    for v in range(n_nodes):
        nodes[v].x = col_x[rank[v]]
        nodes[v].y = y[v] + dy

    # 7. routes
    for k, (i, _, _) in enumerate(pairs):
        e = edges[i]
        src, dst = nodes[e.s], nodes[e.t]
        mids = [(col_x[rank_a[d]], y[d] + dy) for d in chain[k]]
        if not rev[k]:
            e.points = [(src.x + src.w / 2, src.y), *mids, (dst.x - dst.w / 2, dst.y)]
        elif mids:
            e.points = [(src.x - src.w / 2, src.y), *reversed(mids), (dst.x + dst.w / 2, dst.y)]
        else:
            low = max(src.y + src.h / 2, dst.y + dst.h / 2) + 22
            e.points = [
                (src.x, src.y + src.h / 2),
                (src.x - 8, low),
                (dst.x + 8, low),
                (dst.x, dst.y + dst.h / 2),
            ]
    for e in edges:
        if e.s == e.t:
            node = nodes[e.s]
            top = node.y - node.h / 2
            dx = min(18.0, node.w / 4)
            e.points = [
                (node.x + dx, top),
                (node.x + dx + 6, top - 26),
                (node.x - dx - 6, top - 26),
                (node.x - dx, top),
            ]
            e.lx, e.ly = node.x, top - 26
            continue
        pts = e.points
        if len(pts) % 2:
            e.lx, e.ly = pts[len(pts) // 2]
        else:
            (ax, ay), (bx, by) = pts[len(pts) // 2 - 1], pts[len(pts) // 2]
            e.lx, e.ly = (ax + bx) / 2, (ay + by) / 2


# ---------------------------------------------------------------------------------------------
# drawing


def _f(v: float) -> str:
    r = round(v, 1)
    return str(int(r)) if r == int(r) else str(r)


def _path(p: list[tuple[float, float]]) -> str:
    if len(p) < 2:
        return ""
    d = [f"M{_f(p[0][0])} {_f(p[0][1])}"]
    if len(p) == 2:
        (ax, ay), (bx, by) = p
        dx = (bx - ax) / 2
        if dx > 0:
            d.append(f"C{_f(ax + dx)} {_f(ay)} {_f(bx - dx)} {_f(by)} {_f(bx)} {_f(by)}")
        else:
            d.append(f"L{_f(bx)} {_f(by)}")
        return "".join(d)
    for i in range(1, len(p) - 1):
        if i < len(p) - 2:
            ex, ey = (p[i][0] + p[i + 1][0]) / 2, (p[i][1] + p[i + 1][1]) / 2
        else:
            ex, ey = p[-1]
        d.append(f"Q{_f(p[i][0])} {_f(p[i][1])} {_f(ex)} {_f(ey)}")
    return "".join(d)


def _arrow(p: list[tuple[float, float]]) -> str:
    (ex, ey) = p[-1]
    ax, ay = (ex - 1, ey) if len(p) == 2 and p[1][0] > p[0][0] else p[-2]
    dx, dy = ex - ax, ey - ay
    n = (dx * dx + dy * dy) ** 0.5 or 1.0
    dx, dy = dx / n, dy / n
    bx, by = ex - dx * 8, ey - dy * 8
    return (
        f"{_f(ex)},{_f(ey)} {_f(bx - dy * 4)},{_f(by + dx * 4)} {_f(bx + dy * 4)},{_f(by - dx * 4)}"
    )


def _attr(text: str) -> str:
    return escape(text, {'"': "&quot;"})


def render_svg(
    graph_json: Mapping[str, Any],
    *,
    status: Mapping[str, str] | None = None,
    expanded: Iterable[str] = (),
) -> str:
    """Draw a graph description as a standalone SVG document (a string).

    Args:
        graph_json: what ``app.to_json()`` returns.
        status: optional node -> status (``pending``, ``running``, ``done``, ``failed``,
            ``retrying``, ``interrupted``, ``idle``) to colour the nodes as the widget does;
            a node inside an open subgraph by its path (``"team|approve"``).
        expanded: the subgraphs drawn open, as ``"sub:<path>"`` (the GraphView's ``expanded``):
            a box titled with the path around their own nodes; the others are one node each.

    Example:
        >>> svg = render_svg({"name": "g", "nodes": [{"name": "a"}],
        ...                   "edges": [{"source": "__start__", "target": "a"}]})
        >>> svg.startswith("<svg") and 'data-node="a"' in svg
        True
    """
    g = _Graph(graph_json, expanded)
    _layout(g)
    status = status or {}
    name = str(graph_json.get("name") or "graph")
    boxes = []
    for path, ids in g.clusters:
        if ids:
            inside = [g.nodes[i] for i in ids]
            boxes.append((path, min(n.x - n.w / 2 for n in inside) - 12, min(n.y - n.h / 2 for n in inside) - _BOX_TOP,
                          max(n.x + n.w / 2 for n in inside) + 12, max(n.y + n.h / 2 for n in inside) + _BOX_BOTTOM))
    if g.nodes:
        xs = [n.x - n.w / 2 for n in g.nodes] + [n.x + n.w / 2 for n in g.nodes] + [b[1] for b in boxes] + [b[3] for b in boxes]
        ys = [n.y - n.h / 2 for n in g.nodes] + [n.y + n.h / 2 for n in g.nodes] + [b[2] for b in boxes] + [b[4] for b in boxes]
        for e in g.edges:
            xs += [x for x, _ in e.points]
            ys += [y for _, y in e.points]
            if e.label:
                ys.append(e.ly - _LABEL_H)
        x0, y0 = min(xs) - _MARGIN, min(ys) - _MARGIN
        width, height = max(xs) + _MARGIN - x0, max(ys) + _MARGIN - y0
    else:
        x0, y0, width, height = 0.0, 0.0, 200.0, 40.0
    shown_w = min(width, _MAX_WIDTH)
    shown_h = height * shown_w / width
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(shown_w)}" height="{_f(shown_h)}" '
        f'viewBox="{_f(x0)} {_f(y0)} {_f(width)} {_f(height)}" font-family="{_attr(_FONT)}" font-size="12" '
        f'role="img" aria-label="{_attr(f"graph {name}: {g.user_nodes} nodes")}">',
        f"<title>{escape(name)}</title>",
        f'<rect x="{_f(x0)}" y="{_f(y0)}" width="{_f(width)}" height="{_f(height)}" fill="#ffffff"/>',
    ]
    if not g.nodes:
        out.append(
            f'<text x="100" y="24" text-anchor="middle" fill="#5f6368">{escape(name)}: no nodes</text>'
        )
    for path, bx0, by0, bx1, by1 in boxes:
        label = path.replace("|", " > ")
        out.append(
            f'<g data-cluster="{_attr(path)}"><title>subgraph {escape(label)}</title>'
            f'<rect x="{_f(bx0)}" y="{_f(by0)}" width="{_f(bx1 - bx0)}" height="{_f(by1 - by0)}" rx="9" '
            f'fill="#4285f4" fill-opacity="0.05" stroke="#9aa9c2" stroke-dasharray="4 3"/>'
            f'<text x="{_f(bx0 + 8)}" y="{_f(by0 + 17)}" font-size="11" font-weight="600" fill="#3c4a63">'
            f"{escape(label)}</text></g>"
        )
    out.append('<g class="edges" fill="none" stroke-width="1.5">')
    heads: dict[str, list[str]] = {}
    for e in g.edges:
        if len(e.points) < 2:
            continue
        colour, dash = _EDGE_STYLE[e.kind]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<path d="{_path(e.points)}" stroke="{colour}"{dash_attr}/>')
        if g.nodes[e.t].kind != "join":
            heads.setdefault(colour, []).append(_arrow(e.points))
    out.append("</g>")
    for colour, polys in heads.items():
        out.append(
            f'<g fill="{colour}">' + "".join(f'<polygon points="{p}"/>' for p in polys) + "</g>"
        )
    out.append('<g class="labels" font-size="11" text-anchor="middle">')
    for e in g.edges:
        if not e.label:
            continue
        lw = e.lw
        out.append(
            f'<rect x="{_f(e.lx - lw / 2)}" y="{_f(e.ly - _LABEL_H / 2)}" width="{_f(lw)}" height="{_f(_LABEL_H)}" '
            f'rx="3" fill="#ffffff" fill-opacity="0.85"/>'
            f'<text x="{_f(e.lx)}" y="{_f(e.ly + 4)}" fill="{_EDGE_STYLE[e.kind][0]}">{escape(e.label)}</text>'
        )
    out.append("</g>")
    out.append('<g class="nodes" text-anchor="middle">')
    for n in g.nodes:
        if n.kind == "node":
            fill, stroke = STATUS_COLORS.get(status.get(n.name, "idle"), STATUS_COLORS["idle"])
            out.append(
                f'<g data-node="{_attr(n.name)}"><title>{escape(n.name)}</title>'
                f'<rect x="{_f(n.x - n.w / 2)}" y="{_f(n.y - n.h / 2)}" width="{_f(n.w)}" height="{_f(n.h)}" '
                f'rx="7" fill="{fill}" stroke="{stroke}" stroke-width="1.3"/>'
                f'<text x="{_f(n.x)}" y="{_f(n.y + 4)}" fill="#202124">{escape(_clip(n.label, n.w - 20))}</text></g>'
            )
        elif n.kind == "start":
            out.append(
                f'<g data-node="{START}"><title>START</title>'
                f'<circle cx="{_f(n.x)}" cy="{_f(n.y)}" r="10" fill="#5f6368"/></g>'
            )
        elif n.kind == "end":
            out.append(
                f'<g data-node="{END}"><title>END</title>'
                f'<circle cx="{_f(n.x)}" cy="{_f(n.y)}" r="10" fill="#ffffff" stroke="#5f6368" stroke-width="2"/>'
                f'<circle cx="{_f(n.x)}" cy="{_f(n.y)}" r="5.5" fill="#5f6368"/></g>'
            )
        elif n.kind == "join":
            out.append(
                f'<circle cx="{_f(n.x)}" cy="{_f(n.y)}" r="5" fill="#8d6e63"><title>join</title></circle>'
            )
        else:
            out.append(
                f"<g><title>dynamic targets chosen by {escape(n.label)}</title>"
                f'<rect x="{_f(n.x - n.w / 2)}" y="{_f(n.y - n.h / 2)}" width="{_f(n.w)}" height="{_f(n.h)}" '
                f'rx="{_f(n.h / 2)}" fill="#ffffff" stroke="#5c6bc0" stroke-dasharray="3 3"/>'
                f'<text x="{_f(n.x)}" y="{_f(n.y + 4)}" fill="#5c6bc0" font-size="11" font-style="italic">'
                f"{escape(_clip(n.label, n.w - 12, _CHAR_W * 11 / 12))}</text></g>"
            )
    out.append("</g></svg>")
    return "".join(out)
