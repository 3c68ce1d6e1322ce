"""MLflow's fluent tracking API (`mlflow.start_run`, `mlflow.log_metric`, ...) recording gitxp runs.

`import gitxp.mlflow as mlflow` makes MLflow code record into the git
repository of the current directory. Differences from MLflow, on purpose:

- the tracking URI: a local directory inside a git repository selects that
  repository; any other URI (a server, sqlite, databricks) is ignored with a
  warning, since the repository is the store;
- experiments are named, not numbered: an experiment's id is its name, and
  MLflow's default experiment "0" is gitxp's "default";
- params keep their type in storage; every MLflow-facing read returns them
  as text, as MLflow does;
- `log_metric` without a step takes the key's next step (MLflow uses 0),
  so repeated calls draw a curve.

This module keeps the fluent API's state: where runs go (the tracking URI),
the current experiment, and the stack of active runs with their start and
end. The logging calls are in mlflow_logging, reading runs back in
mlflow_search; gitxp.mlflow gathers them under MLflow's names.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ..errors import GitxpError, InvalidValueError
from ..format.ids import usable_run_name
from .mlflow_entities import (
    DEFAULT_EXPERIMENT,
    TAG_NOTE,
    TAG_PARENT,
    TAG_RUN_NAME,
    Experiment,
    Run,
    experiment_name,
    run_from_row,
)

if TYPE_CHECKING:
    from ..git.repository import GitRepo
    from ..store.repo import Repo
    from ..tracking.run import Run as GitxpRun

log = logging.getLogger("gitxp.integrations.mlflow_fluent")

_runs: ContextVar[tuple[ActiveRun, ...]] = ContextVar("gitxp_mlflow_active_runs", default=())
_global: dict[str, Any] = {"uri": None, "experiment": None, "warned": set()}


# -- where runs go -----------------------------------------------------------------
def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Choose the repository runs are recorded in (a local path or file: URI)."""
    _global["uri"] = None if uri is None else str(uri)


def get_tracking_uri() -> str:
    """The directory whose git repository receives runs (the current directory by default)."""
    return tracking_path()


