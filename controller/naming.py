"""How Kubernetes object names become the keys embedded in Mesos ids and ZooKeeper paths.

A job or app key is `<namespace>.<name>`. Namespaces are DNS labels (no dots), so the
first dot splits a key back into its parts and keys of different namespaces never
collide. Names are restricted to DNS labels (at most 63 characters) so that the
longest task id, `<job>@-@<shard>@-@FAILOVER@-@<agent id>@-@<uuid>`, stays within
Mesos's 255-character limit for ids and never contains `/`, `\\` or the `@-@`
delimiter. Used by the models' validation, the state layer and the task builders.
"""

from __future__ import annotations

import re

DELIMITER = "@-@"
MAX_NAME_LENGTH = 63
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_LABEL_PATTERN = DNS_LABEL.pattern


def name_error(kind: str, name: str) -> str | None:
    """Why `name` cannot name a `kind` (None when it can)."""
    if not name:
        return f"{kind} name must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return (
            f"{kind} name '{name}' is {len(name)} characters long; at most {MAX_NAME_LENGTH} "
            "are allowed so that Mesos task ids stay within 255 characters"
        )
    if not DNS_LABEL.fullmatch(name):
        return (
            f"{kind} name '{name}' must be a DNS label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return None


def object_key(namespace: str, name: str) -> str:
    """The cluster-unique key of a namespaced CloudApp or CloudJob."""
    return f"{namespace}.{name}"


def split_key(key: str) -> tuple[str, str]:
    """Inverse of `object_key`."""
    namespace, _, name = key.partition(".")
    if not namespace or not name:
        raise ValueError(f"'{key}' is not a '<namespace>.<name>' key")
    return namespace, name
