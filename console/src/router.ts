// Pages live in the URL's fragment (#/path?filters), so a page with its filters can be
// bookmarked and the controller serves one file for all of them.

export interface Location {
  path: string[];
  params: URLSearchParams;
}

export function current(): Location {
  const [path, query] = window.location.hash.replace(/^#/, "").split("?", 2);
  return {
    path: (path ?? "").split("/").filter(Boolean).map(decodeURIComponent),
    params: new URLSearchParams(query ?? ""),
  };
}

export function href(path: string[], params: Record<string, string | null | undefined>): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) query.set(key, value);
  const encoded = path.map(encodeURIComponent).join("/");
  const search = query.toString();
  return `#/${encoded}${search ? `?${search}` : ""}`;
}
