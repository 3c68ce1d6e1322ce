"""Models as run artifacts: `mlflow.sklearn.log_model` / `load_model`, `mlflow.pyfunc.load_model`.

A logged model is a directory of artifacts named after the model:

    <name>/model.pkl            the estimator, pickled (protocol 5)
    <name>/model.json           flavor, library versions, signature, when, which run
    <name>/input_example.json   the input example, when one is given

Its URI is ``runs:/<run-id>/<name>``; its model id ``m-<run-id>-<name>``
(`models:/<model-id>` is accepted too). A model registered in gitxp's model
registry (`register_model`, or `log_model(..., registered_model_name=...)`)
loads as ``models:/NAME/N``, ``models:/NAME/latest`` or ``models:/NAME@ALIAS``
(`gitxp.integrations.mlflow_registry`). Loading unpickles, which runs code
from the file: load models only from runs you trust, as with MLflow.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import GitxpError, InvalidValueError
from ..format.registry import check_model_name
from . import mlflow_fluent as fluent
from . import mlflow_logging, mlflow_registry, mlflow_search

MODEL_FILE = "model.pkl"
META_FILE = "model.json"
EXAMPLE_FILE = "input_example.json"
FLAVOR = "sklearn"


@dataclass
class ModelSignature:
    """What a model takes and returns: column names/types or array shapes."""

    inputs: Any = None
    outputs: Any = None
    params: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "outputs": self.outputs}


@dataclass
class ModelInfo:
    """What `log_model` returns, like MLflow's `ModelInfo`."""

    model_uri: str
    model_id: str
    run_id: str
    artifact_path: str
    name: str
    flavors: dict[str, Any] = field(default_factory=dict)
    signature: ModelSignature | None = None
    registered_model_version: int | None = None


def _schema(data: Any) -> Any:
    """A JSON description of *data*: DataFrame columns and dtypes, or array dtype and shape."""
    if data is None:
        return None
    if hasattr(data, "dtypes") and hasattr(data, "columns"):
        return [{"name": str(c), "type": str(t)} for c, t in data.dtypes.items()]
    import numpy as np

    arr = np.asarray(data)
    return {"type": "tensor", "dtype": str(arr.dtype), "shape": [-1, *arr.shape[1:]]}


def infer_signature(model_input: Any = None, model_output: Any = None, params: Any = None) -> Any:
    """Describe a model's input and output from examples of them."""
    return ModelSignature(_schema(model_input), _schema(model_output), params)


def _example(data: Any) -> Any:
    if data is None:
        return None
    if hasattr(data, "to_dict"):
        return {"columns": [str(c) for c in data.columns], "data": data.head(5).values.tolist()}
    import numpy as np

    return np.asarray(data)[:5].tolist()


def save_model(
    sk_model: Any,
    path: str | os.PathLike[str],
    signature: ModelSignature | None = None,
    input_example: Any = None,
    **extra: Any,
) -> None:
    """Write *sk_model* as a model directory at *path* (which must not exist yet)."""
    import sklearn

    target = os.fspath(path)
    if os.path.exists(target):
        raise InvalidValueError("path", f"{target} already exists; choose a new directory")
    os.makedirs(target)
    with open(os.path.join(target, MODEL_FILE), "wb") as f:
        pickle.dump(sk_model, f, protocol=5)
    meta = {
        "flavor": FLAVOR,
        "loader": "gitxp.mlflow.sklearn",
        "serialization": "pickle",
        "sklearn_version": sklearn.__version__,
        "python_version": platform.python_version(),
        "model_class": f"{type(sk_model).__module__}.{type(sk_model).__qualname__}",
        "signature": signature.to_dict() if isinstance(signature, ModelSignature) else None,
        "utc_time_created": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        **{k: v for k, v in extra.items() if v is not None},
    }
    with open(os.path.join(target, META_FILE), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, default=str)
    example = _example(input_example)
    if example is not None:
        with open(os.path.join(target, EXAMPLE_FILE), "w", encoding="utf-8") as f:
            json.dump(example, f)


def log_model(
    sk_model: Any,
    artifact_path: str | None = None,
    *,
    name: str | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    registered_model_name: str | None = None,
    **_: Any,
) -> ModelInfo:
    """Store *sk_model* among the active run's artifacts; returns where it is. With
    *registered_model_name*, the model is also registered as a new version of that model
    in gitxp's registry (`ModelInfo.registered_model_version` is its MLflow number)."""
    model_name = (name or artifact_path or "model").strip("/")
    if not model_name:
        raise InvalidValueError("name", "a model needs a non-empty name")
    if registered_model_name is not None:
        check_model_name(registered_model_name)  # before anything is logged
    run = fluent.run_for("log_model")
    with tempfile.TemporaryDirectory(prefix="gitxp-model-") as tmp:
        local = os.path.join(tmp, "model")
        save_model(
            sk_model,
            local,
            signature=signature,
            input_example=input_example,
            run_id=run.id,
            artifact_path=model_name,
            registered_model_name=registered_model_name,
        )
        mlflow_logging.log_artifacts(local, model_name, run_id=run.id)
    version = None
    if registered_model_name is not None:
        registered = mlflow_registry.register(run.id, model_name, registered_model_name)
        version = int(registered.version)
    return ModelInfo(
        model_uri=f"runs:/{run.id}/{model_name}",
        model_id=f"m-{run.id}-{model_name}",
        run_id=run.id,
        artifact_path=model_name,
        name=model_name,
        flavors={FLAVOR: {"sklearn_version": _sklearn_version()}},
        signature=signature,
        registered_model_version=version,
    )


