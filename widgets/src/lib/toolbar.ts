// The GraphView's toolbar: title and size, which run the view shows (and the menu to pin it to a
// run or thread), the status legend, node search, and the view buttons (fit selection, minimap,
// collapse all, home, zoom). Only builds elements; graphview.ts wires them to the view.
import { icon } from "./icons";

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K, attrs: Record<string, string> = {}, text?: string,
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else el.setAttribute(k, v);
  }
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A toolbar button: an icon, an optional text, a tooltip naming its key. */
export function button(testid: string, label: string, iconName: string, text = "", key = ""): HTMLButtonElement {
  const b = h("button", {
    class: "agn-btn", type: "button", "data-testid": testid, "aria-label": label,
    title: key ? `${label} (${key})` : label,
  });
  if (key) b.setAttribute("aria-keyshortcuts", key);
  if (iconName) b.appendChild(icon(iconName));
  if (text) b.appendChild(h("span", { class: "agn-btn-text" }, text));
  return b;
}

export interface Toolbar {
  bar: HTMLDivElement;
  title: HTMLSpanElement;
  info: HTMLSpanElement;
  run: HTMLSpanElement;
  follow: HTMLSelectElement;
  legend: HTMLSpanElement;
  search: HTMLInputElement;
  searchWrap: HTMLSpanElement;
  searchCount: HTMLSpanElement;
  results: HTMLUListElement;
  fitSelection: HTMLButtonElement;
  minimap: HTMLButtonElement;
  collapseAll: HTMLButtonElement;
  home: HTMLButtonElement;
  zoomIn: HTMLButtonElement;
  zoomOut: HTMLButtonElement;
}

export function makeToolbar(uid: string): Toolbar {
  const bar = h("div", { class: "agn-toolbar", role: "toolbar", "aria-label": "graph view" });
  const title = h("span", { class: "agn-title", "data-testid": "graphview-title" });
  const info = h("span", { class: "agn-info", "data-testid": "graphview-info" });
  const run = h("span", { class: "agn-run", "data-testid": "graphview-run", "aria-live": "polite" });
  run.hidden = true;
  const follow = h("select", {
    class: "agn-follow", "data-testid": "graphview-follow", "aria-label": "Run shown: follow the latest run, or pin a thread or run",
    title: "Which run this view shows: the latest one, or pinned to a thread or run",
  });
  follow.hidden = true;
  const legend = h("span", { class: "agn-legend", "aria-label": "status colours", "data-testid": "graphview-legend" });
  legend.hidden = true;

  const searchWrap = h("span", { class: "agn-search", role: "search" });
  searchWrap.appendChild(icon("search"));
  const listId = `${uid}-results`;
  const search = h("input", {
    type: "search", class: "agn-search-input", placeholder: "Find node\u2026", "data-testid": "graphview-search",
    "aria-label": "Find a node by name", title: "Find a node by name (/): Enter jumps to it, Enter again to the next match",
    role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false", "aria-controls": listId,
    autocomplete: "off", spellcheck: "false",
  });
  const searchCount = h("span", { class: "agn-search-count", "data-testid": "graphview-search-count", "aria-live": "polite" });
  const results = h("ul", { class: "agn-results", id: listId, role: "listbox", "data-testid": "graphview-search-results", "aria-label": "matching nodes" });
  results.hidden = true;
  searchWrap.append(search, searchCount, results);

  const fitSelection = button("graphview-fit-selection", "Fit the selected node and its neighbours", "target", "", "F");
  const minimap = button("graphview-minimap-toggle", "Show or hide the minimap", "map", "", "M");
  minimap.setAttribute("aria-pressed", "false");
  const collapseAll = button("graphview-collapse-all", "Collapse every expanded group again", "collapse");
  collapseAll.hidden = true;
  const home = button("graphview-home", "Home: fit the whole graph", "home", "Fit", "Home");
  const zoomOut = button("graphview-zoom-out", "Zoom out", "minus", "", "-");
  const zoomIn = button("graphview-zoom-in", "Zoom in", "plus", "", "+");
  const group = h("span", { class: "agn-btn-group" });
  group.append(fitSelection, minimap, collapseAll, home, zoomOut, zoomIn);
  bar.append(title, info, run, follow, h("span", { class: "agn-spacer" }), legend, searchWrap, group);
  return {
    bar, title, info, run, follow, legend, search, searchWrap, searchCount, results,
    fitSelection, minimap, collapseAll, home, zoomIn, zoomOut,
  };
}
