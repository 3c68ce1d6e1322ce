"""`import gitxp.mlflow as mlflow`: MLflow tracking code records gitxp runs unchanged."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import gitxp
import gitxp.mlflow as mlflow
from tests.gitutil import fsck, git, run_refs


@pytest.fixture(autouse=True)
def _fresh_mlflow_state(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no tracking URI, no current experiment and no active run."""
    from gitxp.integrations import mlflow_fluent

    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setitem(mlflow_fluent._global, "uri", None)
    monkeypatch.setitem(mlflow_fluent._global, "experiment", None)
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()


def test_fluent_calls_record_a_gitxp_run(repo: Path) -> None:
    mlflow.set_experiment("compat")
    with mlflow.start_run(run_name="baseline", tags={"team": "a"}, description="first try") as run:
        assert mlflow.active_run() is run
        assert mlflow.log_param("lr", 0.01) == 0.01
        mlflow.log_params({"layers": 3, "opt": "adam"})
        for step in range(4):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1_700_000_000_000)
        mlflow.log_metrics({"acc": 0.5, "f1": 0.4}, step=7)
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"owner": "ada", "mlflow.note.content": "replaced note"})
        run_id = run.info.run_id
        assert run.data.params == {"lr": "0.01", "layers": "3", "opt": "adam"}
    assert mlflow.active_run() is None

    record = gitxp.open(repo).run(run_id)
    assert record.name == "baseline"
    assert record.experiment == "compat"
    assert record.status == "FINISHED"
    assert record.params == {"lr": 0.01, "layers": 3, "opt": "adam"}  # types kept in storage
    assert record.tags == {"team": "a", "stage": "dev", "owner": "ada"}
    assert record.notes == "replaced note"
    hist = record.metric_history("loss")
    assert hist["step"].tolist() == [0, 1, 2, 3]
    assert hist["timestamp"].tolist() == [1_700_000_000_000] * 4
    assert record.metric_history("acc")["step"].tolist() == [7]
    fsck(repo)
    # the run commit is readable with plain git
    assert '"lr": 0.01' in git(repo, "show", f"refs/gitxp/runs/{run_id}:params.json")


def test_get_run_and_client_match_mlflow_shapes(repo: Path) -> None:
    with mlflow.start_run(run_name="r1") as run:
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("loss", 0.3, step=0, timestamp=1000)
        mlflow.log_metric("loss", 0.2, step=1, timestamp=2000)
    got = mlflow.get_run(run.info.run_id)
    assert got.info.run_id == got.info.run_uuid == run.info.run_id
    assert got.info.experiment_id == "default"
    assert got.info.status == "FINISHED"
    assert got.info.start_time <= got.info.end_time
    assert got.data.params == {"C": "1.0"}
    assert got.data.metrics == {"loss": 0.2}
    assert got.data.tags["mlflow.runName"] == "r1"

    client = mlflow.MlflowClient()
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [(0, 0.3, 1000), (1, 0.2, 2000)]
    assert client.get_metric_history(run.info.run_id, "nope") == []
    runs = client.search_runs(["0"], "metrics.loss < 0.25")
    assert [r.info.run_id for r in runs] == [run.info.run_id]


def test_a_live_runs_metric_is_the_one_at_the_highest_step(repo: Path) -> None:
    # steps logged out of order: the live run shows what the committed listing will show
    with mlflow.start_run(run_name="late") as run:
        mlflow.log_metric("m", 1.0, step=5)
        mlflow.log_metric("m", 2.0, step=3)
        live = run.data.metrics["m"]
    assert live == gitxp.open(repo).rows()[0]["metrics"]["m"] == 1.0
    assert mlflow.get_run(run.info.run_id).data.metrics["m"] == 1.0


def test_nested_runs_record_their_parent(repo: Path) -> None:
    with mlflow.start_run(run_name="sweep") as parent:
        for lr in (0.1, 0.01):
            with mlflow.start_run(run_name=f"lr={lr}", nested=True):
                mlflow.log_param("lr", lr)
        with pytest.raises(gitxp.GitxpError, match="nested=True"):
            mlflow.start_run()
    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'", order_by=["params.lr"]
    )
    assert children["params.lr"].tolist() == ["0.01", "0.1"]
    records = [gitxp.open(repo).run(i) for i in children["run_id"]]
    assert {r.parent for r in records} == {parent.info.run_id}
    assert gitxp.open(repo).run(parent.info.run_id).parent is None


