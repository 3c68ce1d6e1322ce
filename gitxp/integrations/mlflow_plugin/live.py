"""The runs this process records through the plugin: one open gitxp `Run` per MLflow run.

MLflow calls the store once per logged value; committing each would cost a
git commit per call. Instead `create_run` starts a gitxp `Run` and keeps it
here, and every later call for that run id writes into it: points wait in
memory and are committed at gitxp's checkpoints (crash safety and CRASHED
status as for any gitxp run), and at its end. Runs left open are ended
when the interpreter exits, as gitxp ends its own.

A run that is not open here (ended, or recorded by another process or
server worker) is joined for the one call and its change committed at once.

Under `gitxp run`, the first top-level MLflow run of the process is the run
that command records (`supervised`): it is joined and kept open here like
a run of our own, and `gitxp run` ends it when the command exits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ...git.repository import open_for_run
from ...tracking import pop_active, push_active
from ...tracking.context import find_open
from ...tracking.fluent import supervised_run_id
from ...tracking.run import Run as GitxpRun

if TYPE_CHECKING:
    from ...tracking.options import RunOptions

_runs: dict[str, GitxpRun] = {}
_lock = threading.Lock()
_supervised: dict[str, str] = {}  # "joined": the id of the `gitxp run` run, once joined


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


def supervised(root: str) -> GitxpRun | None:
    """The run of `gitxp run` (GITXP_RUN_ID) in the repository at *root*, joined and kept
    open here, the first time this is asked in the process; None after that, and when there
    is none (not under `gitxp run`, another repository, a rank that does not record)."""
    with _lock:
        if "joined" in _supervised:
            return None
        run_id = supervised_run_id(root)
        if run_id is None:
            return None
        # gitxp.start_run() may have joined it already in this process: one Run per ref
        run = find_open(run_id, GitxpRun)
        if run is None or run.inert:
            git = open_for_run(root)
            try:
                run = GitxpRun(git, _join=run_id)
            except BaseException:
                git.close()
                raise
            push_active(run)  # registered for interpreter exit, not left active
            pop_active(run)
        _supervised["joined"] = run_id
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
