"""`gitxp model ...`, and model references (NAME@vX.Y.Z, NAME@latest, NAME#STAGE) on every
command that takes a run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import gitxp
from gitxp.cli.main import cli
from tests.gitutil import fsck, git
from tests.workflows_util import child_env
from tests.workflows_util import gitxp as run_gitxp

TRAIN = """\
import pathlib, sys
import gitxp
version = sys.argv[1]
pathlib.Path("model").mkdir(exist_ok=True)
pathlib.Path("model/weights.txt").write_text("weights " + version)
with gitxp.start_run(name="train-" + version, params={"v": int(version)}) as run:
    run.log_metric("acc", 0.5 + int(version) / 10)
    run.log_artifact("model")
"""


@pytest.fixture
def registered(repo: Path) -> dict[str, str]:
    """Two runs of train.py, recorded with their command, registered as churn v0.0.1 and
    v0.0.2 (with --path model/); prod is v0.0.2."""
    (repo / "train.py").write_text(TRAIN)
    (repo / ".gitignore").write_text("model/\n")
    git(repo, "commit", "-qam", "train script")
    ids = {}
    for version in ("1", "2"):
        subprocess.run([sys.executable, "train.py", version], cwd=repo, env=child_env(), check=True)
        ids[version] = gitxp.open(repo).run(f"train-{version}").id
    r = gitxp.open(repo)
    r.register_model("train-1", "churn", path="model/")
    r.register_model("train-2", "churn", path="model/")
    r.assign_stage("churn", "prod", "v0.0.2")
    return ids


def _ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_register_assign_list_show_history(runner: CliRunner, repo: Path) -> None:
    for i in range(2):
        with gitxp.start_run(name=f"r{i}") as run:
            run.log_metric("acc", 0.7 + i / 10)
    assert "registered churn@v0.0.1" in _ok(runner, "model", "register", "r0", "churn")
    out = _ok(runner, "model", "register", "r1", "churn", "--bump", "minor", "--format", "json")
    assert json.loads(out)["version"] == "v0.1.0"
    assert "assigned prod to churn@v0.0.1" in _ok(
        runner, "model", "assign", "churn", "--version", "v0.0.1", "--stage", "prod"
    )
    _ok(runner, "model", "assign", "churn@latest", "--stage", "staging")
    listed = json.loads(_ok(runner, "model", "list", "--format", "json"))
    assert listed == [
        {
            "name": "churn",
            "latest": "v0.1.0",
            "latest_run": gitxp.open(repo).run("r1").id,
            "versions": 2,
            "deprecated": False,
            "updated_at": listed[0]["updated_at"],
            "stages.prod": "v0.0.1",
            "stages.staging": "v0.1.0",
        }
    ]
    table = _ok(runner, "model", "list")
    assert "churn" in table and "prod=v0.0.1, staging=v0.1.0" in table
    shown = _ok(runner, "model", "show", "churn")
    assert "v0.1.0   staging" in shown and "r0" in shown and "0.7" in shown
    data = json.loads(_ok(runner, "model", "show", "churn", "--format", "json"))
    assert [v["version"] for v in data["versions"]] == ["v0.1.0", "v0.0.1"]
    assert data["versions"][1]["metrics"] == {"acc": 0.7} and data["stages"]["prod"] == "v0.0.1"
    _ok(runner, "model", "unassign", "churn", "--stage", "staging")
    _ok(runner, "model", "deregister", "churn@v0.1.0")
    assert [v["version"] for v in json.loads(
        _ok(runner, "model", "show", "churn", "--format", "json"))["versions"]] == ["v0.0.1"]  # fmt: skip
    assert "(deregistered)" in _ok(runner, "model", "show", "churn", "--all")
    _ok(runner, "model", "deprecate", "churn")
    assert "(deprecated)" in _ok(runner, "model", "list")
    events = json.loads(_ok(runner, "model", "history", "churn", "--format", "json"))
    assert [e["action"] for e in events] == [
        "register", "register", "assign", "assign", "unassign", "deregister", "deprecate"
    ]  # fmt: skip
    assert "churn@deprecated#5" in _ok(runner, "model", "history", "churn")
    fsck(repo)


@pytest.mark.slow
def test_model_references_work_on_every_command_that_takes_a_run_also_once_it_is_removed(
    runner: CliRunner, repo: Path, registered: dict[str, str], tmp_path: Path
) -> None:
    assert f"run {registered['2']}" in _ok(runner, "show", "churn#prod")
    assert f"run {registered['1']}" in _ok(runner, "show", "churn@v0.0.1")
    assert f"run {registered['2']}" in _ok(runner, "show", "churn@latest")
    diff = json.loads(_ok(runner, "diff", "churn@v0.0.1", "churn#prod", "--format", "json"))
    assert "v" in json.dumps(diff["params"])
    compared = _ok(runner, "compare", "churn@v0.0.1", "churn@v0.0.2", "--format", "json")
    assert registered["1"] in compared and registered["2"] in compared
    _ok(runner, "checkout", "churn@v0.0.2", "--path", str(tmp_path / "code"))
    assert (tmp_path / "code" / "train.py").read_text() == TRAIN
    _ok(runner, "artifacts", "get", "churn#prod", "model", "--to", str(tmp_path / "got"))
    assert (tmp_path / "got" / "model" / "weights.txt").read_text() == "weights 2"
    assert gitxp.open(repo).run("churn#prod").params == {"v": 2}
    result = gitxp.reproduce("churn#prod", repo=repo, stream=False)
    assert result.exit_status == 0 and result.verdict == "match", result

    # the runs removed and collected: the tags keep them, for the real command too
    for rid in registered.values():
        assert run_gitxp(repo, "rm", rid).returncode == 0
    assert run_gitxp(repo, "gc", "--grace-days", "0").returncode == 0
    git(repo, "gc", "-q", "--prune=now")
    left = git(repo, "for-each-ref", "refs/gitxp/runs/", "refs/gitxp/trash/")
    assert not any(rid in left for rid in registered.values()), left  # (the reproduction stays)
    shown = run_gitxp(repo, "show", "churn#prod")
    assert shown.returncode == 0 and f"run {registered['2']}" in shown.stdout, shown.stderr
    out = run_gitxp(repo, "checkout", "churn@v0.0.2", "--path", str(tmp_path / "code2"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "code2" / "train.py").read_text() == TRAIN
    _ok(runner, "artifacts", "get", "churn@v0.0.1", "model", "--to", str(tmp_path / "got1"))
    assert (tmp_path / "got1" / "model" / "weights.txt").read_text() == "weights 1"
    again = run_gitxp(repo, "reproduce", "churn#prod")
    assert again.returncode == 0 and "REPRODUCED" in again.stdout, again.stdout + again.stderr
    fsck(repo)


def _refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["model", "register", "no-such-run", "churn"], 1, "no run matches 'no-such-run'"),
        (["model", "register", "r0", "churn", "--version", "1.0"], 1, "not a version"),
        # r1 already holds churn@v0.0.1: the malformed version is still what is named
        (["model", "register", "r1", "churn", "--version", "1.2.0"], 1, "did you mean v1.2.0"),
        (["model", "register", "r0", "churn", "--version", "v0.0.1"], 1, "already exists"),
        (["model", "register", "r0", "churn", "--version", "v1.0.0", "--bump", "minor"], 2, ""),
        (["model", "register", "r0", "a..b"], 1, "cannot name a model"),
        (["model", "register", "r0", "churn@x"], 1, "cannot name a model"),
        (["model", "register", "r0", "x.lock/y:churn"], 1, "git refuses this tag name"),
        (["model", "register", "r0", "team/churn"], 1, "a tag named 'team' exists"),
        (["model", "assign", "nope", "--version", "v0.0.1", "--stage", "prod"], 1, "no model"),
        (["model", "assign", "churn", "--stage", "prod"], 2, "say which version"),
        (["model", "assign", "churn@v0.0.1", "--stage", "a b"], 1, "cannot name a stage"),
        (["model", "assign", "churn@v0.0.1", "--stage", "prod"], 1, "already in stage"),
        (["model", "unassign", "churn", "--stage", "dev"], 1, "stage 'dev'"),
        (["model", "deregister", "churn@v7.0.0"], 1, "no version v7.0.0"),
        (["model", "show", "nope"], 1, "no model matches 'nope'"),
        (["show", "churn#dev"], 1, "no version of churn is in stage 'dev'"),
        (["show", "nope@v1.0.0"], 1, "no model is named 'nope'"),
    ],
)
def test_bad_input_is_a_one_line_error_and_writes_nothing(
    runner: CliRunner, repo: Path, args: list[str], code: int, message: str
) -> None:
    with gitxp.start_run(name="r0"):
        pass
    with gitxp.start_run(name="r1"):
        pass
    r = gitxp.open(repo)
    r.register_model("r1", "churn")
    r.assign_stage("churn", "prod", "v0.0.1")
    git(repo, "tag", "team")  # someone's tag: refs/tags/team/... can no longer exist
    before = _refs(repo)
    result = runner.invoke(cli, args)
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    if code == 1:
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert message in result.output
    assert _refs(repo) == before


def test_the_real_command_exits_1_with_one_line(repo: Path) -> None:
    with gitxp.start_run(name="r0"):
        pass
    bad = run_gitxp(repo, "model", "register", "r0", "churn", "--version", "v1")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip().count("\n") == 0 and "not a version" in bad.stderr
    assert git(repo, "tag", "-l") == ""
