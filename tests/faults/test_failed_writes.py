"""Failed writes never pass as success: a full disk, and bad bytes in what a run records.

The full-disk tests put the repository on a real 4 MiB tmpfs (root only)
and fill it with a real file; nothing in gitxp is mocked.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import gitxp
from tests.gitutil import GIT_ENV, fsck, git

ROOT = Path(__file__).resolve().parents[2]


class Disk:
    """A git repository on a small tmpfs, and a filler file that takes its free space."""

    def __init__(self, mount: Path) -> None:
        self.mount = mount
        self.repo = mount / "project"
        self.filler = mount / "filler"

    def fill(self, leave: int = 0) -> None:
        """Write the filler until the disk is full, then give back *leave* bytes."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            while True:
                try:
                    os.write(fd, b"\0" * 4096)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
        finally:
            os.close(fd)
        if leave:
            os.truncate(self.filler, max(0, self.filler.stat().st_size - leave))

    def free(self) -> None:
        self.filler.unlink()


def _mount_tmpfs(where: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("a full-disk test mounts a tmpfs, which needs root")
    where.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    mount = tmp_path / "disk"
    _mount_tmpfs(mount)
    try:
        d = Disk(mount)
        d.repo.mkdir()
        git(d.repo, "init", "-q", "-b", "main")
        (d.repo / "train.py").write_text("print('training')\n")
        git(d.repo, "add", ".")
        git(d.repo, "commit", "-q", "-m", "initial")
        yield d
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _tip(repo: Path, run_id: str) -> str:
    return git(repo, "rev-parse", f"refs/gitxp/runs/{run_id}").strip()


def test_points_logged_while_the_disk_is_full_are_written_once_space_returns(
    disk: Disk, caplog: pytest.LogCaptureFixture
) -> None:
    run = gitxp.start_run(repo=disk.repo, checkpoint_seconds=3600, buffer_points=20_000)
    for i in range(1000):
        run.log_metric("loss", float(i))
    run.checkpoint()
    good = _tip(disk.repo, run.id)

    disk.fill()
    # 49,000 more points: the buffer (20,000) triggers checkpoints, which fail
    for i in range(1000, 50_000):
        run.log_metric("loss", float(i) + 0.5)
    assert run.checkpoint() is False  # said, not raised: training goes on
    err = caplog.text  # a warning of gitxp's logger (on stderr when nothing is configured)
    assert "No space left on device" in err and "stay in memory" in err, err
    assert _tip(disk.repo, run.id) == good  # nothing half-written moved the ref
    partial = gitxp.open(disk.repo).run(run.id)
    assert partial.summary["loss"]["count"] == 1000  # no count of points not stored

    disk.free()
    for i in range(50_000, 50_010):
        run.log_metric("loss", float(i) + 0.5)
    assert run.checkpoint()  # the kept points go with the next checkpoint
    run.end()

    record = gitxp.open(disk.repo).run(run.id)
    assert record.status == "FINISHED"
    history = record.metric_history("loss")
    assert history["step"].tolist() == list(range(50_010))
    assert history["value"].iloc[999] == 999.0 and history["value"].iloc[1000] == 1000.5
    assert record.summary["loss"]["count"] == 50_010
    assert record.summary["loss"]["last"] == 50_009.5
    fsck(disk.repo)


def test_a_first_commit_that_fails_keeps_the_environment_for_the_retry(disk: Disk) -> None:
    # env.json is written with the run's first commit; a failed first commit
    # must leave it for the next try, not drop it with the rolled-back tree
    # room for one or two small objects: the commit fails part-way through
    for pages in (1, 2, 3):
        run = gitxp.start_run(repo=disk.repo, checkpoint_seconds=3600)
        disk.fill(leave=pages * 4096)
        run.log_metric("loss", 1.0)
        assert run.checkpoint() is False
        assert git(disk.repo, "for-each-ref", f"refs/gitxp/runs/{run.id}").strip() == ""
        disk.free()
        assert run.checkpoint()
        run.end()
        record = gitxp.open(disk.repo).run(run.id)
        assert record.status == "FINISHED"
        assert record.env, f"env.json was lost with the failed first commit ({pages} pages)"
    fsck(disk.repo)


def test_timed_checkpoints_retry_until_space_returns(disk: Disk) -> None:
    run = gitxp.start_run(repo=disk.repo, checkpoint_seconds=0.1)
    run.log_metric("acc", 0.1)
    run.checkpoint()
    disk.fill()
    for i in range(1, 20_000):
        run.log_metric("acc", i / 20_000)
    time.sleep(0.5)  # a few timed checkpoints fail meanwhile
    good = _tip(disk.repo, run.id)
    disk.free()
    deadline = time.monotonic() + 10
    while _tip(disk.repo, run.id) == good and time.monotonic() < deadline:
        time.sleep(0.05)
    record = gitxp.open(disk.repo).run(run.id)
    assert record.status == "RUNNING"
    assert record.summary["acc"]["count"] == 20_000  # written by the checkpointer thread
    assert len(record.metric_history("acc")) == 20_000
    run.end()


_SCRIPT = """
import errno, os, random, sys
import gitxp

def fill(path, leave):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while True:
            os.write(fd, b"\\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    os.close(fd)
    if leave:
        os.truncate(path, os.path.getsize(path) - leave)

try:
    with gitxp.start_run(repo={repo!r}, checkpoint_seconds=3600) as run:
        print(run.id, flush=True)
        for i in range(1000):
            run.log_metric("loss", float(i))
        run.checkpoint()
        fill({filler!r}, {leave})
        random.seed(1)  # values that do not compress: 470 KB of points
        for i in range(1000, 60_000):
            run.log_metric("loss", random.random())
except gitxp.GitxpError as exc:
    print(f"CAUGHT {{type(exc).__name__}}|{{exc.status}}|{{exc.unwritten}}|{{exc.spilled}}")
    print(exc, file=sys.stderr)
    sys.exit(3)
"""


def _record_until_full(disk: Disk, tmp_path: Path, leave: int) -> tuple[str, list[str], str]:
    spill_dir = tmp_path / f"spill-{uuid.uuid4().hex[:6]}"
    spill_dir.mkdir()
    script = _SCRIPT.format(repo=str(disk.repo), filler=str(disk.filler), leave=leave)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            **GIT_ENV,
            "PYTHONPATH": str(ROOT),
            "TMPDIR": str(spill_dir),
            "GITXP_START_DELAY": "0",
        },
    )
    lines = result.stdout.split("\n")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return lines[0].strip(), lines[1].split("|"), result.stderr


