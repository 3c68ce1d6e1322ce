"""The CLI for recording's read side: init, log, show, errors and exit codes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import gitxp
from gitxp.cli.main import cli
from tests.gitutil import git
from tests.workflows_util import stderr_on_a_terminal


@pytest.fixture
def two_runs(repo: Path) -> list[str]:
    ids = []
    for name, lr, acc in (("first", 0.1, 0.8), ("second", 0.01, 0.9)):
        with gitxp.start_run(
            experiment="exp", name=name, params={"lr": lr}, tags={"who": "me"}
        ) as run:
            run.log_metric("acc", acc)
            run.log_metric("loss", float("nan"))
        ids.append(run.id)
    return ids


def test_log_default_is_git_log_like_newest_first(runner: CliRunner, two_runs: list[str]) -> None:
    result = runner.invoke(cli, ["log"])
    assert result.exit_code == 0, result.output
    assert result.output.index("second") < result.output.index("first")
    assert f"run {two_runs[1]}" in result.output
    assert "Params:     lr=0.01" in result.output and "acc=0.9" in result.output


def test_log_limits_oneline_experiment_and_filter(runner: CliRunner, two_runs: list[str]) -> None:
    out = runner.invoke(cli, ["log", "--oneline", "-n", "1"]).output.splitlines()
    assert len(out) == 1 and out[0].startswith(two_runs[1][:12]) and "exp/second" in out[0]
    out = runner.invoke(cli, ["log", "--oneline", "--filter", "params.lr > 0.05"]).output
    assert "first" in out and "second" not in out
    result = runner.invoke(cli, ["log", "--oneline", "-e", "other"])
    assert result.stdout == "" and result.stderr == "no runs match\n"
    out = runner.invoke(cli, ["log", "--oneline", "--order-by", "metrics.acc ASC"]).output
    assert out.index("first") < out.index("second")


def test_log_json_is_stable_and_strict(runner: CliRunner, two_runs: list[str]) -> None:
    result = runner.invoke(cli, ["log", "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.output)  # strict JSON: NaN is written as the string "NaN"
    assert [d["id"] for d in data] == list(reversed(two_runs))
    required = {
        "id",
        "name",
        "experiment",
        "status",
        "start_time",
        "end_time",
        "code_commit",
        "params",
        "metrics",
        "tags",
    }
    assert required <= set(data[0])
    assert data[0]["params"] == {"lr": 0.01} and data[0]["tags"] == {"who": "me"}
    assert data[0]["metrics"] == {"acc": 0.9, "loss": "NaN"}
    assert isinstance(data[0]["start_time"], int)


def test_log_table_and_csv(runner: CliRunner, two_runs: list[str]) -> None:
    table = runner.invoke(cli, ["log", "--format", "table"]).output
    header = table.splitlines()[0]
    assert "params.lr" in header and "metrics.acc" in header
    rows = list(csv.DictReader(io.StringIO(runner.invoke(cli, ["log", "--format", "csv"]).output)))
    assert [r["name"] for r in rows] == ["second", "first"]
    assert rows[0]["params.lr"] == "0.01" and rows[0]["tags.who"] == "me"


def test_show_text_and_json(runner: CliRunner, two_runs: list[str]) -> None:
    text = runner.invoke(cli, ["show", "first"])
    assert text.exit_code == 0, text.output
    assert f"run {two_runs[0]}" in text.output and "Metrics" in text.output
    assert "Environment" in text.output
    data = json.loads(runner.invoke(cli, ["show", two_runs[0][:10], "--format", "json"]).output)
    assert data["name"] == "first" and data["params"] == {"lr": 0.1}
    assert data["summary"]["acc"]["last"] == 0.8
    assert data["env"]["python"]["version"]
    assert data["history"][0]["subject"].startswith("gitxp: run first FINISHED")
    assert data["artifacts"] == [] and "Artifacts" not in text.output


def test_show_lists_each_artifact_with_its_size_and_where_it_lives(
    runner: CliRunner, repo: Path
) -> None:
    git(repo, "config", "gitxp.artifactThreshold", "1k")
    out = repo / "cache" / "outputs"
    out.mkdir(parents=True)
    (out / "a.txt").write_text("a" * 100)
    (out / "weights.bin").write_bytes(b"w" * 3000)  # over the threshold: the store
    with gitxp.start_run(name="arty") as run:
        run.log_text("hello", "eval/report.md")
        run.log_artifact(out)
        run.log_artifact(out / "weights.bin", "model.bin")
    text = runner.invoke(cli, ["show", "arty"])
    assert text.exit_code == 0, text.output
    section = text.output.split("Artifacts\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert section == [
        "  eval/report.md  5 B",
        "  model.bin       2.9 KiB (in the artifact store)",
        "  outputs/        2 files, 3.0 KiB (1 in the artifact store)",
    ]
    data = json.loads(runner.invoke(cli, ["show", "arty", "--format", "json"]).output)
    assert {(f["name"], f["path"], f["location"]) for f in data["artifacts"]} == {
        ("eval/report.md", "eval/report.md", "tree"),
        ("model.bin", "model.bin", "store"),
        ("outputs", "outputs/a.txt", "tree"),
        ("outputs", "outputs/weights.bin", "store"),
    }


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["show", "nosuchrun"], 1, "error: no run matches 'nosuchrun'"),
        (["log", "--filter", "params.lr >"], 1, "error: invalid filter at column 12"),
        (["log", "--format", "yaml"], 2, "Invalid value for '--format'"),
        (["log", "-n", "-3"], 2, "Invalid value for '-n'"),
        (["frobnicate"], 2, "No such command 'frobnicate'"),
    ],
)
def test_errors_are_one_line_with_exit_codes(
    runner: CliRunner, two_runs: list[str], args: list[str], code: int, fragment: str
) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == code
    assert fragment in result.output
    assert "Traceback" not in result.output


def test_outside_a_repository_real_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gitxp.cli.main", "log"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: not a git repository")
    assert len(result.stderr.strip().splitlines()) == 1


def test_python_dash_m_gitxp_is_the_gitxp_command(tmp_path: Path) -> None:
    """`python -m gitxp`, for when the `gitxp` script is not on PATH."""
    version = subprocess.run(
        [sys.executable, "-m", "gitxp", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("gitxp, version ")
    outside = subprocess.run(
        [sys.executable, "-m", "gitxp", "log"], cwd=tmp_path, capture_output=True, text=True
    )
    assert outside.returncode == 1
    assert outside.stderr.startswith("error: not a git repository")


def test_init_creates_repository_and_is_idempotent(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "new"
    result = runner.invoke(cli, ["init", str(target)])
    assert result.exit_code == 0 and "Initialized" in result.output
    assert git(target, "rev-parse", "--git-dir").strip() == ".git"
    assert git(target, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert (target / ".git" / "gitxp").is_dir()
    again = runner.invoke(cli, ["init", str(target)])
    assert again.exit_code == 0 and "ready" in again.output


def test_repo_option_like_git_dash_c(
    runner: CliRunner,
    two_runs: list[str],
    repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["log", "--oneline", "-C", str(repo)])
    assert result.exit_code == 0 and "first" in result.output


def test_log_in_repository_without_runs(runner: CliRunner, repo: Path) -> None:
    result = runner.invoke(cli, ["log", "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.output) == []
    for args in (["log"], ["log", "--oneline"], ["log", "--format", "table"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0 and result.stdout == "", (args, result.output)
        assert "no runs yet: record one" in result.stderr  # on stderr: scripts reading stdout


def test_show_reports_exit_code_and_prints_captured_output(repo: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gitxp.cli.main",
            "run",
            "-n",
            "noisy",
            "--",
            sys.executable,
            "-c",
            "print('hello from the job'); raise SystemExit(3)",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 3
    runner = CliRunner()
    text = runner.invoke(cli, ["show", "noisy"]).output
    assert "Exit code:  3" in text and "bytes stored (--output prints them)" in text
    assert runner.invoke(cli, ["show", "noisy", "--output"]).output == "hello from the job\n"


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 runs"), (1, "1 run"), (2, "2 runs"), (1500, "1,500 runs")]
)
def test_counts_in_messages_agree_with_their_noun(n: int, text: str) -> None:
    from gitxp._text import count

    assert count(n, "run") == text


def _log_with_stderr_on_a_terminal(cwd: Path) -> tuple[int, str, str]:
    """`gitxp log` with its stderr on a pseudo-terminal, where hints are shown."""
    result, err = stderr_on_a_terminal([sys.executable, "-m", "gitxp", "log"], cwd)
    return result.returncode, result.stdout.decode(), err


def test_an_empty_log_hints_at_recording_or_at_pulling_a_clones_runs(
    repo: Path, tmp_path: Path
) -> None:
    code, out, err = _log_with_stderr_on_a_terminal(repo)
    assert (code, out) == (0, "")
    assert "no runs yet: record one with `gitxp run -- python train.py`" in err
    git(repo, "remote", "add", "origin", str(tmp_path / "elsewhere.git"))
    code, out, err = _log_with_stderr_on_a_terminal(repo)
    assert (code, out) == (0, "")
    assert "no runs here yet: `gitxp pull` fetches the runs pushed to origin" in err
    piped = subprocess.run(
        [sys.executable, "-m", "gitxp", "log"], cwd=repo, capture_output=True, text=True
    )
    assert (piped.returncode, piped.stdout) == (0, "")  # a script reading stdout sees nothing
    assert "`gitxp pull` fetches the runs pushed to origin" in piped.stderr  # issue 17
