"""`StateFollower`: ZooKeeper's state tree as a standby's history API reads it, kept
current by watches instead of being read again for each request.

Two kazoo `TreeCache`s follow `config/` and `state/` below the namespace: every node
there is watched, so a change costs ZooKeeper one read of the node that changed, and
nothing is read on a request. The caches' events are mirrored into two plain maps
(path → data and version, parent → children), which have the shape
`loading.build_view` decodes; the view is rebuilt from them, in memory, by the first
request after a change, with each definition decoded once per version (`Decoded`).
Requests between two changes share one view, which nobody mutates.

The follower writes nothing: it starts only once the leader has created both roots
(until then the tree is empty, and the API says so). After its session was lost, it
answers again once the caches have re-read the tree. Built, used and closed by
`controller.api.server.HistoryApi`, one per kazoo client, while the replica does not
lead (a leader answers from its `StateStore`'s memory).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Generic, TypeVar

from kazoo.client import KazooClient
from kazoo.recipe.cache import TreeCache, TreeEvent

from controller.definitions import AppDefinition, JobDefinition
from controller.state.errors import StateUnavailable
from controller.state.layout import Layout
from controller.state.loading import build_view
from controller.state.view import View

D = TypeVar("D", AppDefinition, JobDefinition)


class Decoded(Generic[D]):
    """`decode` remembered by the bytes it was given, for one rebuild to the next:
    what a rebuild did not ask for is forgotten by `settle`."""

    def __init__(self, decode: Callable[[bytes], D]) -> None:
        self._decode: Callable[[bytes], D] = decode
        self._known: dict[bytes, D] = {}
        self._used: dict[bytes, D] = {}
        self.decoded = 0
        """how many times `decode` ran (what the memo did not spare)"""

    def __call__(self, raw: bytes) -> D:
        found = self._used.get(raw)
        if found is None:
            found = self._known.get(raw)
            if found is None:
                found = self._decode(raw)
                self.decoded += 1
            self._used[raw] = found
        return found

    def settle(self) -> None:
        self._known, self._used = self._used, {}


class StateFollower:
    """See the module docstring."""

    def __init__(self, client: KazooClient, layout: Layout) -> None:
        self.client = client
        self._layout = layout
        self._roots = (layout.config_root, layout.state_root)
        self._lock = threading.Lock()
        self._caches: list[TreeCache] = []
        self._initialized = {root: threading.Event() for root in self._roots}
        self._nodes: dict[str, tuple[bytes, int]] = {}
        self._children: dict[str, dict[str, None]] = {}
        self._generation = 0
        self._built: tuple[int, View] | None = None
        self._apps = Decoded(AppDefinition.decode)
        self._jobs = Decoded(JobDefinition.decode)
        self.builds = 0
        """views built so far (one per batch of changes a request saw)"""

    def view(self, timeout: float) -> View:
        """The tree as the watches last told it; waits up to `timeout` for the first
        read (or the re-read after a lost session) to complete."""
        if not self._started():
            return View()
        for root, initialized in self._initialized.items():
            if not initialized.wait(timeout):
                raise StateUnavailable(f"still reading {root} from ZooKeeper")
        with self._lock:
            if self._built is None or self._built[0] != self._generation:
                loaded = build_view(
                    self._layout,
                    self._children,
                    self._nodes,
                    self._children,
                    self._nodes,
                    datetime.now(UTC),
                    decode_app=self._apps,
                    decode_job=self._jobs,
                )
                self._apps.settle()
                self._jobs.settle()
                self._built = (self._generation, loaded.view)
                self.builds += 1
            return self._built[1]

    def close(self) -> None:
        with self._lock:
            caches, self._caches = self._caches, []
        for cache in caches:
            cache.close()

    def _started(self) -> bool:
        with self._lock:
            if self._caches:
                return True
            # TreeCache creates a missing root: start only once the leader made both
            if any(self.client.exists(root) is None for root in self._roots):
                return False
            for root in self._roots:
                cache = TreeCache(self.client, root)
                cache.listen(self._follower_of(root))
                self._caches.append(cache)
                cache.start()
            return True

    def _follower_of(self, root: str) -> Callable[[TreeEvent], None]:
        initialized = self._initialized[root]

        def follow(event: TreeEvent) -> None:
            kind = event.event_type
            if kind == TreeEvent.INITIALIZED:
                initialized.set()
            elif kind == TreeEvent.CONNECTION_LOST:
                initialized.clear()
            elif kind in (TreeEvent.NODE_ADDED, TreeEvent.NODE_UPDATED):
                path, data, stat = event.event_data
                parent, _, name = path.rpartition("/")
                with self._lock:
                    self._nodes[path] = (data, stat.version)
                    self._children.setdefault(parent, {})[name] = None
                    self._generation += 1
            elif kind == TreeEvent.NODE_REMOVED:
                path = event.event_data.path
                parent, _, name = path.rpartition("/")
                with self._lock:
                    self._nodes.pop(path, None)
                    siblings = self._children.get(parent)
                    if siblings is not None:
                        siblings.pop(name, None)
                        if not siblings:
                            del self._children[parent]
                    self._generation += 1

        return follow