def _spilled_steps(path: str) -> list[int]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    assert set(table.column("key").to_pylist()) == {"loss"}
    return sorted(table.column("step").to_pylist())


def test_space_that_never_returns_leaves_the_last_checkpoint_and_a_clear_error(
    disk: Disk, tmp_path: Path
) -> None:
    run_id, caught, stderr = _record_until_full(disk, tmp_path, leave=0)
    assert caught[0] == "CAUGHT RunWriteError", caught
    assert caught[1] == "RUNNING"  # not even a FAILED end fitted
    assert caught[2] == "59000"
    assert "No space left on device" in stderr and "59,000 points" in stderr
    assert _spilled_steps(caught[3]) == list(range(1000, 60_000))

    record = gitxp.open(disk.repo).run(run_id)
    assert record.status == "CRASHED"  # its process is gone and it never ended
    assert record.metric_history("loss")["step"].tolist() == list(range(1000))
    assert record.summary["loss"]["count"] == 1000
    fsck(disk.repo)
    disk.free()


def test_a_final_write_that_fails_ends_the_run_failed_with_what_is_missing(
    disk: Disk, tmp_path: Path
) -> None:
    # room for a small end commit, not for 59,000 points
    run_id, caught, stderr = _record_until_full(disk, tmp_path, leave=64 * 1024)
    assert "59,000 points" in stderr and "as FAILED" in stderr
    assert caught[:3] == ["CAUGHT RunWriteError", "FAILED", "59000"], caught
    assert _spilled_steps(caught[3]) == list(range(1000, 60_000))

    record = gitxp.open(disk.repo).run(run_id)
    assert record.status == "FAILED"  # never FINISHED with points missing
    error = record.meta["error"]
    assert "could not write 59,000 points" in error and caught[3] in error
    assert record.summary["loss"]["count"] == 1000 == len(record.metric_history("loss"))
    fsck(disk.repo)
    disk.free()


