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
from gitxp._errors import InvalidValueError
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
