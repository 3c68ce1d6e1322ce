"""Classification metrics in one call: `gitxp.log_classification(y_true, y_pred, y_score)`.

Computed with numpy (no scikit-learn needed) and equal to scikit-learn's
`accuracy_score`, `precision_recall_fscore_support`, `roc_auc_score` and
`roc_curve` with `zero_division=0`:

- binary (two labels): ``accuracy``, ``precision``, ``recall``, ``f1`` of the
  positive label (the last of *labels*, i.e. 1 for 0/1 labels) and, with
  scores, ``auc``;
- multiclass: ``accuracy`` and ``precision_macro``, ``precision_micro``,
  ``precision_weighted`` (same for ``recall`` and ``f1``) and, with one
  score column per label, one-vs-rest ``auc_macro``, ``auc_micro``,
  ``auc_weighted``.

Besides the metrics, two JSON artifacts: ``<prefix>confusion_matrix.json``
(``{"gitxp.kind": "confusion_matrix", "labels": [...], "matrix": [[...]]}``,
rows are true labels, columns predictions; the UI draws it as a heatmap) and,
with scores, ``<prefix>roc_curve.json`` (false/true positive rates and
thresholds per curve).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidValueError, NoActiveRunError


def _labels(y_true: Any, y_pred: Any, labels: Sequence[Any] | None) -> Any:
    import numpy as np

    if labels is not None:
        out = np.asarray(list(labels))
        if len(out) < 2 or len(set(out.tolist())) != len(out):
            raise InvalidValueError("labels", "give at least two distinct labels")
        return out
    return np.unique(np.concatenate([y_true, y_pred]))


def confusion_matrix(y_true: Any, y_pred: Any, labels: Any) -> Any:
    """Counts: row i, column j = samples of true label i predicted as label j."""
    import numpy as np

    index = {label: i for i, label in enumerate(labels.tolist())}
    n = len(labels)
    t = np.array([index.get(v, -1) for v in y_true.tolist()], dtype=np.int64)
    p = np.array([index.get(v, -1) for v in y_pred.tolist()], dtype=np.int64)
    keep = (t >= 0) & (p >= 0)
    return np.bincount(t[keep] * n + p[keep], minlength=n * n).reshape(n, n)


def _divide(num: Any, den: Any) -> Any:
    import numpy as np

    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _prf(cm: Any) -> dict[str, Any]:
    """Per-label true positives, precision, recall, F1 and support from a confusion matrix."""
    import numpy as np

    tp = np.diag(cm).astype(np.float64)
    pred = cm.sum(axis=0).astype(np.float64)
    true = cm.sum(axis=1).astype(np.float64)
    fp, fn = pred - tp, true - tp
    return {
        "tp": tp,
        "pred": pred,
        "support": true,
        "precision": _divide(tp, pred),
        "recall": _divide(tp, true),
        # scikit-learn's form, so the floats agree to the last bit
        "f1": _divide(2 * tp, 2 * tp + fp + fn),
    }


def roc_curve(y_bin: Any, score: Any) -> tuple[Any, Any, Any]:
    """(fpr, tpr, thresholds) of scores against 0/1 truth, collinear points dropped."""
    import numpy as np

    order = np.argsort(score, kind="mergesort")[::-1]
    score = np.asarray(score, dtype=np.float64)[order]
    y = np.asarray(y_bin, dtype=np.float64)[order]
    distinct = np.where(np.diff(score))[0]
    ends = np.r_[distinct, y.size - 1]
    tps = np.cumsum(y)[ends]
    fps = 1 + ends - tps
    thresholds = score[ends]
    if len(fps) > 2:
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    tps = np.r_[0, tps]
    fps = np.r_[0, fps]
    thresholds = np.r_[np.inf, thresholds]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr, thresholds


def auc_score(y_bin: Any, score: Any) -> float | None:
    """Area under the ROC curve (trapezoids), or None when only one class is present."""
    import numpy as np

    y = np.asarray(y_bin)
    if y.min() == y.max():
        return None
    fpr, tpr, _ = roc_curve(y, score)
    return float(np.trapezoid(tpr, fpr))


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    y_score: Any = None,
    labels: Sequence[Any] | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics, artifacts) of a classifier's predictions; what `log_classification` logs."""
    import numpy as np

    for name, given in (("y_true", y_true), ("y_pred", y_pred)):
        if given is None or np.ndim(given) == 0:  # sklearn refuses scalars too
            raise InvalidValueError(name, f"{given!r}: give a sequence of labels, one per sample")
    yt = np.asarray(y_true).ravel()
    yp = np.asarray(y_pred).ravel()
    if yt.size == 0 or yt.size != yp.size:
        raise InvalidValueError(
            "y_pred", f"needs as many predictions as true labels ({yp.size} vs {yt.size}, not 0)"
        )
    labs = _labels(yt, yp, labels)
    cm = confusion_matrix(yt, yp, labs)
    stats = _prf(cm)
    metrics: dict[str, float] = {"accuracy": float(np.mean(yt == yp))}
    binary = len(labs) == 2
    if binary:
        for name in ("precision", "recall", "f1"):
            metrics[name] = float(stats[name][1])
    else:
        support = stats["support"]
        tp_sum, pred_sum, true_sum = stats["tp"].sum(), stats["pred"].sum(), support.sum()
        micro = {
            "precision": float(_divide(tp_sum, pred_sum)),
            "recall": float(_divide(tp_sum, true_sum)),
            "f1": float(_divide(2 * tp_sum, pred_sum + true_sum)),
        }
        for name in ("precision", "recall", "f1"):
            metrics[f"{name}_macro"] = float(np.mean(stats[name]))
            metrics[f"{name}_micro"] = micro[name]
            metrics[f"{name}_weighted"] = (
                float(np.average(stats[name], weights=support)) if true_sum else 0.0
            )
    label_list = [_plain(v) for v in labs.tolist()]
    artifacts: dict[str, Any] = {
        "confusion_matrix.json": {
            "gitxp.kind": "confusion_matrix",
            "labels": label_list,
            "matrix": cm.tolist(),
        }
    }
    if y_score is not None:
        metrics.update(_auc(yt, labs, np.asarray(y_score, dtype=np.float64), artifacts))
    return metrics, artifacts


