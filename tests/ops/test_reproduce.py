"""`gitxp reproduce`: re-run on the exact code, in isolation, and catch drift from outside the code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import gitxp
from tests.gitutil import fsck, git
from tests.workflows_util import child_env, runs_json, write
from tests.workflows_util import gitxp as run_gitxp

SCRIPT = """\
import os, pathlib
import gitxp
run = gitxp.active_run()
data = float(pathlib.Path(os.environ["DATA_FILE"]).read_text())  # lives outside the repository
gitxp.log_metric("score", data * run.params["scale"])
gitxp.log_metric("knob", float(os.environ.get("HIDDEN_KNOB", "0")))  # not allow-listed
gitxp.log_metric("threads", float(os.environ.get("OMP_NUM_THREADS", "0")))  # allow-listed
print("cwd", os.getcwd())
"""


@pytest.fixture
def recorded(repo: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A run of SCRIPT that read a data file outside the repository."""
    write(repo / "score.py", SCRIPT)
    git(repo, "add", "score.py")
    git(repo, "commit", "-qm", "score")
    data = write(tmp_path / "outside" / "data.txt", "2.0")
    env = child_env(DATA_FILE=str(data), OMP_NUM_THREADS="3")
    result = run_gitxp(
        repo, "run", "-n", "orig", "-p", "scale=1.5", "--", "python", "score.py", env=env
    )
    assert result.returncode == 0, result.stderr
    return data, env


