"""Rebuilding the in-memory `View` from ZooKeeper, and finding what to drop.

`read_view` fetches the whole tree in four pipelined round trips (whatever the
number of jobs); `build_view` (pure) decodes it. Entries that belong to no stored
job — ready, running and failover entries, trigger tokens, last fires handled,
disabled-job flags, and disabled-app flags of absent apps — are returned as `stale`
paths (children before parents) for the store to delete; ready entries of disabled
jobs are stale too, since a disabled job never holds pending runs, and so are failover
entries of shards beyond the job's sharding count. Config nodes that do not decode are
reported as `ignored` and left alone. Used by `StateStore.load` and after a refused
transaction; `build_view` also by the history API's `StateFollower`, over the nodes its
watches keep (with definitions decoded once per version, through `decode_app` /
`decode_job`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from controller.definitions import AppDefinition, JobDefinition
from controller.state.gateway import StateGateway
from controller.state.layout import Layout, parse_meta_info
from controller.state.records import (
    FailoverEntry,
    ReadyEntry,
    RecordError,
    RunningTask,
    decode_fired,
    decode_trigger,
)
from controller.state.view import View

log = logging.getLogger(__name__)

Nodes = Mapping[str, tuple[bytes, int]]
_D = TypeVar("_D", AppDefinition, JobDefinition)
Children = Mapping[str, Collection[str]]


@dataclass
class Loaded:
    view: View
    stale: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def read_view(
    zk: StateGateway, layout: Layout, loaded_at: datetime, *, create: bool = True
) -> Loaded:
    """Fetch and decode everything below the namespace, creating missing containers
    unless `create` is False (a reader that must write nothing: the history API)."""
    if create:
        zk.ensure_paths(layout.containers())
    roots = zk.children_many(
        [
            layout.apps,
            layout.jobs,
            layout.ready_root,
            layout.running_root,
            layout.failover_root,
            layout.trigger_root,
            layout.fired_root,
            layout.disabled_jobs,
            layout.disabled_apps,
        ]
    )
    data = zk.get_many(
        [layout.app(k) for k in roots.get(layout.apps, [])]
        + [layout.job(k) for k in roots.get(layout.jobs, [])]
        + [layout.ready(k) for k in roots.get(layout.ready_root, [])]
        + [layout.trigger(k) for k in roots.get(layout.trigger_root, [])]
        + [layout.fired(k) for k in roots.get(layout.fired_root, [])]
        + [layout.framework_id]
    )
    parents = [layout.running_job(k) for k in roots.get(layout.running_root, [])] + [
        layout.failover_job(k) for k in roots.get(layout.failover_root, [])
    ]
    kids = zk.children_many(parents)
    leaves = zk.get_many(f"{p}/{c}" for p in parents for c in kids.get(p, []))
    return build_view(layout, roots, data, kids, leaves, loaded_at)


def build_view(
    layout: Layout,
    roots: Children,
    data: Nodes,
    kids: Children,
    leaves: Nodes,
    loaded_at: datetime,
    *,
    decode_app: Callable[[bytes], AppDefinition] = AppDefinition.decode,
    decode_job: Callable[[bytes], JobDefinition] = JobDefinition.decode,
) -> Loaded:
    """Decode fetched nodes into a view; `loaded_at` dates running nodes written
    without a launch time (the original's bare task ids)."""
    loaded = Loaded(View())
    view = loaded.view
    for key in roots.get(layout.apps, []):
        if (app := _definition(loaded, layout.app(key), data, decode_app)) is not None:
            view.apps[key] = app
    for key in roots.get(layout.jobs, []):
        if (job := _definition(loaded, layout.job(key), data, decode_job)) is not None:
            view.put_job(job)
    if (fid := data.get(layout.framework_id)) is not None and fid[0].strip():
        view.framework_id = fid[0].decode().strip()
    for key in roots.get(layout.disabled_jobs, []):
        if key in view.jobs:
            view.disabled_jobs.add(key)
        else:
            loaded.stale.append(layout.disabled_job(key))
    for key in roots.get(layout.disabled_apps, []):
        if key in view.apps:
            view.disabled_apps.add(key)
        else:
            loaded.stale.append(layout.disabled_app(key))
    for key in roots.get(layout.ready_root, []):
        _ready(loaded, layout, key, data.get(layout.ready(key)))
    for key in roots.get(layout.trigger_root, []):
        _trigger(loaded, layout, key, data.get(layout.trigger(key)))
    for key in roots.get(layout.fired_root, []):
        _fired(loaded, layout, key, data.get(layout.fired(key)))
    for key in roots.get(layout.running_root, []):
        _children(
            loaded,
            key,
            layout.running_job(key),
            kids,
            leaves,
            view.running_parents,
            lambda raw, job, shard: view.index_running(
                RunningTask.decode(raw, job, shard, loaded_at)
            ),
        )
    for key in roots.get(layout.failover_root, []):
        _children(
            loaded,
            key,
            layout.failover_job(key),
            kids,
            leaves,
            view.failover_parents,
            lambda raw, job, shard: _failover(view, raw, job, shard),
        )
    return loaded


def _failover(view: View, raw: bytes, job_key: str, shard: int) -> None:
    count = view.jobs[job_key].spec.sharding_total_count
    if shard >= count:
        # the job's sharding count went down since this shard failed
        raise RecordError(f"shard {shard} is beyond the job's {count} shards")
    view.failover.setdefault(job_key, {})[shard] = FailoverEntry.decode(raw, job_key, shard)


def _definition(loaded: Loaded, path: str, data: Nodes, decode: Callable[[bytes], _D]) -> _D | None:
    if (node := data.get(path)) is None:
        return None
    try:
        return decode(node[0])
    except ValueError as exc:
        loaded.ignored.append(path)
        log.warning("ignoring %s: not a definition this controller reads (%s)", path, exc)
        return None


def _ready(loaded: Loaded, layout: Layout, key: str, node: tuple[bytes, int] | None) -> None:
    if node is None:
        return
    view, path = loaded.view, layout.ready(key)
    job = view.jobs.get(key)
    try:
        entry = ReadyEntry.decode(node[0])
    except RecordError as exc:
        log.warning("dropping %s: %s", path, exc)
        loaded.stale.append(path)
        return
    if job is None or view.is_disabled(job):
        loaded.stale.append(path)
        return
    view.ready[key] = (entry, node[1])


def _trigger(loaded: Loaded, layout: Layout, key: str, node: tuple[bytes, int] | None) -> None:
    if node is None:
        return
    path = layout.trigger(key)
    if key not in loaded.view.jobs:
        loaded.stale.append(path)
        return
    try:
        loaded.view.triggers[key] = (decode_trigger(node[0]), node[1])
    except RecordError as exc:
        log.warning("dropping %s: %s", path, exc)
        loaded.stale.append(path)


def _fired(loaded: Loaded, layout: Layout, key: str, node: tuple[bytes, int] | None) -> None:
    if node is None:
        return
    path = layout.fired(key)
    if key not in loaded.view.jobs:
        loaded.stale.append(path)
        return
    try:
        loaded.view.fired[key] = decode_fired(node[0])
    except RecordError as exc:
        log.warning("dropping %s: %s", path, exc)
        loaded.stale.append(path)


def _children(
    loaded: Loaded,
    key: str,
    parent: str,
    kids: Children,
    leaves: Nodes,
    parents: set[str],
    record: Callable[[bytes, str, int], None],
) -> None:
    kept = 0
    for child in kids.get(parent, []):
        path = f"{parent}/{child}"
        if (node := leaves.get(path)) is None:
            continue
        try:
            job, shard = parse_meta_info(child)
            if job != key or key not in loaded.view.jobs:
                raise RecordError(f"no stored job for {child}")
            record(node[0], job, shard)
            kept += 1
        except (RecordError, ValueError) as exc:
            log.info("dropping %s: %s", path, exc)
            loaded.stale.append(path)
    if kept:
        parents.add(key)
    elif parent in kids:
        loaded.stale.append(parent)
