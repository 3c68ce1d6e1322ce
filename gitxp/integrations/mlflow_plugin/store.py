"""`GitxpTrackingStore`: MLflow's tracking-store interface over a gitxp repository (runs).

MLflow finds it through the `mlflow.tracking_store` entry point for the
`gitxp` scheme. Runs are gitxp runs: `create_run` starts one (snapshot of
the code, environment, run.json) and keeps it open in this process
(`live`), logging calls buffer into it, `update_run_info` ends it. Reads
serve committed runs from gitxp's listing, with this process's open runs
as they are in memory; filtering, ordering and paging are MLflow's own
`SearchUtils`. Deleting a run moves it to gitxp's trash, restoring brings
it back. The experiment half is `experiments.ExperimentStore`, LoggedModels
and inputs/outputs are `models.ModelStore`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlflow.entities import Metric, Run, RunInfo, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    RESOURCE_DOES_NOT_EXIST,
)
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking import SEARCH_MAX_RESULTS_THRESHOLD
from mlflow.store.tracking.abstract_store import AbstractStore
from mlflow.utils.search_utils import SearchUtils

from ...errors import (
    CorruptRunError,
    GitxpError,
    InvalidValueError,
    ParamConflictError,
    RunActiveError,
    RunNotFoundError,
)
from ...format.ids import is_run_id, usable_run_name
from ...format.refs import RUNS_PREFIX, TRASH_PREFIX
from ...git.refs import read_ref
from ...store.edit import RunState
from ...store.experiments import DEFAULT_NAME
from ...store.record import RunRecord, read_row
from ...store.repo import Repo
from ...store.repo import open as open_repo
from ...tracking.options import RunOptions
from ...tracking.run import Run as GitxpRun
from ..mlflow_entities import TAG_NOTE, TAG_PARENT, TAG_RUN_NAME
from ..mlflow_fluent import apply_tags
from . import live
from .convert import MLFLOW_META, to_run
from .experiments import ExperimentStore
from .models import ModelStore
from .uri import repo_root

log = logging.getLogger("gitxp.integrations.mlflow_plugin.store")
_TERMINAL = ("FINISHED", "FAILED", "KILLED")
_VIEW_ACTIVE, _VIEW_DELETED = 1, 2  # mlflow.entities.ViewType; ALL is 3
_ENTITY_CACHE = 200_000  # search results remembered by commit id (see _cached_entity)


@contextmanager
def mlflow_errors() -> Iterator[None]:
    """Raise gitxp's expected failures as MLflow's `MlflowException`, with the right code."""
    try:
        yield
    except MlflowException:
        raise
    except RunNotFoundError as exc:
        raise MlflowException(str(exc), RESOURCE_DOES_NOT_EXIST) from None
    except (InvalidValueError, ParamConflictError) as exc:
        raise MlflowException(str(exc), INVALID_PARAMETER_VALUE) from None
    except RunActiveError as exc:
        raise MlflowException(str(exc), INVALID_STATE) from None
    except GitxpError as exc:
        raise MlflowException(str(exc)) from None


class GitxpTrackingStore(ModelStore, ExperimentStore, AbstractStore):
    """MLflow's tracking store for `gitxp:`, `gitxp:PATH` and `gitxp:///ABS/PATH` URIs."""

    def __init__(self, store_uri: str | None = None, artifact_uri: str | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.store_uri = store_uri or "gitxp:"
        self.root = repo_root(self.store_uri)
        # `mlflow server` passes its proxy root (mlflow-artifacts:/) when it serves artifacts
        proxied = artifact_uri or ""
        self.artifact_root = proxied if proxied.startswith("mlflow-artifacts:") else self.root
        self._lock = threading.RLock()
        self._repo: Repo | None = None
        self._entities: dict[tuple[Any, ...], Run] = {}

    @contextmanager
    def reading(self) -> Iterator[Repo]:
        """The repository, opened once and used by one thread at a time."""
        with self._lock, mlflow_errors():
            if self._repo is None:
                self._repo = open_repo(self.root)
            yield self._repo

    # -- one run ----------------------------------------------------------------------------
    def _located(self, repo: Repo, run_id: str) -> tuple[str, str, bool]:
        """(ref, commit, deleted) of run *run_id*, live or in the trash."""
        if isinstance(run_id, str) and is_run_id(run_id):
            for prefix, deleted in ((RUNS_PREFIX, False), (TRASH_PREFIX, True)):
                sha = read_ref(repo.git, prefix + run_id)
                if sha is not None:
                    return prefix + run_id, sha, deleted
        raise MlflowException(f"Run with id={run_id!r} not found", RESOURCE_DOES_NOT_EXIST)

    def get_run(self, run_id: str) -> Run:
        """The run *run_id*: as it is in memory when open here, else as last committed."""
        run = live.get(run_id)
        if run is not None:
            return self._live_entity(run)
        with self.reading() as repo:
            ref, sha, deleted = self._located(repo, run_id)
            record = RunRecord(repo.git, ref, sha)
            row = read_row(repo.git, sha, run_id)
            row["status"] = record.status
            meta = record.meta
            extra = meta.get(MLFLOW_META) if isinstance(meta.get(MLFLOW_META), dict) else None
            exp_id = self.experiment_id_of(row.get("experiment"))
            notes = record.notes or None
        return to_run(row, self.artifact_root, exp_id, notes=notes, deleted=deleted, extra=extra)

    def _live_entity(self, run: GitxpRun) -> Run:
        extra = run._meta.get(MLFLOW_META)
        return to_run(
            run.live_row(),
            self.artifact_root,
            self.experiment_id_of(run.experiment),
            notes=run.notes or None,
            extra=extra if isinstance(extra, dict) else None,
        )

    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int | None,
        tags: list[Any] | None,
        run_name: str | None,
    ) -> Run:
        """Start a gitxp run in the experiment *experiment_id*, kept open in this process.

        Under `gitxp run`, the first top-level run joins the run that command records."""
        experiment = self.active_experiment_name(experiment_id)
        values = {t.key: t.value for t in tags or []}
        if TAG_PARENT not in values:
            with mlflow_errors():
                joined = live.supervised(self.root)
                if joined is not None:
                    _adopt(joined, experiment, run_name, values)
                    return self._live_entity(joined)
        name = usable_run_name(run_name or values.pop(TAG_RUN_NAME, None))
        values.pop(TAG_RUN_NAME, None)
        notes = values.pop(TAG_NOTE, None)
        parent = values.pop(TAG_PARENT, None)
        with mlflow_errors():
            options = RunOptions(
                experiment=experiment,
                name=name,
                tags=values,
                notes=notes,
                extra_meta={"parent": parent} if parent else None,
            )
            run = live.start(self.root, options)
        return self._live_entity(run)

    def update_run_info(
        self, run_id: str, run_status: Any, end_time: int | None, run_name: str | None
    ) -> RunInfo:
        """Rename and/or end a run. A run that has already ended keeps its status."""
        status = run_status if isinstance(run_status, str) else RunStatus.to_string(run_status)
        with mlflow_errors():
            run = live.get(run_id)
            if run is not None:
                if run_name:
                    apply_tags(run, {TAG_RUN_NAME: run_name})
                if status in _TERMINAL:
                    run.end(status, end_time=end_time)
                    live.forget(run_id)
                    return self.get_run(run_id).info
                return self._live_entity(run).info
            current = self.get_run(run_id)
            ending = status in _TERMINAL and current.info.status == "RUNNING"
            if run_name and not ending:
                name = usable_run_name(run_name)

                def rename(state: RunState) -> None:
                    state.meta["name"] = name

                if self._edit_ended(run_id, f"rename to {name}", rename):
                    return self.get_run(run_id).info
            if run_name or ending:
                with live.writing(self.root, run_id) as joined:
                    if run_name:
                        apply_tags(joined, {TAG_RUN_NAME: run_name})
                    if ending:
                        joined._joined = False  # ours to end, not only to add to
                        joined.end(status, end_time=end_time)
        return self.get_run(run_id).info

    def delete_run(self, run_id: str) -> None:
        """Move a run to gitxp's trash (`gitxp rm`; `restore_run` brings it back)."""
        from ...store.trash import trash_run

        if live.get(run_id) is not None:
            raise MlflowException(
                f"run {run_id} is still being recorded by this process; end it first",
                INVALID_STATE,
            )
        with self.reading() as repo:
            ref, sha, deleted = self._located(repo, run_id)
            if deleted:
                return
            if RunRecord(repo.git, ref, sha).status == "RUNNING":
                raise RunActiveError(run_id, "delete")
            ident = repo.git.identity()
            trash_run(repo.git, ref, sha, f"{ident.name} <{ident.email}>")

    def restore_run(self, run_id: str) -> None:
        """Bring a deleted run back from gitxp's trash (`gitxp rm --undo`)."""
        from ...store.trash import untrash_run

        with self.reading() as repo:
            ref, sha, deleted = self._located(repo, run_id)
            if deleted:
                untrash_run(repo.git, ref, sha)

    # -- logging ------------------------------------------------------------------------------
    def log_batch(
        self, run_id: str, metrics: list[Any], params: list[Any], tags: list[Any]
    ) -> None:
        """Params, metric points and tags into the run (buffered when it is open here).

        Tags alone on a run that has ended (what the UI edits) are an edit commit."""
        if tags and not metrics and not params and live.get(run_id) is None:
            detail = "tag " + " ".join(f"{t.key}={t.value}" for t in tags)
            if self._edit_ended(run_id, detail, lambda st: _tags_to_state(st, tags)):
                return
        with mlflow_errors(), live.writing(self.root, run_id) as run:
            self._check_active(run)
            if params:
                values = {p.key: p.value for p in params}
                known = run._params
                new = {
                    k: v
                    for k, v in values.items()
                    if str(known.get(k, v)) != str(v) or k not in known
                }
                changed = [k for k in new if k in known]
                if changed:
                    raise MlflowException(
                        f"Changing param values is not allowed. Params {changed} were already "
                        f"logged with other values for run {run_id}",
                        INVALID_PARAMETER_VALUE,
                    )
                if new:
                    run.log_params(new)
            for m in metrics:
                run.log_metric(m.key, m.value, m.step, m.timestamp)
            if tags:
                apply_tags(run, {t.key: t.value for t in tags})
            if any(getattr(m, "model_id", None) for m in metrics):
                self.log_model_metrics(run, metrics)

    def _edit_ended(self, run_id: str, detail: str, change: Any) -> bool:
        """Apply *change* to a committed run that has ended, as one edit commit (what
        `gitxp tag`/`rename` write); False when the run is still recording."""
        from ...format.status import effective_status
        from ...store.edit import edit_run

        with self.reading() as repo:
            ref, sha, deleted = self._located(repo, run_id)
            row = read_row(repo.git, sha, run_id)
            if effective_status(row) == "RUNNING":
                return False
            if deleted:
                raise MlflowException(
                    f"run {run_id} is deleted (in gitxp's trash); restore it to change it",
                    INVALID_STATE,
                )
            edit_run(repo.git, ref, sha, detail, change)
        return True

    def _check_active(self, run: GitxpRun) -> None:
        if run._meta.get("removed"):
            raise MlflowException(
                f"run {run.id} is deleted (in gitxp's trash); restore it to change it",
                INVALID_STATE,
            )

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag (MLflow's note tag clears the run's notes)."""

        def change(state: RunState) -> None:
            tags = dict(state.meta.get("tags") or {})
            if key == TAG_NOTE:
                state.notes = ""
            elif tags.pop(key, None) is None:
                raise MlflowException(
                    f"No tag with name: {key} in run with id {run_id}", RESOURCE_DOES_NOT_EXIST
                )
            state.meta["tags"] = tags

        if live.get(run_id) is None and self._edit_ended(run_id, f"tag -{key}", change):
            return
        with mlflow_errors(), live.writing(self.root, run_id) as run:
            if key == TAG_NOTE:
                run._notes = ""
            elif key not in run._tags:
                raise MlflowException(
                    f"No tag with name: {key} in run with id {run_id}", RESOURCE_DOES_NOT_EXIST
                )
            else:
                run._tags.pop(key)
            run._set_meta()

    def get_metric_history(
        self,
        run_id: str,
        metric_key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList[Metric]:
        """Every point of one metric, by step (an open run is checkpointed first)."""
        run = live.get(run_id)
        if run is not None:
            run.checkpoint()
        with self.reading() as repo:
            ref, sha, _deleted = self._located(repo, run_id)
            record = RunRecord(repo.git, ref, sha)
            try:
                steps, stamps, values = _history(record, metric_key)
            except CorruptRunError:
                raise
            except GitxpError:  # the run has no such metric: MLflow answers with no points
                return PagedList([], None)
        points = [
            Metric(metric_key, v, t, s) for s, t, v in zip(steps, stamps, values, strict=True)
        ]
        if max_results is not None:
            points = points[: int(max_results)]
        return PagedList(points, None)

    def link_traces_to_run(self, trace_ids: list[str], run_id: str) -> None:
        """Traces are not kept by gitxp: MLflow's error, naming what to do."""
        raise MlflowException(
            "the gitxp: tracking store keeps runs, not traces; log traces to another "
            "tracking URI (MLflow's own stores) or record what matters as run artifacts"
        )

    # -- searching --------------------------------------------------------------------------
    def _search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str | None,
        run_view_type: int,
        max_results: int,
        order_by: list[str] | None,
        page_token: str | None,
    ) -> tuple[list[Run], str | None]:
        """Runs of the experiments, filtered, ordered and paged by MLflow's SearchUtils."""
        if max_results > SEARCH_MAX_RESULTS_THRESHOLD:
            raise MlflowException(
                f"Invalid value for request parameter max_results. It must be at most "
                f"{SEARCH_MAX_RESULTS_THRESHOLD}, but got value {max_results}",
                INVALID_PARAMETER_VALUE,
            )
        runs: list[Run] = []
        open_runs = {r.id: r for r in live.open_runs()}
        with self.reading() as repo:
            rows = repo.rows()
            table = self.experiment_table(r.get("experiment") or "default" for r in rows)
            names = {str(table[str(e)]["name"]): str(e) for e in experiment_ids if str(e) in table}
            if run_view_type in (_VIEW_ACTIVE, 3):
                for row in rows:
                    exp_id = names.get(row.get("experiment") or "default")
                    if exp_id is not None and row["id"] not in open_runs:
                        runs.append(self._cached_entity(row, exp_id))
            if run_view_type in (_VIEW_DELETED, 3):
                runs += self._trashed_runs(repo, names)
        runs += [self._live_entity(r) for r in open_runs.values() if r.experiment in names]
        filtered = SearchUtils.filter(runs, filter_string)  # type: ignore[no-untyped-call]
        ordered = SearchUtils.sort(filtered, order_by)  # type: ignore[no-untyped-call]
        page, token = SearchUtils.paginate(ordered, page_token, max_results)  # type: ignore[no-untyped-call]
        return page, token

    def _cached_entity(self, row: dict[str, Any], experiment_id: str) -> Run:
        """The MLflow `Run` of a listing row, remembered by the row's commit id (a commit
        never changes, so neither does the entity; a new commit is a new key)."""
        key = (row.get("commit"), experiment_id, row.get("status"))
        entity = self._entities.get(key)
        if entity is None:
            entity = to_run(row, self.artifact_root, experiment_id)
            if len(self._entities) >= _ENTITY_CACHE:
                self._entities.clear()
            self._entities[key] = entity
        return entity

    def _trashed_runs(self, repo: Repo, names: dict[str, str]) -> list[Run]:
        from ...git.refs import list_refs

        out = []
        for _ref, sha in list_refs(repo.git, TRASH_PREFIX).items():
            try:
                row = read_row(repo.git, sha)
            except GitxpError:
                continue
            experiment = row.get("experiment") or "default"
            if experiment in names:
                out.append(to_run(row, self.artifact_root, names[experiment], deleted=True))
        return out


