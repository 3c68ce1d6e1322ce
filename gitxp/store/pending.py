"""Runs of this process whose first commit is still waiting for its start delay.

A live run (`gitxp.tracking.run.Run`) delays its first commit a second so
that a short run is one commit, not two. A reader in the same process calls
`publish_pending` before it reads, so the run it just started is visible at
once. The writer registers here; readers in the store call here; neither
imports the other.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class Unpublished(Protocol):
    """A run whose first commit can be made now, on request."""

    def _publish(self) -> None: ...


# run -> the git directory it records into
_waiting: weakref.WeakKeyDictionary[Unpublished, str] = weakref.WeakKeyDictionary()


def wait(run: Unpublished, git_dir: str) -> None:
    """Register *run*, recording into *git_dir*, until it publishes itself (`done`)."""
    _waiting[run] = git_dir


def done(run: Unpublished) -> None:
    """*run* made its first commit (or ended): readers no longer need to publish it."""
    _waiting.pop(run, None)


def publish_pending(git_dir: str | None = None) -> None:
    """Commit now the first commit of this process's runs still in their start delay.

    With *git_dir*, only the runs recording into that repository.
    """
    if not _waiting:
        return
    for run, where in list(_waiting.items()):
        if git_dir is None or where == git_dir:
            run._publish()


def count() -> int:
    """How many runs of this process wait (for tests of fork safety)."""
    return len(_waiting)


def _forget_in_child() -> None:
    # the parent's runs are the parent's: a forked child does not publish them
    _waiting.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
