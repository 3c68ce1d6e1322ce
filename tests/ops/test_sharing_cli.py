"""`gitxp push/pull/fetch/remote setup` as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from gitxp.cli.main import cli
from tests.gitutil import fsck, git, run_refs
from tests.ops.test_sharing_transports import continue_run, record


def _bare(tmp_path: Path, name: str = "origin.git") -> Path:
    bare = tmp_path / name
    git(tmp_path, "init", "-q", "--bare", str(bare))
    return bare


def test_push_and_pull_print_a_summary_per_run(
    repo: Path, tmp_path: Path, runner: CliRunner
) -> None:
    bare = _bare(tmp_path)
    git(repo, "remote", "add", "origin", str(bare))
    ids = record(repo, 2)
    result = runner.invoke(cli, ["push"])
    assert result.exit_code == 0, result.output
    assert all(i in result.output for i in ids)
    assert "push to origin: 2 runs: 2 new" in result.output

    again = runner.invoke(cli, ["push"])
    assert again.exit_code == 0 and "2 up-to-date" in again.output
    assert ids[0] not in again.output  # up-to-date runs are only counted...
    assert ids[0] in runner.invoke(cli, ["push", "-v"]).output  # ...unless asked

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    pulled = runner.invoke(cli, ["pull", "-C", str(clone), "--format", "json"])
    assert pulled.exit_code == 0, pulled.output
    data = json.loads(pulled.output)
    assert data["remote"] == "origin" and data["action"] == "pull"
    assert data["summary"]["new"] == 2
    assert {r["run_id"] for r in data["results"]} == set(ids)
    assert set(data["results"][0]) == {"run_id", "ref", "status", "message", "old", "new"}
    fetched = runner.invoke(cli, ["fetch", "-C", str(clone), "origin", ids[0][:20]])
    assert fetched.exit_code == 0 and "1 up-to-date" in fetched.output
    fsck(clone)


def test_a_rejected_run_exits_1_and_says_what_to_do(
    repo: Path, tmp_path: Path, runner: CliRunner
) -> None:
    bare = _bare(tmp_path)
    run_id = record(repo, 1)[0]
    assert runner.invoke(cli, ["push", str(bare)]).exit_code == 0
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    assert runner.invoke(cli, ["fetch", "-C", str(clone)]).exit_code == 0
    continue_run(repo, run_id, 1.0)
    continue_run(clone, run_id, 2.0)
    assert runner.invoke(cli, ["push", str(bare)]).exit_code == 0
    result = runner.invoke(cli, ["push", "-C", str(clone), "--format", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["results"][0]["status"] == "rejected"
    table = runner.invoke(cli, ["fetch", "-C", str(clone)])
    assert table.exit_code == 1 and "rejected" in table.output and "--force" in table.output
    assert "nothing was overwritten" in table.output
    assert runner.invoke(cli, ["fetch", "-C", str(clone), "--force"]).exit_code == 0


def test_bad_remotes_and_usage_are_one_line_errors(repo: Path, runner: CliRunner) -> None:
    record(repo, 1)
    nowhere = runner.invoke(cli, ["push", "nowhere"])
    assert nowhere.exit_code == 1
    assert nowhere.output.startswith("error: remote nowhere:") and "Traceback" not in nowhere.output
    no_origin = runner.invoke(cli, ["pull"])
    assert no_origin.exit_code == 1 and "git remote add origin" in no_origin.output
    both = runner.invoke(cli, ["push", ".", "--all", "some-run"])
    assert both.exit_code == 2 and both.output.startswith("error:")
    missing = runner.invoke(cli, ["push", ".", "no-such-run"])
    assert missing.exit_code == 1 and "no run matches" in missing.output


def test_remote_setup_makes_plain_git_carry_runs(
    repo: Path, tmp_path: Path, runner: CliRunner
) -> None:
    bare = _bare(tmp_path)
    git(repo, "remote", "add", "origin", str(bare))
    config_before = (repo / ".git" / "config").read_text()
    ids = record(repo, 2)
    first = runner.invoke(cli, ["remote", "setup"])
    assert first.exit_code == 0, first.output
    assert "refs/gitxp/runs/*:refs/gitxp/runs/*" in first.output
    assert "already" in runner.invoke(cli, ["remote", "setup"]).output  # idempotent
    assert (repo / ".git" / "config").read_text().startswith(config_before)

    git(repo, "push", "-q")  # plain git: the branch and the runs
    assert sorted(run_refs(bare)) == sorted(f"refs/gitxp/runs/{i}" for i in ids)
    assert "refs/heads/main" in git(bare, "show-ref")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    assert run_refs(clone) == []
    setup = runner.invoke(
        cli, ["remote", "setup", "-C", str(clone), "--no-push", "--format", "json"]
    )
    assert json.loads(setup.output) == {
        "remote": "origin",
        "fetch": [
            "refs/gitxp/runs/*:refs/gitxp/runs/*",
            "refs/tags/*:refs/tags/*",
            "+refs/gitxp/index/*:refs/gitxp/index/*",
        ],
        "push": [],
    }
    git(clone, "fetch", "-q")
    assert sorted(run_refs(clone)) == sorted(run_refs(repo))
    fsck(clone)


def test_every_sharing_command_documents_an_example(runner: CliRunner) -> None:
    for args in (["push"], ["pull"], ["fetch"], ["remote"], ["remote", "setup"]):
        result = runner.invoke(cli, [*args, "--help"])
        assert result.exit_code == 0 and "Examples:" in result.output, args
