// Node search: the toolbar's "Find node" box. Matches are node names containing the text (case
// does not matter), the exact name first, then names starting with it, shorter names first. The
// box lists the first few; Enter jumps to the active one, the next Enter to the next match.
// The widget owns what a match looks like on the graph and what a jump does (hooks below).
import { fmtInt } from "./collapse";
import { h, type Toolbar } from "./toolbar";

const RESULTS_MAX = 8;

export interface SearchHooks {
  /** Node names, lower case, by full id ("" for what is not a user node). */
  names(): string[];
  /** A node's name as shown, and whether it is inside a collapsed group. */
  label(v: number): string;
  inGroup(v: number): boolean;
  /** The node the last jump went to (-1: none). */
  found(): number;
  /** The matches changed (highlight them); the query is "" when the box was cleared. */
  changed(query: string): void;
  jump(v: number): void;
  /** The text to keep in the `query` trait (debounced while typing). */
  commit(query: string): void;
}

export class Search {
  /** Full ids of the matches, best first; 1 per full id that matches. */
  matches: number[] = [];
  flags = new Uint8Array(0);
  private active = -1;
  /** The list is open while typing, closed by a jump until the next keystroke. */
  private open = true;
  private timer = 0;

  constructor(private tb: Toolbar, private uid: string, private hooks: SearchHooks) {
    this.bind();
  }

  get query(): string {
    return this.tb.search.value;
  }

  /** A new graph: matches against its names. */
  reset(size: number, query: string): void {
    this.flags = new Uint8Array(size);
    if (this.tb.search.value !== query) this.tb.search.value = query;
    this.compute(query);
  }

  /** The `query` trait changed (Python set it). */
  setQuery(query: string): void {
    if (query === this.tb.search.value) return;
    this.tb.search.value = query;
    this.compute(query);
    this.hooks.changed(query);
  }

  /** A jump happened: close the list, keep the matches. */
  jumped(v: number): void {
    this.open = false;
    const i = this.matches.indexOf(v);
    if (i >= 0) this.active = i;
    this.render();
  }

  private compute(query: string): void {
    const q = query.trim().toLowerCase();
    this.flags.fill(0);
    const found: [number, number][] = [];
    const names = this.hooks.names();
    if (q) {
      for (let v = 0; v < names.length; v++) {
        const at = names[v] ? names[v].indexOf(q) : -1;
        if (at < 0) continue;
        this.flags[v] = 1;
        found.push([v, names[v] === q ? 0 : at === 0 ? 1 : 2]);
      }
      found.sort((a, b) => a[1] - b[1] || names[a[0]].length - names[b[0]].length || a[0] - b[0]);
    }
    this.matches = found.map((f) => f[0]);
    this.active = this.matches.length ? 0 : -1;
  }

  render(): void {
    const tb = this.tb;
    const q = tb.search.value.trim();
    const n = this.matches.length;
    tb.searchCount.textContent = q ? (n ? fmtInt(n) : "none") : "";
    tb.searchCount.title = q ? `${n} node${n === 1 ? "" : "s"} match` : "";
    const items: HTMLLIElement[] = [];
    if (q && this.open && document.activeElement === tb.search) {
      this.matches.slice(0, RESULTS_MAX).forEach((v, i) => {
        const name = this.hooks.label(v);
        const li = h("li", { role: "option", id: `${this.uid}-r${i}`, "data-testid": `search-result-${name}`, "aria-selected": String(i === this.active) }, name);
        if (this.hooks.inGroup(v)) li.appendChild(h("span", { class: "agn-hint" }, " in a group"));
        li.addEventListener("pointerdown", (e) => {
          e.preventDefault(); // keep the focus in the box
          this.active = i;
          this.hooks.jump(v);
        });
        items.push(li);
      });
      if (n > RESULTS_MAX) items.push(h("li", { class: "agn-more", role: "presentation" }, `\u2026 ${fmtInt(n - RESULTS_MAX)} more: Enter goes through them`));
    }
    tb.results.replaceChildren(...items);
    tb.results.hidden = !items.length;
    tb.search.setAttribute("aria-expanded", String(!!items.length));
    if (this.active >= 0 && items.length) tb.search.setAttribute("aria-activedescendant", `${this.uid}-r${Math.min(this.active, RESULTS_MAX - 1)}`);
    else tb.search.removeAttribute("aria-activedescendant");
  }

  focus(): void {
    this.tb.search.focus();
  }

  private commit = (): void => {
    window.clearTimeout(this.timer);
    this.timer = 0;
    this.hooks.commit(this.tb.search.value);
  };

  private bind(): void {
    const box = this.tb.search;
    box.addEventListener("input", () => {
      this.open = true;
      this.compute(box.value);
      this.hooks.changed(box.value);
      window.clearTimeout(this.timer);
      this.timer = window.setTimeout(this.commit, 150);
    });
    box.addEventListener("focus", () => this.render());
    box.addEventListener("blur", () => {
      this.commit();
      this.tb.results.hidden = true;
      box.setAttribute("aria-expanded", "false");
    });
    box.addEventListener("keydown", (e) => {
      e.stopPropagation(); // typing here is never a shortcut of the view or the notebook
      const n = this.matches.length;
      if (e.key === "Enter") {
        e.preventDefault();
        this.commit();
        if (!n) return;
        // The first Enter jumps to the active result, the next ones go through the matches.
        if (this.hooks.found() >= 0 && this.matches[this.active] === this.hooks.found()) this.active = (this.active + 1) % n;
        this.hooks.jump(this.matches[this.active]);
      } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        if (!n) return;
        this.open = true;
        this.active = (this.active + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
        this.render();
      } else if (e.key === "Escape") {
        e.preventDefault();
        if (box.value) {
          box.value = "";
          this.compute("");
          this.hooks.changed("");
          this.commit();
        } else box.blur();
      }
    });
  }
}
