"""`mlflow.models` for gitxp: model signatures and the `ModelInfo` that `log_model` returns."""

from __future__ import annotations

from ..integrations.mlflow_models import ModelInfo, ModelSignature, infer_signature

__all__ = ["ModelInfo", "ModelSignature", "infer_signature"]
