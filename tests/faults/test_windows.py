"""The last crash and race windows of gitxp's write paths (issue 16 follow-ups).

Each test opens its window with real parts (a real `git daemon`, the real
`git` CLI, real processes killed with SIGKILL) and holds it open where it
can be observed from outside, instead of hoping a loop hits it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import gitxp
from gitxp.errors import InvalidValueError
from tests.gitutil import fsck, git
from tests.servers import git_daemon
from tests.workflows_util import GITXP, child_env


def _record(repo: Path, n: int, **kw: object) -> list[str]:
    os.environ["GITXP_START_DELAY"] = "0"
    ids = []
    try:
        for i in range(n):
            with gitxp.start_run(name=f"r{i}", params={"i": i}, snapshot=False, **kw) as run:
                run.log_metric("loss", 1.0 / (i + 1), step=0)
            ids.append(run.id)
    finally:
        del os.environ["GITXP_START_DELAY"]
    return ids


def _wait_for(what: str, check: Callable[[], object], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _empty_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("# clone\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path


def _run_refs(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/gitxp/runs/")
    return dict(line.split() for line in out.splitlines())


# -- a fetched pack is kept until its refs exist -----------------------------------------
def _pull_held_before_its_refs(
    repo: Path, tmp_path: Path, url: str
) -> tuple[Path, subprocess.Popen]:
    """Start `gitxp pull` into a new repository and hold it after its pack is in place.

    The test holds `packed-refs.lock` as git does (no owner line): gitxp's
    `create_refs` waits for it, so the pull stops between writing the pack
    and creating the refs that reach it, for as long as the test likes.
    """
    dest = _empty_repo(tmp_path / "dest")
    lock = dest / ".git" / "packed-refs.lock"
    lock.write_bytes(b"")
    proc = subprocess.Popen(
        [*GITXP, "pull", url],
        cwd=dest,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pack_dir = dest / ".git" / "objects" / "pack"
    _wait_for("the fetched pack", lambda: list(pack_dir.glob("*.idx")) or proc.poll() is not None)
    assert proc.poll() is None, proc.communicate()
    assert not _run_refs(dest), "the refs exist already: the window was not held"
    return dest, proc


@pytest.mark.slow
def test_git_repack_ad_while_a_pull_writes_its_refs_loses_no_object(
    repo: Path, tmp_path: Path
) -> None:
    ids = _record(repo, 3)
    with git_daemon(repo.parent) as prefix:
        dest, proc = _pull_held_before_its_refs(repo, tmp_path, f"{prefix}/{repo.name}")
        git(dest, "repack", "-a", "-d", "-q")  # drops unreachable packed objects at once
        (dest / ".git" / "packed-refs.lock").unlink()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    refs = _run_refs(dest)
    assert sorted(r.rsplit("/", 1)[-1] for r in refs) == sorted(ids)
    for ref, sha in refs.items():
        assert git(dest, "cat-file", "-t", sha, check=False).strip() == "commit", ref
    fsck(dest)
    assert not list((dest / ".git" / "objects" / "pack").glob("*.keep")), "keep not released"
    assert len(gitxp.open(dest).rows()) == 3


@pytest.mark.slow
def test_gitxp_gc_removes_the_keep_of_a_killed_pull_and_nothing_else(
    repo: Path, tmp_path: Path
) -> None:
    _record(repo, 2)
    with git_daemon(repo.parent) as prefix:
        dest, proc = _pull_held_before_its_refs(repo, tmp_path, f"{prefix}/{repo.name}")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    (dest / ".git" / "packed-refs.lock").unlink()
    pack_dir = dest / ".git" / "objects" / "pack"
    keeps = list(pack_dir.glob("*.keep"))
    assert len(keeps) == 1, keeps
    assert keeps[0].read_bytes().startswith(b"gitxp ")
    # a .keep git or a person made (no gitxp owner) is never gitxp's to remove
    theirs = pack_dir / "pack-0000000000000000000000000000000000000000.keep"
    theirs.write_text("fetch-pack 1 on elsewhere\n")
    result = subprocess.run(
        [*GITXP, "gc"], cwd=dest, env=child_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert keeps[0].name in result.stdout + result.stderr
    assert not keeps[0].exists()
    assert theirs.exists()
    assert not list((dest / ".git" / "objects").glob("gitxp-incoming-*"))
    fsck(dest)


# -- lone surrogates in log_text / log_dict ---------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda run: run.log_text("caf\udce9", "notes.txt"),
        lambda run: run.log_dict({"city": "caf\udce9"}, "config.json"),
        lambda run: run.log_dict({"caf\udce9": 1}, "config.yaml"),
    ],
    ids=["log_text", "log_dict-json", "log_dict-yaml-key"],
)
def test_lone_surrogate_in_text_artifacts_is_refused_and_the_run_goes_on(repo: Path, call) -> None:
    with gitxp.start_run(name="s", snapshot=False) as run:
        with pytest.raises(InvalidValueError) as caught:
            call(run)
        message = str(caught.value)
        assert "\n" not in message and "U+DCE9" in message, message
        run.log_text("fine", "ok.txt")  # the run continues
    record = gitxp.open(repo).run(run.id)
    assert record.status == "FINISHED"
    files = git(repo, "ls-tree", "-r", "--name-only", f"refs/gitxp/runs/{run.id}").split()
    assert not any(f.endswith(("notes.txt", "config.json", "config.yaml")) for f in files), files
    assert any(f.endswith("ok.txt") for f in files), files


# -- rm / restore killed between their two ref updates -----------------------------------
def _where(repo: Path, run_id: str) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/gitxp/")
    found = {}
    for line in out.splitlines():
        ref, sha = line.split()
        if ref.rsplit("/", 1)[-1] == run_id and ref.split("/")[2] in ("runs", "trash"):
            found[ref.split("/")[2]] = sha
    return found


def _gitxp(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GITXP, *args], cwd=repo, env=child_env(), capture_output=True, text=True
    )


def _interrupted_rm(repo: Path, run_id: str) -> tuple[str, str]:
    """The state a `gitxp rm` killed after writing the trash ref leaves, made with git."""
    gitxp.rm(run_id, repo=repo)
    trashed = git(repo, "rev-parse", f"refs/gitxp/trash/{run_id}").strip()
    tip = git(repo, "rev-parse", f"{trashed}^").strip()
    git(repo, "update-ref", f"refs/gitxp/runs/{run_id}", tip, "")
    return tip, trashed


def _interrupted_restore(repo: Path, run_id: str) -> tuple[str, str]:
    """The state a `gitxp rm --undo` killed after writing the run ref leaves, made with git."""
    gitxp.rm(run_id, repo=repo)
    from gitxp.ops.manage import restore

    restore(run_id, repo=repo)
    live = git(repo, "rev-parse", f"refs/gitxp/runs/{run_id}").strip()
    trashed = git(repo, "rev-parse", f"{live}^").strip()
    git(repo, "update-ref", f"refs/gitxp/trash/{run_id}", trashed, "")
    return live, trashed


@pytest.mark.slow
def test_an_interrupted_rm_or_restore_is_finished_by_the_next_command(repo: Path) -> None:
    ids = _record(repo, 6)
    # rm killed midway, then `rm --undo`: the run is back as it was, the trash entry gone
    tip, _ = _interrupted_rm(repo, ids[0])
    assert set(_where(repo, ids[0])) == {"runs", "trash"}
    result = _gitxp(repo, "rm", "--undo", ids[0])
    assert result.returncode == 0, result.stderr
    assert _where(repo, ids[0]) == {"runs": tip}
    # rm killed midway, then `rm` again: only the trash holds it
    _interrupted_rm(repo, ids[1])
    result = _gitxp(repo, "rm", ids[1])
    assert result.returncode == 0, result.stderr
    assert set(_where(repo, ids[1])) == {"trash"}
    # rm killed midway, then `gc`: the removal is finished
    _, trashed = _interrupted_rm(repo, ids[2])
    result = _gitxp(repo, "gc")
    assert result.returncode == 0, result.stderr
    assert _where(repo, ids[2]) == {"trash": trashed}
    # a moved ref (as an rm of an unreadable run does): same tip under both
    tip = git(repo, "rev-parse", f"refs/gitxp/runs/{ids[3]}").strip()
    git(repo, "update-ref", f"refs/gitxp/trash/{ids[3]}", tip, "")
    result = _gitxp(repo, "rm", "--undo", ids[3])
    assert result.returncode == 0, result.stderr
    assert _where(repo, ids[3]) == {"runs": tip}
    # restore killed midway, then `rm --undo` again, or gc: finished the restore
    live, _ = _interrupted_restore(repo, ids[4])
    result = _gitxp(repo, "rm", "--undo", ids[4])
    assert result.returncode == 0, result.stderr
    assert _where(repo, ids[4]) == {"runs": live}
    live, _ = _interrupted_restore(repo, ids[5])
    result = _gitxp(repo, "gc")
    assert result.returncode == 0, result.stderr
    assert _where(repo, ids[5]) == {"runs": live}
    assert {row["id"] for row in gitxp.open(repo).rows()} == {ids[0], ids[3], ids[4], ids[5]}
    fsck(repo)


@pytest.mark.slow
def test_sigkill_of_gitxp_rm_at_random_points_always_converges(repo: Path) -> None:
    import random

    from gitxp.ops.manage import restore

    ids = _record(repo, 24)
    rng = random.Random(1616)
    started = time.monotonic()
    calibrate = _gitxp(repo, "rm", ids.pop())
    assert calibrate.returncode == 0, calibrate.stderr
    span = 1.2 * (time.monotonic() - started)
    stats = {"kills": 0, "both": 0, "completed": 0, "stale_locks": 0}
    while ids and stats["kills"] < 20 and time.monotonic() - started < 15:
        run_id = ids.pop()
        proc = subprocess.Popen(
            [*GITXP, "rm", run_id],
            cwd=repo,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        began = time.monotonic()
        time.sleep(rng.uniform(0.6 * span, 1.1 * span))  # rm's ref updates come last
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            stats["kills"] += 1
        _out, err = proc.communicate()
        assert "Traceback" not in err, err
        where = _where(repo, run_id)
        assert where, f"run {run_id} was lost"
        if proc.returncode == 0:
            stats["completed"] += 1
            assert set(where) == {"trash"}, where
            span = min(span, time.monotonic() - began)  # it ran faster than calibrated
        if len(where) == 2:
            stats["both"] += 1
        # A kill in the instant between a ref's lock and its rename leaves `<ref>.lock`
        # with no owner to prove it stale (git's own locks are the same): the next
        # command on the run would wait, then name the file to delete. Do as it says.
        for lock in (repo / ".git" / "refs" / "gitxp").glob(f"*/{run_id}.lock"):
            lock.unlink()
            stats["stale_locks"] += 1
        # whatever state the kill left, the next command completes: undo half, redo half
        if rng.random() < 0.5:
            if "trash" in where:
                restore(run_id, repo=repo)
            assert set(_where(repo, run_id)) == {"runs"}
        else:
            if "runs" in where:
                gitxp.rm(run_id, repo=repo)
            assert set(_where(repo, run_id)) == {"trash"}
    fsck(repo)
    print(f"\nrm kill soak: {stats}")
    assert stats["kills"] >= 5, stats


# -- a packed-refs.lock left by a killed create_refs -------------------------------------
TAKE_LOCK_AND_DIE = """
import os, signal, sys
from dulwich.file import GitFile
from gitxp.git.locks import packed_refs_header

