"""`mlflow.entities` for gitxp: the MLflow-shaped objects runs are returned as."""

from __future__ import annotations

from ..integrations.mlflow_entities import Experiment, Metric, Run, RunData, RunInfo

__all__ = ["Experiment", "Metric", "Run", "RunData", "RunInfo"]
