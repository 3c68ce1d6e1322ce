"""SIGKILL at random points of `gitxp gc`, `gitxp rm` and `gitxp tag`.

Against a repository with a couple of hundred runs, each round starts one
real `gitxp` command and kills it after a random delay (if it is still
running). After every round: `git fsck --strict` is clean, every run is
still there (under refs/gitxp/runs/ or, once removed, in the trash), every
tag edit and removal whose command returned success is present, and the
next command works (a killed gc's leftovers are cleared by the next gc).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

import gitxp
from tests.gitutil import fsck, git
from tests.workflows_util import GITXP, child_env


def _record_runs(repo: Path, n: int) -> list[str]:
    os.environ["GITXP_START_DELAY"] = "0"
    ids = []
    try:
        for i in range(n):
            with gitxp.start_run(name=f"r{i}", params={"i": i}, snapshot=False) as run:
                run.log_metric("loss", 1.0 / (i + 1), step=0)
            ids.append(run.id)
    finally:
        del os.environ["GITXP_START_DELAY"]
    return ids


def _refs(repo: Path) -> dict[str, tuple[str, str]]:
    """run id -> (where: runs|trash, commit)."""
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/gitxp/")
    found = {}
    for line in out.splitlines():
        ref, sha = line.split()
        parts = ref.split("/")
        if parts[2] in ("runs", "trash"):
            found[parts[3]] = (parts[2], sha)
    return found


def _tags(repo: Path, sha: str) -> dict[str, str]:
    return json.loads(git(repo, "show", f"{sha}:run.json"))["tags"]


def _soak(repo: Path, ids: list[str], rounds: int, seconds: float, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    # how long a command takes here (the machine may be busy): kill points spread over it
    started = time.monotonic()
    calibrate = [*GITXP, "tag", ids[0], "calibration=1"]
    assert subprocess.run(calibrate, cwd=repo, env=child_env()).returncode == 0
    span = 1.1 * (time.monotonic() - started)
    acked_tags: dict[str, dict[str, str]] = {ids[0]: {"calibration": "1"}}
    acked_rm: set[str] = set()
    stats = {"rounds": 0, "killed": 0, "completed": 0, "acked_edits": 0}
    end = time.monotonic() + seconds
    while stats["rounds"] < rounds and time.monotonic() < end:
        stats["rounds"] += 1
        # the first gc has every run's objects to repack: kill it in the middle
        op = "gc" if stats["rounds"] == 1 else rng.choice(["gc", "tag", "tag", "rm"])
        run = rng.choice(ids)
        if op == "gc":
            args = ["gc"]
        elif op == "tag":
            value = f"v{stats['rounds']}"
            args = ["tag", run, f"k{stats['rounds'] % 3}={value}"]
        else:
            args = ["rm", run]
        proc = subprocess.Popen(
            [*GITXP, *args],
            cwd=repo,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(rng.uniform(0.0, span))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            stats["killed"] += 1
        _out, err = proc.communicate()
        if proc.returncode == 0:
            stats["completed"] += 1
            if op == "tag":
                key, value = args[2].split("=")
                acked_tags.setdefault(run, {})[key] = value
                stats["acked_edits"] += 1
            elif op == "rm":
                acked_rm.add(run)
                stats["acked_edits"] += 1
        else:
            assert proc.returncode in (-signal.SIGKILL, 1), err
            assert "Traceback" not in err and "internal error" not in err, err
        # the invariants, after every round
        fsck(repo)
        refs = _refs(repo)
        assert sorted(refs) == sorted(ids), "a run was lost"
        for rid in acked_rm:
            assert refs[rid][0] == "trash", f"acknowledged rm of {rid} undone"
        for rid, tags in acked_tags.items():
            have = _tags(repo, refs[rid][1])
            lost = {k: v for k, v in tags.items() if have.get(k) != v}
            assert not lost, f"acknowledged tag edits of {rid} lost: {lost}"
    # a final gc clears whatever the kills left that is provably stale, and everything
    # still reads. One thing it may not clear: a kill in the instant between a ref's
    # lock and its rename leaves `<ref>.lock` with no owner recorded (git's own locks
    # are the same); gc names it as busy, and it counts as stale after an hour.
    ownerless = list((repo / ".git" / "refs").rglob("*.lock"))
    report = gitxp.gc()
    left = list((repo / ".git" / "refs").rglob("*.lock"))
    assert set(left) <= set(ownerless), "gc left a lock of its own"
    # a lock whose ref has a loose file blocks packing it, and gc says so; a lock whose
    # ref is gone (a kill inside `rm` after the move) blocks nothing, and gc says nothing
    blocking = [lock for lock in left if Path(str(lock)[: -len(".lock")]).is_file()]
    if blocking:
        assert report.refs_skipped is not None and "being updated" in report.refs_skipped
    if left:
        for lock in left:  # what the message tells a user to do once no process runs
            lock.unlink()
        report = gitxp.gc()
    assert report.refs_skipped is None or "being updated" not in report.refs_skipped
    assert not list((repo / ".git" / "refs").rglob("*.lock"))
    assert not (repo / ".git" / "packed-refs.lock").exists()
    live = git(repo, "for-each-ref", "--format=%(refname)", "refs/gitxp/runs/").split()
    assert len(gitxp.open(repo).rows()) == len(live) <= len(ids) - len(acked_rm)
    fsck(repo)
    print(f"kill soak: {stats}")
    return stats


def test_sigkill_during_gc_rm_and_tag_loses_nothing(repo: Path) -> None:
    ids = _record_runs(repo, 200)
    stats = _soak(repo, ids, rounds=8, seconds=40, seed=16)
    assert stats["killed"] >= 2


@pytest.mark.slow
def test_sigkill_soak(repo: Path) -> None:
    ids = _record_runs(repo, 300)
    stats = _soak(repo, ids, rounds=10_000, seconds=20, seed=int(time.time()))
    assert stats["killed"] >= 5
