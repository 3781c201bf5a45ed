"""A small custom executor for the Local Mesos conformance suite, on the unmodified
pymesos MesosExecutorDriver.

Run by the agents as `python executor_app.py`. Each task's `data` (base64 JSON)
says what to do: {"mode": "finish", "seconds": s} sends RUNNING then FINISHED
after s seconds; {"mode": "run"} sends RUNNING and waits for a kill (then
KILLED); {"mode": "fail"} sends FAILED; {"mode": "silent"} sends nothing;
{"mode": "exit"} sends RUNNING and exits the process with status 3. With
"spawn": true the executor first starts two children that ignore SIGTERM, one
in a process group and one in a session of their own (what a real container
teardown must still kill), and records their pids as a "spawned" event.
Framework messages are echoed back prefixed with "echo:"; the message "exit"
makes the executor exit with status 3 instead. Every callback is
appended to `events.log` in the sandbox so tests can read what the executor saw.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from pymesos import Executor, MesosExecutorDriver

LOG = Path(os.environ.get("MESOS_SANDBOX", ".")) / "events.log"
STUBBORN = ["/bin/sh", "-c", "trap '' TERM; exec sleep 600"]


def record(kind: str, **fields: Any) -> None:
    with open(LOG, "a") as out:
        out.write(json.dumps({"event": kind, **fields}) + "\n")


def _status(
    task_id: dict[str, str], state: str, message: str, data: bytes | None = None
) -> dict[str, Any]:
    status: dict[str, Any] = {"task_id": task_id, "state": state, "message": message}
    if data is not None:
        status["data"] = base64.b64encode(data).decode("ascii")
    return status


class TestExecutor(Executor):  # type: ignore[misc]
    def __init__(self) -> None:
        self.running: dict[str, threading.Event] = {}

    def registered(
        self, driver: Any, executor_info: Any, framework_info: Any, agent_info: Any
    ) -> None:
        record(
            "registered",
            executor_id=executor_info["executor_id"]["value"],
            framework_id=framework_info["id"]["value"],
            agent_id=agent_info["id"]["value"],
            env={
                k: v
                for k, v in os.environ.items()
                if k.startswith("MESOS_") or k.startswith("TEST_")
            },
            cwd=os.getcwd(),
            pid=os.getpid(),
        )

    def reregistered(self, driver: Any, agent_info: Any) -> None:
        record("reregistered", agent_id=agent_info["id"]["value"])

    def launchTask(self, driver: Any, task: Any) -> None:
        task_id = task["task_id"]
        spec = json.loads(base64.b64decode(task.get("data", "") or b"e30=") or b"{}")
        record("launch", task_id=task_id["value"], spec=spec)
        mode = spec.get("mode", "finish")
        if spec.get("spawn"):
            group = subprocess.Popen(STUBBORN, process_group=0)
            session = subprocess.Popen(STUBBORN, start_new_session=True)
            record("spawned", task_id=task_id["value"], group=group.pid, session=session.pid)
        if mode == "silent":
            return
        if mode == "fail":
            driver.sendStatusUpdate(_status(task_id, "TASK_FAILED", "asked to fail"))
            return
        driver.sendStatusUpdate(
            _status(task_id, "TASK_RUNNING", "running", b"payload-" + task_id["value"].encode())
        )
        if mode == "exit":
            os._exit(3)
        stop = threading.Event()
        self.running[task_id["value"]] = stop

        def work() -> None:
            seconds = float(spec.get("seconds", 0.0)) if mode == "finish" else None
            killed = stop.wait(seconds)
            if self.running.pop(task_id["value"], None) is None:
                return  # shutdown() already reported it
            if killed:
                driver.sendStatusUpdate(_status(task_id, "TASK_KILLED", "killed"))
            else:
                driver.sendStatusUpdate(_status(task_id, "TASK_FINISHED", "done"))

        threading.Thread(target=work, daemon=True).start()

    def killTask(self, driver: Any, task_id: Any) -> None:
        record("kill", task_id=task_id["value"])
        stop = self.running.get(task_id["value"])
        if stop is not None:
            stop.set()

    def frameworkMessage(self, driver: Any, message: str) -> None:
        data = base64.b64decode(message)
        record("message", data=data.decode())
        if data == b"exit":
            os._exit(3)
        driver.sendFrameworkMessage(base64.b64encode(b"echo:" + data).decode("ascii"))

    def shutdown(self, driver: Any) -> None:
        record("shutdown")
        for task_id in list(self.running):
            stop = self.running.pop(task_id, None)
            if stop is not None:
                stop.set()
                driver.sendStatusUpdate(_status({"value": task_id}, "TASK_KILLED", "shutdown"))


def main() -> int:
    driver = MesosExecutorDriver(TestExecutor(), use_addict=False)
    driver.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
