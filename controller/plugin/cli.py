"""The `kubectl-cloudjob` command (`kubectl cloudjob ...`): parses the command line,
reads the history API or the Kubernetes API, prints tables or documents.

The entry point of the console script in pyproject.toml. Every decision about what
to show is in `views`, `tables` and `printing`; every request in `reading` and
`cluster`; this module wires them to the command line. Errors are printed as
`error: ...` and exit with 1 (kubectl's convention); a bad command line exits with 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from controller.plugin import views
from controller.plugin.answers import items_of, json_body, said
from controller.plugin.cluster import GROUP, PLURAL, Cluster, kubeconfig_path
from controller.plugin.errors import PluginError
from controller.plugin.locating import choose_service, parse_service
from controller.plugin.printing import FORMATS, dumped
from controller.plugin.reading import DirectReader, HistoryReader, ProxiedReader
from controller.plugin.tables import Table, render_all

TRIGGER_ANNOTATION = "cloudjob.io/trigger"
API_ENV = "CLOUDJOB_API"
SERVICE_ENV = "CLOUDJOB_SERVICE"
OUTCOMES = ("succeeded", "failed", "killed")
INTERVALS = ("minute", "hour", "day")
PAGE = 1000  # the most runs the API gives per request


def trigger_value(now: datetime) -> str:
    """A new value for the trigger annotation: the time, to the microsecond."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _common(parser: argparse.ArgumentParser) -> None:
    """Options accepted before and after the command (kubectl passes them through);
    SUPPRESS keeps a command's parser from overwriting what was given before it."""
    keep = argparse.SUPPRESS
    parser.add_argument("--kubeconfig", default=keep, help="kubeconfig file (default: KUBECONFIG)")
    parser.add_argument("--context", default=keep, help="the kubeconfig context to use")
    parser.add_argument(
        "-n", "--namespace", default=keep, help="namespace (default: the context's)"
    )
    parser.add_argument(
        "--server",
        default=keep,
        help=f"the history API's URL, e.g. http://127.0.0.1:8080 (default: ${API_ENV}; "
        "unset: through the API server's service proxy)",
    )
    parser.add_argument(
        "--service",
        default=keep,
        help="the controller's Service, [NAMESPACE/]NAME[:PORT] (default: "
        f"${SERVICE_ENV}, else the chart's Service with an 'api' port)",
    )
    parser.add_argument(
        "-o", "--output", default=keep, choices=[*FORMATS, "wide"], help="json, yaml or wide"
    )
    parser.add_argument(
        "--no-headers", action="store_true", default=keep, help="tables without headers"
    )
    parser.add_argument(
        "--request-timeout", type=float, default=keep, help="seconds per request (default 30)"
    )


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="kubectl cloudjob",
        description="Runs, queues and statistics of cloudjob-controller; trigger a run.",
    )
    _common(main)
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    runs = commands.add_parser("runs", help="a job's shard runs, newest first")
    runs.add_argument("job", nargs="?", help="the CloudJob (all jobs when left out)")
    runs.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    runs.add_argument("--outcome", choices=OUTCOMES, help="only runs that ended so")
    runs.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")

    trigger = commands.add_parser("trigger", help="run a job once now (the trigger annotation)")
    trigger.add_argument("job", help="the CloudJob")
    trigger.add_argument("--value", help="the annotation's value (default: the time now)")

    commands.add_parser("queue", help="the ready, running and failover queues")

    stats = commands.add_parser("stats", help="run results, running tasks, jobs")
    stats.add_argument(
        "--interval", choices=INTERVALS, help="instead: runs that ended per interval"
    )
    for command in (runs, trigger, commands.choices["queue"], stats):
        _common(command)
    return main


