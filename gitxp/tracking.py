"""Starting runs and the module-level logging calls that act on the active run.

`gitxp.start_run()` inside a process launched by `gitxp run` joins the run
that command created (its id arrives in `GITXP_RUN_ID`), so a script
records into one run whether it is started by hand or through the CLI.

Which run is active is kept per context (`contextvars`): a thread starts
with none, an asyncio task inherits its creator's, and a run started in one
never becomes active in another. Each context holds an immutable tuple (the
stack of runs activated there), so a task's copy is never changed by its
siblings. Separately, every run started and not yet ended is registered
process-wide, so interpreter exit ends the runs of every thread and task.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ._errors import GitxpError, NoActiveRunError

if TYPE_CHECKING:
    from .run import Run

# the runs activated in this context, innermost last (never mutated: replaced)
_stack: ContextVar[tuple[Run, ...]] = ContextVar("gitxp_active_runs", default=())
# every run started or activated in this process and not yet ended, for exit and joining
_open: list[Run] = []
_lock = threading.Lock()
_atexit_registered = False

ENV_RUN_ID = "GITXP_RUN_ID"
ENV_RUN_REPO = "GITXP_RUN_REPO"


def start_run(
    experiment: str | None = None,
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    notes: str | None = None,
    repo: str | os.PathLike[str] | None = None,
    *,
    checkpoint_seconds: float | None = None,
    buffer_points: int | None = None,
    snapshot: bool = True,
    max_snapshot_file_size: int | None = None,
    system_metrics: bool | None = None,
    system_metrics_seconds: float | None = None,
) -> Run:
    """Start recording a run in the git repository at or above *repo* (default: cwd).

    Use it as a context manager::

        with gitxp.start_run(experiment="iris", params={"lr": 0.1}) as run:
            run.log_metric("loss", 0.5)

    Leaving the block commits the run FINISHED, FAILED on an exception, or
    KILLED on KeyboardInterrupt. Inside a process started by `gitxp run`, the
    run that command created is joined instead of a new one started; the
    given params, tags and notes are added to it.

    With *system_metrics* (default: `$GITXP_SYSTEM_METRICS`), a background
    thread records CPU, memory, disk, network and GPU use every
    *system_metrics_seconds* (default: `$GITXP_SYSTEM_METRICS_SECONDS` or 10)
    as `system/...` metrics until the run ends; see docs/integrations.md.
    """
    from .git.repository import open_for_run, release
    from .run import DEFAULT_BUFFER_POINTS, Run

    joined_id = os.environ.get(ENV_RUN_ID)
    if joined_id:
        with _lock:  # the joined run is shared by every thread and task of the process
            existing = next((r for r in _open if r.id == joined_id), None)
        git = open_for_run(os.environ.get(ENV_RUN_REPO) or repo or ".")
        run = existing or Run(
            git,
            checkpoint_seconds=checkpoint_seconds,
            buffer_points=DEFAULT_BUFFER_POINTS if buffer_points is None else buffer_points,
            _join=joined_id,
            system_metrics=system_metrics,
            system_metrics_seconds=system_metrics_seconds,
        )
        if existing is not None:
            release(git)
        if params:
            run.log_params(params)
        if tags:
            run.set_tags(tags)
        if notes:
            run.note(notes)
    else:
        git = open_for_run(repo if repo is not None else ".")
        try:
            if snapshot:
                git.require_work_tree("gitxp.start_run()")
            run = Run(
                git,
                experiment=experiment,
                name=name,
                params=params,
                tags=tags,
                notes=notes,
                checkpoint_seconds=checkpoint_seconds,
                buffer_points=DEFAULT_BUFFER_POINTS if buffer_points is None else buffer_points,
                snapshot=snapshot,
                max_snapshot_file_size=max_snapshot_file_size,
                system_metrics=system_metrics,
                system_metrics_seconds=system_metrics_seconds,
            )
        except BaseException:
            release(git)
            raise
    if run not in _stack.get():  # a joined run started again in the same context
        push_active(run)
    return run


def push_active(run: Run) -> None:
    """Make *run* the active run of the current thread or asyncio task, until `pop_active`.

    For integrations that start or resume a `Run` themselves, or that share
    one with a worker thread: the module-level calls (`gitxp.log_metric`...)
    then act on it here, and it is ended at interpreter exit if still open.
    Pushing does not end or take over anything; `Run.end()` pops the run
    from the context that ends it, and an ended run is skipped everywhere.
    """
    if run._ended:
        raise GitxpError(f"run {run.id} has ended; start or resume a run to make it active")
    _stack.set((*_stack.get(), run))
    with _lock:
        if run not in _open:
            _open.append(run)
    _register_atexit()


def pop_active(run: Run) -> None:
    """Undo the innermost `push_active(run)` of the current context; the run stays open."""
    stack = _stack.get()
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is run:
            _stack.set(stack[:i] + stack[i + 1 :])
            return
    raise GitxpError(f"run {run.id} is not active in this thread or task")


@contextmanager
def activate(run: Run) -> Iterator[Run]:
    """Make *run* active in this thread or task for the block (`push_active`/`pop_active`).

    ::

        def worker(run):
            with gitxp.tracking.activate(run):
                gitxp.log_metric("loss", 0.5)  # goes to *run*, from this thread

    The run is not ended when the block exits.
    """
    push_active(run)
    try:
        yield run
    finally:
        if run in _stack.get():  # Run.end() in the block already popped it
            pop_active(run)


def _forget(run: Run) -> None:
    """Drop an ended run: from the exit registry and from this context's stack."""
    with _lock:
        if run in _open:
            _open.remove(run)
    stack = _stack.get()
    if run in stack:
        _stack.set(tuple(r for r in stack if r is not run))
    from .git.repository import release

    release(run._git)


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_end_all_at_exit)
        _atexit_registered = True


