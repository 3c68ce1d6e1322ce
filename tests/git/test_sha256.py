"""SHA-256 repositories (`git init --object-format=sha256`), end to end with the real git CLI.

Object ids are 64 hex digits there; every object gitxp writes must be named
by SHA-256 (`git fsck --strict` is the judge), and every way runs travel
(push, pull, checkout, reproduce) must work between SHA-256 repositories.
A SHA-1 and a SHA-256 repository cannot exchange objects: that is refused
before anything is written, with a one-line error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import gitxp
from gitxp.cli.main import cli
from tests.gitutil import GIT_ENV, fsck, git, run_refs
from tests.servers import git_daemon, git_http
from tests.workflows_util import gitxp as gitxp_process


def _init(path: Path, fmt: str = "sha256", bare: bool = False) -> Path:
    args = ["init", "-q", f"--object-format={fmt}"]
    if bare:
        args.append("--bare")
    else:
        args += ["-b", "main"]
    git(path.parent, *args, str(path))
    return path


@pytest.fixture
def repo256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A SHA-256 repository with one commit (README.md, train.py), as the current directory."""
    path = _init(tmp_path / "project")
    (path / "README.md").write_text("# project\n")
    (path / "train.py").write_text("print('training')\n")
    (path / ".gitignore").write_text("*.tmp\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    assert len(git(path, "rev-parse", "HEAD").strip()) == 64
    monkeypatch.chdir(path)
    yield path


def _record(path: Path, name: str = "r", **params: object) -> str:
    with gitxp.start_run(repo=str(path), name=name, params={"lr": 0.1, **params}) as run:
        run.log_metric("loss", 1.0, step=0)
        run.log_metric("loss", 0.5, step=1)
        run.set_tag("kind", "test")
        run.note("a *note*")
        (path / "model.bin").write_bytes(b"weights")
        run.log_artifact(str(path / "model.bin"))
        (path / "model.bin").unlink()
    return run.id


def _state(path: Path) -> tuple[str, str]:
    """What a refused push or pull must leave alone: every ref, and the object count."""
    refs = git(path, "for-each-ref")
    objects = git(path, "count-objects", "-v")
    return refs, objects


def test_runs_record_in_a_sha256_repository_clean_and_dirty(repo256: Path) -> None:
    clean = _record(repo256)
    head = git(repo256, "rev-parse", "HEAD").strip()
    run = gitxp.open(str(repo256)).run(clean)
    assert run.code_commit == head  # a clean work tree: HEAD itself, 64 hex digits
    assert run.params == {"lr": 0.1}
    assert list(run.metric_history("loss")["value"]) == [1.0, 0.5]

    (repo256 / "train.py").write_text("print('changed')\n")
    (repo256 / "new.py").write_text("x = 1\n")
    dirty = _record(repo256, name="d")
    code = gitxp.open(str(repo256)).run(dirty).code_commit
    assert code != head and len(code) == 64
    assert git(repo256, "rev-parse", f"{code}^").strip() == head
    assert git(repo256, "show", f"{code}:train.py") == "print('changed')\n"
    assert git(repo256, "show", f"{code}:new.py") == "x = 1\n"
    fsck(repo256)

    tip = git(repo256, "rev-parse", f"refs/gitxp/runs/{dirty}").strip()
    assert len(tip) == 64
    log = git(repo256, "log", f"refs/gitxp/runs/{dirty}")
    assert f"Gitxp-Run: {dirty}" in log and "loss" in log
    assert git(repo256, "cat-file", "-p", f"{tip}:params.json").strip().startswith("{")
    assert set(run_refs(repo256)) == {f"refs/gitxp/runs/{clean}", f"refs/gitxp/runs/{dirty}"}

    frame = gitxp.open(str(repo256)).runs()
    assert set(frame["id"]) == {clean, dirty}
    assert {len(c) for c in frame["code_commit"]} == {64}


@pytest.mark.slow  # several `gitxp` processes
def test_gitxp_run_then_the_cli_reads_edits_and_cleans_up(repo256: Path) -> None:
    (repo256 / "train.py").write_text(
        "import gitxp\ngitxp.log_metric('acc', 0.75)\nprint('trained')\n"
    )
    done = gitxp_process(repo256, "run", "-n", "first", "-p", "lr=0.1", "--", "python", "train.py")
    assert done.returncode == 0, done.stderr
    (repo256 / "train.py").write_text("import gitxp\ngitxp.log_metric('acc', 0.5)\n")
    done = gitxp_process(repo256, "run", "-n", "second", "-p", "lr=0.2", "--", "python", "train.py")
    assert done.returncode == 0, done.stderr
    rows = json.loads(gitxp_process(repo256, "log", "--format", "json").stdout)
    assert {r["name"] for r in rows} == {"first", "second"}
    assert all(len(r["code_commit"]) == 64 for r in rows)

    shown = gitxp_process(repo256, "show", "first")
    assert shown.returncode == 0 and "0.75" in shown.stdout, shown.stderr
    diff = gitxp_process(repo256, "diff", "first", "second", "--code")
    assert diff.returncode == 0, diff.stderr
    assert "0.75" in diff.stdout and "lr" in diff.stdout

    tagged = gitxp_process(repo256, "tag", "first", "best=yes")
    assert tagged.returncode == 0, tagged.stderr
    assert gitxp.open(str(repo256)).run("first").tags["best"] == "yes"
    removed = gitxp_process(repo256, "rm", "second")
    assert removed.returncode == 0, removed.stderr
    assert len(run_refs(repo256)) == 1
    assert len(git(repo256, "for-each-ref", "refs/gitxp/trash/").splitlines()) == 1
    collected = gitxp_process(repo256, "gc")
    assert collected.returncode == 0, collected.stderr
    assert git(repo256, "count-objects", "-v").splitlines()[0] == "count: 0"  # all packed
    loose_refs = [p for p in (repo256 / ".git" / "refs" / "gitxp").rglob("*") if p.is_file()]
    assert loose_refs == [], "gc packs the run refs of a SHA-256 repository too"
    assert "refs/gitxp/runs/" in (repo256 / ".git" / "packed-refs").read_text()
    fsck(repo256)
    assert gitxp.open(str(repo256)).run("first").metric_history("acc")["value"].tolist() == [0.75]


@pytest.mark.slow  # several `gitxp` processes
def test_checkout_and_reproduce_a_sha256_run(repo256: Path, tmp_path: Path) -> None:
    (repo256 / "train.py").write_text("import gitxp\ngitxp.log_metric('acc', 0.25)\n")
    done = gitxp_process(repo256, "run", "-n", "snap", "--", "python", "train.py")
    assert done.returncode == 0, done.stderr
    git(repo256, "checkout", "-q", "--", "train.py")  # the run's code lives on in its snapshot

    target = tmp_path / "out"
    out = gitxp_process(repo256, "checkout", "snap", "--path", str(target))
    assert out.returncode == 0, out.stderr
    assert "0.25" in (target / "train.py").read_text()
    switched = gitxp_process(repo256, "checkout", "snap", "-b", "try-snap")
    assert switched.returncode == 0, switched.stderr
    assert git(repo256, "branch", "--show-current").strip() == "try-snap"
    assert "0.25" in (repo256 / "train.py").read_text()
    assert git(repo256, "status", "--porcelain") == ""
    git(repo256, "checkout", "-q", "main")

    dry = gitxp_process(repo256, "reproduce", "snap", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "python train.py" in dry.stdout + dry.stderr
    again = gitxp_process(repo256, "reproduce", "snap", "--format", "json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["drifted"] == []
    fsck(repo256)


def _one_line_refusal(result: object, *words: str) -> None:
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 1, output  # type: ignore[attr-defined]
    assert output.startswith("error: ") and output.count("\n") == 1, output
    assert "Traceback" not in output
    for word in words:
        assert word in output, output


def test_push_and_pull_between_sha256_repositories_over_a_path(
    repo256: Path, tmp_path: Path, runner: CliRunner
) -> None:
    bare = _init(tmp_path / "origin.git", bare=True)
    git(repo256, "remote", "add", "origin", str(bare))
    git(repo256, "push", "-q", "origin", "main")
    first = _record(repo256)
    (repo256 / "train.py").write_text("print('dirty')\n")  # a snapshot travels too
    second = _record(repo256, name="d")
    pushed = runner.invoke(cli, ["push"])
    assert pushed.exit_code == 0, pushed.output
    assert set(run_refs(bare)) == {f"refs/gitxp/runs/{first}", f"refs/gitxp/runs/{second}"}
    fsck(bare)

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    pulled = runner.invoke(cli, ["pull", "-C", str(clone)])
    assert pulled.exit_code == 0, pulled.output
    fsck(clone)
    run = gitxp.open(str(clone)).run(second)
    assert run.params == {"lr": 0.1}
    assert git(clone, "show", f"{run.code_commit}:train.py") == "print('dirty')\n"

    # a run that goes on in the clone comes back as a fast-forward
    with gitxp.start_run(repo=str(clone), name="c") as more:
        more.log_metric("loss", 0.1)
    assert runner.invoke(cli, ["push", "-C", str(clone)]).exit_code == 0
    assert runner.invoke(cli, ["pull"]).exit_code == 0
    assert more.id in {r.rsplit("/", 1)[-1] for r in run_refs(repo256)}
    fsck(repo256)


def test_push_and_fetch_between_sha256_repositories_over_git_daemon(
    repo256: Path, tmp_path: Path, runner: CliRunner
) -> None:
    base = tmp_path / "srv"
    base.mkdir()
    bare = _init(base / "runs.git", bare=True)
    ids = [_record(repo256), _record(repo256, name="two")]
    with git_daemon(base) as url:
        pushed = runner.invoke(cli, ["push", f"{url}/runs.git"])
        assert pushed.exit_code == 0, pushed.output
        assert len(run_refs(bare)) == 2
        fsck(bare)
        other = _init(tmp_path / "other")
        fetched = runner.invoke(cli, ["fetch", "-C", str(other), f"{url}/runs.git"])
        assert fetched.exit_code == 0, fetched.output
    fsck(other)
    assert {r.rsplit("/", 1)[-1] for r in run_refs(other)} == set(ids)
    assert gitxp.open(str(other)).run("two").metric_history("loss")["value"].tolist() == [1.0, 0.5]

    # smart HTTP: fetching works; dulwich's HTTP push writes SHA-1 packs, so it is refused
    third = _init(tmp_path / "third")
    _record(repo256, name="three")
    before = _state(bare)
    with git_http(base) as url:
        fetched = runner.invoke(cli, ["fetch", "-C", str(third), f"{url}/runs.git"])
        assert fetched.exit_code == 0, fetched.output
        _one_line_refusal(runner.invoke(cli, ["push", f"{url}/runs.git"]), "http", "git://")
    assert len(run_refs(third)) == 2
    fsck(third)
    assert _state(bare) == before


@pytest.mark.parametrize("local_format", ["sha1", "sha256"])
def test_runs_never_travel_between_sha1_and_sha256_repositories(
    tmp_path: Path, runner: CliRunner, local_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_format = "sha1" if local_format == "sha256" else "sha256"
    local = _init(tmp_path / "local", local_format)
    (local / "a.txt").write_text("a\n")
    git(local, "add", ".")
    git(local, "commit", "-q", "-m", "a")
    _record(local)
    bare = _init(tmp_path / "bare.git", other_format, bare=True)
    peer = _init(tmp_path / "peer", other_format)
    (peer / "b.txt").write_text("b\n")
    git(peer, "add", ".")
    git(peer, "commit", "-q", "-m", "b")
    _record(peer)
    monkeypatch.chdir(local)
    before = {p: _state(p) for p in (local, bare, peer)}

    _one_line_refusal(runner.invoke(cli, ["push", str(bare)]), "SHA-1", "SHA-256")
    _one_line_refusal(runner.invoke(cli, ["push", "--all", str(bare)]), "SHA-256")
    _one_line_refusal(runner.invoke(cli, ["pull", str(peer)]), "SHA-1", "SHA-256")
    _one_line_refusal(runner.invoke(cli, ["fetch", str(peer)]), "SHA-256")
    base = tmp_path
    with git_daemon(base) as url:
        _one_line_refusal(runner.invoke(cli, ["push", f"{url}/bare.git"]), "SHA-256")
        _one_line_refusal(runner.invoke(cli, ["pull", f"{url}/peer"]), "SHA-256")
    assert {p: _state(p) for p in (local, bare, peer)} == before
    fsck(local)
    fsck(peer)


def test_the_pre_push_hook_carries_runs_of_a_sha256_repository(
    repo256: Path, tmp_path: Path, runner: CliRunner
) -> None:
    bare = _init(tmp_path / "origin.git", bare=True)
    git(repo256, "remote", "add", "origin", str(bare))
    assert runner.invoke(cli, ["hooks", "install", "-t", "pre-push"]).exit_code == 0
    git(repo256, "checkout", "-q", "-b", "feature")
    (repo256 / "train.py").write_text("print('feature')\n")
    git(repo256, "commit", "-qam", "feature")
    run_id = _record(repo256)
    git(repo256, "checkout", "-q", "main")
    (repo256 / "README.md").write_text("# main only\n")
    git(repo256, "commit", "-qam", "main only")
    _record(repo256, name="on-main")  # on HEAD, which is not pushed
    # git hands the hook lines of 64-digit ids (and 64 zeros for a new branch): the hook
    # must read them to know that `feature` is pushed, not HEAD
    env = {**os.environ, **GIT_ENV}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    push = subprocess.run(
        ["git", "push", "-q", "origin", "feature"],
        cwd=repo256,
        capture_output=True,
        text=True,
        env=env,
    )
    assert push.returncode == 0, push.stderr
    assert run_refs(bare) == [f"refs/gitxp/runs/{run_id}"]
    fsck(bare)


def test_an_mlflow_run_hangs_off_its_64_digit_commit(repo256: Path) -> None:
    from gitxp.integrations.mlflow_import import SourceRun, write_runs

    head = git(repo256, "rev-parse", "HEAD").strip()
    (repo256 / "new.txt").write_text("later work\n")
    git(repo256, "add", ".")
    git(repo256, "commit", "-q", "-m", "later")
    source = SourceRun(
        "a", "exp", "old-code", "FINISHED", 1000, 2000, "ada",
        tags={"mlflow.source.git.commit": head},
    )  # fmt: skip
    assert len(write_runs([source], repo256, "mlflow:", "mlflow", None, None).imported) == 1
    run = gitxp.open(str(repo256)).run("old-code")
    assert run.code_commit == head
    fsck(repo256)
