"""`mlflow.tracking` for gitxp: the `MlflowClient` subset.
With MLflow installed: `mlflow.tracking` itself (`gitxp.integrations.mlflow_swap`)."""

from __future__ import annotations

from ..integrations.mlflow_swap import adopt

if not adopt(__name__, "mlflow.tracking"):
    from ..integrations.mlflow_client import MlflowClient

    __all__ = ["MlflowClient"]
