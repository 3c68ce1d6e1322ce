"""Listing runs into a DataFrame, and how it scales from 100 to 10,000 runs.

gitxp: `gitxp.open(path).runs()` (the repository opened each time), warm
(the listing cache under .git/gitxp/ is present) and cold (the cache file
deleted first, so every run is read from its git objects, as after a fresh
clone). MLflow: `mlflow.search_runs` over the same runs in its sqlite
store, after one warm-up call. A filtered query is timed the same way.
Fixture runs: 5 params, 3 metrics x 100 steps, three experiments.
"""

from __future__ import annotations

import logging
import os
import sys

from .common import emit, med, result, timeit_cpu
from .fixtures import ensure, gitxp_path, mlflow_path, mlflow_uri

FILTER = "metrics.acc > 0.8 and params.optimizer = 'adam'"
FULL_SIZES = [100, 300, 1000, 2000, 5000, 10000]
QUICK_SIZES = [100, 300, 1000]


def measure_size(n: int) -> dict[str, float]:
    """Warm, cold and filtered listing of the n-run fixtures, gitxp then MLflow."""
    import json

    import mlflow

    import gitxp

    path = gitxp_path(n)
    from gitxp.store.listing_cache import CACHE_FILE

    cache = os.path.join(path, ".git", "gitxp", CACHE_FILE)
    reps = 5 if n <= 2000 else 3

    def warm() -> None:
        repo = gitxp.open(path)
        frame = repo.runs()
        repo.close()
        assert len(frame) == n, (len(frame), n)

    def cold() -> None:
        if os.path.exists(cache):
            os.unlink(cache)
        warm()

    def query() -> None:
        with gitxp.open(path) as repo:
            repo.runs(filter=FILTER)

    w, c = timeit_cpu(warm, reps)
    g_warm, g_warm_cpu = med(w), med(c)
    w, c = timeit_cpu(query, reps)
    g_query, g_query_cpu = med(w), med(c)
    # warmup=1: the objects in the page cache, as right after the clone this stands for
    w, c = timeit_cpu(cold, 1 if n >= 5000 else 3, warmup=1)
    g_cold, g_cold_cpu = med(w), med(c)
    warm()  # leave the fixture with its cache

    mpath = mlflow_path(n)
    with open(os.path.join(mpath, "experiments.json")) as f:
        exp_ids = list(json.load(f).values())
    mlflow.set_tracking_uri(mlflow_uri(mpath))

    def m_list() -> None:
        frame = mlflow.search_runs(experiment_ids=exp_ids, max_results=100_000)
        assert len(frame) == n, (len(frame), n)

    def m_query() -> None:
        mlflow.search_runs(experiment_ids=exp_ids, filter_string=FILTER, max_results=100_000)

    m_reps = 3 if n <= 2000 else 1
    w, c = timeit_cpu(m_list, m_reps)
    m_list_t, m_list_cpu = med(w), med(c)
    w, c = timeit_cpu(m_query, m_reps)
    m_query_t, m_query_cpu = med(w), med(c)
    return {
        "runs": n,
        "gitxp_warm_s": g_warm,
        "gitxp_cold_s": g_cold,
        "gitxp_query_s": g_query,
        "mlflow_s": m_list_t,
        "mlflow_query_s": m_query_t,
        "gitxp_warm_cpu_s": g_warm_cpu,
        "gitxp_cold_cpu_s": g_cold_cpu,
        "gitxp_query_cpu_s": g_query_cpu,
        "mlflow_cpu_s": m_list_cpu,
        "mlflow_query_cpu_s": m_query_cpu,
    }


def main(quick: bool, sizes: list[int] | None = None) -> None:
    sizes = sizes or (QUICK_SIZES if quick else FULL_SIZES)
    ensure("gitxp", sizes)
    ensure("mlflow", sizes)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    scaling = []
    for n in sizes:
        scaling.append(measure_size(n))
        print(scaling[-1], file=sys.stderr, flush=True)

    group = "Listing"
    out = []
    for row in scaling:
        n = row["runs"]
        target = 10 if n in (300, 2000) else None
        cap = 0.5 if n == 10000 else None
        if n in (300, 2000, 10000) or (quick and n == max(sizes)):
            out.append(
                result(
                    f"list.{n}.warm",
                    group,
                    f"list {n:,} runs into a DataFrame (warm)",
                    "s",
                    row["gitxp_warm_s"],
                    "MLflow search_runs",
                    row["mlflow_s"],
                    ratio_min=target,
                    max_value=cap,
                    cpu=row["gitxp_warm_cpu_s"],
                    peer_cpu=row["mlflow_cpu_s"],
                    runs=n,
                )
            )
            out.append(
                result(
                    f"list.{n}.cold",
                    group,
                    f"list {n:,} runs into a DataFrame (cold: no cache)",
                    "s",
                    row["gitxp_cold_s"],
                    "MLflow search_runs",
                    row["mlflow_s"],
                    runs=n,
                    cpu=row["gitxp_cold_cpu_s"],
                    peer_cpu=row["mlflow_cpu_s"],
                    notes="no target; first listing after a clone",
                )
            )
            out.append(
                result(
                    f"query.{n}",
                    group,
                    f"filtered query over {n:,} runs (warm)",
                    "s",
                    row["gitxp_query_s"],
                    "MLflow search_runs with filter_string",
                    row["mlflow_query_s"],
                    cpu=row["gitxp_query_cpu_s"],
                    peer_cpu=row["mlflow_query_cpu_s"],
                    runs=n,
                    filter=FILTER,
                )
            )
    out.append(
        result(
            "list.scaling",
            group,
            "listing cost from 100 to 10,000 runs",
            "x",
            None,
            notes="see the scaling table",
            table=scaling,
        )
    )
    emit(out)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main("--quick" in sys.argv, [int(a) for a in args] or None)
