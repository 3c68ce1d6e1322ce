"""Optuna: every trial of a study as a gitxp run (`GitxpCallback`, `track_in_gitxp`).

::

    import optuna
    from gitxp.optuna import GitxpCallback

    callback = GitxpCallback(metric_name="acc")

    @callback.track_in_gitxp()          # optional: log inside the objective
    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        for epoch in range(10):
            acc = train_one_epoch(lr)
            gitxp.log_metric("loss", ...)    # into this trial's run
            trial.report(acc, epoch)
        return acc

    study = optuna.create_study(study_name="lr-search", direction="maximize")
    study.optimize(objective, n_trials=20, callbacks=[callback])

What lands in each trial's run (experiment: *experiment*, default the
study's name; name ``<study>-<trial number>``): the trial's params as
params; its value as the metric *metric_name* (a list of names for a
multi-objective study; one name is numbered ``name_0``, ``name_1``...); the
values given to ``trial.report`` as the series ``intermediate_value``;
tags ``optuna.study``, ``optuna.trial``, ``optuna.state`` (COMPLETE,
PRUNED or FAIL), ``optuna.direction``, ``optuna.datetime_start``,
``optuna.datetime_complete``, ``optuna.distribution.<param>`` (Optuna's
JSON) and the trial's user attrs. A FAIL trial's run is FAILED; COMPLETE
and PRUNED ones are FINISHED (a pruned trial stopped early, by design).
Needs Optuna (`pip install 'gitxp[optuna]'`).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidValueError
from ._frameworks import log_params, require, safe_key, warn
from .trial_runs import TrialRuns, tag_text

if TYPE_CHECKING:
    from ..tracking.run import Run

__all__ = ["RUN_ID_ATTR", "GitxpCallback", "trial_tags"]

log = logging.getLogger("gitxp.integrations.optuna")

RUN_ID_ATTR = "gitxp:run_id"  # the trial's system attr naming its run (track_in_gitxp)
INTERMEDIATE = "intermediate_value"


def optuna_module() -> Any:
    """The `optuna` package, or a one-line MissingExtraError naming the extra."""
    return require("optuna", "gitxp.optuna", "optuna")


class GitxpCallback:
    """Records each finished trial of `study.optimize(..., callbacks=[this])` as a gitxp run.

    *metric_name*: the name of the objective's value (a list of names for
    a multi-objective study). *experiment*: the runs' experiment (default:
    the study's name). *repo*: the repository at or above it (default: cwd).
    Trials' user attrs become tags (*tag_trial_user_attrs*), and with
    *tag_study_user_attrs* the study's too.
    """

    def __init__(
        self,
        metric_name: str | Sequence[str] = "value",
        experiment: str | None = None,
        *,
        repo: str | os.PathLike[str] | None = None,
        tag_study_user_attrs: bool = False,
        tag_trial_user_attrs: bool = True,
    ) -> None:
        optuna_module()
        if isinstance(metric_name, str):
            names: str | list[str] = safe_key(metric_name)
        elif isinstance(metric_name, Sequence) and all(isinstance(n, str) for n in metric_name):
            names = [safe_key(n) for n in metric_name]
        else:
            raise InvalidValueError(
                "metric_name", f"{metric_name!r}: give a name, or a list of names (one per value)"
            )
        if not names:
            raise InvalidValueError("metric_name", "the list of names is empty")
        self._metric_name = names
        self._experiment = experiment
        self._tag_study = tag_study_user_attrs
        self._tag_trial = tag_trial_user_attrs
        self._runs = TrialRuns(repo)
        self._lock = threading.Lock()
        self._live: dict[tuple[str, int], Run] = {}  # trials whose objective is tracked
        self._ended: set[tuple[str, int]] = set()  # tracked trials whose run ended with them

    # -- what study.optimize calls ------------------------------------------------
    def __call__(self, study: Any, trial: Any) -> None:
        """Record the finished *trial* of *study* (Optuna calls this after each trial)."""
        key = (study.study_name, trial.number)
        with self._lock:
            run = self._live.pop(key, None)
            if run is None and key in self._ended:
                self._ended.discard(key)
                return  # its run ended with the objective's exception
        if run is None:
            run = self._start(study, trial.number)
        state = trial.state.name
        self._record(run, study, trial, state)
        if state == "FAIL":
            # Optuna keeps no reason; it logs it (track_in_gitxp records the exception)
            run.end("FAILED", "the trial failed: see Optuna's log for why")
        else:
            run.end("FINISHED")

    def track_in_gitxp(self) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
        """A decorator for the objective: what it logs goes into its trial's run.

        The run starts when the objective does and is the active run inside
        it (`gitxp.log_metric(...)`, the framework callbacks); this callback,
        which must be among `study.optimize(..., callbacks=[...])`, then adds
        the trial's params, value and state and ends it. The run's id is the
        trial's system attr ``gitxp:run_id``.
        """

        def decorator(func: Callable[[Any], Any]) -> Callable[[Any], Any]:
            @functools.wraps(func)
            def wrapper(trial: Any) -> Any:
                self._require_in_optimize()
                return self._tracked(func, trial)

            return wrapper

        return decorator

    # -- internals -------------------------------------------------------------------
    def _tracked(self, func: Callable[[Any], Any], trial: Any) -> Any:
        """Run the objective *func* on *trial* with the trial's run active."""
        from ..tracking.context import activate

        optuna = optuna_module()
        study = trial.study
        key = (study.study_name, trial.number)
        run = self._start(study, trial.number)
        trial.storage.set_trial_system_attr(trial._trial_id, RUN_ID_ATTR, run.id)
        with self._lock:
            self._live[key] = run
        try:
            with activate(run):
                return func(trial)
        except optuna.TrialPruned:
            raise  # a PRUNED trial: the callback records it
        except BaseException as exc:
            # Optuna calls the callbacks only for the exceptions in `catch`: end the run here
            with self._lock:
                self._live.pop(key, None)
                self._ended.add(key)
            self._record(run, study, trial, "FAIL")
            interrupted = isinstance(exc, KeyboardInterrupt)
            run.end("KILLED" if interrupted else "FAILED", f"{type(exc).__name__}: {exc}")
            raise

    def _require_in_optimize(self) -> None:
        """Raise unless the calling objective runs in a study.optimize() given this callback."""
        frame = sys._getframe(2)
        while frame is not None:
            in_optuna = frame.f_globals.get("__name__") == "optuna.study._optimize"
            if in_optuna and "callbacks" in frame.f_code.co_varnames:  # the optimize loop
                callbacks = frame.f_locals.get("callbacks")
                if isinstance(callbacks, (list, tuple)):
                    if any(c is self for c in callbacks):
                        return
                elif callbacks is not None:
                    return  # an iterator: not ours to consume
                break
            frame = frame.f_back  # type: ignore[assignment]
        raise InvalidValueError(
            "track_in_gitxp()",
            "the objective must run in study.optimize(objective, callbacks=[callback]) "
            "with the same GitxpCallback that decorated it",
        )

    def _start(self, study: Any, number: int) -> Run:
        experiment = self._experiment or study.study_name
        tags = {"optuna.study": study.study_name, "optuna.trial": str(number)}
        return self._runs.start(experiment, f"{study.study_name}-{number}", tags=tags)

    def _record(self, run: Run, study: Any, trial: Any, state: str) -> None:
        """Params, values, intermediate values and tags of *trial* into *run*."""
        log_params(run, trial.params, "trial params")
        values = getattr(trial, "values", None)
        if values is not None and state == "COMPLETE":
            names = self._names(len(values))
            for name, value in zip(names, values, strict=True):
                if isinstance(value, (int, float)) and math.isfinite(value):
                    run.log_metric(name, float(value))
        for step, value in sorted(getattr(trial, "intermediate_values", {}).items()):
            if isinstance(value, (int, float)) and math.isfinite(value):
                run.log_metric(INTERMEDIATE, float(value), step=int(step))
        tags = trial_tags(study, trial, state)
        extra: dict[str, Any] = {}
        if self._tag_trial:
            extra.update(trial.user_attrs)
        if self._tag_study:
            extra.update(study.user_attrs)
        tags.update({safe_key(k): tag_text(v) for k, v in extra.items()})
        try:
            run.set_tags(tags)
        except Exception as exc:  # a tag gitxp refuses must not stop the study
            warn(f"trial {trial.number}: tags not recorded: {exc}")

    def _names(self, count: int) -> list[str]:
        """The metric names of *count* objective values."""
        if isinstance(self._metric_name, str):
            if count == 1:
                return [self._metric_name]
            return [f"{self._metric_name}_{i}" for i in range(count)]
        if len(self._metric_name) != count:
            raise InvalidValueError(
                "metric_name",
                f"{len(self._metric_name)} names for {count} objective values; "
                "give one name per value, or a single name to number them",
            )
        return list(self._metric_name)


def trial_tags(study: Any, trial: Any, state: str) -> dict[str, str]:
    """The ``optuna.*`` tags of *trial*: study, number, state, direction, times, distributions."""
    from optuna.distributions import distribution_to_json

    directions = [d.name for d in study.directions]
    tags = {
        "optuna.study": study.study_name,
        "optuna.trial": str(trial.number),
        "optuna.state": state,
        "optuna.direction": ",".join(directions),
    }
    for field in ("datetime_start", "datetime_complete"):
        when = getattr(trial, field, None)
        if when is not None:
            tags[f"optuna.{field}"] = when.isoformat()
    for param, dist in (getattr(trial, "distributions", None) or {}).items():
        tags[safe_key(f"optuna.distribution.{param}")] = tag_text(distribution_to_json(dist))
    return tags
