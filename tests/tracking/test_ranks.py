"""Distributed ranks: which rank a process is, the inert run of the ranks that do not record,
and the grouped per-rank runs of `ranks="all"` (in one process, each rank's environment set
in turn; tests/tracking/test_ranks_torchrun.py runs real torchrun jobs)."""

from __future__ import annotations

import inspect
import json
import os
import threading
from pathlib import Path

import pytest

import gitxp
from gitxp.errors import InvalidValueError, NoActiveRunError
from gitxp.tracking import rank_groups
from gitxp.tracking.inert import InertRun
from gitxp.tracking.ranks import detect, ranks_mode
from gitxp.tracking.run import Run
from tests.gitutil import git


def _as_rank(monkeypatch: pytest.MonkeyPatch, rank: int, world: int = 2, **more: str) -> None:
    """This process is rank *rank* of a torchrun job of *world* processes."""
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world))
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", more.pop("run_id", "job-1"))
    for key, value in more.items():
        monkeypatch.setenv(key, value)


def _refs(path: Path) -> list[str]:
    return git(path, "for-each-ref", "--format=%(refname)", "refs/gitxp").split()


def _files(path: Path) -> dict[str, float]:
    return {
        os.path.join(d, f): os.path.getmtime(os.path.join(d, f))
        for d, _, names in os.walk(path)
        for f in names
    }


