"""The MLflow twin of the bulk fixture is a valid MLflow store holding the gitxp fixture's runs.

Both fixtures of 50 runs are built in child processes (benchmarks/ sets its own scratch
directory on import); MLflow reads its store back through its own API in another child,
and the test compares that, run by run, with what gitxp reads from the gitxp fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gitxp

ROOT = Path(__file__).resolve().parents[2]
N = 50
FILTER = "metrics.acc > 0.8 and params.optimizer = 'adam'"

READ_BACK = """
import json, logging, sys
logging.getLogger("mlflow").setLevel(logging.ERROR)
import mlflow
from mlflow import MlflowClient

path, flt = sys.argv[1], sys.argv[2]
uri = "sqlite:///" + path + "/mlflow.db"
with open(path + "/experiments.json") as f:
    experiments = json.load(f)
names = {v: k for k, v in experiments.items()}
mlflow.set_tracking_uri(uri)
client = MlflowClient(uri)
ids = list(experiments.values())
frame = mlflow.search_runs(experiment_ids=ids)
runs = {}
for run_id in frame["run_id"]:
    run = client.get_run(run_id)
    runs[run.info.run_name] = {
        "experiment": names[run.info.experiment_id],
        "status": run.info.status,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "lifecycle_stage": run.info.lifecycle_stage,
        "artifact_uri": run.info.artifact_uri,
        "run_id": run_id,
        "params": run.data.params,
        "metrics": run.data.metrics,
        "tags": run.data.tags,
        "history": {
            key: [[m.step, m.timestamp, m.value] for m in client.get_metric_history(run_id, key)]
            for key in run.data.metrics
        },
    }
selected = mlflow.search_runs(experiment_ids=ids, filter_string=flt)
newest = mlflow.search_runs(experiment_ids=ids, max_results=5, order_by=["start_time DESC"])
print("@@" + json.dumps({
    "runs": runs,
    "selected": sorted(selected["tags.mlflow.runName"]),
    "newest": list(newest["tags.mlflow.runName"]),
}))
"""


def _python(*args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GITXP_BENCH_TMP": str(cwd / "scratch")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_mlflow_twin_holds_the_gitxp_fixture_runs(tmp_path: Path) -> None:
    gitxp_dir, mlflow_dir = tmp_path / "gitxp", tmp_path / "mlflow"
    _python(
        "-c",
        "import sys\n"
        "from benchmarks import scale_fixture, mlflow_scale_fixture\n"
        "g = scale_fixture.build(int(sys.argv[1]), sys.argv[2])\n"
        "mlflow_scale_fixture.build(int(sys.argv[1]), path=sys.argv[3], gitxp_repo=g)\n",
        str(N),
        str(gitxp_dir),
        str(mlflow_dir),
        cwd=tmp_path,
    )
    seen = json.loads(
        _python("-c", READ_BACK, str(mlflow_dir), FILTER, cwd=tmp_path).split("@@")[-1]
    )
    mruns = seen["runs"]

    with gitxp.open(str(gitxp_dir)) as repo:
        frame = repo.runs()
        assert len(frame) == N and len(mruns) == N
        for row in frame.to_dict("records"):
            m = mruns[row["name"]]
            assert m["experiment"] == row["experiment"]
            assert m["status"] == row["status"] == "FINISHED"
            assert m["lifecycle_stage"] == "active"
            assert m["start_time"] == int(row["start_time"].timestamp() * 1000)
            assert m["end_time"] == int(row["end_time"].timestamp() * 1000)
            assert m["artifact_uri"].endswith(f"/{m['run_id']}/artifacts")
            assert m["tags"] == {"mlflow.runName": row["name"]}
            record = repo.run(row["id"])
            assert m["params"] == {k: str(v) for k, v in record.params.items()}
            assert m["metrics"] == {"acc": row["metrics.acc"], "loss": row["metrics.loss"]}
            points = record.metrics()
            for key in ("acc", "loss"):
                mine = points[points["key"] == key].sort_values("step")
                expected = [
                    [int(s), int(t), float(v)]
                    for s, t, v in zip(mine["step"], mine["timestamp"], mine["value"], strict=True)
                ]
                assert len(expected) == 100
                assert m["history"][key] == expected
        selected = sorted(repo.runs(filter=FILTER)["name"])
        newest = list(repo.runs().sort_values("start_time", ascending=False)["name"][:5])
    assert selected and seen["selected"] == selected
    assert seen["newest"] == newest
