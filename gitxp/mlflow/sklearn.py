"""`mlflow.sklearn` for gitxp: log a scikit-learn model as run artifacts and load it back.
With MLflow installed: `mlflow.sklearn` itself (`gitxp.integrations.mlflow_swap`)."""

from __future__ import annotations

from ..integrations.mlflow_swap import adopt

if not adopt(__name__, "mlflow.sklearn"):
    from ..integrations.mlflow_logging import autolog
    from ..integrations.mlflow_models import load_model, log_model, save_model

    __all__ = ["autolog", "load_model", "log_model", "save_model"]
