"""scikit-learn: record estimators' params, fit time, score and the fitted model.

Explicitly, around one fit::

    import gitxp.sklearn

    model = gitxp.sklearn.fit(LogisticRegression(C=0.5), X_train, y_train,
                              X_test=X_test, y_test=y_test)

or for an estimator you fitted yourself::

    gitxp.sklearn.log_estimator(model, X_test, y_test, fit_time=12.5)

or for every fit in the program::

    gitxp.sklearn.autolog()
    LogisticRegression().fit(X, y)          # recorded

What lands in the run: the estimator's `get_params()` (deep: a pipeline's
`clf__C` too) plus `estimator_class` as params; `fit_time_seconds`,
`training_score` and, given test data, `test_score` as metrics (the
estimator's own `score`: accuracy for classifiers, R² for regressors); the
fitted estimator pickled as the artifact `model.pkl` (load it only from
runs you trust: unpickling runs code).

Each call joins the active run; without one, each fit gets its own run.
Only the outermost fit is recorded: the fits a Pipeline or GridSearchCV
makes internally are not. Needs scikit-learn (`pip install 'gitxp[sklearn]'`).
"""

from __future__ import annotations

import functools
import os
import pickle
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import Any

from ._frameworks import RunHandle, clean_params, log_params, require, to_number, warn

__all__ = ["autolog", "fit", "log_estimator"]

MODEL_ARTIFACT = "model.pkl"

_local = threading.local()  # depth of nested fit() calls in this thread
_patched: dict[type, Any] = {}  # class -> its original fit
_settings: dict[str, Any] = {}
_patch_lock = threading.Lock()


def _sklearn() -> Any:
    return require("sklearn", "gitxp.sklearn", "sklearn", "scikit-learn")


def _class_name(estimator: Any) -> str:
    cls = type(estimator)
    return f"{cls.__module__.split('.')[0]}.{cls.__qualname__}"


def log_estimator(
    estimator: Any,
    X: Any = None,
    y: Any = None,
    *,
    run: Any = None,
    fit_time: float | None = None,
    score_name: str = "test_score",
    log_model: bool = True,
    experiment: str | None = None,
    name: str | None = None,
) -> Any:
    """Record a fitted *estimator*: params, *fit_time*, its score on (*X*, *y*), the model.

    Writes into *run*, else the active run, else a new run (named *name* in
    *experiment*) that is ended before returning. Returns the run.
    """
    _sklearn()
    handle = RunHandle(run, experiment=experiment, name=name)
    target = handle.get()
    try:
        _record(target, estimator, fit_time, [(score_name, X, y)], log_model)
    except BaseException as exc:
        handle.end("FAILED", f"{type(exc).__name__}: {exc}")
        raise
    handle.end("FINISHED")
    return target


def fit(
    estimator: Any,
    X: Any,
    y: Any = None,
    *,
    X_test: Any = None,
    y_test: Any = None,
    run: Any = None,
    log_model: bool = True,
    experiment: str | None = None,
    name: str | None = None,
    **fit_params: Any,
) -> Any:
    """Fit *estimator* on (*X*, *y*) and record it; return the fitted estimator.

    Records params, `fit_time_seconds`, `training_score` on the training
    data, `test_score` on (*X_test*, *y_test*) when given, and the model.
    A fit that raises ends a run started here as FAILED.
    """
    _sklearn()
    handle = RunHandle(run, experiment=experiment, name=name)
    target = handle.get()
    try:
        _record_params(target, estimator)
        depth = getattr(_local, "depth", 0)
        _local.depth = depth + 1  # an autolog hook must not record this fit a second time
        try:
            started = time.perf_counter()
            estimator.fit(X, y, **fit_params)
            took = time.perf_counter() - started
        finally:
            _local.depth = depth
        scores = [("training_score", X, y), ("test_score", X_test, y_test)]
        _record(target, estimator, took, scores, log_model, params=False)
    except BaseException as exc:
        handle.end("FAILED", f"{type(exc).__name__}: {exc}")
        raise
    handle.end("FINISHED")
    return estimator