def test_search_runs_returns_mlflow_columns_filters_and_orders(repo: Path) -> None:
    mlflow.set_experiment("grid")
    for c in (0.1, 1.0, 10.0):
        with mlflow.start_run():
            mlflow.log_param("C", c)
            mlflow.log_metric("acc", 0.8 + c / 100)
    mlflow.set_experiment("other")
    with mlflow.start_run():
        mlflow.log_metric("acc", 0.99)

    frame = mlflow.search_runs(experiment_names=["grid"], order_by=["metrics.acc DESC"])
    assert list(frame.columns[:6]) == [
        "run_id",
        "experiment_id",
        "status",
        "artifact_uri",
        "start_time",
        "end_time",
    ]
    assert {"metrics.acc", "params.C", "tags.mlflow.runName"} <= set(frame.columns)
    assert frame["params.C"].tolist() == ["10.0", "1.0", "0.1"]
    assert str(frame["start_time"].dtype) == "datetime64[ms, UTC]" or "UTC" in str(
        frame["start_time"].dtype
    )
    # current experiment by default; ids are names
    assert len(mlflow.search_runs()) == 1
    assert len(mlflow.search_runs(experiment_ids=["grid", "other"])) == 4
    assert len(mlflow.search_runs(search_all_experiments=True)) == 4
    top = mlflow.search_runs(
        experiment_ids=["grid"],
        filter_string="params.C >= '1.0' and attributes.status = 'FINISHED'",
        max_results=1,
        order_by=["metrics.acc ASC"],
    )
    assert top["params.C"].tolist() == ["1.0"]
    as_list = mlflow.search_runs(experiment_ids=["grid"], output_format="list")
    assert sorted(r.data.params["C"] for r in as_list) == ["0.1", "1.0", "10.0"]


def test_failed_block_and_implicit_run(repo: Path) -> None:
    with pytest.raises(ZeroDivisionError), mlflow.start_run() as run:
        mlflow.log_metric("x", 1.0)
        _ = 1 / 0
    assert gitxp.open(repo).run(run.info.run_id).status == "FAILED"
    # like MLflow, logging with no active run starts one
    mlflow.log_metric("y", 2.0)
    implicit = mlflow.active_run()
    assert implicit is not None
    mlflow.end_run()
    assert gitxp.open(repo).run(implicit.info.run_id).last_metrics == {"y": 2.0}


def test_client_tags_an_ended_run_and_resume_appends(repo: Path) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 1.0, step=0)
    mlflow.MlflowClient().set_tag(run.info.run_id, "reviewed", "yes")
    mlflow.MlflowClient().set_tag(run.info.run_id, "mlflow.runName", "renamed")
    record = gitxp.open(repo).run(run.info.run_id)
    assert record.tags["reviewed"] == "yes"
    assert record.name == "renamed"
    assert record.status == "FINISHED"
    with mlflow.start_run(run_id=run.info.run_id):
        mlflow.log_metric("loss", 0.5, step=1)
    record = gitxp.open(repo).run(run.info.run_id)
    assert record.metric_history("loss")["value"].tolist() == [1.0, 0.5]
    assert record.status == "FINISHED"
    assert len(run_refs(repo)) == 1
    fsck(repo)


def test_tracking_uri_selects_repository_and_ignores_servers(
    repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    mlflow.set_tracking_uri(f"file://{other}/mlruns")
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
    assert len(run_refs(other)) == 1 and run_refs(repo) == []
    mlflow.set_tracking_uri("http://127.0.0.1:5000")
    with mlflow.start_run():
        pass
    assert "ignored" in caplog.text
    assert len(run_refs(repo)) == 1
    assert math.isclose(
        mlflow.MlflowClient(tracking_uri=str(other)).get_run(run.info.run_id).data.metrics["m"],
        1.0,
    )


def test_gitxp_calls_act_on_the_mlflow_run(repo: Path) -> None:
    with mlflow.start_run() as run:
        gitxp.log_metric("native", 3.0)
        assert gitxp.active_run().id == run.info.run_id
    assert gitxp.open(repo).run(run.info.run_id).last_metrics == {"native": 3.0}


def test_bad_input_is_a_gitxp_error(repo: Path) -> None:
    with pytest.raises(gitxp.InvalidValueError):
        mlflow.set_experiment("")
    with mlflow.start_run():
        mlflow.log_param("p", 1)
        with pytest.raises(mlflow.MlflowException, match="'p'"):
            mlflow.log_param("p", 2)
        with pytest.raises(gitxp.InvalidValueError):
            mlflow.log_metric("m", "not a number")
    with pytest.raises(gitxp.RunNotFoundError):
        mlflow.get_run("no-such-run")


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mlflow_iris.py"


def test_mlflow_iris_quickstart_runs_as_is(repo: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=repo, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "predicted_class" in result.stdout
    assert "tracking URI 'http://127.0.0.1:8080' ignored" in result.stderr
    (row,) = gitxp.open(repo).rows()
    record = gitxp.open(repo).run(row["id"])
    assert record.experiment == "MLflow Quickstart"
    assert record.params == {"solver": "lbfgs", "max_iter": 1000, "random_state": 8888}
    assert record.last_metrics["accuracy"] == 1.0
    assert record.tags["model.iris_model.Training Info"] == "Basic LR model for iris data"
    paths = {a["path"] for a in record.artifacts()}
    assert paths == {
        "iris_model/model.pkl",
        "iris_model/model.json",
        "iris_model/input_example.json",
    }
    fsck(repo)

    # the model loads back in another process and predicts what a fresh fit predicts
    from sklearn import datasets
    from sklearn.linear_model import LogisticRegression

    X, y = datasets.load_iris(return_X_y=True)
    model = mlflow.sklearn.load_model(f"runs:/{record.id}/iris_model")
    expected = LogisticRegression(solver="lbfgs", max_iter=1000, random_state=8888)
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=42)
    expected.fit(X_train, y_train)
    assert (model.predict(X_test) == expected.predict(X_test)).all()


def test_log_model_and_load_model_roundtrip(repo: Path, tmp_path: Path) -> None:
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True)
    tree = DecisionTreeClassifier(random_state=0).fit(X, y)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(tree, "tree", signature=mlflow.models.infer_signature(X, y))
        # loadable while the run is still going
        assert (mlflow.sklearn.load_model(info.model_uri).predict(X) == tree.predict(X)).all()
    assert info.model_uri == f"runs:/{run.info.run_id}/tree"
    by_id = mlflow.pyfunc.load_model(f"models:/{info.model_id}")
    assert (by_id.predict(X) == tree.predict(X)).all()
    dst = tmp_path / "dst"
    loaded = mlflow.sklearn.load_model(info.model_uri, dst_path=str(dst))
    assert (loaded.predict(X) == tree.predict(X)).all()
    meta = json.loads((dst / "tree" / "model.json").read_text())
    assert meta["flavor"] == "sklearn" and meta["signature"]["inputs"]["shape"] == [-1, 4]
    # a saved model directory loads from its path too
    mlflow.sklearn.save_model(tree, tmp_path / "saved")
    assert (mlflow.sklearn.load_model(str(tmp_path / "saved")).predict(X) == tree.predict(X)).all()
    with pytest.raises(gitxp.GitxpError, match="not a gitxp model id"):
        mlflow.pyfunc.load_model("models:/m-nonsense")


