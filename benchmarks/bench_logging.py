"""Amortised cost of logging one scalar point, the final write included.

gitxp `Run.log_metric` in a loop then `end()` (the commit), against
tensorboardX `add_scalar` then `close()`, MLflow `log_metric` (one call per
point, its default sqlite store) and MLflow `log_batch` (1,000 points per
call). Every side logs the same precomputed values at explicit steps.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time

from .common import cpu_now, discard, emit, result
from .fixtures import init_project, mlflow_uri


def per_point(total_seconds: float, n: int) -> float:
    return total_seconds / n * 1e6


def main(quick: bool) -> None:
    n_gitxp = 1_000_000 if not quick else 300_000
    n_tbx = 100_000 if not quick else 20_000
    n_mlflow = 300 if not quick else 60
    n_batch = 20_000 if not quick else 5_000
    values = [1.0 / (i + 1) for i in range(max(n_gitxp, n_tbx, n_batch))]
    tmp = tempfile.mkdtemp(prefix="gitxp-bench-log-")
    try:
        import gitxp

        repo = os.path.join(tmp, "gitxp")
        init_project(repo)
        # the first run of a process captures the environment; keep it out of this measure
        gitxp.start_run(repo=repo, snapshot=False).end()
        best: list[float] = []
        best_cpu: list[float] = []
        for _ in range(3):
            run = gitxp.start_run(repo=repo, snapshot=False)
            log = run.log_metric
            c = cpu_now()
            t = time.perf_counter()
            for i in range(n_gitxp):
                log("loss", values[i], i)
            run.end()
            best.append(time.perf_counter() - t)
            best_cpu.append(cpu_now() - c)
        g = per_point(min(best), n_gitxp)
        g_cpu = per_point(min(best_cpu), n_gitxp)

        from tensorboardX import SummaryWriter

        writer = SummaryWriter(os.path.join(tmp, "tbx"))
        add = writer.add_scalar
        c = cpu_now()
        t = time.perf_counter()
        for i in range(n_tbx):
            add("loss", values[i], i)
        writer.close()
        tbx = per_point(time.perf_counter() - t, n_tbx)
        tbx_cpu = per_point(cpu_now() - c, n_tbx)

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        import mlflow
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        os.makedirs(os.path.join(tmp, "mlflow"))
        uri = mlflow_uri(os.path.join(tmp, "mlflow"))
        mlflow.set_tracking_uri(uri)
        with mlflow.start_run():
            mlflow.log_metric("warmup", 0.0, step=0)
            c = cpu_now()
            t = time.perf_counter()
            for i in range(n_mlflow):
                mlflow.log_metric("loss", values[i], step=i)
        ml = per_point(time.perf_counter() - t, n_mlflow)
        ml_cpu = per_point(cpu_now() - c, n_mlflow)

        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name("Default")
        run = client.create_run(exp.experiment_id if exp else "0")
        now = int(time.time() * 1000)
        c = cpu_now()
        t = time.perf_counter()
        for start in range(0, n_batch, 1000):
            client.log_batch(
                run.info.run_id,
                metrics=[Metric("loss", values[i], now, i) for i in range(start, start + 1000)],
            )
        client.set_terminated(run.info.run_id)
        mlb = per_point(time.perf_counter() - t, n_batch)
        mlb_cpu = per_point(cpu_now() - c, n_batch)
    finally:
        discard(tmp)

    group = "Logging"
    title = "log one point, amortised (final write included)"
    emit(
        [
            result(
                "log_point.tensorboardx",
                group,
                title,
                "µs",
                g,
                "tensorboardX add_scalar",
                tbx,
                ratio_min=50,
                max_value=1.0,
                cpu=g_cpu,
                peer_cpu=tbx_cpu,
                points=n_gitxp,
                peer_points=n_tbx,
            ),
            result(
                "log_point.mlflow",
                group,
                title,
                "µs",
                g,
                "MLflow log_metric (sqlite)",
                ml,
                ratio_min=2000,
                cpu=g_cpu,
                peer_cpu=ml_cpu,
                points=n_gitxp,
                peer_points=n_mlflow,
            ),
            result(
                "log_point.mlflow_batch",
                group,
                title,
                "µs",
                g,
                "MLflow log_batch of 1,000 (sqlite)",
                mlb,
                cpu=g_cpu,
                peer_cpu=mlb_cpu,
                points=n_gitxp,
                peer_points=n_batch,
                notes="no target; MLflow's fastest path, for reference",
            ),
        ]
    )


if __name__ == "__main__":
    main("--quick" in sys.argv)
