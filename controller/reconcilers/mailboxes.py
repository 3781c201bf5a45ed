"""Per-object coordination for one leadership term: locks and re-apply requests.

The kopf handlers of one object, the status refresher and the app handlers that touch
the app's jobs share these through the term's `Reconciliation`:
- `lock` serialises every reconciliation of one key, so a delete never interleaves
  with a schedule or a status refresh of the same job;
- a re-apply request makes the object's next refresh apply its desired state to the
  scheduling core again (its app changed, or the drift sweep came by).

Keys are opaque strings (the reconcilers use `CloudJob/<key>` and `CloudApp/<key>`).
Everything here lives on the operator's event loop; nothing is shared across terms.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Mailboxes:
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _reapply: set[str] = field(default_factory=set)

    def lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def request_reapply(self, key: str) -> None:
        """Something `key` depends on changed: its next refresh re-applies it."""
        self._reapply.add(key)

    def take_reapply(self, key: str) -> bool:
        if key in self._reapply:
            self._reapply.discard(key)
            return True
        return False

    def forget(self, key: str) -> None:
        """Drop what is kept for an object that is gone (its lock stays: it may be held)."""
        self._reapply.discard(key)