f = GitFile(os.path.join(sys.argv[1], "packed-refs"), "wb")  # as create_refs takes it
f.write(packed_refs_header())
f.flush()
print("locked", flush=True)
if sys.argv[2] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.read()  # hold it until told
"""


def _lock_holder(git_dir: Path, how: str) -> subprocess.Popen[str]:
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", TAKE_LOCK_AND_DIE, str(git_dir), how],
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    return proc


def test_a_pull_clears_the_packed_refs_lock_of_a_killed_gitxp(repo: Path, tmp_path: Path) -> None:
    ids = _record(repo, 3)
    dest = _empty_repo(tmp_path / "dest")
    holder = _lock_holder(dest / ".git", "die")
    assert holder.wait(timeout=30) == -signal.SIGKILL
    lock = dest / ".git" / "packed-refs.lock"
    assert lock.exists()
    started = time.monotonic()
    result = _gitxp(dest, "pull", str(repo))
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 15, "it waited for a lock nobody can release"
    notices = [line for line in result.stderr.splitlines() if "packed-refs.lock" in line]
    assert len(notices) == 1 and "removed the stale lock" in notices[0], result.stderr
    assert " old" in notices[0], notices
    assert sorted(r.rsplit("/", 1)[-1] for r in _run_refs(dest)) == sorted(ids)
    assert not lock.exists()
    fsck(dest)


@pytest.mark.slow
def test_a_packed_refs_lock_of_a_live_process_is_waited_for(repo: Path, tmp_path: Path) -> None:
    ids = _record(repo, 2)
    dest = _empty_repo(tmp_path / "dest")
    holder = _lock_holder(dest / ".git", "hold")
    pull = subprocess.Popen(
        [*GITXP, "pull", str(repo)],
        cwd=dest,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)  # the pull reached the lock (it retries for 20 s) and must not take it
    assert pull.poll() is None, pull.communicate()
    assert (dest / ".git" / "packed-refs.lock").exists()
    assert not _run_refs(dest)
    holder.kill()  # its owner is gone now: the waiting pull clears the lock and goes on
    holder.wait(timeout=30)
    _out, err = pull.communicate(timeout=60)
    assert pull.returncode == 0, err
    assert "removed the stale lock packed-refs.lock" in err, err
    assert sorted(r.rsplit("/", 1)[-1] for r in _run_refs(dest)) == sorted(ids)
    fsck(dest)


# -- `gitxp run`'s output readers do not outlive `launch` -------------------------------
LAUNCH_AND_EXIT = """
import atexit, threading

def threads_at_teardown():
    # registered before gitxp is imported: runs after every gitxp exit handler
    alive = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    print("ALIVE", alive, flush=True)

atexit.register(threads_at_teardown)

import pyarrow.parquet  # noqa: F401
from gitxp.ops.launch import launch

# CMD exits at once; its background child keeps stdout and stderr open for 30 s
result = launch(["sh", "-c", "sleep 30 & echo started"], name="bg", stream=False)
print("STATUS", result.status, flush=True)
"""


@pytest.mark.slow
def test_no_output_reader_outlives_launch(repo: Path) -> None:
    import sys

    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", LAUNCH_AND_EXIT],
        cwd=repo,
        env=child_env(GITXP_START_DELAY="0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert "STATUS FINISHED" in result.stdout, result.stdout + result.stderr
    assert "ALIVE []" in result.stdout, result.stdout + result.stderr
    assert time.monotonic() - started < 25, "the process waited for CMD's background child"
    (row,) = gitxp.open(repo).rows()
    output = git(repo, "show", f"refs/gitxp/runs/{row['id']}:output.log")
    assert "started" in output
