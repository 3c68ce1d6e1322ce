"""Pushing and fetching runs through every transport, against real servers on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import gitxp
from gitxp.git.repository import GitRepo
from gitxp.ops import sharing
from gitxp.tracking.options import RunOptions
from gitxp.tracking.run import Run
from tests.gitutil import fsck, git, run_refs
from tests.servers import free_port, git_daemon, git_http


def record(path: Path, n: int, experiment: str = "exp", **params: object) -> list[str]:
    ids = []
    for i in range(n):
        with gitxp.start_run(experiment=experiment, repo=str(path), params={"i": i, **params}) as r:
            r.log_metric("loss", 1.0 / (i + 1), step=0)
            r.log_metric("loss", 0.5 / (i + 1), step=1)
            ids.append(r.id)
    return ids


def continue_run(path: Path, run_id: str, value: float) -> None:
    """Add a checkpoint to an existing run (what `gitxp run` or an edit does)."""
    run = Run(GitRepo(str(path)), RunOptions(checkpoint_seconds=3600), _join=run_id)
    run.log_metric("extra", value)
    run.end()


def tip(path: Path, run_id: str) -> str:
    return git(path, "rev-parse", f"refs/gitxp/runs/{run_id}").strip()


def statuses(results: list[sharing.RefResult]) -> dict[str, str]:
    return {r.run_id: r.status for r in results}


@pytest.fixture
def served(tmp_path: Path) -> Path:
    base = tmp_path / "srv"
    base.mkdir()
    git(base, "init", "-q", "--bare", "runs.git")
    return base


@pytest.fixture(params=["path", "file", "git", "http"])
def remote_url(request: pytest.FixtureRequest, served: Path) -> Iterator[str]:
    bare = served / "runs.git"
    if request.param == "path":
        yield str(bare)
    elif request.param == "file":
        yield bare.as_uri()
    elif request.param == "git":
        with git_daemon(served) as url:
            yield f"{url}/runs.git"
    else:
        with git_http(served) as url:
            yield f"{url}/runs.git"


def test_runs_round_trip_through_each_transport(
    repo: Path, tmp_path: Path, served: Path, remote_url: str
) -> None:
    bare = served / "runs.git"
    first = record(repo, 2)

    pushed = sharing.push(repo, remote_url)
    assert statuses(pushed) == dict.fromkeys(first, "new")
    assert sorted(run_refs(bare)) == sorted(f"refs/gitxp/runs/{i}" for i in first)
    fsck(bare)

    # pushing again moves nothing
    assert set(statuses(sharing.push(repo, remote_url)).values()) == {"up-to-date"}

    third = record(repo, 1)[0]
    again = statuses(sharing.push(repo, remote_url))
    assert again[third] == "new" and [again[i] for i in first] == ["up-to-date"] * 2

    # the real git CLI on the other side sees, clones and fetches them
    listed = git(repo, "ls-remote", remote_url, "refs/gitxp/runs/*")
    assert len(listed.splitlines()) == 3 and tip(repo, third) in listed
    # the listing index went with them, over every transport, and moved by fast-forward
    index = git(repo, "ls-remote", remote_url, "refs/gitxp/index/*").split()
    assert index[1] == "refs/gitxp/index/v1"
    assert len(git(bare, "rev-list", index[0]).split()) == 2
    clone = tmp_path / "git-clone"
    git(tmp_path, "clone", "-q", remote_url, str(clone))
    git(clone, "fetch", "-q", "origin", "refs/gitxp/*:refs/gitxp/*")
    assert sorted(run_refs(clone)) == sorted(run_refs(repo))
    assert '"i": 0' in git(clone, "show", f"refs/gitxp/runs/{first[0]}:params.json")
    fsck(clone)

    # and gitxp fetches them into a repository that has none of it
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", "-b", "main", str(other))
    fetched = sharing.fetch(other, remote_url)
    assert statuses(fetched) == dict.fromkeys([*first, third], "new")
    fsck(other)
    with gitxp.open(other) as theirs, gitxp.open(repo) as ours:
        for run_id in [*first, third]:
            a, b = theirs.run(run_id), ours.run(run_id)
            assert a.params == b.params and a.status == "FINISHED"
            assert a.metrics().equals(b.metrics())
            assert a.code_commit == b.code_commit
    assert set(statuses(sharing.fetch(other, remote_url)).values()) == {"up-to-date"}


def _all_objects(bare: Path) -> set[str]:
    out = git(bare, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
    return set(out.split())


def _pack_objects(idx: Path) -> list[str]:
    with idx.open("rb") as f:
        out = subprocess.run(["git", "show-index"], stdin=f, capture_output=True, text=True)
    return [line.split()[1] for line in out.stdout.splitlines()]


def test_push_sends_only_the_objects_the_remote_lacks(repo: Path, served: Path) -> None:
    bare = served / "runs.git"
    git(bare, "config", "receive.unpackLimit", "1")  # keep every push as one pack we can read
    git(repo, "push", "-q", str(bare), "main")
    record(repo, 2)
    with git_daemon(served) as url:
        sharing.push(repo, f"{url}/runs.git")
        before = _all_objects(bare)
        packs = set((bare / "objects" / "pack").glob("*.idx"))
        new = record(repo, 1)[0]
        result = sharing.push(repo, f"{url}/runs.git")
    assert statuses(result)[new] == "new"
    added = set((bare / "objects" / "pack").glob("*.idx")) - packs
    assert len(added) == 1  # one pack
    sent = _pack_objects(added.pop())
    assert len(sent) == len(set(sent))
    assert set(sent) == _all_objects(bare) - before  # nothing the remote had was sent again
    needed = git(repo, "rev-list", "--objects", tip(repo, new)).split("\n")
    assert {line.split()[0] for line in needed if line} <= _all_objects(bare)
    fsck(bare)


def test_fast_forwards_move_and_diverged_runs_are_left_alone(repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    run_id = record(repo, 1)[0]
    sharing.push(repo, str(bare))
    mine = tmp_path / "mine"
    git(tmp_path, "clone", "-q", str(bare), str(mine))
    assert statuses(sharing.fetch(mine, str(bare))) == {run_id: "new"}

    # more checkpoints on one side: a fast-forward both ways, not a conflict
    continue_run(repo, run_id, 1.0)
    assert [(r.status, r.message) for r in sharing.push(repo, str(bare))] == [
        ("updated", "fast-forward")
    ]
    assert statuses(sharing.fetch(mine, str(bare))) == {run_id: "updated"}
    assert tip(mine, run_id) == tip(repo, run_id) == tip(bare, run_id)

    # a side that is behind cannot move the other backwards
    continue_run(repo, run_id, 2.0)
    sharing.push(repo, str(bare))
    behind = sharing.push(mine, str(bare))
    assert behind[0].status == "rejected" and "gitxp pull" in behind[0].message
    assert tip(bare, run_id) == tip(repo, run_id)
    sharing.fetch(mine, str(bare))

    # both sides continue the same run: diverged, reported, nothing overwritten
    continue_run(repo, run_id, 3.0)
    continue_run(mine, run_id, 4.0)
    ours, theirs = tip(repo, run_id), tip(mine, run_id)
    assert statuses(sharing.push(repo, str(bare))) == {run_id: "updated"}
    rejected = sharing.push(mine, str(bare))
    assert rejected[0].status == "rejected" and "--force" in rejected[0].message
    assert tip(bare, run_id) == ours
    assert statuses(sharing.fetch(mine, str(bare))) == {run_id: "rejected"}
    assert tip(mine, run_id) == theirs

    forced = sharing.fetch(mine, str(bare), force=True)
    assert forced[0].status == "updated" and "forced" in forced[0].message
    assert tip(mine, run_id) == ours
    assert theirs in git(mine, "reflog", "show", "--format=%H", f"refs/gitxp/runs/{run_id}")

    continue_run(mine, run_id, 5.0)
    continue_run(repo, run_id, 6.0)
    sharing.push(repo, str(bare))
    assert sharing.push(mine, str(bare), force=True)[0].status == "updated"
    assert tip(bare, run_id) == tip(mine, run_id)
    for path in (repo, mine, bare):
        fsck(path)


CONCURRENT = """
import sys
import gitxp
from gitxp.ops import sharing

path, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    with gitxp.start_run(experiment="concurrent", repo=path, params={"i": i, "who": path}) as r:
        r.log_metric("loss", 1.0 / (i + 1))
results = sharing.push(path, url)
assert [x.status for x in results] == ["new"] * n, results
"""


def test_two_clones_record_push_and_pull_concurrently(repo: Path, tmp_path: Path) -> None:
    base = tmp_path / "srv"
    base.mkdir()
    bare = base / "team.git"
    git(base, "init", "-q", "--bare", "team.git")
    git(repo, "push", "-q", str(bare), "main")
    clones = [tmp_path / "alice", tmp_path / "bob"]
    for clone in clones:
        git(tmp_path, "clone", "-q", str(bare), str(clone))
    with git_daemon(base) as url:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", CONCURRENT, str(c), f"{url}/team.git", "4"],
                stderr=subprocess.PIPE,
                text=True,
            )
            for c in clones
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        for clone in clones:
            got = statuses(sharing.pull(clone, f"{url}/team.git"))
            assert list(got.values()).count("new") == 4
            assert list(got.values()).count("up-to-date") == 4
    union = sorted(run_refs(bare))
    assert len(union) == 8
    for clone in clones:
        assert sorted(run_refs(clone)) == union
        fsck(clone)
        with gitxp.open(clone) as r:
            assert len(r.runs(experiment="concurrent")) == 8
    fsck(bare)


def test_a_push_to_a_path_shares_objects_another_pusher_is_writing(
    repo: Path, served: Path
) -> None:
    # two clones pushing to one repository on a shared disk write the objects they have in
    # common at the same moment: one finds the other's `<object>.lock` (seen as a failed
    # push of the shipped index's shard when two pushers raced)
    bare = served / "runs.git"
    (run_id,) = record(repo, 1)
    commit = tip(repo, run_id)
    fanout = bare / "objects" / commit[:2]
    fanout.mkdir(parents=True)
    lock = fanout / f"{commit[2:]}.lock"
    lock.write_bytes(b"")  # the other writer, half-way through
    assert statuses(sharing.push(repo, str(bare))) == {run_id: "new"}
    assert tip(bare, run_id) == commit and lock.exists()
    lock.unlink()
    fsck(bare)


def test_a_refused_push_changes_nothing_and_can_be_retried(repo: Path, served: Path) -> None:
    bare = served / "runs.git"
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'disk quota exceeded' >&2\nexit 1\n")
    hook.chmod(0o755)
    ids = record(repo, 2)
    with git_daemon(served) as url:
        failed = sharing.push(repo, f"{url}/runs.git")
        assert {r.status for r in failed} == {"error"}
        assert "push again" in failed[0].message
        assert run_refs(bare) == []
        fsck(bare)
        hook.unlink()
        assert statuses(sharing.push(repo, f"{url}/runs.git")) == dict.fromkeys(ids, "new")
    fsck(bare)


def test_an_unreachable_server_is_one_clear_error(repo: Path) -> None:
    record(repo, 1)
    before = run_refs(repo)
    with pytest.raises(gitxp.RemoteError, match=r"127\.0\.0\.1"):
        sharing.push(repo, f"git://127.0.0.1:{free_port()}/nothing.git")
    with pytest.raises(gitxp.RemoteError):
        sharing.fetch(repo, f"http://127.0.0.1:{free_port()}/nothing.git")
    assert run_refs(repo) == before


def test_a_fetch_whose_objects_arrived_but_refs_did_not_completes_on_retry(
    repo: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "r.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    ids = record(repo, 2)
    sharing.push(repo, str(bare))
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", "-b", "main", str(other))
    # objects in, no ref set: what an interrupted fetch leaves behind
    git(other, "fetch", "-q", str(bare), f"refs/gitxp/runs/{ids[0]}")
    assert run_refs(other) == []
    assert statuses(sharing.fetch(other, str(bare))) == dict.fromkeys(ids, "new")
    fsck(other)


def test_selected_runs_and_experiments(repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "r.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    a = record(repo, 2, experiment="a")
    b = record(repo, 1, experiment="b")
    assert set(statuses(sharing.push(repo, str(bare), experiment="b"))) == set(b)
    with gitxp.open(repo) as r:
        name = r.run(a[0]).name
    assert statuses(sharing.push(repo, str(bare), runs=[name])) == {a[0]: "new"}
    assert len(run_refs(bare)) == 2
    with pytest.raises(gitxp.UsageError):
        sharing.push(repo, str(bare), runs=[a[1]], all=True)
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", "-b", "main", str(other))
    assert statuses(sharing.fetch(other, str(bare), runs=[b[0][:10]])) == {b[0]: "new"}
    with pytest.raises(gitxp.RunNotFoundError):
        sharing.fetch(other, str(bare), runs=[a[1]])


def test_remote_defaults_follow_git(repo: Path, tmp_path: Path) -> None:
    record(repo, 1)
    with pytest.raises(gitxp.RemoteError, match="origin"):
        sharing.push(repo)
    with pytest.raises(gitxp.RemoteError, match="nowhere"):
        sharing.push(repo, "nowhere")
    upstream = tmp_path / "up.git"
    git(tmp_path, "init", "-q", "--bare", str(upstream))
    git(repo, "remote", "add", "upstream", "../up.git")  # relative to the work tree
    git(repo, "config", "branch.main.remote", "upstream")
    assert [r.status for r in sharing.push(repo)] == ["new"]
    assert len(run_refs(upstream)) == 1


def test_progress_reports_reach_the_callback(repo: Path, served: Path) -> None:
    record(repo, 3)
    lines: list[str] = []
    with git_daemon(served) as url:
        sharing.push(repo, f"{url}/runs.git", progress=lines.append)
        sharing.fetch(repo, f"{url}/runs.git", progress=lines.append)
    assert any(line.startswith("pushing 3 runs") for line in lines)
    assert any(line.startswith("fetching runs from") for line in lines)
    assert all(line.endswith(("\n", "\r")) for line in lines)


FAKE_SSH = """#!/bin/sh
# stands in for ssh: skip the options and the host, run the git command here
while [ $# -gt 1 ]; do
  case "$1" in
    -p|-i|-o) shift 2 ;;
    -*) shift ;;
    *) echo "$1" >> "$(dirname "$0")/hosts"; shift; break ;;
  esac
