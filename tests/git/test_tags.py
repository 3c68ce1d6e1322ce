"""Annotated tags as git writes them: created once, read back with tagger, time and message."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitxp.errors import RefUpdateError
from gitxp.git.repository import GitRepo
from gitxp.git.tags import create_tag, list_tags
from tests.gitutil import fsck, git


def test_a_created_tag_is_an_annotated_tag_git_reads(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    g = GitRepo.discover(repo)
    sha = create_tag(
        g, "churn@v1.2.3", head, "Registering churn\n\nGitxp-Run: x\n", when=1700000000
    )
    assert git(repo, "cat-file", "-t", "churn@v1.2.3").strip() == "tag"
    assert git(repo, "rev-parse", "churn@v1.2.3").strip() == sha
    assert git(repo, "rev-parse", "churn@v1.2.3^{commit}").strip() == head
    assert "Ada Tester 1700000000" in git(
        repo, "for-each-ref", "--format=%(taggername) %(taggerdate:unix)", "refs/tags/"
    )
    create_tag(g, "churn#prod#1", head, "Assigning stage prod\n")
    fsck(repo)
    (info_a, info_b) = sorted(list_tags(g), key=lambda t: t.name)
    assert info_a.name == "churn#prod#1" and info_a.target == head
    assert info_b.name == "churn@v1.2.3" and info_b.time == 1700000000
    assert info_b.tagger_name == "Ada Tester" and info_b.tagger_email == "ada@example.com"
    assert info_b.message.startswith("Registering churn\n")


def test_an_existing_tag_is_never_replaced(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "tag", "-a", "-m", "theirs", "churn@v0.0.1")
    before = git(repo, "rev-parse", "churn@v0.0.1")
    with pytest.raises(RefUpdateError, match="already exists"):
        create_tag(GitRepo.discover(repo), "churn@v0.0.1", head, "mine\n")
    assert git(repo, "rev-parse", "churn@v0.0.1") == before


@pytest.mark.parametrize(
    "name", ["a..b@v1.0.0", "churn@{v1}", "churn v1", "churn.lock", "x/.hidden", "churn@v1\n"]
)
def test_a_name_git_refuses_is_refused_and_nothing_is_written(repo: Path, name: str) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    with pytest.raises(RefUpdateError, match="git refuses"):
        create_tag(GitRepo.discover(repo), name, head, "m\n")
    assert git(repo, "tag", "-l") == ""


def test_lightweight_tags_are_not_listed(repo: Path) -> None:
    git(repo, "tag", "churn@v0.0.1")  # lightweight: GTO ignores these too
    git(repo, "tag", "-a", "-m", "x", "churn@v0.0.2")
    assert [t.name for t in list_tags(GitRepo.discover(repo))] == ["churn@v0.0.2"]
