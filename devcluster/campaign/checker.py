"""The checker: from the documented semantics (docs/semantics.md), what must have run in
a trial, compared with what the jobs recorded in the ledger.

Pure: it gets the jobs as the trial defined them, the ledger's runs, and the faults as
they happened (each a window from its start until the harness saw the system whole
again), and returns every run lost or doubled beyond what the semantics allow, naming
the faults around it. The rules (docs/campaign.md#the-checkers-rules):

- A cron job runs every fire once per shard. A fire may go unrun only
  - during a leaderless gap (no replica led) that lasted longer than the job's starting
    deadline after the fire: the next leader catches up the fires missed within it
    (`Rules.catch_up_deadline` overrides the jobs' deadlines; 0: every fire in a gap
    may be lost);
  - with misfire off, when it merged into a pending run: the job's previous run was
    still in flight, or a fault kept work from launching;
  - with failover off, when a fault on an agent ended its task.
- No (fire, shard) runs twice, except a shard run again after a fault on the agent of
  its first attempt (failover on, or a task reported lost before it was reported
  started, which is relaunched whatever the flag): counted as a rerun.
- A trigger job (whose cron does not fire during the trial) runs once per shard for
  every trigger value (a run belongs to the last value written before its fire time,
  when the leader recorded the trigger); a value may go unrun only if the next value
  replaced it before the leader acted on it (the annotation is a level: such a value
  is never seen; the values the leader recorded, when known, tell which), or, the job
  having failover off, when a fault on an agent ended its task.
- Only the leader acts on Mesos: a SUBSCRIBE or any other call the master accepted
  from a replica while ZooKeeper named another leader around that moment is a
  zombie's.

Called by the trial (`devcluster.campaign.trial`); tested in
tests/campaign/test_checker.py.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from devcluster.campaign.ledger import Run


@dataclass(frozen=True)
class CronJob:
    """A transient job firing every `period` seconds (a divisor of 60, so fires are the
    epoch seconds divisible by it)."""

    key: str
    period: int
    shards: int
    misfire: bool
    failover: bool
    starting_deadline: float = 300.0
    """Seconds late a missed fire is still caught up by the next leader (the job's
    startingDeadlineSeconds, at least the controller's misfire threshold)."""


@dataclass(frozen=True)
class TriggerJob:
    """A transient job run only by triggers: `values` are the moments each new trigger
    value was written."""

    key: str
    shards: int
    values: tuple[float, ...]
    tokens: tuple[str, ...] = ()
    """The value written at each moment of `values`."""
    handled: tuple[str, ...] | None = None
    """The values the leader was seen recording as handled (None: not known)."""
    recorded: int | None = None
    """How many values the leader recorded in all (None: not known); the values it
    never saw are at most the others."""


@dataclass(frozen=True)
class Window:
    """A fault as it happened: from `start` until the harness saw the system whole."""

    fault: str
    start: float
    end: float
    leaderless: bool = False
    agent_fault: bool = False
    agent: str | None = None


@dataclass(frozen=True)
class Rules:
    catch_up_deadline: float | None = None
    """None: each job's starting deadline. A number, for every job: a fire missed in a
    leaderless gap must still run if the gap ended within that many seconds of it (0:
    every fire missed in a gap may be lost, as before the controller caught up)."""
    margin: float = 2.0
    """Seconds around a fault window that still count as inside it (launch latency,
    detection delays)."""


@dataclass(frozen=True)
class Finding:
    job: str
    kind: str
    """"lost", "doubled" or "stray"."""
    shard: int
    fire: float | None
    tasks: tuple[str, ...] = ()
    faults: tuple[str, ...] = ()

    def describe(self) -> str:
        when = f"fire {self.fire:.0f}" if self.fire is not None else "no fire time"
        near = ", ".join(self.faults) if self.faults else "no fault near"
        return f"{self.kind} {self.job} shard {self.shard} {when} (faults: {near})"


@dataclass
class Verdict:
    expected: int = 0
    ran: int = 0
    lost: int = 0
    doubled: int = 0
    allowed_lost: int = 0
    reruns: int = 0
    allowed: Counter[str] = field(default_factory=Counter)
    """Runs lost as the semantics allow, by why: leaderless, merged, task lost,
    replaced trigger."""
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings


def fires_between(period: int, start: float, end: float) -> list[float]:
    """The fire times of an every-`period`-seconds cron in [start, end]."""
    first = math.ceil(start / period) * period
    return [float(t) for t in range(first, math.floor(end) + 1, period)]


def _near(windows: Sequence[Window], moment: float, margin: float) -> list[Window]:
    return [w for w in windows if w.start - margin <= moment <= w.end + margin]


def _loss_allowed(
    job: CronJob,
    fire: float,
    shard_runs_before: Sequence[Run],
    windows: Sequence[Window],
    rules: Rules,
) -> str | None:
    """Why the semantics allow this fire to go unrun (None: they do not)."""
    around = _near(windows, fire, rules.margin)
    deadline = job.starting_deadline if rules.catch_up_deadline is None else rules.catch_up_deadline
    # A deadline of 0 catches nothing up: every fire in or near a gap may be lost.
    if any(
        window.leaderless and (deadline <= 0 or window.end - fire > deadline) for window in around
    ):
        return "leaderless"
    if not job.misfire:
        if around:
            return "merged"
        # The previous run still in flight: this fire waited and a later one replaced it.
        if any(run.end >= fire - rules.margin for run in shard_runs_before):
            return "merged"
    if not job.failover:
        widened = _near(windows, fire, rules.margin + job.period)
        if any(window.agent_fault for window in widened):
            return "task lost"
    return None


def _rerun_allowed(runs: Sequence[Run], windows: Sequence[Window], margin: float) -> bool:
    # Either flag can cause it: failover on, or a task reported lost before its agent
    # reported it started (a relaunch, whatever the flag).
    first = min(runs, key=lambda run: run.start)
    return any(
        window.agent_fault
        and window.agent in (None, first.agent)
        and window.start - margin <= first.end
        and first.start <= window.end + margin
        for window in windows
    )


def check_cron(
    job: CronJob,
    runs: Sequence[Run],
    windows: Sequence[Window],
    *,
    start: float,
    cut: float,
    rules: Rules = Rules(),
) -> Verdict:
    """The verdict on one cron job over the fires in [start, cut]."""
    verdict = Verdict()
    mine = [run for run in runs if run.job == job.key]
    by_fire: dict[tuple[float, int], list[Run]] = defaultdict(list)
    for run in mine:
        if run.fire_time is None:
            verdict.findings.append(Finding(job.key, "stray", run.shard, None, (run.task_id,), ()))
            continue
        by_fire[(float(round(run.fire_time)), run.shard)].append(run)
    for fire in fires_between(job.period, start, cut):
        near = tuple(w.fault for w in _near(windows, fire, rules.margin + job.period))
        for shard in range(job.shards):
            attempts = by_fire.get((fire, shard), [])
            verdict.expected += 1
            verdict.ran += len(attempts)
            if not attempts:
                before = [r for r in mine if r.fire_time is not None and r.fire_time < fire]
                reason = _loss_allowed(job, fire, before, windows, rules)
                if reason is not None:
                    verdict.allowed_lost += 1
                    verdict.allowed[reason] += 1
                else:
                    verdict.lost += 1
                    verdict.findings.append(Finding(job.key, "lost", shard, fire, (), near))
            elif len(attempts) > 1:
                if _rerun_allowed(attempts, windows, rules.margin):
                    verdict.reruns += len(attempts) - 1
                else:
                    verdict.doubled += len(attempts) - 1
                    tasks = tuple(run.task_id for run in attempts)
                    verdict.findings.append(Finding(job.key, "doubled", shard, fire, tasks, near))
    return verdict


def _recorded_order(
    job: TriggerJob, tokens: Sequence[str | None], runs: Sequence[Run]
) -> dict[float, int] | None:
    """Fire time → value index, when the runs show exactly the values the leader
    recorded: it records values in the order written, each with one fire time (the
    moment it recorded it), so the k-th fire time is the k-th value recorded. This holds
    where the fire time alone misleads: a value recorded just after the next one was
    written. None when the watch missed a recorded value or a value has no run."""
    if job.handled is None or job.recorded is None or len(job.handled) != job.recorded:
        return None
    fires = sorted({run.fire_time for run in runs if run.fire_time is not None})
    if len(fires) != len(job.handled) or any(token not in tokens for token in job.handled):
        return None
    return {fire: tokens.index(token) for fire, token in zip(fires, job.handled, strict=True)}


def check_triggers(
    job: TriggerJob, runs: Sequence[Run], windows: Sequence[Window], *, rules: Rules = Rules()
) -> Verdict:
    """The verdict on a trigger job: one run per shard per value, none twice. A run
    belongs to the last value written before its fire time (the moment the leader
    recorded the trigger)."""
    verdict = Verdict()
    order = sorted(range(len(job.values)), key=lambda i: job.values[i])
    values = [job.values[i] for i in order]
    tokens = [job.tokens[i] if i < len(job.tokens) else None for i in order]
    attributed: dict[tuple[int, int], list[Run]] = defaultdict(list)
    mine = [run for run in runs if run.job == job.key]
    in_order = _recorded_order(job, tokens, mine)
    for run in mine:
        index = bisect.bisect_right(values, run.fire_time or 0.0) - 1
        if in_order is not None and run.fire_time is not None:
            index = in_order[run.fire_time]
        if index < 0:
            verdict.findings.append(
                Finding(job.key, "stray", run.shard, run.fire_time, (run.task_id,), ())
            )
            continue
        attributed[(index, run.shard)].append(run)
    unseen_left = len(values) - job.recorded if job.recorded is not None else len(values)
    for index, value in enumerate(values):
        following = values[index + 1] if index + 1 < len(values) else math.inf
        # Replaced before the leader acted on it: it never saw the value. No more values
        # than the leader did not record can be such.
        unseen = (
            following != math.inf
            and not any(attributed.get((index, shard)) for shard in range(job.shards))
            and (job.handled is None or tokens[index] not in job.handled)
            and unseen_left > 0
        )
        if unseen:
            unseen_left -= 1
        until = min(following, value + 30.0)
        near = tuple(w.fault for w in windows if w.start - rules.margin <= until and value <= w.end)
        lost_task = any(w.agent_fault for w in windows if w.start <= until and value <= w.end)
        for shard in range(job.shards):
            ran = attributed.get((index, shard), [])
            verdict.expected += 1
            verdict.ran += len(ran)
            if not ran:
                if unseen:
                    verdict.allowed_lost += 1
                    verdict.allowed["replaced trigger"] += 1
                elif lost_task:
                    verdict.allowed_lost += 1
                    verdict.allowed["task lost"] += 1
                else:
                    verdict.lost += 1
                    verdict.findings.append(Finding(job.key, "lost", shard, value, (), near))
            elif len(ran) > 1:
                if _rerun_allowed(ran, windows, rules.margin):
                    verdict.reruns += len(ran) - 1
                else:
                    verdict.doubled += len(ran) - 1
                    tasks = tuple(run.task_id for run in ran)
                    verdict.findings.append(Finding(job.key, "doubled", shard, value, tasks, near))
    return verdict


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    total = Verdict()
    for verdict in verdicts:
        total.expected += verdict.expected
        total.ran += verdict.ran
        total.lost += verdict.lost
        total.doubled += verdict.doubled
        total.allowed_lost += verdict.allowed_lost
        total.reruns += verdict.reruns
        total.allowed.update(verdict.allowed)
        total.findings.extend(verdict.findings)
    return total


def _others_named(
    moment: float, replica: str, leaders: Sequence[tuple[float, str | None]], tolerance: float
) -> set[str]:
    """The replicas ZooKeeper named leader within `tolerance` of `moment` if none of them
    is `replica` (empty: it may have led then, or ZooKeeper did not answer)."""
    named = {leader for t, leader in leaders if abs(t - moment) <= tolerance and leader}
    return named if replica not in named else set()


def zombie_subscriptions(
    subscriptions: Sequence[tuple[float, str, str]],
    leaders: Sequence[tuple[float, str | None]],
    *,
    tolerance: float = 2.0,
) -> list[str]:
    """Every SUBSCRIBE (time, framework id, replica) the master accepted from a replica
    while ZooKeeper named another leader: some sample within `tolerance` seconds names
    another replica and none names this one (`leaders`: the sampled (time, leader) of
    the trial; a sample of None, ZooKeeper not answering the harness, decides nothing)."""
    zombies = []
    for moment, framework, replica in subscriptions:
        named = _others_named(moment, replica, leaders, tolerance)
        if named:
            zombies.append(
                f"zombie: {replica} subscribed framework {framework} at {moment:.1f} "
                f"while ZooKeeper named {', '.join(sorted(named))}"
            )
    return zombies


def zombie_calls(
    calls: Sequence[tuple[float, str, str, str]],
    leaders: Sequence[tuple[float, str | None]],
    *,
    tolerance: float = 2.0,
) -> list[str]:
    """The calls (time, framework id, replica, type) the master accepted from a replica
    while ZooKeeper named another leader, as for subscriptions; one line per replica."""
    acts: dict[str, list[tuple[float, str, set[str]]]] = defaultdict(list)
    for moment, _, replica, kind in calls:
        named = _others_named(moment, replica, leaders, tolerance)
        if named:
            acts[replica].append((moment, kind, named))
    lines = []
    for replica, made in sorted(acts.items()):
        kinds = Counter(kind for _, kind, _ in made)
        named = set().union(*(others for _, _, others in made))
        lines.append(
            f"zombie: {replica} made {len(made)} call(s) "
            f"({', '.join(f'{kind} x{n}' for kind, n in sorted(kinds.items()))}) "
            f"from {made[0][0]:.1f} to {made[-1][0]:.1f} "
            f"while ZooKeeper named {', '.join(sorted(named))}"
        )
    return lines
