"""`python -m controller.executor`: the program an app's bootstrap script starts.

Reads its settings from the environment the Mesos agent (and the bootstrap
script) set — see `controller.executor.environment` — configures logging to
stderr (the executor's sandbox `stderr` file), then serves tasks until the
framework, the agent or a signal stops it.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from controller.executor.environment import SettingError, read_environment

LOG_FORMAT = "%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"


def main() -> int:
    try:
        environment = read_environment(os.environ, Path.cwd())
    except SettingError as error:
        print(f"cloudjob executor: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=environment.log_level, format=LOG_FORMAT, stream=sys.stderr)
    # Imported here: importing pymesos installs a log handler and a SIGINT handler.
    from controller.executor.serving import ExecutorService

    logging.getLogger("pymesos").handlers.clear()
    missing = [
        name
        for name in ("MESOS_AGENT_ENDPOINT", "MESOS_FRAMEWORK_ID", "MESOS_EXECUTOR_ID")
        if not os.environ.get(name)
    ]
    if missing:
        print(
            f"cloudjob executor: {', '.join(missing)} not set; this program is started by a "
            "Mesos agent (through the app's bootstrap script), not by hand",
            file=sys.stderr,
        )
        return 2
    logging.getLogger(__name__).info(
        "cloudjob executor starting: app root %s, sandbox %s, %d workers, grace %.1f s",
        environment.app_root,
        environment.sandbox,
        environment.workers,
        environment.grace_seconds,
    )
    return ExecutorService(environment).run()


if __name__ == "__main__":
    sys.exit(main())
