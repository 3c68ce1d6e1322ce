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


# -- 2. a server whose pack lies: the tip is there, something below it is not ------------------
# git's upload-pack runs this instead of `git pack-objects` (uploadpack.packObjectsHook): it
# lists what the fetch needs as git would, then packs that list without the objects named in
# the file given as its first argument.
LYING_PACKER = """
import subprocess, sys
omit = set(open(sys.argv[1]).read().split())
revs, negate = [], False
for line in sys.stdin.buffer.read().splitlines():  # wants, then "--not" and the haves
    if line == b"--not":
        negate = True
    elif line and not line.startswith(b"--"):
        revs.append((b"^" if negate else b"") + line + b"\\n")
listed = subprocess.run(["git", "rev-list", "--objects", "--stdin"], input=b"".join(revs),
                        capture_output=True, check=True).stdout.splitlines()
kept = b"".join(line + b"\\n" for line in listed if line.split(b" ")[0].decode() not in omit)
sys.stdout.buffer.write(subprocess.run(["git", "pack-objects", "--stdout"], input=kept,
                                       capture_output=True, check=True).stdout)
"""


def lying_daemon_env(tmp_path: Path, omit: list[str]) -> dict[str, str]:
    """The environment of a `git daemon` whose packs leave out the objects *omit*."""
    script = tmp_path / "lying_packer.py"
    script.write_text(LYING_PACKER)
    omitted = tmp_path / "omit.txt"
    omitted.write_text("\n".join(omit) + "\n")
    return {  # command-line scope: the only scopes git reads this setting from
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "uploadpack.packObjectsHook",
        "GIT_CONFIG_VALUE_0": f"{sys.executable} {script} {omitted}",
    }


def fsck_problems(repo: Path) -> str:
    out = subprocess.run(
        ["git", "fsck", "--strict", "--no-progress", "--no-dangling"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    return "" if out.returncode == 0 else out.stdout + out.stderr


@pytest.fixture
def remote_with_history(tmp_path: Path) -> tuple[Path, list[str], str]:
    """A bare remote with three runs; the last has two commits (a later edit of its tags)."""
    from tests.faults.hostile import replace_file

    src = make_project(tmp_path / "src")
    ids = [record(src, f"run{i}") for i in range(3)]
    replace_file(src, ids[2], "notes.md", b"edited after the run\n")
    base = tmp_path / "srv"
    base.mkdir()
    git(base, "init", "-q", "--bare", "runs.git")
    git(src, "push", "-q", str(base / "runs.git"), "main", "refs/gitxp/*:refs/gitxp/*")
    return base, ids, ids[2]


@pytest.mark.slow
@pytest.mark.parametrize("what", ["older commit", "older tree", "blob of the tip"])
def test_a_pack_missing_part_of_a_runs_history_is_refused(
    tmp_path: Path, remote_with_history: tuple[Path, list[str], str], what: str
) -> None:
    from tests.servers import git_daemon

    base, ids, edited = remote_with_history
    bare = base / "runs.git"
    tip = git(bare, "rev-parse", RUNS + edited).strip()
    older = git(bare, "rev-parse", f"{tip}^").strip()
    omit = {
        "older commit": older,
        "older tree": git(bare, "rev-parse", f"{older}^{{tree}}").strip(),
        "blob of the tip": git(bare, "rev-parse", f"{tip}:notes.md").strip(),
    }[what]
    victim = make_project(tmp_path / "victim")
    with git_daemon(base, env=lying_daemon_env(tmp_path, [omit])) as url:
        pulled = gitxp_cli(victim, "pull", f"{url}/runs.git", "--format", "json")
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr
        assert fsck_problems(victim) == ""  # no ref reaches the hole
        assert f"skipped run {edited}" in pulled.stderr, pulled.stderr
        assert "its history there is incomplete" in pulled.stderr
        assert pulled.stderr.count("warning:") == 1, pulled.stderr
        assert sorted(run_refs(victim)) == sorted(RUNS + i for i in ids[:2])
        # the refused objects stay behind: pulling again must not take them for whole
        again = gitxp_cli(victim, "pull", f"{url}/runs.git", "--format", "json")
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"skipped run {edited}" in again.stderr, again.stderr
        assert sorted(run_refs(victim)) == sorted(RUNS + i for i in ids[:2])
        assert fsck_problems(victim) == ""
    assert listed(victim) == set(ids[:2])


# -- 3. bounded reads: a process joining a run whose run.json is a zlib bomb ---------------------
CAP = 1536 << 20


@pytest.mark.slow
def test_joining_a_run_whose_run_json_is_a_bomb_fails_in_one_line(tmp_path: Path) -> None:
    from tests.faults.hostile import replace_blob
    from tests.faults.test_read_bounds import _deflated_zeros, write_loose_bomb

    path = make_project(tmp_path / "project")
    run_id = record(path, "joined")
    sha, loose, _ = _deflated_zeros()  # a 2 GiB blob in a few MB of zlib
    write_loose_bomb(path, sha, loose)
    replace_blob(path, run_id, "run.json", sha)
    code = (
        f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({CAP}, {CAP}))\n"
        "import gitxp\n"
        "with gitxp.start_run() as run:\n"
        "    run.log_metric('x', 1.0)\n"
    )
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "GITXP_RUN_ID": run_id},
        timeout=120,
    )
    assert time.monotonic() - started < 30
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert "MemoryError" not in out.stderr, out.stderr[-2000:]
    assert last.startswith("gitxp.") and f"cannot join run {run_id}: run.json" in last, last
    assert "over the" in last and "GITXP_MAX_JSON_BYTES" in last, last
