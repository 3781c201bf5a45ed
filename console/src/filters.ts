// The filter bar of a page: a form whose fields are the page's URL parameters.
// Submitting it moves to the same page with the new filters and from its first page.

import { h } from "./dom";
import { current, href } from "./router";

export interface Field {
  name: string;
  label: string;
  options?: string[];
  /** A choice of `options` without "any": the first is the default. */
  required?: boolean;
  /** A time, entered and shown in UTC, kept in the URL as RFC 3339. */
  time?: boolean;
}

function input(field: Field, value: string): HTMLElement {
  if (field.options) {
    return h(
      "select",
      { name: field.name },
      field.required ? null : h("option", { value: "" }, "any"),
      field.options.map((o) => h("option", { value: o, selected: o === value }, o)),
    );
  }
  if (field.time) {
    return h("input", { name: field.name, type: "datetime-local", value: value.slice(0, 16) });
  }
  return h("input", { name: field.name, type: "text", value, placeholder: "any" });
}

export function filterBar(fields: Field[]): HTMLElement {
  const here = current();
  const form = h(
    "form",
    { class: "filters" },
    fields.map((f) => h("label", {}, f.label, input(f, here.params.get(f.name) ?? ""))),
    h("button", { type: "submit" }, "Apply"),
    h("a", { href: href(here.path, {}) }, "Clear"),
  ) as HTMLFormElement;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const params: Record<string, string> = {};
    for (const field of fields) {
      const value = String(data.get(field.name) ?? "").trim();
      if (value) params[field.name] = field.time ? `${value}:00Z` : value;
    }
    window.location.hash = href(here.path, params);
  });
  return form;
}

/** Links to the next page (the API's `next` as `param`) and back to the first. */
export function pager(next: string | number | null, param: string, label: string): HTMLElement {
  const here = current();
  return h(
    "p",
    { class: "pager" },
    here.params.get(param)
      ? h("a", { href: withoutParam(param), "data-pager": "first" }, "« first page")
      : null,
    next !== null
      ? h("a", { href: withParam(param, String(next)), "data-pager": "next" }, label)
      : null,
  );
}

function withParam(param: string, value: string): string {
  const here = current();
  return href(here.path, { ...Object.fromEntries(here.params), [param]: value });
}

function withoutParam(param: string): string {
  const here = current();
  return href(here.path, { ...Object.fromEntries(here.params), [param]: null });
}
