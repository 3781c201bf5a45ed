// The controller's read-only history API (/api/v1, documented by its OpenAPI document
// at /api/v1/openapi.json), read from the same origin the console is served from.

export type Outcome = "succeeded" | "failed" | "killed";
export type JobState = "Disabled" | "Running" | "Pending" | "Scheduled";

export interface Page<T, Cursor> {
  items: T[];
  next: Cursor | null;
}

export interface Run {
  id: number;
  namespace: string;
  job: string;
  shard: number;
  taskId: string;
  source: string;
  agentId: string;
  hostname: string;
  executorId: string | null;
  fireTime: string | null;
  startedAt: string;
  endedAt: string | null;
  outcome: Outcome | null;
  state: string | null;
  message: string | null;
  exitStatus: number | null;
  stderrTail: string | null;
  sandbox: string | null;
}

export interface Transition {
  id: number;
  namespace: string;
  job: string;
  shard: number;
  taskId: string;
  state: string;
  at: string;
  source: string | null;
  reason: string | null;
  message: string | null;
  agentId: string | null;
  hostname: string | null;
}

export interface Job {
  namespace: string;
  name: string;
  app: string;
  kind: string;
  executionType: string;
  cron: string;
  timeZone: string;
  shards: number;
  cpuCount: number;
  memoryMB: number;
  failover: boolean;
  misfire: boolean;
  description: string;
  state: JobState;
  runningShards: number;
  pendingRuns: number;
  failoverShards: number[];
  nextFires: string[];
}

export interface App {
  namespace: string;
  name: string;
  appURL: string;
  bootstrapScript: string;
  cpuCount: number;
  memoryMB: number;
  disabled: boolean;
  jobs: number;
}

export interface Queues {
  ready: { namespace: string; job: string; runs: number; fireTimes: string[] }[];
  running: {
    namespace: string;
    job: string;
    shard: number;
    taskId: string;
    agentId: string;
    hostname: string;
    state: string;
    launchedAt: string;
    fireTime: string | null;
  }[];
  failover: {
    namespace: string;
    job: string;
    shard: number;
    taskId: string;
    fireTime: string | null;
  }[];
}

export type Counts = Record<Outcome, number>;

export interface Statistics {
  results: { lastMinute: Counts; lastHour: Counts; lastDay: Counts };
  runningTasks: number;
  jobs: {
    total: number;
    byExecutionType: Record<string, number>;
    byKind: Record<string, number>;
    byState: Partial<Record<JobState, number>>;
  };
}

export type Interval = "minute" | "hour" | "day";

export interface Series {
  interval: Interval;
  items: ({ start: string } & Counts)[];
}

export type Query = Record<string, string | undefined>;

export class ApiError extends Error {}

const BASE = new URL("../api/v1/", window.location.href);

export async function get<T>(path: string, query: Query = {}): Promise<T> {
  const url = new URL(path, BASE);
  for (const [key, value] of Object.entries(query)) {
    if (value) url.searchParams.set(key, value);
  }
  const answer = await fetch(url);
  const body: unknown = await answer.json().catch(() => null);
  if (!answer.ok) {
    const error = (body as { error?: string } | null)?.error ?? answer.statusText;
    throw new ApiError(`${answer.status} from ${url.pathname}: ${error}`);
  }
  return body as T;
}
