"""Real torchrun jobs (gloo, two CPU processes): one run by default, one run per rank with
ranks="all", and one run for `gitxp run -- torchrun`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import gitxp
from tests.gitutil import git
from tests.integrations.frameworks import framework

ROOT = Path(__file__).resolve().parents[2]

TRAIN = """\
import gitxp
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
rank = dist.get_rank()
total = torch.tensor([float(rank + 1)])
dist.all_reduce(total)  # 1 + 2 on both ranks

with gitxp.start_run(experiment="ddp", params={"lr": RANK_LR}) as run:
    assert gitxp.active_run().params["lr"] == RANK_LR, run.params  # the same on every rank
    for step in range(5):
        run.log_metric("loss", total.item() / (step + 1))
    gitxp.log_metric("rank_logged", float(rank))
    gitxp.set_tag("rank_tagged", rank)

if PER_RANK:
    with gitxp.start_run(experiment="per-rank", ranks="all") as run:
        run.log_metric("system/rank", float(rank))
dist.destroy_process_group()
"""


def _torchrun(*script_args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", *script_args]


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("GITXP_RANKS", None)
    return env


def _write_script(repo: Path, lr: float, per_rank: bool) -> None:
    (repo / "train.py").write_text(
        TRAIN.replace("RANK_LR", repr(lr)).replace("PER_RANK", repr(per_rank))
    )
    git(repo, "commit", "-qam", "train")


def _runs(experiment: str) -> list[gitxp.RunRecord]:  # type: ignore[name-defined]
    handle = gitxp.open()
    ids = handle.runs(experiment=experiment)["id"].tolist()
    return [handle.run(i) for i in ids]


@pytest.mark.slow
def test_a_torchrun_job_records_one_run_and_one_run_per_rank_with_all(repo: Path) -> None:
    framework("torch")
    _write_script(repo, 0.1, per_rank=True)
    done = subprocess.run(
        _torchrun("train.py"), env=_env(), capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [run] = _runs("ddp")
    assert run.status == "FINISHED" and run.params == {"lr": 0.1}
    assert run.metric_history("loss")["value"].tolist()[0] == 3.0
    assert run.metric_history("rank_logged")["value"].tolist() == [0.0]
    assert run.tags == {"rank_tagged": "0"}
    zero, one = sorted(_runs("per-rank"), key=lambda r: r.tags["rank"])
    assert (zero.tags["rank"], one.tags["rank"]) == ("0", "1")
    assert zero.tags["group"] == one.tags["group"] and zero.tags["world_size"] == "2"
    assert (zero.parent, one.parent) == (None, zero.id)
    assert one.metric_history("system/rank")["value"].tolist() == [1.0]
    assert len(git(repo, "for-each-ref", "refs/gitxp/runs").splitlines()) == 3
    git(repo, "fsck", "--strict")


@pytest.mark.slow
def test_gitxp_run_around_torchrun_records_one_run(repo: Path) -> None:
    framework("torch")
    _write_script(repo, 0.2, per_rank=False)
    done = subprocess.run(
        [sys.executable, "-m", "gitxp", "run", "-p", "lr=0.2", "--", *_torchrun("train.py")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [run] = _runs("default") + _runs("ddp")
    assert run.status == "FINISHED" and run.params == {"lr": 0.2}
    assert run.meta["exit_code"] == 0
    assert run.metric_history("rank_logged")["value"].tolist() == [0.0]
    assert len(run.metric_history("loss")) == 5  # rank 0's points, once
    assert len(git(repo, "for-each-ref", "refs/gitxp/runs").splitlines()) == 1
    git(repo, "fsck", "--strict")
