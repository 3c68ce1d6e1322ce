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

from ._errors import (
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
    NoActiveRunError,
    NotARepositoryError,
    NotReproducibleError,
    ParamConflictError,
    RefUpdateError,
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
    "NoActiveRunError",
    "NotARepositoryError",
    "NotReproducibleError",
    "ParamConflictError",
    "RefUpdateError",
    "RemoteError",
    "Repo",
    "Run",
    "RunActiveError",
    "RunFinishedError",
    "RunNotFoundError",
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
    "Run": "run",
    "Repo": "repo",
    "open": "repo",
    "RunRecord": "record",
    "start_run": "tracking",
    "active_run": "tracking",
    "end_run": "tracking",
    "log_param": "tracking",
    "log_params": "tracking",
    "log_metric": "tracking",
    "log_metrics": "tracking",
    "log_metric_array": "tracking",
    "log_artifact": "tracking",
    "log_text": "tracking",
    "log_dict": "tracking",
    "log_classification": "classification",
    "set_tag": "tracking",
    "set_tags": "tracking",
    "note": "tracking",
    "launch": "launcher",
    "diff": "comparison",
    "compare": "comparison",
    "checkout": "worktree",
    "reproduce": "reproduction",
    "rename": "manage",
    "rm": "manage",
    "gc": "manage",
    "branch": "manage",
}

if TYPE_CHECKING:
    from .classification import log_classification
    from .comparison import compare, diff
    from .launcher import launch
    from .manage import branch, gc, rename, rm
    from .record import RunRecord
    from .repo import Repo, open
    from .reproduction import reproduce
    from .run import Run
    from .tracking import (
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
    from .worktree import checkout


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
