"""Managing runs: every change is a new commit on the run's ref; rm is recoverable until gc."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import gitxp
from gitxp.ops.manage import note, tag, trash
from tests.gitutil import fsck, git, run_refs
from tests.workflows_util import gitxp as run_gitxp


def _record(name: str, repo: Path, **metrics: float) -> str:
    with gitxp.start_run(name=name, params={"lr": 0.1}) as run:
        for key, value in metrics.items():
            run.log_metric(key, value)
    return run.id


def _subjects(repo: Path, ref: str) -> list[str]:
    return git(repo, "log", "--format=%s", ref).splitlines()


def test_tag_note_rename_append_commits_that_git_shows(repo: Path) -> None:
    run_id = _record("first", repo, acc=0.9)
    ref = f"refs/gitxp/runs/{run_id}"
    before = _subjects(repo, ref)
    assert tag("first", {"best": "yes", "stage": 2}) == {"best": "yes", "stage": "2"}
    assert tag("first", remove=["stage"]) == {"best": "yes"}
    note("first", "diverged late")
    assert note("first", "second thought") == "diverged late\n\nsecond thought"
    assert gitxp.rename("first", "champion") == "first"
    after = _subjects(repo, ref)
    assert after[len(after) - len(before) :] == before  # history only grows
    assert after[:5] == [
        "gitxp: rename to champion on run champion",
        "gitxp: add a note on run first",
        "gitxp: add a note on run first",
        "gitxp: tag -stage on run first",
        "gitxp: tag best=yes stage=2 on run first",
    ]
    meta = json.loads(git(repo, "show", f"{ref}:run.json"))
    assert meta["tags"] == {"best": "yes"} and meta["name"] == "champion"
    assert git(repo, "show", f"{ref}:notes.md") == "diverged late\n\nsecond thought\n"
    record = gitxp.open(repo).run("champion")
    assert record.id == run_id and record.last_metrics == {"acc": 0.9}
    assert record.params == {"lr": 0.1} and record.status == "FINISHED"
    fsck(repo)


def test_cli_tag_note_rename(repo: Path) -> None:
    _record("cli-run", repo)
    assert run_gitxp(repo, "tag", "cli-run", "a=1", "b=two").stdout.strip() == "tags: a=1, b=two"
    result = run_gitxp(repo, "note", "cli-run", "-", input="from stdin\n")
    assert result.returncode == 0, result.stderr
    assert run_gitxp(repo, "rename", "cli-run", "renamed").returncode == 0
    record = gitxp.open(repo).run("renamed")
    assert record.notes == "from stdin" and record.tags == {"a": "1", "b": "two"}
    bad = run_gitxp(repo, "tag", "renamed", "-d", "missing")
    assert bad.returncode == 1 and "has no tag 'missing'" in bad.stderr


def test_a_running_run_cannot_be_edited(repo: Path) -> None:
    run = gitxp.start_run(name="live")
    try:
        with pytest.raises(gitxp.RunActiveError, match="still RUNNING"):
            tag("live", {"x": "1"})
        _record("done", repo)
        with pytest.raises(gitxp.RunActiveError):
            gitxp.rm(["done", "live"])
        assert len(run_refs(repo)) == 2  # nothing was moved
    finally:
        run.end()
    assert tag("live", {"x": "1"}) == {"x": "1"}


def test_rename_refuses_a_name_in_use(repo: Path) -> None:
    _record("one", repo)
    _record("two", repo)
    with pytest.raises(gitxp.InvalidValueError, match="already the name"):
        gitxp.rename("two", "one")


def test_rm_is_recoverable_until_gc(repo: Path) -> None:
    keep = _record("keep", repo)
    gone = _record("gone", repo)
    result = run_gitxp(repo, "rm", "gone")
    assert result.returncode == 0 and "gitxp rm --undo" in result.stdout
    assert run_refs(repo) == [f"refs/gitxp/runs/{keep}"]
    assert [r["name"] for r in gitxp.open(repo).rows()] == ["keep"]
    assert git(repo, "rev-parse", "--verify", f"refs/gitxp/trash/{gone}").strip()
    assert [t.name for t in trash()] == ["gone"]
    listed = run_gitxp(repo, "rm", "--list", "--format", "json")
    assert [t["id"] for t in json.loads(listed.stdout)] == [gone]
    fsck(repo)

    assert run_gitxp(repo, "rm", "--undo", "gone").returncode == 0
    assert sorted(run_refs(repo)) == sorted([f"refs/gitxp/runs/{keep}", f"refs/gitxp/runs/{gone}"])
    restored = gitxp.open(repo).run("gone")
    assert restored.status == "FINISHED" and "removed" not in restored.meta
    assert _subjects(repo, restored.ref)[:2] == [
        "gitxp: restore from the trash on run gone",
        "gitxp: remove (to the trash) on run gone",
    ]

    gitxp.rm(["gone"])
    report = gitxp.gc()  # within the grace period: kept
    assert report.deleted == [] and report.kept_in_trash == 1
    report = gitxp.gc(grace_days=0)
    assert [t.id for t in report.deleted] == [gone]
    assert git(repo, "for-each-ref", "refs/gitxp/trash/") == ""
    assert not (repo / ".git" / "logs" / "refs" / "gitxp" / "trash" / gone).exists()
    from gitxp.store.listing_cache import CACHE_FILE

    cache = (repo / ".git" / "gitxp" / CACHE_FILE).read_bytes()
    assert gone.encode() not in cache and keep.encode() in cache
    fsck(repo)


def test_gc_repacks_and_packs_refs_only_when_no_run_is_live(repo: Path) -> None:
    ids = [_record(f"r{i}", repo, acc=i) for i in range(3)]
    live = gitxp.start_run(name="live")
    try:
        report = gitxp.gc()
        assert report.refs_skipped and "being recorded" in report.refs_skipped
        assert report.refs_packed == 0
    finally:
        live.end()
    report = gitxp.gc()
    assert report.refs_skipped is None and report.refs_packed == 4
    assert report.packs_after == 1 and report.loose_after == 0
    packed = (repo / ".git" / "packed-refs").read_text()
    assert all(f"refs/gitxp/runs/{i}" in packed for i in ids)
    assert not (repo / ".git" / "refs" / "gitxp" / "runs" / ids[0]).exists()
    # everything still reads, and a new run and an edit still work on packed refs
    assert sorted(r["name"] for r in gitxp.open(repo).rows()) == ["live", "r0", "r1", "r2"]
    assert tag("r1", {"after": "gc"}) == {"after": "gc"}
    _record("r3", repo)
    assert len(gitxp.open(repo).rows()) == 5
    git(repo, "gc", "--quiet")  # git itself is happy with what we left
    fsck(repo)
    again = run_gitxp(repo, "gc")  # git gc left one pack: nothing to repack
    assert again.returncode == 0, again.stderr
    assert "objects: 1 pack + 0 loose -> 1 pack + 0 loose" in again.stdout, again.stdout


def test_branch_exposes_the_run_as_an_ordinary_branch(repo: Path) -> None:
    run_id = _record("shared", repo, acc=0.5)
    result = run_gitxp(repo, "branch", "shared", "runs/shared")
    assert result.returncode == 0, result.stderr
    tip = git(repo, "rev-parse", f"refs/gitxp/runs/{run_id}").strip()
    assert git(repo, "rev-parse", "runs/shared").strip() == tip
    assert json.loads(git(repo, "show", "runs/shared:params.json")) == {"lr": 0.1}
    code = gitxp.open(repo).run("shared").code_commit
    assert code in git(repo, "rev-list", "--first-parent", "runs/shared").split()
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"  # not switched
    again = run_gitxp(repo, "branch", "shared", "runs/shared")
    assert again.returncode == 0  # same commit: nothing to do
    main = run_gitxp(repo, "branch", "shared", "main")
    assert main.returncode == 1 and "exists already" in main.stderr
    bad = run_gitxp(repo, "branch", "shared", "bad..name")
    assert bad.returncode == 1 and "not a valid git branch name" in bad.stderr
