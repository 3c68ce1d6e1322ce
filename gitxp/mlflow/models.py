"""`mlflow.models` for gitxp: model signatures and the `ModelInfo` that `log_model` returns.
With MLflow installed: `mlflow.models` itself (`gitxp.integrations.mlflow_swap`)."""

from __future__ import annotations

from ..integrations.mlflow_swap import adopt

if not adopt(__name__, "mlflow.models"):
    from ..integrations.mlflow_models import ModelInfo, ModelSignature, infer_signature

    __all__ = ["ModelInfo", "ModelSignature", "infer_signature"]
