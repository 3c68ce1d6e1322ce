"""The `gitxp:` MLflow plugin: unchanged MLflow scripts, MLflow's client and `mlflow server`
record and read gitxp runs (docs/mlflow.md).

The example scripts are MLflow's own kind (quickstart, sklearn logistic
regression with `log_model`, `autolog`, a LoggedModel demo); they are written
here and run unchanged in subprocesses, together (they share the module's
repository), with only `MLFLOW_TRACKING_URI=gitxp:<repo>` set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import gitxp
from gitxp.ops.manage import trash
from tests.gitutil import fsck, git
from tests.servers import free_port

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

QUICKSTART = """
import json, os, sys
import mlflow
mlflow.set_experiment("quickstart")
with mlflow.start_run(run_name="quick start") as run:
    mlflow.log_param("alpha", 0.5)
    mlflow.log_params({"layers": 3, "opt": "adam"})
    for step in range(20):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=19, synchronous=False)
    with open("report.txt", "w") as f:
        f.write("quickstart report")
    mlflow.log_artifact("report.txt")
    mlflow.log_dict({"a": 1}, "eval/config.json")
    mlflow.set_tag("team", "vision")
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_metric("inner", 1.0)
json.dump({"run": run.info.run_id, "child": child.info.run_id}, open(sys.argv[1], "w"))
"""

SKLEARN = """
import json, sys
import numpy as np
import mlflow
import mlflow.sklearn
from sklearn.linear_model import LogisticRegression

X = np.array([-2, -1, 0, 1, 2, 1]).reshape(-1, 1)
y = np.array([0, 0, 1, 1, 1, 0])
lr = LogisticRegression()
lr.fit(X, y)
score = lr.score(X, y)
print(f"Score: {score}")
with mlflow.start_run() as run:
    mlflow.log_metric("score", score)
    info = mlflow.sklearn.log_model(lr, name="model")
    print(f"Model saved in run {run.info.run_id}")
json.dump({"run": run.info.run_id, "model_id": info.model_id}, open(sys.argv[1], "w"))
"""

AUTOLOG = """
import json, sys
import mlflow
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import train_test_split

mlflow.set_experiment("autolog")
mlflow.sklearn.autolog()
db = load_diabetes()
X_train, X_test, y_train, y_test = train_test_split(db.data, db.target, random_state=0)
rf = RandomForestRegressor(n_estimators=10, max_depth=6, max_features=3)
rf.fit(X_train, y_train)
rf.predict(X_test)
json.dump({"run": mlflow.last_active_run().info.run_id}, open(sys.argv[1], "w"))
"""

LOGGED_MODEL = """
import json, sys
import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

mlflow.set_experiment("logged-models")
X, y = load_iris(return_X_y=True, as_frame=True)
with mlflow.start_run() as run:
    model = LogisticRegression(max_iter=300).fit(X, y)
    info = mlflow.sklearn.log_model(model, name="iris-model", params={"max_iter": 300})
    dataset = mlflow.data.from_pandas(X.assign(target=y), name="iris")
    mlflow.log_input(dataset, context="training")
    mlflow.log_metric("accuracy", model.score(X, y), model_id=info.model_id, dataset=dataset)
