"""`python -m devcluster.campaign`: run seeded fault trials over the local stack and
print the table (docs/campaign.md). Trial n runs seed S + n; `--seed S --trials 1`
replays one trial. Ctrl-C stops the running trial and every process it started.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from devcluster.campaign.checker import Rules, Verdict
from devcluster.campaign.evidence import FILE, judge, load
from devcluster.campaign.faults import Kind
from devcluster.campaign.ledger import LEDGER, read_ledger
from devcluster.campaign.report import TrialResult, details, table
from devcluster.campaign.trial import TrialSettings, run_trial
from devcluster.kube import ControlPlane, KubeUnavailable
from devcluster.zookeeper import ZooKeeperUnavailable


def recheck(work_dirs: list[Path], rules: Rules) -> list[TrialResult]:
    """The saved trials of campaigns' work directories, judged again, by seed."""
    results = []
    saved = sorted(
        (path for work_dir in work_dirs for path in work_dir.glob(f"trial-*/{FILE}")),
        key=lambda path: load(path.parent).seed,
    )
    for number, path in enumerate(saved, start=1):
        evidence = load(path.parent)
        verdict, notes = judge(evidence, read_ledger(path.parent / LEDGER), rules)
        results.append(TrialResult(number, evidence.seed, evidence.faults, verdict, notes))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devcluster.campaign",
        description="Seeded fault trials over ZooKeeper, the local Mesos, the Kubernetes API "
        "server and two controller replicas; prints a table of runs lost and doubled.",
    )
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1, help="seed of the first trial")
    parser.add_argument("--duration", type=float, default=60.0, help="fault phase (s)")
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument(
        "--faults",
        default=",".join(Kind),
        help="comma-separated fault kinds to draw from (default: all)",
    )
    parser.add_argument(
        "--catch-up-deadline",
        type=float,
        help="fires missed while no replica led must still run if a leader came back "
        "within this many seconds of them (default: each job's starting deadline, as the "
        "controller catches up; 0: such fires may be lost)",
    )
    parser.add_argument("--work-dir", type=Path, help="where logs and ledgers go")
    parser.add_argument(
        "--recheck",
        type=Path,
        nargs="+",
        metavar="WORK_DIR",
        help="run nothing: judge the trials saved in these work directories again with "
        "the current checker",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(message)s")
    logging.getLogger("kazoo.client").setLevel(logging.CRITICAL)
    try:
        kinds = [Kind(name) for name in args.faults.split(",") if name]
    except ValueError as error:
        parser.error(str(error))
    rules = Rules(catch_up_deadline=args.catch_up_deadline)
    if args.recheck is not None:
        rechecked = recheck(args.recheck, rules)
        print(table(rechecked))
        return 0 if rechecked and all(result.clean for result in rechecked) else 1
    settings = TrialSettings(duration=args.duration, agents=args.agents, kinds=kinds, rules=rules)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="cloudjob-campaign-"))
    print(f"work directory: {work_dir}", flush=True)
    results: list[TrialResult] = []
    try:
        with ControlPlane(work_dir / "kube") as api:
            api.install_crds()
            for number in range(1, args.trials + 1):
                seed = args.seed + number - 1
                try:
                    result = run_trial(
                        number,
                        seed,
                        api=api,
                        work_dir=work_dir / f"trial-{seed}",
                        settings=settings,
                        say=lambda line: print(line, flush=True),
                    )
                except (TimeoutError, ZooKeeperUnavailable, KubeUnavailable, OSError) as error:
                    # The stack could not be set up or act: the trial is void, not clean.
                    result = TrialResult(number, seed, (), Verdict(), [f"trial void: {error}"])
                results.append(result)
                for line in details(result):
                    print(f"  finding: {line}", flush=True)
                print(table([result]).splitlines()[-1], flush=True)
    except KeyboardInterrupt:
        print("interrupted; every process stopped", file=sys.stderr)
        print(table(results))
        return 130
    except (ZooKeeperUnavailable, KubeUnavailable) as error:
        print(f"campaign: {error}", file=sys.stderr)
        return 2
    print(table(results))
    return 0 if results and all(result.clean for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