def _adopt(run: GitxpRun, experiment: str, run_name: str | None, tags: dict[str, Any]) -> None:
    """Make the run of `gitxp run` the MLflow run just created: its name, note and tags, and
    its experiment when `gitxp run` left it in the default one."""
    if run.experiment == DEFAULT_NAME and experiment != DEFAULT_NAME:
        run.experiment = experiment
        run._set_meta(experiment=experiment)
    apply_tags(run, {**tags, TAG_RUN_NAME: run_name} if run_name else tags)


def _tags_to_state(state: RunState, tags: list[Any]) -> None:
    """MLflow tags onto a committed run's state, reserved ones as the gitxp concept."""
    plain = dict(state.meta.get("tags") or {})
    for tag in tags:
        if tag.key == TAG_RUN_NAME:
            state.meta["name"] = usable_run_name(str(tag.value)) or state.meta.get("name")
        elif tag.key == TAG_NOTE:
            state.notes = str(tag.value)
        elif tag.key == TAG_PARENT:
            state.meta["parent"] = str(tag.value)
        else:
            plain[tag.key] = str(tag.value)
    state.meta["tags"] = plain


def _history(record: RunRecord, key: str) -> tuple[list[int], list[int], list[float]]:
    """Steps, timestamps and values of metric *key*, ordered by step."""
    frame = record.metric_history(key)  # int64, int64, float64 columns by the format
    return frame["step"].tolist(), frame["timestamp"].tolist(), frame["value"].tolist()
