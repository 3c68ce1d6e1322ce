"""Finding the git repository a path belongs to, as git itself does.

Walking up from the path, each directory is checked twice, in git's order:

1. does it hold a `.git` entry (a directory, or the file a linked worktree or
   a submodule has)? Then it is the top of a work tree;
2. is it a git directory itself (a `HEAD` file, an `objects/` and a `refs/`
   directory, which is how git recognises one)? Then it is a *bare*
   repository: `git init --bare`, `git clone --bare/--mirror`, the server
   side of a remote. A directory named `.git` is skipped here, so a path
   inside a work tree's `.git` still finds that work tree, as before.

`GIT_DIR` and `GIT_WORK_TREE` are not read: the repository is the one at or
above the path given (the current directory, `-C PATH`, `repo=`), so a git
hook's environment cannot redirect gitxp. Whether a repository found through
its `.git` is bare after all (`core.bare = true`) is `GitRepo`'s business.
"""

from __future__ import annotations

import os

from ..errors import InvalidValueError, NotARepositoryError


def is_git_dir(path: str) -> bool:
    """True when *path* is a git directory: a `HEAD` file, `objects/` and `refs/`."""
    return (
        os.path.isfile(os.path.join(path, "HEAD"))
        and os.path.isdir(os.path.join(path, "objects"))
        and os.path.isdir(os.path.join(path, "refs"))
    )


def find_root(path: str | os.PathLike[str] = ".") -> str:
    """The top of the work tree containing *path*, or the bare repository containing it."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidValueError("repository path", f"{path!r}: give a directory, such as '.'")
    start = os.path.abspath(os.fspath(path))
    current = start
    while True:
        if os.path.exists(os.path.join(current, ".git")):
            return current
        if os.path.basename(current) != ".git" and is_git_dir(current):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            raise NotARepositoryError(start)
        current = parent
