"""Which run is active: per thread and per asyncio task (`contextvars`), and which are open.

Each context holds an immutable tuple (the stack of runs activated there),
so a task's copy is never changed by its siblings: a thread starts with
none, an asyncio task inherits its creator's, and a run started in one never
becomes active in another. Separately, every run started and not yet ended
is registered process-wide, so interpreter exit ends the runs of every
thread and task. Integrations use `push_active`/`pop_active`/`activate`.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from ..errors import GitxpError

if TYPE_CHECKING:
    from .run import Run

log = logging.getLogger("gitxp.tracking.context")

# the runs activated in this context, innermost last (never mutated: replaced)
_stack: ContextVar[tuple[Run, ...]] = ContextVar("gitxp_active_runs", default=())
# every run started or activated in this process and not yet ended, for exit and joining
_open: list[Run] = []
_lock = threading.Lock()
_atexit_registered = False


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
    """Drop an ended run: from the exit registry and from this context's stack, and hand
    its repository back."""
    _drop(run)
    from ..git.repository import release

    release(run._git)


def _drop(run: Run) -> None:
    """Drop an ended run from the exit registry and from this context's stack."""
    with _lock:
        if run in _open:
            _open.remove(run)
    stack = _stack.get()
    if run in stack:
        _stack.set(tuple(r for r in stack if r is not run))


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
            log.error("gitxp: could not end run %s: %s", run.id, exc)


def current() -> Run | None:
    """The innermost run active in this context and not yet ended, or None."""
    stack = _stack.get()
    if stack and not stack[-1]._ended:
        return stack[-1]
    if stack:  # runs ended from another context are still on this one's stack
        stack = tuple(r for r in stack if not r._ended)
        _stack.set(stack)
        if stack:
            return stack[-1]
    return None


def is_active(run: Run) -> bool:
    """Whether *run* is on this context's stack."""
    return run in _stack.get()


def live() -> list[Run]:
    """This context's runs not yet ended, outermost first."""
    return [r for r in _stack.get() if not r._ended]


def find_open(run_id: str, kind: type[Run] | None = None) -> Run | None:
    """The open run of this process with id *run_id* (a joined `gitxp run` run), or None;
    with *kind*, only a run of that class (the inert run of a rank that does not record)."""
    with _lock:
        return next(
            (r for r in _open if r.id == run_id and (kind is None or isinstance(r, kind))), None
        )
