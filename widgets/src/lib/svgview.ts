// The SVG renderer: one element per node (with data-testid="node-<name>"), for graphs up to a
// few thousand nodes. Built as one markup string (much faster than element-by-element), then
// updated in place: status, selection and breakpoints are attributes, zoom/pan one transform.
import type { VGraph } from "./model";
import { EDGE_STYLE, SvgPath, tracePath } from "./style";
import { BP_AFTER, BP_BEFORE, type Renderer, type ViewState } from "./view";

const SVG_NS = "http://www.w3.org/2000/svg";
const ESC: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ESC[c]);
const FAR_SCALE = 0.3;
const r1 = (v: number): number => Math.round(v * 10) / 10;

export function edgeTitle(g: VGraph, st: ViewState, i: number): string {
  const e = g.edges[i];
  const s = g.nodes[e.s];
  const t = g.nodes[e.t];
  const name = (n: typeof s) => (n.kind === "join" ? "join" : n.kind === "dynamic" ? n.label : n.name);
  let text = `${name(s)} \u2192 ${name(t)}`;
  if (e.label) text += ` (${e.label})`;
  if (st.edgeCount[i] > 0) text += ` \u00d7${st.edgeCount[i]}`;
  return text;
}

/** A loop node (for-each or while): a badge above its top right corner, "\u21bb", then "\u21bb 3/10"
 * while it runs (see loopsChanged). */
function loopBadge(n: VGraph["nodes"][number]): string {
  const loop = n.meta?.loop as { kind?: string } | undefined;
  if (!loop || typeof loop !== "object") return "";
  const what = loop.kind === "foreach" ? "for-each" : "while loop";
  return `<text class="agn-loop" data-testid="loop-${esc(n.name)}" aria-label="${what}" x="${r1(n.w - 2)}" y="-4">\u21bb</text>`;
}

export class SvgRenderer implements Renderer {
  readonly kind = "svg" as const;
  readonly svg: SVGSVGElement;
  private vp: SVGGElement;
  private nodeEls: (Element | null)[];
  private edgeEls: (SVGPathElement | null)[];
  private far = false;