def _end_all_at_exit() -> None:
    """End runs still open when the interpreter exits (FAILED after an uncaught error)."""
    last = getattr(sys, "last_value", None)
    with _lock:
        runs = list(reversed(_open))
    for run in runs:
        try:
            if isinstance(last, KeyboardInterrupt):
                run.end("KILLED", "KeyboardInterrupt")
            elif last is not None:
                run.end("FAILED", f"{type(last).__name__}: {last}")
            else:
                run.end("FINISHED")
        except Exception as exc:  # the interpreter is going away: report, never raise
            print(f"gitxp: could not end run {run.id}: {exc}", file=sys.stderr)


def active_run() -> Run | None:
    """The innermost run active in this thread or asyncio task and not yet ended, or None.

    A new thread has none (an asyncio task has its creator's). In a process
    launched by `gitxp run`, a context without one joins that command's run.
    """
    stack = _stack.get()
    if stack and not stack[-1]._ended:
        return stack[-1]
    if stack:  # runs ended from another context are still on this one's stack
        stack = tuple(r for r in stack if not r._ended)
        _stack.set(stack)
        if stack:
            return stack[-1]
    if os.environ.get(ENV_RUN_ID):
        return start_run()
    return None


def _require(call: str) -> Run:
    run = active_run()
    if run is None:
        raise NoActiveRunError(call)
    return run


def end_run(status: str = "FINISHED") -> None:
    """End this thread's or task's active run (no-op when there is none)."""
    live = [r for r in _stack.get() if not r._ended]
    if live:
        live[-1].end(status)


def log_param(key: str, value: Any) -> None:
    """Record one param on the active run."""
    _require("log_param").log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Record several params on the active run."""
    _require("log_params").log_params(params)


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Record one metric point on the active run."""
    _require("log_metric").log_metric(key, value, step, timestamp)


def log_metrics(
    metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
) -> None:
    """Record one point per key on the active run."""
    _require("log_metrics").log_metrics(metrics, step, timestamp)


def log_metric_array(
    key: str,
    values: Iterable[float],
    steps: Iterable[int] | None = None,
    timestamps: Iterable[int] | None = None,
) -> None:
    """Record a whole array of points on the active run."""
    _require("log_metric_array").log_metric_array(key, values, steps, timestamps)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    _require("set_tag").set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags on the active run."""
    _require("set_tags").set_tags(tags)


def note(text: str) -> None:
    """Append text to the active run's notes."""
    _require("note").note(text)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> dict[str, Any]:
    """Keep a file or directory with the active run (see `Run.log_artifact`)."""
    return _require("log_artifact").log_artifact(path, name)


def log_text(text: str, name: str) -> dict[str, Any]:
    """Keep *text* with the active run as artifact *name* (see `Run.log_text`)."""
    return _require("log_text").log_text(text, name)


def log_dict(value: Any, name: str) -> dict[str, Any]:
    """Keep *value* with the active run as a JSON or YAML artifact (see `Run.log_dict`)."""
    return _require("log_dict").log_dict(value, name)
