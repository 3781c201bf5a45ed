"""The image: the Dockerfile agrees with the chart and the project (the chart's non-root
user is the image's, the ports and the command match, everything the build copies is in
the build context, the http-parser rebuild has one implementation that both
scripts/setup and the image use), and the image built from it by scripts/build-image
(buildah, no Docker engine) runs as the chart runs it.

The built image's controller is started with `buildah run` the way the chart's pod
starts it: the image's entrypoint with the container's args, the rendered CLOUDJOB_*
environment, the service-account volume and KUBERNETES_SERVICE_* variables the kubelet
gives a pod (so the controller logs in in-cluster), an empty /tmp, the image's own user;
against a real ZooKeeper, the local Mesos and the real Kubernetes API server. The
differences from a pod: the container shares the host's network (the endpoints listen
on 127.0.0.1 and free ports), and the root filesystem is not mounted read-only (the
image's user cannot write to it anyway)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import helm_python
import pytest

from controller.__main__ import COMMANDS
from controller.settings import HttpSettings
from devcluster.kube.identities import CONTROLLER_NAMESPACE
from devcluster.zookeeper import free_port
from tests.deploy.chart import (
    DOCKERFILE,
    PROJECT,
    Rendered,
    dockerfile_final_stage,
    image_command,
    merged,
    render,
    values_file,
)
from tests.stack import Stack
from tests.waiting import wait_for

pytestmark = pytest.mark.system

BUILD_SCRIPT = PROJECT / "scripts" / "build-http-parser"
IMAGE_SCRIPT = PROJECT / "scripts" / "build-image"
# A cold build (the base from Debian's packages, every layer) takes a few minutes; the
# first test that needs the image pays for it.
BUILD_TIMEOUT = 900
# Where the kubelet mounts a pod's service-account token (/var/run links to /run).
SERVICE_ACCOUNT_MOUNT = "/run/secrets/kubernetes.io/serviceaccount"
FAR_FUTURE = "0 0 0 1 1 ? 2099"


def test_the_chart_runs_the_image_as_its_own_non_root_user(chart: helm_python.Chart) -> None:
    user, _, group = dockerfile_final_stage()["USER"][-1].partition(":")
    pod = render(chart, values_file("default")).one("Deployment")["spec"]["template"]["spec"]
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        int(user),
        int(group),
    )
    assert int(user) != 0
    # The framework user's default comes from $USER before the password database.
    assert "USER=cloudjob" in dockerfile_final_stage()["ENV"][-1].split()


def test_the_image_exposes_the_ports_the_chart_and_the_controller_use(
    chart: helm_python.Chart,
) -> None:
    exposed = sorted(int(p) for line in dockerfile_final_stage()["EXPOSE"] for p in line.split())
    ports = render(chart, values_file("default")).container["ports"]
    defaults = HttpSettings()
    assert exposed == sorted(p["containerPort"] for p in ports)
    assert exposed == sorted([defaults.health_port, defaults.metrics_port])


def test_the_container_runs_the_controllers_run_command(chart: helm_python.Chart) -> None:
    command = image_command(render(chart, values_file("default")).container)
    assert command == ["python", "-m", "controller", "run"]
    assert command[-1] in COMMANDS
    assert json.loads(dockerfile_final_stage()["CMD"][-1]) == ["run"]


def test_the_image_starts_from_the_base_scripts_build_image_makes() -> None:
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?$", DOCKERFILE.read_text(), re.MULTILINE)
    made = re.search(r"^base=(\S+)$", IMAGE_SCRIPT.read_text(), flags=re.MULTILINE)
    assert made is not None
    names = [name for _, name in stages]
    assert [source for source, _ in stages if source not in names] == [made[1]]
    # The virtualenv's python is a link into the stage it is built in: the image must
    # run on that same stage.
    build = next(source for source, name in stages if name == "build")
    assert stages[-1][0] == build


def test_the_http_parser_rebuild_lives_in_one_script_used_by_setup_and_the_image() -> None:
    assert BUILD_SCRIPT.stat().st_mode & 0o111, "scripts/build-http-parser is not executable"
    assert "http-parser==0.9.0" in BUILD_SCRIPT.read_text()
    setup = (PROJECT / "scripts" / "setup").read_text()
    dockerfile = DOCKERFILE.read_text()
    assert "scripts/build-http-parser .venv/bin/python" in setup
    assert "/src/scripts/build-http-parser /opt/venv/bin/python" in dockerfile
    for other in (setup, dockerfile):
        assert "http-parser==" not in other and "parser.pyx" not in other


def test_everything_the_build_copies_is_in_the_build_context() -> None:
    ignored = [
        line.strip()
        for line in (PROJECT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = [
        source
        for args in re.findall(r"^COPY (?!--from)(.+)$", DOCKERFILE.read_text(), re.MULTILINE)
        for source in args.split()[:-1]
    ]
    assert sources
    for source in sources:
        assert (PROJECT / source).exists(), source
        top = source.split("/")[0]
        assert not any(fnmatch.fnmatchcase(top, pattern) for pattern in ignored), source


@dataclass(frozen=True)
class Image:
    """The image scripts/build-image built (its ID), and buildah pointed at the store it
    is in."""

    id: str
    buildah: tuple[str, ...]

    def config(self) -> dict[str, Any]:
        """The image's OCI configuration (user, environment, entrypoint, command)."""
        inspected = self.call("inspect", "--type", "image", self.id)
        config: dict[str, Any] = json.loads(inspected)["OCIv1"]["config"]
        return config

    def call(self, *args: str) -> str:
        done = subprocess.run([*self.buildah, *args], capture_output=True, text=True)
        assert done.returncode == 0, f"buildah {' '.join(args)}: {done.stderr}"
        return done.stdout