def _auc(yt: Any, labs: Any, score: Any, artifacts: dict[str, Any]) -> dict[str, float]:
    import numpy as np

    n = yt.size
    curves: dict[str, Any] = {}
    out: dict[str, float] = {}
    if len(labs) == 2:
        if score.ndim == 2 and score.shape[1] == 2:
            score = score[:, 1]
        if score.ndim != 1 or score.size != n:
            raise InvalidValueError(
                "y_score", f"binary scores are one per sample (or two columns), got {score.shape}"
            )
        truth = (yt == labs[1]).astype(np.int64)
        value = auc_score(truth, score)
        if value is not None:
            out["auc"] = value
            fpr, tpr, thr = roc_curve(truth, score)
            curves[str(_plain(labs[1]))] = _curve(fpr, tpr, thr, value)
    else:
        if score.ndim != 2 or score.shape != (n, len(labs)):
            raise InvalidValueError(
                "y_score", f"multiclass scores need shape (samples, labels) = {(n, len(labs))}"
            )
        onehot = (yt[:, None] == labs[None, :]).astype(np.int64)
        per_class = []
        weights = []
        for j, label in enumerate(labs.tolist()):
            value = auc_score(onehot[:, j], score[:, j])
            if value is None:
                continue
            per_class.append(value)
            weights.append(onehot[:, j].sum())
            fpr, tpr, thr = roc_curve(onehot[:, j], score[:, j])
            curves[str(_plain(label))] = _curve(fpr, tpr, thr, value)
        if per_class and len(per_class) == len(labs):
            out["auc_macro"] = float(np.mean(per_class))
            out["auc_weighted"] = float(np.average(per_class, weights=weights))
            micro = auc_score(onehot.ravel(), score.ravel())
            if micro is not None:
                out["auc_micro"] = micro
    if curves:
        artifacts["roc_curve.json"] = {"gitxp.kind": "roc_curve", "curves": curves}
    return out


def _curve(fpr: Any, tpr: Any, thr: Any, auc: float) -> dict[str, Any]:
    from ..format.values import json_float

    return {
        "fpr": fpr.tolist(),
        "tpr": tpr.tolist(),
        "thresholds": [json_float(float(t)) for t in thr],
        "auc": auc,
    }


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def log_classification(
    y_true: Any,
    y_pred: Any,
    y_score: Any = None,
    labels: Sequence[Any] | None = None,
    prefix: str = "",
    *,
    step: int | None = None,
    run: Any = None,
) -> dict[str, float]:
    """Log accuracy, precision, recall, F1 (and AUC given scores) with the confusion
    matrix and ROC curves as JSON artifacts, into *run* or the active run.

    Returns the metrics logged (keys without *prefix*).
    """
    from ..tracking import fluent as tracking

    target = run or tracking.active_run()
    if target is None:
        raise NoActiveRunError("log_classification")
    metrics, artifacts = classification_metrics(y_true, y_pred, y_score, labels)
    target.log_metrics({f"{prefix}{k}": v for k, v in metrics.items()}, step=step)
    with tempfile.TemporaryDirectory(prefix="gitxp-classification-") as tmp:
        for name, content in artifacts.items():
            local = os.path.join(tmp, f"{prefix}{name}".replace("/", "_"))
            with open(local, "w", encoding="utf-8") as f:
                json.dump(content, f, allow_nan=False)
            target.log_artifact(local, f"{prefix}{name}")
    return metrics
