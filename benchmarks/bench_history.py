"""Reading one metric's history (100 points) of one run among 2,000.

gitxp: `repo.run(run_id).metric_history("loss")` on an open repository
(resolving the run, reading its tree and decoding its Parquet part), a
DataFrame out. MLflow: `MlflowClient.get_metric_history(run_id, "loss")`,
a list of Metric objects out.

Each side is measured in several fresh processes, one after the other, and
the median of their medians is reported. A call made after a full garbage
collection (the cold row) costs 0.5-0.95 ms for gitxp in one process and
the next, with the same code, as each process's memory lands differently
in the caches; one process alone would report whichever it drew.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

from .common import ROOT, back_to_back, emit, med, quiet_env, result, timeit_cpu
from .fixtures import ensure, gitxp_path, mlflow_path, mlflow_uri

PROCESSES = 5
MARKER = "@@HISTORY@@"


def _gitxp(n: int, name: str) -> dict[str, float]:
    import gitxp

    repo = gitxp.open(gitxp_path(n))
    run_id = next(r["id"] for r in repo.rows() if r["name"] == name)

    def g() -> None:
        frame = repo.run(run_id).metric_history("loss")
        assert len(frame) == 100

    wall, cpu = timeit_cpu(g, 30, warmup=3)
    warm = med(back_to_back(g, 50))
    repo.close()
    return {"cold": med(wall), "cpu": med(cpu), "warm": warm}


def _mlflow(n: int, name: str) -> dict[str, float]:
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    from mlflow import MlflowClient

    with open(os.path.join(mlflow_path(n), "experiments.json")) as f:
        exp_ids = list(json.load(f).values())
    client = MlflowClient(tracking_uri=mlflow_uri(mlflow_path(n)))
    mrun = client.search_runs(exp_ids, filter_string=f"attributes.run_name = '{name}'")[0]

    def m() -> None:
        points = client.get_metric_history(mrun.info.run_id, "loss")
        assert len(points) == 100

    wall, cpu = timeit_cpu(m, 30, warmup=3)
    warm = med(back_to_back(m, 50))
    return {"cold": med(wall), "cpu": med(cpu), "warm": warm}


def _in_fresh_process(side: str, n: int, name: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_history", "--one", side, str(n), name],
        cwd=ROOT,
        env=quiet_env(),
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.rsplit(MARKER, 1)[1].strip())  # type: ignore[no-any-return]


def main(quick: bool) -> None:
    n = 300 if quick else 2000
    ensure("gitxp", [n])
    ensure("mlflow", [n])
    name = f"run-{n // 2:05d}"
    runs: dict[str, list[dict[str, float]]] = {"gitxp": [], "mlflow": []}
    for _ in range(PROCESSES):  # the sides take turns, so both see the machine as it is
        for side in runs:
            runs[side].append(_in_fresh_process(side, n, name))

    def figure(side: str, key: str) -> float:
        return med([r[key] for r in runs[side]]) * 1000

    cold = sorted(r["cold"] * 1000 for r in runs["gitxp"])
    emit(
        [
            result(
                "history",
                "Reading",
                f"read one metric history (100 points, {n:,} runs)",
                "ms",
                figure("gitxp", "cold"),
                "MLflow get_metric_history",
                figure("mlflow", "cold"),
                ratio_min=20,
                cpu=figure("gitxp", "cpu"),
                peer_cpu=figure("mlflow", "cpu"),
                notes=f"median of {PROCESSES} fresh processes, each the median of 30 calls; "
                f"gitxp's process medians ranged {cold[0]:.2f}-{cold[-1]:.2f} ms",
                runs=n,
                processes=PROCESSES,
                gitxp_process_ms=[r["cold"] * 1000 for r in runs["gitxp"]],
                mlflow_process_ms=[r["cold"] * 1000 for r in runs["mlflow"]],
            ),
            result(
                "history.warm",
                "Reading",
                f"read one metric history (100 points, {n:,} runs), back to back",
                "ms",
                figure("gitxp", "warm"),
                "MLflow get_metric_history",
                figure("mlflow", "warm"),
                notes="no target; calls in a row with no full collection between them, "
                "as a loop over runs makes them (the row above collects garbage before "
                "each call, which leaves the CPU caches cold)",
                runs=n,
            ),
        ]
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        side, size, run_name = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        figures = (_gitxp if side == "gitxp" else _mlflow)(size, run_name)
        print(MARKER + json.dumps(figures))
    else:
        main("--quick" in sys.argv)