@pytest.fixture(scope="session")
def image() -> Image:
    """The image of this checkout: built, or rebuilt from its cached layers."""
    built = subprocess.run([IMAGE_SCRIPT], capture_output=True, text=True, cwd=PROJECT)
    assert built.returncode == 0, f"scripts/build-image failed:\n{built.stderr[-4000:]}"
    store = subprocess.run(
        [IMAGE_SCRIPT, "--buildah-args"], capture_output=True, text=True, check=True
    )
    return Image(id=built.stdout.split()[-1], buildah=("buildah", *store.stdout.split()))


@pytest.fixture
def container(image: Image) -> Iterator[str]:
    """A working container of the image, for `buildah run`."""
    name = f"cloudjob-test-{uuid.uuid4().hex[:8]}"
    image.call("from", "--quiet", "--pull=never", "--name", name, image.id)
    yield name
    image.call("rm", name)


def run_in(image: Image, container: str, *command: str, env: dict[str, str]) -> str:
    """`command` in the container, as the image's user; its output (it must succeed)."""
    flags = [f"--env={name}={value}" for name, value in env.items()]
    done = subprocess.run(
        [*image.buildah, "run", "--isolation", "chroot", *flags, container, "--", *command],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_image_holds_this_checkouts_controller_on_python_311_as_the_charts_user(
    image: Image, container: str, chart: helm_python.Chart
) -> None:
    # Fixed width: the help text is wrapped to the terminal's.
    width = {"COLUMNS": "100"}
    inside = run_in(image, container, "python", "-m", "controller", "run", "--help", env=width)
    here = subprocess.run(
        [sys.executable, "-m", "controller", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **width},
    )
    assert inside == here.stdout
    assert "--zookeeper.hosts" in inside

    probe = (
        "import getpass, os, pwd, sys, http_parser.parser; "
        "print(sys.version_info[0], sys.version_info[1], os.getuid(), os.getgid(), "
        "getpass.getuser(), pwd.getpwuid(os.getuid()).pw_name)"
    )
    major, minor, uid, gid, user, account = run_in(
        image, container, "python", "-c", probe, env={}
    ).split()
    pod = render(chart, values_file("default")).one("Deployment")["spec"]["template"]["spec"]
    assert (int(major), int(minor)) == (3, 11)
    assert 'requires-python = ">=3.11,<3.12"' in (PROJECT / "pyproject.toml").read_text()
    assert (int(uid), int(gid)) == (
        pod["securityContext"]["runAsUser"],
        pod["securityContext"]["runAsGroup"],
    )
    # The framework user's default ($USER) and the account of the uid agree.
    assert user == account == "cloudjob"


def service_account_volume(stack: Stack, directory: Path, fs_group: int) -> Path:
    """The pod's service-account volume as the kubelet projects it: the token, the API
    server's CA and the namespace, readable through the pod's fsGroup."""
    directory.mkdir()
    files = {
        "token": stack.identity.token,
        "ca.crt": stack.api.ca_cert.read_text(),
        "namespace": CONTROLLER_NAMESPACE,
    }
    for name, text in files.items():
        path = directory / name
        path.write_text(text)
        os.chown(path, 0, fs_group)
        path.chmod(0o640)
    return directory


def pod_env(rendered: Rendered, pod: str) -> dict[str, str]:
    """The container's environment as the kubelet sets it from the rendered Deployment."""
    env = {}
    for entry in rendered.env:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:
            assert entry["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, entry
            env[entry["name"]] = pod
    return env


def container_process(group: int, command: list[str]) -> int | None:
    """The pid of the container's own process (what a kubelet signals) among the
    processes `buildah run` started in process group `group`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().decode().split("\0")[:-1]
        except OSError:  # gone meanwhile
            continue
        process_group = int(stat.rpartition(")")[2].split()[2])
        if process_group == group and argv[1:] == command[1:] and argv[0].endswith(command[0]):
            return int(entry.name)
    return None


def ids(pid: int) -> tuple[int, int]:
    """The real uid and gid of process `pid`."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(status["Uid"].split()[0]), int(status["Gid"].split()[0])


def status_patches(stack: Stack, job: str) -> int:
    """How often the controller's identity has patched `job`'s status in this test."""
    return sum(
        1
        for event in stack.api.audit(since=stack.audit_start, user=stack.identity.username)
        if event["verb"] == "patch"
        and event.get("objectRef", {}).get("subresource") == "status"
        and event["objectRef"].get("name") == job
    )


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_the_controller_starts_from_the_image_as_the_chart_runs_it(
    image: Image, container: str, chart: helm_python.Chart, stack: Stack, tmp_path: Path
) -> None:
    values = merged(
        values_file("default"),
        {
            "zookeeper": {
                "hosts": stack.zk_hosts,
                "namespace": stack.zk_namespace,
                "sessionTimeoutSeconds": 2,
            },
            "mesos": {"master": stack.mesos.master_address},
        },
    )
    rendered = render(chart, values)
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    config = image.config()
    command = [*config["Entrypoint"], *rendered.container["args"]]
    assert command == image_command(rendered.container)

    api = urlsplit(stack.api.url)
    health, metrics = free_port(), free_port()
    env = {
        **pod_env(rendered, "cj-cloudjob-controller-0"),
        "KUBERNETES_SERVICE_HOST": str(api.hostname),
        "KUBERNETES_SERVICE_PORT": str(api.port),
        "CLOUDJOB_HTTP__HOST": "127.0.0.1",
        "CLOUDJOB_HTTP__HEALTH_PORT": str(health),
        "CLOUDJOB_HTTP__METRICS_PORT": str(metrics),
    }
    account = service_account_volume(
        stack, tmp_path / "serviceaccount", pod["securityContext"]["fsGroup"]
    )
    log = tmp_path / "container.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *image.buildah,
                "run",
                "--isolation=chroot",
                "--network=host",
                "--mount=type=tmpfs,destination=/tmp",
                f"--volume={account}:{SERVICE_ACCOUNT_MOUNT}:ro",
                *(f"--env={name}={value}" for name, value in env.items()),
                container,
                "--",
                *command,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # Stopped by the stack when this test fails before stopping it itself.
    stack.processes.append(process)
    try:
        controller = wait_for(
            lambda: container_process(process.pid, command),
            lambda pid: pid is not None or process.poll() is not None,
            what="the controller's process in the container",
        )
        assert controller is not None, "the container exited"
        assert ids(controller) == (
            pod["securityContext"]["runAsUser"],
            pod["securityContext"]["runAsGroup"],
        )

        probes = rendered.container
        wait_for(
            lambda: get(health, probes["livenessProbe"]["httpGet"]["path"]),
            lambda reply: reply[0] == 200,
            what="/healthz",
        )
        # The only replica: Ready as soon as it contends, then it leads.
        wait_for(
            lambda: get(health, probes["readinessProbe"]["httpGet"]["path"]),
            lambda reply: reply[0] == 200 and json.loads(reply[1])["role"] == "leader",
            what="/readyz answering for the leader",
        )
        # 1 once the scheduling core has subscribed to Mesos.
        wait_for(
            lambda: get(metrics, "/metrics"),
            lambda reply: reply[0] == 200 and "cloudjob_scheduler_leading 1.0" in reply[1],
            what="the leader's metrics",
        )
        # The in-cluster login works: the controller handles a job.
        stack.script_app_object()
        stack.script_job("report", FAR_FUTURE)
        stack.wait_status(
            "CloudJob",
            "report",
            lambda s: any(
                c["type"] == "Scheduled" and c["status"] == "True" for c in s.get("conditions", [])
            ),
            what="the job scheduled",
        )
        wait_for(
            lambda: status_patches(stack, "report"),
            lambda patches: patches > 0,
            what="the job's status patched with the pod's service-account token",
        )

        # The kubelet's stop: SIGTERM to the container's process, then the grace period.
        os.kill(controller, signal.SIGTERM)
        assert process.wait(pod["terminationGracePeriodSeconds"]) == 0
    except BaseException:
        print(log.read_text(errors="replace")[-4000:])
        raise
