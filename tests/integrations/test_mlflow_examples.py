"""Two more of MLflow's own example kinds, unchanged, on the `gitxp:` plugin.

`sklearn_elasticnet_*` (params, metrics and `log_model` with a signature, read
back through `pyfunc.load_model`) and `sklearn_autolog/grid_search_cv.py`
(autolog of a `GridSearchCV`: a parent run and one child run per candidate,
found again with `search_runs(filter_string="tags.mlflow.parentRunId = ...")`,
which the built-in subset could not do). The scripts are written here in the
shape of MLflow's examples (with sklearn's bundled data instead of a
download) and run in subprocesses with only `MLFLOW_TRACKING_URI` set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

import gitxp
from tests.gitutil import fsck, git

mlflow = pytest.importorskip("mlflow")

ELASTICNET = """
import json, sys
import numpy as np
import mlflow
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

def eval_metrics(actual, pred):
    rmse = np.sqrt(mean_squared_error(actual, pred))
    return rmse, mean_absolute_error(actual, pred), r2_score(actual, pred)

X, y = load_diabetes(return_X_y=True, as_frame=True)
train_x, test_x, train_y, test_y = train_test_split(X, y, random_state=42)
alpha, l1_ratio = 0.05, 0.3
with mlflow.start_run() as run:
    lr = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, random_state=42)
    lr.fit(train_x, train_y)
    predicted = lr.predict(test_x)
    rmse, mae, r2 = eval_metrics(test_y, predicted)
    print(f"Elasticnet model (alpha={alpha}, l1_ratio={l1_ratio}): RMSE {rmse} MAE {mae} R2 {r2}")
    mlflow.log_param("alpha", alpha)
    mlflow.log_param("l1_ratio", l1_ratio)
    mlflow.log_metric("rmse", rmse)
    mlflow.log_metric("r2", r2)
    mlflow.log_metric("mae", mae)
    signature = infer_signature(train_x, lr.predict(train_x))
    mlflow.sklearn.log_model(lr, name="model", signature=signature)
out = {"run": run.info.run_id, "rmse": rmse, "first": float(predicted[0])}
json.dump(out, open(sys.argv[1], "w"))
"""

GRID_SEARCH = """
import json, sys
import mlflow
from sklearn import datasets, svm
from sklearn.model_selection import GridSearchCV

mlflow.sklearn.autolog()
iris = datasets.load_iris()
parameters = {"kernel": ("linear", "rbf"), "C": [1, 10]}
svc = svm.SVC()
clf = GridSearchCV(svc, parameters)
clf.fit(iris.data, iris.target)
run_id = mlflow.last_active_run().info.run_id
children = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
print(children[["params.C", "params.kernel", "metrics.mean_test_score"]])
json.dump({"run": run_id, "children": sorted(children["run_id"])}, open(sys.argv[1], "w"))
"""


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both scripts run at once in one fresh repository; their outputs by name."""
    repo = tmp_path_factory.mktemp("mlflow-examples") / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# project\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "initial")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = f"gitxp:{repo}"
    procs = {}
    for name, source in {"elasticnet": ELASTICNET, "grid_search_cv": GRID_SEARCH}.items():
        (repo / f"{name}.py").write_text(source)
        command = [sys.executable, f"{name}.py", str(repo / f"{name}.out.json")]
        procs[name] = subprocess.Popen(
            command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    out: dict[str, Any] = {"repo": repo}
    for name, proc in procs.items():
        log, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{name}.py failed:\n{log[-4000:]}"
        out[name] = json.loads((repo / f"{name}.out.json").read_text())
    return out


@pytest.mark.slow
def test_elasticnet_example_records_params_metrics_and_a_loadable_model(
    ran: dict[str, Any],
) -> None:
    repo, ids = ran["repo"], ran["elasticnet"]
    record = gitxp.open(repo).run(ids["run"])
    assert record.status == "FINISHED"
    assert record.params == {"alpha": "0.05", "l1_ratio": "0.3"}
    assert record.last_metrics["rmse"] == pytest.approx(ids["rmse"])
    assert set(record.last_metrics) >= {"rmse", "r2", "mae"}
    import pandas as pd
    from sklearn.datasets import load_diabetes

    mlflow.set_tracking_uri(f"gitxp:{repo}")
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{ids['run']}/model")
        X, _ = load_diabetes(return_X_y=True, as_frame=True)
        assert model.metadata.signature is not None
        prediction = model.predict(pd.DataFrame(X.iloc[:5]))
        assert len(prediction) == 5
    finally:
        mlflow.set_tracking_uri(None)
    fsck(repo)


@pytest.mark.slow
def test_grid_search_autolog_finds_its_child_runs(ran: dict[str, Any]) -> None:
    repo, ids = ran["repo"], ran["grid_search_cv"]
    assert len(ids["children"]) == 4  # 2 kernels x 2 values of C
    handle = gitxp.open(repo)
    parent = handle.run(ids["run"])
    assert parent.status == "FINISHED"
    assert "best_cv_score" in parent.last_metrics
    assert {"estimator", "param_grid"} <= set(parent.params)
    children = [handle.run(child) for child in ids["children"]]
    assert all(child.parent == ids["run"] for child in children)
    grid = sorted((child.params["C"], child.params["kernel"]) for child in children)
    assert grid == [("1", "linear"), ("1", "rbf"), ("10", "linear"), ("10", "rbf")]
    assert all("mean_test_score" in child.last_metrics for child in children)
    rows = {row["id"]: row for row in handle.rows()}  # what `gitxp log` lists
    assert set(ids["children"]) | {ids["run"]} <= set(rows)
