"""The controller's connections to the API server stay bounded when it starts with many
objects to handle at once: kopf's own session would open one per concurrent request."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from controller.handlers import HANDLER_CONNECTIONS
from controller.reconcilers.kubeapi import CONNECTIONS
from tests.stack import API_VERSION, NAMESPACE, Stack, job_manifest
from tests.waiting import wait_for

pytestmark = pytest.mark.system

JOBS = 300
# Two watches (apps, jobs) beside kopf's handlers' connections and the controller's own.
BOUND = 2 + HANDLER_CONNECTIONS + CONNECTIONS


def connections_to(pid: int, port: int) -> int:
    """Established TCP connections of process `pid` to 127.0.0.1:`port`."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if state == "01" and inode in inodes and int(remote.split(":")[1], 16) == port:
            count += 1
    return count


def test_a_controller_starting_with_hundreds_of_jobs_keeps_its_api_connections_bounded(
    stack: Stack,
) -> None:
    stack.script_app_object()
    for number in range(JOBS):
        stack.kube.create(
            job_manifest(
                f"bulk-{number}",
                "scripts",
                "0 0 0 29 2 ?",
                NAMESPACE,
                script={"commandLine": stack.record_command()},
            )
        )
    # Ports 0: the endpoints take free ones themselves (a port picked here could be taken
    # by another process before the controller binds it).
    process = stack.start_process("replica-a", health_port=0, metrics_port=0)
    most = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal most
        while process.poll() is None:
            try:
                most = max(most, connections_to(process.pid, stack.api.port))
            except FileNotFoundError:
                return
            if done.wait(0.05):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:

        def listed() -> list[dict[str, Any]]:
            assert process.poll() is None, "the controller exited (see replica-a.log)"
            return stack.kube.list(API_VERSION, "CloudJob", NAMESPACE)

        wait_for(
            listed,
            lambda jobs: (
                sum((j.get("status") or {}).get("state") == "Scheduled" for j in jobs) == JOBS
            ),
            timeout=300,
            what=f"all {JOBS} jobs Scheduled",
        )
    finally:
        done.set()
        sampler.join()
    assert 0 < most <= BOUND, f"{most} connections to the API server at once"
