"""Read paths a copied repository or a hostile remote could still mislead or exhaust.

- the listing cache of a repository copied with `cp` (cache included) must
  describe the copy, never the directories of the repository it came from;
- a fetched run whose tip arrived but whose older objects did not is
  skipped, so no ref points at incomplete history;
- artifact sizes and a joined run's own files are read within bounds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gitxp
from tests.faults.hostile import RUNS, make_project, record
from tests.gitutil import git, run_refs

ROOT = Path(gitxp.__file__).resolve().parents[1]  # the gitxp under test


def gitxp_cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitxp", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=120,
    )


def listed(path: Path) -> set[str]:
    """The ids `gitxp log` lists in *path* (a fresh process: only the on-disk cache is shared)."""
    out = gitxp_cli(path, "log", "--format", "json")
    assert out.returncode == 0, out.stderr
    return {row["id"] for row in json.loads(out.stdout)}


def settle(path: Path) -> None:
    """Date the run-ref directory an hour back, as if the last run was recorded long ago
    (a listing then trusts its stamp and does not list the directory again)."""
    runs_dir = path / ".git" / "refs" / "gitxp" / "runs"
    old = time.time() - 3600
    os.utime(runs_dir, (old, old))


# -- 1. the listing cache of a copied repository ------------------------------------------
@pytest.mark.parametrize("how", ["-r", "-a"])
def test_a_copied_repository_lists_its_own_runs(tmp_path: Path, how: str) -> None:
    src = make_project(tmp_path / "src")
    first = [record(src, f"run{i}") for i in range(3)]
    settle(src)
    assert listed(src) == set(first)  # the cache (with its directory stamps) is written
    copy = tmp_path / "copy"
    subprocess.run(["cp", how, str(src), str(copy)], check=True)

    added = record(copy, "only-in-copy")
    git(copy, "update-ref", "-d", RUNS + first[0])
    settle(copy)
    assert listed(copy) == {added, *first[1:]}
    assert listed(src) == set(first)

    theirs = record(src, "only-in-src")
    settle(src)
    assert listed(src) == {theirs, *first}
    assert listed(copy) == {added, *first[1:]}
    assert sorted(run_refs(copy)) == sorted(RUNS + i for i in (added, *first[1:]))
