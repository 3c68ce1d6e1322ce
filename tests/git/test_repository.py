"""The git layer: a process's runs reuse one open repository; objects of every size and
kind are written and read as git does."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import gitxp
from gitxp.errors import GitxpError
from gitxp.git import repository
from gitxp.git.repository import GitRepo
from tests.gitutil import git


def test_runs_one_after_another_reuse_the_repository(repo: Path) -> None:
    with gitxp.start_run(snapshot=False) as first:
        first.log_metric("loss", 1.0)
    with gitxp.start_run(snapshot=False) as second:
        second.log_metric("loss", 0.5)
    assert second._git is first._git
    git(repo, "fsck", "--strict")
    assert len(gitxp.open().runs()) == 2


def test_runs_live_at_the_same_time_do_not_share_it(repo: Path) -> None:
    with gitxp.start_run(snapshot=False) as outer, gitxp.start_run(snapshot=False) as inner:
        assert inner._git is not outer._git
        outer.log_metric("a", 1.0)
        inner.log_metric("b", 2.0)
    git(repo, "fsck", "--strict")
    assert sorted(gitxp.open().runs()["id"]) == sorted([outer.id, inner.id])


def test_a_config_change_opens_the_repository_again(repo: Path) -> None:
    with gitxp.start_run(snapshot=False) as first:
        pass
    git(repo, "config", "core.looseCompression", "0")
    with gitxp.start_run(snapshot=False) as second:
        second.log_params({"lr": 0.1})
    assert second._git is not first._git
    # level 0 (stored, not deflated): the new run's params.json is legible in its object
    sha = git(repo, "rev-parse", f"refs/gitxp/runs/{second.id}:params.json").strip()
    raw = (repo / ".git" / "objects" / sha[:2] / sha[2:]).read_bytes()
    assert b'"lr": 0.1' in raw
    git(repo, "fsck", "--strict")


def test_the_author_follows_the_environment_from_run_to_run(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_AUTHOR_NAME", "First Author")
    with gitxp.start_run(snapshot=False) as first:
        pass
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Second Author")
    with gitxp.start_run(snapshot=False) as second:
        pass
    assert second._git is first._git
    assert git(repo, "log", "-1", "--format=%an", f"refs/gitxp/runs/{first.id}") == (
        "First Author\n"
    )
    assert git(repo, "log", "-1", "--format=%an", f"refs/gitxp/runs/{second.id}") == (
        "Second Author\n"
    )


def test_a_forked_child_does_not_inherit_idle_repositories(repo: Path) -> None:
    with gitxp.start_run(snapshot=False):
        pass
    assert repository._IDLE
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        os._exit(0 if not repository._IDLE else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert repository._IDLE  # the parent keeps its own


def test_the_idle_pool_is_bounded_and_closes_what_it_drops(tmp_path: Path) -> None:
    repos = []
    for i in range(repository._IDLE_MAX + 2):
        path = tmp_path / f"r{i}"
        path.mkdir()
        git(path, "init", "-q")
        repos.append(GitRepo(str(path)))
    closed = []
    for r in repos:
        r.close = lambda r=r: closed.append(r)  # type: ignore[method-assign]
        repository.release(r)
    kept = [r for r in repos if repository._IDLE.get(r.root) is r]
    assert len(kept) == repository._IDLE_MAX
    assert closed == repos[:2]
    for r in kept:
        repository._IDLE.pop(r.root)


@pytest.mark.parametrize("size", [0, 1, 200, 3000, 9000, 40_000, 300_000])
def test_loose_objects_of_every_size_read_back_with_git(repo: Path, size: int) -> None:
    data = (os.urandom(size // 2) + b"metric " * (size // 7 + 1))[:size]
    with GitRepo(str(repo)) as g:
        sha = g.write_blob(data)
        # gitxp's own reader, for files under and over its first 64 KiB read
        assert g.read_blob(sha) == data
    raw = zlib.decompress((repo / ".git" / "objects" / sha[:2] / sha[2:]).read_bytes())
    assert raw == b"blob %d\0" % size + data
    assert git(repo, "cat-file", "-s", sha).strip() == str(size)
    git(repo, "fsck", "--strict")


@pytest.mark.parametrize("size", [3000, 300_000])
def test_a_truncated_loose_object_is_reported_corrupt(repo: Path, size: int) -> None:
    with GitRepo(str(repo)) as g:
        sha = g.write_blob(os.urandom(size))
    path = repo / ".git" / "objects" / sha[:2] / sha[2:]
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-100])
    with GitRepo(str(repo)) as g, pytest.raises(GitxpError, match=f"object {sha} is corrupt"):
        g.read_blob(sha)


def test_commits_are_read_directly_and_other_objects_are_refused(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    with GitRepo(str(repo)) as g:
        info = g.read_commit(head)
        assert info.tree == git(repo, "rev-parse", "HEAD^{tree}").strip()
        assert info.parents == ()
        assert info.message == "initial\n"
        assert info.author == "Ada Tester <ada@example.com>"
        with pytest.raises(GitxpError, match="is a tree, not a commit"):
            g.read_commit(info.tree)


_READ_AND_EXIT = """
import gitxp
repo = gitxp.open(".")
run = repo.run(repo.rows()[0]["id"])
print(run.params["lr"], len(run.metric_history("loss")))
{tail}
"""


@pytest.mark.parametrize(
    "tail",
    [
        "",  # the script ends with the repository still open
        "del run, repo; import gc; gc.collect(); print('dropped')",  # dropped mid-program
    ],
)
def test_a_packed_repository_left_open_closes_quietly(repo: Path, tail: str) -> None:
    """A clone's objects are packed: a script that reads it and never closes the
    repository must not print dulwich's unclosed-pack warnings, at exit or when
    the repository is garbage collected (-X dev shows every ResourceWarning)."""
    with gitxp.start_run(params={"lr": 0.1}, snapshot=False) as run:
        run.log_metric("loss", 1.0)
    git(repo, "gc", "-q")
    assert not list((repo / ".git" / "objects").glob("??/*")), "objects should all be packed"
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-c", _READ_AND_EXIT.format(tail=tail)],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("0.1 1"), result.stdout
    assert result.stderr == "", result.stderr