def _record_params(run: Any, estimator: Any) -> None:
    params = clean_params(estimator.get_params(deep=True))
    params["estimator_class"] = _class_name(estimator)
    log_params(run, params, f"params of {_class_name(estimator)}")


def _record(
    run: Any,
    estimator: Any,
    fit_time: float | None,
    scores: list[tuple[str, Any, Any]],
    log_model: bool,
    params: bool = True,
) -> None:
    if params:
        _record_params(run, estimator)
    metrics: dict[str, float] = {}
    if fit_time is not None:
        metrics["fit_time_seconds"] = float(fit_time)
    for key, X, y in scores:
        if X is None or not hasattr(estimator, "score"):
            continue
        if y is None and _needs_y(estimator):
            continue
        value = to_number(estimator.score(X) if y is None else estimator.score(X, y))
        if value is not None:
            metrics[key] = value
    if metrics:
        run.log_metrics(metrics)
    if log_model:
        with tempfile.TemporaryDirectory(prefix="gitxp-sklearn-") as tmp:
            path = os.path.join(tmp, MODEL_ARTIFACT)
            with open(path, "wb") as f:
                pickle.dump(estimator, f, protocol=pickle.HIGHEST_PROTOCOL)
            run.log_artifact(path, MODEL_ARTIFACT)


def _needs_y(estimator: Any) -> bool:
    """Classifiers and regressors score against labels; clusterers and density models do not."""
    kind = getattr(estimator, "_estimator_type", None)
    if kind is None:
        tags = getattr(estimator, "__sklearn_tags__", None)
        kind = getattr(tags(), "estimator_type", None) if callable(tags) else None
    return kind in ("classifier", "regressor")


# -- autolog ------------------------------------------------------------------
def autolog(*, log_models: bool = True, training_score: bool = True, disable: bool = False) -> None:
    """Record every `fit()` of a scikit-learn estimator from now on (`disable=True` stops).

    Patches `fit` of every estimator scikit-learn ships (importing all of
    them takes a few seconds, once). Estimator classes you define yourself
    are covered when they inherit `fit` from a scikit-learn class.
    *training_score* scores each fitted model on its training data (one
    extra predict); *log_models* stores each fitted model.
    """
    _sklearn()
    with _patch_lock:
        if disable:
            for cls, original in _patched.items():
                setattr(cls, "fit", original)  # noqa: B010
            _patched.clear()
            return
        _settings.update(log_models=log_models, training_score=training_score)
        if _patched:
            return
        from sklearn.utils import all_estimators

        for _, cls in all_estimators():
            # patch the class that defines fit (GridSearchCV's is BaseSearchCV's)
            owner = next((c for c in cls.__mro__ if "fit" in c.__dict__), None)
            if owner is None or owner in _patched or not owner.__module__.startswith("sklearn"):
                continue
            original = owner.__dict__["fit"]
            if callable(original):
                _patched[owner] = original
                setattr(owner, "fit", _autolog_fit(original))  # noqa: B010


def _autolog_fit(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        depth = getattr(_local, "depth", 0)
        if depth:  # inside another fit (Pipeline, GridSearchCV, gitxp.sklearn.fit)
            return original(self, *args, **kwargs)
        _local.depth = 1
        try:
            started = time.perf_counter()
            result = original(self, *args, **kwargs)
            took = time.perf_counter() - started
        finally:
            _local.depth = 0
        try:
            _autolog_record(self, args, kwargs, took)
        except Exception as exc:  # recording must never break the user's training
            warn(f"autolog could not record the fit of {_class_name(self)}: {exc}")
        return result

    fit.__gitxp_autolog__ = True  # type: ignore[attr-defined]
    return fit


def _autolog_record(
    estimator: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], took: float
) -> None:
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    scores = [("training_score", X, y)] if _settings.get("training_score", True) else []
    handle = RunHandle()
    run = handle.get()
    _local.depth = 1  # score() may call fitted sub-estimators; nothing in here is a user fit
    try:
        _record(run, estimator, took, scores, bool(_settings.get("log_models", True)))
    finally:
        _local.depth = 0
        handle.end("FINISHED")