def test_artifact_calls(repo: Path, tmp_path: Path) -> None:
    local = tmp_path / "data"
    (local / "sub").mkdir(parents=True)
    (local / "a.txt").write_text("A")
    (local / "sub" / "b.txt").write_text("B")

    class Figure:  # anything with matplotlib's savefig(buffer, format=...) is a figure
        def savefig(self, buf, format: str) -> None:
            buf.write(f"image/{format}".encode())

    with mlflow.start_run() as run:
        mlflow.log_artifact(str(local / "a.txt"))
        mlflow.log_artifact(str(local / "a.txt"), artifact_path="copies")
        mlflow.log_artifacts(str(local), artifact_path="tree")
        mlflow.log_text("hello", "texts/hello.txt")
        mlflow.log_dict({"k": [1, 2]}, "config.json")
        mlflow.log_dict({"k": "v"}, "config.yaml")
        mlflow.log_figure(Figure(), "plots/curve.png")
    client = mlflow.MlflowClient()
    paths = sorted(f.path for f in client.list_artifacts(run.info.run_id))
    assert paths == [
        "a.txt",
        "config.json",
        "config.yaml",
        "copies/a.txt",
        "plots/curve.png",
        "texts/hello.txt",
        "tree/a.txt",
        "tree/sub/b.txt",
    ]
    out = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "out")))
    assert (out / "tree" / "sub" / "b.txt").read_text() == "B"
    assert json.loads((out / "config.json").read_text()) == {"k": [1, 2]}
    assert (out / "config.yaml").read_text().strip() == "k: v"
    assert (out / "plots" / "curve.png").read_bytes() == b"image/png"
    assert (out / "texts" / "hello.txt").read_text() == "hello"
    fsck(repo)


def test_mlflow_script_under_gitxp_run_records_one_run(repo: Path) -> None:
    import sys

    script = repo / "mlflow_train.py"
    script.write_text(
        "import gitxp.mlflow as mlflow\n"
        "with mlflow.start_run(run_name='from-mlflow') as run:\n"
        "    mlflow.log_param('depth', 4)\n"
        "    mlflow.log_metric('acc', 0.75)\n"
        "    with mlflow.start_run(nested=True):\n"
        "        mlflow.log_metric('fold_acc', 0.7)\n"
    )
    result = gitxp.launch([sys.executable, str(script)], experiment="cli", stream=False)
    assert result.status == "FINISHED", gitxp.open(repo).run(result.run_id).output
    rows = {r["id"]: r for r in gitxp.open(repo).rows()}
    assert len(rows) == 2  # the `gitxp run` run, and the nested one inside it
    outer = gitxp.open(repo).run(result.run_id)
    assert outer.name == "from-mlflow" and outer.experiment == "cli"
    assert outer.params == {"depth": 4} and outer.last_metrics == {"acc": 0.75}
    (child_id,) = [i for i in rows if i != result.run_id]
    child = gitxp.open(repo).run(child_id)
    assert child.parent == result.run_id and child.experiment == "cli"


def test_autolog_is_accepted_and_artifact_uri_named(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mlflow.sklearn.autolog()
    mlflow.autolog(log_models=False)
    assert caplog.text.count("autolog() records nothing") <= 1
    with mlflow.start_run() as run:
        assert mlflow.get_artifact_uri() == f"runs:/{run.info.run_id}"
        assert mlflow.get_artifact_uri("model/") == f"runs:/{run.info.run_id}/model"
