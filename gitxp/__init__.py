"""gitxp: a git-native, versioned store for machine-learning experiments.

Every run is a commit on its own ref (`refs/gitxp/runs/<id>`): params,
metrics (Parquet), environment, notes and artifacts, on top of the exact
code it ran. Start with::

    import gitxp

    with gitxp.start_run(experiment="iris", params={"lr": 0.1}) as run:
        for step in range(100):
            run.log_metric("loss", 1 / (step + 1))

    gitxp.open().runs()          # a pandas DataFrame of every run

Only light modules load at import time; pandas and pyarrow load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    AmbiguousRunError,
    ArtifactError,
    ArtifactIntegrityError,
    BareRepositoryError,
    CommandNotFoundError,
    ConfigError,
    CorruptRunError,
    FilterSyntaxError,
    GitxpError,
    InvalidValueError,
    MissingExtraError,
    ModelNotFoundError,
    NoActiveRunError,
    NotARepositoryError,
    NotReproducibleError,
    ParamConflictError,
    RefUpdateError,
    RegistryError,
    RemoteError,
    RunActiveError,
    RunFinishedError,
    RunNotFoundError,
    RunWriteError,
    UncommittedChangesError,
    UnsafePathError,
    UsageError,
)

__version__ = "0.1.0"

__all__ = [
    "AmbiguousRunError",
    "ArtifactError",
    "ArtifactIntegrityError",
    "BareRepositoryError",
    "CommandNotFoundError",
    "ConfigError",
    "CorruptRunError",
    "FilterSyntaxError",
    "GitxpError",
    "InvalidValueError",
    "MissingExtraError",
    "ModelNotFoundError",
    "NoActiveRunError",
    "NotARepositoryError",
    "NotReproducibleError",
    "ParamConflictError",
    "RefUpdateError",
    "RegistryError",
    "RemoteError",
    "Repo",
    "Run",
    "RunActiveError",
    "RunFinishedError",
    "RunNotFoundError",
    "RunOptions",
    "RunRecord",
    "RunWriteError",
    "UncommittedChangesError",
    "UnsafePathError",
    "UsageError",
    "__version__",
    "active_run",
    "branch",
    "checkout",
    "compare",
    "diff",
    "end_run",
    "gc",
    "launch",
    "log_artifact",
    "log_classification",
    "log_dict",
    "log_metric",
    "log_metric_array",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "note",
    "open",
    "rename",
    "reproduce",
    "rm",
    "set_tag",
    "set_tags",
    "start_run",
]

# public name -> module that defines it; loaded on first access (PEP 562)
_LAZY = {
    "Run": "tracking.run",
    "RunOptions": "tracking.options",
    "Repo": "store.repo",
    "open": "store.repo",
    "RunRecord": "store.record",
    "start_run": "tracking.fluent",
    "active_run": "tracking.fluent",
    "end_run": "tracking.fluent",
    "log_param": "tracking.fluent",
    "log_params": "tracking.fluent",
    "log_metric": "tracking.fluent",
    "log_metrics": "tracking.fluent",
    "log_metric_array": "tracking.fluent",
    "log_artifact": "tracking.fluent",
    "log_text": "tracking.fluent",
    "log_dict": "tracking.fluent",
    "log_classification": "integrations.classification",
    "set_tag": "tracking.fluent",
    "set_tags": "tracking.fluent",
    "note": "tracking.fluent",
    "launch": "ops.launch",
    "diff": "ops.compare",
    "compare": "ops.compare",
    "checkout": "ops.checkout",
    "reproduce": "ops.reproduce",
    "rename": "ops.manage",
    "rm": "ops.manage",
    "gc": "ops.manage",
    "branch": "ops.manage",
}

if TYPE_CHECKING:
    from .integrations.classification import log_classification
    from .ops.checkout import checkout
    from .ops.compare import compare, diff
    from .ops.launch import launch
    from .ops.manage import branch, gc, rename, rm
    from .ops.reproduce import reproduce
    from .store.record import RunRecord
    from .store.repo import Repo, open
    from .tracking.fluent import (
        active_run,
        end_run,
        log_artifact,
        log_dict,
        log_metric,
        log_metric_array,
        log_metrics,
        log_param,
        log_params,
        log_text,
        note,
        set_tag,
        set_tags,
        start_run,
    )
    from .tracking.options import RunOptions
    from .tracking.run import Run


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gitxp' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"gitxp.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
