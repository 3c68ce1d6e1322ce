"""`mlflow.pyfunc` for gitxp: load a logged model behind a generic `predict`.
With MLflow installed: `mlflow.pyfunc` itself (`gitxp.integrations.mlflow_swap`)."""

from __future__ import annotations

from ..integrations.mlflow_swap import adopt

if not adopt(__name__, "mlflow.pyfunc"):
    from ..integrations.mlflow_models import PyFuncModel
    from ..integrations.mlflow_models import load_pyfunc as load_model

    __all__ = ["PyFuncModel", "load_model"]
