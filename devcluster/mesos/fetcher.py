"""The Mesos fetcher, emulated: put `CommandInfo.uris` into a sandbox.

Follows the Mesos fetcher documentation: a URI is a local path, a `file://` URL or an
`http(s)://` URL; the file lands in the sandbox under its basename (or
`output_file`); `executable: true` sets the execute bits and skips
extraction; otherwise `extract` (default true) unpacks .tar, .tar.gz, .tgz,
.tar.bz2, .tar.xz, .txz and .zip archives into the sandbox; `cache: true`
downloads once per agent and copies from the cache afterwards. Blocking
work; the agent runs it in a worker thread.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import urllib.parse
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".txz", ".zip")


class FetchError(RuntimeError):
    """A URI that could not be fetched; the message names the URI and the cause."""


def _basename(uri: str) -> str:
    path = urllib.parse.urlparse(uri).path if "://" in uri else uri
    name = os.path.basename(path.rstrip("/"))
    if not name:
        raise FetchError(f"Failed to determine the file name of URI '{uri}'")
    return name


def _download(uri: str, target: Path, timeout: float) -> None:
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme in ("http", "https"):
        try:
            with (
                urllib.request.urlopen(uri, timeout=timeout) as response,
                open(target, "wb") as out,
            ):
                shutil.copyfileobj(response, out)
        except OSError as exc:
            raise FetchError(f"Failed to fetch '{uri}': {exc}") from exc
        return
    if parsed.scheme == "file":
        source = Path(urllib.parse.unquote(parsed.path))
    elif parsed.scheme == "":
        source = Path(uri)
    else:
        raise FetchError(
            f"Failed to fetch '{uri}': scheme '{parsed.scheme}' is not supported "
            "(use a local path, file:// or http(s)://)"
        )
    if not source.is_absolute():
        raise FetchError(f"Failed to fetch '{uri}': a local path must be absolute")
    try:
        shutil.copyfile(source, target)
    except OSError as exc:
        raise FetchError(f"Failed to fetch '{uri}': {exc}") from exc


def _extract(archive: Path, into: Path) -> None:
    name = archive.name
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(into)
        else:
            with tarfile.open(archive) as tarred:
                tarred.extractall(into, filter="data")
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise FetchError(f"Failed to extract '{archive.name}': {exc}") from exc


def fetch_uris(
    uris: list[dict[str, Any]], sandbox: Path, cache_dir: Path, timeout: float = 30.0
) -> None:
    for spec in uris:
        uri = str(spec.get("value", ""))
        name = str(spec.get("output_file") or _basename(uri))
        target = sandbox / name
        if spec.get("cache"):
            cached = cache_dir / hashlib.sha256(uri.encode()).hexdigest() / name
            if not cached.exists():
                cached.parent.mkdir(parents=True, exist_ok=True)
                # Tasks fetching the same URI at once each download to their own file;
                # the atomic replace leaves one complete copy whichever finishes last.
                partial = cached.with_name(f"{cached.name}.{uuid.uuid4().hex}.partial")
                _download(uri, partial, timeout)
                os.replace(partial, cached)
            shutil.copyfile(cached, target)
        else:
            _download(uri, target, timeout)
        if spec.get("executable"):
            target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        elif spec.get("extract", True) and name.endswith(ARCHIVE_SUFFIXES):
            _extract(target, sandbox)
