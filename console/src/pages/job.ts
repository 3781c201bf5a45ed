// A job: its spec as the scheduler holds it, its next fires, its runs shard by shard
// and its tasks' state transitions, each list filtered and paged by the server.

import { get, type Job, type Page, type Run, type Transition } from "../api";
import { badge, h, section, table, when } from "../dom";
import { filterBar, pager } from "../filters";
import type { View } from "../main";
import { runTable } from "../runs";

function summary(job: Job): HTMLElement {
  const facts: [string, string | HTMLElement][] = [
    ["state", badge(job.state)],
    ["app", job.app],
    ["kind", `${job.kind}, ${job.executionType.toLowerCase()}`],
    ["cron", h("code", {}, `${job.cron} (${job.timeZone})`)],
    ["shards", `${job.shards}, ${job.runningShards} running`],
    ["resources", `${job.cpuCount} CPU, ${job.memoryMB} MB per shard`],
    ["failover", job.failover ? "yes" : "no"],
    ["misfire", job.misfire ? "yes" : "no"],
    ["pending runs", String(job.pendingRuns)],
    ["failover shards", job.failoverShards.join(", ") || "–"],
  ];
  if (job.description) facts.push(["description", job.description]);
  return h(
    "dl",
    { class: "summary", "data-summary": "" },
    facts.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

export function jobPage(params: URLSearchParams, namespace: string, name: string): View {
  const filtered = {
    namespace,
    job: name,
    since: params.get("since") ?? undefined,
    until: params.get("until") ?? undefined,
  };
  return {
    title: `Job ${namespace}/${name}`,
    filters: filterBar([
      { name: "outcome", label: "Outcome", options: ["succeeded", "failed", "killed"] },
      { name: "since", label: "Since", time: true },
      { name: "until", label: "Until", time: true },
    ]),
    async load() {
      const [jobs, runs, transitions] = await Promise.all([
        get<Page<Job, string>>("jobs", { namespace, job: name }),
        get<Page<Run, number>>("runs", {
          ...filtered,
          outcome: params.get("outcome") ?? undefined,
          before: params.get("before") ?? undefined,
          limit: "25",
        }),
        get<Page<Transition, number>>("transitions", {
          ...filtered,
          before: params.get("tbefore") ?? undefined,
          limit: "25",
        }),
      ]);
      const job = jobs.items[0];
      return [
        job
          ? [
              section("Spec", summary(job)),
              section(
                "Next fires",
                h("ol", { "data-list": "next-fires" }, job.nextFires.map((f) => h("li", {}, when(f)))),
              ),
            ]
          : h("p", { class: "empty" }, "The scheduler does not hold this job (now); its history follows."),
        section("Runs", runTable(runs.items, false), pager(runs.next, "before", "older runs »")),
        section(
          "Status transitions",
          table(
            "transitions",
            [
              { title: "at", cell: (t) => when(t.at) },
              { title: "shard", cell: (t) => t.shard },
              { title: "state", cell: (t) => t.state },
              { title: "source", cell: (t) => t.source ?? "–" },
              { title: "reason", cell: (t) => t.reason ?? "" },
              { title: "message", cell: (t) => t.message ?? "" },
              { title: "host", cell: (t) => t.hostname ?? "–" },
            ],
            transitions.items,
            "No transitions match.",
          ),
          pager(transitions.next, "tbefore", "older transitions »"),
        ),
      ];
    },
  };
}
