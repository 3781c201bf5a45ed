"""Where the plugin finds the history API, what it says when a request fails, and its
command line (controller/plugin/locating.py, answers.py, cli.py) — pure parts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from controller.plugin.answers import items_of, json_body, proxy_failure, said
from controller.plugin.cli import TRIGGER_ANNOTATION, parser, trigger_value
from controller.plugin.cluster import GROUP, PLURAL, VERSION
from controller.plugin.errors import PluginError
from controller.plugin.locating import ServiceRef, api_path, choose_service, parse_service
from controller.reconcilers.jobs import TRIGGER_ANNOTATION as CONTROLLERS_ANNOTATION
from controller.resources import GROUP as CONTROLLERS_GROUP
from controller.resources import VERSION as CONTROLLERS_VERSION

pytestmark = pytest.mark.unit


def test_the_plugin_names_the_resource_and_annotation_the_controller_uses() -> None:
    # The plugin does not import the controller's runtime; these must still agree.
    assert (GROUP, VERSION, PLURAL) == (CONTROLLERS_GROUP, CONTROLLERS_VERSION, "cloudjobs")
    assert TRIGGER_ANNOTATION == CONTROLLERS_ANNOTATION


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("ctl", ServiceRef("here", "ctl", "api")),
        ("ops/ctl", ServiceRef("ops", "ctl", "api")),
        ("ops/ctl:8080", ServiceRef("ops", "ctl", "8080")),
        ("ctl:http", ServiceRef("here", "ctl", "http")),
    ],
)
def test_a_named_service_defaults_to_the_current_namespace_and_the_api_port(
    text: str, found: ServiceRef
) -> None:
    assert parse_service(text, "here") == found


@pytest.mark.parametrize("text", ["", "/ctl", "ops/", "a/b/c", "ctl:a:b", "ops/:api"])
def test_a_malformed_service_is_refused(text: str) -> None:
    with pytest.raises(PluginError, match=r"is not \[NAMESPACE/\]NAME\[:PORT\]"):
        parse_service(text, "here")


def test_the_proxy_path_goes_through_the_api_server_to_the_named_port() -> None:
    assert ServiceRef("ops", "cj-cloudjob-controller-metrics").proxy_path == (
        "/api/v1/namespaces/ops/services/cj-cloudjob-controller-metrics:api/proxy"
    )


def service(namespace: str, name: str, *ports: str) -> dict[str, object]:
    return {
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"ports": [{"name": p, "port": 1} for p in ports]},
    }


def test_the_one_chart_service_with_an_api_port_is_chosen() -> None:
    services = [service("ops", "old", "metrics"), service("ops", "cj", "metrics", "api")]
    assert choose_service(services) == ServiceRef("ops", "cj")


def test_no_or_several_chart_services_are_told_with_what_to_do() -> None:
    with pytest.raises(PluginError, match=r"--service NAMESPACE/NAME.*--server"):
        choose_service([service("ops", "old", "metrics")])
    with pytest.raises(PluginError, match=r"several .*: a/x:api, b/y:api; choose one with"):
        choose_service([service("a", "x", "api"), service("b", "y", "api")])


def test_api_paths_leave_out_unset_parameters_and_encode_the_rest() -> None:
    assert api_path("/queues") == "/api/v1/queues"
    query = {"namespace": "default", "job": "a b", "outcome": None, "limit": 5}
    assert api_path("/runs", query) == "/api/v1/runs?namespace=default&job=a+b&limit=5"


def test_error_answers_are_read_from_the_api_the_api_server_or_plain_text() -> None:
    assert said(b'{"error": "limit: 0 is not within 1 \\u2026 1000"}') == (
        "limit: 0 is not within 1 … 1000"
    )
    assert said(b'{"kind": "Status", "message": "nope"}') == "nope"
    assert said(b"upstream connect error") == "upstream connect error"
    assert said(b"") == "(no message)"


def status(code: int, message: str) -> bytes:
    return json.dumps({"kind": "Status", "code": code, "message": message}).encode()


def test_proxy_failures_say_what_to_do() -> None:
    svc, url = "ops/cj:api", "https://k8s/api/v1/namespaces/ops/services/cj:api/proxy/api/v1/x"
    down = proxy_failure(503, status(503, 'no endpoints available for service "cj"'), svc, url)
    assert down.startswith("no controller answers behind the Service ops/cj:api (no endpoints")
    assert "kubectl -n ops get service cj; kubectl -n ops get pods,endpointslices" in down
    forbidden = proxy_failure(403, status(403, "forbidden"), svc, url)
    assert "'get' on services/proxy in namespace ops" in forbidden
    assert "--service" in proxy_failure(404, status(404, 'services "cj" not found'), svc, url)
    ours = proxy_failure(503, b'{"error": "not connected to ZooKeeper"}', svc, url)
    assert ours == f"the history API ({url}) answered 503: not connected to ZooKeeper"


def test_bodies_that_are_not_json_are_told() -> None:
    assert items_of(b'{"items": [{"a": 1}]}') == [{"a": 1}]
    with pytest.raises(PluginError, match="http://x did not answer JSON"):
        json_body(b"<html>", "http://x")


def test_a_trigger_value_is_the_time_in_utc_to_the_microsecond() -> None:
    moment = datetime(2026, 3, 1, 13, 0, 5, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert trigger_value(moment) == "2026-03-01T12:00:05.123456Z"
    assert trigger_value(datetime(2026, 3, 1, tzinfo=UTC)) == "2026-03-01T00:00:00.000000Z"


def test_common_options_are_taken_before_or_after_the_command() -> None:
    before = parser().parse_args(["-n", "team", "--server", "http://x", "runs", "report"])
    after = parser().parse_args(["runs", "report", "-n", "team", "--server", "http://x"])
    for args in (before, after):
        assert (args.namespace, args.server, args.job) == ("team", "http://x", "report")
    assert not hasattr(parser().parse_args(["queue"]), "namespace")


def test_runs_options() -> None:
    args = parser().parse_args(["runs", "r", "--outcome", "failed", "--limit", "5", "-o", "wide"])
    assert (args.outcome, args.limit, args.output) == ("failed", 5, "wide")
    with pytest.raises(SystemExit):
        parser().parse_args(["runs", "r", "--outcome", "lost"])