class Session:
    """The command line's choices, with the cluster and the history API opened on first
    use (a `--server` command never needs a kubeconfig)."""

    def __init__(self, args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
        self.args = args
        self.out = out
        self.err = err
        self.timeout: float = getattr(args, "request_timeout", 30.0)
        self.output: str | None = getattr(args, "output", None)
        self.headers = not getattr(args, "no_headers", False)
        self._cluster: Cluster | None = None

    def option(self, name: str) -> Any:
        return getattr(self.args, name, None)

    def cluster(self) -> Cluster:
        if self._cluster is None:
            self._cluster = Cluster(
                kubeconfig_path(self.option("kubeconfig")), self.option("context"), self.timeout
            )
        return self._cluster

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()

    def namespace(self) -> str:
        """-n, else the context's namespace; with --server and no usable kubeconfig,
        `default`."""
        given: str | None = self.option("namespace")
        if given:
            return given
        try:
            return self.cluster().namespace
        except PluginError:
            if self.server() is None:
                raise
            return "default"

    def server(self) -> str | None:
        given: str | None = self.option("server")
        return given or os.environ.get(API_ENV) or None

    def history(self) -> HistoryReader:
        server = self.server()
        if server is not None:
            return DirectReader(server, self.timeout)
        cluster = self.cluster()
        named = self.option("service") or os.environ.get(SERVICE_ENV)
        if named:
            service = parse_service(named, cluster.namespace)
        else:
            answer = cluster.controller_services()
            if answer.code != 200:
                raise PluginError(
                    f"cannot list Services to find the controller ({answer.code}: "
                    f"{said(answer.body)}). Name its Service with --service "
                    "NAMESPACE/NAME[:PORT]"
                )
            service = choose_service(items_of(answer.body))
        return ProxiedReader(cluster, service)

    def show(self, document: Any, tables: Sequence[Table], empty: str) -> None:
        if self.output in ("json", "yaml"):
            self.out.write(dumped(document, self.output))
            return
        text = render_all(tables, headers=self.headers)
        if text:
            self.out.write(text)
        else:
            self.err.write(empty + "\n")

    @property
    def wide(self) -> bool:
        return self.output == "wide"


def runs(session: Session) -> None:
    args = session.args
    if args.limit < 1:
        raise PluginError(f"--limit must be at least 1, not {args.limit}")
    if args.all_namespaces and args.job is not None:
        raise PluginError("a job cannot be named across all namespaces: leave out -A or JOB")
    everywhere = args.all_namespaces
    namespace = None if everywhere else session.namespace()
    history = session.history()
    found: list[dict[str, Any]] = []
    before: int | None = None
    while len(found) < args.limit:
        page = history.get(
            "/runs",
            {
                "namespace": namespace,
                "job": args.job,
                "outcome": args.outcome,
                "limit": min(PAGE, args.limit - len(found)),
                "before": before,
            },
        )
        found += page["items"]
        before = page["next"]
        if before is None:
            break
    if not found and args.job is not None:
        missing_job(session, namespace or "default", args.job)
    table = views.runs_table(found, datetime.now(UTC), wide=session.wide, with_job=args.job is None)
    if args.job is not None:
        empty = f"No runs of {namespace}/{args.job} yet."
    else:
        empty = "No runs found." if everywhere else f"No runs found in namespace {namespace}."
    session.show({"items": found}, [table], empty)


def missing_job(session: Session, namespace: str, name: str) -> None:
    """Raises when the job has no runs because there is no such CloudJob (when a cluster
    can be asked: with --server and no kubeconfig, no runs is just no runs)."""
    try:
        cluster = session.cluster()
    except PluginError:
        if session.server() is not None:
            return
        raise
    answer = cluster.request("GET", cluster.job_path(namespace, name))
    if answer.code == 404:
        raise PluginError(not_found(namespace, name))


def not_found(namespace: str, name: str) -> str:
    return f'{PLURAL}.{GROUP} "{name}" not found in namespace "{namespace}"'


def trigger(session: Session) -> None:
    args = session.args
    namespace = session.namespace()
    cluster = session.cluster()
    path = cluster.job_path(namespace, args.job)
    value = args.value or trigger_value(datetime.now(UTC))
    patch = {"metadata": {"annotations": {TRIGGER_ANNOTATION: value}}}
    answer = cluster.request("PATCH", path, patch)
    if answer.code == 404:
        raise PluginError(not_found(namespace, args.job))
    if answer.code != 200:
        raise PluginError(
            f"cannot annotate {PLURAL}.{GROUP}/{args.job} in namespace {namespace} "
            f"({answer.code}): {said(answer.body)}"
        )
    if session.output in ("json", "yaml"):
        session.out.write(dumped(json_body(answer.body, cluster.server + path), session.output))
        return
    session.out.write(
        f"{PLURAL}.{GROUP}/{args.job} triggered ({TRIGGER_ANNOTATION}={value}); "
        f"its runs: kubectl cloudjob runs {args.job} -n {namespace}\n"
    )


def queue(session: Session) -> None:
    given: str | None = session.option("namespace")
    queues = session.history().get("/queues")
    if given:
        queues = views.queues_in(queues, given)
    tables = views.queue_tables(queues, datetime.now(UTC), wide=session.wide)
    session.show(queues, tables, "No runs are queued or running.")


def stats(session: Session) -> None:
    interval = session.args.interval
    if interval is None:
        statistics = session.history().get("/statistics")
        session.show(statistics, views.statistics_tables(statistics), "No statistics.")
        return
    series = session.history().get("/statistics/results", {"interval": interval})
    session.show(series, [views.series_table(series)], f"No runs ended in the last 60 {interval}s.")


COMMANDS = {"runs": runs, "trigger": trigger, "queue": queue, "stats": stats}


def main(
    argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    args = parser().parse_args(argv)
    session = Session(args, out, err)
    try:
        COMMANDS[args.command](session)
    except PluginError as error:
        err.write(f"error: {error}\n")
        return 1
    finally:
        session.close()
    return 0
