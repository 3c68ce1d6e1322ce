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
"""

from __future__ import annotations

import os
import sys
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
    Metric,
    Run,
    experiment_name,
    mlflow_tags,
    param_text,
    run_from_row,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..store.repo import Repo
    from ..tracking.run import Run as GitxpRun

RUN_VIEW_ACTIVE_ONLY = 1
MAX_RESULTS = 100_000

_runs: ContextVar[tuple[ActiveRun, ...]] = ContextVar("gitxp_mlflow_active_runs", default=())
_global: dict[str, Any] = {"uri": None, "experiment": None, "warned": set()}


# -- where runs go -----------------------------------------------------------------
def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Choose the repository runs are recorded in (a local path or file: URI)."""
    _global["uri"] = None if uri is None else str(uri)


def get_tracking_uri() -> str:
    """The directory whose git repository receives runs (the current directory by default)."""
    return _repo_path()


def _repo_path() -> str:
    uri = _global["uri"] or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if uri.startswith("file:"):
        uri = uri[len("file:") :]
        if uri.startswith("//"):
            uri = uri[2:]
    if not uri:
        return os.getcwd()
    if "://" in uri or uri.split(":", 1)[0] in ("sqlite", "databricks", "http", "https", "uc"):
        if uri not in _global["warned"]:
            _global["warned"].add(uri)
            print(
                f"gitxp.mlflow: tracking URI {uri!r} ignored; runs are recorded in the git "
                f"repository at {os.getcwd()} (set a local path to choose another)",
                file=sys.stderr,
            )
        return os.getcwd()
    path = os.path.abspath(uri)
    # MLflow's habit is a store directory inside the project (./mlruns): use its repository
    while not os.path.isdir(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _repo() -> Repo:
    from ..store.repo import open as open_repo

    return open_repo(_repo_path())


# -- experiments -----------------------------------------------------------------------
def _current_experiment() -> str:
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
    with _repo() as repo:
        known = set(repo.experiments())
    if name in known or name == _global["experiment"]:
        return Experiment(experiment_id=name, name=name)
    return None


def get_experiment(experiment_id: str) -> Experiment:
    name = experiment_name(experiment_id) or DEFAULT_EXPERIMENT
    return Experiment(experiment_id=name, name=name)


def search_experiments(**_: Any) -> list[Experiment]:
    """Every experiment that has runs."""
    with _repo() as repo:
        return [Experiment(experiment_id=n, name=n) for n in repo.experiments()]


# -- runs --------------------------------------------------------------------------------
def _stack() -> tuple[ActiveRun, ...]:
    """This thread's or asyncio task's runs, innermost last (kept like gitxp's, see gitxp.tracking.context)."""
    return _runs.get()


class ActiveRun:
    """The run `start_run` returns: MLflow-shaped `info`/`data`, and a context manager."""

    def __init__(self, run: GitxpRun, resumed: bool = False) -> None:
        self.gitxp_run = run
        self.resumed = resumed

    @property
    def info(self) -> Any:
        return self._entity().info

    @property
    def data(self) -> Any:
        return self._entity().data

    def _entity(self) -> Run:
        run = self.gitxp_run
        meta = run._meta
        row = {
            "id": run.id,
            "name": run.name,
            "experiment": run.experiment,
            "status": meta.get("status"),
            "start_time": meta.get("start_time"),
            "end_time": meta.get("end_time"),
            "user": meta.get("user"),
            "parent": meta.get("parent"),
            "params": run.params,
            "tags": run.tags,
            "metrics": {k: s.last for k, s in run._series.items() if s.last is not None}
            | _pending_last(run),
        }
        return run_from_row(row, run._notes or None)

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


def _pending_last(run: GitxpRun) -> dict[str, float]:
    """Last buffered values not yet folded into the series summaries."""
    out = {}
    for key, s in run._series.items():
        if len(s.vals):
            out[key] = s.vals[-1]
    return out


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
    from ..tracking.options import RunOptions
    from ..tracking.run import Run as GitxpRun

    stack = _stack()
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
    git = GitRepo.discover(_repo_path())
    try:
        if run_id is not None:
            with _repo() as repo:
                ref, _ = repo.resolve(run_id)
            run = GitxpRun(git, _join=ref.rsplit("/", 1)[-1])
            run._set_meta(status="RUNNING", end_time=None)
            resumed = True
        else:
            tags = dict(tags or {})
            # "my run" -> my-run: gitxp names are shell-safe and never look like an id
            name = usable_run_name(run_name or tags.pop(TAG_RUN_NAME, None))
            notes = description or tags.pop(TAG_NOTE, None)
            parent = parent_run_id or tags.pop(TAG_PARENT, None)
            if parent is None and nested and stack:
                parent = stack[-1].gitxp_run.id
            experiment = experiment_name(experiment_id)
            if experiment is None and stack and _global["experiment"] is None:
                experiment = stack[-1].gitxp_run.experiment  # nested runs stay with the parent
            experiment = experiment or _current_experiment()
            options = RunOptions(
                experiment=experiment,
                name=name,
                tags=tags,
                notes=notes,
                extra_meta={"parent": parent} if parent else None,
            )
            run = GitxpRun(git, options)
    except BaseException:
        git.close()
        raise
    # active for gitxp too, so gitxp.log_metric(...) and friends act on it
    context.push_active(run)
    active = ActiveRun(run, resumed)
    _runs.set((*stack, active))
    return active


def _end(active: ActiveRun, status: str, error: str | None = None) -> None:
    stack = _stack()
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
    stack = _stack()
    if stack:
        _end(stack[-1], status)


def active_run() -> ActiveRun | None:
    """The innermost active run, or None."""
    stack = _stack()
    return stack[-1] if stack else None


def last_active_run() -> Run | ActiveRun | None:
    """The active run, else the run most recently ended in this process."""
    active = active_run()
    if active is not None:
        return active
    return get_run(_global["last"]) if _global.get("last") else None


def _require(call: str, run_id: str | None = None) -> GitxpRun:
    stack = _stack()
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


# -- logging -------------------------------------------------------------------------------
def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Record one param; returns the value, as MLflow does."""
    _require("log_param").log_param(key, value)
    return value


def log_params(
    params: Mapping[str, Any], synchronous: bool | None = None, run_id: str | None = None
) -> None:
    _require("log_params", run_id).log_params(params)


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
    **_: Any,
) -> None:
    """Record one metric point (MLflow's optional dataset/model arguments are ignored)."""
    _require("log_metric", run_id).log_metric(key, value, step, timestamp)


def log_metrics(
    metrics: Mapping[str, float],
    step: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
    timestamp: int | None = None,
    **_: Any,
) -> None:
    _require("log_metrics", run_id).log_metrics(metrics, step, timestamp)


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


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> None:
    apply_tags(_require("set_tag"), {key: value})


def set_tags(tags: Mapping[str, Any], synchronous: bool | None = None) -> None:
    apply_tags(_require("set_tags"), tags)


def delete_tag(key: str) -> None:
    run = _require("delete_tag")
    run._tags.pop(key, None)
    run._set_meta()


# -- artifacts ----------------------------------------------------------------------------------
def _artifact_name(artifact_path: str | None, filename: str) -> str:
    if artifact_path:
        return f"{artifact_path.strip('/')}/{filename}"
    return filename


def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> None:
    """Store a file among the run's artifacts (under *artifact_path* when given)."""
    path = os.fspath(local_path)
    _require("log_artifact", run_id).log_artifact(
        path, _artifact_name(artifact_path, os.path.basename(path))
    )


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> None:
    """Store every file below *local_dir* (under *artifact_path* when given)."""
    run = _require("log_artifacts", run_id)
    root = os.fspath(local_dir)
    if not os.path.isdir(root):
        raise InvalidValueError("local_dir", f"{root} is not a directory")
    if artifact_path and artifact_path.strip("/"):
        run.log_artifact(root, artifact_path.strip("/"))
        return
    # no artifact path: the directory's contents land at the artifact root, entry by entry
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_symlink():
            run.log_artifact(entry.path, entry.name)


def _log_bytes(call: str, data: bytes, artifact_file: str, run_id: str | None = None) -> None:
    from ..store.artifacts import log_content

    log_content(_require(call, run_id)._writer, data, artifact_file)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    """Store *text* as the artifact *artifact_file*."""
    _require("log_text", run_id).log_text(text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Store *dictionary* as JSON, or YAML when *artifact_file* ends in .yaml/.yml."""
    _require("log_dict", run_id).log_dict(dictionary, artifact_file)


def log_figure(
    figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None, **_: Any
) -> None:
    """Store a matplotlib figure (or a plotly one as .html) as an image artifact."""
    import io

    buf = io.BytesIO()
    if hasattr(figure, "savefig"):
        ext = os.path.splitext(artifact_file)[1].lstrip(".") or "png"
        figure.savefig(buf, format=ext, **(save_kwargs or {}))
        data = buf.getvalue()
    elif hasattr(figure, "to_html"):
        data = figure.to_html(**(save_kwargs or {})).encode("utf-8")
    else:
        raise InvalidValueError(
            "figure", f"expected a matplotlib or plotly figure, got {type(figure).__name__}"
        )
    _log_bytes("log_figure", data, artifact_file)


def log_image(image: Any, artifact_file: str, **_: Any) -> None:
    """Store a numpy array or PIL image as a PNG artifact (needs Pillow)."""
    import io

    try:
        from PIL import Image
    except ImportError:
        raise GitxpError("log_image() needs Pillow; install pillow") from None
    img = image if hasattr(image, "save") else Image.fromarray(image)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    _log_bytes("log_image", buf.getvalue(), artifact_file)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """The URI of the active run's artifacts (``runs:/<id>/<path>``), as MLflow names them."""
    run = _require("get_artifact_uri")
    return f"runs:/{run.id}/{artifact_path.strip('/')}" if artifact_path else f"runs:/{run.id}"


def autolog(*args: Any, **kwargs: Any) -> None:
    """Accepted so scripts run, but nothing is logged automatically: log explicitly."""
    if "autolog" not in _global["warned"]:
        _global["warned"].add("autolog")
        print(
            "gitxp.mlflow: autolog() records nothing; log params and metrics explicitly "
            "(gitxp.log_classification logs a classifier's metrics in one call)",
            file=sys.stderr,
        )


# -- reading -----------------------------------------------------------------------------------
def _flush_active() -> None:
    for active in _stack():
        active.gitxp_run.checkpoint()


def get_run(run_id: str) -> Run:
    """An MLflow-shaped `Run` (`.info`, `.data.params/metrics/tags`)."""
    _flush_active()
    with _repo() as repo:
        record = repo.run(run_id)
        row = dict(record._row)
        row["status"] = record.status
        return run_from_row(row, record.notes or None)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    """Every point of one metric, ordered by step."""
    _flush_active()
    with _repo() as repo:
        record = repo.run(run_id)
        if key not in record.summary:
            return []
        frame = record.metric_history(key)
    return [
        Metric(key, float(v), int(t), int(s))
        for s, t, v in zip(frame["step"], frame["timestamp"], frame["value"], strict=True)
    ]


def _mlflow_rows(
    experiment_ids: list[str] | str | None,
    filter_string: str | None,
    max_results: int,
    order_by: list[str] | None,
    search_all_experiments: bool,
    experiment_names: list[str] | None,
) -> list[dict[str, Any]]:
    from ..store.query import select

    _flush_active()
    if isinstance(experiment_ids, str):
        experiment_ids = [experiment_ids]
    names: list[str] | None = None
    if experiment_ids or experiment_names:
        names = [experiment_name(e) or DEFAULT_EXPERIMENT for e in experiment_ids or []]
        names += list(experiment_names or [])
    elif not search_all_experiments:
        names = [_current_experiment()]
    with _repo() as repo:
        rows = repo.rows(experiment=names)
    for row in rows:
        # MLflow's reserved tags are filterable (tags.mlflow.runName = 'x')
        row["tags"] = mlflow_tags(row)
        row["status"] = "FAILED" if row["status"] == "CRASHED" else row["status"]
    rows = select(rows, filter_string or None, None, order_by or None)
    return rows[:max_results]


def search_runs(
    experiment_ids: list[str] | str | None = None,
    filter_string: str = "",
    run_view_type: int = RUN_VIEW_ACTIVE_ONLY,
    max_results: int = MAX_RESULTS,
    order_by: list[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: list[str] | None = None,
) -> pd.DataFrame | list[Run]:
    """Runs as a DataFrame with MLflow's columns (run_id, experiment_id, status,
    artifact_uri, start_time, end_time, metrics.*, params.*, tags.*), or a list.
    """
    rows = _mlflow_rows(
        experiment_ids,
        filter_string,
        max_results,
        order_by,
        search_all_experiments,
        experiment_names,
    )
    if output_format == "list":
        return [run_from_row(r) for r in rows]
    if output_format != "pandas":
        raise InvalidValueError("output_format", f"{output_format!r} must be 'pandas' or 'list'")
    return runs_frame(rows)


def runs_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The DataFrame MLflow's `search_runs` returns, built from listing rows."""
    import pandas as pd

    columns: dict[str, list[Any]] = {
        "run_id": [r["id"] for r in rows],
        "experiment_id": [r.get("experiment") for r in rows],
        "status": [r.get("status") for r in rows],
        "artifact_uri": [f"runs:/{r['id']}" for r in rows],
        "start_time": [r.get("start_time") for r in rows],
        "end_time": [r.get("end_time") for r in rows],
    }
    metric_keys = sorted({k for r in rows for k in (r.get("metrics") or {})})
    param_keys = sorted({k for r in rows for k in (r.get("params") or {})})
    tag_keys = sorted({k for r in rows for k in (r.get("tags") or {})})
    for key in metric_keys:
        columns[f"metrics.{key}"] = [
            float("nan") if (v := (r.get("metrics") or {}).get(key)) is None else v for r in rows
        ]
    for key in param_keys:
        columns[f"params.{key}"] = [
            None if key not in (r.get("params") or {}) else param_text(r["params"][key])
            for r in rows
        ]
    for key in tag_keys:
        columns[f"tags.{key}"] = [(r.get("tags") or {}).get(key) for r in rows]
    frame = pd.DataFrame(columns)
    for col in ("start_time", "end_time"):
        frame[col] = pd.to_datetime(frame[col].astype("float64"), unit="ms", utc=True)
    for key in metric_keys:
        frame[f"metrics.{key}"] = frame[f"metrics.{key}"].astype("float64")
    return frame
