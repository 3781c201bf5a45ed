"""`HistoryApi`: answers the `/api/v1/...` requests the health endpoint passes it.

Runs, transitions and statistics come from the history database; the queues and the
jobs and apps the scheduler holds (`catalog`) from ZooKeeper. Every answer is limited
to the API's `Scope` of namespaces (the console's setting), so that the console, which
reads this API from the browser, shows nothing outside it.

The health endpoint serves from its own threads (`controller.endpoints`); a request
for `/api/v1/...` is handed to `answer`, which runs the database read on the API's
own event loop (a thread of its own, with its own SQLAlchemy engine, so neither the
controller's loop nor kopf ever touches it). Any replica answers. The jobs, apps and
queues come from memory, never from a read of ZooKeeper per request: on the leader,
from a copy of its `StateStore`'s view (`leading`); on a standby, from a
`StateFollower` that follows the tree with watches through the replica's kazoo
client. Built and started by `controller.app.Controller`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from kazoo.client import KazooClient
from sqlalchemy.ext.asyncio import AsyncEngine

from controller.api import catalog
from controller.api.catalog import AppQuery, JobQuery, JobState, Listing, Scope
from controller.api.following import StateFollower
from controller.api.openapi import BASE, DOCUMENT
from controller.history import queries
from controller.history.database import open_engine
from controller.naming import split_key
from controller.operations import ReconcileKind, SchedulingError
from controller.state.errors import StateError
from controller.state.layout import Layout
from controller.state.view import View

Answer = tuple[int, dict[str, Any]]
T = TypeVar("T")
_OUTCOMES = ("succeeded", "failed", "killed")


class BadRequest(ValueError):
    """A query parameter that cannot be used."""


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}: '{value}' is not an RFC 3339 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _int(value: str | None, name: str, default: int | None) -> int | None:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{name}: '{value}' is not an integer") from None


def parse_filter(query: Mapping[str, str]) -> queries.Filter:
    outcome = query.get("outcome")
    if outcome is not None and outcome not in _OUTCOMES:
        raise BadRequest(f"outcome: '{outcome}' is none of {', '.join(_OUTCOMES)}")
    limit = _int(query.get("limit"), "limit", 100)
    assert limit is not None
    if not 1 <= limit <= queries.MAX_PAGE:
        raise BadRequest(f"limit: {limit} is not within 1 … {queries.MAX_PAGE}")
    return queries.Filter(
        namespace=query.get("namespace"),
        job=query.get("job"),
        task_id=query.get("task"),
        outcome=outcome,
        state=query.get("state"),
        since=_time(query.get("since"), "since"),
        until=_time(query.get("until"), "until"),
        before=_int(query.get("before"), "before", None),
        limit=limit,
    )


def _limit(query: Mapping[str, str]) -> int:
    limit = _int(query.get("limit"), "limit", 100)
    assert limit is not None
    if not 1 <= limit <= catalog.MAX_PAGE:
        raise BadRequest(f"limit: {limit} is not within 1 … {catalog.MAX_PAGE}")
    return limit


def parse_job_query(query: Mapping[str, str]) -> JobQuery:
    state = query.get("state")
    states = [s.value for s in JobState]
    if state is not None and state not in states:
        raise BadRequest(f"state: '{state}' is none of {', '.join(states)}")
    return JobQuery(
        namespace=query.get("namespace"),
        app=query.get("app"),
        job=query.get("job"),
        state=JobState(state) if state else None,
        after=query.get("after"),
        limit=_limit(query),
    )


def parse_app_query(query: Mapping[str, str]) -> AppQuery:
    return AppQuery(namespace=query.get("namespace"), after=query.get("after"), limit=_limit(query))


def parse_series(query: Mapping[str, str], now: datetime) -> tuple[str, datetime, datetime]:
    """interval, since, until of a results series; at most MAX_BUCKETS intervals."""
    interval = query.get("interval", "minute")
    if interval not in queries.INTERVALS:
        raise BadRequest(f"interval: '{interval}' is none of {', '.join(queries.INTERVALS)}")
    step = queries.INTERVALS[interval]
    until = _time(query.get("until"), "until") or now
    since = _time(query.get("since"), "since") or until - 60 * step
    if since >= until:
        raise BadRequest("since must be before until")
    if (until - since) / step > queries.MAX_BUCKETS:
        raise BadRequest(f"at most {queries.MAX_BUCKETS} {interval}s at a time")
    return interval, since, until


class HistoryApi:
    def __init__(
        self,
        *,
        database_url: str,
        timeout: float,
        zookeeper: Callable[[], KazooClient | None],
        layout: Layout,
        reconcile: Callable[[ReconcileKind, str | None], int],
        leading: Callable[[], View | None] = lambda: None,
        namespaces: Collection[str] = (),
    ) -> None:
        """`reconcile` asks the leader's scheduling core for a reconciliation (raises
        SchedulingError on a replica that does not lead); `leading` gives a copy of the
        leading store's view (None while the replica does not lead); `namespaces` are
        those every answer is limited to (none: all)."""
        self._scope = Scope(frozenset(namespaces))
        self._url = database_url
        self._timeout = timeout
        self._zookeeper = zookeeper
        self._layout = layout
        self._reconcile = reconcile
        self._leading = leading
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="history-api", daemon=True
        )
        self._engine: AsyncEngine | None = None
        self._follower_lock = threading.Lock()
        self._follower: StateFollower | None = None
        self._listing_lock = threading.Lock()
        self._last_listing: Listing | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._unfollow()
        if not self._thread.is_alive():
            return
        if self._engine is not None:
            asyncio.run_coroutine_threadsafe(self._engine.dispose(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def answer(self, method: str, path: str, query: Mapping[str, str]) -> Answer:
        """The status code and JSON body for a request of `path` (under /api/v1)."""
        route = path.removeprefix(BASE)
        if method == "POST":
            return self._post(route, path, query)
        try:
            match route:
                case "/openapi.json":
                    return 200, DOCUMENT
                case "/runs":
                    wanted = self._scoped(parse_filter(query))
                    page = self._read(lambda c: queries.run_page(c, wanted))
                    return 200, {"items": page.items, "next": page.next}
                case "/transitions":
                    wanted = self._scoped(parse_filter(query))
                    page = self._read(lambda c: queries.transition_page(c, wanted))
                    return 200, {"items": page.items, "next": page.next}
                case "/statistics":
                    now = datetime.now(UTC)
                    namespace = query.get("namespace")
                    within = self._scoped(queries.Filter(namespace=namespace))
                    results = self._read(lambda c: queries.results(c, now, within))
                    listing = self._listing(namespace)
                    return 200, {
                        "results": results,
                        "runningTasks": len(listing.view.by_task),
                        "jobs": listing.jobs,
                    }
                case "/statistics/results":
                    interval, since, until = parse_series(query, datetime.now(UTC))
                    within = self._scoped(
                        queries.Filter(namespace=query.get("namespace"), job=query.get("job"))
                    )
                    items = self._read(
                        lambda c: queries.result_series(c, interval, since, until, within)
                    )
                    return 200, {"interval": interval, "items": items}
                case "/queues":
                    return 200, self._listing(query.get("namespace")).queues
                case "/jobs":
                    jobs = parse_job_query(query)
                    listing = self._listing(None)
                    return 200, catalog.job_page(
                        listing.view, self._scope, jobs, datetime.now(UTC), listing.job_keys
                    )
                case "/apps":
                    apps = parse_app_query(query)
                    return 200, catalog.app_page(self._listing(None).view, self._scope, apps)
                case _:
                    return 404, {"error": f"no such endpoint {path}"}
        except BadRequest as error:
            return 400, {"error": str(error)}
        except (StateError, OSError, TimeoutError) as error:
            return 503, {"error": f"{type(error).__name__}: {error}"}
        except Exception as error:  # the database's errors: driver-specific types
            return 503, {"error": f"history database: {type(error).__name__}: {error}"[:500]}

    def _post(self, route: str, path: str, query: Mapping[str, str]) -> Answer:
        if route != "/reconcile":
            return 404, {"error": f"no such endpoint {path}"}
        text = query.get("kind", ReconcileKind.EXPLICIT.value)
        try:
            kind = ReconcileKind(text)
        except ValueError:
            return 400, {"error": f"kind: '{text}' is neither explicit nor implicit"}
        app = query.get("app")
        try:
            if app is not None and not self._scope.allows(split_key(app)[0]):
                return 403, {"error": f"app: '{app}' is outside the namespaces this API serves"}
            asked = self._reconcile(kind, app)
        except ValueError as error:
            return 400, {"error": f"app: {error}"}
        except SchedulingError as error:
            return 503, {"error": str(error)}
        return 200, {"kind": kind.value, "app": app, "tasks": asked}

    def _read(self, read: Callable[[Any], Awaitable[T]]) -> T:
        async def run() -> T:
            if self._engine is None:
                self._engine = open_engine(self._url, self._timeout)
            async with self._engine.connect() as connection:
                return await read(connection)

        if self._loop is None:
            raise StateError("the history API is not running")
        future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return future.result(3 * self._timeout)

    def _state(self) -> View:
        """The queues and definitions: the leader's own, or those the follower keeps."""
        view = self._leading()
        if view is not None:
            self._unfollow()
            return view
        client = self._zookeeper()
        if client is None or not client.connected:
            raise StateError("not connected to ZooKeeper")
        return self._follower_of(client).view(self._timeout)

    def _follower_of(self, client: KazooClient) -> StateFollower:
        """The follower of `client` (a new one when the replica's client changed)."""
        with self._follower_lock:
            if self._follower is not None and self._follower.client is not client:
                self._follower.close()
                self._follower = None
            if self._follower is None:
                self._follower = StateFollower(client, self._layout)
            return self._follower

    def _unfollow(self) -> None:
        """Stop following (the replica leads, or the API stops): its watches cost
        ZooKeeper a read per change."""
        with self._follower_lock:
            follower, self._follower = self._follower, None
        if follower is not None:
            follower.close()

    def _scoped(self, wanted: queries.Filter) -> queries.Filter:
        return replace(wanted, namespaces=self._scope.narrowed(wanted.namespace))

    def _listing(self, namespace: str | None) -> Listing:
        """The queues and definitions, of the scope (and `namespace`) only: the whole
        view's listing is kept while the view stays the same object."""
        view = self._state()
        with self._listing_lock:
            if self._last_listing is None or self._last_listing.view is not view:
                self._last_listing = Listing(view)
            listing = self._last_listing
        namespaces = self._scope.narrowed(namespace)
        if namespaces is None:
            return listing
        scope = Scope(frozenset(namespaces))
        return Listing(catalog.scoped_view(view, scope) if namespaces else View())
