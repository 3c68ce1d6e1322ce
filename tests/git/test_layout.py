"""An ordinary repository's layout, read from its files, is what dulwich finds; any other
repository is left to dulwich, which opens it at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dulwich.repo import Repo

import gitxp
from gitxp.errors import NotARepositoryError
from gitxp.git.layout import plain_layout
from gitxp.git.repository import GitRepo
from tests.gitutil import git


def _dulwich_view(root: Path) -> tuple[str, str, str]:
    """(git dir, objects dir, object format) as dulwich's own Repo reports them."""
    repo = Repo(str(root))
    try:
        fmt = repo.object_format.name if repo.object_format is not None else "sha1"
        return os.path.abspath(repo.commondir()), os.fspath(repo.object_store.path), fmt
    finally:
        repo.close()


@pytest.mark.parametrize("object_format", ["sha1", "sha256"])
def test_an_ordinary_repository_is_read_without_dulwich_and_agrees_with_it(
    tmp_path: Path, object_format: str
) -> None:
    root = tmp_path / "project"
    git(tmp_path, "init", "-q", f"--object-format={object_format}", str(root))
    layout = plain_layout(str(root))
    assert layout is not None
    assert (layout.git_dir, layout.objects, layout.object_format) == _dulwich_view(root)
    assert layout.bare is False
    opened = GitRepo.discover(root)
    assert opened._dulwich is None  # nothing so far needed dulwich's Repo
    assert opened.ids.name == object_format and opened.root == str(root)
    assert opened.head() is None  # the first read through dulwich opens it
    assert opened._dulwich is not None
    opened.close()


def test_core_bare_in_the_repositorys_config_makes_it_bare(tmp_path: Path) -> None:
    root = tmp_path / "project"
    git(tmp_path, "init", "-q", str(root))
    git(root, "config", "core.bare", "true")
    layout = plain_layout(str(root))
    assert layout is not None and layout.bare
    opened = GitRepo(str(root))
    assert opened.bare and opened.root == str(root / ".git")


def test_worktrees_includes_and_unknown_formats_are_left_to_dulwich(tmp_path: Path) -> None:
    main = tmp_path / "main"
    git(tmp_path, "init", "-q", "-b", "main", str(main))
    (main / "a.txt").write_text("a\n")
    git(main, "add", ".")
    git(main, "commit", "-q", "-m", "a")
    linked = tmp_path / "linked"
    git(main, "worktree", "add", "-q", str(linked))
    assert plain_layout(str(linked)) is None
    opened = GitRepo(str(linked))
    assert opened._dulwich is not None and opened.git_dir == str(main / ".git")
    assert opened.root == str(linked) and opened.head() == git(main, "rev-parse", "HEAD").strip()

    included = tmp_path / "included"
    git(tmp_path, "init", "-q", str(included))
    git(included, "config", "include.path", str(tmp_path / "extra.cfg"))
    assert plain_layout(str(included)) is None

    future = tmp_path / "future"
    git(tmp_path, "init", "-q", str(future))
    git(future, "config", "core.repositoryformatversion", "2")
    assert plain_layout(str(future)) is None
    with pytest.raises(NotARepositoryError):
        GitRepo(str(future))  # dulwich refuses it now, as before, not at its first read


def test_a_listing_in_a_linked_worktree_sees_the_runs_of_its_repository(
    repo: Path, tmp_path: Path
) -> None:
    with gitxp.start_run(snapshot=False) as run:
        run.log_metric("loss", 0.5)
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", str(linked))
    assert list(gitxp.open(linked).runs()["id"]) == [run.id]
