"""gitxp.mlflow's model registry calls go through gitxp's (GTO-compatible) registry."""

from __future__ import annotations

from pathlib import Path

import pytest

import gitxp
import gitxp.mlflow as mlflow
from tests.gitutil import fsck, git


def _trees() -> tuple[object, object, object]:
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True)
    shallow = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y)
    deep = DecisionTreeClassifier(random_state=0).fit(X, y)
    return X, shallow, deep


def test_register_alias_and_load_through_the_registry(repo: Path) -> None:
    X, shallow, deep = _trees()
    with mlflow.start_run() as first:
        info = mlflow.sklearn.log_model(shallow, "tree", registered_model_name="iris")
        assert info.registered_model_version == 1  # registered while the run goes on
        mlflow.log_metric("acc", 0.66)
    with mlflow.start_run() as second:
        unregistered = mlflow.sklearn.log_model(deep, "tree")
    assert unregistered.registered_model_version is None
    version = mlflow.register_model(unregistered.model_uri, "iris")
    assert (version.name, version.version, version.gitxp_version) == ("iris", "2", "v0.0.2")
    assert version.run_id == second.info.run_id and version.source == unregistered.model_uri

    # the same registry gitxp and gto read: tags iris@v0.0.1 and iris@v0.0.2 on the runs
    with gitxp.open(repo) as r:
        model = r.model("iris")
        assert [(v.version, v.run_id, v.path) for v in model.versions] == [
            ("v0.0.2", second.info.run_id, "tree"),
            ("v0.0.1", first.info.run_id, "tree"),
        ]
    assert git(repo, "tag").split() == ["iris@v0.0.1", "iris@v0.0.2"]

    client = mlflow.MlflowClient()
    client.set_registered_model_alias("iris", "champion", 1)
    client.set_registered_model_alias("iris", "champion", "1")  # already there: a no-op
    assert client.get_model_version_by_alias("iris", "champion").version == "1"
    with gitxp.open(repo) as r:
        assert r.run("iris#champion").id == first.info.run_id
        assert r.model("iris").stages["champion"].version == "v0.0.1"

    def predicts_like(uri: str, model: object) -> bool:
        return bool((mlflow.pyfunc.load_model(uri).predict(X) == model.predict(X)).all())  # type: ignore[attr-defined]

    assert predicts_like("models:/iris@champion", shallow)
    assert predicts_like("models:/iris/1", shallow)
    assert predicts_like("models:/iris/2", deep)
    assert predicts_like("models:/iris/latest", deep)
    assert (mlflow.sklearn.load_model("models:/iris/2").predict(X) == deep.predict(X)).all()

    # moving the alias is a new stage assignment; the old one stays in the history
    client.set_registered_model_alias("iris", "champion", 2)
    assert predicts_like("models:/iris@champion", deep)
    assert [v.version for v in client.get_latest_versions("iris", stages=["champion"])] == ["2"]
    client.delete_registered_model_alias("iris", "champion")
    with gitxp.open(repo) as r:
        assert r.model("iris").stages == {}
    fsck(repo)


def test_registry_mistakes_are_one_line_errors(repo: Path) -> None:
    _, shallow, _ = _trees()
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(shallow, "tree", registered_model_name="iris")
    with pytest.raises(gitxp.ModelNotFoundError, match="no version of iris is in stage 'prod'"):
        mlflow.pyfunc.load_model("models:/iris@prod")
    with pytest.raises(gitxp.ModelNotFoundError, match="iris has 1 registered versions"):
        mlflow.pyfunc.load_model("models:/iris/7")
    with pytest.raises(gitxp.ModelNotFoundError, match="'irsi'"):
        mlflow.pyfunc.load_model("models:/irsi/1")
    with pytest.raises(gitxp.InvalidValueError, match="not a run's model"):
        mlflow.register_model("some/local/dir", "iris")
    with pytest.raises(gitxp.InvalidValueError, match="cannot name a model"):
        mlflow.register_model(info.model_uri, "bad name!")
    with pytest.raises(gitxp.RegistryError, match="has no artifact 'nothing'"):
        mlflow.register_model(info.model_uri.replace("/tree", "/nothing"), "iris")
    with pytest.raises(gitxp.InvalidValueError, match="cannot name a stage"):
        mlflow.MlflowClient().set_registered_model_alias("iris", "no such!", 1)
    with mlflow.start_run() as run, pytest.raises(gitxp.InvalidValueError, match="bad name"):
        mlflow.sklearn.log_model(shallow, "tree", registered_model_name="bad name!")
    assert mlflow.MlflowClient().list_artifacts(run.info.run_id) == []  # refused up front
    with gitxp.open(repo) as r:
        assert len(r.model("iris").versions) == 1  # nothing half-registered
