"""Runs throwaway ZooKeeper servers from the Debian `zookeeper` package.

`ZooKeeperServer` is one standalone server: the test suite runs one per session and the
`dev` stack one of its own. `ZooKeeperEnsemble` is three servers forming a quorum on
loopback, each of which can be stopped and started again (losing and regaining quorum):
the fault campaign (`devcluster.campaign`) runs on one. Every server listens on free
loopback ports with a temporary data directory, stopped (and removed) by `stop()`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

CLASSPATH = "/usr/share/java/*:/usr/share/zookeeper/*"
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
INSTALL_HINT = "sudo apt-get install -y zookeeper"


class ZooKeeperUnavailable(RuntimeError):
    """The ZooKeeper package or a Java runtime is missing, or the server did not start."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all bound at once while they are picked)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _four_letter(port: int, word: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
        sock.sendall(word)
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
        return b"".join(chunks)


def _srvr(port: int) -> dict[str, str]:
    """The `srvr` answer of the server on `port`, as name → value."""
    found: dict[str, str] = {}
    for line in _four_letter(port, b"srvr").decode(errors="replace").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            found[name.strip()] = value.strip()
    return found


def packets_received(port: int) -> int:
    """How many packets the server on `port` has received since it started (its `srvr`
    answer): what tests count a client's reads by, on the wire."""
    value = _srvr(port).get("Received")
    if value is None:
        raise OSError(f"no packet count in the srvr answer of 127.0.0.1:{port}")
    return int(value)


def node_count(port: int) -> int | None:
    """The znodes the server on `port` holds (`srvr`'s "Node count"); None if it does not
    answer."""
    try:
        value = _srvr(port).get("Node count")
    except OSError:
        return None
    return int(value) if value is not None else None


def serving(port: int) -> bool:
    """Whether the server on `port` answers requests (a member without quorum does not)."""
    try:
        return b"Mode: " in _four_letter(port, b"srvr")
    except OSError:
        return False


class ZooKeeperServer:
    """A ZooKeeper server on 127.0.0.1; `hosts` is the kazoo connect string. Standalone,
    unless `myid` and `quorum` (the `server.N=` lines of every member) make it one
    member of an ensemble."""

    def __init__(
        self,
        port: int | None = None,
        data_dir: Path | None = None,
        *,
        myid: int | None = None,
        quorum: Sequence[str] = (),
    ) -> None:
        self.port = port or free_port()
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="cloudjob-zk-"))
        self.myid = myid
        self.quorum = tuple(quorum)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0, *, wait: bool = True) -> None:
        """Start the server; with `wait`, return once it answers (a member of an
        ensemble answers only with a quorum, so its ensemble waits instead)."""
        if shutil.which("java") is None or not Path("/usr/share/zookeeper").is_dir():
            raise ZooKeeperUnavailable(
                f"ZooKeeper is not installed; install it with: {INSTALL_HINT}"
            )
        config = self.data_dir / "zoo.cfg"
        config.write_text(
            "\n".join(
                [
                    "tickTime=500",
                    "minSessionTimeout=1000",
                    "maxSessionTimeout=60000",
                    f"dataDir={self.data_dir / 'data'}",
                    f"clientPort={self.port}",
                    "clientPortAddress=127.0.0.1",
                    "admin.enableServer=false",
                    "4lw.commands.whitelist=ruok,srvr,stat",
                    "maxClientCnxns=0",
                    "initLimit=10",
                    "syncLimit=5",
                    *self.quorum,
                    "",
                ]
            )
        )
        if self.myid is not None:
            (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
            (self.data_dir / "data" / "myid").write_text(f"{self.myid}\n")
        log = open(self.data_dir / "zookeeper.log", "wb")  # noqa: SIM115 - owned by the child
        env = dict(os.environ, ZOO_LOG_DIR=str(self.data_dir))
        self._process = subprocess.Popen(
            ["java", "-Xmx256m", "-cp", CLASSPATH, MAIN_CLASS, str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ZooKeeperUnavailable(
                    f"ZooKeeper exited with {self._process.returncode}; "
                    f"see {self.data_dir / 'zookeeper.log'}"
                )
            try:
                if _four_letter(self.port, b"ruok") == b"imok":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ZooKeeperUnavailable(f"ZooKeeper did not answer on port {self.port} in {timeout}s")

    def exited(self) -> int | None:
        """The exit status of a server that died on its own (None while it runs)."""
        return None if self._process is None else self._process.poll()

    def halt(self) -> None:
        """Stop the process, keeping the data directory (it may start again)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def stop(self) -> None:
        self.halt()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> ZooKeeperServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ZooKeeperEnsemble:
    """`size` ZooKeeper servers on loopback forming one quorum; `hosts` names them all.

    `stop_server(i)` and `start_server(i)` take one member down and bring it back on its
    ports with its data, so a test can stop a majority (the quorum is lost: no member
    serves) and restore it."""

    def __init__(self, size: int = 3, data_dir: Path | None = None) -> None:
        if size < 1:
            raise ValueError(f"an ensemble needs at least one server, got {size}")
        self.size = size
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="cloudjob-zk-ensemble-"))
        self.servers: list[ZooKeeperServer] = []

    def _configure(self, attempt: int) -> None:
        ports = free_ports(3 * self.size)
        clients, peers, elections = (ports[n::3] for n in range(3))
        quorum = [f"server.{n + 1}=127.0.0.1:{peers[n]}:{elections[n]}" for n in range(self.size)]
        self.servers = [
            ZooKeeperServer(
                clients[n],
                self.data_dir / f"attempt-{attempt}" / f"server-{n + 1}",
                myid=n + 1,
                quorum=quorum,
            )
            for n in range(self.size)
        ]

    @property
    def hosts(self) -> str:
        return ",".join(server.hosts for server in self.servers)

    def start(self, timeout: float = 60.0, attempts: int = 3) -> None:
        """Start every member and wait for the quorum. A member that exits while they
        start (on a shared machine another process may take a port between its pick and
        its bind) has the ensemble start again on new ports."""
        for attempt in range(1, attempts + 1):
            self._configure(attempt)
            try:
                for server in self.servers:
                    server.data_dir.mkdir(parents=True, exist_ok=True)
                    server.start(wait=False)
                self.wait_serving(timeout)
                return
            except ZooKeeperUnavailable:
                self._halt_all()
                if attempt == attempts:
                    self.stop()
                    raise
            except BaseException:
                self.stop()
                raise

    def _halt_all(self) -> None:
        for server in self.servers:
            server.halt()

    def wait_serving(self, timeout: float = 60.0) -> None:
        """Return once every running member serves (a quorum is formed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for server in self.servers:
                if server.exited() is not None:
                    raise ZooKeeperUnavailable(
                        f"ZooKeeper server {server.myid} exited with {server.exited()}; "
                        f"see {server.data_dir / 'zookeeper.log'}"
                    )
            if all(serving(s.port) for s in self.servers if s.running):
                return
            time.sleep(0.1)
        raise ZooKeeperUnavailable(f"the ZooKeeper ensemble formed no quorum within {timeout}s")

    def stop_server(self, index: int) -> None:
        self.servers[index].halt()

    def start_server(self, index: int) -> None:
        self.servers[index].start(wait=False)

    def stop(self) -> None:
        self._halt_all()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> ZooKeeperEnsemble:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
