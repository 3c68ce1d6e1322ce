"""The runs this process records through the plugin: one open gitxp `Run` per MLflow run.

MLflow calls the store once per logged value; committing each would cost a
git commit per call. Instead `create_run` starts a gitxp `Run` and keeps it
here, and every later call for that run id writes into it: points wait in
memory and are committed at gitxp's checkpoints (crash safety and CRASHED
status as for any gitxp run), and at its end. Runs left open are ended
when the interpreter exits, as gitxp ends its own.

A run that is not open here (ended, or recorded by another process or
server worker) is joined for the one call and its change committed at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ...git.repository import open_for_run
from ...tracking import pop_active, push_active
from ...tracking.run import Run as GitxpRun

if TYPE_CHECKING:
    from ...tracking.options import RunOptions

_runs: dict[str, GitxpRun] = {}
_lock = threading.Lock()


def start(root: str, options: RunOptions) -> GitxpRun:
    """Start a gitxp run in the repository at *root* and keep it open for later calls."""
    git = open_for_run(root)
    try:
        run = GitxpRun(git, options)
    except BaseException:
        git.close()
        raise
    # registered for interpreter exit (ended there if MLflow never ends it), not left active
    push_active(run)
    pop_active(run)
    with _lock:
        _runs[run.id] = run
    return run


def get(run_id: str) -> GitxpRun | None:
    """The open run *run_id* of this process, or None."""
    with _lock:
        run = _runs.get(run_id)
        if run is not None and run._ended:
            del _runs[run_id]
            return None
        return run


def forget(run_id: str) -> None:
    """Stop keeping run *run_id* (it has ended)."""
    with _lock:
        _runs.pop(run_id, None)


def open_runs() -> list[GitxpRun]:
    """The runs open here and not yet ended."""
    with _lock:
        return [r for r in _runs.values() if not r._ended]


@contextmanager
def writing(root: str, run_id: str) -> Iterator[GitxpRun]:
    """A run to write *run_id*'s change into: the open one, else the run joined for the
    change, which is committed (its status kept) when the block ends."""
    run = get(run_id)
    if run is not None:
        yield run
        return
    git = open_for_run(root)
    try:
        joined = GitxpRun(git, _join=run_id)
    except BaseException:
        git.close()
        raise
    try:
        yield joined
    finally:
        if not joined._ended:
            joined.end()  # a joined run keeps its status: this commits the change
