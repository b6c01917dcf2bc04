// The details panel of the selected node: name and status, what it calls, its breakpoints, the
// group it was expanded from, and its last input, output, duration, attempt and error. Docked
// beside the graph (below it in a narrow view), so it never covers a node.
import type { VNode } from "./model";
import { h } from "./toolbar";
import { icon } from "./icons";
import { BP_AFTER, BP_BEFORE } from "./view";

// "reply": a chat model's answer as it streams, first, where a small panel still shows it
const DETAIL_ORDER = ["reply", "input", "output", "duration", "attempt", "error"];

export interface DetailsInput {
  node: VNode;
  status: string;
  details: Record<string, unknown> | undefined;
  breakpoints: number;
  /** The expanded groups this node is in (outermost first): collapse buttons. */
  groups: { key: string; label: string }[];
  close(): void;
  toggleBreakpoint(bit: number): void;
  collapse(key: string): void;
}

export function renderDetails(panel: HTMLElement, d: DetailsInput): void {
  const n = d.node;
  const head = h("header");
  head.appendChild(h("span", { class: "agn-name", "data-testid": "graphview-details-name" }, n.kind === "node" ? n.name : n.label));
  if (d.status) head.appendChild(h("span", { class: "agn-badge", "data-status": d.status, "data-testid": "graphview-details-status" }, d.status));
  const close = h("button", { class: "agn-btn agn-close", type: "button", "aria-label": "Close details", title: "Close (Esc)", "data-testid": "graphview-details-close" });
  close.appendChild(icon("close"));
  close.addEventListener("click", () => d.close());
  head.appendChild(close);
  const parts: Node[] = [head];
  const meta = n.meta;
  if (meta) {
    const bits: string[] = [];
    if (meta.target) bits.push(String(meta.target));
    if (meta.async) bits.push("async");
    const retry = meta.retry as Record<string, unknown> | null | undefined;
    if (retry && typeof retry === "object") bits.push(`retry \u00d7${retry.max_attempts ?? "?"}`);
    if (typeof meta.timeout === "number") bits.push(`timeout ${meta.timeout}s`);
    const loop = meta.loop as Record<string, unknown> | null | undefined;
    if (loop && typeof loop === "object")
      bits.push(loop.kind === "foreach" ? `for each in ${loop.over}, ${loop.max_concurrency} at once` : `while ${loop.condition}, max ${loop.max_iterations}`);
    if (bits.length) parts.push(h("div", { class: "agn-meta" }, bits.join(" \u00b7 ")));
  }
  for (const g of d.groups) {
    const row = h("div", { class: "agn-meta agn-ingroup" }, `In ${g.label}. `);
    const b = h("button", { class: "agn-link", type: "button", "data-testid": "graphview-details-collapse", "aria-label": `Collapse ${g.label}` }, "Collapse");
    b.addEventListener("click", () => d.collapse(g.key));
    row.appendChild(b);
    parts.push(row);
  }
  if (n.kind === "node") {
    const row = h("div", { class: "agn-bps", role: "group", "aria-label": "breakpoints" });
    for (const [bit, when, testid, key] of [
      [BP_BEFORE, "before", "graphview-breakpoint-toggle", "B"],
      [BP_AFTER, "after", "graphview-breakpoint-after-toggle", "Shift+B"],
    ] as const) {
      const label = h("label", { title: `Pause ${when} ${n.name} runs (${key})` });
      const box = h("input", { type: "checkbox", "data-testid": testid, "aria-label": `Breakpoint ${when} ${n.name}` });
      box.checked = !!(d.breakpoints & bit);
      box.addEventListener("change", () => d.toggleBreakpoint(bit));
      label.append(box, document.createTextNode(`Pause ${when}`));
      row.appendChild(label);
    }
    parts.push(row);
  }
  const det = d.details;
  if (det && typeof det === "object") {
    const keys = [...DETAIL_ORDER.filter((k) => k in det), ...Object.keys(det).filter((k) => !DETAIL_ORDER.includes(k))];
    for (const key of keys) {
      const v = det[key];
      if (v === null || v === undefined || v === "") continue;
      const f = h("div", { class: "agn-field", "data-field": key, "data-testid": `graphview-details-${key}` });
      f.append(h("div", { class: "agn-k" }, key), h("pre", {}, String(v)));
      parts.push(f);
    }
  } else if (n.kind === "node") {
    parts.push(h("div", { class: "agn-meta" }, "Not run yet."));
  }
  panel.replaceChildren(...parts);
}
