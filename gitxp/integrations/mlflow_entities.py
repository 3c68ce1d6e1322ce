"""MLflow-shaped result objects (`run.info.run_id`, `run.data.metrics`, ...) built from gitxp runs.

They carry MLflow's attribute names so code written against `mlflow.entities`
reads them unchanged. Params come out as strings, as MLflow returns them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# MLflow's reserved tags and the gitxp concept each one stands for
TAG_RUN_NAME = "mlflow.runName"
TAG_NOTE = "mlflow.note.content"
TAG_PARENT = "mlflow.parentRunId"
TAG_USER = "mlflow.user"
DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT = "default"


def param_text(value: Any) -> str:
    """A param as MLflow shows it: the text it was logged as."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value)
    return str(value)


def experiment_name(experiment_id: str | int | None) -> str | None:
    """gitxp experiments are named, not numbered: an experiment's id is its name.

    MLflow's default experiment (id "0") is gitxp's "default".
    """
    if experiment_id is None:
        return None
    text = str(experiment_id)
    return DEFAULT_EXPERIMENT if text == DEFAULT_EXPERIMENT_ID else text


@dataclass
class Metric:
    """One metric point, like `mlflow.entities.Metric`."""

    key: str
    value: float
    timestamp: int
    step: int


@dataclass
class RunInfo:
    """Like `mlflow.entities.RunInfo`."""

    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str = "active"

    @property
    def run_uuid(self) -> str:
        return self.run_id


@dataclass
class RunData:
    """Like `mlflow.entities.RunData`: last metric values, params as text, tags."""

    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    """Like `mlflow.entities.Run`."""

    info: RunInfo
    data: RunData


@dataclass
class Experiment:
    """Like `mlflow.entities.Experiment`; its id is its name."""

    experiment_id: str
    name: str
    artifact_location: str = ""
    lifecycle_stage: str = "active"
    tags: dict[str, str] = field(default_factory=dict)


def mlflow_status(status: str) -> str:
    """MLflow has no CRASHED or CORRUPT: a run whose process died, or whose files do not
    parse, is FAILED there."""
    return "FAILED" if status in ("CRASHED", "CORRUPT") else status


def mlflow_tags(row: dict[str, Any]) -> dict[str, str]:
    """The run's tags plus MLflow's reserved tags for the concepts gitxp keeps elsewhere."""
    tags = dict(row.get("tags") or {})
    tags[TAG_RUN_NAME] = row.get("name") or ""
    if row.get("parent"):
        tags[TAG_PARENT] = row["parent"]
    if row.get("user"):
        tags.setdefault(TAG_USER, row["user"])
    return tags


def run_from_row(row: dict[str, Any], notes: str | None = None) -> Run:
    """An MLflow-shaped `Run` from a gitxp listing row."""
    tags = mlflow_tags(row)
    if notes:
        tags[TAG_NOTE] = notes
    metrics = {k: v for k, v in (row.get("metrics") or {}).items() if v is not None}
    info = RunInfo(
        run_id=row["id"],
        experiment_id=row.get("experiment") or DEFAULT_EXPERIMENT,
        run_name=row.get("name") or "",
        user_id=row.get("user") or "",
        status=mlflow_status(str(row.get("status"))),
        start_time=row.get("start_time"),
        end_time=row.get("end_time"),
        artifact_uri=f"runs:/{row['id']}",
    )
    params = {k: param_text(v) for k, v in (row.get("params") or {}).items()}
    return Run(info, RunData(metrics=metrics, params=params, tags=tags))
