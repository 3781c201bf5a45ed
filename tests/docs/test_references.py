"""Every reference to a document resolves inside the repository.

The repository explains itself: code, docs and tests point at its own docs/, never at
the background papers the project was first described in. This checks every file the
repository holds (what git tracks, plus new files it would track), whatever its kind:

- a Markdown link `[text](target#anchor)` in a .md file must name an existing file,
  relative to the linking file (web URLs are not checked);
- a repository path `docs/<name>.md` or `docs/<name>.md#<anchor>` written anywhere —
  a docstring, a comment, prose — must name an existing file, from the repository root;
  so must a test module's path, `tests/<folder>/<name>.py` (tests move between folders);
- an anchor must be a heading of that file, as GitHub renders it;
- nothing may name the outside documents (`FORBIDDEN` below).
"""

from __future__ import annotations

import posixpath
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# The square brackets keep this file from matching its own patterns.
FORBIDDEN = {
    "a background specification": re.compile(r"\bSPEC\.m[d]\b|\bSPEC\s*§"),
    "the background Mesos notes": re.compile(r"MESOS-FACT[S]"),
    "the background test notes": re.compile(r"TEST-WORL[D]"),
    "the background architecture notes": re.compile(r"\bARCHITECTURE\.m[d]\b"),
    "a folder outside the repository": re.compile(r"\.\./share[d]\b|/work/share[d]\b"),
}
DOCS_PATH = re.compile(r"(?<![\w./-])(docs/[\w./-]*?\.md)(?!\w)(#[\w-]+)?")
TESTS_PATH = re.compile(r"(?<![\w./-])(tests/[\w/-]*\.py)(?!\w)")
MARKDOWN_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")


@dataclass(frozen=True)
class Reference:
    source: str  # repository path of the file that refers
    line: int
    target: str  # repository path of the file referred to
    anchor: str | None
    text: str  # as written


def repository_files() -> list[str]:
    """Every file of the repository: tracked, or new and not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    # A tracked file deleted in the work tree is not part of what would be committed.
    return sorted(p for p in set(listed.split("\0")) if p and (ROOT / p).is_file())


def outside_code(markdown: str) -> Iterator[tuple[int, str]]:
    """The lines of a Markdown text outside fenced code blocks, numbered from 1."""
    fence: str | None = None
    for number, line in enumerate(markdown.splitlines(), 1):
        match = FENCE.match(line)
        if match:
            marker = match.group(1)
            if fence is None:
                fence = marker[0] * len(marker)
                continue
            if marker.startswith(fence):
                fence = None
                continue
        if fence is None:
            yield number, line


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every anchor of a Markdown text: its headings (repeats numbered) and HTML anchors."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in outside_code(markdown):
        found.update(HTML_ANCHOR.findall(line))
        match = HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(1))
        repeats = seen.get(base, 0)
        seen[base] = repeats + 1
        found.add(base if repeats == 0 else f"{base}-{repeats}")
    return found


def resolve(source: str, target: str) -> str:
    """A link target relative to the file `source`, as a repository path ('..' folded)."""
    return posixpath.normpath(posixpath.join(posixpath.dirname(source), target))


def references(source: str, text: str) -> Iterator[Reference]:
    """Every docs and test path in `text`, and for a Markdown file every relative link."""
    for number, line in enumerate(text.splitlines(), 1):
        for match in DOCS_PATH.finditer(line):
            anchor = match.group(2)
            yield Reference(
                source, number, match.group(1), anchor[1:] if anchor else None, match.group(0)
            )
        for match in TESTS_PATH.finditer(line):
            yield Reference(source, number, match.group(1), None, match.group(0))
    if not source.endswith(".md"):
        return
    for number, line in outside_code(text):
        prose = INLINE_CODE.sub("", line)
        for pattern in (MARKDOWN_LINK, REFERENCE_LINK):
            for match in pattern.finditer(prose):
                written = match.group(1)
                if URL_SCHEME.match(written):
                    continue
                path, _, anchor = written.partition("#")
                target = resolve(source, path) if path else source
                yield Reference(source, number, target, anchor or None, written)


def broken(refs: Iterator[Reference], texts: Mapping[str, str]) -> list[str]:
    """Why each reference that does not resolve among `texts` (path → content) is broken."""
    problems = []
    known: dict[str, set[str]] = {}
    for ref in refs:
        where = f"{ref.source}:{ref.line}: {ref.text}"
        if ref.target not in texts:
            problems.append(f"{where} — no file {ref.target} in the repository")
            continue
        if ref.anchor is None:
            continue
        if ref.target not in known:
            known[ref.target] = anchors(texts[ref.target])
        if ref.anchor not in known[ref.target]:
            problems.append(f"{where} — {ref.target} has no heading with anchor #{ref.anchor}")
    return problems


def outside_references(source: str, text: str) -> list[str]:
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        for what, pattern in FORBIDDEN.items():
            for match in pattern.finditer(line):
                problems.append(f"{source}:{number}: {match.group(0)!r} points at {what}")
    return problems


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    return {
        path: (ROOT / path).read_bytes().decode("utf-8", errors="replace")
        for path in repository_files()
    }


def test_the_whole_repository_is_read(texts: dict[str, str]) -> None:
    assert "README.md" in texts
    assert "tests/docs/test_references.py" in texts
    assert any(path.startswith("docs/") for path in texts)
    assert any(path.startswith("controller/") for path in texts)


def test_every_docs_reference_resolves(texts: dict[str, str]) -> None:
    refs = (ref for source, text in texts.items() for ref in references(source, text))
    problems = broken(refs, texts)
    assert not problems, "references that do not resolve:\n" + "\n".join(problems)


def test_nothing_points_outside_the_repository(texts: dict[str, str]) -> None:
    problems = [p for source, text in texts.items() for p in outside_references(source, text)]
    assert not problems, "references to documents outside the repository:\n" + "\n".join(problems)


# The checker itself, on made-up files. Broken paths are assembled from `DOCS`, so that
# this file, which the tests above read too, holds no broken reference of its own.
DOCS = "docs/"
OTHER = DOCS + "other.md"
TESTS = "tests/"

DOC = """# Scheduling semantics

