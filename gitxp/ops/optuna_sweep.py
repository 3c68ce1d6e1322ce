"""`gitxp sweep --optuna`: an Optuna study whose trials are `gitxp run`s of a command.

::

    gitxp sweep --optuna --study lr-search --trials 20 --sampler tpe \\
        -p 'lr=loguniform(1e-4,1e-1)' -p 'layers=int(1,4)' -p 'opt=choice(adam,sgd)' \\
        --metric acc --goal max -- python train.py --lr {lr}

Optuna samples each trial's params from the search space; the command runs
as one `gitxp run` with them as the run's params (and ``{key}`` in its
arguments replaced, as in a grid sweep); the last value of the run's
``--metric`` is told to Optuna, which uses it to sample the next trials. A
run that fails, is killed, or leaves no finite value of the metric is a
FAIL trial. The study is kept in Optuna's storage (see
`gitxp.integrations.optuna_study`), so sweeps started at once on several
machines, each in its own clone, share one study: each samples knowing the
others' trials and records its runs locally, to push as usual.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..errors import InvalidValueError, UsageError
from .sweep import SWEEP_TAG, SweepResult, new_sweep_id, rank, render_command

if TYPE_CHECKING:
    from ..tracking.options import RunOptions

_CALL = re.compile(r"([a-z]+)\((.*)\)", re.DOTALL)
_EXAMPLES = "e.g. lr=loguniform(1e-4,1e-1), layers=int(1,4), opt=choice(adam,sgd)"


@dataclass(frozen=True)
class ParamSpec:
    """How one param is sampled: kind "float" (low, high, log), "int" (+ step) or "choice"."""

    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: int | None = None
    choices: tuple[Any, ...] = ()

    def distribution(self) -> Any:
        """The same, as an Optuna distribution."""
        from ..integrations.optuna_study import distribution

        return distribution(
            self.kind, self.low, self.high, log=self.log, step=self.step, choices=self.choices
        )


def _numbers(spec: str, args: list[str], kind: type, count: tuple[int, int]) -> list[Any]:
    if not count[0] <= len(args) <= count[1]:
        raise UsageError(f"-p {spec!r}: expected {count[0]} numbers; {_EXAMPLES}")
    try:
        return [kind(a) if kind is int else float(a) for a in args]
    except ValueError:
        raise UsageError(f"-p {spec!r}: {', '.join(args)} are not all numbers") from None


def parse_param(spec: str) -> tuple[str, ParamSpec]:
    """One ``-p KEY=SPEC``: loguniform(a,b), uniform(a,b), int(a,b[,step|log]), choice(...).

    A plain value (or V1,V2,...) is a choice, as in a grid sweep.
    """
    from .pairs import parse_scalar

    key, sep, text = spec.partition("=")
    key, text = key.strip(), text.strip()
    if not sep or not key or not text:
        raise UsageError(f"-p {spec!r} must look like KEY=SPEC, {_EXAMPLES}")
    call = _CALL.fullmatch(text)
    if call is None:
        return key, ParamSpec(
            "choice", choices=tuple(parse_scalar(v.strip()) for v in text.split(","))
        )
    func, args = call.group(1), [a.strip() for a in call.group(2).split(",")]
    if func in ("uniform", "loguniform"):
        low, high = _numbers(spec, args, float, (2, 2))
        if not low < high or (func == "loguniform" and low <= 0):
            need = "0 < low < high" if func == "loguniform" else "low < high"
            raise UsageError(f"-p {spec!r}: {func} needs {need}")
        return key, ParamSpec("float", low, high, log=func == "loguniform")
    if func == "int":
        log = len(args) == 3 and args[2] == "log"
        low, high, *rest = _numbers(spec, args[:2] if log else args, int, (2, 3))
        if not low <= high or (log and low < 1) or (rest and rest[0] < 1):
            raise UsageError(f"-p {spec!r}: int needs low <= high (>= 1 with log), step >= 1")
        return key, ParamSpec("int", low, high, log=log, step=rest[0] if rest else None)
    if func == "choice":
        if not any(args):
            raise UsageError(f"-p {spec!r}: choice needs at least one value")
        return key, ParamSpec("choice", choices=tuple(parse_scalar(a) for a in args))
    raise UsageError(f"-p {spec!r}: unknown {func}(); {_EXAMPLES}")


def parse_space(specs: Sequence[str]) -> dict[str, ParamSpec]:
    """The search space of ``-p KEY=SPEC`` options (see `parse_param`)."""
    space: dict[str, ParamSpec] = {}
    for spec in specs:
        key, param = parse_param(spec)
        if key in space:
            raise UsageError(f"-p {key!r} is given twice")
        space[key] = param
    if not space:
        raise UsageError(f"give at least one -p KEY=SPEC to search over, {_EXAMPLES}")
    return space


@dataclass
class StudySettings:
    """Which Optuna study a sweep works on, and how it samples."""

    study: str
    trials: int
    metric: str
    goal: str = "max"
    sampler: str = "tpe"
    seed: int | None = None
    storage: str | None = None


@dataclass
class _Progress:
    """What the trial workers share: how many trials were started, the results, a stop flag."""

    total: int
    started: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def claim(self) -> bool:
        with self.lock:
            if self.stop.is_set() or self.started >= self.total:
                return False
            self.started += 1
            return True


def optuna_sweep(
    cmd: Sequence[str],
    space: Mapping[str, ParamSpec],
    options: RunOptions,
    settings: StudySettings,
    *,
    name: str | None = None,
    jobs: int = 1,
    repo: str | os.PathLike[str] = ".",
    stream: bool = False,
    on_done: Callable[[dict[str, Any], int, int], None] | None = None,
) -> SweepResult:
    """Run *settings.trials* trials of the study, *jobs* at a time; the runs ranked by the metric.

    A failing trial does not stop the others; a killed one (Ctrl-C) stops
    the sweep after the trials under way (`SweepResult.interrupted`).
    """
    from ..integrations import optuna_study

    if not cmd:
        raise UsageError("no command given; e.g. gitxp sweep --optuna ... -- python train.py")
    if jobs < 1 or settings.trials < 1:
        raise InvalidValueError("jobs" if jobs < 1 else "trials", "must be at least 1")
    if settings.goal not in ("max", "min"):
        raise InvalidValueError("goal", f"{settings.goal!r} must be max or min")
    from ..git.repository import GitRepo

    with GitRepo.discover(repo) as git:
        git.require_work_tree("gitxp sweep")
        default_path = optuna_study.default_storage_path(git.gitxp_dir(), settings.study)
    dists = {key: spec.distribution() for key, spec in space.items()}
    where = optuna_study.storage(settings.storage, default_path)
    sampler = optuna_study.sampler(settings.sampler, settings.seed)
    study = optuna_study.open_study(settings.study, where, sampler, settings.goal)
    optuna_study.check_space(study, dists)
    sweep_id = new_sweep_id()
    base_tags = {SWEEP_TAG: sweep_id, "optuna.study": settings.study}
    base_tags.update(optuna_study.space_tags(dists))
    progress = _Progress(settings.trials)

    def trial_loop() -> None:
        while progress.claim():
            entry = _one_trial(study, dists, cmd, options, base_tags, name, repo, stream, settings)
            with progress.lock:
                progress.runs.append(entry)
                if entry["status"] == "KILLED":
                    progress.stop.set()
                if on_done is not None:
                    on_done(entry, len(progress.runs), progress.total)

    _run_workers(trial_loop, min(jobs, settings.trials), progress.stop)
    runs = sorted(progress.runs, key=lambda r: r["index"])
    out = SweepResult(sweep_id=sweep_id, runs=runs, metric=settings.metric, goal=settings.goal)
    out.ranked = rank(runs, repo, settings.metric, settings.goal)
    out.interrupted = progress.stop.is_set()
    out.study = study_summary(study)
    return out


def study_summary(study: Any) -> dict[str, Any]:
    """The study as every sweep on it left it: its trial count and best trial (with its run)."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = None
    if complete:
        trial = study.best_trial
        best = {"trial": trial.number, "value": trial.value}
        best["run_id"] = trial.user_attrs.get("gitxp_run_id")
    return {"name": study.study_name, "trials": len(trials), "best": best}


