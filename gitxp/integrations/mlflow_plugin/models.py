"""LoggedModels, run inputs (datasets, models) and outputs (models) for the tracking store.

A LoggedModel lives with a gitxp run: the run that produced it (MLflow's
`source_run_id`), or, for a model logged outside any run, a run started
for it in the model's experiment (named after the model, tagged
`mlflow.loggedModelRun`) and ended when the model is finalized. Its
record (name, status, tags, params, metrics) is kept in the run's run.json
under `mlflow.models`, its files as the run's artifacts under the model's
name (`model/MLmodel`, ..., like MLflow 2's `runs:/<run>/model`; a second
model of the same name in one run goes under `models/<model id>/`). The
model id is `m-` + the run id + 8 hex digits, so the run is found from it.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import TYPE_CHECKING, Any

from google.protobuf.json_format import MessageToDict, ParseDict
from mlflow.entities import LoggedModel, LoggedModelStatus
from mlflow.exceptions import MlflowException
from mlflow.protos import service_pb2 as pb
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST
from mlflow.store.entities.paged_list import PagedList
from mlflow.utils.search_utils import SearchLoggedModelsUtils

from ...format.ids import is_run_id, usable_run_name
from ...format.status import now_ms
from . import live
from .convert import MLFLOW_META, dataset_record, model_input_record, model_output_record
from .uri import run_artifact_uri

if TYPE_CHECKING:
    from ...store.repo import Repo
    from ...tracking.run import Run as GitxpRun

HOLDER_TAG = "mlflow.loggedModelRun"
_MODELS = "models"


def run_of_model(model_id: str) -> str:
    """The id of the run a model id names (its characters 3 to 28)."""
    run_id = model_id[2:28] if isinstance(model_id, str) and model_id.startswith("m-") else ""
    if not is_run_id(run_id):
        raise MlflowException(
            f"Logged model with ID '{model_id}' not found.", RESOURCE_DOES_NOT_EXIST
        )
    return run_id


def _mlflow_meta(run: GitxpRun) -> dict[str, Any]:
    """run.json's `mlflow` member of an open run, created empty when missing."""
    section = run._meta.get(MLFLOW_META)
    if not isinstance(section, dict):
        section = {}
        run._meta[MLFLOW_META] = section
    return section


