"""Ray Tune: every trial of a tuning job as a gitxp run (`GitxpLoggerCallback`).

::

    from ray import tune
    from gitxp.ray import GitxpLoggerCallback

    tuner = tune.Tuner(
        train_fn,
        param_space={"lr": tune.grid_search([0.001, 0.01, 0.1])},
        run_config=tune.RunConfig(callbacks=[GitxpLoggerCallback(experiment="lr-grid")]),
    )
    tuner.fit()

The callback runs on the Ray driver (the process that calls `fit()`), which
is the only writer: trials on any node send their results to the driver,
and the driver records them in the repository at or above its working
directory (*repo*). What lands in each trial's run (named after the trial,
e.g. ``train_fn_1c2d3_00000``): the trial's config as params; every
reported number as a metric series, stepped by ``training_iteration``
(nested dicts flattened with ``/``; Ray's bookkeeping such as ``pid``,
``timestamp`` or ``date`` left out); tags ``ray.trial_id``,
``ray.trial_name``, ``ray.experiment`` and ``ray.status``. A trial that
ends normally (or that a scheduler stops early) is FINISHED; one that
raised is FAILED with its error; one still running when the tuning job
stops is KILLED. The work tree is captured once, for the first trial.
Needs Ray Tune (`pip install 'gitxp[ray]'`).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._frameworks import log_params, require, safe_key, to_number, warn
from .trial_runs import TrialRuns

if TYPE_CHECKING:
    from ..tracking.run import Run

__all__ = ["GitxpLoggerCallback", "ray_logger_base"]

# Ray's bookkeeping in every result: not metrics of the trial
SKIPPED_KEYS = frozenset(
    [
        "config",
        "pid",
        "timestamp",
        "date",
        "hostname",
        "node_ip",
        "trial_id",
        "experiment_id",
        "experiment_tag",
        "done",
        "training_iteration",
        "iterations_since_restore",
        "time_since_restore",
        "timesteps_since_restore",
        "checkpoint_dir_name",
        "should_checkpoint",
    ]
)


def ray_logger_base() -> type:
    """`ray.tune.logger.LoggerCallback`, or a one-line MissingExtraError naming the extra."""
    module = require("ray.tune.logger", "gitxp.ray", "ray", "ray[tune]")
    return module.LoggerCallback  # type: ignore[no-any-return]


class _Recorder:
    """The trial → run bookkeeping of `GitxpLoggerCallback`, apart from Ray's base class."""

    def __init__(
        self,
        experiment: str | None,
        metrics: Iterable[str] | None,
        repo: str | os.PathLike[str] | None,
        tags: Mapping[str, Any] | None,
    ) -> None:
        self.experiment = experiment
        self.metrics = None if metrics is None else frozenset(metrics)
        self.tags = dict(tags or {})
        self.repo = repo
        self.trial_runs = TrialRuns(repo)
        self.runs: dict[str, Run] = {}
        self.lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """The settings only: Ray pickles the callbacks with the tuner (no runs, no locks)."""
        return {"args": (self.experiment, self.metrics, self.repo, self.tags)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(*state["args"])  # type: ignore[misc]

    def start(self, trial: Any) -> None:
        with self.lock:
            if trial.trial_id in self.runs:
                return  # a trial restarted (after a failure, from a checkpoint): same run
        tags = {
            **self.tags,
            "ray.trial_id": trial.trial_id,
            "ray.trial_name": str(trial),
            "ray.experiment": trial.experiment_dir_name or "",
        }
        run = self.trial_runs.start(self.experiment, str(trial), tags=tags)
        log_params(run, _flat(trial.config or {}), "trial config")
        with self.lock:
            self.runs[trial.trial_id] = run

    def result(self, trial: Any, result: Mapping[str, Any]) -> None:
        with self.lock:
            run = self.runs.get(trial.trial_id)
        if run is None:
            self.start(trial)
            run = self.runs[trial.trial_id]
        step = result.get("training_iteration")
        values: dict[str, float] = {}
        for key, value in _flat(result, skip=SKIPPED_KEYS).items():
            if self.metrics is not None and key not in self.metrics:
                continue
            number = to_number(value)
            if number is not None and math.isfinite(number):
                values[safe_key(key)] = number
        if values:
            run.log_metrics(values, step=int(step) if isinstance(step, int) else None)

    def end(self, trial: Any, status: str, error: str | None = None) -> None:
        with self.lock:
            run = self.runs.pop(trial.trial_id, None)
        if run is None:
            return
        try:  # Ray's own status of the trial, which it sets after the callbacks
            run.set_tag("ray.status", "ERROR" if status == "FAILED" else "TERMINATED")
        except Exception as exc:  # never let bookkeeping stop the tuning job
            warn(f"trial {trial}: status tag not recorded: {exc}")
        run.end(status, error)

    def end_all(self, status: str) -> None:
        with self.lock:
            runs, self.runs = list(self.runs.values()), {}
        for run in runs:
            run.end(status, "the tuning job stopped before the trial ended")


def _flat(values: Mapping[str, Any], prefix: str = "", skip: Iterable[str] = ()) -> dict[str, Any]:
    """*values* with nested dicts flattened into ``a/b`` keys (top-level *skip* keys left out)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if not prefix and key in skip:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{name}/"))
        else:
            out[name] = value
    return out


def _error_of(trial: Any) -> str:
    """`Type: message` of the exception that ended *trial*: the last line of Ray's error.txt."""
    lines: list[str] = []
    try:
        with open(trial.error_file, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except (OSError, TypeError):  # no error file (yet): Ray had no trial directory
        pass
    if not lines or lines[-1].startswith("Failure #"):
        return "the trial failed (see error.txt in Ray's trial directory)"
    return lines[-1][:2000]


def _make_class() -> type:
    base = ray_logger_base()

    class GitxpLoggerCallback(base):  # type: ignore[valid-type,misc]
        """Records each Ray Tune trial as a gitxp run, from the driver.

        *experiment*: the runs' experiment (default: `$GITXP_EXPERIMENT` or
        "default"); *metrics*: the result keys to record (default: every
        number); *repo*: the repository at or above it (default: cwd);
        *tags*: more tags for every trial's run.
        """

        def __init__(
            self,
            experiment: str | None = None,
            *,
            metrics: Iterable[str] | None = None,
            repo: str | os.PathLike[str] | None = None,
            tags: Mapping[str, Any] | None = None,
        ) -> None:
            super().__init__()
            self._gitxp = _Recorder(experiment, metrics, repo, tags)

        def log_trial_start(self, trial: Any) -> None:
            self._gitxp.start(trial)

        def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
            self._gitxp.result(trial, result)

        def log_trial_end(self, trial: Any, failed: bool = False) -> None:
            if failed:
                self._gitxp.end(trial, "FAILED", _error_of(trial))
            else:
                self._gitxp.end(trial, "FINISHED")

        def on_experiment_end(self, trials: Any, **info: Any) -> None:
            super().on_experiment_end(trials, **info)
            self._gitxp.end_all("KILLED")

    GitxpLoggerCallback.__module__ = "gitxp.ray"
    return GitxpLoggerCallback


GitxpLoggerCallback = _make_class()
