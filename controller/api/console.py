"""`ConsoleAssets`: answers `/console/...` with the web console's built files.

The console (the `console/` folder of the repository: a small TypeScript app, built
by `npm run build` into `controller/api/static/`) is static: the browser loads it
from here and reads `/api/v1/...` from the same origin. `/console/` is its
`index.html`, whose own router shows the pages (`#/jobs/...`). When the console is
disabled it answers 404, when its files were never built 503, each with a page that
says so. Built by `controller.app.Controller`, called by the
health endpoint's threads (`controller.endpoints`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PREFIX = "/console"
STATIC = Path(__file__).parent / "static"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}


@dataclass(frozen=True)
class Asset:
    status: int
    content_type: str
    body: bytes
    location: str | None = None
    """Where a redirect points."""


def _page(status: int, title: str, text: str) -> Asset:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>cloudjob console</title>"
        f"</head><body><h1>{title}</h1><p>{text}</p></body></html>"
    )
    return Asset(status, _TYPES[".html"], body.encode())


def relative_file(path: str) -> PurePosixPath | None:
    """The file a `/console/...` path names, relative to the built files; None for
    the index (`/console/`)."""
    parts = PurePosixPath(path.removeprefix(PREFIX)).parts
    names = [p for p in parts if p not in ("/", "")]
    return PurePosixPath(*names) if names else None


class ConsoleAssets:
    def __init__(self, *, enabled: bool, directory: Path = STATIC) -> None:
        self._enabled = enabled
        self._directory = directory

    def answer(self, path: str) -> Asset:
        """The answer to a GET of `path` (`/console` or below)."""
        if not self._enabled:
            return _page(
                404,
                "The console is disabled",
                "This controller is set not to serve its console (console.enabled).",
            )
        if path == PREFIX:
            # Relative, so that it holds behind a proxy that adds a path prefix.
            return Asset(301, _TYPES[".html"], b"", location="console/")
        index = self._directory / "index.html"
        if not index.is_file():
            return _page(
                503,
                "The console is not built",
                "Its files are missing from this installation: build them with "
                "<code>npm ci &amp;&amp; npm run build</code> in <code>console/</code> "
                "(<code>scripts/setup</code> does).",
            )
        name = relative_file(path)
        file = index if name is None else self._directory / name
        # Only files below the folder: no '..' and no link leads out of it.
        inside = file.resolve().is_relative_to(self._directory.resolve())
        if not (inside and file.is_file()):
            return _page(404, "Not found", "No such file in the console.")
        kind = _TYPES.get(file.suffix, "application/octet-stream")
        return Asset(200, kind, file.read_bytes())
