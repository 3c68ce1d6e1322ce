"""A path fetch wanting most of a repository copies its packs whole (`BULK_WANTS`).

The source's packs are re-indexed as packs received over the wire and its
loose objects come as one more pack; runs whose history is not there in
full are still refused by the completeness check. `BULK_WANTS` (1,000 tips)
is lowered so a few real runs take that route.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import gitxp.git.remote
from gitxp.ops import sharing
from tests.faults.hostile import RUNS, make_project, record
from tests.gitutil import fsck, git, run_refs


@pytest.fixture
def whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gitxp.git.remote, "BULK_WANTS", 2)


def _refs(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", RUNS)
    return dict(line.split(" ") for line in out.splitlines())


def test_packed_and_loose_runs_all_arrive(tmp_path: Path, whole: None) -> None:
    src = make_project(tmp_path / "src")
    for i in range(3):
        record(src, f"packed{i}")
    git(src, "gc", "-q")  # these three live in a pack, with packed refs
    for i in range(2):
        record(src, f"loose{i}")  # these two are loose objects and loose refs
    dest = make_project(tmp_path / "dest")

    results = sharing.fetch(dest, str(src))

    assert [r.status for r in results] == ["new"] * 5
    assert _refs(dest) == _refs(src)
    fsck(dest)
    packs = os.listdir(dest / ".git" / "objects" / "pack")
    assert not [p for p in packs if p.endswith(".keep")]  # released once the refs exist
    # the source's pack and one of its loose objects (object by object, 40 would stay loose)
    assert len([p for p in packs if p.endswith(".pack")]) == 2
    assert {r.status for r in sharing.fetch(dest, str(src))} == {"up-to-date"}


def test_a_run_missing_an_object_there_is_skipped_and_the_rest_arrive(
    tmp_path: Path, whole: None, caplog: pytest.LogCaptureFixture
) -> None:
    src = make_project(tmp_path / "src")
    ids = [record(src, f"run{i}") for i in range(3)]
    broken = ids[1]
    blob = git(src, "rev-parse", f"{RUNS}{broken}:run.json").strip()
    git(src, "cat-file", "-e", blob)
    os.remove(src / ".git" / "objects" / blob[:2] / blob[2:])  # loose: gone from the source
    dest = make_project(tmp_path / "dest")

    results = {r.run_id: r.status for r in sharing.fetch(dest, str(src))}

    assert results == {ids[0]: "new", ids[2]: "new"}
    assert f"skipped run {broken}" in caplog.text
    assert sorted(run_refs(dest)) == sorted(RUNS + i for i in (ids[0], ids[2]))
    fsck(dest)
