"""Command line: run a Local Mesos (development emulator) until interrupted.

python -m devcluster.mesos --agents 3 [--zk HOST:PORT] [--zk-path /mesos] [--port N]
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from devcluster.mesos import BANNER, AgentSpec, LocalMesos

FIRST_PORT = 31000
PORTS_PER_AGENT = 1000


def port_ranges(agents: int) -> list[tuple[int, int]]:
    """A disjoint port range per agent: 1000 ports each while they fit below 65536,
    fewer each when many agents share the host's port space."""
    width = min(PORTS_PER_AGENT, (65536 - FIRST_PORT) // max(agents, 1))
    return [(FIRST_PORT + width * i, FIRST_PORT + width * (i + 1) - 1) for i in range(agents)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.mesos",
        description=(
            "Run an emulated Mesos master and agents for development. NOT a production Mesos."
        ),
    )
    parser.add_argument("--agents", type=int, default=1, help="number of agents (default 1)")
    parser.add_argument("--cpus", type=float, default=4.0, help="cpus per agent (default 4)")
    parser.add_argument(
        "--mem", type=float, default=4096.0, help="mem (MB) per agent (default 4096)"
    )
    parser.add_argument(
        "--disk", type=float, default=10240.0, help="disk (MB) per agent (default 10240)"
    )
    parser.add_argument("--zk", metavar="HOST:PORT", help="register the master in this ZooKeeper")
    parser.add_argument(
        "--zk-path", default="/mesos", help="ZooKeeper path for master registration"
    )
    parser.add_argument("--port", type=int, default=5050, help="master port on 127.0.0.1 (0 = any)")
    parser.add_argument("--work-dir", type=Path, help="where sandboxes live (default: a temp dir)")
    parser.add_argument("--heartbeat-interval", type=float, default=15.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.agents < 0:
        print("--agents must be >= 0", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    banner = "=" * len(BANNER)
    print(f"{banner}\n{BANNER}\n{banner}", flush=True)
    specs = [
        AgentSpec(
            cpus=args.cpus,
            mem=args.mem,
            disk=args.disk,
            ports=[ports],
        )
        for ports in port_ranges(args.agents)
    ]
    cluster = LocalMesos(
        agents=specs,
        zk_hosts=args.zk,
        zk_path=args.zk_path,
        work_dir=args.work_dir,
        heartbeat_interval=args.heartbeat_interval,
        port=args.port,
    )
    # Before anything is printed: whoever reads the addresses may stop us at once.
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    cluster.start()
    print(f"master: {cluster.master_url}  (pymesos master: {cluster.master_address})", flush=True)
    if cluster.zk_url:
        print(f"zk:     {cluster.zk_url}", flush=True)
    for agent in cluster.agents:
        print(
            f"agent:  {agent.agent_id} {agent.hostname} executor API on {agent.endpoint}",
            flush=True,
        )
    stop.wait()
    cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
