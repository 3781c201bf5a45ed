// The overview: jobs by state, apps, jobs, running shards, pending runs, failover
// shards and recent failures, of one namespace or all those the API shows.

import { get, type App, type Job, type Page, type Queues, type Run, type Statistics } from "../api";
import { badge, h, jobLink, section, table, tile, when } from "../dom";
import { filterBar, pager } from "../filters";
import type { View } from "../main";

const STATES = ["Running", "Pending", "Scheduled", "Disabled"] as const;

export function overview(params: URLSearchParams): View {
  const namespace = params.get("namespace") ?? undefined;
  return {
    title: "Overview",
    filters: filterBar([
      { name: "namespace", label: "Namespace" },
      { name: "app", label: "App" },
      { name: "state", label: "Job state", options: [...STATES] },
    ]),
    async load() {
      const [statistics, jobs, apps, queues, failures] = await Promise.all([
        get<Statistics>("statistics", { namespace }),
        get<Page<Job, string>>("jobs", {
          namespace,
          app: params.get("app") ?? undefined,
          state: params.get("state") ?? undefined,
          after: params.get("after") ?? undefined,
          limit: "50",
        }),
        get<Page<App, string>>("apps", { namespace, limit: "100" }),
        get<Queues>("queues", { namespace }),
        get<Page<Run, number>>("runs", { namespace, outcome: "failed", limit: "10" }),
      ]);
      const byState = statistics.jobs.byState;
      const lastHour = statistics.results.lastHour;
      return [
        h(
          "div",
          { class: "tiles" },
          tile("jobs", statistics.jobs.total, "jobs"),
          STATES.map((s) => tile(s.toLowerCase(), byState[s] ?? 0, s.toLowerCase())),
          tile("running tasks", statistics.runningTasks, "running-tasks"),
          tile("succeeded, last hour", lastHour.succeeded, "succeeded-hour"),
          tile("failed, last hour", lastHour.failed, "failed-hour"),
        ),
        section(
          "Jobs",
          table(
            "jobs",
            [
              { title: "job", cell: (j) => jobLink(j.namespace, j.name) },
              { title: "app", cell: (j) => j.app },
              { title: "kind", cell: (j) => `${j.kind}, ${j.executionType.toLowerCase()}` },
              { title: "cron", cell: (j) => h("code", {}, j.cron) },
              { title: "state", cell: (j) => badge(j.state) },
              { title: "running", cell: (j) => `${j.runningShards}/${j.shards}` },
              { title: "pending runs", cell: (j) => j.pendingRuns },
              { title: "failover shards", cell: (j) => j.failoverShards.join(", ") || "–" },
              { title: "next fire", cell: (j) => when(j.nextFires[0]) },
            ],
            jobs.items,
            "No jobs.",
          ),
          pager(jobs.next, "after", "next jobs »"),
        ),
        section(
          "Apps",
          table(
            "apps",
            [
              { title: "app", cell: (a) => `${a.namespace}/${a.name}` },
              { title: "package", cell: (a) => h("code", {}, a.appURL) },
              { title: "executor", cell: (a) => `${a.cpuCount} CPU, ${a.memoryMB} MB` },
              { title: "jobs", cell: (a) => a.jobs },
              { title: "", cell: (a) => (a.disabled ? badge("Disabled") : "") },
            ],
            apps.items,
            "No apps.",
          ),
        ),
        section(
          "Running shards",
          table(
            "running",
            [
              { title: "job", cell: (t) => jobLink(t.namespace, t.job) },
              { title: "shard", cell: (t) => t.shard },
              { title: "host", cell: (t) => t.hostname },
              { title: "state", cell: (t) => t.state },
              { title: "launched", cell: (t) => when(t.launchedAt) },
              { title: "fired", cell: (t) => when(t.fireTime) },
            ],
            queues.running,
            "No shard is running.",
          ),
        ),
        section(
          "Pending runs",
          table(
            "ready",
            [
              { title: "job", cell: (r) => jobLink(r.namespace, r.job) },
              { title: "runs", cell: (r) => r.runs },
              { title: "oldest fire", cell: (r) => when(r.fireTimes[0]) },
            ],
            queues.ready,
            "No run is pending.",
          ),
        ),
        section(
          "Failover shards",
          table(
            "failover",
            [
              { title: "job", cell: (f) => jobLink(f.namespace, f.job) },
              { title: "shard", cell: (f) => f.shard },
              { title: "failed task", cell: (f) => h("code", {}, f.taskId) },
              { title: "fired", cell: (f) => when(f.fireTime) },
            ],
            queues.failover,
            "No shard waits for failover.",
          ),
        ),
        section(
          "Recent failures",
          table(
            "failures",
            [
              { title: "ended", cell: (r) => when(r.endedAt) },
              { title: "job", cell: (r) => jobLink(r.namespace, r.job) },
              { title: "shard", cell: (r) => r.shard },
              { title: "host", cell: (r) => r.hostname },
              { title: "why", cell: (r) => r.message ?? r.state },
            ],
            failures.items,
            "No failed runs.",
          ),
          h("p", {}, h("a", { href: `#/runs?outcome=failed` }, "all failed runs »")),
        ),
      ];
    },
  };
}
