"""The command line: `python -m controller run [flags]` and `python -m controller executor`.

`run` starts one controller replica (settings from flags and `CLOUDJOB_*` variables,
see docs/operations.md) and keeps it up until SIGTERM or SIGINT: it never exits because
leadership was lost, only because it was asked to or could not start. `executor` is
the program an app's bootstrap script starts on a Mesos agent.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from controller.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"
USAGE = """usage: python -m controller COMMAND [flags]

commands:
  run        run the controller (python -m controller run --help lists every flag)
  executor   run the executor of an app on a Mesos agent (started by the app's bootstrap)
"""


def _settings_problems(error: ValidationError) -> str:
    lines = []
    for detail in error.errors(include_url=False):
        loc = detail["loc"]
        if loc == ("mesos",) and detail["type"] == "missing":
            loc = ("mesos", "master")  # the one required field of the group
        field = ".".join(str(part) for part in loc)
        flag = "--" + field.replace("_", "-")
        variable = "CLOUDJOB_" + "__".join(str(part) for part in loc).upper()
        message = detail["msg"].removeprefix("Value error, ")
        lines.append(f"  {field}: {message} (flag {flag}, variable {variable})")
    return "invalid settings:\n" + "\n".join(lines)


def run(args: Sequence[str]) -> int:
    try:
        settings = Settings.from_cli(args)
    except ValidationError as error:
        print(_settings_problems(error), file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT, stream=sys.stderr)
    if settings.log_level != "DEBUG":
        # kopf logs every successful handler and timer run at INFO: one line per object
        # per status refresh. Our reconcilers log what matters.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # Imported here: the Mesos driver's dependencies have import-time side effects.
    from controller.app import ControllerThread, preload_mesos_driver

    preload_mesos_driver()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: stop.set())
    replica = ControllerThread(settings)
    replica.start()
    while replica.alive and not stop.wait(0.5):
        pass
    replica.stop()
    return 1 if replica.error is not None else 0


def executor(args: Sequence[str]) -> int:
    from controller.executor.__main__ import main as executor_main

    return executor_main()


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"run": run, "executor": executor}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if not args or args[0] not in COMMANDS:
        print(USAGE, file=sys.stderr)
        return 2
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
