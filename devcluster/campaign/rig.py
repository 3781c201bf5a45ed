"""The campaign's stack for one trial, and the faults it can be made to suffer.

`Rig` runs the controller replicas as real processes (`python -m controller run`, each
in a session of its own, watching the trial's namespace and ZooKeeper namespace) against
a three-server ZooKeeper ensemble, the local Mesos emulator with several agents, and a
Kubernetes control plane shared by the trials. Each replica reaches every ZooKeeper
server and the master through links of its own (`devcluster.campaign.links`), which the
partition and session-expiry faults cut. `perform` carries out one action of the fault
timeline (`devcluster.campaign.faults`); `healthy` says whether the system is whole (a
live replica leads that is neither frozen nor cut off, one framework is subscribed,
every agent is registered), which is how the trial dates each fault's recovery. `close`
ends every process it started, whatever happened. Used by `devcluster.campaign.trial`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from devcluster.campaign.faults import Fault, Kind, update_delay
from devcluster.campaign.links import Links, LinkState
from devcluster.campaign.whole import Observation, whole
from devcluster.kube import ControlPlane
from devcluster.kube.identities import Identity
from devcluster.mesos import AgentSpec, LocalMesos
from devcluster.mesos.faults import DROP_AT_AGENT, DROP_AT_MASTER
from devcluster.zookeeper import ZooKeeperEnsemble, free_port

log = logging.getLogger(__name__)

PROJECT = Path(__file__).resolve().parents[2]
SESSION_TIMEOUT = 2.0
UNREACHABLE_GRACE = 2.0
# Long enough for an executor to start on a busy machine, short enough that a launch
# lost at its agent is ended and run again well within a trial.
LAUNCH_TIMEOUT = 8.0
# A lost launch is armed for the next launch; if none comes in this long, it is
# disarmed and the fault played nothing.
DROP_WAIT = 30.0

# Short timings so that a trial takes a minute or two (the emulator's are in `start`);
# the controller's defaults are longer.
FRAMEWORK_TIMINGS = {
    "launch_batch_seconds": 0.05,
    "offer_hold_seconds": 2.0,
    "decline_refuse_seconds": 0.5,
    "idle_refuse_seconds": 1.0,
    "reconcile_interval_seconds": 5.0,
    "failover_timeout_seconds": 120.0,
    "misfire_threshold_seconds": 2.0,
    "unreachable_grace_seconds": UNREACHABLE_GRACE,
    "unplaceable_report_seconds": 0.5,
    "launch_timeout_seconds": LAUNCH_TIMEOUT,
}


@dataclass
class Replica:
    identity: str
    process: subprocess.Popen[bytes]
    zookeeper_links: list[str]
    mesos_link: str
    frozen: bool = False

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Rig:
    work_dir: Path
    api: ControlPlane
    identity: Identity
    namespace: str
    agents: int = 3
    zk_namespace: str = "campaign"
    replicas: list[Replica] = field(default_factory=list)
    ensemble: ZooKeeperEnsemble | None = None
    mesos: LocalMesos | None = None
    zk: KazooClient | None = None
    links: Links | None = None
    _stopped_zk: set[int] = field(default_factory=set)
    _cut: list[str] = field(default_factory=list)
    """The links a fault on the leader cut, to be opened when it is undone."""

    # ------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.ensemble = ZooKeeperEnsemble(data_dir=self.work_dir / "zookeeper")
        self.ensemble.start()
        self.zk = KazooClient(hosts=self.ensemble.hosts, timeout=2.0)
        self.zk.start(timeout=30)
        specs = [AgentSpec(cpus=1.0, mem=512.0, hostname=f"host-{n}") for n in range(self.agents)]
        self.mesos = LocalMesos(
            specs,
            work_dir=self.work_dir / "mesos",
            heartbeat_interval=0.5,
            offer_refresh=0.2,
            executor_registration_timeout=20.0,
            executor_shutdown_grace_period=1.0,
            agent_ping_timeout=0.3,
            max_agent_ping_timeouts=3,
            status_update_retry=0.5,
            status_update_retry_max=2.0,
            command_kill_grace_period=1.0,
            default_refuse_seconds=0.5,
        )
        self.mesos.start()
        self.links = Links()

    def close(self) -> None:
        for replica in self.replicas:
            if replica.frozen and replica.alive:
                replica.process.send_signal(signal.SIGCONT)
            if replica.alive:
                replica.process.terminate()
        for replica in self.replicas:
            try:
                replica.process.wait(20)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()
        if self.zk is not None:
            self.zk.stop()
            self.zk.close()
        if self.links is not None:
            self.links.close()
        if self.mesos is not None:
            self.mesos.stop()
        if self.ensemble is not None:
            self.ensemble.stop()

    def start_replica(self) -> Replica:
        assert self.ensemble is not None and self.mesos is not None and self.links is not None
        identity = f"replica-{len(self.replicas) + 1}"
        zookeeper_links = [
            f"{identity}-zookeeper-{n + 1}" for n in range(len(self.ensemble.servers))
        ]
        zookeeper = ",".join(
            f"127.0.0.1:{self.links.open(name, ('127.0.0.1', server.port))}"
            for name, server in zip(zookeeper_links, self.ensemble.servers, strict=True)
        )
        host, port = self.mesos.master_address.rsplit(":", 1)
        mesos_link = f"{identity}-mesos"
        master = f"127.0.0.1:{self.links.open(mesos_link, (host, int(port)))}"
        env = dict(os.environ)
        env.update(
            {
                "CLOUDJOB_IDENTITY": identity,
                # The master records it with each SUBSCRIBE: who subscribed, and when.
                "CLOUDJOB_MESOS__HOSTNAME": identity,
                "CLOUDJOB_MESOS__MASTER": master,
                "CLOUDJOB_ZOOKEEPER__HOSTS": zookeeper,
                "CLOUDJOB_ZOOKEEPER__NAMESPACE": self.zk_namespace,
                "CLOUDJOB_ZOOKEEPER__SESSION_TIMEOUT": str(SESSION_TIMEOUT),
                "CLOUDJOB_KUBERNETES__KUBECONFIG": str(self.identity.kubeconfig),
                "CLOUDJOB_KUBERNETES__NAMESPACES": self.namespace,
                "CLOUDJOB_HTTP__HOST": "127.0.0.1",
                "CLOUDJOB_HTTP__HEALTH_PORT": str(free_port()),
                "CLOUDJOB_HTTP__METRICS_PORT": str(free_port()),
                "CLOUDJOB_HISTORY__DATA_DIR": str(self.work_dir / "history"),
            }
        )
        env.update({f"CLOUDJOB_MESOS__{k.upper()}": str(v) for k, v in FRAMEWORK_TIMINGS.items()})
        path = self.work_dir / f"{identity}.log"
        with path.open("wb") as output:
            # A session of its own: Ctrl-C reaches the campaign, which stops it in order.
            process = subprocess.Popen(
                [sys.executable, "-m", "controller", "run"],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=PROJECT,
                start_new_session=True,
            )
        replica = Replica(identity, process, zookeeper_links, mesos_link)
        self.replicas.append(replica)
        return replica

    # -------------------------------------------------------------- looking

    def leader(self) -> str | None:
        """The identity of the elected replica, as ZooKeeper records it (None: none, or
        ZooKeeper cannot say)."""
        assert self.zk is not None
        path = f"/{self.zk_namespace}/ha/election"
        try:
            children = self.zk.get_children(path)
            if not children:
                return None
            first = min(children, key=lambda name: int(name.rsplit("_", 1)[-1]))
            data, _ = self.zk.get(f"{path}/{first}")
        except (KazooException, KazooTimeoutError):
            return None
        return str(data.decode())

    def replica(self, identity: str | None) -> Replica | None:
        return next((r for r in self.replicas if r.identity == identity), None)

    def healthy(self) -> bool:
        return self.observe()[0]

    def observe(self) -> tuple[bool, str | None]:
        """Whether the stack is whole, and which replica ZooKeeper names leader."""
        assert self.mesos is not None
        named = self.leader()
        leader = self.replica(named)
        state = self.mesos.state()
        observation = Observation(
            named,
            leader_alive=leader is not None and leader.alive,
            leader_frozen=leader is not None and leader.frozen,
            leader_cut_off=leader is not None and self.cut_off(leader),
            subscribed_frameworks=sum(1 for f in state.get("frameworks", []) if f.get("active")),
            registered_agents=sum(1 for a in state.get("slaves", []) if a.get("active")),
        )
        return whole(observation, agents=self.agents), named

    def cut_off(self, replica: Replica) -> bool:
        """Whether a fault has cut any of the replica's links."""
        assert self.links is not None
        names = [*replica.zookeeper_links, replica.mesos_link]
        return any(self.links.state(name) is not LinkState.OPEN for name in names)

    def holds_election_node(self, identity: str) -> bool:
        """Whether the replica still has a node in the election (its session lives)."""
        assert self.zk is not None
        path = f"/{self.zk_namespace}/ha/election"
        try:
            return any(
                self.zk.get(f"{path}/{child}")[0].decode() == identity
                for child in self.zk.get_children(path)
            )
        except (KazooException, KazooTimeoutError):
            return True

    def agent_id(self, target: int) -> str:
        assert self.mesos is not None
        return self.mesos.agents[target % self.agents].agent_id

    # --------------------------------------------------------------- faults

    def perform(self, fault: Fault, begin: bool) -> str:
        """Carry out the start (`begin`) or the end of a fault; says what was done."""
        assert self.mesos is not None and self.ensemble is not None
        kind, target = fault.kind, fault.target
        if kind is Kind.KILL_LEADER:
            if not begin:
                return f"started {self.start_replica().identity}"
            victim = self._acting_leader()
            if victim is None:
                return "no live leader to kill"
            victim.process.kill()
            victim.process.wait(10)
            return f"killed {victim.identity}"
        if kind is Kind.FREEZE_LEADER:
            if begin:
                victim = self._acting_leader()
                if victim is None:
                    return "no live leader to freeze"
                victim.process.send_signal(signal.SIGSTOP)
                victim.frozen = True
                return f"froze {victim.identity}"
            thawed = [r for r in self.replicas if r.frozen]
            for replica in thawed:
                replica.process.send_signal(signal.SIGCONT)
                replica.frozen = False
            return "resumed " + ", ".join(r.identity for r in thawed)
        if kind in (Kind.QUORUM_LOSS, Kind.ZK_SERVER_RESTART):
            count = 2 if kind is Kind.QUORUM_LOSS else 1
            servers = [(target + n) % len(self.ensemble.servers) for n in range(count)]
            if begin:
                for index in servers:
                    self.ensemble.stop_server(index)
                    self._stopped_zk.add(index)
                return f"stopped ZooKeeper servers {[i + 1 for i in servers]}"
            for index in sorted(self._stopped_zk):
                self.ensemble.start_server(index)
            self._stopped_zk.clear()
            self.ensemble.wait_serving(60)
            return f"started ZooKeeper servers {[i + 1 for i in servers]}"
        if kind is Kind.MASTER_RESTART:
            self.mesos.restart_master(timeout=60)
            return "restarted the Mesos master"
        if kind is Kind.PARTITION_AGENT:
            agent = self.agent_id(target)
            if begin:
                self.mesos.partition_agent(agent)
                return f"partitioned {agent}"
            self.mesos.heal_agent(agent, timeout=60)
            return f"healed {agent}"
        if kind is Kind.AGENT_RESTART:
            agent = self.agent_id(target)
            if begin:
                self.mesos.bring_agent_down(agent)
                return f"took {agent} down"
            self.mesos.bring_agent_up(agent, timeout=60)
            return f"brought {agent} up"
        if kind is Kind.CRASH_EXECUTOR:
            return self._crash_executor(target)
        if kind in (Kind.DROP_LAUNCH, Kind.DROP_LAUNCH_AT_AGENT):
            return self._drop_launch(
                DROP_AT_AGENT if kind is Kind.DROP_LAUNCH_AT_AGENT else DROP_AT_MASTER
            )
        if kind in (Kind.ZK_SESSION_EXPIRY, Kind.PARTITION_ZK, Kind.PARTITION_MASTER):
            return self._isolate(kind, begin)
        if kind is Kind.DELAY_UPDATES:
            delay = update_delay(fault) if begin else 0.0
            self.mesos.delay_status_updates(delay)
            return f"status updates delayed by {delay:.1f}s"
        if kind is Kind.DUPLICATE_UPDATES:
            self.mesos.duplicate_status_updates(begin)
            return f"duplicated updates {'on' if begin else 'off'}"
        if kind is Kind.REORDER_UPDATES:
            self.mesos.reorder_status_updates(begin)
            return f"reordered updates {'on' if begin else 'off'}"
        if begin:
            self.api.kill_apiserver()
            return "killed the API server"
        self.api.start_apiserver()
        return "started the API server"

    def _drop_launch(self, where: str) -> str:
        """Lose the next launch, and return once it is lost (the fault's moment)."""
        assert self.mesos is not None
        mesos = self.mesos
        mesos.drop_next_launch("", where=where)
        deadline = time.monotonic() + DROP_WAIT
        while mesos.run_on_loop(lambda: len(mesos.faults.launch_drops)):
            if time.monotonic() > deadline:
                mesos.run_on_loop(mesos.faults.launch_drops.clear)
                return f"no launch came in {DROP_WAIT:.0f}s: none was lost"
            time.sleep(0.1)
        return f"a launch was lost at the {where}"

    def _isolate(self, kind: Kind, begin: bool) -> str:
        """Cut the leader's links to ZooKeeper or to the master, or open them again."""
        assert self.links is not None
        if not begin:
            return self._reconnect(kind)
        victim = self._acting_leader()
        if victim is None:
            return "no live leader to cut off"
        if kind is Kind.PARTITION_MASTER:
            self._cut = [victim.mesos_link]
        else:
            self._cut = list(victim.zookeeper_links)
        state = LinkState.REFUSED if kind is Kind.ZK_SESSION_EXPIRY else LinkState.BLACKHOLE
        self.links.set(self._cut, state)
        return f"{state} {', '.join(self._cut)}"

    def _reconnect(self, kind: Kind) -> str:
        assert self.links is not None
        if not self._cut:
            return "nothing was cut off"
        cut, self._cut = self._cut, []
        note = ""
        if kind is Kind.ZK_SESSION_EXPIRY:
            # The fault is the expiry: keep the leader away until the ensemble has
            # expired its session (its election node is gone).
            identity = cut[0].rsplit("-zookeeper-", 1)[0]
            deadline = time.monotonic() + 10 * SESSION_TIMEOUT
            while self.holds_election_node(identity) and time.monotonic() < deadline:
                time.sleep(0.1)
            expired = not self.holds_election_node(identity)
            note = " (its session expired)" if expired else " (its session did NOT expire)"
        self.links.set(cut, LinkState.OPEN)
        return f"opened {', '.join(cut)}{note}"

    def _acting_leader(self) -> Replica | None:
        leader = self.replica(self.leader())
        if leader is None or not leader.alive or leader.frozen or self.cut_off(leader):
            return None
        return leader

    def _crash_executor(self, target: int) -> str:
        """Crash the executor of a running task; tasks are short, so look for a while."""
        assert self.mesos is not None
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            running = sorted(
                (task["slave_id"], task["executor_id"] or task["id"])
                for framework in self.mesos.state().get("frameworks", [])
                for task in framework.get("tasks", [])
                if task["state"] == "TASK_RUNNING"
            )
            if running:
                agent, executor = running[target % len(running)]
                try:
                    self.mesos.crash_executor(agent, executor)
                except KeyError:
                    continue
                return f"crashed executor {executor} on {agent}"
            time.sleep(0.1)
        return "no running task to crash"
