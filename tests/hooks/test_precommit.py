"""gitxp's hooks driven by the real pre-commit tool, as a user project would use them.

`pre-commit try-repo` builds a fresh virtualenv with gitxp installed on
every call (it uses a throwaway store), so the calls are few and each
checks several hooks at once: five builds in all. The repository is
snapshotted once per session into a temporary git repository (uncommitted
work included) so every call installs the same code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import gitxp
from tests.gitutil import GIT_ENV, git

pytest.importorskip("pre_commit")
pytestmark = pytest.mark.slow  # each try-repo builds a virtualenv with gitxp: ~20-60 s

ROOT = Path(__file__).resolve().parents[2]
PRE_COMMIT = str(Path(sys.executable).with_name("pre-commit"))


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This repository as it is now (tracked and new files), committed in a fresh git repo."""
    dest = tmp_path_factory.mktemp("gitxp-src") / "gitxp"
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "gitxp under test")
    return dest


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pre_commit_home: Path
) -> Iterator[Path]:
    """A user's project: a git repo with one commit, as the current directory."""
    monkeypatch.setenv("PRE_COMMIT_HOME", str(pre_commit_home))
    monkeypatch.setenv("PRE_COMMIT_COLOR", "never")
    path = tmp_path / "user-project"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print('train')\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    monkeypatch.chdir(path)
    yield path