# -- bad bytes: text that is not UTF-8 -------------------------------------------------


def _python(repo: Path, code: str, *args: str | bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT), "GITXP_START_DELAY": "0"},
    )


def test_a_command_line_argument_that_is_not_utf8_is_recorded_escaped(repo: Path) -> None:
    code = """
        import sys, gitxp
        assert sys.argv[1] == "--data=caf\\udce9"  # how Python decodes the byte 0xE9
        with gitxp.start_run() as run:
            run.log_metric("loss", 0.5)
        """
    result = _python(repo, code, b"--data=caf\xe9")
    assert result.returncode == 0, result.stderr
    runs = gitxp.open(repo).runs()
    assert len(runs) == 1  # the run was recorded, not lost to its argv
    record = gitxp.open(repo).run(runs["id"][0])
    assert record.status == "FINISHED"
    argv = record.meta["command"]["argv"]
    assert argv[-1] == "--data=caf\\xe9", argv  # the byte, escaped
    assert record.summary["loss"]["count"] == 1
    fsck(repo)


def test_gitxp_run_records_a_command_whose_arguments_are_not_utf8(repo: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gitxp", "run", "--", sys.executable, "-c", "pass", b"caf\xe9"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **GIT_ENV, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    record = gitxp.open(repo).run(gitxp.open(repo).runs()["id"][0])
    assert record.status == "FINISHED"
    assert record.meta["command"]["argv"][-1] == "caf\\xe9"
    fsck(repo)


def test_an_error_quoting_a_path_that_is_not_utf8_still_ends_the_run_failed(repo: Path) -> None:
    code = """
        import os, gitxp
        with gitxp.start_run() as run:
            run.log_metric("loss", 0.5)
            raise RuntimeError("cannot read " + os.fsdecode(b"/data/caf\\xe9.csv"))
        """
    result = _python(repo, code)
    assert result.returncode == 1 and "RuntimeError" in result.stderr, result.stderr
    record = gitxp.open(repo).run(gitxp.open(repo).runs()["id"][0])
    assert record.status == "FAILED"
    assert "caf\\xe9.csv" in record.meta["error"]
    assert record.summary["loss"]["count"] == 1
    fsck(repo)


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"params": {"data": "caf\udce9"}}, "param 'data'"),
        ({"params": {"cfg": {"path\udce9": 1}}}, "param 'cfg'"),
        ({"params": {"paths": ["ok", "\udce9"]}}, "param 'paths'"),
        ({"tags": {"host": "\udce9"}}, "tag 'host'"),
        ({"name": "run-\udce9"}, "name"),
        ({"experiment": "exp-\udce9"}, "experiment"),
        ({"notes": "see caf\udce9"}, "note"),
    ],
)
def test_text_that_is_not_utf8_is_refused_at_start_with_one_line(
    repo: Path, given: dict[str, object], named: str
) -> None:
    with pytest.raises(gitxp.InvalidValueError) as caught:
        gitxp.start_run(**given)  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith(f"{named}: contains U+DCE9"), message
    assert "U+DCE9" in message and "\n" not in message
    assert git(repo, "for-each-ref", "refs/gitxp/") == ""  # nothing half-recorded


def test_text_that_is_not_utf8_is_refused_during_a_run_which_still_records(repo: Path) -> None:
    with gitxp.start_run() as run:
        run.log_metric("loss", 0.5)
        for call in (
            lambda: run.log_param("data", "caf\udce9"),
            lambda: run.set_tag("host", "\udce9"),
            lambda: run.note("caf\udce9"),
            lambda: run.log_metric("loss\udce9", 1.0),
        ):
            with pytest.raises(gitxp.InvalidValueError, match=r"U\+DCE9|use letters"):
                call()
    record = gitxp.open(repo).run(run.id)
    assert record.status == "FINISHED" and record.summary["loss"]["count"] == 1
    assert record.params == {} and record.tags == {} and record.notes == ""
