"""`mlflow.entities` for gitxp: the MLflow-shaped objects runs are returned as.
With MLflow installed: `mlflow.entities` itself (`gitxp.integrations.mlflow_swap`)."""

from __future__ import annotations

from ..integrations.mlflow_swap import adopt

if not adopt(__name__, "mlflow.entities"):
    from ..integrations.mlflow_entities import Experiment, Metric, Run, RunData, RunInfo

    __all__ = ["Experiment", "Metric", "Run", "RunData", "RunInfo"]