def register_model(model_uri: str, name: str, **_: Any) -> mlflow_registry.MlflowModelVersion:
    """Register the model at *model_uri* (``runs:/RUN/PATH``, a model id, or a registered
    ``models:/`` URI) as a new version of model *name*; MLflow's `mlflow.register_model`.
    The run must have ended, or be active in this process."""
    run_ref, path = parse_model_uri(model_uri)
    if run_ref is None:
        raise InvalidValueError(
            "model_uri",
            f"{model_uri!r} is not a run's model; give runs:/<run-id>/<path> (log_model "
            "returns it as model_info.model_uri)",
        )
    return mlflow_registry.register(run_ref, path, name)


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def parse_model_uri(uri: str) -> tuple[str | None, str]:
    """(run reference, artifact path) of a ``runs:/`` or ``models:/`` URI; (None, path) for a path."""
    if uri.startswith("runs:/"):
        rest = uri[len("runs:/") :].strip("/")
        run_ref, _, path = rest.partition("/")
        return run_ref, path
    if uri.startswith("models:/"):
        model_id = uri[len("models:/") :].strip("/")
        if not model_id.startswith("m-"):
            found = mlflow_registry.resolve_models_uri(model_id)
            if found is not None:
                return found
        return parse_model_id(model_id)
    if uri.startswith("file://"):
        return None, uri[len("file://") :]
    return None, uri


def parse_model_id(model_id: str) -> tuple[str, str]:
    """(run id, model name) of a model id ``m-<run-id>-<name>``."""
    from ..format.ids import is_run_id

    if not (model_id.startswith("m-") and len(model_id) > 29 and is_run_id(model_id[2:28])):
        raise GitxpError(
            f"{model_id!r} is not a gitxp model id (m-<run-id>-<name>, as log_model returns) "
            "nor a registered model (NAME/VERSION, NAME/latest or NAME@ALIAS)"
        )
    return model_id[2:28], model_id[29:]


def _download(run_ref: str, path: str, dst: str) -> str:
    """Copy the artifacts below *path* of a run into *dst*; returns the local directory."""
    with fluent.tracking_repo() as repo:
        record = repo.run(run_ref)
        record.download_artifacts(path or None, dst)
    return os.path.join(dst, path) if path else dst


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """Load a model logged with `log_model` (or saved with `save_model`) and return it."""
    mlflow_search.flush_active()
    run_ref, path = parse_model_uri(model_uri)
    if run_ref is None:
        return _load_dir(path)
    if dst_path is not None:
        return _load_dir(_download(run_ref, path, dst_path))
    with tempfile.TemporaryDirectory(prefix="gitxp-model-") as tmp:
        return _load_dir(_download(run_ref, path, tmp))


def _load_dir(directory: str) -> Any:
    model_file = os.path.join(directory, MODEL_FILE)
    if not os.path.isfile(model_file):
        raise GitxpError(f"no model at {directory}: {MODEL_FILE} is missing")
    with open(model_file, "rb") as f:
        return pickle.load(f)


class PyFuncModel:
    """A loaded model with MLflow's generic `predict(data)`."""

    def __init__(self, model: Any, uri: str) -> None:
        self._model = model
        self.model_uri = uri

    def predict(self, data: Any, params: Any = None) -> Any:
        return self._model.predict(data)

    def unwrap_python_model(self) -> Any:
        return self._model

    def __repr__(self) -> str:
        return f"<gitxp.mlflow.pyfunc.PyFuncModel {self.model_uri} {type(self._model).__name__}>"


def load_pyfunc(model_uri: str, dst_path: str | None = None, **_: Any) -> PyFuncModel:
    """Load a logged model behind MLflow's generic `predict` interface."""
    return PyFuncModel(load_model(model_uri, dst_path), model_uri)


def set_logged_model_tags(model_id: str, tags: dict[str, Any]) -> None:
    """Tag a logged model: stored as run tags ``model.<name>.<key>``."""
    from .mlflow_client import MlflowClient

    run_id, name = parse_model_id(model_id)
    MlflowClient()._edit(run_id, {f"model.{name}.{k}": v for k, v in tags.items()})
