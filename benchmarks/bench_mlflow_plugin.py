"""MLflow's own client against the gitxp: plugin and against MLflow's sqlite store.

Same calls, same data, same process: `MlflowClient.log_metric` one point per
call into a run (the plugin buffers into an open gitxp run; sqlite writes a
row per call), `MlflowClient.search_runs` over every run of the 2,000-run
fixtures (the plugin reads gitxp's listing; both return MLflow `Run`
objects), and `MlflowClient.get_metric_history` of one run (100 points).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time

from .common import emit, med, result, timeit_cpu
from .fixtures import ensure, gitxp_path, init_project, mlflow_path, mlflow_uri


def _log_metric(client: object, run_id: str, n: int) -> float:
    """Seconds per `log_metric` call, the run's end (its final write) included."""
    t = time.perf_counter()
    for i in range(n):
        client.log_metric(run_id, "loss", 1.0 / (i + 1), step=i)  # type: ignore[attr-defined]
    client.set_terminated(run_id)  # type: ignore[attr-defined]
    return (time.perf_counter() - t) / n


def logging_rows(quick: bool) -> list[dict]:
    from mlflow import MlflowClient

    n_gitxp, n_sqlite = (5_000, 100) if quick else (20_000, 300)
    tmp = tempfile.mkdtemp(prefix="gitxp-bench-plugin-")
    try:
        repo = os.path.join(tmp, "gitxp")
        init_project(repo)
        plugin = MlflowClient(tracking_uri=f"gitxp:{repo}")
        plugin.set_terminated(plugin.create_run("0").info.run_id)  # environment captured once
        ours = _log_metric(plugin, plugin.create_run("0").info.run_id, n_gitxp)
        os.makedirs(os.path.join(tmp, "mlflow"))
        sqlite = MlflowClient(tracking_uri=mlflow_uri(os.path.join(tmp, "mlflow")))
        theirs = _log_metric(sqlite, sqlite.create_run("0").info.run_id, n_sqlite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [
        result(
            "plugin.log_metric",
            "MLflow plugin",
            "MLflow `log_metric`, one point per call, through the gitxp: plugin",
            "us",
            ours * 1e6,
            "MLflow log_metric (sqlite)",
            theirs * 1e6,
            ratio_min=50,
            notes=f"{n_gitxp:,} calls (plugin) and {n_sqlite:,} (sqlite), the run's end included",
        )
    ]


def reading_rows(quick: bool) -> list[dict]:
    from mlflow import MlflowClient

    n = 300 if quick else 2000
    ensure("gitxp", [n])
    ensure("mlflow", [n])
    plugin = MlflowClient(tracking_uri=f"gitxp:{gitxp_path(n)}")
    sqlite = MlflowClient(tracking_uri=mlflow_uri(mlflow_path(n)))
    sides = {"gitxp": plugin, "sqlite": sqlite}
    exp_ids = {k: [e.experiment_id for e in c.search_experiments()] for k, c in sides.items()}
    name = f"run-{n // 2:05d}"
    figures: dict[str, dict[str, float]] = {}
    for side, client in sides.items():
        found = client.search_runs(exp_ids[side], f"attributes.run_name = '{name}'")
        run_id = found[0].info.run_id

        store = client._tracking_client.store  # type: ignore[attr-defined]

        def search(client: object = client, ids: list[str] = exp_ids[side]) -> None:
            runs = client.search_runs(ids, max_results=n)  # type: ignore[attr-defined]
            assert len(runs) == n, len(runs)

        def search_cold(store: object = store, search: object = search) -> None:
            # the plugin remembers the Run objects it built, by commit id: forget them
            getattr(store, "_entities", {}).clear()
            search()  # type: ignore[operator]

        def history(client: object = client, run_id: str = run_id) -> None:
            points = client.get_metric_history(run_id, "loss")  # type: ignore[attr-defined]
            assert len(points) == 100

        figures[side] = {
            "search": med(timeit_cpu(search_cold, 5, warmup=1)[0]) * 1000,
            "search_again": med(timeit_cpu(search, 5, warmup=1)[0]) * 1000,
            "history": med(timeit_cpu(history, 30, warmup=3)[0]) * 1000,
        }
    return [
        result(
            "plugin.search_runs",
            "MLflow plugin",
            f"MLflow `search_runs` over {n:,} runs through the gitxp: plugin",
            "ms",
            figures["gitxp"]["search"],
            "MLflow search_runs (sqlite)",
            figures["sqlite"]["search"],
            ratio_min=10,
            notes="every run returned as MLflow Run objects, each built anew (the plugin's "
            "cache of Run objects by commit id emptied before each call); median of 5 calls",
            runs=n,
        ),
        result(
            "plugin.search_runs.again",
            "MLflow plugin",
            f"MLflow `search_runs` over {n:,} runs again (nothing changed) through the plugin",
            "ms",
            figures["gitxp"]["search_again"],
            "MLflow search_runs (sqlite)",
            figures["sqlite"]["search_again"],
            notes="no target; the plugin reuses the Run objects of unchanged commits",
            runs=n,
        ),
        result(
            "plugin.history",
            "MLflow plugin",
            f"MLflow `get_metric_history` (100 points, {n:,} runs) through the gitxp: plugin",
            "ms",
            figures["gitxp"]["history"],
            "MLflow get_metric_history (sqlite)",
            figures["sqlite"]["history"],
            ratio_min=10,
            notes="median of 30 calls",
            runs=n,
        ),
    ]


def main(quick: bool) -> None:
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    emit(logging_rows(quick) + reading_rows(quick))


if __name__ == "__main__":
    main("--quick" in sys.argv)
