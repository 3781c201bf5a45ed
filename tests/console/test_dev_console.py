"""The console of the `dev` stack, as a user opens it from the banner: the example jobs
are listed, a job's page fills with its runs (host, outcome) as they happen, and the
statistics chart them; no page logs an error."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.conftest import Tab
from tests.waiting import wait_for

pytestmark = pytest.mark.system

PROJECT = Path(__file__).resolve().parents[2]
WITHIN = 120.0


class Dev:
    """`dev` running, its output read as it comes (so it never blocks on a full pipe)."""

    def __init__(self, work_dir: Path) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devcluster", "--work-dir", str(work_dir)],
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def said(self, pattern: str) -> str | None:
        assert self.process.poll() is None, "dev exited early:\n" + "".join(self.lines)
        return next((m[1] for line in list(self.lines) if (m := re.search(pattern, line))), None)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(10)
        return self.process.returncode


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    running = Dev(tmp_path)
    yield running
    assert running.stop() == 0, "".join(running.lines[-50:])


def api(console: str, path: str) -> Any:
    with urllib.request.urlopen(console.replace("/console/", f"/api/v1/{path}")) as reply:
        return json.load(reply)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def test_the_dev_console_shows_the_example_jobs_runs_as_they_happen(dev: Dev, tab: Tab) -> None:
    console = wait_for(
        lambda: dev.said(r"console: (http://\S+/console/)"),
        lambda url: url is not None,
        timeout=WITHIN,
        what="the console's URL in dev's banner",
    )
    assert console is not None
    # The banner names the port before the controller listens on it.
    wait_for(lambda: answers(console), timeout=WITHIN, what=f"{console} answering")
    page = tab.page
    page.goto(console)
    tab.loaded()
    jobs = page.locator("[data-table=jobs]")
    jobs.locator("a", has_text="default/hello-script").wait_for(timeout=WITHIN * 1000)
    assert "default/numbers-dataflow" in jobs.inner_text()

    jobs.locator("a", has_text="default/hello-script").click()
    tab.loaded()
    # The page reloads its data every few seconds: the runs arrive on their own.
    page.locator("[data-table=runs] .badge.succeeded").first.wait_for(timeout=WITHIN * 1000)
    hosts = {
        run["hostname"]
        for run in api(console, "runs?namespace=default&job=hello-script&limit=1000")["items"]
    }
    shown = page.locator("[data-table=runs] tbody tr td:nth-child(5)").all_inner_texts()
    assert shown and set(shown) <= hosts
    tab.screenshot("dev-job")

    page.locator("header a", has_text="Statistics").click()
    tab.loaded()
    wait_for(
        lambda: int(page.locator("[data-total]").get_attribute("data-total") or "0"),
        lambda total: total > 0,
        timeout=WITHIN,
        what="runs charted on the statistics page",
    )
    assert page.locator("[data-chart=results] canvas").count() == 1
    tab.screenshot("dev-statistics")
    # A reload answered 503 (the history or ZooKeeper briefly unreadable on a busy
    # machine) is logged by the browser itself; the page shows the next reload's data.
    unavailable = "the server responded with a status of 503"
    assert [e for e in tab.errors if unavailable not in e] == []