def tracking_path() -> str:
    """The directory whose repository the tracking URI selects (warns once about others)."""
    uri = _global["uri"] or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if uri.startswith("file:"):
        uri = uri[len("file:") :]
        if uri.startswith("//"):
            uri = uri[2:]
    if not uri:
        return os.getcwd()
    if "://" in uri or uri.split(":", 1)[0] in ("sqlite", "databricks", "http", "https", "uc"):
        warn_once(
            uri,
            "gitxp.mlflow: tracking URI %r ignored; runs are recorded in the git "
            "repository at %s (set a local path to choose another)",
            uri,
            os.getcwd(),
        )
        return os.getcwd()
    path = os.path.abspath(uri)
    # MLflow's habit is a store directory inside the project (./mlruns): use its repository
    while not os.path.isdir(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def warn_once(key: str, message: str, *args: Any) -> None:
    """Log a warning the first time *key* comes up in this process, not again."""
    if key not in _global["warned"]:
        _global["warned"].add(key)
        log.warning(message, *args)


def tracking_repo() -> Repo:
    """The gitxp repository runs are recorded in and read from."""
    from ..store.repo import open as open_repo

    return open_repo(tracking_path())


# -- experiments -----------------------------------------------------------------------
def current_experiment() -> str:
    """The experiment new runs go to: set_experiment's, else MLflow's or gitxp's variables."""
    return (
        _global["experiment"]
        or os.environ.get("MLFLOW_EXPERIMENT_NAME")
        or experiment_name(os.environ.get("MLFLOW_EXPERIMENT_ID"))
        or os.environ.get("GITXP_EXPERIMENT")
        or DEFAULT_EXPERIMENT
    )


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make *experiment_name* (or the experiment with that id, i.e. name) the current one."""
    from .mlflow_entities import experiment_name as name_of

    name = experiment_name or name_of(experiment_id)
    if not name or not str(name).strip():
        raise InvalidValueError("experiment", "give set_experiment() a name or an id")
    _global["experiment"] = str(name).strip()
    return Experiment(experiment_id=_global["experiment"], name=_global["experiment"])


def create_experiment(name: str, artifact_location: str | None = None, tags: Any = None) -> str:
    """Experiments need no creation in gitxp; returns the id (the name) to use."""
    if not name or not str(name).strip():
        raise InvalidValueError("experiment", "an experiment needs a name")
    return str(name).strip()


def get_experiment_by_name(name: str) -> Experiment | None:
    """The experiment called *name*, or None when no run was recorded in it yet."""
    with tracking_repo() as repo:
        known = set(repo.experiments())
    if name in known or name == _global["experiment"]:
        return Experiment(experiment_id=name, name=name)
    return None


def get_experiment(experiment_id: str) -> Experiment:
    """The experiment with that id (its name; "0" is the default experiment)."""
    name = experiment_name(experiment_id) or DEFAULT_EXPERIMENT
    return Experiment(experiment_id=name, name=name)


def search_experiments(**_: Any) -> list[Experiment]:
    """Every experiment that has runs."""
    with tracking_repo() as repo:
        return [Experiment(experiment_id=n, name=n) for n in repo.experiments()]


# -- runs --------------------------------------------------------------------------------
def active_stack() -> tuple[ActiveRun, ...]:
    """This thread's or asyncio task's runs, innermost last (kept like gitxp's, see gitxp.tracking.context)."""
    return _runs.get()


class ActiveRun:
    """The run `start_run` returns: MLflow-shaped `info`/`data`, and a context manager."""

    def __init__(self, run: GitxpRun, resumed: bool = False) -> None:
        self.gitxp_run = run
        self.resumed = resumed

    @property
    def info(self) -> Any:
        """MLflow's RunInfo of the run as it is now."""
        return self._entity().info

    @property
    def data(self) -> Any:
        """MLflow's RunData (params, metrics, tags) of the run as it is now."""
        return self._entity().data

    def _entity(self) -> Run:
        """The MLflow-shaped Run, from the live run's state (buffered points included)."""
        run = self.gitxp_run
        return run_from_row(run.live_row(), run.notes or None)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "KILLED"
        else:
            status = "FAILED"
        _end(self, status, None if exc_type is None else f"{exc_type.__name__}: {exc}")

    def __repr__(self) -> str:
        return f"<gitxp.mlflow.ActiveRun {self.gitxp_run.id} {self.gitxp_run.name!r}>"


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start (or with *run_id*, resume) a run; use it as a context manager."""
    from ..git.repository import GitRepo
    from ..tracking import context, fluent
    from ..tracking.run import Run as GitxpRun

    stack = active_stack()
    if stack and not nested:
        raise GitxpError(
            f"run {stack[-1].gitxp_run.id} is already active; to start a nested run call "
            "start_run(nested=True), or end it first with end_run()"
        )
    launched = os.environ.get(fluent.ENV_RUN_ID)
    resumed = False
    if launched and not stack and run_id is None:
        # inside `gitxp run`: record into the run that command created, as gitxp.start_run does
        run = fluent.start_run(tags=tags, notes=description)
        if run_name:
            apply_tags(run, {TAG_RUN_NAME: run_name})
        active = ActiveRun(run)
        _runs.set((*stack, active))
        return active
    git = GitRepo.discover(tracking_path())
    try:
        if run_id is not None:
            with tracking_repo() as repo:
                ref, _ = repo.resolve(run_id)
            run = GitxpRun(git, _join=ref.rsplit("/", 1)[-1])
            run._set_meta(status="RUNNING", end_time=None)
            resumed = True
        else:
            inner = stack[-1].gitxp_run if stack else None
            run = _new_run(
                git, inner, experiment_id, run_name, nested, parent_run_id, tags, description
            )
    except BaseException:
        git.close()
        raise
    # active for gitxp too, so gitxp.log_metric(...) and friends act on it
    context.push_active(run)
    active = ActiveRun(run, resumed)
    _runs.set((*stack, active))
    return active


def _new_run(
    git: GitRepo,
    inner: GitxpRun | None,
    experiment_id: str | None,
    run_name: str | None,
    nested: bool,
    parent_run_id: str | None,
    tags: Mapping[str, Any] | None,
    description: str | None,
) -> GitxpRun:
    """A new gitxp run for start_run's arguments; *inner* is the innermost active run, if any.

    MLflow's reserved tags (run name, note, parent) become the gitxp concepts.
    """
    from ..tracking.options import RunOptions
    from ..tracking.run import Run as GitxpRun

    tags = dict(tags or {})
    # "my run" -> my-run: gitxp names are shell-safe and never look like an id
    name = usable_run_name(run_name or tags.pop(TAG_RUN_NAME, None))
    notes = description or tags.pop(TAG_NOTE, None)
    parent = parent_run_id or tags.pop(TAG_PARENT, None)
    if parent is None and nested and inner is not None:
        parent = inner.id
    experiment = experiment_name(experiment_id)
    if experiment is None and inner is not None and _global["experiment"] is None:
        experiment = inner.experiment  # nested runs stay with the parent
    options = RunOptions(
        experiment=experiment or current_experiment(),
        name=name,
        tags=tags,
        notes=notes,
        extra_meta={"parent": parent} if parent else None,
    )
    return GitxpRun(git, options)


def _end(active: ActiveRun, status: str, error: str | None = None) -> None:
    """End *active* with *status* and take it off the stack; remembered for last_active_run."""
    stack = active_stack()
    if active in stack:
        _runs.set(tuple(a for a in stack if a is not active))
    run = active.gitxp_run
    if active.resumed:
        # a resumed run ends here; a run joined from `gitxp run` is ended by that command
        run._joined = False
    run.end(status, error)
    _global["last"] = run.id


def end_run(status: str = "FINISHED") -> None:
    """End the active run (no-op when there is none)."""
    stack = active_stack()
    if stack:
        _end(stack[-1], status)


def active_run() -> ActiveRun | None:
    """The innermost active run, or None."""
    stack = active_stack()
    return stack[-1] if stack else None


def last_ended() -> str | None:
    """The id of the run most recently ended in this process, if any."""
    last: str | None = _global.get("last")
    return last


def run_for(call: str, run_id: str | None = None) -> GitxpRun:
    """The run a fluent *call* writes to: the active one with *run_id*, else the innermost.

    With no active run one is started, as MLflow does on the first logging call.
    """
    stack = active_stack()
    if run_id is not None:
        for active in stack:
            if active.gitxp_run.id == run_id:
                return active.gitxp_run
        raise GitxpError(
            f"{call}(run_id={run_id!r}): only active runs can be written through the fluent "
            "API; use MlflowClient for finished ones"
        )
    if stack:
        return stack[-1].gitxp_run
    # MLflow starts a run implicitly on the first logging call
    return start_run().gitxp_run


def apply_tags(run: GitxpRun, tags: Mapping[str, Any]) -> None:
    """Set tags, turning MLflow's reserved ones into the gitxp concept they stand for."""
    plain = {}
    for key, value in tags.items():
        if key == TAG_RUN_NAME:
            name = usable_run_name(str(value))
            if name:
                run.name = name
                run._set_meta(name=name)
        elif key == TAG_NOTE:
            run._notes = str(value)
            run._set_meta()
        elif key == TAG_PARENT:
            run._set_meta(parent=str(value))
        else:
            plain[key] = value
    if plain:
        run.set_tags(plain)