def _run_workers(loop: Callable[[], None], jobs: int, stop: threading.Event) -> None:
    """*loop* in this thread (one job: `gitxp run`'s signal handling) or in *jobs* threads."""
    if jobs == 1:
        loop()
        return
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            loop()
        except BaseException as exc:  # raised again in this thread, below
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=guarded, name=f"gitxp-trial-{i}") for i in range(jobs)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:  # at a terminal the runs' commands got Ctrl-C too
        stop.set()
        for thread in threads:
            thread.join()
        raise
    if errors:
        raise errors[0]


def _one_trial(
    study: Any,
    dists: Mapping[str, Any],
    cmd: Sequence[str],
    options: RunOptions,
    base_tags: Mapping[str, str],
    name: str | None,
    repo: str | os.PathLike[str],
    stream: bool,
    settings: StudySettings,
) -> dict[str, Any]:
    """Ask the study for a trial, run it as one `gitxp run`, tell the study how it went."""
    from ..integrations.optuna_study import trial_state
    from .launch import ProcessOptions, launch_run

    trial = study.ask(dict(dists))
    point = dict(trial.params)
    tags = {**base_tags, "optuna.trial": str(trial.number)}
    this = replace(
        options, name=f"{name or settings.study}-{trial.number}", params=point, tags=tags
    )
    try:
        result = launch_run(
            render_command(cmd, point), this, ProcessOptions(stream=stream), repo=repo
        )
    except BaseException:
        study.tell(trial, state=trial_state("FAIL"))  # the command could not start
        raise
    value = (
        _metric_value(repo, result.run_id, settings.metric) if result.status == "FINISHED" else None
    )
    trial.set_user_attr("gitxp_run_id", result.run_id)
    if value is None:
        study.tell(trial, state=trial_state("FAIL"))
    else:
        study.tell(trial, value)
    state = "FAIL" if value is None else "COMPLETE"
    _tag_state(repo, result.run_id, state)
    return {
        "index": trial.number,
        "trial": trial.number,
        "state": state,
        "params": point,
        "run_id": result.run_id,
        "name": result.name,
        "status": result.status,
        "exit_code": result.exit_code,
        "wall_time": result.wall_time,
    }


def _metric_value(repo: str | os.PathLike[str], run_id: str, metric: str) -> float | None:
    """The last value of *metric* in run *run_id*, if it is a finite number."""
    from ..store.repo import open as open_repo

    with open_repo(repo) as handle:
        value = handle.run(run_id).last_metrics.get(metric)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _tag_state(repo: str | os.PathLike[str], run_id: str, state: str) -> None:
    """Record the trial's Optuna state on its (ended) run as the tag ``optuna.state``."""
    from .manage import tag

    tag(run_id, {"optuna.state": state}, repo=repo)
