"""`gitxp.log_classification`: numpy metrics equal to scikit-learn's, logged with JSON artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import gitxp
from gitxp.integrations.classification import classification_metrics, roc_curve

metrics = pytest.importorskip("sklearn.metrics")

RNG = np.random.default_rng(7)


def _binary_case(n: int = 300, ties: bool = False) -> tuple:
    y = RNG.integers(0, 2, n)
    score = np.clip(y * 0.3 + RNG.random(n) * 0.7, 0, 1)
    if ties:
        score = score.round(1)  # many equal scores: the ROC curve must step over ties
    return y, (score > 0.5).astype(int), score


def _multiclass_case(n: int = 400, k: int = 4) -> tuple:
    y = RNG.integers(0, k, n)
    logits = RNG.normal(size=(n, k)) + np.eye(k)[y] * 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba.argmax(axis=1), proba


@pytest.mark.parametrize("ties", [False, True])
def test_binary_values_equal_sklearn(ties: bool) -> None:
    y, pred, score = _binary_case(ties=ties)
    got, artifacts = classification_metrics(y, pred, score)
    assert got == {
        "accuracy": metrics.accuracy_score(y, pred),
        "precision": metrics.precision_score(y, pred),
        "recall": metrics.recall_score(y, pred),
        "f1": metrics.f1_score(y, pred),
        "auc": pytest.approx(metrics.roc_auc_score(y, score), rel=1e-12),
    }
    fpr, tpr, thr = metrics.roc_curve(y, score)
    mine = roc_curve(y, score)
    for a, b in zip(mine, (fpr, tpr, thr), strict=True):
        np.testing.assert_array_equal(a, b)
    cm = artifacts["confusion_matrix.json"]
    assert cm["labels"] == [0, 1]
    assert cm["matrix"] == metrics.confusion_matrix(y, pred).tolist()
    curve = artifacts["roc_curve.json"]["curves"]["1"]
    assert curve["fpr"] == fpr.tolist() and curve["thresholds"][0] == "Infinity"


def test_binary_two_column_scores_and_string_labels() -> None:
    y = np.array(["cat", "dog", "dog", "cat", "dog", "cat", "dog", "dog"])
    pred = np.array(["cat", "dog", "cat", "cat", "dog", "dog", "dog", "dog"])
    p_dog = np.array([0.1, 0.9, 0.4, 0.2, 0.8, 0.6, 0.7, 0.95])
    got, artifacts = classification_metrics(y, pred, np.c_[1 - p_dog, p_dog])
    assert got["precision"] == metrics.precision_score(y, pred, pos_label="dog")
    assert got["recall"] == metrics.recall_score(y, pred, pos_label="dog")
    assert got["f1"] == metrics.f1_score(y, pred, pos_label="dog")
    assert got["auc"] == pytest.approx(metrics.roc_auc_score(y == "dog", p_dog), rel=1e-12)
    assert artifacts["confusion_matrix.json"]["labels"] == ["cat", "dog"]


def test_multiclass_averages_equal_sklearn() -> None:
    y, pred, proba = _multiclass_case()
    got, artifacts = classification_metrics(y, pred, proba)
    expected = {"accuracy": metrics.accuracy_score(y, pred)}
    for avg in ("macro", "micro", "weighted"):
        expected[f"precision_{avg}"] = metrics.precision_score(y, pred, average=avg)
        expected[f"recall_{avg}"] = metrics.recall_score(y, pred, average=avg)
        expected[f"f1_{avg}"] = metrics.f1_score(y, pred, average=avg)
        expected[f"auc_{avg}"] = pytest.approx(
            metrics.roc_auc_score(y, proba, multi_class="ovr", average=avg), rel=1e-12
        )
    assert got == expected
    assert (
        artifacts["confusion_matrix.json"]["matrix"] == metrics.confusion_matrix(y, pred).tolist()
    )
    assert set(artifacts["roc_curve.json"]["curves"]) == {"0", "1", "2", "3"}


def test_a_label_never_predicted_counts_as_zero_like_sklearn() -> None:
    y = np.array([0, 1, 2, 2, 1, 0, 2])
    pred = np.array([0, 1, 1, 1, 1, 0, 0])  # label 2 is never predicted
    got, _ = classification_metrics(y, pred, labels=[0, 1, 2])
    for avg in ("macro", "micro", "weighted"):
        assert got[f"precision_{avg}"] == metrics.precision_score(
            y, pred, average=avg, zero_division=0
        )
        assert got[f"f1_{avg}"] == metrics.f1_score(y, pred, average=avg, zero_division=0)


def test_log_classification_logs_metrics_and_artifacts(repo: Path, tmp_path: Path) -> None:
    y, pred, proba = _multiclass_case(n=60, k=3)
    with gitxp.start_run() as run:
        returned = gitxp.log_classification(y, pred, proba, prefix="val/", step=3)
    record = gitxp.open(repo).run(run.id)
    assert set(record.last_metrics) == {f"val/{k}" for k in returned}
    assert record.metric_history("val/accuracy")["step"].tolist() == [3]
    assert record.last_metrics["val/f1_macro"] == metrics.f1_score(y, pred, average="macro")
    record.download_artifacts(None, tmp_path / "out")
    cm = json.loads((tmp_path / "out" / "val" / "confusion_matrix.json").read_text())
    assert cm["gitxp.kind"] == "confusion_matrix"
    assert cm["matrix"] == metrics.confusion_matrix(y, pred).tolist()
    roc = json.loads((tmp_path / "out" / "val" / "roc_curve.json").read_text())
    assert roc["curves"]["0"]["auc"] == pytest.approx(
        metrics.roc_auc_score(y == 0, proba[:, 0]), rel=1e-12
    )


def test_bad_input() -> None:
    with pytest.raises(gitxp.NoActiveRunError):
        gitxp.log_classification([0, 1], [0, 1])
    with pytest.raises(gitxp.InvalidValueError, match="y_pred"):
        classification_metrics([0, 1, 1], [0, 1])
    with pytest.raises(gitxp.InvalidValueError, match="y_score"):
        classification_metrics([0, 1, 2], [0, 1, 2], np.ones((3, 2)))
    with pytest.raises(gitxp.InvalidValueError, match="labels"):
        classification_metrics([0, 1], [0, 1], labels=[1])
    with pytest.raises(gitxp.InvalidValueError, match="y_true: 5: give a sequence of labels"):
        classification_metrics(5, 6)
    with pytest.raises(gitxp.InvalidValueError, match="y_pred: None"):
        classification_metrics([0, 1], None)
