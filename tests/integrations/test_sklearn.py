"""scikit-learn: explicit fit/log_estimator helpers and autolog record params, time, score, model."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

import gitxp
from tests.integrations.frameworks import artifact_names

sklearn = pytest.importorskip("sklearn")  # in the `test` extra: always runs in CI

from sklearn.cluster import KMeans  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import gitxp.sklearn  # noqa: E402


@pytest.fixture
def data() -> tuple[object, object]:
    return make_classification(n_samples=80, n_features=5, random_state=0)


@pytest.fixture
def autologged() -> Iterator[None]:
    gitxp.sklearn.autolog()
    yield
    gitxp.sklearn.autolog(disable=True)


def _load_model(record: object, tmp_path: Path) -> object:
    (path,) = record.download_artifacts("model.pkl", to=tmp_path / "dl")  # type: ignore[attr-defined]
    with open(path, "rb") as f:
        return pickle.load(f)


def test_fit_records_params_time_scores_and_model(repo: Path, data: tuple, tmp_path: Path) -> None:
    X, y = data
    model = gitxp.sklearn.fit(
        LogisticRegression(C=0.5), X[:60], y[:60], X_test=X[60:], y_test=y[60:], name="logreg"
    )
    record = gitxp.open().run("logreg")
    assert record.status == "FINISHED"
    assert record.params["estimator_class"] == "sklearn.LogisticRegression"
    assert record.params["C"] == 0.5 and record.params["max_iter"] == 100
    metrics = record.last_metrics
    assert metrics["training_score"] == pytest.approx(model.score(X[:60], y[:60]))
    assert metrics["test_score"] == pytest.approx(model.score(X[60:], y[60:]))
    assert metrics["fit_time_seconds"] > 0
    restored = _load_model(record, tmp_path)
    assert (restored.predict(X) == model.predict(X)).all()


def test_log_estimator_joins_the_active_run(repo: Path, data: tuple) -> None:
    X, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression(C=2.0)).fit(X, y)
    with gitxp.start_run(params={"split": "all"}) as run:
        gitxp.sklearn.log_estimator(model, X, y, fit_time=1.5, log_model=False)
        assert run.status == "RUNNING"
    record = gitxp.open().run(run.id)
    assert record.params["estimator_class"] == "sklearn.Pipeline"
    assert record.params["logisticregression__C"] == 2.0 and record.params["split"] == "all"
    assert record.last_metrics == {"fit_time_seconds": 1.5, "test_score": model.score(X, y)}
    assert artifact_names(record) == set()


def test_a_failing_fit_ends_its_run_failed(repo: Path) -> None:
    with pytest.raises(ValueError):
        gitxp.sklearn.fit(LogisticRegression(), [[0.0], [1.0]], [1, 1], name="one-class")
    assert gitxp.open().run("one-class").status == "FAILED"


def test_autolog_records_each_outermost_fit_once(
    repo: Path, data: tuple, autologged: None, tmp_path: Path
) -> None:
    X, y = data
    search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(X, y)
    KMeans(n_clusters=2, n_init=2, random_state=0).fit(X)
    runs = gitxp.open().runs(order_by=["start_time"])
    assert len(runs) == 2  # not one per fit inside the grid search
    grid = gitxp.open().run(runs["id"].iloc[0])
    assert grid.params["estimator_class"] == "sklearn.GridSearchCV"
    assert grid.params["estimator"] == "LogisticRegression()"
    assert grid.params["estimator__C"] == 1.0 and grid.params["cv"] == 2
    assert grid.last_metrics["training_score"] == pytest.approx(search.score(X, y))
    best = _load_model(grid, tmp_path)
    assert best.best_params_ == search.best_params_
    kmeans = gitxp.open().run(runs["id"].iloc[1])
    assert kmeans.params["n_clusters"] == 2
    assert kmeans.last_metrics["training_score"] < 0  # KMeans scores -inertia, without y
    assert kmeans.last_metrics["fit_time_seconds"] > 0


def test_autolog_inside_a_run_and_disable(repo: Path, data: tuple, autologged: None) -> None:
    X, y = data
    with gitxp.start_run() as run:
        LogisticRegression().fit(X, y)
        LogisticRegression().fit(X, y)
    record = gitxp.open().run(run.id)
    assert list(record.metric_history("training_score")["step"]) == [0, 1]
    gitxp.sklearn.autolog(disable=True)
    assert "__gitxp_autolog__" not in vars(LogisticRegression.fit)
    LogisticRegression().fit(X, y)
    assert len(gitxp.open().runs()) == 1
