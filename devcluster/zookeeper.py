"""Runs a throwaway ZooKeeper server from the Debian `zookeeper` package.

Used by the test suite (one server per session) and by the `dev` stack. The
server listens on a free loopback port with a temporary data directory and is
stopped (and its directory removed) by `stop()`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
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


def _four_letter(port: int, word: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
        sock.sendall(word)
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
        return b"".join(chunks)


class ZooKeeperServer:
    """A single-node ZooKeeper on 127.0.0.1; `hosts` is the kazoo connect string."""

    def __init__(self, port: int | None = None, data_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="cloudjob-zk-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
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
                    "",
                ]
            )
        )
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

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> ZooKeeperServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
