// Small helpers that build the pages' elements. Text always goes in as text nodes,
// never as HTML, so nothing the API returns (a stderr tail, a message) can inject markup.

export type Child = Node | string | number | null | undefined | false | Child[];
type Attributes = Record<string, string | number | boolean | undefined>;

export function h(tag: string, attributes: Attributes = {}, ...children: Child[]): HTMLElement {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export interface Column<T> {
  title: string;
  cell: (row: T) => Child;
}

/** A table of `rows`, or `empty` in its place when there are none. */
export function table<T>(name: string, columns: Column<T>[], rows: T[], empty: string): HTMLElement {
  if (rows.length === 0) return h("p", { class: "empty", "data-table": name }, empty);
  return h(
    "table",
    { "data-table": name },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c.title)))),
    h(
      "tbody",
      {},
      rows.map((row) => h("tr", {}, columns.map((c) => h("td", {}, c.cell(row))))),
    ),
  );
}

export function section(title: string, ...children: Child[]): HTMLElement {
  return h("section", {}, h("h2", {}, title), ...children);
}

/** A number with its label, as the overview's tiles show them. */
export function tile(label: string, value: number, name: string): HTMLElement {
  return h("div", { class: "tile", "data-tile": name }, h("b", {}, value), h("span", {}, label));
}

/** An RFC 3339 time as `YYYY-MM-DD HH:MM:SS` in UTC. */
export function when(time: string | null | undefined): string {
  if (!time) return "–";
  return new Date(time).toISOString().slice(0, 19).replace("T", " ");
}

export function duration(start: string, end: string | null): string {
  if (!end) return "running";
  const seconds = (Date.parse(end) - Date.parse(start)) / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function badge(text: string | null): HTMLElement {
  const label = text ?? "running";
  return h("span", { class: `badge ${label.toLowerCase()}` }, label);
}

export function jobLink(namespace: string, name: string): HTMLElement {
  return h(
    "a",
    { href: `#/jobs/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}` },
    `${namespace}/${name}`,
  );
}
