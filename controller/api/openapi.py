"""The OpenAPI 3.1 document of the history API, served at /api/v1/openapi.json.

A test validates the document and checks real responses against its schemas.
"""

from __future__ import annotations

from typing import Any

VERSION = "v1"
BASE = f"/api/{VERSION}"


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


_TIME = {"type": "string", "format": "date-time"}
_NTIME = _nullable("string", format="date-time")
_STATES = ["Disabled", "Running", "Pending", "Scheduled"]
_COUNTS = {
    "type": "object",
    "required": ["succeeded", "failed", "killed"],
    "properties": {k: {"type": "integer", "minimum": 0} for k in ("succeeded", "failed", "killed")},
    "additionalProperties": False,
}


def _page(item: str, cursor: str = "integer") -> dict[str, Any]:
    after = "before" if cursor == "integer" else "after"
    return {
        "type": "object",
        "required": ["items", "next"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
            "next": {
                **_nullable(cursor),
                "description": f"pass as `{after}` for the next page; null: no more",
            },
        },
        "additionalProperties": False,
    }


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": False,
    }


SCHEMAS: dict[str, Any] = {
    "Run": _object(
        {
            "id": {"type": "integer"},
            "namespace": {"type": "string"},
            "job": {"type": "string"},
            "shard": {"type": "integer", "minimum": 0},
            "taskId": {"type": "string"},
            "source": {"type": "string", "enum": ["READY", "FAILOVER"]},
            "agentId": {"type": "string"},
            "hostname": {"type": "string"},
            "executorId": _nullable("string"),
            "fireTime": _NTIME,
            "startedAt": _TIME,
            "endedAt": _NTIME,
            "outcome": {"enum": ["succeeded", "failed", "killed", None]},
            "state": _nullable("string"),
            "message": _nullable("string"),
            "exitStatus": _nullable("integer"),
            "stderrTail": _nullable("string"),
            "sandbox": _nullable("string"),
        }
    ),
    "Transition": _object(
        {
            "id": {"type": "integer"},
            "namespace": {"type": "string"},
            "job": {"type": "string"},
            "shard": {"type": "integer", "minimum": 0},
            "taskId": {"type": "string"},
            "state": {"type": "string"},
            "at": _TIME,
            "source": _nullable("string"),
            "reason": _nullable("string"),
            "message": _nullable("string"),
            "agentId": _nullable("string"),
            "hostname": _nullable("string"),
        }
    ),
    "Job": _object(
        {
            "namespace": {"type": "string"},
            "name": {"type": "string"},
            "app": {"type": "string"},
            "kind": {"enum": ["script", "python", "dataflow"]},
            "executionType": {"enum": ["TRANSIENT", "DAEMON"]},
            "cron": {"type": "string"},
            "timeZone": {"type": "string"},
            "shards": {"type": "integer", "minimum": 1},
            "cpuCount": {"type": "number"},
            "memoryMB": {"type": "number"},
            "failover": {"type": "boolean"},
            "misfire": {"type": "boolean"},
            "description": {"type": "string"},
            "state": {
                "enum": _STATES,
                "description": "the scheduler's: disabled (the job or its app), a shard "
                "launched or running, runs pending, or waiting for its next fire",
            },
            "runningShards": {"type": "integer", "minimum": 0},
            "pendingRuns": {"type": "integer", "minimum": 0},
            "failoverShards": {"type": "array", "items": {"type": "integer"}},
            "nextFires": {"type": "array", "items": _TIME, "maxItems": 3},
        }
    ),
    "App": _object(
        {
            "namespace": {"type": "string"},
            "name": {"type": "string"},
            "appURL": {"type": "string"},
            "bootstrapScript": {"type": "string"},
            "cpuCount": {"type": "number"},
            "memoryMB": {"type": "number"},
            "disabled": {"type": "boolean"},
            "jobs": {"type": "integer", "minimum": 0},
        }
    ),
    "JobPage": _page("Job", "string"),
    "AppPage": _page("App", "string"),
    "RunPage": _page("Run"),
    "TransitionPage": _page("Transition"),
    "Statistics": _object(
        {
            "results": _object({w: _COUNTS for w in ("lastMinute", "lastHour", "lastDay")}),
            "runningTasks": {"type": "integer", "minimum": 0},
            "jobs": _object(
                {
                    "total": {"type": "integer", "minimum": 0},
                    "byExecutionType": {
                        "type": "object",
                        "additionalProperties": {"type": "integer"},
                    },
                    "byKind": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "byState": {
                        "type": "object",
                        "propertyNames": {"enum": _STATES},
                        "additionalProperties": {"type": "integer"},
                    },
                }
            ),
        }
    ),
    "Queues": _object(
        {
            "ready": {
                "type": "array",
                "items": _object(
                    {
                        "namespace": {"type": "string"},
                        "job": {"type": "string"},
                        "runs": {"type": "integer", "minimum": 1},
                        "fireTimes": {"type": "array", "items": _TIME},
                    }
                ),
            },
            "running": {
                "type": "array",
                "items": _object(
                    {
                        "namespace": {"type": "string"},
                        "job": {"type": "string"},
                        "shard": {"type": "integer"},
                        "taskId": {"type": "string"},
                        "agentId": {"type": "string"},
                        "hostname": {"type": "string"},
                        "state": {"type": "string"},
                        "launchedAt": _TIME,
                        "fireTime": _NTIME,
                    }
                ),
            },
            "failover": {
                "type": "array",
                "items": _object(
                    {
                        "namespace": {"type": "string"},
                        "job": {"type": "string"},
                        "shard": {"type": "integer"},
                        "taskId": {"type": "string"},
                        "fireTime": _NTIME,
                    }
                ),
            },
        }
    ),
    "ResultSeries": _object(
        {
            "interval": {"enum": ["minute", "hour", "day"]},
            "items": {
                "type": "array",
                "items": _object(
                    {
                        "start": _TIME,
                        **{
                            k: {"type": "integer", "minimum": 0}
                            for k in ("succeeded", "failed", "killed")
                        },
                    }
                ),
            },
        }
    ),
    "Reconciled": _object(
        {
            "kind": {"enum": ["explicit", "implicit"]},
            "app": _nullable("string"),
            "tasks": {"type": "integer", "minimum": 0, "description": "tasks asked about"},
        }
    ),
    "Error": _object({"error": {"type": "string"}}),
}


