"""Model registry tags in `gitxp push`/`pull` and `gitxp remote setup`, against real remotes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import gitxp
from gitxp.cli.main import cli
from gitxp.ops import sharing
from tests.gitutil import fsck, git
from tests.ops.test_sharing_transports import record
from tests.servers import git_daemon


def tags(path: Path) -> dict[str, str]:
    """{tag name: tag object id} of the repository at *path*, read by the real git."""
    out = git(path, "for-each-ref", "--format=%(objectname) %(refname)", "refs/tags")
    return {line.split()[1][len("refs/tags/") :]: line.split()[0] for line in out.splitlines()}


def all_refs(path: Path) -> dict[str, str]:
    out = git(path, "for-each-ref", "--format=%(objectname) %(refname)")
    return {line.split()[1]: line.split()[0] for line in out.splitlines()}


def stages(path: Path, model: str) -> dict[str, str]:
    with gitxp.open(path) as r:
        return {stage: v.version for stage, v in r.model(model).stages.items()}


@pytest.fixture(params=["path", "git"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A bare remote, and the URL to reach it by: a path, or git:// from a real git daemon."""
    base = tmp_path / "srv"
    base.mkdir()
    git(base, "init", "-q", "--bare", "models.git")
    if request.param == "path":
        yield base / "models.git", str(base / "models.git")
    else:
        with git_daemon(base) as url:
            yield base / "models.git", f"{url}/models.git"


def test_stage_assignments_travel_push_clone_pull(
    repo: Path, tmp_path: Path, remote: tuple[Path, str]
) -> None:
    bare, url = remote
    churn, other = record(repo, 2)
    with gitxp.open(repo) as r:
        r.register_model(churn, "churn")
        r.assign_stage("churn", "prod")
        r.register_model(other, "fraud")

    # pushing one run carries its tags, not the other run's
    pushed = sharing.push(repo, url, runs=[churn])
    assert {t.tag: t.status for t in pushed.tags} == {"churn@v0.0.1": "new", "churn#prod#1": "new"}
    assert set(tags(bare)) == {"churn@v0.0.1", "churn#prod#1"}
    assert tags(bare) == {k: v for k, v in tags(repo).items() if k.startswith("churn")}
    again = sharing.push(repo, url, runs=[churn])
    assert {t.status for t in again.tags} == {"up-to-date"}
    fsck(bare)

    # a teammate clones with plain git and pulls the runs: the registry is there
    mate = tmp_path / "mate"
    git(tmp_path, "clone", "-q", url, str(mate))
    pulled = sharing.pull(mate, url)
    assert [x.status for x in pulled] == ["new"]
    assert stages(mate, "churn") == {"prod": "v0.0.1"}
    with gitxp.open(mate) as r:
        assert r.run("churn#prod").id == churn

    # the teammate assigns a stage and pushes; the first user's pull sees it
    with gitxp.open(mate) as r:
        r.assign_stage("churn", "staging")
    assert {t.tag: t.status for t in sharing.push(mate, url).tags}["churn#staging#2"] == "new"
    back = sharing.pull(repo, url)
    assert {t.tag: t.status for t in back.tags}["churn#staging#2"] == "new"
    assert stages(repo, "churn") == {"prod": "v0.0.1", "staging": "v0.0.1"}
    # the tag arrived whole and packed with its peeled commit, as git expects
    assert (
        git(repo, "rev-parse", "churn#staging#2^{commit}").strip()
        == git(repo, "rev-parse", f"refs/gitxp/runs/{churn}").strip()
    )
    assert tags(repo)["churn#staging#2"] == tags(mate)["churn#staging#2"]
    fsck(repo)
    fsck(mate)
    # GTO itself reads the pulled registry the same way (once: the transport changes nothing)
    if "://" in url:
        return
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("gto")), "show", "--json", "-r", str(repo)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(shown.stdout)["churn"]["stage"] == {"prod": "v0.0.1", "staging": "v0.0.1"}