# -- detection ---------------------------------------------------------------------------------
def test_no_launcher_and_a_world_of_one_are_a_single_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert detect() is None
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert detect() is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"RANK": "3", "WORLD_SIZE": "8", "SLURM_PROCID": "0"}, (3, 8, "RANK")),
        ({"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "4", "SLURM_PROCID": "0"}, (2, 4)),
        ({"PMI_RANK": "1", "PMI_SIZE": "2", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"}, (1, 2)),
        ({"SLURM_PROCID": "5", "SLURM_NTASKS": "6"}, (5, 6, "SLURM_PROCID")),
        ({"LOCAL_RANK": "1", "WORLD_SIZE": "2"}, (1, 2, "LOCAL_RANK")),
        ({"LOCAL_RANK": "0", "NODE_RANK": "1", "LOCAL_WORLD_SIZE": "2"}, (2, None)),
        ({"RANK": "zero", "SLURM_PROCID": "1", "SLURM_NTASKS": "2"}, (1, 2, "SLURM_PROCID")),
    ],
)
def test_the_innermost_launcher_names_the_rank(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: tuple[object, ...]
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    found = detect()
    assert found is not None
    assert (found.rank, found.world_size, found.source)[: len(expected)] == expected


def test_which_ranks_record_is_zero_all_or_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ranks_mode(None) == "zero"
    assert ranks_mode("all") == "all"
    monkeypatch.setenv("GITXP_RANKS", " ALL ")
    assert ranks_mode(None) == "all"
    assert ranks_mode("zero") == "zero"  # the argument wins over the environment
    monkeypatch.setenv("GITXP_RANKS", "every")
    with pytest.raises(InvalidValueError, match=r"^GITXP_RANKS: 'every' must be 'zero'"):
        ranks_mode(None)
    with pytest.raises(InvalidValueError, match=r"^ranks: 1 must be 'zero' .*'all'"):
        gitxp.start_run(ranks=1)  # type: ignore[arg-type]


def test_a_bad_ranks_setting_is_one_line_from_the_cli(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from gitxp.cli.main import cli

    monkeypatch.setenv("GITXP_RANKS", "some")
    result = CliRunner().invoke(cli, ["run", "--", "true"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: GITXP_RANKS: 'some' must be 'zero' (only global rank 0 records) or 'all' "
        "(every rank)"
    ]
    assert _refs(repo) == []


# -- the inert run -----------------------------------------------------------------------------
def test_the_inert_run_defines_every_public_member_of_run_itself() -> None:
    public = {
        name for name in dir(Run) if not name.startswith("_") or name in ("__enter__", "__exit__")
    }
    public |= {"id", "name", "experiment", "ref"}  # instance attributes
    inert = InertRun()
    for name in sorted(public):
        assert hasattr(inert, name), name
        if name in ("id", "name", "experiment", "ref", "checkpoint_seconds"):
            continue
        assert name in InertRun.__dict__, f"InertRun inherits {name} from Run: define it"
        ours, theirs = getattr(InertRun, name), getattr(Run, name)
        if callable(theirs):
            params = inspect.signature(ours).parameters
            assert list(params.values()) == list(inspect.signature(theirs).parameters.values())
    assert isinstance(inert, Run) and inert.inert


def test_a_rank_other_than_zero_gets_an_inert_run_that_writes_nothing(
    repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _as_rank(monkeypatch, 1)
    before, threads = _files(repo / ".git"), threading.active_count()
    (tmp_path / "model.bin").write_bytes(b"x")
    with gitxp.start_run(experiment="ddp", params={"lr": 0.1}, system_metrics=True) as run:
        assert isinstance(run, InertRun) and gitxp.active_run() is run
        run.log_metric("loss", 0.5)
        run.log_metrics({"a": 1.0}, step=3)
        run.log_metric_array("b", [1.0, 2.0])
        run.log_param("epochs", 2)
        run.set_tags({"k": "v"})
        run.note("hello")
        assert run.log_artifact(tmp_path / "model.bin") == {}
        assert run.log_text("t", "a.txt") == {} and run.log_dict({}, "d.json") == {}
        gitxp.log_metric("loss", 0.4)
        gitxp.log_params({"seed": 1})
        gitxp.set_tag("x", 1)
        assert run.checkpoint()
        assert run.params == {"lr": 0.1, "epochs": 2, "seed": 1}
        assert run.experiment == "ddp" and run.tags == {"k": "v", "x": "1"}
        assert threading.active_count() == threads  # no checkpointer, no sampler
    assert run.status == "FINISHED" and gitxp.active_run() is None
    gitxp.end_run()
    with pytest.raises(NoActiveRunError):
        gitxp.log_metric("loss", 1.0)
    assert _refs(repo) == [] and _files(repo / ".git") == before


def test_rank_zero_of_a_job_records_as_a_single_process_would(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _as_rank(monkeypatch, 0)
    with gitxp.start_run(params={"lr": 0.1}) as run:
        run.log_metric("loss", 0.5)
    assert not isinstance(run, InertRun)
    record = gitxp.open().run(run.id)
    assert record.params == {"lr": 0.1} and record.tags == {}
    assert record.metric_history("loss")["value"].tolist() == [0.5]


def test_under_gitxp_run_the_inert_run_shows_that_run_and_leaves_it_to_rank_zero(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launched = gitxp.start_run(name="launched", params={"lr": 0.3}, tags={"team": "a"})
    launched._pause_checkpoints()  # as `gitxp run` does before it starts CMD
    tip = git(repo, "rev-parse", launched.ref)
    monkeypatch.setenv("GITXP_RUN_ID", launched.id)
    monkeypatch.setenv("GITXP_RUN_REPO", str(repo))
    _as_rank(monkeypatch, 1)
    try:
        from gitxp.tracking import context

        context.pop_active(launched)
        run = gitxp.active_run()  # joins what `gitxp run` started: inert on rank 1
        assert isinstance(run, InertRun)
        assert (run.id, run.name, run.params) == (launched.id, "launched", {"lr": 0.3})
        assert run.tags == {"team": "a"} and run.code_commit == launched.code_commit
        gitxp.log_metric("loss", 1.0)
        assert gitxp.start_run() is run  # one inert run per process, as the joined run is
        gitxp.end_run()
        assert git(repo, "rev-parse", launched.ref) == tip
    finally:
        launched.end()


def test_the_lightning_and_transformers_callbacks_record_nothing_on_an_inert_rank(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitxp.integrations._frameworks import RunHandle

    _as_rank(monkeypatch, 1)
    handle = RunHandle(experiment="ddp")
    handle.get().log_metrics({"loss": 1.0}, step=0)
    handle.finish("FINISHED")
    assert _refs(repo) == []


# -- ranks="all" -------------------------------------------------------------------------------
def _grouped_run(monkeypatch: pytest.MonkeyPatch, rank: int, **env: str) -> Run:
    _as_rank(monkeypatch, rank, **env)
    return gitxp.start_run(experiment="ddp", ranks="all")


def test_with_all_ranks_each_rank_records_a_run_grouped_under_rank_zero(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zero = _grouped_run(monkeypatch, 0)
    one = _grouped_run(monkeypatch, 1)
    for run in (one, zero):
        run.log_metric("system/cpu_percent", 10.0)
        run.end()
    repo_ = gitxp.open()
    first, second = repo_.run(zero.id), repo_.run(one.id)
    assert first.tags["rank"] == "0" and second.tags["rank"] == "1"
    assert first.tags["group"] == second.tags["group"]
    assert first.tags["world_size"] == second.tags["world_size"] == "2"
    assert first.experiment == second.experiment == "ddp"
    assert (first.parent, second.parent) == (None, zero.id)
    git(repo, "fsck", "--strict")


def test_a_rank_that_starts_before_rank_zero_finds_its_parent_when_it_commits(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = _grouped_run(monkeypatch, 1)
    assert isinstance(one, rank_groups.GroupedRun)
    zero = _grouped_run(monkeypatch, 0)
    one.end()
    zero.end()
    assert gitxp.open().run(one.id).parent == zero.id


def test_rank_zero_of_an_earlier_job_with_the_same_group_is_no_parent(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rank_groups, "END_WAIT_SECONDS", 0.2)
    earlier = _grouped_run(monkeypatch, 0, run_id="none", MASTER_PORT="29500")
    earlier.end()
    path = next((repo / ".git" / "gitxp" / "ranks").iterdir())
    record = json.loads(path.read_text())
    record["time"] = rank_groups.process_start_ms() - 3_600_000  # an hour before we started
    path.write_text(json.dumps(record))
    later = _grouped_run(monkeypatch, 1, run_id="none", MASTER_PORT="29500")
    later.end()
    record_ = gitxp.open().run(later.id)
    assert record_.parent is None and record_.tags["group"] == earlier.tags["group"]


def test_the_group_id_comes_from_gitxp_group_or_the_launcher(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "abc")
    first = rank_groups.group_id()
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")  # a restarted job is a new group
    assert rank_groups.group_id() != first and len(first) == 12
    monkeypatch.setenv("GITXP_GROUP", "sweep-7")
    assert rank_groups.group_id() == "sweep-7"


def test_a_single_process_with_all_ranks_records_as_before(repo: Path) -> None:
    with gitxp.start_run(ranks="all") as run:
        pass
    assert gitxp.open().run(run.id).tags == {}


def test_under_gitxp_run_with_all_ranks_rank_zero_joins_and_the_others_hang_below(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitxp.tracking import context

    launched = gitxp.start_run(name="launched")
    launched._pause_checkpoints()  # as `gitxp run` does before it starts CMD
    context.pop_active(launched)
    monkeypatch.setenv("GITXP_RUN_ID", launched.id)
    monkeypatch.setenv("GITXP_RUN_REPO", str(repo))
    monkeypatch.setenv("GITXP_RANKS", "all")
    try:
        one = _grouped_run(monkeypatch, 1)
        one.log_metric("loss", 1.0)
        one.end()
        zero = _grouped_run(monkeypatch, 0)
        assert zero is launched  # rank 0's process joins the run of `gitxp run`
        assert zero.tags["rank"] == "0"
        context.pop_active(zero)
    finally:
        launched.end()
    handle = gitxp.open()
    record = handle.run(one.id)
    assert record.parent == launched.id and record.tags["rank"] == "1"
    assert record.tags["group"] == handle.run(launched.id).tags["group"]
    assert len(_refs(repo)) == 2