def _parameter(name: str, description: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": kind, **extra},
    }


_LIMIT = _parameter("limit", "items per page (at most 1000)", "integer", minimum=1, maximum=1000)
_FILTERS = [
    _parameter("namespace", "only this namespace"),
    _parameter("job", "only this job: its name (with namespace) or <namespace>.<name>"),
    _parameter("task", "only this Mesos task id"),
    _parameter("since", "from this time on (RFC 3339)", format="date-time"),
    _parameter("until", "before this time (RFC 3339)", format="date-time"),
    _parameter("before", "the `next` of the previous page", "integer"),
    _LIMIT,
]


def _get(summary: str, schema: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": parameters,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
                    },
                },
                "400": {
                    "description": "a parameter is malformed",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
                "503": {
                    "description": "the database or ZooKeeper cannot be read now",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
    }


def _reconcile() -> dict[str, Any]:
    operation = _get(
        "reconcile with the Mesos master now (the leader only): explicit asks about the "
        "tasks recorded as running (of one app, or all), implicit about every task the "
        "master knows",
        "Reconciled",
        [
            _parameter("kind", "explicit (default) or implicit", enum=["explicit", "implicit"]),
            _parameter("app", "explicit only: the tasks of this app (<namespace>.<name>)"),
        ],
    )["get"]
    operation["responses"]["503"]["description"] = "this replica does not lead, or no master"
    operation["responses"]["403"] = {
        "description": "the app is outside the namespaces this API serves",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    return dict(operation)


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "cloudjob-controller history API",
        "version": VERSION,
        "description": "Read-only: the run history, statistics, the scheduling queues and "
        "the jobs and apps the scheduler holds, limited to the namespaces it is set to serve.",
    },
    "paths": {
        f"{BASE}/runs": _get(
            "runs of shards, newest first",
            "RunPage",
            [
                *_FILTERS,
                _parameter(
                    "outcome", "only runs that ended so", enum=["succeeded", "failed", "killed"]
                ),
            ],
        ),
        f"{BASE}/transitions": _get(
            "task state transitions, newest first",
            "TransitionPage",
            [*_FILTERS, _parameter("state", "only this task state, e.g. TASK_FAILED")],
        ),
        f"{BASE}/statistics": _get(
            "run results of the last minute, hour and day; running tasks; jobs by type",
            "Statistics",
            [_parameter("namespace", "only this namespace")],
        ),
        f"{BASE}/statistics/results": _get(
            "runs that ended per minute, hour or day, by outcome (intervals without runs "
            "are left out)",
            "ResultSeries",
            [
                _parameter(
                    "interval", "minute (default), hour or day", enum=["minute", "hour", "day"]
                ),
                _parameter(
                    "since", "from (default: 60 intervals before until)", format="date-time"
                ),
                _parameter("until", "to (default: now)", format="date-time"),
                _parameter("namespace", "only runs of this namespace"),
                _parameter("job", "only runs of this job: its name (with namespace) or key"),
            ],
        ),
        f"{BASE}/queues": _get(
            "the ready, running and failover queues",
            "Queues",
            [_parameter("namespace", "only this namespace")],
        ),
        f"{BASE}/jobs": _get(
            "the jobs the scheduler holds, by key (<namespace>.<name>), with their state "
            "and next fires",
            "JobPage",
            [
                _parameter("namespace", "only this namespace"),
                _parameter("app", "only the jobs of this app (its name)"),
                _parameter("job", "only this job: its name or <namespace>.<name>"),
                _parameter("state", "only jobs in this state", enum=_STATES),
                _parameter("after", "the `next` of the previous page"),
                _LIMIT,
            ],
        ),
        f"{BASE}/apps": _get(
            "the apps the scheduler holds, by key, with their number of jobs",
            "AppPage",
            [
                _parameter("namespace", "only this namespace"),
                _parameter("after", "the `next` of the previous page"),
                _LIMIT,
            ],
        ),
        f"{BASE}/reconcile": {"post": _reconcile()},
    },
    "components": {"schemas": SCHEMAS},
}
