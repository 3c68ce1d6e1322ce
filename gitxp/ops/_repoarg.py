"""Accepting a repository as a path or an open `Repo` in every public function."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from ..store.repo import Repo

RepoArg = Union[str, "os.PathLike[str]", "Repo"]


@contextmanager
def opened(repo: RepoArg) -> Iterator[Repo]:
    """Yield *repo* if it is a `Repo`, else open the repository at that path (and close it)."""
    from ..store.repo import Repo
    from ..store.repo import open as open_repo

    if isinstance(repo, Repo):
        yield repo
        return
    r = open_repo(repo)
    try:
        yield r
    finally:
        r.close()
