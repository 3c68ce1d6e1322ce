"""A recording process killed at any moment, or exiting normally, leaves a sound run.

SIGKILL lands at random points of a writer that logs and checkpoints every
50 ms: the run's ref must always be at a complete commit that `git fsck
--strict` accepts, read as CRASHED, with every point of that checkpoint.
And a normal exit must not abort (exit 134) because a gitxp thread was
still running while the interpreter finalised.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import gitxp
from tests.gitutil import GIT_ENV, fsck, git, run_refs

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import time, gitxp
with gitxp.start_run(system_metrics=True, system_metrics_seconds=0.05) as run:
    print(run.id, flush=True)
    i = 0
    while True:
        run.log_metrics({"loss": 1.0 / (i + 1), "acc": float(i)}, step=i)
        i += 1
        if i % 500 == 0:
            time.sleep(0.002)
"""


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT), **extra}


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_the_last_checkpoint_whole(repo: Path) -> None:
    rng = random.Random(16)
    env = _env(GITXP_CHECKPOINT_SECONDS="0.05", GITXP_START_DELAY="0")
    kills = recording = 0
    deadline = time.monotonic() + 30
    while kills < 30 and (kills < 10 or time.monotonic() < deadline):  # 10 even when slow
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER], cwd=repo, env=env, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        if kills % 5 == 4:
            time.sleep(rng.uniform(0.0, 0.3))  # now and then while it starts up
        else:
            proc.stdout.readline()  # the run has started: kill it while it records
            time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        kills += 1
        recording += kills % 5 != 0
    refs = run_refs(repo)
    assert kills >= 10 and recording >= 5, (kills, recording)
    assert len(refs) >= recording  # a run exists from its first commit on
    project = gitxp.open(repo)
    for ref in refs:
        assert git(repo, "cat-file", "-t", ref).strip() == "commit"
        record = project.run(ref.rsplit("/", 1)[1])
        assert record.status == "CRASHED", ref
        summary = record.summary
        for key in ("loss", "acc"):
            if key not in summary:
                continue
            history = record.metric_history(key)
            # every point of the last checkpoint, and no more than it says it has
            assert history["step"].tolist() == list(range(summary[key]["count"])), ref
        if "acc" in summary:
            assert summary["acc"]["last"] == summary["acc"]["count"] - 1
    # A kill inside a ref update's lock window leaves that ref's lock, as it does for git
    # itself (seen once in CI): only ever the lock of a killed run's own ref, never another.
    locks = [p.relative_to(repo / ".git").as_posix() for p in (repo / ".git").rglob("*.lock")]
    assert all(lock[: -len(".lock")] in refs for lock in locks), locks
    fsck(repo)
    print(f"\n{kills} kills, {recording} while recording, {len(refs)} runs checked")


EXITS = """
import atexit, threading

def gitxp_threads_at_teardown():
    # registered before gitxp is imported: runs after every gitxp exit handler
    alive = [t.name for t in threading.enumerate() if t.name.startswith("gitxp")]
    print("ALIVE", alive, flush=True)

atexit.register(gitxp_threads_at_teardown)

import pyarrow.parquet  # noqa: F401
import gitxp

for n in range(2):
    with gitxp.start_run(system_metrics=True, system_metrics_seconds=0.01) as run:
        for i in range(3000):
            run.log_metric("loss", 1.0 / (i + 1))
left_open = gitxp.start_run(system_metrics=True, system_metrics_seconds=0.01)
left_open.log_metric("loss", 0.5)
"""


@pytest.mark.slow
def test_no_gitxp_thread_runs_while_the_interpreter_finalises(repo: Path) -> None:
    env = _env(GITXP_CHECKPOINT_SECONDS="0.01", GITXP_START_DELAY="0")
    started = time.monotonic()
    exits = 0
    while exits < 5 or (exits < 40 and time.monotonic() - started < 15):
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(EXITS)],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        exits += 1
        assert result.returncode == 0, (exits, result.returncode, result.stderr)
        assert "ALIVE []" in result.stdout, result.stdout + result.stderr
    statuses = gitxp.open(repo).runs()["status"].tolist()
    assert statuses.count("FINISHED") == 3 * exits, statuses  # the open run ended at exit
