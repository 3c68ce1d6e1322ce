"""Reading one metric's history (100 points) of one run among 2,000.

gitxp: `repo.run(run_id).metric_history("loss")` on an open repository
(resolving the run, reading its tree and decoding its Parquet part), a
DataFrame out. MLflow: `MlflowClient.get_metric_history(run_id, "loss")`,
a list of Metric objects out.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from .common import back_to_back, emit, med, result, timeit_cpu
from .fixtures import ensure, gitxp_path, mlflow_path, mlflow_uri


def main(quick: bool) -> None:
    n = 300 if quick else 2000
    ensure("gitxp", [n])
    ensure("mlflow", [n])
    import gitxp

    name = f"run-{n // 2:05d}"
    repo = gitxp.open(gitxp_path(n))
    run_id = next(r["id"] for r in repo.rows() if r["name"] == name)

    def g() -> None:
        frame = repo.run(run_id).metric_history("loss")
        assert len(frame) == 100

    g_wall, g_cpu = timeit_cpu(g, 30, warmup=3)
    gt = med(g_wall) * 1000
    g_warm = med(back_to_back(g, 50)) * 1000
    repo.close()

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    from mlflow import MlflowClient

    with open(os.path.join(mlflow_path(n), "experiments.json")) as f:
        exp_ids = list(json.load(f).values())
    client = MlflowClient(tracking_uri=mlflow_uri(mlflow_path(n)))
    mrun = client.search_runs(exp_ids, filter_string=f"attributes.run_name = '{name}'")[0]

    def m() -> None:
        points = client.get_metric_history(mrun.info.run_id, "loss")
        assert len(points) == 100

    m_wall, m_cpu = timeit_cpu(m, 30, warmup=3)
    mt = med(m_wall) * 1000
    m_warm = med(back_to_back(m, 50)) * 1000
    emit(
        [
            result(
                "history",
                "Reading",
                f"read one metric history (100 points, {n:,} runs)",
                "ms",
                gt,
                "MLflow get_metric_history",
                mt,
                ratio_min=20,
                cpu=med(g_cpu) * 1000,
                peer_cpu=med(m_cpu) * 1000,
                runs=n,
            ),
            result(
                "history.warm",
                "Reading",
                f"read one metric history (100 points, {n:,} runs), back to back",
                "ms",
                g_warm,
                "MLflow get_metric_history",
                m_warm,
                notes="no target; calls in a row with no full collection between them, "
                "as a loop over runs makes them (the row above collects garbage before "
                "each call, which leaves the CPU caches cold)",
                runs=n,
            ),
        ]
    )


if __name__ == "__main__":
    main("--quick" in sys.argv)
