"""Committing a work tree on the current branch, as `git add -A && git commit` would.

gitxp itself never commits the user's files; this serves `gitxp demo`,
which creates a project of its own and commits its first version.
"""

from __future__ import annotations

from dulwich import porcelain

from .repository import GitRepo
from .types import HEAD, as_ref


def commit_all(git: GitRepo, message: str) -> str:
    """Stage every file of the work tree and commit it on HEAD's branch; return the commit id."""
    porcelain.add(git.dulwich)
    who = git.identity().signature()
    sha = porcelain.commit(git.dulwich, message.encode(), author=who, committer=who, no_verify=True)
    return sha.decode()


def create_repository(path: str) -> GitRepo:
    """A new repository exactly at *path* (HEAD on `main`), even inside another work tree."""
    from dulwich.repo import Repo

    Repo.init(path).close()
    repo = Repo(path)
    repo.refs.set_symbolic_ref(HEAD, as_ref("refs/heads/main"))
    repo.close()
    return GitRepo(path)
