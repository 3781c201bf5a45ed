// The table of runs the job page and the runs page share: per shard its outcome, host,
// duration, why it failed, the tail of its stderr and its sandbox on the agent.

import type { Run } from "./api";
import { badge, duration, h, jobLink, table, when, type Column } from "./dom";

const COLUMNS: Column<Run>[] = [
  { title: "started", cell: (r) => when(r.startedAt) },
  { title: "fired", cell: (r) => when(r.fireTime) },
  { title: "shard", cell: (r) => r.shard },
  { title: "outcome", cell: (r) => badge(r.outcome) },
  { title: "host", cell: (r) => r.hostname },
  { title: "duration", cell: (r) => duration(r.startedAt, r.endedAt) },
  {
    title: "detail",
    cell: (r) => [
      r.message ?? (r.exitStatus !== null ? `exit status ${r.exitStatus}` : ""),
      r.stderrTail
        ? h("details", {}, h("summary", {}, "stderr"), h("pre", { class: "stderr" }, r.stderrTail))
        : null,
    ],
  },
  { title: "sandbox", cell: (r) => (r.sandbox ? h("code", { class: "path" }, r.sandbox) : "–") },
];

export function runTable(runs: Run[], withJob: boolean): HTMLElement {
  const job: Column<Run> = { title: "job", cell: (r) => jobLink(r.namespace, r.job) };
  const columns = withJob ? [COLUMNS[0], job, ...COLUMNS.slice(1)] : COLUMNS;
  return table("runs", columns, runs, "No runs match.");
}
