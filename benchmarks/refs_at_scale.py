"""What git itself does with 10,000 to 1,000,000 run refs: a simulation for docs/performance.md.

Each size is a bare repository with one commit and N packed refs
`refs/gitxp/runs/<id>` (all on that commit: ref handling, not object
transfer, is what is measured). For each: the size of packed-refs, `git
for-each-ref` over the runs, `git ls-remote` of one branch with protocol v0
(the server advertises every ref) and v2 (`ref-prefix`: only what was asked
for), a fetch of one branch into a small clone (v2), and a push of one new
run ref into it (receive-pack has no v2: the full advertisement).

    python -m benchmarks.refs_at_scale 10000 100000 1000000
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

from .common import med, quiet_env


def _git(*args: str, cwd: str | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=quiet_env()
    ).stdout


def _timed(args: list[str], cwd: str | None = None, repeat: int = 3) -> float:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True, env=quiet_env())
        out.append(time.perf_counter() - t)
    return med(out)


def simulate(n: int, tmp: str) -> dict[str, float]:
    """The figures for one repository of *n* run refs."""
    bare = os.path.join(tmp, f"remote-{n}.git")
    _git("init", "-q", "--bare", bare)
    work = os.path.join(tmp, f"work-{n}")
    _git("init", "-q", "-b", "main", work)
    _git("commit", "-q", "--allow-empty", "-m", "one", cwd=work)
    _git("push", "-q", bare, "main", cwd=work)
    sha = _git("rev-parse", "HEAD", cwd=work).strip()
    # "sorted": git binary-searches the file, so main goes in its place too
    names = sorted([*(f"refs/gitxp/runs/{i:026x}" for i in range(n)), "refs/heads/main"])
    with open(os.path.join(bare, "packed-refs"), "w") as f:
        f.write("# pack-refs with: peeled fully-peeled sorted \n")
        f.writelines(f"{sha} {name}\n" for name in names)
    os.remove(os.path.join(bare, "refs", "heads", "main"))
    url = "file://" + bare
    row = {
        "refs": n,
        "packed_refs_mb": os.path.getsize(os.path.join(bare, "packed-refs")) / 1e6,
        "for_each_ref_s": _timed(["for-each-ref", "--format=%(objectname)", "refs/gitxp/runs/"],
                                 cwd=bare),
        "ls_remote_v0_s": _timed(["-c", "protocol.version=0", "ls-remote", url, "refs/heads/main"]),
        "ls_remote_v2_s": _timed(["-c", "protocol.version=2", "ls-remote", url, "refs/heads/main"]),
        "fetch_branch_v2_s": _timed(["-c", "protocol.version=2", "fetch", "-q", url, "main"],
                                    cwd=work),
    }  # fmt: skip
    pushes = []
    for i in range(3):
        t = time.perf_counter()
        _git("push", "-q", url, f"HEAD:refs/gitxp/runs/new{i:023x}", cwd=work)
        pushes.append(time.perf_counter() - t)
    row["push_one_ref_s"] = med(pushes)
    return row


def main(sizes: list[int]) -> None:
    tmp = tempfile.mkdtemp(prefix="gitxp-refs-")
    try:
        for n in sizes:
            print(simulate(n, tmp), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000])