def run(cwd: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ENV}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PIP_NO_COMPILE"] = "1"  # the hook env need not byte-compile pandas & co: faster builds
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def try_repo(
    project: Path, hook_repo: Path, hook: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return run(project, PRE_COMMIT, "try-repo", str(hook_repo), hook, *args)


def record(repo: Path, acc: float) -> str:
    with gitxp.start_run(experiment="e", params={"lr": 0.1}, repo=repo) as r:
        r.log_metric("acc", acc)
    return r.id


def hook_lines(output: str) -> dict[str, str]:
    """pre-commit's verdict per hook name: {"metric gate ...": "Passed" | "Failed" | ...}."""
    verdicts = {}
    for line in output.splitlines():
        for verdict in ("Passed", "Failed", "Skipped"):
            if line.endswith(verdict) and "..." in line:
                verdicts[line.split("...")[0].rstrip(".")] = verdict
    return verdicts


NO_OUTPUTS = "no experiment-tracker output in commits (gitxp)"
GATE = "metric gate on the pushed commit's runs (gitxp)"
VALIDATE = "validate gitxp run refs (gitxp)"
PUSH = "push gitxp runs with the code (gitxp)"


def test_no_run_outputs_fails_on_tracker_output(project: Path, hook_repo: Path) -> None:
    (project / "wandb" / "run-1").mkdir(parents=True)
    (project / "wandb" / "run-1" / "config.yaml").write_text("lr: 0.1\n")
    (project / "best.ckpt").write_bytes(b"\1" * 2_000_000)
    (project / "notes.txt").write_text("fine\n")
    git(project, "add", ".")
    result = try_repo(project, hook_repo, "gitxp-no-run-outputs")
    assert result.returncode == 1, result.stdout + result.stderr
    assert hook_lines(result.stdout) == {NO_OUTPUTS: "Failed"}
    assert "wandb/run-1/config.yaml" in result.stdout and "best.ckpt" in result.stdout
    assert "notes.txt" not in result.stdout


def test_manual_stage_gate_and_validate_fail_then_pass(project: Path, hook_repo: Path) -> None:
    """All manual-stage hooks at once: the gate fails on a weak run (stopping the rest), then
    passes on a better one; no-run-outputs passes a clean change; validate names a broken ref."""
    (project / "pyproject.toml").write_text(
        '[tool.gitxp.gate]\nrequire = ["metrics.acc >= 0.6"]\nexperiment = "e"\n'
    )
    git(project, "add", "pyproject.toml")
    git(project, "commit", "-q", "-m", "gate")
    weak = record(project, 0.42)
    (project / "train.py").write_text("print('staged, harmless')\n")
    git(project, "add", "train.py")
    result = try_repo(project, hook_repo, "--hook-stage", "manual")
    assert result.returncode == 1, result.stdout + result.stderr
    # try-repo runs the hooks sorted by id; the gate's fail_fast stops the others
    assert hook_lines(result.stdout) == {GATE: "Failed"}, result.stdout
    assert weak in result.stdout and "metrics.acc >= 0.6" in result.stdout
    assert "0.42" in result.stdout
    record(project, 0.91)
    head = git(project, "rev-parse", "HEAD").strip()
    not_a_run = "refs/gitxp/runs/0000000000abcdefghjkmnpqrs"
    git(project, "update-ref", not_a_run, head)  # a code commit, not a run
    git(project, "update-ref", "refs/gitxp/runs/0broken", head)  # not even a run id
    result = try_repo(project, hook_repo, "--hook-stage", "manual")
    assert result.returncode == 1, result.stdout + result.stderr
    assert hook_lines(result.stdout) == {NO_OUTPUTS: "Passed", GATE: "Passed", VALIDATE: "Failed"}
    assert not_a_run in result.stdout and "missing run.json" in result.stdout
    assert "refs/gitxp/runs/0broken" in result.stdout and "not a run id" in result.stdout


def test_push_runs_in_the_pre_push_stage(project: Path, hook_repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(project, "remote", "add", "origin", str(remote))
    base = git(project, "rev-parse", "HEAD").strip()
    record(project, 0.4)  # on `base`, which pre-commit is told the remote has
    (project / "train.py").write_text("print('v2')\n")
    git(project, "commit", "-q", "-am", "v2")
    head = git(project, "rev-parse", "HEAD").strip()
    run_id = record(project, 0.5)
    result = try_repo(
        project,
        hook_repo,
        "gitxp-push-runs",
        "--hook-stage",
        "pre-push",
        "--from-ref",
        base,
        "--to-ref",
        head,
        "--remote-name",
        "origin",
        "--remote-url",
        str(remote),
        "--local-branch",
        "refs/heads/main",
        "--remote-branch",
        "refs/heads/main",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert hook_lines(result.stdout) == {PUSH: "Passed"}
    assert git(remote, "for-each-ref", "--format=%(refname)").split() == [
        "refs/gitxp/index/v1",  # the listing rows of the runs pushed
        f"refs/gitxp/runs/{run_id}",
    ]


def test_pre_commit_install_guards_a_real_git_push(
    project: Path, hook_repo: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(project, "remote", "add", "origin", str(remote))
    rev = git(hook_repo, "rev-parse", "HEAD").strip()
    (project / ".pre-commit-config.yaml").write_text(
        "repos:\n"
        f"  - repo: {hook_repo}\n"
        f"    rev: {rev}\n"
        "    hooks:\n"
        "      - id: gitxp-metric-gate\n"
        "      - id: gitxp-push-runs\n"
    )
    (project / "pyproject.toml").write_text('[tool.gitxp.gate]\nrequire = "metrics.acc >= 0.6"\n')
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "gitxp hooks")
    installed = run(project, PRE_COMMIT, "install", "--hook-type", "pre-push")
    assert installed.returncode == 0, installed.stderr
    weak = record(project, 0.3)
    push = run(project, "git", "push", "origin", "main")
    assert push.returncode == 1, push.stdout + push.stderr
    assert hook_lines(push.stdout) == {GATE: "Failed"}  # push-runs never ran
    assert weak in push.stdout
    assert git(remote, "for-each-ref").strip() == ""  # neither code nor runs went out
    good = record(project, 0.75)
    push = run(project, "git", "push", "origin", "main")
    assert push.returncode == 0, push.stdout + push.stderr
    assert hook_lines(push.stdout) == {GATE: "Passed", PUSH: "Passed"}
    refs = set(git(remote, "for-each-ref", "--format=%(refname)").split())
    assert refs == {
        "refs/heads/main",
        "refs/gitxp/index/v1",
        f"refs/gitxp/runs/{weak}",
        f"refs/gitxp/runs/{good}",
    }


def test_gate_against_the_prod_model_under_pre_commit(project: Path, hook_repo: Path) -> None:
    """`baseline = "churn#prod"`: the run on HEAD must beat the prod version's acc."""
    prod = record(project, 0.8)
    with gitxp.open(project) as r:
        r.register_model(prod, "churn")
        r.assign_stage("churn", "prod")
    (project / "pyproject.toml").write_text(
        '[tool.gitxp.gate]\nbaseline = "churn#prod"\n'
        'require = ["metrics.acc > baseline.metrics.acc"]\n'
    )
    git(project, "add", "pyproject.toml")
    git(project, "commit", "-q", "-m", "gate on prod")
    weak = record(project, 0.79)
    # the same config as the push test above: pre-commit reuses its cached hook environment
    rev = git(hook_repo, "rev-parse", "HEAD").strip()
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hook_repo}\n    rev: {rev}\n    hooks:\n"
        "      - id: gitxp-metric-gate\n      - id: gitxp-push-runs\n"
    )
    result = run(project, PRE_COMMIT, "run", "gitxp-metric-gate", "--hook-stage", "manual")
    assert result.returncode == 1, result.stdout + result.stderr
    assert hook_lines(result.stdout) == {GATE: "Failed"}, result.stdout
    assert weak in result.stdout and f"compared with churn#prod (run {prod}" in result.stdout
    assert "baseline.metrics.acc=0.8" in result.stdout and "metrics.acc=0.79" in result.stdout
