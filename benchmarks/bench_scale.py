"""Runs at scale (100,000; 10,000 with --quick), and listing right after recording.

At scale, on the bulk fixture of benchmarks/scale_fixture.py (packed refs),
with the listing index `gitxp push` ships (`scale_fixture.ship_index`):
`repo.runs()` warm; the first listing in a fresh clone (no listing cache,
rows from the shipped index), and the same without the index (every run read
from its objects); `gitxp log -n 20`; a filtered query;
the peak memory (max RSS) of a process that opens the repository and lists.

Loose refs: 300 runs recorded a moment ago (their ref files loose, the runs
directory's mtime seconds old, as a user has them before any gc), listed warm;
the same 300 after `git pack-refs`, side by side in one process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

from .common import BIN, cmd_cpu, emit, med, quiet_env, result, timecmd, timeit_cpu
from .fixtures import ensure, gitxp_path
from .scale_fixture import build, ship_index

FILTER = "metrics.acc > 0.8 and params.optimizer = 'adam'"
MEMORY = (
    "import resource, sys, gitxp\n"
    "r = gitxp.open(sys.argv[1]); f = r.runs(); assert len(f) == int(sys.argv[2])\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)\n"
)


INDEX_REF = "refs/gitxp/index/v1"  # gitxp.format.listing_index.INDEX_REF


def _cache(path: str) -> str:
    from gitxp.store.listing_cache import CACHE_FILE

    return os.path.join(path, ".git", "gitxp", CACHE_FILE)


def at_scale(n: int) -> list[dict]:
    """The rows for the n-run bulk fixture."""
    import gitxp

    path = build(n)
    index = ship_index(n)

    def warm() -> None:
        with gitxp.open(path) as repo:
            assert len(repo.runs()) == n

    def cold() -> None:
        if os.path.exists(_cache(path)):
            os.unlink(_cache(path))
        warm()

    def query() -> None:
        with gitxp.open(path) as repo:
            repo.runs(filter=FILTER)

    def no_index() -> None:
        subprocess.run(["git", "update-ref", "-d", INDEX_REF], cwd=path, check=True)
        try:
            cold()
        finally:
            subprocess.run(["git", "update-ref", INDEX_REF, index], cwd=path, check=True)

    c_wall, c_cpu = timeit_cpu(cold, 3, warmup=0)
    n_wall, n_cpu = timeit_cpu(no_index, 1, warmup=0)
    w_wall, w_cpu = timeit_cpu(warm, 3)
    q_wall, q_cpu = timeit_cpu(query, 3)
    log = timecmd([os.path.join(BIN, "gitxp"), "log", "-n", "20"], 5, cwd=path)
    log_cpu = cmd_cpu(5)
    rss = int(
        subprocess.run(
            [sys.executable, "-c", MEMORY, path, str(n)],
            env=quiet_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[-1]
    )
    group = "Scale"
    big = n == 100_000
    return [
        result(f"scale.{n}.warm", group, f"`repo.runs()` with {n:,} runs (warm)", "s",
               med(w_wall), max_value=1.0 if big else None, cpu=med(w_cpu), runs=n),
        result(f"scale.{n}.cold", group, f"first listing of {n:,} runs in a clone (shipped index)",
               "s", med(c_wall), max_value=5.0 if big else None, cpu=med(c_cpu), runs=n),
        result(f"scale.{n}.cold_noindex", group,
               f"first listing of {n:,} runs in a clone without the index", "s", med(n_wall),
               cpu=med(n_cpu), runs=n),
        result(f"scale.{n}.log20", group, f"`gitxp log -n 20` with {n:,} runs", "s", med(log),
               max_value=0.3 if big else None, cpu=log_cpu, runs=n),
        result(f"scale.{n}.query", group, f"filtered query over {n:,} runs (warm)", "s",
               med(q_wall), max_value=0.5 if big else None, cpu=med(q_cpu), runs=n,
               filter=FILTER),
        result(f"scale.{n}.memory", group, f"peak memory of listing {n:,} runs", "MB",
               rss / 1e6, max_value=500 if big else None, runs=n),
    ]  # fmt: skip


def loose_refs() -> list[dict]:
    """300 runs with loose, freshly written refs against the same runs packed."""
    import gitxp

    ensure("gitxp", [300])
    tmp = tempfile.mkdtemp(prefix="gitxp-bench-loose-")
    loose, packed = os.path.join(tmp, "loose"), os.path.join(tmp, "packed")
    try:
        shutil.copytree(gitxp_path(300), loose, symlinks=True)
        shutil.copytree(gitxp_path(300), packed, symlinks=True)
        subprocess.run(["git", "pack-refs", "--all"], cwd=packed, check=True, env=quiet_env())
        runs_dir = os.path.join(loose, ".git", "refs", "gitxp", "runs")

        # a run recorded a moment ago, for the whole measure: the directory's mtime is
        # too recent to be trusted (see git/refs.py SETTLED_NS), so every listing scans it
        future = time.time() + 3600
        os.utime(runs_dir, (future, future))

        def listing(path: str) -> None:
            with gitxp.open(path) as repo:
                assert len(repo.runs()) == 300

        lw, lc = timeit_cpu(lambda: listing(loose), 15, warmup=2)
        pw, pc = timeit_cpu(lambda: listing(packed), 15, warmup=2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [
        result("list.300.loose", "Listing", "list 300 runs, loose refs written a moment ago",
               "s", med(lw), cpu=med(lc), best=min(lw), runs=300, packed_s=med(pw),
               packed_cpu_s=med(pc), packed_best_s=min(pw),
               notes=f"packed: {med(pw) * 1000:.1f} ms (best {min(pw) * 1000:.1f} ms)"),
    ]  # fmt: skip


def main(quick: bool) -> None:
    rows = loose_refs()
    rows += at_scale(10_000 if quick else 100_000)
    emit(rows)


if __name__ == "__main__":
    main("--quick" in sys.argv)
