"""A work-tree snapshot of a 10,000-file project against real git doing the same.

git's equivalent of what gitxp records for a run's code: copy the index to a
temporary file, then `GIT_INDEX_FILE=<tmp> git add -A && git write-tree`
(unchanged files are not re-hashed, untracked files are added, the real
index is untouched). gitxp: `take_snapshot` in the recording process.
Two states: clean (nothing changed since the commit) and dirty (100 files
modified, 100 untracked files added).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

from .common import CACHE, cmd_cpu, discard, emit, med, quiet_env, result, timecmd, timeit_cpu

FILES = 10_000


def project(path: str) -> None:
    """A committed project of FILES files in 100 directories, older than its index."""
    if os.path.exists(os.path.join(path, ".bench-complete")):
        return
    shutil.rmtree(path, ignore_errors=True)
    env = quiet_env()
    subprocess.run(["git", "init", "-q", "-b", "main", path], check=True, env=env)
    for d in range(100):
        os.makedirs(os.path.join(path, f"pkg{d:02d}"))
        for f in range(FILES // 100):
            with open(os.path.join(path, f"pkg{d:02d}", f"mod{f:02d}.py"), "w") as fh:
                fh.write(f"# module {d}.{f}\n" + "x = 1\n" * (10 + (d * f) % 200))
    with open(os.path.join(path, ".gitignore"), "w") as fh:
        fh.write(".bench-complete\n")
    time.sleep(1.1)  # files older than the index: no racily-clean entries
    subprocess.run(["git", "add", "-A"], cwd=path, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "project"], cwd=path, check=True, env=env)
    open(os.path.join(path, ".bench-complete"), "w").close()


def dirty(src: str, dest: str) -> None:
    discard(dest)
    subprocess.run(["cp", "-a", src, dest], check=True)
    time.sleep(1.1)
    for i in range(100):
        with open(os.path.join(dest, f"pkg{i:02d}", "mod00.py"), "a") as fh:
            fh.write("y = 2\n")
        with open(os.path.join(dest, f"pkg{i:02d}", "new.py"), "w") as fh:
            fh.write(f"z = {i}\n")
    time.sleep(1.1)


def main(quick: bool) -> None:
    from gitxp.git.repository import GitRepo
    from gitxp.git.snapshot import take_snapshot

    clean = os.path.join(CACHE, "snapshot-project")
    project(clean)
    tmp = tempfile.mkdtemp(prefix="gitxp-bench-snap-")
    out = []
    try:
        dirty_path = os.path.join(tmp, "dirty")
        dirty(clean, dirty_path)
        for label, path in (("clean", clean), ("dirty", dirty_path)):
            repo = GitRepo(path)
            snap = take_snapshot(repo)
            assert snap.dirty == (label == "dirty"), snap
            g_wall, g_cpu = timeit_cpu(lambda repo=repo: take_snapshot(repo), 5 if quick else 9)
            g = med(g_wall)
            repo.close()
            index_copy = os.path.join(tmp, "index")
            env = quiet_env()
            env["GIT_INDEX_FILE"] = index_copy
            script = f"cp {path}/.git/index {index_copy} && git add -A && git write-tree"
            gt = med(timecmd(["sh", "-c", script], 5 if quick else 9, cwd=path, env=env))
            gt_cpu = cmd_cpu(5 if quick else 9)
            out.append(
                result(
                    f"snapshot.{label}",
                    "Snapshot",
                    f"work-tree snapshot, {FILES:,} files ({label})",
                    "s",
                    g,
                    "git add -A + write-tree (temporary index)",
                    gt,
                    ratio_min=1 / 3,
                    cpu=med(g_cpu),
                    peer_cpu=gt_cpu,
                    files=FILES,
                    notes="target: within 3x of git's time (ratio >= 0.33)",
                )
            )
    finally:
        discard(tmp)
    emit(out)


if __name__ == "__main__":
    main("--quick" in sys.argv)
