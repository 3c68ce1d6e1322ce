"""gitxp runs and experiment records as MLflow's own entities (`mlflow.entities.Run`, ...).

The mapping itself (reserved tags, statuses, params as text) is
`gitxp.integrations.mlflow_entities`, shared with `gitxp.mlflow`; this
module only puts its result into MLflow's classes, adding what the plugin
knows besides: numeric experiment ids, artifact URIs, lifecycle stages,
each metric's step and timestamp, and the inputs and outputs MLflow logged
(kept in run.json under `mlflow`, docs/format.md).
"""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict, ParseDict
from mlflow.entities import (
    DatasetInput,
    Experiment,
    ExperimentTag,
    LifecycleStage,
    LoggedModelInput,
    LoggedModelOutput,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunTag,
)
from mlflow.protos.service_pb2 import DatasetInput as ProtoDatasetInput

from ..mlflow_entities import run_from_row
from .uri import run_artifact_uri

MLFLOW_META = "mlflow"  # run.json's member for what only MLflow logs (inputs, outputs, models)


def to_run(
    row: dict[str, Any],
    artifact_root: str,
    experiment_id: str,
    *,
    notes: str | None = None,
    deleted: bool = False,
    extra: dict[str, Any] | None = None,
) -> Run:
    """The MLflow `Run` of a gitxp listing row (*extra*: run.json's `mlflow` member;
    *artifact_root*: see `uri.run_artifact_uri`)."""
    shaped = run_from_row(row, notes)
    summary = row.get("summary") or {}
    metrics = [
        Metric(
            key,
            float(value),
            int((summary.get(key) or {}).get("timestamp") or 0),
            int((summary.get(key) or {}).get("step") or 0),
        )
        for key, value in shaped.data.metrics.items()
    ]
    info = RunInfo(
        run_id=shaped.info.run_id,
        experiment_id=experiment_id,
        user_id=shaped.data.tags.get("mlflow.user") or shaped.info.user_id,
        status=shaped.info.status,
        start_time=shaped.info.start_time or 0,
        end_time=shaped.info.end_time,
        lifecycle_stage=LifecycleStage.DELETED if deleted else LifecycleStage.ACTIVE,
        artifact_uri=run_artifact_uri(artifact_root, experiment_id, shaped.info.run_id),
        run_name=shaped.info.run_name,
    )
    data = RunData(
        metrics=metrics,
        params=[Param(k, v) for k, v in shaped.data.params.items()],
        tags=[RunTag(k, str(v)) for k, v in shaped.data.tags.items()],
    )
    extra = extra or {}
    inputs = RunInputs(
        [
            DatasetInput.from_proto(ParseDict(d, ProtoDatasetInput()))
            for d in extra.get("inputs", [])
        ],
        [LoggedModelInput(d["model_id"]) for d in extra.get("model_inputs", [])],
    )
    outputs = RunOutputs(
        [LoggedModelOutput(d["model_id"], int(d.get("step", 0))) for d in extra.get("outputs", [])]
    )
    return Run(info, data, inputs, outputs)


def dataset_record(dataset_input: DatasetInput) -> dict[str, Any]:
    """A logged dataset input as JSON for run.json (its protobuf form, losslessly)."""
    return MessageToDict(dataset_input.to_proto(), preserving_proto_field_name=True)  # type: ignore[no-any-return]


def model_input_record(model_input: LoggedModelInput) -> dict[str, Any]:
    return MessageToDict(model_input.to_proto(), preserving_proto_field_name=True)  # type: ignore[no-any-return]


def model_output_record(model_output: LoggedModelOutput) -> dict[str, Any]:
    return MessageToDict(model_output.to_proto(), preserving_proto_field_name=True)  # type: ignore[no-any-return]


def to_experiment(experiment_id: str, record: dict[str, Any], artifact_location: str) -> Experiment:
    """The MLflow `Experiment` of an experiment record (`gitxp.store.experiments`)."""
    return Experiment(
        experiment_id=experiment_id,
        name=record["name"],
        artifact_location=record.get("artifact_location") or artifact_location,
        lifecycle_stage=record.get("lifecycle_stage") or LifecycleStage.ACTIVE,
        tags=[ExperimentTag(k, v) for k, v in (record.get("tags") or {}).items()],
        creation_time=record.get("creation_time"),
        last_update_time=record.get("last_update_time"),
    )
