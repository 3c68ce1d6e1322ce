"""`mlflow.pyfunc` for gitxp: load a logged model behind a generic `predict`."""

from __future__ import annotations

from ..integrations.mlflow_models import PyFuncModel
from ..integrations.mlflow_models import load_pyfunc as load_model

__all__ = ["PyFuncModel", "load_model"]
