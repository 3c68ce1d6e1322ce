"""What `import gitxp.mlflow as mlflow` is: MLflow itself bound to gitxp, or the built-in subset.

With MLflow installed, `gitxp.mlflow` is MLflow (every name, every flavor,
the registry) with its tracking URI set to the `gitxp:` plugin for this
process, unless the user chose one (`MLFLOW_TRACKING_URI` or
`mlflow.set_tracking_uri` before the import); the registry follows the
tracking URI unless `MLFLOW_REGISTRY_URI` is set. Because it is the same
`mlflow` module, a leftover `import mlflow.sklearn` or `mlflow.autolog()`
records into gitxp too. Without MLflow, or with `GITXP_MLFLOW=builtin`,
it is gitxp's own subset (`gitxp.integrations.mlflow_fluent`, ...), and a
name outside it raises a one-line error saying how to get MLflow's full API.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from types import ModuleType

ENV = "GITXP_MLFLOW"  # "builtin": the built-in subset even when MLflow is installed
BUILTIN = "builtin"
URI = "gitxp:"
log = logging.getLogger("gitxp.integrations.mlflow_swap")


def full() -> bool:
    """True when `gitxp.mlflow` is MLflow itself: MLflow is installed and the user did not
    ask for the built-in subset with GITXP_MLFLOW=builtin."""
    if os.environ.get(ENV, "").strip().lower() == BUILTIN:
        return False
    try:
        return importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):
        return False


def bind() -> ModuleType:
    """MLflow, with its tracking URI set to `gitxp:` unless the user set one already."""
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    if not os.environ.get("MLFLOW_TRACKING_URI") and not tracking_utils.is_tracking_uri_set():  # type: ignore[no-untyped-call]
        mlflow.set_tracking_uri(URI)
        log.debug("gitxp.mlflow: MLflow's tracking URI set to %s", URI)
    return mlflow


def adopt(name: str, target: str) -> bool:
    """Make module *name* (a `gitxp.mlflow` submodule) MLflow's module *target* when
    `gitxp.mlflow` is MLflow itself; False (nothing done) for the built-in subset."""
    if not full():
        return False
    bind()
    sys.modules[name] = importlib.import_module(target)
    return True


def missing(name: str) -> AttributeError:
    """The error for a name the built-in subset lacks: one line, saying what to do."""
    if importlib.util.find_spec("mlflow") is not None:
        how = f"unset {ENV}={BUILTIN} to use MLflow's full API, recorded in gitxp"
    else:
        how = "pip install 'gitxp[mlflow]' for MLflow's full API, recorded in gitxp"
    return AttributeError(
        f"gitxp.mlflow.{name} is not in gitxp's built-in MLflow subset; {how} (docs/mlflow.md)"
    )


__all__ = ["BUILTIN", "ENV", "adopt", "bind", "full", "missing"]
