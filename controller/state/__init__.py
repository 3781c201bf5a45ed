"""The ZooKeeper mirror of the scheduling queues, and leader election.

    layout        pure path functions below the namespace (default `elastic-job-cloud`)
    records       the values stored in queue nodes (ready, running, failover) and their JSON
    rules         pure ready/failover decisions (misfire, daemon, decrement, failover rules)
    transactions  pure: the operations of a transaction and how they are chunked
    gateway       the counted seam to kazoo: pipelined reads, fenced transactions
    connection    kazoo client construction and the digest ACL put on every node
    election      `LeaderElection` (ephemeral-sequential, lowest leads), the `Fence`, and
                  the `TermFence` a term's scheduling core writes with
    view          the in-memory copy of the tree the leader works from
    loading       rebuilding the view from ZooKeeper, finding entries of vanished jobs
    planning      pure: view + request → transaction operations + memory update
    store         `StateStore`: the public API; every change one fenced transaction
    errors        the exception tree

Threading: kazoo calls block. `StateStore` and `LeaderElection.start/stop` are
blocking and thread-safe; the asyncio side calls them through `asyncio.to_thread`.
Leadership callbacks arrive on kazoo/election threads; `AsyncLeadership` queues them
for an event loop. See docs/state.md for the layout, transactions, fencing and ACLs.
"""

from controller.state.connection import digest_acl, open_client
from controller.state.election import (
    AsyncLeadership,
    Fence,
    LeaderElection,
    LeadershipChange,
    LeadershipListener,
    Term,
    TermFence,
)
from controller.state.errors import (
    NotLeader,
    StateConflict,
    StateError,
    StateUnavailable,
    UnknownDefinition,
)
from controller.state.gateway import RequestCounts
from controller.state.layout import DEFAULT_NAMESPACE, Layout, meta_info, parse_meta_info
from controller.state.records import FailoverEntry, LaunchSource, ReadyEntry, RunningTask
from controller.state.rules import (
    DEFAULT_QUEUE_LIMIT,
    FailoverOutcome,
    ReadyChange,
    ReadyOutcome,
    TriggerOutcome,
)
from controller.state.store import (
    Also,
    Change,
    FollowUp,
    LaunchRecord,
    LoadReport,
    PartialLaunch,
    PendingWork,
    StateStore,
    Termination,
    TriggerRecord,
)

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_QUEUE_LIMIT",
    "Also",
    "AsyncLeadership",
    "Change",
    "FailoverEntry",
    "FailoverOutcome",
    "Fence",
    "FollowUp",
    "LaunchRecord",
    "LaunchSource",
    "Layout",
    "LeaderElection",
    "LeadershipChange",
    "LeadershipListener",
    "LoadReport",
    "NotLeader",
    "PartialLaunch",
    "PendingWork",
    "ReadyChange",
    "ReadyEntry",
    "ReadyOutcome",
    "RequestCounts",
    "RunningTask",
    "StateConflict",
    "StateError",
    "StateStore",
    "StateUnavailable",
    "Term",
    "TermFence",
    "Termination",
    "TriggerOutcome",
    "TriggerRecord",
    "UnknownDefinition",
    "digest_acl",
    "meta_info",
    "open_client",
    "parse_meta_info",
]
