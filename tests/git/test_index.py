"""gitxp's fast index reader agrees with dulwich's on everything git writes by default."""

from __future__ import annotations

import os
from pathlib import Path

from gitxp.git.index import ConflictedEntry, read_index
from gitxp.git.repository import GitRepo
from gitxp.git.snapshot import take_snapshot
from tests.gitutil import fsck, git


def _dulwich_view(repo: GitRepo) -> dict[bytes, object]:
    out: dict[bytes, object] = {}
    for path, entry in repo.dulwich.open_index().items():
        if not hasattr(entry, "sha"):
            out[path] = "conflict"
        else:
            mtime = entry.mtime if isinstance(entry.mtime, tuple) else None
            out[path] = (entry.sha, entry.mode, entry.size, mtime)
    return out


def _our_view(repo: GitRepo) -> dict[bytes, object]:
    out: dict[bytes, object] = {}
    for path, entry in read_index(repo).items():
        if isinstance(entry, ConflictedEntry):
            out[path] = "conflict"
        else:
            out[path] = (entry.sha, entry.mode, entry.size, entry.mtime)
    return out


def test_index_with_conflicts_long_names_links_and_intent_to_add(repo: Path) -> None:
    (repo / "deep" / "er").mkdir(parents=True)
    (repo / "deep" / "er" / ("n" * 250)).write_text("long name\n")
    (repo / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(repo / "run.sh", 0o755)
    os.symlink("train.py", repo / "link")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "more")
    git(repo, "checkout", "-qb", "other")
    (repo / "train.py").write_text("print('other')\n")
    git(repo, "commit", "-qam", "other")
    git(repo, "checkout", "-q", "main")
    (repo / "train.py").write_text("print('main')\n")
    git(repo, "commit", "-qam", "main")
    git(repo, "merge", "other", check=False)
    (repo / "later.py").write_text("x = 1\n")
    git(repo, "add", "-N", "later.py")  # intent-to-add: a version 3 index entry
    with GitRepo(str(repo)) as g:
        ours = _our_view(g)
        assert ours == _dulwich_view(g)
        assert ours[b"train.py"] == "conflict"
        assert b"deep/er/" + b"n" * 250 in ours
        snap = take_snapshot(g)
        assert snap.dirty


def test_version_4_index_falls_back_to_dulwich(repo: Path) -> None:
    git(repo, "update-index", "--index-version", "4")
    with GitRepo(str(repo)) as g:
        assert set(read_index(g)) == {b".gitignore", b"README.md", b"train.py"}


def test_no_index_yet(empty_repo: Path) -> None:
    with GitRepo(str(empty_repo)) as g:
        assert read_index(g) == {}


def _commit_ready(repo: Path) -> None:
    """Make the work tree older than the index (no racily clean entries), with a cache-tree."""
    import time

    time.sleep(1.1)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "work")
    git(repo, "write-tree")  # the index's cache-tree now names HEAD's tree


def test_a_clean_tree_is_head_through_the_cache_tree(repo: Path) -> None:
    (repo / "src").mkdir()
    (repo / "src" / "mod.py").write_text("x = 1\n")
    _commit_ready(repo)
    with GitRepo(str(repo)) as g:
        snap = take_snapshot(g)
        assert not snap.dirty
        assert snap.code_commit == git(repo, "rev-parse", "HEAD").strip()


def test_changes_are_still_snapshotted_when_the_cache_tree_is_valid(repo: Path) -> None:
    (repo / "src").mkdir()
    (repo / "src" / "mod.py").write_text("x = 1\n")
    _commit_ready(repo)
    (repo / "src" / "mod.py").write_text("x = 2\n")  # modified
    (repo / "new.py").write_text("y = 1\n")  # untracked
    (repo / "README.md").unlink()  # deleted
    with GitRepo(str(repo)) as g:
        snap = take_snapshot(g)
    assert snap.dirty
    assert git(repo, "show", f"{snap.code_commit}:src/mod.py") == "x = 2\n"
    assert git(repo, "show", f"{snap.code_commit}:new.py") == "y = 1\n"
    assert "README.md" not in git(repo, "ls-tree", "--name-only", snap.code_commit)


def test_a_staged_tree_other_than_head_is_snapshotted(repo: Path) -> None:
    _commit_ready(repo)
    (repo / "train.py").write_text("print('staged')\n")
    git(repo, "add", "train.py")
    git(repo, "write-tree")  # valid cache-tree, but not HEAD's tree
    with GitRepo(str(repo)) as g:
        snap = take_snapshot(g)
    assert snap.dirty
    assert git(repo, "show", f"{snap.code_commit}:train.py") == "print('staged')\n"
    fsck(repo)