def test_a_conflicting_tag_is_never_replaced_on_either_side(
    repo: Path, tmp_path: Path, runner: CliRunner
) -> None:
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    (run_id,) = record(repo, 1)
    with gitxp.open(repo) as r:
        r.register_model(run_id, "churn")
    sharing.push(repo, str(bare))
    mate = tmp_path / "mate"
    git(tmp_path, "clone", "-q", str(bare), str(mate))
    sharing.pull(mate, str(bare))
    # both assign prod at once: each writes its own churn#prod#1
    with gitxp.open(repo) as r:
        r.assign_stage("churn", "prod")
    with gitxp.open(mate) as r:
        r.assign_stage("churn", "prod", message="the teammate's promotion")
    ours, theirs = tags(repo)["churn#prod#1"], tags(mate)["churn#prod#1"]
    assert ours != theirs
    sharing.push(mate, str(bare))
    assert tags(bare)["churn#prod#1"] == theirs

    pushed = runner.invoke(cli, ["push", "-C", str(repo), str(bare)])
    assert pushed.exit_code == 1
    assert "tag churn#prod#1: conflict: the remote has a different tag" in pushed.output
    assert tags(bare)["churn#prod#1"] == theirs  # the remote's tag is untouched

    pulled = runner.invoke(cli, ["pull", "-C", str(repo), str(bare), "--format", "json"])
    assert pulled.exit_code == 1
    data = json.loads(pulled.stdout)
    assert [(t["tag"], t["status"]) for t in data["tags"] if t["status"] != "up-to-date"] == [
        ("churn#prod#1", "conflict")
    ]
    assert tags(repo)["churn#prod#1"] == ours  # and the local one too
    fsck(repo)


def test_a_hostile_remote_cannot_move_local_refs_outside_what_was_asked(
    repo: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "evil.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    wanted, unwanted = record(repo, 2)
    code = git(repo, "rev-parse", "HEAD").strip()
    with gitxp.open(repo) as r:
        r.register_model(wanted, "churn")
        r.register_model(unwanted, "fraud")
    sharing.push(repo, str(bare))
    # the remote's owner adds tags of every kind gitxp must not take
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    git(work, "fetch", "-q", "origin", "refs/gitxp/*:refs/gitxp/*")
    git(work, "tag", "-a", "-m", "code, not a run", "churn@v9.0.0", code)
    git(work, "tag", "churn#prod#7", f"refs/gitxp/runs/{wanted}")  # lightweight
    git(work, "tag", "-a", "-m", "not asked for", "fraud#prod#2", f"refs/gitxp/runs/{unwanted}")
    git(work, "tag", "-a", "-m", "not registry", "release-1", f"refs/gitxp/runs/{wanted}")
    git(work, "push", "-q", "origin", "--tags")

    clone = tmp_path / "clone"
    git(tmp_path, "init", "-q", "-b", "main", str(clone))
    sharing.pull(clone, str(bare), runs=[wanted[:10]])
    assert set(tags(clone)) == {"churn@v0.0.1"}
    before = all_refs(clone)
    pulled = sharing.pull(clone, str(bare))
    after = all_refs(clone)
    assert {t.tag for t in pulled.tags if t.status == "new"} == {"fraud@v0.0.1", "fraud#prod#2"}
    assert set(after) - set(before) == {
        f"refs/gitxp/runs/{unwanted}",
        "refs/tags/fraud@v0.0.1",
        "refs/tags/fraud#prod#2",
    }
    assert {k: after[k] for k in before} == before
    fsck(clone)


def test_remote_setup_makes_plain_git_carry_registry_tags(
    repo: Path, tmp_path: Path, runner: CliRunner
) -> None:
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    (run_id,) = record(repo, 1)
    with gitxp.open(repo) as r:
        r.register_model(run_id, "churn")
        r.assign_stage("churn", "prod")
    result = runner.invoke(cli, ["remote", "setup", "--format", "json"])
    assert json.loads(result.output)["push"] == [
        "HEAD",
        "refs/gitxp/runs/*:refs/gitxp/runs/*",
        "refs/tags/*:refs/tags/*",
    ]
    git(repo, "push", "-q")
    assert set(tags(bare)) == {"churn@v0.0.1", "churn#prod#1"}

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    runner.invoke(cli, ["remote", "setup", "-C", str(clone), "--no-push"])
    with gitxp.open(repo) as r:
        r.assign_stage("churn", "staging")
    git(repo, "push", "-q")
    git(clone, "fetch", "-q")
    assert stages(clone, "churn") == {"prod": "v0.0.1", "staging": "v0.0.1"}
    no_tags = runner.invoke(
        cli, ["remote", "setup", "-C", str(clone), "--no-tags", "--no-push", "--format", "json"]
    )
    assert json.loads(no_tags.output)["fetch"] == []  # the run refspec was there already