class ModelStore:
    """LoggedModels and run inputs/outputs for `GitxpTrackingStore`."""

    root: str
    artifact_root: str

    if TYPE_CHECKING:  # provided by GitxpTrackingStore and ExperimentStore

        def reading(self) -> contextlib.AbstractContextManager[Repo]: ...
        def experiment_id_of(self, name: str | None) -> str: ...
        def active_experiment_name(self, experiment_id: str) -> str: ...
        def get_run(self, run_id: str) -> Any: ...
        def _search_runs(self, *args: Any) -> tuple[list[Any], str | None]: ...

    # -- inputs and outputs --------------------------------------------------------------------
    def log_inputs(
        self, run_id: str, datasets: list[Any] | None = None, models: list[Any] | None = None
    ) -> None:
        """Datasets (and models) a run used, kept in run.json under `mlflow.inputs`."""
        with live.writing(self.root, run_id) as run:
            section = _mlflow_meta(run)
            for _item, key, record in [
                *((d, "inputs", dataset_record(d)) for d in datasets or []),
                *((m, "model_inputs", model_input_record(m)) for m in models or []),
            ]:
                items = section.setdefault(key, [])
                if record not in items:
                    items.append(record)
            run._set_meta()

    def log_outputs(self, run_id: str, models: list[Any]) -> None:
        """Models a run produced, kept in run.json under `mlflow.outputs`."""
        with live.writing(self.root, run_id) as run:
            items = _mlflow_meta(run).setdefault("outputs", [])
            for model in models:
                record = model_output_record(model)
                if record not in items:
                    items.append(record)
            run._set_meta()

    # -- LoggedModels --------------------------------------------------------------------------
    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: list[Any] | None = None,
        params: list[Any] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        """A new PENDING model, kept with *source_run_id* (or a run started for it)."""
        from ...tracking.options import RunOptions

        experiment = self.active_experiment_name(experiment_id)
        name = name or "model"
        if source_run_id is None:
            holder = live.start(
                self.root,
                RunOptions(
                    experiment=experiment, name=usable_run_name(name), tags={HOLDER_TAG: "true"}
                ),
            )
            source_run_id = holder.id
        model_id = f"m-{source_run_id}{secrets.token_hex(4)}"
        now = now_ms()
        with live.writing(self.root, source_run_id) as run:
            models = _mlflow_meta(run).setdefault(_MODELS, {})
            taken = {m.get("path") for m in models.values()}
            proto = LoggedModel(
                experiment_id=self.experiment_id_of(run.experiment),
                model_id=model_id,
                name=name,
                artifact_location="",
                creation_timestamp=now,
                last_updated_timestamp=now,
                model_type=model_type,
                source_run_id=source_run_id,
                status=LoggedModelStatus.PENDING,
                tags={t.key: t.value for t in tags or []},
                params={p.key: p.value for p in params or []},
            ).to_proto()
            record = MessageToDict(proto, preserving_proto_field_name=True)
            record["path"] = name if name not in taken else f"models/{model_id}"
            models[model_id] = record
            run._set_meta()
        return self.get_logged_model(model_id)

    def _model_record(self, model_id: str) -> tuple[dict[str, Any], Any]:
        """(record, run entity) of model *model_id*."""
        run_id = run_of_model(model_id)
        try:
            run = self.get_run(run_id)
        except MlflowException:
            raise MlflowException(
                f"Logged model with ID '{model_id}' not found.", RESOURCE_DOES_NOT_EXIST
            ) from None
        record = self._models_of(run_id).get(model_id)
        if record is None:
            raise MlflowException(
                f"Logged model with ID '{model_id}' not found.", RESOURCE_DOES_NOT_EXIST
            )
        return record, run

    def _models_of(self, run_id: str) -> dict[str, Any]:
        """The model records run.json of *run_id* holds."""
        run = live.get(run_id)
        section = run._meta.get(MLFLOW_META) if run is not None else self._committed_section(run_id)
        models = section.get(_MODELS) if isinstance(section, dict) else None
        return models if isinstance(models, dict) else {}

    def _committed_section(self, run_id: str) -> Any:
        from ...format.refs import RUNS_PREFIX, TRASH_PREFIX
        from ...git.refs import read_ref
        from ...store.record import RunRecord

        with self.reading() as repo:
            for prefix in (RUNS_PREFIX, TRASH_PREFIX):
                sha = read_ref(repo.git, prefix + run_id)
                if sha is not None:
                    return RunRecord(repo.git, prefix + run_id, sha).meta.get(MLFLOW_META)
        return None

    def _to_model(self, record: dict[str, Any], run: Any) -> LoggedModel:
        body = {k: v for k, v in record.items() if k not in ("path", "deleted")}
        model = LoggedModel.from_proto(
            ParseDict(body, pb.LoggedModel(), ignore_unknown_fields=True)
        )
        model._experiment_id = run.info.experiment_id
        model._artifact_location = run_artifact_uri(
            self.artifact_root, run.info.experiment_id, run.info.run_id, record["path"]
        )
        return model

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        record, run = self._model_record(model_id)
        if (record.get("info") or {}).get("deleted") and not allow_deleted:
            raise MlflowException(
                f"Logged model with ID '{model_id}' not found.", RESOURCE_DOES_NOT_EXIST
            )
        return self._to_model(record, run)

    def _update_model(self, model_id: str, change: Any) -> None:
        """Apply *change* to the record of *model_id* (and commit it when its run has ended)."""
        run_id = run_of_model(model_id)
        self._model_record(model_id)  # exists
        with live.writing(self.root, run_id) as run:
            record = _mlflow_meta(run)[_MODELS][model_id]
            info = record.setdefault("info", {})
            change(info)
            info["last_updated_timestamp_ms"] = str(now_ms())
            run._set_meta()

    def finalize_logged_model(self, model_id: str, status: Any) -> LoggedModel:
        if isinstance(status, int) and not isinstance(status, LoggedModelStatus):
            status = LoggedModelStatus.from_proto(status)  # type: ignore[no-untyped-call]
        status = LoggedModelStatus(status)

        def change(record: dict[str, Any]) -> None:
            record["status"] = pb.LoggedModelStatus.Name(status.to_proto())

        self._update_model(model_id, change)
        holder = live.get(run_of_model(model_id))
        if holder is not None and holder.tags.get(HOLDER_TAG):
            holder.end("FINISHED" if status == LoggedModelStatus.READY else "FAILED")
            live.forget(holder.id)
        return self.get_logged_model(model_id)

    def set_logged_model_tags(self, model_id: str, tags: list[Any]) -> None:
        def change(record: dict[str, Any]) -> None:
            current = {t["key"]: t.get("value", "") for t in record.get("tags", [])}
            current.update({t.key: str(t.value) for t in tags})
            record["tags"] = [{"key": k, "value": v} for k, v in current.items()]

        self._update_model(model_id, change)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        def change(record: dict[str, Any]) -> None:
            before = record.get("tags", [])
            record["tags"] = [t for t in before if t["key"] != key]
            if len(record["tags"]) == len(before):
                raise MlflowException(
                    f"No tag with key {key!r} on model {model_id}", RESOURCE_DOES_NOT_EXIST
                )

        self._update_model(model_id, change)

    def delete_logged_model(self, model_id: str) -> None:
        def change(record: dict[str, Any]) -> None:
            record["deleted"] = True

        self._update_model(model_id, change)

    def log_model_metrics(self, run: GitxpRun, metrics: list[Any]) -> None:
        """Metrics logged with a model id also go to that model's record (latest per key)."""
        models = _mlflow_meta(run).get(_MODELS) or {}
        for metric in metrics:
            record = models.get(getattr(metric, "model_id", None) or "")
            if record is None:
                continue
            proto = metric.to_proto()
            entry = MessageToDict(proto, preserving_proto_field_name=True)
            data = record.setdefault("data", {})
            kept = [
                m
                for m in data.get("metrics", [])
                if m.get("key") != metric.key or m.get("dataset_name") != entry.get("dataset_name")
            ]
            data["metrics"] = [*kept, entry]
        run._set_meta()

    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        datasets: list[dict[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: list[dict[str, Any]] | None = None,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """The models of runs in the experiments, filtered and ordered by MLflow's utilities."""
        if datasets and not all(d.get("dataset_name") for d in datasets):
            raise MlflowException(
                "`dataset_name` in the `datasets` clause must be specified.",
                INVALID_PARAMETER_VALUE,
            )
        runs, _ = self._search_runs(experiment_ids, None, 1, 50000, None, None)
        found = []
        for run in runs:
            for record in self._models_of(run.info.run_id).values():
                if not (record.get("info") or {}).get("deleted"):
                    found.append(self._to_model(record, run))
        filtered = SearchLoggedModelsUtils.filter_logged_models(found, filter_string, datasets)
        ordered = SearchLoggedModelsUtils.sort(filtered, order_by)  # type: ignore[no-untyped-call]
        page, token = SearchLoggedModelsUtils.paginate(ordered, page_token, max_results or 100)  # type: ignore[no-untyped-call]
        return PagedList(page, token)
