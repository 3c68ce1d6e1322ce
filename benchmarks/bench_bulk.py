"""Reading one metric of many runs at once: every `loss` point of 2,000 runs x 300 steps.

gitxp: `gitxp.open(path).metrics(keys="loss")`, a long DataFrame out (run_id,
key, step, timestamp, value), the repository opened and its runs listed
inside the timing. Warm: the listing cache and the parts cache
(`.git/gitxp/parts-v1.json`) in place, as after any earlier read; cold: the
parts cache deleted before each call, so every run's commit and trees are
read from git too.

MLflow (sqlite store), the same work into the same DataFrame: a loop of
`MlflowClient.get_metric_history(run_id, "loss")` over the runs, and the
store's `get_metric_history_bulk_interval(run_ids, "loss", max_results=300)`
(its bulk read behind the UI's charts; all runs in one call, which its REST
API would split into calls of 100). MLflow is handed its run ids: the
listing it would need first is not timed.

Also timed, without a peer: `Repo.dataset()` the first time (every part
copied into `.git/gitxp/metrics-v1/`) and again with nothing new, and a
query over it (mean loss per run) by DuckDB, or by pyarrow where DuckDB is
not installed.

    python -m benchmarks.bench_bulk [--quick] [--runs N]
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from typing import Any

from .common import discard, emit, med, result, timeit_cpu
from .fixtures import ensure, gitxp_path, mlflow_path, mlflow_uri

STEPS = 300


def _frame(rows: list[tuple[str, str, int, int, float]]) -> object:
    import pandas as pd

    return pd.DataFrame(rows, columns=["run_id", "key", "step", "timestamp", "value"])


def _gitxp(n: int) -> dict[str, float]:
    import gitxp

    path = gitxp_path(n, STEPS)
    parts = os.path.join(path, ".git", "gitxp", "parts-v1.json")

    def read() -> None:
        with gitxp.open(path) as repo:
            frame = repo.metrics(keys="loss")
        assert len(frame) == n * STEPS, len(frame)

    def cold() -> None:
        if os.path.exists(parts):
            os.unlink(parts)
        read()

    warm_wall, warm_cpu = timeit_cpu(read, 5, warmup=1)
    cold_wall, cold_cpu = timeit_cpu(cold, 3, warmup=1)
    read()  # leave the parts cache in place for the next run
    return {
        "warm": med(warm_wall),
        "warm_cpu": med(warm_cpu),
        "cold": med(cold_wall),
        "cold_cpu": med(cold_cpu),
    }


def _dataset(n: int) -> dict[str, Any]:
    """Repo.dataset() in a hard-linked copy of the fixture (its cache starts empty)."""
    import gitxp

    work = tempfile.mkdtemp(prefix="bulk-dataset-")
    copy = os.path.join(work, "repo")
    subprocess.run(["cp", "-al", gitxp_path(n, STEPS), copy], check=True)
    try:
        with gitxp.open(copy) as repo:
            first, first_cpu = timeit_cpu(repo.dataset, 1, warmup=0)
            again, again_cpu = timeit_cpu(repo.dataset, 5, warmup=1)
            query, engine = _mean_loss(repo.dataset(), n)
            ask, ask_cpu = timeit_cpu(query, 5, warmup=1)
        size = sum(
            os.path.getsize(os.path.join(d, f))
            for d, _, files in os.walk(os.path.join(copy, ".git", "gitxp", "metrics-v1"))
            for f in files
        )
    finally:
        discard(work)
    return {
        "first": first[0],
        "first_cpu": first_cpu[0],
        "again": med(again),
        "again_cpu": med(again_cpu),
        "query": med(ask),
        "query_cpu": med(ask_cpu),
        "bytes": size,
        "engine": engine,
    }


def _mean_loss(dataset: object, n: int) -> tuple[object, str]:
    """A query of the mean loss of each run over *dataset*: DuckDB's where it is
    installed, pyarrow's own otherwise."""
    try:
        import duckdb
    except ImportError:
        import pyarrow.dataset as ds

        def with_pyarrow() -> None:
            table = dataset.to_table(filter=ds.field("key") == "loss")  # type: ignore[attr-defined]
            assert table.group_by("run_id").aggregate([("value", "mean")]).num_rows == n

        return with_pyarrow, "pyarrow"
    con = duckdb.connect()
    con.register("points", dataset)

    def with_duckdb() -> None:
        rows = con.sql(
            "select run_id, avg(value) from points where key = 'loss' group by run_id"
        ).fetchall()
        assert len(rows) == n

    return with_duckdb, "DuckDB"


