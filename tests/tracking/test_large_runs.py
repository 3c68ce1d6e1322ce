"""Large runs keep their checkpoint parts at the end (bounded memory); small runs get one part."""

from __future__ import annotations

from pathlib import Path

import pytest

import gitxp
from gitxp.store import writer as writer_module
from tests.gitutil import fsck, git


def _parts(repo: Path, run_id: str) -> list[str]:
    out = git(repo, "ls-tree", "--name-only", f"refs/gitxp/runs/{run_id}:metrics")
    return out.split()


def test_a_run_past_the_merge_bound_keeps_its_parts(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "MERGE_MAX_POINTS", 50)
    with gitxp.start_run(snapshot=False, buffer_points=40) as run:
        for step in range(100):
            run.log_metric("loss", 1 / (step + 1), step=step)
    assert len(_parts(repo, run.id)) == 3  # 40 + 40 + 20 points, left as checkpointed
    history = gitxp.open(repo).run(run.id).metric_history("loss")
    assert history["step"].tolist() == list(range(100))
    assert history["value"].tolist() == [1 / (s + 1) for s in range(100)]
    fsck(repo)


def test_a_small_run_is_merged_into_one_part(repo: Path) -> None:
    with gitxp.start_run(snapshot=False, buffer_points=40) as run:
        for step in range(100):
            run.log_metric("loss", float(step), step=step)
    assert _parts(repo, run.id) == ["part-000001.parquet"]
    assert gitxp.open(repo).run(run.id).metric_history("loss")["step"].tolist() == list(range(100))
