"""Reading runs back through MLflow's fluent API: `get_run`, `get_metric_history`, `search_runs`.

Runs come back MLflow-shaped (mlflow_entities); the active runs are
checkpointed first, so a run reads what it logged so far.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import InvalidValueError
from .mlflow_entities import (
    DEFAULT_EXPERIMENT,
    Metric,
    Run,
    experiment_name,
    mlflow_tags,
    param_text,
    run_from_row,
)
from .mlflow_fluent import (
    ActiveRun,
    active_run,
    active_stack,
    current_experiment,
    last_ended,
    tracking_repo,
)

if TYPE_CHECKING:
    import pandas as pd

RUN_VIEW_ACTIVE_ONLY = 1
MAX_RESULTS = 100_000


def flush_active() -> None:
    """Checkpoint the active runs, so what they logged so far can be read back."""
    for active in active_stack():
        active.gitxp_run.checkpoint()


def get_run(run_id: str) -> Run:
    """An MLflow-shaped `Run` (`.info`, `.data.params/metrics/tags`)."""
    flush_active()
    with tracking_repo() as repo:
        record = repo.run(run_id)
        row = dict(record._row)
        row["status"] = record.status
        return run_from_row(row, record.notes or None)


def last_active_run() -> Run | ActiveRun | None:
    """The active run, else the run most recently ended in this process."""
    active = active_run()
    if active is not None:
        return active
    last = last_ended()
    return get_run(last) if last else None


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    """Every point of one metric, ordered by step."""
    flush_active()
    with tracking_repo() as repo:
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
    """Listing rows of the runs search_runs asks for, with MLflow's tags and statuses."""
    from ..store.query import select

    flush_active()
    if isinstance(experiment_ids, str):
        experiment_ids = [experiment_ids]
    names: list[str] | None = None
    if experiment_ids or experiment_names:
        names = [experiment_name(e) or DEFAULT_EXPERIMENT for e in experiment_ids or []]
        names += list(experiment_names or [])
    elif not search_all_experiments:
        names = [current_experiment()]
    with tracking_repo() as repo:
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
