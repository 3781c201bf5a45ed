"""Where everything lives in ZooKeeper: pure path functions below one namespace.

The store, the leader election and tests build paths only through `Layout`, so the
tree below `/<namespace>` is defined in one place (documented in docs/state.md):

    config/app/<appKey>                       AppDefinition JSON
    config/job/<jobKey>                       JobDefinition JSON
    state/ready/<jobKey>                      ReadyEntry JSON (pending runs and their fire times)
    state/running/<jobKey>/<metaInfo>         RunningTask JSON (every launched task)
    state/failover/<jobKey>/<metaInfo>        FailoverEntry JSON (the failed task id)
    state/trigger/<jobKey>                    the last trigger token handled (text)
    state/fired/<jobKey>                      the last cron fire handled (ISO-8601 text)
    state/disable/job/<jobKey>                present = job disabled
    state/disable/app/<appKey>                present = app disabled
    history/spool/<unit>                      run history records not yet in the database
    ha/framework_id                           the Mesos framework id (text)
    ha/election/n_<contender>_<sequence>      one ephemeral-sequential node per contender

`metaInfo` is `<jobKey>@-@<shard>`, as in the original.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller import naming

DEFAULT_NAMESPACE = "elastic-job-cloud"
ELECTION_PREFIX = "n_"


def meta_info(job_key: str, shard: int) -> str:
    """The identity of one shard of one job: `<jobKey>@-@<shard>`."""
    return f"{job_key}{naming.DELIMITER}{shard}"


def parse_meta_info(text: str) -> tuple[str, int]:
    """Inverse of `meta_info`; also accepts a task id (whose first two fields are the same)."""
    parts = text.split(naming.DELIMITER)
    if len(parts) < 2 or not parts[0] or not parts[1].isdigit():
        raise ValueError(
            f"'{text}' is not '<jobKey>{naming.DELIMITER}<shard>' nor a task id starting with it"
        )
    return parts[0], int(parts[1])


def _segment(kind: str, value: str) -> str:
    if not value or "/" in value or value in (".", ".."):
        raise ValueError(f"{kind} '{value}' cannot be a ZooKeeper path segment")
    return value


@dataclass(frozen=True)
class Layout:
    """The paths of one controller installation (one namespace)."""

    namespace: str = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        if not self.namespace or self.namespace.startswith("/") or self.namespace.endswith("/"):
            raise ValueError(
                f"ZooKeeper namespace '{self.namespace}' must be non-empty and must not start "
                "or end with '/' (e.g. 'elastic-job-cloud' or 'prod/elastic-job-cloud')"
            )

    @property
    def root(self) -> str:
        return f"/{self.namespace}"

    # desired state
    @property
    def config_root(self) -> str:
        return f"{self.root}/config"

    @property
    def apps(self) -> str:
        return f"{self.config_root}/app"

    @property
    def jobs(self) -> str:
        return f"{self.config_root}/job"

    def app(self, app_key: str) -> str:
        return f"{self.apps}/{_segment('app key', app_key)}"

    def job(self, job_key: str) -> str:
        return f"{self.jobs}/{_segment('job key', job_key)}"

    # queues
    @property
    def state_root(self) -> str:
        return f"{self.root}/state"

    @property
    def ready_root(self) -> str:
        return f"{self.state_root}/ready"

    def ready(self, job_key: str) -> str:
        return f"{self.ready_root}/{_segment('job key', job_key)}"

    @property
    def running_root(self) -> str:
        return f"{self.state_root}/running"

    def running_job(self, job_key: str) -> str:
        return f"{self.running_root}/{_segment('job key', job_key)}"

    def running_task(self, job_key: str, shard: int) -> str:
        return f"{self.running_job(job_key)}/{meta_info(job_key, shard)}"

    @property
    def failover_root(self) -> str:
        return f"{self.state_root}/failover"

    def failover_job(self, job_key: str) -> str:
        return f"{self.failover_root}/{_segment('job key', job_key)}"

    def failover_task(self, job_key: str, shard: int) -> str:
        return f"{self.failover_job(job_key)}/{meta_info(job_key, shard)}"

    @property
    def trigger_root(self) -> str:
        return f"{self.state_root}/trigger"

    def trigger(self, job_key: str) -> str:
        return f"{self.trigger_root}/{_segment('job key', job_key)}"

    @property
    def fired_root(self) -> str:
        return f"{self.state_root}/fired"

    def fired(self, job_key: str) -> str:
        return f"{self.fired_root}/{_segment('job key', job_key)}"

    @property
    def disabled_jobs(self) -> str:
        return f"{self.state_root}/disable/job"

    @property
    def disabled_apps(self) -> str:
        return f"{self.state_root}/disable/app"

    def disabled_job(self, job_key: str) -> str:
        return f"{self.disabled_jobs}/{_segment('job key', job_key)}"

    def disabled_app(self, app_key: str) -> str:
        return f"{self.disabled_apps}/{_segment('app key', app_key)}"

    # the run history's records on their way to the database
    @property
    def history_spool(self) -> str:
        return f"{self.root}/history/spool"

    def history_unit(self, name: str) -> str:
        return f"{self.history_spool}/{_segment('spool unit', name)}"

    # high availability
    @property
    def framework_id(self) -> str:
        return f"{self.root}/ha/framework_id"

    @property
    def election(self) -> str:
        return f"{self.root}/ha/election"

    @property
    def election_prefix(self) -> str:
        return f"{self.election}/{ELECTION_PREFIX}"

    def containers(self) -> tuple[str, ...]:
        """Every persistent parent the store keeps in place, parents before children."""
        return (
            self.apps,
            self.jobs,
            self.ready_root,
            self.running_root,
            self.failover_root,
            self.trigger_root,
            self.fired_root,
            self.disabled_jobs,
            self.disabled_apps,
            self.history_spool,
            self.election,
        )
