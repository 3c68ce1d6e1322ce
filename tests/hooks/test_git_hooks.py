"""The hooks in real repositories: `gitxp hook ...`, and plain git hooks run by real git commit/push."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import gitxp
from gitxp.cli.main import cli
from tests.gitutil import GIT_ENV, git

ZERO = "0" * 40


def record(repo: Path, acc: float, experiment: str = "e", status: str = "FINISHED") -> str:
    """Record a run on the repository's current code with metric acc; return its id."""
    run = gitxp.start_run(experiment=experiment, params={"lr": 0.1}, repo=repo)
    run.log_metric("acc", acc)
    run.end(status=status)
    return run.id


def hook(runner: CliRunner, *args: str, input: str | None = None) -> tuple[int, str]:
    result = runner.invoke(cli, ["hook", *args], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def real_git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run git as a user would (hooks included), without failing the test on a non-zero exit."""
    env = {**os.environ, **GIT_ENV}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=env)


# -- outside a repository -------------------------------------------------------


@pytest.mark.parametrize("name", ["no-run-outputs", "push-runs", "metric-gate", "validate"])
def test_every_hook_is_quiet_and_passes_outside_a_git_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runner: CliRunner, name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    assert hook(runner, name) == (0, "")


# -- no-run-outputs ----------------------------------------------------------------


def test_no_run_outputs_names_every_staged_offender(repo: Path, runner: CliRunner) -> None:
    (repo / "mlruns" / "0").mkdir(parents=True)
    (repo / "mlruns" / "0" / "meta.yaml").write_text("name: x\n")
    (repo / "model.ckpt").write_bytes(b"\0" * 1_500_000)
    (repo / "tiny.ckpt").write_bytes(b"\0" * 10)
    (repo / "not-staged.pt").write_bytes(b"\0" * 5_000_000)
    git(repo, "add", "mlruns", "model.ckpt", "tiny.ckpt")
    code, out = hook(runner, "no-run-outputs")
    assert code == 1
    assert "mlruns/0/meta.yaml" in out and "MLflow" in out
    assert "model.ckpt" in out and "1.5 MB > 1 MB" in out
    assert "tiny.ckpt" not in out and "not-staged.pt" not in out
    assert "log_artifact" in out  # says how to record it with gitxp instead
    # pre-commit passes names; a clean name list passes
    assert hook(runner, "no-run-outputs", "README.md") == (0, "")
    # a larger limit from pyproject.toml lets the checkpoint through
    (repo / "pyproject.toml").write_text("[tool.gitxp.hooks]\nmax-model-size = '2MB'\n")
    code, out = hook(runner, "no-run-outputs")
    assert code == 1 and "model or checkpoint" not in out and "mlruns" in out


def test_no_run_outputs_works_before_the_first_commit(empty_repo: Path, runner: CliRunner) -> None:
    (empty_repo / "lightning_logs" / "version_0").mkdir(parents=True)
    (empty_repo / "lightning_logs" / "version_0" / "hparams.yaml").write_text("lr: 1\n")
    (empty_repo / "train.py").write_text("pass\n")
    git(empty_repo, "add", ".")
    code, out = hook(runner, "no-run-outputs")
    assert code == 1 and "lightning_logs/version_0/hparams.yaml" in out
    assert "train.py" not in out


def test_no_run_outputs_judges_the_staged_blob_not_the_work_tree_file(
    repo: Path, runner: CliRunner
) -> None:
    # a clean filter (as Git LFS uses) stores a small pointer for a big file
    git(repo, "config", "filter.pointer.clean", "head -c 40")
    git(repo, "config", "filter.pointer.smudge", "cat")
    (repo / ".gitattributes").write_text("*.safetensors filter=pointer\n")
    (repo / "model.safetensors").write_bytes(b"x" * 3_000_000)
    (repo / "raw.pth").write_bytes(b"x" * 3_000_000)
    git(repo, "add", ".gitattributes", "model.safetensors", "raw.pth")
    code, out = hook(runner, "no-run-outputs")
    assert code == 1
    assert "raw.pth" in out and "model.safetensors" not in out


def test_plain_pre_commit_hook_blocks_a_real_commit(repo: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["hooks", "install"])
    assert result.exit_code == 0, result.output
    (repo / "wandb").mkdir()
    (repo / "wandb" / "run.json").write_text("{}")
    git(repo, "add", "wandb")
    commit = real_git(repo, "commit", "-m", "add wandb")
    assert commit.returncode == 1
    assert "wandb/run.json" in commit.stderr and "Weights & Biases" in commit.stderr
    git(repo, "rm", "-q", "--cached", "-r", "wandb")
    (repo / "train.py").write_text("print('better')\n")
    git(repo, "add", "train.py")
    commit = real_git(repo, "commit", "-m", "better training")
    assert commit.returncode == 0, commit.stderr
    assert commit.stderr == ""  # quiet on success


# -- gitxp hooks install ------------------------------------------------------------


def test_install_chains_an_existing_hook_and_uninstall_restores_it(
    repo: Path, runner: CliRunner
) -> None:
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    mine = '#!/bin/sh\necho mine-ran >> "$(git rev-parse --git-dir)/mine.log"\n'
    (hooks / "pre-commit").write_text(mine)
    (hooks / "pre-commit").chmod(0o755)
    result = runner.invoke(cli, ["hooks", "install", "--format", "json"])
    assert result.exit_code == 0, result.output
    changes = {c["hook"]: c for c in json.loads(result.output)}
    assert changes["pre-commit"]["action"] == "installed"
    assert changes["pre-commit"]["chained"].endswith("pre-commit.before-gitxp")
    assert changes["pre-push"]["chained"] is None
    (repo / "train.py").write_text("print(2)\n")
    git(repo, "add", "train.py")
    assert real_git(repo, "commit", "-qm", "two").returncode == 0
    assert (repo / ".git" / "mine.log").read_text() == "mine-ran\n"  # the old hook still runs
    again = runner.invoke(cli, ["hooks", "install", "--format", "json"])
    assert {c["action"] for c in json.loads(again.output)} == {"unchanged"}
    result = runner.invoke(cli, ["hooks", "uninstall"])
    assert result.exit_code == 0
    assert "pre-commit: restored" in result.output and "pre-push: removed" in result.output
    assert (hooks / "pre-commit").read_text() == mine
    assert not (hooks / "pre-push").exists()


def test_install_refuses_to_clobber_a_chained_hook_without_force(
    repo: Path, runner: CliRunner
) -> None:
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "pre-push").write_text("#!/bin/sh\nexit 0\n")
    (hooks / "pre-push.before-gitxp").write_text("#!/bin/sh\nexit 0\n")
    result = runner.invoke(cli, ["hooks", "install", "-t", "pre-push"])
    assert result.exit_code == 1
    assert "already exists" in result.output and "--force" in result.output
    assert runner.invoke(cli, ["hooks", "install", "-t", "pre-push", "--force"]).exit_code == 0


def test_install_honours_core_hooks_path(repo: Path, runner: CliRunner) -> None:
    git(repo, "config", "core.hooksPath", ".githooks")
    result = runner.invoke(cli, ["hooks", "install", "-t", "pre-commit"])
    assert result.exit_code == 0, result.output
    assert (repo / ".githooks" / "pre-commit").exists()
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    (repo / "x.ckpt").write_bytes(b"1" * 2_000_000)
    git(repo, "add", "x.ckpt")
    commit = real_git(repo, "commit", "-m", "checkpoint")
    assert commit.returncode == 1 and "x.ckpt" in commit.stderr


def test_install_outside_a_repository_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runner: CliRunner
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["hooks", "install"])
    assert result.exit_code == 1
    assert result.output.startswith("error: not a git repository")


# -- metric-gate ----------------------------------------------------------------------


def gate(repo: Path, body: str) -> None:
    (repo / "pyproject.toml").write_text("[tool.gitxp.gate]\n" + body)
    git(repo, "add", "pyproject.toml")
    git(repo, "commit", "-qm", "gate")


def test_metric_gate_checks_the_newest_finished_run_on_head(repo: Path, runner: CliRunner) -> None:
    gate(repo, 'require = ["metrics.acc >= 0.6", "params.lr <= 0.5"]\nexperiment = "e"\n')
    code, out = hook(runner, "metric-gate")
    assert code == 1 and "no FINISHED run of experiment e" in out
    bad = record(repo, 0.4)
    record(repo, 0.99, status="FAILED")  # newer, but did not finish: not the one checked
    record(repo, 0.99, experiment="other")  # another experiment: not checked
    code, out = hook(runner, "metric-gate")
    assert code == 1
    assert bad in out and "metrics.acc >= 0.6" in out and "0.4" in out
    assert "params.lr <= 0.5" not in out  # only the unmet conditions are listed
    assert "fails 1 of 2" in out
    record(repo, 0.7)
    assert hook(runner, "metric-gate") == (0, "")
    # an extra condition on the command line
    code, out = hook(runner, "metric-gate", "--require", "metrics.acc > 0.8")
    assert code == 1 and "metrics.acc > 0.8" in out


def test_metric_gate_counts_runs_on_a_snapshot_of_uncommitted_changes(
    repo: Path, runner: CliRunner
) -> None:
    gate(repo, 'require = "metrics.acc >= 0.6"\n')
    (repo / "train.py").write_text("print('uncommitted tweak')\n")
    record(repo, 0.9)  # recorded on a snapshot whose parent is HEAD
    assert hook(runner, "metric-gate") == (0, "")
    head = git(repo, "rev-parse", "HEAD").strip()
    assert gitxp.open(repo).rows()[0]["head"] == head


def test_metric_gate_missing_warn_and_configuration_errors(repo: Path, runner: CliRunner) -> None:
    assert hook(runner, "metric-gate") == (0, "")  # no gate configured: nothing to do
    gate(repo, 'require = ["metrics.acc >= 0.6"]\nmissing = "warn"\n')
    code, out = hook(runner, "metric-gate")
    assert code == 0 and "warning: no FINISHED run" in out
    gate(repo, 'require = ["metrics.acc >= "]\n')
    code, out = hook(runner, "metric-gate")
    assert code == 1 and "error: invalid filter" in out
    gate(repo, 'requires = ["metrics.acc >= 1"]\n')
    code, out = hook(runner, "metric-gate")
    assert code == 1 and "unknown setting" in out and "tool.gitxp.gate.requires" in out


def test_metric_gate_under_pre_commit_checks_the_pushed_commit_not_head(
    repo: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate(repo, 'require = ["metrics.acc >= 0.6"]\n')
    record(repo, 0.9)
    good = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "commit", "-q", "--allow-empty", "-m", "no runs here")
    monkeypatch.setenv("PRE_COMMIT", "1")
    monkeypatch.setenv("PRE_COMMIT_TO_REF", good)
    monkeypatch.setenv("PRE_COMMIT_FROM_REF", ZERO)
    assert hook(runner, "metric-gate") == (0, "")
    monkeypatch.delenv("PRE_COMMIT_TO_REF")
    monkeypatch.setenv("PRE_COMMIT_LOCAL_BRANCH", "refs/heads/main")  # whole-history push
    code, out = hook(runner, "metric-gate")
    assert code == 1 and "no FINISHED run" in out


def test_plain_pre_push_hook_gates_a_real_push(
    repo: Path, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITXP_SKIP", "push-runs")  # this test is about the gate alone
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    gate(repo, 'require = ["metrics.acc >= 0.6"]\n')
    assert runner.invoke(cli, ["hooks", "install", "-t", "pre-push"]).exit_code == 0
    record(repo, 0.3)
    push = real_git(repo, "push", "origin", "main")
    assert push.returncode == 1
    assert "metrics.acc >= 0.6" in push.stderr and "0.3" in push.stderr
    assert git(remote, "for-each-ref").strip() == ""  # nothing reached the remote
    record(repo, 0.8)
    push = real_git(repo, "push", "origin", "main")
    assert push.returncode == 0, push.stderr
    assert "refs/heads/main" in git(remote, "for-each-ref")
    # pushing gitxp's own refs is never gated
    git(repo, "commit", "-q", "--allow-empty", "-m", "no runs")
    run_ref = git(repo, "for-each-ref", "--format=%(refname)", "refs/gitxp/runs/").split()[0]
    push = real_git(repo, "push", "origin", f"{run_ref}:{run_ref}")
    assert push.returncode == 0, push.stderr


# -- validate ---------------------------------------------------------------------------


def _commit_with_tree(repo: Path, tree: str, parent: str, message: str = "broken") -> str:
    return git(repo, "commit-tree", tree, "-p", parent, "-m", message).strip()


def _replace_in_tree(repo: Path, commit: str, name: str, data: bytes, subdir: str = "") -> str:
    """A copy of *commit*'s tree with *name* (under *subdir*) holding *data*; its id."""
    blob = (
        subprocess.run(
            ["git", "hash-object", "-w", "--stdin"], cwd=repo, input=data, capture_output=True
        )
        .stdout.decode()
        .strip()
    )

    def rebuild(tree: str, parts: list[str]) -> str:
        entries = git(repo, "ls-tree", tree).splitlines()
        out = []
        for line in entries:
            meta, path = line.split("\t", 1)
            mode, kind, sha = meta.split()
            if parts and path == parts[0]:
                sha = rebuild(sha, parts[1:])
            elif not parts and path == name:
                continue
            out.append(f"{mode} {kind} {sha}\t{path}")
        if not parts:
            out.append(f"100644 blob {blob}\t{name}")
        return git(repo, "mktree", input="\n".join(out) + "\n").strip()

    return rebuild(
        git(repo, "rev-parse", f"{commit}^{{tree}}").strip(), subdir.split("/") if subdir else []
    )


def test_validate_names_every_broken_run_and_passes_healthy_ones(
    repo: Path, runner: CliRunner
) -> None:
    ids = [record(repo, 0.1 * i) for i in range(1, 6)]
    assert hook(runner, "validate") == (0, "")
    refs = {i: f"refs/gitxp/runs/{i}" for i in ids}
    tip = {i: git(repo, "rev-parse", refs[i]).strip() for i in ids}
    # 1: run.json is not JSON
    tree = _replace_in_tree(repo, tip[ids[0]], "run.json", b"{not json")
    git(repo, "update-ref", refs[ids[0]], _commit_with_tree(repo, tree, tip[ids[0]]))
    # 2: a metrics part that is not Parquet
    part = git(repo, "ls-tree", "--name-only", f"{tip[ids[1]]}:metrics").split()[0]
    tree = _replace_in_tree(repo, tip[ids[1]], part, b"PAR1 garbage", subdir="metrics")
    git(repo, "update-ref", refs[ids[1]], _commit_with_tree(repo, tree, tip[ids[1]]))
    # 3: the ref's name and run.json disagree (a well-formed id: other names are
    # not run refs at all, and listing ignores them with a warning)
    impostor = "0000000000abcdefghjkmnpqrs"
    git(repo, "update-ref", f"refs/gitxp/runs/{impostor}", tip[ids[2]])
    # 4: the run's commits do not lead to its code commit
    orphan_tree = git(repo, "rev-parse", f"{tip[ids[3]]}^{{tree}}").strip()
    orphan = git(repo, "commit-tree", orphan_tree, "-m", "detached").strip()
    git(repo, "update-ref", refs[ids[3]], orphan)
    # 5: a name under refs/gitxp/runs/ that is no run id (listings skip it; validate names it)
    git(repo, "update-ref", "refs/gitxp/runs/not-a-run", tip[ids[4]])
    code, out = hook(runner, "validate")
    assert code == 1
    assert "5 broken run refs" in out
    assert "refs/gitxp/runs/not-a-run" in out and "not a run id" in out
    assert f"{refs[ids[0]]}" in out and "invalid JSON" in out
    assert f"{refs[ids[1]]}" in out and f"metrics/{part}" in out
    assert f"refs/gitxp/runs/{impostor}" in out and "ref is named" in out
    assert f"{refs[ids[3]]}" in out and "does not reach its code commit" in out
    assert refs[ids[4]] not in out


# -- push-runs -----------------------------------------------------------------------------


def remote_runs(remote: Path) -> set[str]:
    out = git(remote, "for-each-ref", "--format=%(refname)", "refs/gitxp/runs/")
    return {ref.rsplit("/", 1)[-1] for ref in out.split()}


@pytest.fixture
def origin(repo: Path, tmp_path: Path, runner: CliRunner) -> Path:
    """A bare remote `origin` for *repo*, with gitxp's plain pre-push hook installed."""
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    assert runner.invoke(cli, ["hooks", "install", "-t", "pre-push"]).exit_code == 0
    return remote


def test_plain_pre_push_hook_carries_the_runs_of_the_pushed_commits(
    repo: Path, origin: Path
) -> None:
    first = record(repo, 0.5)
    push = real_git(repo, "push", "-q", "origin", "main")
    assert push.returncode == 0, push.stderr
    assert push.stderr == ""  # quiet on success
    assert remote_runs(origin) == {first}
    # a run on an already-pushed commit stays local; runs on new commits travel
    late = record(repo, 0.6)
    (repo / "train.py").write_text("print('v2')\n")
    git(repo, "commit", "-qam", "v2")
    second = record(repo, 0.7)
    (repo / "train.py").write_text("print('v3, not committed')\n")
    snapshot = record(repo, 0.8)  # on a snapshot of uncommitted changes on top of v2
    push = real_git(repo, "push", "-q", "origin", "main")
    assert push.returncode == 0, push.stderr
    assert remote_runs(origin) == {first, second, snapshot}
    assert late not in remote_runs(origin)
    # the runs arrive whole: a clone can read them
    clone = origin.parent / "clone"
    git(origin.parent, "clone", "-q", str(origin), str(clone))
    git(clone, "fetch", "-q", "origin", "refs/gitxp/runs/*:refs/gitxp/runs/*")
    assert gitxp.open(clone).run(second).last_metrics == {"acc": 0.7}


def test_push_runs_failure_warns_by_default_and_blocks_when_configured(
    repo: Path, origin: Path
) -> None:
    run_id = record(repo, 0.5)
    assert real_git(repo, "push", "-q", "origin", "main").returncode == 0
    # rewrite the run locally so it no longer descends from what the remote has
    ref = f"refs/gitxp/runs/{run_id}"
    code = git(repo, "rev-parse", "HEAD").strip()
    diverged = git(repo, "commit-tree", f"{ref}^{{tree}}", "-p", code, "-m", "rewritten").strip()
    git(repo, "update-ref", ref, diverged)
    (repo / "pyproject.toml").write_text("[tool.gitxp.hooks]\npush-runs = 'all'\n")
    git(repo, "add", "pyproject.toml")
    git(repo, "commit", "-qm", "push every run")
    push = real_git(repo, "push", "-q", "origin", "main")
    assert push.returncode == 0, push.stderr  # the code push goes ahead
    assert f"warning: run {run_id} not pushed" in push.stderr and "rejected" in push.stderr
    assert "gitxp push origin" in push.stderr
    (repo / "pyproject.toml").write_text(
        "[tool.gitxp.hooks]\npush-runs = 'all'\npush-failure = 'fail'\n"
    )
    git(repo, "commit", "-qam", "strict")
    push = real_git(repo, "push", "-q", "origin", "main")
    assert push.returncode == 1
    assert f"error: run {run_id} not pushed" in push.stderr
    head = git(repo, "rev-parse", "HEAD").strip()
    assert git(origin, "rev-parse", "main").strip() != head
