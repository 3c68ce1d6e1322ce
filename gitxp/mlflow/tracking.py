"""`mlflow.tracking` for gitxp: the `MlflowClient` subset."""

from __future__ import annotations

from ..integrations.mlflow_client import MlflowClient

__all__ = ["MlflowClient"]