done
exec sh -c "$1"
"""


def test_ssh_urls_go_through_the_configured_ssh_command(repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "srv" / "team.git"
    bare.parent.mkdir()
    git(bare.parent, "init", "-q", "--bare", "team.git")
    ssh = tmp_path / "bin" / "fake-ssh"
    ssh.parent.mkdir()
    ssh.write_text(FAKE_SSH)
    ssh.chmod(0o755)
    git(repo, "config", "core.sshCommand", str(ssh))
    ids = record(repo, 2)
    url = f"ssh://alice@build-host.example:2222{bare}"
    assert statuses(sharing.push(repo, url)) == dict.fromkeys(ids, "new")
    assert sorted(run_refs(bare)) == sorted(f"refs/gitxp/runs/{i}" for i in ids)
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", "-b", "main", str(other))
    git(other, "config", "core.sshCommand", str(ssh))
    assert statuses(sharing.fetch(other, f"alice@build-host.example:{bare}")) == dict.fromkeys(
        ids, "new"
    )
    assert set((ssh.parent / "hosts").read_text().split()) == {"alice@build-host.example"}
    fsck(bare)
    fsck(other)


def test_errors_never_show_credentials_and_ls_remote_lists_runs(repo: Path, served: Path) -> None:
    from gitxp.git.remote import ls_remote
    from gitxp.git.remote_config import Remote

    ids = record(repo, 1)
    with git_http(served) as url:
        secret_url = url.replace("http://", "http://alice:s3cret@") + "/missing.git"
        with pytest.raises(gitxp.RemoteError) as info:
            sharing.push(repo, secret_url)
        assert "s3cret" not in str(info.value)
        sharing.push(repo, f"{url}/runs.git")
        with gitxp.open(repo) as r:
            refs = ls_remote(r.git, Remote(None, f"{url}/runs.git"), "refs/gitxp/runs/")
    assert list(refs) == [f"refs/gitxp/runs/{ids[0]}"]


def test_a_push_cut_off_mid_transfer_leaves_the_remote_clean_and_is_retried(
    repo: Path, served: Path
) -> None:
    bare = served / "runs.git"
    ids = record(repo, 2)
    with git_http(served, drop_pushes=1) as url:
        with pytest.raises(gitxp.RemoteError):
            sharing.push(repo, f"{url}/runs.git")
        assert run_refs(bare) == []
        fsck(bare)
        assert statuses(sharing.push(repo, f"{url}/runs.git")) == dict.fromkeys(ids, "new")
    fsck(bare)


@pytest.mark.parametrize("kind", ["path", "git"])
def test_a_dry_run_push_reports_and_changes_nothing(repo: Path, served: Path, kind: str) -> None:
    from click.testing import CliRunner

    from gitxp.cli.main import cli

    bare = served / "runs.git"
    first = record(repo, 1)[0]
    with git_daemon(served) as daemon:
        url = str(bare) if kind == "path" else f"{daemon}/runs.git"
        sharing.push(repo, url)
        second = record(repo, 1)[0]
        before = git(bare, "show-ref")
        objects = git(bare, "count-objects", "-v")
        dry = sharing.push(repo, url, dry_run=True)
        assert statuses(dry) == {first: "up-to-date", second: "new"}
        assert git(bare, "show-ref") == before
        assert git(bare, "count-objects", "-v") == objects
        out = CliRunner().invoke(cli, ["push", url, "-n"])
        assert out.exit_code == 0 and "dry run: nothing was sent" in out.output
        assert statuses(sharing.push(repo, url)) == {first: "up-to-date", second: "new"}
