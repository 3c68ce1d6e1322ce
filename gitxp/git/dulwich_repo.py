"""dulwich's `Repo` as gitxp opens it: the one subclass, and opening it with gitxp's error.

Imported by `GitRepo` only when a read or write first needs dulwich's
repository (see `gitxp.git.layout`), so commands served by the listing cache
never load dulwich's repository, object store and pack modules.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, ClassVar

from dulwich.repo import Repo as _DulwichRepo

from ..errors import NotARepositoryError
from .layout import file_stamp
from .types import HEAD, as_ref


class DulwichRepo(_DulwichRepo):
    """dulwich's repository, minus a config re-read on every reflog line.

    dulwich asks the config for `core.sharedRepository` each time it writes a
    reflog entry (once or twice per recorded run); the answer is kept, for
    every repository object of the process, until the config file changes.
    """

    _shared: ClassVar[dict[str, tuple[Any, Any]]] = {}  # config path -> (stamp, setting)

    def _get_shared_repository_permissions(self) -> Any:
        path = os.path.join(self.commondir(), "config")
        stamp = file_stamp(path)
        cached = DulwichRepo._shared.get(path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, super()._get_shared_repository_permissions())
            DulwichRepo._shared[path] = cached
        return cached[1]


def open_dulwich(root: str) -> DulwichRepo:
    """dulwich's repository at *root*; NotARepositoryError when dulwich cannot use it."""
    try:
        return DulwichRepo(root)
    except Exception as exc:  # dulwich raises NotGitRepository and friends
        raise NotARepositoryError(root) from exc


def init_dulwich(path: str) -> None:
    """Create a git repository (with a work tree) at *path*, HEAD on `main`."""
    repo = _DulwichRepo.init(path)
    repo.refs.set_symbolic_ref(HEAD, as_ref("refs/heads/main"))
    repo.close()


def close_quietly(repo: _DulwichRepo) -> None:
    """Close *repo*, ignoring what closing a half-broken repository raises."""
    with contextlib.suppress(Exception):
        repo.close()
