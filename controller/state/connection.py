"""Building the kazoo client and the digest ACL the state package puts on every node.

The entry point calls `open_client` once and hands the client to the `LeaderElection`
and the `StateStore`; both take the same `auth` so that every node they create
carries `digest_acl(auth)` (ZooKeeper ACLs are not inherited from parents).
"""

from __future__ import annotations

from kazoo.client import KazooClient
from kazoo.retry import KazooRetry
from kazoo.security import ACL, make_digest_acl

DEFAULT_SESSION_TIMEOUT = 10.0


def parse_auth(auth: str) -> tuple[str, str]:
    """Split a `user:password` digest credential, with a clear error when malformed."""
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise ValueError(
            "ZooKeeper auth must be 'user:password' (digest scheme) with a non-empty user "
            "and password"
        )
    return user, password


def digest_acl(auth: str | None) -> list[ACL] | None:
    """All permissions for the `auth` user only; None (open ACL) without auth."""
    if auth is None:
        return None
    user, password = parse_auth(auth)
    return [make_digest_acl(user, password, all=True)]


def open_client(
    hosts: str,
    *,
    auth: str | None = None,
    session_timeout: float = DEFAULT_SESSION_TIMEOUT,
) -> KazooClient:
    """An unstarted client that authenticates with `auth` on every (re)connection and
    keeps reconnecting forever (a new session after an expiry)."""
    if auth is not None:
        parse_auth(auth)
    return KazooClient(
        hosts=hosts,
        timeout=session_timeout,
        auth_data=[("digest", auth)] if auth is not None else None,
        connection_retry=KazooRetry(max_tries=-1, max_delay=2.0),
    )
