"""MLflow's tracking API, recording gitxp runs: change one import line.

    import gitxp.mlflow as mlflow

    mlflow.set_experiment("iris")
    with mlflow.start_run(run_name="baseline"):
        mlflow.log_params({"C": 1.0})
        mlflow.log_metric("accuracy", 0.97)

With MLflow installed this is MLflow itself, its tracking URI set to the
`gitxp:` plugin (unless you set one), so every MLflow call, flavor and
registry call records into gitxp. Without MLflow, or with
`GITXP_MLFLOW=builtin`, it is gitxp's built-in subset: runs land in the git
repository of the current directory (or the local path given to
`set_tracking_uri`). See docs/mlflow.md and docs/ecosystem.md.
"""

from __future__ import annotations

from typing import Any

from ..integrations import mlflow_swap as _swap

if _swap.full():
    _mlflow = _swap.bind()
    __all__ = list(getattr(_mlflow, "__all__", []))

    def __getattr__(name: str) -> Any:
        """Every name of MLflow itself."""
        return getattr(_mlflow, name)

    def __dir__() -> list[str]:
        return sorted(set(dir(_mlflow)))

else:
    from ..errors import GitxpError as MlflowException
    from ..integrations.mlflow_client import MlflowClient
    from ..integrations.mlflow_entities import Experiment, Metric, Run, RunData, RunInfo
    from ..integrations.mlflow_fluent import (
        ActiveRun,
        active_run,
        create_experiment,
        end_run,
        get_experiment,
        get_experiment_by_name,
        get_tracking_uri,
        search_experiments,
        set_experiment,
        set_tracking_uri,
        start_run,
    )
    from ..integrations.mlflow_logging import (
        autolog,
        delete_tag,
        get_artifact_uri,
        log_artifact,
        log_artifacts,
        log_dict,
        log_figure,
        log_image,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        set_tag,
        set_tags,
    )
    from ..integrations.mlflow_models import register_model, set_logged_model_tags
    from ..integrations.mlflow_search import (
        get_metric_history,
        get_run,
        last_active_run,
        search_runs,
    )
    from . import entities, models, pyfunc, sklearn, tracking

    __all__ = [
        "ActiveRun",
        "Experiment",
        "Metric",
        "MlflowClient",
        "MlflowException",
        "Run",
        "RunData",
        "RunInfo",
        "active_run",
        "autolog",
        "create_experiment",
        "delete_tag",
        "end_run",
        "entities",
        "get_artifact_uri",
        "get_experiment",
        "get_experiment_by_name",
        "get_metric_history",
        "get_run",
        "get_tracking_uri",
        "last_active_run",
        "log_artifact",
        "log_artifacts",
        "log_dict",
        "log_figure",
        "log_image",
        "log_metric",
        "log_metrics",
        "log_param",
        "log_params",
        "log_text",
        "models",
        "pyfunc",
        "register_model",
        "search_experiments",
        "search_runs",
        "set_experiment",
        "set_logged_model_tags",
        "set_tag",
        "set_tags",
        "set_tracking_uri",
        "sklearn",
        "start_run",
        "tracking",
    ]

    def __getattr__(name: str) -> Any:
        """A name outside the built-in subset: a one-line error saying what to do."""
        if name.startswith("__"):
            raise AttributeError(name)
        raise _swap.missing(name)
