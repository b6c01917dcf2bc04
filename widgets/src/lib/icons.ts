// Small line icons (16 px, currentColor) for the toolbar buttons: inline SVG, so they need no
// icon font and look the same in JupyterLab, VS Code, Colab and a plain page.
const ICONS: Record<string, string> = {
  home: '<path d="M2.5 7.5 8 3l5.5 4.5"/><path d="M4 6.5V13h3v-3.5h2V13h3V6.5"/>',
  search: '<circle cx="7" cy="7" r="4.2"/><path d="m10.2 10.2 3.3 3.3"/>',
  target: '<circle cx="8" cy="8" r="4.5"/><circle cx="8" cy="8" r="1.2"/><path d="M8 1.5v2M8 12.5v2M1.5 8h2M12.5 8h2"/>',
  map: '<rect x="1.5" y="3" width="13" height="10" rx="1.5"/><rect x="8.5" y="8" width="4.5" height="3.5" rx=".5"/>',
  pin: '<path d="M6 2.5h4l-.6 4 2.1 2H4.5l2.1-2z"/><path d="M8 8.5v5"/>',
  collapse: '<path d="M2.5 6h4V2M13.5 6h-4V2M2.5 10h4v4M13.5 10h-4v4"/>',
  plus: '<path d="M8 3.5v9M3.5 8h9"/>',
  minus: '<path d="M3.5 8h9"/>',
  close: '<path d="m4 4 8 8M12 4l-8 8"/>',
};

export function icon(name: keyof typeof ICONS | string): SVGSVGElement {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "14");
  svg.setAttribute("height", "14");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "agn-icon");
  svg.innerHTML = ICONS[name] ?? "";
  return svg;
}