def _mlflow(n: int) -> dict[str, float]:
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    from mlflow import MlflowClient

    path = mlflow_path(n, STEPS)
    with open(os.path.join(path, "experiments.json")) as f:
        exp_ids = list(json.load(f).values())
    client = MlflowClient(tracking_uri=mlflow_uri(path))
    run_ids = [r.info.run_id for r in client.search_runs(exp_ids, max_results=50_000)]
    assert len(run_ids) == n, len(run_ids)
    store = client._tracking_client.store

    def loop() -> None:
        rows = [
            (run_id, m.key, m.step, m.timestamp, m.value)
            for run_id in run_ids
            for m in client.get_metric_history(run_id, "loss")
        ]
        assert len(_frame(rows)) == n * STEPS  # type: ignore[arg-type]

    def bulk() -> None:
        found = store.get_metric_history_bulk_interval(
            run_ids, "loss", max_results=STEPS, start_step=None, end_step=None
        )
        rows = [(m.run_id, m.key, m.step, m.timestamp, m.value) for m in found]
        assert len(_frame(rows)) == n * STEPS  # type: ignore[arg-type]

    loop_wall, loop_cpu = timeit_cpu(loop, 1, warmup=0)
    bulk_wall, bulk_cpu = timeit_cpu(bulk, 2, warmup=0)
    return {
        "loop": loop_wall[0],
        "loop_cpu": loop_cpu[0],
        "bulk": med(bulk_wall),
        "bulk_cpu": med(bulk_cpu),
    }


def main(quick: bool, runs: int | None) -> None:
    n = runs or (300 if quick else 2000)
    ensure("gitxp", [n], STEPS)
    ensure("mlflow", [n], STEPS)
    g = _gitxp(n)
    m = _mlflow(n)
    d = _dataset(n)
    what = f"all `loss` points of {n:,} runs x {STEPS} steps into one DataFrame"
    points = n * STEPS
    emit(
        [
            result(
                "bulk.loop",
                "Reading",
                what,
                "s",
                g["warm"],
                "MLflow get_metric_history, run by run",
                m["loop"],
                ratio_min=50,
                cpu=g["warm_cpu"],
                peer_cpu=m["loop_cpu"],
                notes=f"{points:,} points; gitxp `Repo.metrics(keys='loss')`, listing included",
                runs=n,
                steps=STEPS,
            ),
            result(
                "bulk.interval",
                "Reading",
                what,
                "s",
                g["warm"],
                "MLflow get_metric_history_bulk_interval",
                m["bulk"],
                ratio_min=10,
                cpu=g["warm_cpu"],
                peer_cpu=m["bulk_cpu"],
                notes="all run ids in one call of the sqlite store",
                runs=n,
            ),
            result(
                "bulk.cold",
                "Reading",
                f"{what}, parts cache deleted",
                "s",
                g["cold"],
                "MLflow get_metric_history_bulk_interval",
                m["bulk"],
                cpu=g["cold_cpu"],
                peer_cpu=m["bulk_cpu"],
                notes="no target; every run's commit and trees read from git as well, "
                "as the first bulk read after a clone does",
                runs=n,
            ),
            result(
                "dataset.first",
                "Reading",
                f"`Repo.dataset()` of {n:,} runs, first call (every part copied)",
                "s",
                d["first"],
                cpu=d["first_cpu"],
                notes=f"no peer, no target; the copy takes {d['bytes'] / (points * 3):.1f} "
                "bytes a point on disk (3 metrics a run)",
                bytes=d["bytes"],
            ),
            result(
                "dataset.again",
                "Reading",
                f"`Repo.dataset()` of {n:,} runs again, nothing new",
                "s",
                d["again"],
                cpu=d["again_cpu"],
                notes="no peer, no target",
            ),
            result(
                "dataset.duckdb",
                "Reading",
                f"{d['engine']} over `Repo.dataset()`: mean loss of each of {n:,} runs",
                "s",
                d["query"],
                cpu=d["query_cpu"],
                notes="no peer, no target; the files are read in place",
            ),
        ]
    )


if __name__ == "__main__":
    count = None
    if "--runs" in sys.argv:
        count = int(sys.argv[sys.argv.index("--runs") + 1])
    main("--quick" in sys.argv, count)
