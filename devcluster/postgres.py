"""Runs a throwaway PostgreSQL server from the Debian `postgresql` package.

Used by the test suite (one server per session, for the run history's tests against
PostgreSQL) the way `devcluster.zookeeper` runs ZooKeeper: `initdb` into a temporary
directory, `postgres` on a free loopback port, trust authentication, and `stop()`
removes everything. PostgreSQL refuses to run as root, so as root the server runs as
the package's `postgres` user (through `setpriv`), which then owns the directory.

`stop_server()` / `start_server()` stop and restart the same cluster (its data kept),
for tests of a database that goes away and comes back.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from devcluster.zookeeper import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
INSTALL_HINT = "sudo apt-get install -y postgresql"
USER = "cloudjob"
DATABASE = "cloudjob"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL package is missing, or the server did not start."""


class PostgresServer:
    """A single PostgreSQL on 127.0.0.1; `url` is an asyncpg SQLAlchemy URL."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base = Path(tempfile.mkdtemp(prefix="cloudjob-pg-"))
        self.data_dir = self.base / "data"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def database_url(self, database: str) -> str:
        return f"postgresql+asyncpg://{USER}@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            # setpriv execs the program itself (runuser would stay as its parent and not
            # pass signals on), so the child is PostgreSQL and stop_server reaches it.
            return [
                "setpriv",
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--reset-env",
                *argv,
            ]
        return argv

    def start(self, timeout: float = 60.0) -> None:
        if not (BIN / "initdb").exists():
            raise PostgresUnavailable(
                f"PostgreSQL is not installed; install it with: {INSTALL_HINT}"
            )
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
        subprocess.run(
            self._as_owner(
                [
                    str(BIN / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    USER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ]
            ),
            check=True,
            capture_output=True,
        )
        self.start_server(timeout)
        self._createdb(DATABASE)

    def start_server(self, timeout: float = 60.0) -> None:
        """Start (or restart) the server on the same port and data."""
        log = open(self.base / "postgres.log", "ab")  # noqa: SIM115 - owned by the child
        self._process = subprocess.Popen(
            self._as_owner(
                [
                    str(BIN / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.base}",
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=200",
                ]
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PostgresUnavailable(
                    f"PostgreSQL exited with {self._process.returncode}; "
                    f"see {self.base / 'postgres.log'}"
                )
            ready = subprocess.run(
                [str(BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise PostgresUnavailable(f"PostgreSQL did not answer on port {self.port} in {timeout}s")

    def _createdb(self, name: str) -> None:
        subprocess.run(
            [str(BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name],
            check=True,
            capture_output=True,
        )

    def create_database(self, name: str) -> str:
        """A fresh database on this server; its URL."""
        self._createdb(name)
        return self.database_url(name)

    def stop_server(self) -> None:
        """Stop the server now, keeping its data: SIGINT is PostgreSQL's fast shutdown,
        which ends open sessions (SIGTERM would wait for every client to leave)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def stop(self) -> None:
        self.stop_server()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
