// Statistics: runs that ended per minute, hour or day by outcome, the results of the
// last minute, hour and day, and the running tasks, sampled while the page is open.

import { get, type Interval, type Series, type Statistics } from "../api";
import { chart } from "../charts";
import { h, section, table } from "../dom";
import { filterBar } from "../filters";
import type { View } from "../main";

const STEP: Record<Interval, number> = { minute: 60, hour: 3600, day: 86400 };
const BUCKETS = 60;
/** Seconds the running-tasks chart spans at least, before its first sample. */
const RUNNING_SPAN = 300;
const COLORS = { succeeded: "#2e7d32", failed: "#c62828", killed: "#757575" };

/** The starts of the last BUCKETS intervals up to now, in seconds, UTC-aligned. */
function buckets(interval: Interval, now: number): number[] {
  const step = STEP[interval];
  const last = Math.floor(now / step) * step;
  return Array.from({ length: BUCKETS }, (_, i) => last - (BUCKETS - 1 - i) * step);
}

export function statisticsPage(params: URLSearchParams): View {
  const chosen = params.get("interval");
  const interval: Interval = chosen === "hour" || chosen === "day" ? chosen : "minute";
  const namespace = params.get("namespace") ?? undefined;
  const job = params.get("job") ?? undefined;
  const samples: { at: number; running: number }[] = [];
  return {
    title: "Statistics",
    filters: filterBar([
      { name: "interval", label: "Per", options: ["minute", "hour", "day"], required: true },
      { name: "namespace", label: "Namespace" },
      { name: "job", label: "Job" },
    ]),
    async load() {
      const now = Date.now() / 1000;
      const starts = buckets(interval, now);
      const [statistics, series] = await Promise.all([
        get<Statistics>("statistics", { namespace }),
        get<Series>("statistics/results", {
          interval,
          namespace,
          job,
          since: new Date(starts[0] * 1000).toISOString(),
          until: new Date((starts[BUCKETS - 1] + STEP[interval]) * 1000).toISOString(),
        }),
      ]);
      samples.push({ at: now, running: statistics.runningTasks });
      const byStart = new Map(series.items.map((i) => [Date.parse(i.start) / 1000, i]));
      const outcomes = ["succeeded", "failed", "killed"] as const;
      const windows = [
        ["last minute", statistics.results.lastMinute],
        ["last hour", statistics.results.lastHour],
        ["last day", statistics.results.lastDay],
      ] as const;
      const total = series.items.reduce((sum, i) => sum + i.succeeded + i.failed + i.killed, 0);
      return [
        section(
          `Runs that ended per ${interval}`,
          h("p", { "data-total": String(total) }, `${total} runs in the last ${BUCKETS} ${interval}s`),
          chart(
            "results",
            `runs per ${interval}${job ? ` of ${job}` : ""}`,
            "runs",
            starts[0],
            starts,
            outcomes.map((o) => ({
              label: o,
              color: COLORS[o],
              values: starts.map((s) => byStart.get(s)?.[o] ?? 0),
            })),
          ),
        ),
        section(
          "Results",
          table(
            "results",
            [
              { title: "", cell: (w) => w[0] },
              ...outcomes.map((o) => ({ title: o, cell: (w: (typeof windows)[number]) => w[1][o] })),
            ],
            [...windows],
            "",
          ),
        ),
        section(
          "Running tasks",
          h("p", { "data-running": String(statistics.runningTasks) }, `${statistics.runningTasks} now`),
          chart(
            "running",
            "running tasks, sampled while this page is open",
            "tasks",
            samples[0].at - RUNNING_SPAN,
            samples.map((s) => s.at),
            [{ label: "running", color: "#1565c0", values: samples.map((s) => s.running) }],
          ),
        ),
      ];
    },
  };
}