## Queues

### Ready

```
# not a heading
```

## Settings (`FrameworkSettings`, prefix `CLOUDJOB_MESOS_`)

## Queues
"""


def test_anchors_follow_github() -> None:
    assert anchors(DOC) == {
        "scheduling-semantics",
        "queues",
        "ready",
        "settings-frameworksettings-prefix-cloudjob_mesos_",
        "queues-1",
    }


@pytest.mark.parametrize(
    ("source", "text", "problem"),
    [
        ("controller/x.py", '"""See docs/semantics.md#ready."""', None),
        ("controller/x.py", f'"""See {DOCS}semantics.md#readiness."""', "no heading"),
        ("controller/x.py", f"# {DOCS}missing.md explains it", f"no file {DOCS}missing.md"),
        (OTHER, "[ready](semantics.md#ready)", None),
        (OTHER, "[ready](semantics.md#nope)", "no heading"),
        (OTHER, "[readme](../README.md)", None),
        (OTHER, "[root](docs/semantics.md)", f"no file {DOCS}{DOCS}semantics.md"),
        (OTHER, "[up](../../outside.md)", "no file ../outside.md"),
        (OTHER, "[self](#here)", "no heading"),
        (OTHER, "`[a](b)` and [web](https://example.org/x.md)", None),
        ("README.md", "[map](docs/semantics.md#queues)", None),
        (TESTS + "x.py", f'"""Like {TESTS}x.py."""', None),
        ("controller/x.py", f"# {TESTS}unit/gone.py covers it", f"no file {TESTS}unit/gone.py"),
    ],
)
def test_broken_references_are_found(source: str, text: str, problem: str | None) -> None:
    texts = {"docs/semantics.md": DOC, "README.md": "", source: text}
    problems = broken(references(source, text), texts)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1
        assert problem in problems[0]


@pytest.mark.parametrize(
    "line",
    [
        "(" + "SPEC" + " §4)",
        "see " + "SPEC" + ".md",
        "MESOS" + "-FACTS.md lists them",
        "TEST" + "-WORLD.md",
        "ARCHITECTURE" + ".md",
        "../" + "shared/seeds",
        "/work/" + "shared/seeds",
    ],
)
def test_outside_references_are_found(line: str) -> None:
    assert outside_references("controller/x.py", f"# {line}\n")


def test_docs_of_the_repository_are_not_outside_references() -> None:
    assert outside_references(OTHER, "docs/architecture.md, SPEC_MODELS, specs\n") == []
