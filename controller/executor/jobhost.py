"""The process one Python or dataflow job run lives in: `python -m controller.executor.jobhost`.

The executor starts one job host per run, in its own process group, so a job that
crashes, hangs or leaks cannot hurt the executor, and a kill is a signal to the
group. The host reads one line of JSON on stdin — the target (`module:name`), the
mode and the job context — puts the app package's root and its `lib/` and `src/`
directories (when present) first on `sys.path`, imports the target and runs it:

- `call`: `name(ctx)`;
- `dataflow`: `job = name()`, then `items = job.fetch(ctx)` and, when it returned
  anything, `job.process(ctx, items)`; streaming repeats until fetch returns
  nothing, one-shot does it once.

Exit status 0 is success. When the job raises, the traceback goes to stderr, the
exception text (`Type: message`) to the result file named in the request, and the
status is 1. The executor keeps stdin open while the run lasts; when it closes
(the executor died), the host kills its own process group. Standard library only,
so a run starts fast.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from controller.executor.context import JobContext

MODE_CALL = "call"
MODE_DATAFLOW = "dataflow"
RAISED = 1


def request(
    *,
    module: str,
    attribute: str,
    mode: str,
    streaming: bool,
    context: JobContext,
    result_path: Path,
) -> bytes:
    """The line the executor writes to a job host's stdin."""
    document = {
        "module": module,
        "attribute": attribute,
        "mode": mode,
        "streaming": streaming,
        "context": context.to_json(),
        "resultPath": str(result_path),
    }
    return json.dumps(document).encode() + b"\n"


def _watch_parent(fd: int) -> None:
    while os.read(fd, 4096):
        pass
    if os.getpgrp() == os.getpid():  # never take down a process group that is not the job's
        os.killpg(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _detach_stdin() -> int:
    """Keep the request pipe for the parent watch; user code gets /dev/null as stdin."""
    watched = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return watched


def _import_path(app_root: str) -> list[str]:
    root = Path(app_root)
    return [str(path) for path in (root, root / "lib", root / "src") if path.is_dir()]


def _run(document: dict[str, Any]) -> None:
    context = JobContext.from_json(document["context"])
    sys.path[:0] = _import_path(context.app_root)
    target = f"{document['module']}:{document['attribute']}"
    module = importlib.import_module(document["module"])
    try:
        subject = getattr(module, document["attribute"])
    except AttributeError:
        raise AttributeError(
            f"module {document['module']!r} has no attribute {document['attribute']!r}"
        ) from None
    if document["mode"] == MODE_CALL:
        if not callable(subject):
            raise TypeError(f"{target} is not callable")
        subject(context)
        return
    job = subject()
    while True:
        fetched = job.fetch(context)
        items = list(fetched) if fetched is not None else []
        if not items:
            return
        job.process(context, items)
        if not document["streaming"]:
            return


def main() -> None:
    line = sys.stdin.buffer.readline()
    document = json.loads(line)
    threading.Thread(
        target=_watch_parent, args=(_detach_stdin(),), name="parent-watch", daemon=True
    ).start()
    try:
        _run(document)
    except Exception as error:
        traceback.print_exc()
        text = f"{type(error).__name__}: {error}"
        Path(document["resultPath"]).write_text(json.dumps({"error": text}))
        sys.stderr.flush()
        os._exit(RAISED)
    sys.stdout.flush()
    sys.stderr.flush()


if __name__ == "__main__":
    main()
