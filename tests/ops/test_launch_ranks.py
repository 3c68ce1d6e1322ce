"""`gitxp run` started by a distributed launcher as one of its ranks (`srun gitxp run ...`):
only global rank 0's records by default; with GITXP_RANKS=all, one grouped run per rank."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import gitxp
from gitxp.ops.launch import launch
from tests.gitutil import git

CHILD = """\
import gitxp
run = gitxp.start_run()
gitxp.log_metric("loss", 0.5)
print("inert" if run.inert else "recording", run.id)
raise SystemExit({code})
"""


def _as_task(monkeypatch: pytest.MonkeyPatch, rank: int) -> None:
    monkeypatch.setenv("SLURM_PROCID", str(rank))
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_STEP_ID", "0")


def _child(code: int = 0) -> list[str]:
    return [sys.executable, "-c", CHILD.format(code=code)]


def _refs(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", "refs/gitxp").split()


def test_on_a_rank_other_than_zero_gitxp_run_runs_the_command_unrecorded(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    _as_task(monkeypatch, 1)
    result = launch(_child(3))
    assert (result.run_id, result.status, result.exit_code) == ("", "FAILED", 3)
    assert capfd.readouterr().out.startswith("inert")  # CMD's start_run is inert too
    assert _refs(repo) == []


def test_rank_zero_gitxp_run_records_and_its_command_joins(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _as_task(monkeypatch, 0)
    result = launch(_child(), stream=False)
    record = gitxp.open().run(result.run_id)
    assert record.status == "FINISHED" and record.tags == {}
    assert record.metric_history("loss")["value"].tolist() == [0.5]
    assert _refs(repo) == [f"refs/gitxp/runs/{result.run_id}"]


def test_with_all_ranks_each_gitxp_run_records_its_rank_grouped(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITXP_RANKS", "all")
    _as_task(monkeypatch, 0)
    zero = launch(_child(), stream=False)
    _as_task(monkeypatch, 1)
    one = launch(_child(), stream=False)
    handle = gitxp.open()
    first, second = handle.run(zero.run_id), handle.run(one.run_id)
    assert (first.tags["rank"], second.tags["rank"]) == ("0", "1")
    assert first.tags["group"] == second.tags["group"]
    assert second.parent == zero.run_id and first.parent is None
    for record in (first, second):  # each command joined its own rank's run
        assert record.metric_history("loss")["value"].tolist() == [0.5]
    assert len(_refs(repo)) == 2
    git(repo, "fsck", "--strict")


def test_the_cli_says_this_rank_is_not_recorded(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from gitxp.cli.main import cli

    _as_task(monkeypatch, 1)
    result = CliRunner().invoke(cli, ["run", "-q", "--", "true"])
    assert result.exit_code == 0
    assert "not recorded on this rank (only global rank 0 records" in result.output
    assert _refs(repo) == []
