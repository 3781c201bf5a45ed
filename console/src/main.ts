// The console's entry: picks the page the URL's fragment names, renders it, and
// reloads its data every few seconds (the filters the user is editing stay put).

import { h, type Child } from "./dom";
import { jobPage } from "./pages/job";
import { overview } from "./pages/overview";
import { runsPage } from "./pages/runs";
import { statisticsPage } from "./pages/statistics";
import { current } from "./router";
import "./style.css";

export interface View {
  title: string;
  filters: HTMLElement;
  load(): Promise<Child>;
}

const REFRESH_MS = 5000;

function route(): View {
  const { path, params } = current();
  const [first, namespace, name] = path;
  if (first === "jobs" && namespace && name) return jobPage(params, namespace, name);
  if (first === "runs") return runsPage(params);
  if (first === "statistics") return statisticsPage(params);
  return overview(params);
}

function start(page: HTMLElement): void {
  let shown = 0;
  let timer: number | undefined;

  async function refresh(view: View, content: HTMLElement, generation: number): Promise<void> {
    let fresh: Child;
    try {
      fresh = await view.load();
    } catch (error) {
      fresh = h("p", { class: "error", role: "alert" }, String(error));
    }
    if (generation !== shown) return;
    content.replaceChildren(h("div", {}, fresh));
    content.setAttribute("data-loaded", String(Number(content.getAttribute("data-loaded") ?? 0) + 1));
    timer = window.setTimeout(() => void refresh(view, content, generation), REFRESH_MS);
  }

  function show(): void {
    window.clearTimeout(timer);
    shown += 1;
    const view = route();
    // Which page and filters the content is of: tests wait for their own.
    const content = h("div", { class: "content", "data-route": window.location.hash });
    document.title = `${view.title} · cloudjob console`;
    page.replaceChildren(h("h1", {}, view.title), view.filters, content);
    void refresh(view, content, shown);
  }

  window.addEventListener("hashchange", show);
  show();
}

start(document.getElementById("page") as HTMLElement);
