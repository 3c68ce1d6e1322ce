"""Runs at scale (100,000; 10,000 with --quick), and listing right after recording.

At scale, on the bulk fixture of benchmarks/scale_fixture.py (packed refs),
with the listing index `gitxp push` ships (`scale_fixture.ship_index`):
`repo.runs()` warm; the first listing in a fresh clone (no listing cache,
rows from the shipped index), and the same without the index (every run read
from its objects); `gitxp log -n 20`; a filtered query;
the peak memory (max RSS) of a process that opens the repository and lists.

MLflow, side by side in the same invocation, on the same runs in its sqlite
store (benchmarks/mlflow_scale_fixture.py): in one fresh process,
`mlflow.search_runs` of every run (its first call, then the second: warm),
the same filter, and the newest 20 (`max_results=20, order_by=["start_time
DESC"]`); that process's peak RSS right after its first listing; then the
newest 20 as a command costs it, a fresh `python -c` process each time
(`mlflow runs list` prints every run of one experiment, so it is not
`gitxp log -n 20`'s peer). The MLflow process runs before the gitxp block
and the commands after it.

Loose refs: 300 runs recorded a moment ago (their ref files loose, the runs
directory's mtime seconds old, as a user has them before any gc), listed warm;
the same 300 after `git pack-refs`, side by side in one process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from .common import BIN, ROOT, cmd_cpu, emit, med, quiet_env, result, timecmd, timeit_cpu
from .fixtures import ensure, gitxp_path, mlflow_uri
from .mlflow_scale_fixture import ensure as ensure_mlflow
from .scale_fixture import build, ship_index

FILTER = "metrics.acc > 0.8 and params.optimizer = 'adam'"
# The peak is read from /proc/self/status (VmHWM: this process image's high-water mark),
# not getrusage's ru_maxrss: Linux carries the parent's peak into a child started by
# vfork + exec, as Python's subprocess starts it, so ru_maxrss read in the child reported
# this benchmark's own peak (790 MB after its cold listings) instead of the listing's.
MEMORY = (
    "import resource, sys, gitxp\n"
    "r = gitxp.open(sys.argv[1]); f = r.runs(); assert len(f) == int(sys.argv[2])\n"
    "try:\n"
    "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
    "    print(int(hwm.split()[1]) * 1024)\n"
    "except (OSError, IndexError):\n"
    "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)\n"
)

NEWEST = (
    "import sys, logging\n"
    "logging.getLogger('mlflow').setLevel(logging.ERROR)\n"
    "import mlflow\n"
    "mlflow.set_tracking_uri(sys.argv[1])\n"
    "f = mlflow.search_runs(experiment_ids=sys.argv[2].split(','), max_results=20,\n"
    "                       order_by=['start_time DESC'])\n"
    "assert len(f) == 20\n"
    "print(f[['run_id', 'tags.mlflow.runName', 'status', 'start_time']].to_string())\n"
)
MARKER = "@@MLFLOW@@"


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


def _peak_rss() -> int:
    """This process image's peak RSS in bytes (VmHWM; see MEMORY for why not ru_maxrss)."""
    import resource

    try:
        with open("/proc/self/status") as f:
            hwm = next(line for line in f if line.startswith("VmHWM:"))
        return int(hwm.split()[1]) * 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _mlflow_listing(path: str, n: int) -> dict[str, Any]:
    """MLflow's side, run in a fresh process: its listing, filter and newest 20, with
    wall-clock and CPU seconds, and the process's peak RSS after its first listing."""
    import gc
    import logging

    from .common import cpu_now

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    import mlflow

    mlflow.set_tracking_uri(mlflow_uri(path))
    with open(os.path.join(path, "experiments.json")) as f:
        exp_ids = list(json.load(f).values())

    def once(call: Any) -> tuple[float, float]:
        gc.collect()
        c, t = cpu_now(), time.perf_counter()
        call()
        return time.perf_counter() - t, cpu_now() - c

    def listing() -> None:
        assert len(mlflow.search_runs(experiment_ids=exp_ids, max_results=n)) == n

    def query() -> None:
        mlflow.search_runs(experiment_ids=exp_ids, filter_string=FILTER, max_results=n)

    def newest() -> None:
        frame = mlflow.search_runs(
            experiment_ids=exp_ids, max_results=20, order_by=["start_time DESC"]
        )
        assert len(frame) == 20

    out: dict[str, Any] = {}
    out["first"], out["first_cpu"] = once(listing)
    out["rss"] = _peak_rss()
    out["warm"], out["warm_cpu"] = once(listing)
    query()
    q = [once(query) for _ in range(2)]
    out["query"], out["query_cpu"] = med([w for w, _ in q]), med([c for _, c in q])
    newest()
    k = [once(newest) for _ in range(3)]
    out["newest"], out["newest_cpu"] = med([w for w, _ in k]), med([c for _, c in k])
    out["exp_ids"] = exp_ids
    return out