  constructor(host: HTMLElement, private st: ViewState, uid: string) {
    const g = st.g;
    const out: string[] = [];
    out.push("<defs>");
    for (const kind of Object.keys(EDGE_STYLE)) {
      out.push(
        `<marker id="${uid}-a-${kind}" class="agn-arrow-${kind}" viewBox="0 0 10 10" refX="9" refY="5" ` +
          `markerWidth="8" markerHeight="8" markerUnits="userSpaceOnUse" orient="auto"><path d="M0 0L10 5L0 10z"/></marker>`,
      );
    }
    out.push('</defs><g class="agn-viewport"><g class="agn-clusters">');
    for (const c of st.clusters ?? []) {
      const path = esc(c.key.slice(4));
      out.push(
        `<g class="agn-cluster" data-testid="cluster-${path}" transform="translate(${r1(c.x0)} ${r1(c.y0)})">` +
          `<rect width="${r1(c.x1 - c.x0)}" height="${r1(c.y1 - c.y0)}" rx="9"/>` +
          `<g class="agn-cluster-title" data-cluster="${esc(c.key)}" data-testid="cluster-collapse-${path}" role="button" ` +
          `tabindex="0" aria-label="${esc(`subgraph ${c.label}: click to collapse`)}">` +
          `<text x="8" y="13">\u25be ${esc(c.label)}</text><title>subgraph ${esc(c.label)}: click to collapse</title></g></g>`,
      );
    }
    out.push('</g><g class="agn-edges">');
    for (const e of g.edges) {
      const p = new SvgPath();
      tracePath(e.points, p);
      const arrow = g.nodes[e.t].kind === "join" ? "" : ` marker-end="url(#${uid}-a-${e.kind})"`;
      out.push(
        `<path class="agn-edge agn-edge-${e.kind}" data-edge-id="${e.id}" d="${p.d}"${arrow}>` +
          `<title>${esc(edgeTitle(g, st, e.id))}</title></path>`,
      );
    }
    out.push('</g><g class="agn-elabels">');
    for (const e of g.edges) {
      if (!e.label) continue;
      out.push(
        `<rect class="agn-lbg" x="${r1(e.lx - e.lw / 2)}" y="${r1(e.ly - e.lh / 2)}" width="${r1(e.lw)}" height="${e.lh}" rx="3"/>` +
          `<text class="agn-elabel agn-elabel-${e.kind}" x="${r1(e.lx)}" y="${r1(e.ly)}">${esc(e.label)}</text>`,
      );
    }
    out.push('</g><g class="agn-nodes">');
    for (const n of g.nodes) {
      const name = esc(n.name);
      if (n.kind === "node") {
        out.push(
          `<g class="agn-node" data-testid="node-${name}" data-node-id="${n.id}" data-status="${st.status[n.id]}" ` +
            `role="button" tabindex="0" aria-label="${name}" transform="translate(${r1(n.x - n.w / 2)} ${r1(n.y - n.h / 2)})">` +
            `<rect width="${r1(n.w)}" height="${n.h}" rx="7"/>` +
            `<text x="${r1(n.w / 2)}" y="${n.h / 2}">${esc(n.text)}</text>` +
            loopBadge(n) +
            `<title>${name}</title></g>`,
        );
      } else if (n.kind === "group") {
        const key = esc(n.name);
        out.push(
          `<g class="agn-node agn-group" data-testid="group-${key}" data-group="${key}" data-node-id="${n.id}" ` +
            `data-status="${st.status[n.id]}" role="button" tabindex="0" aria-expanded="false" ` +
            `aria-label="${esc(`${n.label} (${n.sub}): click to expand`)}" transform="translate(${r1(n.x - n.w / 2)} ${r1(n.y - n.h / 2)})">` +
            `<rect class="agn-stack" x="4" y="-4" width="${r1(n.w)}" height="${n.h}" rx="7"/>` +
            `<rect width="${r1(n.w)}" height="${n.h}" rx="7"/>` +
            `<text class="agn-g1" x="${r1(n.w / 2 - 6)}" y="${n.h / 2 - 7}">${esc(n.text)}</text>` +
            `<text class="agn-g2" x="${r1(n.w / 2 - 6)}" y="${n.h / 2 + 8}">${esc(n.sub ?? "")}</text>` +
            `<text class="agn-gplus" x="${r1(n.w - 11)}" y="${n.h / 2}">+</text>` +
            `<title>${esc(`${n.label}: ${n.sub}. Click to expand.`)}</title></g>`,
        );
      } else if (n.kind === "start" || n.kind === "end") {
        const inner = n.kind === "end" ? '<circle class="agn-end-inner" r="5.5"/>' : "";
        out.push(
          `<g class="agn-node agn-${n.kind}" data-testid="node-${name}" data-node-id="${n.id}" role="button" tabindex="0" ` +
            `aria-label="${n.label}" transform="translate(${r1(n.x)} ${r1(n.y)})"><circle r="10"/>${inner}<title>${n.label}</title></g>`,
        );
      } else if (n.kind === "join") {
        out.push(
          `<g class="agn-join" data-testid="join-${esc(n.name.replace("__join__", ""))}" transform="translate(${r1(n.x)} ${r1(n.y)})">` +
            `<circle r="5"/><title>join</title></g>`,
        );
      } else {
        out.push(
          `<g class="agn-dynamic" data-testid="router-${esc(n.name.replace("__dynamic__", ""))}" ` +
            `transform="translate(${r1(n.x - n.w / 2)} ${r1(n.y - n.h / 2)})"><rect width="${r1(n.w)}" height="${n.h}" rx="${n.h / 2}"/>` +
            `<text x="${r1(n.w / 2)}" y="${n.h / 2}">${esc(n.text)}</text><title>dynamic targets chosen by ${esc(n.label)}</title></g>`,
        );
      }
    }
    out.push("</g></g>");

    this.svg = document.createElementNS(SVG_NS, "svg");
    this.svg.setAttribute("class", "agn-svg");
    this.svg.setAttribute("data-testid", "graphview-svg");
    this.svg.innerHTML = out.join("");
    host.appendChild(this.svg);
    this.vp = this.svg.querySelector(".agn-viewport") as SVGGElement;
    this.nodeEls = new Array(g.nodes.length).fill(null);
    this.svg.querySelectorAll("[data-node-id]").forEach((el) => {
      this.nodeEls[Number(el.getAttribute("data-node-id"))] = el;
    });
    this.edgeEls = new Array(g.edges.length).fill(null);
    this.svg.querySelectorAll("path[data-edge-id]").forEach((el) => {
      this.edgeEls[Number(el.getAttribute("data-edge-id"))] = el as SVGPathElement;
    });
    this.edgesChanged();
    this.breakpointsChanged(g.nodes.map((n) => n.id).filter((i) => st.breakpoints[i]));
    this.currentChanged(g.nodes.map((n) => n.id).filter((i) => st.current[i]));
    if (st.selected >= 0) this.selectionChanged(-1, st.selected);
    this.matchesChanged();
  }

  setTransform(k: number, tx: number, ty: number): void {
    this.vp.setAttribute("transform", `translate(${tx} ${ty}) scale(${k})`);
    // Text too small to read is not drawn (level of detail), which also keeps panning fast.
    const far = k < FAR_SCALE;
    if (far !== this.far) {
      this.far = far;
      this.svg.classList.toggle("agn-far", far);
    }
  }