json.dump({"run": run.info.run_id, "model_id": info.model_id}, open(sys.argv[1], "w"))
"""

SCRIPTS = {
    "quickstart": QUICKSTART,
    "sklearn_logistic_regression": SKLEARN,
    "autolog": AUTOLOG,
    "logged_model": LOGGED_MODEL,
}


def _project(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("# project\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The example scripts, run at once in one repository; their outputs by name."""
    repo = _project(tmp_path_factory.mktemp("mlflow-plugin") / "project")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = f"gitxp:{repo}"
    procs = {}
    for name, source in SCRIPTS.items():
        (repo / f"{name}.py").write_text(source)
        procs[name] = subprocess.Popen(
            [sys.executable, f"{name}.py", str(repo / f"{name}.out.json")],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    out: dict[str, Any] = {"repo": repo}
    for name, proc in procs.items():
        log, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{name}.py failed:\n{log[-4000:]}"
        out[name] = json.loads((repo / f"{name}.out.json").read_text())
    return out


@pytest.fixture
def client(examples: dict[str, Any]) -> Iterator[MlflowClient]:
    yield MlflowClient(tracking_uri=f"gitxp:{examples['repo']}")


def test_quickstart_records_a_gitxp_run(examples: dict[str, Any], client: MlflowClient) -> None:
    repo, ids = examples["repo"], examples["quickstart"]
    record = gitxp.open(repo).run(ids["run"])
    assert record.name == "quick-start"  # made a valid gitxp name
    assert record.experiment == "quickstart"
    assert record.status == "FINISHED"
    assert record.params == {"alpha": "0.5", "layers": "3", "opt": "adam"}
    assert record.tags["team"] == "vision"
    assert record.code_commit  # the exact code: a snapshot (the scripts are untracked)
    assert record.env["python"]
    assert record.metric_history("loss")["step"].tolist() == list(range(20))
    assert record.last_metrics["acc"] == 0.9  # logged asynchronously
    assert gitxp.open(repo).run(ids["child"]).parent == ids["run"]
    parts = git(repo, "ls-tree", "-r", "--name-only", f"refs/gitxp/runs/{ids['run']}")
    assert "metrics/part-000001.parquet" in parts.split()
    # one run is a handful of commits, not one per logged value
    commits = git(repo, "rev-list", "--count", f"refs/gitxp/runs/{ids['run']}", "^HEAD")
    assert int(commits) < 10  # 30+ logging calls
    fsck(repo)

    run = client.get_run(ids["run"])
    assert run.info.run_name == "quick-start"
    assert run.data.params["alpha"] == "0.5"
    assert run.data.metrics["loss"] == pytest.approx(0.05)
    child = client.get_run(ids["child"])
    assert child.data.tags["mlflow.parentRunId"] == ids["run"]
    history = client.get_metric_history(ids["run"], "loss")
    assert [m.step for m in history] == list(range(20))
    assert history[-1].value == pytest.approx(0.05)
    names = sorted(f.path for f in client.list_artifacts(ids["run"]))
    assert names == ["eval", "report.txt"]
    assert [f.path for f in client.list_artifacts(ids["run"], "eval")] == ["eval/config.json"]
    local = client.download_artifacts(ids["run"], "report.txt", str(repo.parent / "dl"))
    assert Path(local).read_text() == "quickstart report"


def test_search_runs_uses_mlflow_filters_and_order(
    examples: dict[str, Any], client: MlflowClient
) -> None:
    mlflow.set_tracking_uri(f"gitxp:{examples['repo']}")
    try:
        frame = mlflow.search_runs(experiment_names=["quickstart"], order_by=["start_time ASC"])
        assert frame["run_id"].tolist() == [
            examples["quickstart"]["run"],
            examples["quickstart"]["child"],
        ]
        assert frame["params.alpha"].tolist()[0] == "0.5"
        exp = client.get_experiment_by_name("quickstart")
        assert exp is not None and exp.experiment_id.isdigit() and exp.experiment_id != "0"
        found = client.search_runs(
            [exp.experiment_id], "params.opt = 'adam' and metrics.loss < 0.1"
        )
        assert [r.info.run_id for r in found] == [examples["quickstart"]["run"]]
        assert client.search_runs([exp.experiment_id], "tags.team = 'nobody'") == []
        with pytest.raises(MlflowException, match="Invalid comparator"):
            client.search_runs([exp.experiment_id], "params.opt === 'adam'")
    finally:
        mlflow.set_tracking_uri(None)


def test_sklearn_model_loads_back(examples: dict[str, Any]) -> None:
    mlflow.set_tracking_uri(f"gitxp:{examples['repo']}")
    try:
        run_id = examples["sklearn_logistic_regression"]["run"]
        model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
        assert model.predict([[-2.0], [2.0]]).tolist() == [0, 1]
        logged = mlflow.get_logged_model(examples["sklearn_logistic_regression"]["model_id"])
        assert logged.source_run_id == run_id
        assert str(logged.status) == "READY"
        # the model's files are the run's artifacts, in its git tree
        record = gitxp.open(examples["repo"]).run(run_id)
        assert any(f["path"] == "model/MLmodel" for f in record.artifacts())
    finally:
        mlflow.set_tracking_uri(None)


def test_autolog_records_params_metrics_and_model(
    examples: dict[str, Any], client: MlflowClient
) -> None:
    run = client.get_run(examples["autolog"]["run"])
    assert run.data.params["n_estimators"] == "10"
    assert "training_score" in run.data.metrics
    assert client.get_experiment(run.info.experiment_id).name == "autolog"
    models = client.search_logged_models([run.info.experiment_id])
    assert [m.source_run_id for m in models] == [run.info.run_id]


def test_logged_model_demo(examples: dict[str, Any], client: MlflowClient) -> None:
    ids = examples["logged_model"]
    model = client.get_logged_model(ids["model_id"])
    assert model.name == "iris-model"
    assert model.params == {"max_iter": "300"}
    assert [m.key for m in model.metrics or []] == ["accuracy"]
    run = client.get_run(ids["run"])
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == {"iris"}
    assert [o.model_id for o in run.outputs.model_outputs] == [ids["model_id"]]
    with pytest.raises(MlflowException, match="not found"):
        client.get_logged_model("m-" + "0" * 34)


def test_native_gitxp_runs_are_visible_to_mlflow(tmp_path: Path) -> None:
    repo = _project(tmp_path / "native")
    with gitxp.start_run(experiment="native", name="plain", params={"lr": 0.1}, repo=repo) as run:
        run.log_metric("loss", 0.5)
    client = MlflowClient(tracking_uri=f"gitxp:{repo}")
    got = client.get_run(run.id)
    assert got.info.run_name == "plain" and got.data.params == {"lr": "0.1"}
    exp = client.get_experiment(got.info.experiment_id)
    assert exp.name == "native"
    assert [r.info.run_id for r in client.search_runs([exp.experiment_id])] == [run.id]


def test_client_edits_deletes_and_restores_as_commits(tmp_path: Path) -> None:
    repo = _project(tmp_path / "edits")
    client = MlflowClient(tracking_uri=f"gitxp:{repo}")
    exp_id = client.create_experiment("edits", tags={"owner": "ada"})
    assert client.get_experiment(exp_id).tags == {"owner": "ada"}
    run = client.create_run(exp_id, run_name="before")
    run_id = run.info.run_id
    client.log_batch(run_id, metrics=[], params=[], tags=[])
    client.log_param(run_id, "p", "1")
    with pytest.raises(MlflowException, match="Changing param values"):
        client.log_param(run_id, "p", "2")
    client.set_terminated(run_id)
    client.set_tag(run_id, "reviewed", "yes")
    client.update_run(run_id, name="after")
    log = git(repo, "log", "--format=%s", f"refs/gitxp/runs/{run_id}")
    assert "gitxp: tag reviewed=yes on run before" in log
    assert "gitxp: rename to after on run after" in log
    client.delete_run(run_id)
    assert [t.id for t in trash(repo=repo)] == [run_id]
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert client.search_runs([exp_id]) == []
    assert len(client.search_runs([exp_id], run_view_type=2)) == 1
    client.restore_run(run_id)
    assert client.get_run(run_id).info.run_name == "after"
    client.rename_experiment(exp_id, "edited")
    assert client.get_experiment(exp_id).name == "edited"
    assert gitxp.open(repo).run(run_id).experiment == "edited"
    client.delete_experiment(exp_id)
    with pytest.raises(MlflowException, match="active"):
        client.create_run(exp_id)
    fsck(repo)


def test_what_cannot_map_raises_mlflow_errors(tmp_path: Path) -> None:
    with pytest.raises(MlflowException, match="git init"):
        MlflowClient(tracking_uri=f"gitxp:{tmp_path}").search_experiments()
    with pytest.raises(MlflowException, match="not a host"):
        MlflowClient(tracking_uri="gitxp://server/path").search_experiments()
    repo = _project(tmp_path / "errors")
    client = MlflowClient(tracking_uri=f"gitxp:{repo}")
    with pytest.raises(MlflowException, match="not found"):
        client.get_run("01m8aaaaaaaaaaaaaaaaaaaaaa")
    with pytest.raises(MlflowException, match="No Experiment"):
        client.get_experiment("123")
    run = client.create_run("0")
    try:
        with pytest.raises(MlflowException, match="end it first"):
            client.delete_run(run.info.run_id)
    finally:
        client.set_terminated(run.info.run_id)


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_mlflow_server_serves_gitxp_runs(examples: dict[str, Any]) -> None:
    repo = examples["repo"]
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"gitxp:{repo}",
            "--artifacts-destination",
            f"gitxp:{repo}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.read().strip() == b"OK":
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(server.stderr.read().decode()[-3000:]) from None
                time.sleep(0.5)
        exp = MlflowClient(f"gitxp:{repo}").get_experiment_by_name("quickstart")
        assert exp is not None
        found = _post(
            f"{base}/api/2.0/mlflow/runs/search",
            {"experiment_ids": [exp.experiment_id], "filter": "params.alpha = '0.5'"},
        )
        assert [r["info"]["run_id"] for r in found["runs"]] == [examples["quickstart"]["run"]]
        with urllib.request.urlopen(f"{base}/", timeout=30) as response:
            assert b"<html" in response.read(2000).lower()
        # an edit made through the REST API (as the UI makes it) is a gitxp commit
        _post(
            f"{base}/api/2.0/mlflow/runs/set-tag",
            {"run_id": examples["quickstart"]["run"], "key": "starred", "value": "yes"},
        )
        assert gitxp.open(repo).run(examples["quickstart"]["run"]).tags["starred"] == "yes"
        # a client of the server logs through it: the run and its artifacts land in git
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env["MLFLOW_TRACKING_URI"] = base
        (repo / "remote.py").write_text(
            "import mlflow\n"
            "with mlflow.start_run(run_name='remote') as run:\n"
            "    mlflow.log_metric('m', 1.0)\n"
            "    mlflow.log_text('hi', 'notes/hello.txt')\n"
            "print(run.info.run_id)\n"
        )
        done = subprocess.run(
            [sys.executable, "remote.py"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        run_id = done.stdout.strip().splitlines()[-1]
        record = gitxp.open(repo).run(run_id)
        assert record.status == "FINISHED" and record.last_metrics == {"m": 1.0}
        assert [f["path"] for f in record.artifacts()] == ["notes/hello.txt"]
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.filterwarnings("ignore:MLflowCallback has been deprecated:FutureWarning")
def test_optuna_mlflow_callback_records_trials(tmp_path: Path) -> None:
    import optuna
    from optuna_integration.mlflow import MLflowCallback

    repo = _project(tmp_path / "optuna")
    callback = MLflowCallback(tracking_uri=f"gitxp:{repo}", metric_name="loss")
    study = optuna.create_study(study_name="sweep")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study.optimize(
            lambda trial: trial.suggest_float("x", -1, 1) ** 2, n_trials=3, callbacks=[callback]
        )
    finally:
        mlflow.set_tracking_uri(None)
    rows = gitxp.open(repo).rows()
    assert len(rows) == 3
    assert {r["experiment"] for r in rows} == {"sweep"}
    assert sorted(float(r["params"]["x"]) ** 2 for r in rows) == pytest.approx(
        sorted(r["metrics"]["loss"] for r in rows)
    )
