// Every run the API shows, newest first, by namespace, job, outcome and time.

import { get, type Page, type Run } from "../api";
import { section } from "../dom";
import { filterBar, pager } from "../filters";
import type { View } from "../main";
import { runTable } from "../runs";

export function runsPage(params: URLSearchParams): View {
  const query = (name: string) => params.get(name) ?? undefined;
  return {
    title: "Runs",
    filters: filterBar([
      { name: "namespace", label: "Namespace" },
      { name: "job", label: "Job" },
      { name: "outcome", label: "Outcome", options: ["succeeded", "failed", "killed"] },
      { name: "since", label: "Since", time: true },
      { name: "until", label: "Until", time: true },
    ]),
    async load() {
      const runs = await get<Page<Run, number>>("runs", {
        namespace: query("namespace"),
        job: query("job"),
        outcome: query("outcome"),
        since: query("since"),
        until: query("until"),
        before: query("before"),
        limit: "50",
      });
      return section("Runs", runTable(runs.items, true), pager(runs.next, "before", "older runs »"));
    },
  };
}
