"""Prometheus collectors of the scheduling core (queues, offers, launches, tasks, reconciliation).

`FrameworkMetrics` registers its collectors in the `CollectorRegistry` it is given
(nothing is registered at import time); the entry point passes the registry its HTTP
endpoint serves, tests pass a fresh one. Owned by `controller.mesos.service`, updated by
the parts of each term's engine.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_PREFIX = "cloudjob"
_SKEW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900)
_RECONCILE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300)


class FrameworkMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(f"{_PREFIX}_{name}", doc, labels, registry=registry)

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(f"{_PREFIX}_{name}", doc, labels, registry=registry)

        self.leading = gauge("scheduler_leading", "1 while this process runs the framework")
        self.subscribed = gauge("mesos_subscribed", "1 while subscribed to a Mesos master")
        self.subscriptions = counter(
            "mesos_subscriptions", "SUBSCRIBED events (first and later)", ("kind",)
        )
        self.resubscribes = counter(
            "mesos_resubscribes", "subscriptions dropped on purpose", ("reason",)
        )
        self.ready_jobs = gauge("ready_jobs", "jobs in the ready queue")
        self.ready_runs = gauge("ready_runs", "pending runs in the ready queue")
        self.failover_shards = gauge("failover_shards", "shards in the failover queue")
        self.running_tasks = gauge("running_tasks", "tasks recorded as running")
        self.unplaceable_jobs = gauge("unplaceable_jobs", "jobs whose work cannot be placed")
        self.fires = counter("cron_fires", "transient cron fires handled")
        self.misfires = counter("cron_misfires", "transient cron fires skipped as misfired")
        self.fire_runs = counter(
            "cron_fire_runs",
            "runs that transient cron fires asked for, by what became of each",
            ("outcome",),
        )
        self.offers_received = counter("offers_received", "offers received from Mesos")
        self.offers_held = gauge("offers_held", "offers held in the pool now")
        self.offers_declined = counter("offers_declined", "offers declined", ("why",))
        self.offers_rescinded = counter("offers_rescinded", "offers rescinded by Mesos")
        self.revives = counter("offer_revives", "REVIVE calls")
        self.suppressions = counter("offer_suppressions", "SUPPRESS calls")
        self.launch_cycles = counter("launch_cycles", "launch cycles run")
        self.accepts = counter("accept_calls", "ACCEPT calls (one per agent per cycle)")
        self.launches = counter("tasks_launched", "tasks launched", ("source",))
        self.launch_errors = counter("launch_errors", "launch cycles that failed", ("stage",))
        self.task_states = counter("task_states", "status updates by task state", ("state",))
        self.updates_resent = counter(
            "status_updates_resent",
            "status updates an agent sent again while the first still waited to be handled",
        )
        self.outcomes = counter("task_outcomes", "runs that ended, by outcome", ("outcome",))
        self.kills = counter("task_kills", "KILL calls", ("why",))
        self.acks_waiting = gauge(
            "acknowledgements_waiting", "status updates durable but not acknowledged yet"
        )
        self.fire_to_accept = Histogram(
            f"{_PREFIX}_fire_to_accept_seconds",
            "time from a cron fire to the ACCEPT that launched its run",
            buckets=_SKEW_BUCKETS,
            registry=registry,
        )
        self.reconciliations = counter(
            "reconciliation_runs", "reconciliation runs started", ("trigger",)
        )
        self.reconciliation_rounds = counter(
            "reconciliation_rounds", "explicit RECONCILE calls sent"
        )
        self.reconciliation_seconds = Histogram(
            f"{_PREFIX}_reconciliation_duration_seconds",
            "time for a reconciliation run to settle",
            buckets=_RECONCILE_BUCKETS,
            registry=registry,
        )
        self.events_dropped = counter(
            "runtime_events_dropped", "runtime events dropped (queue full)"
        )
