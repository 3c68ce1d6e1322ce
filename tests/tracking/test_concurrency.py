"""Many processes at once, and processes that die: nothing lost, nothing broken."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import gitxp
from tests.gitutil import fsck, git, run_refs

WRITER = textwrap.dedent(
    """
    import sys, gitxp
    worker = int(sys.argv[1])
    for i in range(int(sys.argv[2])):
        with gitxp.start_run(experiment="parallel", params={"worker": worker, "i": i}) as run:
            for step in range(50):
                run.log_metric("loss", 1.0 / (step + 1))
            run.checkpoint()
            run.set_tag("done", "yes")
    """
)


def test_four_processes_recording_runs_at_once(repo: Path) -> None:
    script = repo.parent / "writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(w), "5"], cwd=repo, stderr=subprocess.PIPE, text=True
        )
        for w in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert len(run_refs(repo)) == 20
    rows = gitxp.open().rows(experiment="parallel")
    assert sorted((r["params"]["worker"], r["params"]["i"]) for r in rows) == [
        (w, i) for w in range(4) for i in range(5)
    ]
    assert all(r["status"] == "FINISHED" and r["tags"] == {"done": "yes"} for r in rows)
    repo_ = gitxp.open()
    assert all(repo_.run(r["id"]).summary["loss"]["count"] == 50 for r in rows)
    fsck(repo)


KILLED = textwrap.dedent(
    """
    import sys, time, gitxp
    run = gitxp.start_run(name="victim", checkpoint_seconds=3600)
    for step in range(100):
        run.log_metric("loss", float(step))
    run.checkpoint()
    for step in range(100, 200):
        run.log_metric("loss", float(step))   # never checkpointed
    print(run.id, flush=True)
    time.sleep(600)
    """
)


def test_sigkilled_run_keeps_its_last_checkpoint_and_reads_as_crashed(repo: Path) -> None:
    script = repo.parent / "victim.py"
    script.write_text(KILLED)
    proc = subprocess.Popen(
        [sys.executable, str(script)], cwd=repo, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert gitxp.open().run(run_id).status == "RUNNING"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    rec = gitxp.open().run(run_id)
    assert rec.status == "CRASHED"
    hist = rec.metric_history("loss")
    assert list(hist["step"]) == list(range(100))
    assert gitxp.open().rows(filter="attributes.status = 'CRASHED'")[0]["id"] == run_id
    fsck(repo)


def test_stale_run_on_another_host_reads_as_crashed(repo: Path) -> None:
    from gitxp.format.status import effective_status, stale_after

    now = int(time.time() * 1000)
    meta = {"status": "RUNNING", "host": "elsewhere", "pid": 1, "checkpoint_seconds": 30}
    assert effective_status({**meta, "heartbeat_time": now - 1000}, now) == "RUNNING"
    old = now - int(stale_after(30) * 1000) - 1
    assert effective_status({**meta, "heartbeat_time": old}, now) == "CRASHED"
    assert effective_status({**meta, "status": "FINISHED", "heartbeat_time": old}, now) == (
        "FINISHED"
    )


def test_held_ref_lock_is_waited_for(repo: Path) -> None:
    with gitxp.start_run() as run:
        run.checkpoint()  # the ref exists from the first commit on
        lock = repo / ".git" / "refs" / "gitxp" / "runs" / f"{run.id}.lock"
        lock.write_text("")
        releaser = subprocess.Popen(
            [sys.executable, "-c", f"import time, os; time.sleep(0.5); os.remove({str(lock)!r})"]
        )
        run.log_metric("m", 1.0)
    releaser.wait(timeout=30)
    assert gitxp.open().run(run.id).status == "FINISHED"
    assert git(repo, "log", "-1", "--format=%s", f"refs/gitxp/runs/{run.id}").startswith(
        "gitxp: run"
    )


def test_run_refs_are_flushed_only_when_core_fsync_asks(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushed: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        flushed.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    with gitxp.start_run():
        pass
    assert flushed == []  # git's default flushes packs only, not refs or loose objects
    for value, expected in (("committed", 1), ("all,-reference", 0), ("reference", 1)):
        git(repo, "config", "core.fsync", value)
        flushed.clear()
        with gitxp.start_run() as run:
            pass
        assert len(flushed) == expected, value
        assert gitxp.open().run(run.id).status == "FINISHED"
    fsck(repo)


def test_one_thread_makes_every_runs_timed_commits(repo: Path) -> None:
    import threading

    runs = [gitxp.start_run(name=f"r{i}", checkpoint_seconds=0.2) for i in range(5)]
    for run in runs:
        run.log_metric("m", 1.0)
    deadline = time.time() + 10
    while time.time() < deadline and len(run_refs(repo)) < 5:
        time.sleep(0.05)
    assert len(run_refs(repo)) == 5  # every run's first commit, made by the timer
    names = [t.name for t in threading.enumerate() if t.name.startswith("gitxp-")]
    assert names.count("gitxp-checkpointer") == 1 and len(names) == 1
    for run in runs:
        run.end()
    assert {gitxp.open().run(r.id).status for r in runs} == {"FINISHED"}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_forked_child_does_not_commit_its_parents_runs(repo: Path) -> None:
    from gitxp.store import pending
    from gitxp.tracking.checkpointer import checkpointer

    with gitxp.start_run(checkpoint_seconds=0.2) as run:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: what would a DataLoader worker inherit?
            inherited = len(checkpointer._heap) + pending.count()
            os.write(write, str(inherited).encode())
            os._exit(0)
        os.waitpid(pid, 0)
        assert os.read(read, 16) == b"0"
        os.close(read)
        os.close(write)
        assert len(checkpointer._heap) >= 1  # the parent's run is still timed
    assert gitxp.open().run(run.id).status == "FINISHED"


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads thread masks from /proc")
@pytest.mark.parametrize("name", ["gitxp-checkpointer", "gitxp-system-metrics"])
def test_background_threads_leave_signals_to_the_main_thread(repo: Path, name: str) -> None:
    import signal
    import threading

    with gitxp.start_run(system_metrics=True, system_metrics_seconds=60):
        thread = next(t for t in threading.enumerate() if t.name.startswith(name))
        deadline = time.time() + 5
        while True:  # the thread masks signals as its first act
            with open(f"/proc/self/task/{thread.native_id}/status") as f:
                blocked = int(next(x for x in f if x.startswith("SigBlk:")).split()[1], 16)
            if blocked or time.time() > deadline:
                break
            time.sleep(0.01)
    # Ctrl-C and `kill` must wake the main thread, not this one
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        assert blocked & (1 << (sig - 1)), sig.name
    assert not blocked & (1 << (signal.SIGSEGV - 1))