  resize(): void {}

  statusChanged(ids: number[]): void {
    for (const id of ids) {
      const el = this.nodeEls[id];
      if (el && this.st.g.nodes[id].kind === "group") {
        el.setAttribute("data-status", this.st.status[id]);
      } else if (el && this.st.g.nodes[id].kind === "node") {
        el.setAttribute("data-status", this.st.status[id]);
        el.setAttribute("aria-label", `${this.st.g.nodes[id].name}: ${this.st.status[id]}`);
      }
    }
  }

  loopsChanged(counts: Record<string, string>): void {
    this.svg.querySelectorAll("text.agn-loop").forEach((el) => {
      const name = (el.getAttribute("data-testid") ?? "").slice(5);
      const text = counts[name] ? `\u21bb ${counts[name]}` : "\u21bb";
      if (el.textContent !== text) el.textContent = text;
    });
  }

  edgesChanged(): void {
    const st = this.st;
    for (let i = 0; i < this.edgeEls.length; i++) {
      const el = this.edgeEls[i];
      if (!el) continue;
      if (st.edgeCount[i] > 0) el.style.strokeWidth = String(st.edgeWidth[i]);
      else el.style.removeProperty("stroke-width");
      const title = el.firstElementChild;
      if (title) title.textContent = edgeTitle(st.g, st, i);
    }
  }

  selectionChanged(prev: number, next: number): void {
    if (prev >= 0) this.nodeEls[prev]?.classList.remove("agn-selected");
    if (next >= 0) this.nodeEls[next]?.classList.add("agn-selected");
  }

  breakpointsChanged(ids: number[]): void {
    for (const id of ids) {
      const el = this.nodeEls[id];
      const n = this.st.g.nodes[id];
      if (!el || (n.kind !== "node" && n.kind !== "group")) continue;
      const bits = this.st.breakpoints[id];
      el.classList.toggle("agn-bp", !!(bits & BP_BEFORE));
      el.setAttribute("data-breakpoint", bits & BP_BEFORE ? "true" : "false");
      el.setAttribute("data-breakpoint-after", bits & BP_AFTER ? "true" : "false");
      this.marker(el, n.name, "before", 3, !!(bits & BP_BEFORE));
      this.marker(el, n.name, "after", n.w - 3, !!(bits & BP_AFTER));
    }
  }

  /** A breakpoint dot: top left for "before", top right for "after"; only there while set. */
  private marker(el: Element, name: string, when: "before" | "after", cx: number, on: boolean): void {
    const cls = `agn-bp-${when}`;
    let dot: Element | null = null;
    for (const c of Array.from(el.children)) if (c.classList.contains(cls)) dot = c;
    if (!on) {
      dot?.remove();
      return;
    }
    if (dot) return;
    dot = document.createElementNS(SVG_NS, "circle");
    dot.setAttribute("class", `agn-bp-dot ${cls}`);
    dot.setAttribute("data-testid", `bp-${when}-${name}`);
    dot.setAttribute("cx", String(r1(cx)));
    dot.setAttribute("cy", "3");
    dot.setAttribute("r", "4.5");
    const title = document.createElementNS(SVG_NS, "title");
    title.textContent = `breakpoint ${when} ${name}`;
    dot.appendChild(title);
    el.appendChild(dot);
  }

  currentChanged(ids: number[]): void {
    for (const id of ids) {
      const el = this.nodeEls[id];
      if (!el || (this.st.g.nodes[id].kind !== "node" && this.st.g.nodes[id].kind !== "group")) continue;
      const on = !!this.st.current[id];
      el.classList.toggle("agn-current", on);
      el.setAttribute("data-current", on ? "true" : "false");
    }
  }

  private matched: number[] = [];
  private foundId = -1;

  matchesChanged(): void {
    const st = this.st;
    for (const id of this.matched) if (!st.match[id]) this.nodeEls[id]?.classList.remove("agn-match");
    const next: number[] = [];
    for (let i = 0; i < st.match.length; i++) {
      if (!st.match[i]) continue;
      next.push(i);
      this.nodeEls[i]?.classList.add("agn-match");
    }
    this.matched = next;
    if (this.foundId !== st.found) {
      if (this.foundId >= 0) this.nodeEls[this.foundId]?.classList.remove("agn-found");
      if (st.found >= 0) this.nodeEls[st.found]?.classList.add("agn-found");
      this.foundId = st.found;
    }
  }

  pick(_x: number, _y: number, target: EventTarget | null): number {
    const el = target instanceof Element ? target.closest("[data-node-id]") : null;
    return el && this.svg.contains(el) ? Number(el.getAttribute("data-node-id")) : -1;
  }

  destroy(): void {
    this.svg.remove();
  }
}