def test_same_conditions_reproduce_exactly(
    repo: Path, recorded: tuple[Path, dict[str, str]]
) -> None:
    _data, env = recorded
    (repo / "README.md").write_text("my uncommitted edit\n")  # must survive untouched
    status_before = git(repo, "status", "--porcelain")
    env = {**env, "OMP_NUM_THREADS": "1"}  # differs now, but it was recorded: replayed
    result = run_gitxp(repo, "reproduce", "orig", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "REPRODUCED: all 3 metrics match" in result.stdout
    assert "command: python score.py" in result.stderr
    assert "params:  scale=1.5" in result.stderr
    runs = {r["name"]: r for r in runs_json(repo)}
    new = gitxp.open(repo).run("orig-repro")
    assert new.meta["reproduces"] == runs["orig"]["id"]
    assert new.tags["reproduces"] == runs["orig"]["id"]
    assert new.tags["reproduction"] == "match"
    assert new.meta["reproduction"]["verdict"] == "match"
    assert new.code_commit == runs["orig"]["code_commit"]
    assert new.params == {"scale": 1.5}
    assert new.last_metrics["threads"] == 3.0
    assert "gitxp-reproduce-" in new.output  # it ran in a temporary checkout
    assert git(repo, "status", "--porcelain") == status_before
    assert (repo / "README.md").read_text() == "my uncommitted edit\n"
    fsck(repo)


def test_a_changed_file_outside_the_repository_is_drift(
    repo: Path, recorded: tuple[Path, dict[str, str]]
) -> None:
    data, env = recorded
    data.write_text("2.5")
    result = run_gitxp(repo, "reproduce", "orig", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DRIFT: score differ" in result.stdout
    assert "knob" not in result.stdout.split("DRIFT:")[1]
    assert gitxp.open(repo).run("orig-repro").tags["reproduction"] == "drift"
    # a looser tolerance accepts it
    loose = run_gitxp(repo, "reproduce", "orig", "--rtol", "0.3", "-q", env=env)
    assert loose.returncode == 0, loose.stdout


def test_an_environment_variable_that_was_not_recorded_is_drift(
    repo: Path, recorded: tuple[Path, dict[str, str]]
) -> None:
    _data, env = recorded
    result = run_gitxp(
        repo, "reproduce", "orig", "--format", "json", env={**env, "HIDDEN_KNOB": "7"}
    )
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["drifted"] == ["knob"]
    assert report["verdict"] == "drift"
    check = next(c for c in report["checks"] if c["key"] == "knob")
    assert (check["original"], check["reproduced"], check["ok"]) == (0.0, 7.0, False)


def test_a_failing_command_exits_2(repo: Path, recorded: tuple[Path, dict[str, str]]) -> None:
    data, env = recorded
    data.unlink()
    result = run_gitxp(repo, "reproduce", "orig", "-q", env=env)
    assert result.returncode == 2
    assert "FAILED" in result.stdout
    assert gitxp.open(repo).run("orig-repro").status == "FAILED"


def test_dry_run_shows_the_command_and_runs_nothing(
    repo: Path, recorded: tuple[Path, dict[str, str]]
) -> None:
    _data, env = recorded
    result = run_gitxp(repo, "reproduce", "orig", "--dry-run", env=env)
    assert result.returncode == 0
    assert "command: python score.py" in result.stderr and "OMP_NUM_THREADS=3" in result.stderr
    assert [r["name"] for r in runs_json(repo)] == ["orig"]


def test_keep_leaves_the_checkout(
    repo: Path, recorded: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _data, env = recorded
    keep = tmp_path / "kept"
    result = run_gitxp(repo, "reproduce", "orig", "-q", "--keep", str(keep), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (keep / "score.py").read_text() == SCRIPT
    assert f"cwd {keep}" in gitxp.open(repo).run("orig-repro").output


def test_the_snapshot_of_uncommitted_code_is_what_reruns(repo: Path, tmp_path: Path) -> None:
    write(repo / "train.py", "import gitxp\ngitxp.log_metric('v', 2.0)\n")  # uncommitted
    result = run_gitxp(repo, "run", "-n", "draft", "--", "python", "train.py")
    assert result.returncode == 0, result.stderr
    git(repo, "checkout", "--", "train.py")  # the edit is gone from the work tree
    again = run_gitxp(repo, "reproduce", "draft", "-q")
    assert again.returncode == 0, again.stdout + again.stderr
    assert gitxp.open(repo).run("draft-repro").last_metrics == {"v": 2.0}


def test_runs_recorded_from_a_python_script_qualify(repo: Path) -> None:
    write(
        repo / "src" / "api_train.py",
        "import gitxp\n"
        "with gitxp.start_run(name='api', params={'k': 2}) as run:\n"
        "    run.log_metric('m', 4.0)\n",
    )
    import subprocess
    import sys

    subprocess.run([sys.executable, "api_train.py"], cwd=repo / "src", env=child_env(), check=True)
    from gitxp.ops.reproduce import plan as make_plan

    plan = make_plan("api", repo=repo)
    assert plan.cwd == "src" and plan.argv[1:] == ["api_train.py"]
    result = gitxp.reproduce("api", repo=repo, stream=False)
    assert result.exit_status == 0 and result.verdict == "match"
    assert [c.key for c in result.checks] == ["m"]


def test_a_run_without_a_command_is_not_reproducible(repo: Path) -> None:
    with gitxp.start_run(name="inline"):
        pass  # recorded from inside pytest: no script of this repository
    with pytest.raises(gitxp.NotReproducibleError, match="cannot be reproduced"):
        gitxp.reproduce("inline")
    result = run_gitxp(repo, "reproduce", "inline")
    assert result.returncode == 1 and result.stderr.startswith("error: run ")


def test_tolerance_rule() -> None:
    from gitxp.ops.reproduce import check_metric

    assert check_metric("a", 1.0, 1.0 + 1e-7, 1e-6, 0).ok
    assert not check_metric("a", 1.0, 1.0 + 1e-5, 1e-6, 0).ok
    assert check_metric("a", 0.0, 1e-10, 0, 1e-9).ok
    assert check_metric("a", float("nan"), float("nan"), 0, 0).ok
    assert not check_metric("a", 1.0, None, 1, 1).ok
    assert check_metric("a", float("inf"), float("inf"), 0, 0).ok


def test_absolute_paths_into_the_repository_point_at_the_checkout(repo: Path) -> None:
    script = write(repo / "abs.py", "import gitxp\ngitxp.log_metric('v', 1.0)\n")
    result = run_gitxp(repo, "run", "-n", "abs", "--", "python", str(script))
    assert result.returncode == 0, result.stderr
    script.write_text("import gitxp\ngitxp.log_metric('v', 99.0)\n")  # today's version differs
    again = run_gitxp(repo, "reproduce", "abs", "-q")
    assert again.returncode == 0, again.stdout + again.stderr
    assert gitxp.open(repo).run("abs-repro").last_metrics == {"v": 1.0}


@pytest.mark.parametrize(
    ("script", "verdict"),
    [
        ("import gitxp\ngitxp.log_metric('v', 2.0)\n", "REPRODUCED: its 1 metric matches within"),
        ("print('no metrics')\n", "REPRODUCED: the command finished; the original run logged no"),
    ],
)
def test_the_verdict_agrees_with_how_many_metrics_were_compared(
    repo: Path, script: str, verdict: str
) -> None:
    write(repo / "one.py", script)
    git(repo, "add", "one.py")
    git(repo, "commit", "-qm", "one")
    assert run_gitxp(repo, "run", "-n", "one", "--", "python", "one.py").returncode == 0
    again = run_gitxp(repo, "reproduce", "one")
    assert again.returncode == 0, again.stdout + again.stderr
    assert verdict in again.stdout, again.stdout


def test_a_command_with_a_secret_argument_is_recorded_redacted_and_not_rerun(repo: Path) -> None:
    write(repo / "one.py", "import gitxp\ngitxp.log_metric('v', 2.0)\n")
    git(repo, "add", "one.py")
    git(repo, "commit", "-qm", "one")
    secret = "ghp_abcdefabcdefabcdefabcdefabcdefabcdef"
    result = run_gitxp(repo, "run", "-n", "tok", "--", "python", "one.py", "--token", secret)
    assert result.returncode == 0, result.stderr
    run_id = gitxp.open(repo).run("tok").id
    assert secret not in git(repo, "show", f"refs/gitxp/runs/{run_id}:run.json")
    assert "--token [redacted]" in run_gitxp(repo, "show", "tok").stdout
    again = run_gitxp(repo, "reproduce", "tok")
    assert again.returncode == 1
    assert again.stderr.startswith(
        f"error: run {run_id} cannot be reproduced: gitxp did not record"
    )
    assert "(the value of --token)" in again.stderr and "Traceback" not in again.stderr
