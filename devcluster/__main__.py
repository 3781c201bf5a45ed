"""`python -m devcluster`: the dev stack (see devcluster.stack). Ctrl-C stops it."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from devcluster.kube import KubeUnavailable
from devcluster.stack import DevStack
from devcluster.zookeeper import ZooKeeperUnavailable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/dev",
        description="Run ZooKeeper, a Kubernetes API server, an emulated Mesos, the controller "
        "and the example jobs on this machine, and print what happens. Development only.",
    )
    parser.add_argument("--agents", type=int, default=3, help="Mesos agents (default 3)")
    parser.add_argument("--work-dir", type=Path, help="where state and sandboxes go")
    parser.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)"
    )
    args = parser.parse_args(argv)
    if args.agents < 1:
        parser.error("--agents must be at least 1")
    stack = DevStack(agents=args.agents, work_dir=args.work_dir)
    signal.signal(signal.SIGINT, lambda *_: stack.stop())
    signal.signal(signal.SIGTERM, lambda *_: stack.stop())
    try:
        return stack.run(duration=args.duration)
    except (ZooKeeperUnavailable, KubeUnavailable) as error:
        print(f"dev: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