def _mlflow_in_fresh_process(path: str, n: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_scale", "--mlflow", path, str(n)],
        cwd=ROOT,
        env=quiet_env(),
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.rsplit(MARKER, 1)[1].strip())  # type: ignore[no-any-return]


def _with_peer(
    row: dict[str, Any], peer: str, value: float, peer_cpu: float | None = None, note: str = ""
) -> dict[str, Any]:
    """*row* (a gitxp figure) with MLflow's figure for the same work beside it."""
    ratio = value / row["gitxp"] if row["gitxp"] else None
    notes = "; ".join(x for x in (row.get("notes"), note) if x)
    cpu = row.get("cpu")
    return {
        **row,
        "peer": peer,
        "peer_value": value,
        "ratio": ratio,
        "peer_cpu": peer_cpu,
        "cpu_ratio": (peer_cpu / cpu) if cpu and peer_cpu else None,
        "notes": notes,
    }


def mlflow_side(n: int) -> dict[str, Any]:
    """MLflow's figures on the n-run twin (built if missing), from one fresh process."""
    return _mlflow_in_fresh_process(ensure_mlflow(n), n)


def mlflow_newest_cmd(n: int, exp_ids: list[str]) -> tuple[list[float], float]:
    """The newest 20 runs printed by a fresh MLflow process (the cost of a command)."""
    from .mlflow_scale_fixture import mlflow_scale_path

    argv = [sys.executable, "-c", NEWEST, mlflow_uri(mlflow_scale_path(n)), ",".join(exp_ids)]
    wall = timecmd(argv, 3)
    return wall, cmd_cpu(3)


def side_by_side(
    rows: list[dict[str, Any]], n: int, m: dict[str, Any], cmd: list[float], cmd_cpu_s: float
) -> list[dict[str, Any]]:
    """The gitxp rows at scale with MLflow's figures beside them."""
    peers = {
        f"scale.{n}.warm": ("MLflow search_runs, second call in the process", m["warm"],
                            m["warm_cpu"], ""),
        f"scale.{n}.cold": ("MLflow search_runs, first call in a fresh process", m["first"],
                            m["first_cpu"], "MLflow has no cache to rebuild: its first call"),
        f"scale.{n}.log20": ("MLflow search_runs(max_results=20, order_by start_time DESC), "
                             "a fresh `python -c` process", med(cmd), cmd_cpu_s,
                             f"MLflow's call alone, in a warm process: {m['newest'] * 1000:.0f} ms"),
        f"scale.{n}.query": ("MLflow search_runs with filter_string", m["query"],
                             m["query_cpu"], ""),
        f"scale.{n}.memory": ("MLflow: a process listing every run (search_runs)",
                              m["rss"] / 1e6, None, ""),
    }  # fmt: skip
    out = []
    for row in rows:
        if row["id"] in peers:
            peer, value, cpu, note = peers[row["id"]]
            row = _with_peer(row, peer, value, cpu, note)
        out.append(row)
    return out


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
    n = 10_000 if quick else 100_000
    rows = loose_refs()
    build(n)
    m = mlflow_side(n)  # MLflow's process, then gitxp's block, then MLflow's commands
    scale = at_scale(n)
    cmd, cmd_cpu_s = mlflow_newest_cmd(n, m["exp_ids"])
    rows += side_by_side(scale, n, m, cmd, cmd_cpu_s)
    emit(rows)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--mlflow"]:
        print(MARKER + json.dumps(_mlflow_listing(sys.argv[2], int(sys.argv[3]))))
    else:
        main("--quick" in sys.argv)
