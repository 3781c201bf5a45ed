"""What the health port answers under /console: the built files with their types, a
redirect to the index, and pages that say why when the console is disabled or not
built; nothing outside the built files."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.api.console import ConsoleAssets, relative_file

pytestmark = pytest.mark.unit


@pytest.fixture
def built(tmp_path: Path) -> Path:
    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>console</title>")
    (static / "assets" / "index-1a2b.js").write_text("console.log(1)")
    (static / "assets" / "index-1a2b.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("not for the browser")
    return static


def test_the_index_and_its_assets_are_served_with_their_types(built: Path) -> None:
    console = ConsoleAssets(enabled=True, directory=built)
    index = console.answer("/console/")
    assert (index.status, index.content_type) == (200, "text/html; charset=utf-8")
    assert index.body == (built / "index.html").read_bytes()
    script = console.answer("/console/assets/index-1a2b.js")
    assert (script.status, script.content_type) == (200, "text/javascript; charset=utf-8")
    assert console.answer("/console/assets/index-1a2b.css").content_type.startswith("text/css")
    redirect = console.answer("/console")
    assert (redirect.status, redirect.location) == (301, "console/")


@pytest.mark.parametrize(
    "path", ["/console/../secret.txt", "/console/assets/../../secret.txt", "/console/nothing.js"]
)
def test_nothing_outside_the_built_files_is_served(built: Path, path: str) -> None:
    answer = ConsoleAssets(enabled=True, directory=built).answer(path)
    assert answer.status == 404
    assert b"not for the browser" not in answer.body


def test_a_disabled_console_serves_nothing(built: Path) -> None:
    console = ConsoleAssets(enabled=False, directory=built)
    for path in ("/console", "/console/", "/console/assets/index-1a2b.js"):
        answer = console.answer(path)
        assert answer.status == 404
        assert b"The console is disabled" in answer.body


def test_a_console_never_built_says_how_to_build_it(tmp_path: Path) -> None:
    answer = ConsoleAssets(enabled=True, directory=tmp_path / "static").answer("/console/")
    assert (answer.status, answer.content_type) == (503, "text/html; charset=utf-8")
    assert b"npm ci &amp;&amp; npm run build" in answer.body


def test_paths_name_files_below_the_console() -> None:
    assert relative_file("/console/") is None
    assert str(relative_file("/console/assets/a.js")) == "assets/a.js"
