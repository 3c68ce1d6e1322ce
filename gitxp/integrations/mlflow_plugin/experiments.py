"""The experiment half of the tracking store: numeric ids, tags, deletion, renames.

An experiment exists when runs name it or when its record exists
(`gitxp.store.experiments`, the ref `refs/gitxp/experiments`). Its id is
the record's, else the number derived from its name, so clones agree
without exchanging anything; "0" is gitxp's "default" (MLflow's
"Default" finds it too). Deleting an experiment marks its record deleted:
its runs stay where they are. Renaming it adds an edit commit to each of
its runs (their `experiment` field) and keeps the id.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from mlflow.entities import Experiment, LifecycleStage, ViewType
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
)
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking import SEARCH_MAX_RESULTS_DEFAULT, SEARCH_MAX_RESULTS_THRESHOLD
from mlflow.utils.search_utils import SearchExperimentsUtils

from ...format.status import now_ms
from ...store import experiments as records
from .convert import to_experiment

if TYPE_CHECKING:
    from ...store.repo import Repo

_DEFAULT_ALIASES = ("Default", records.DEFAULT_NAME)


class ExperimentStore:
    """Experiments for `GitxpTrackingStore` (which provides `reading()` and `root`)."""

    root: str

    if TYPE_CHECKING:  # provided by GitxpTrackingStore

        def reading(self) -> contextlib.AbstractContextManager[Repo]: ...

    # -- the table of experiments -------------------------------------------------------
    def experiment_table(self, names: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Every experiment record by id: recorded ones, then those only runs name
        (*names*: the experiments of the runs, when the caller has listed them)."""
        with self.reading() as repo:
            table, _ = records.read(repo.git)
            names = repo.experiments() if names is None else sorted(set(names))
        known = {r["name"] for r in table.values()}
        table.setdefault(records.DEFAULT_ID, {"name": records.DEFAULT_NAME})
        for name in names:
            if name not in known:
                table.setdefault(records.experiment_id(name), {"name": name})
        return table

    def _entity(self, experiment_id: str, record: dict[str, Any]) -> Experiment:
        return to_experiment(experiment_id, record, f"gitxp:///{self.root.lstrip('/')}")

    def experiment_id_of(self, name: str | None) -> str:
        """The id of the experiment called *name* (gitxp's default when None)."""
        name = name or records.DEFAULT_NAME
        if name == records.DEFAULT_NAME:
            return records.DEFAULT_ID
        with self.reading() as repo:
            table, _ = records.read(repo.git)
        for exp_id, record in table.items():
            if record["name"] == name:
                return exp_id
        return records.experiment_id(name)

    def experiment_name_of(self, experiment_id: str) -> str | None:
        """The name of experiment *experiment_id*, or None when there is none."""
        record = self.experiment_table().get(str(experiment_id))
        return None if record is None else str(record["name"])

    def active_experiment_name(self, experiment_id: str) -> str:
        """The name of *experiment_id*, which must exist and not be deleted."""
        record = self.experiment_table().get(str(experiment_id))
        if record is None:
            raise MlflowException(
                f"No Experiment with id={experiment_id} exists", RESOURCE_DOES_NOT_EXIST
            )
        if record.get("lifecycle_stage") == LifecycleStage.DELETED:
            raise MlflowException(
                f"The experiment {experiment_id} must be in the 'active' state; "
                "restore it first (MlflowClient().restore_experiment)",
                INVALID_STATE,
            )
        return str(record["name"])

    # -- the AbstractStore calls ----------------------------------------------------------
    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        if not isinstance(max_results, int) or not 1 <= max_results <= SEARCH_MAX_RESULTS_THRESHOLD:
            raise MlflowException(
                f"Invalid value {max_results} for parameter 'max_results': it must be an "
                f"integer from 1 to {SEARCH_MAX_RESULTS_THRESHOLD}",
                INVALID_PARAMETER_VALUE,
            )
        wanted = LifecycleStage.view_type_to_stages(view_type)
        found = [
            self._entity(i, r)
            for i, r in self.experiment_table().items()
            if (r.get("lifecycle_stage") or LifecycleStage.ACTIVE) in wanted
        ]
        filtered = SearchExperimentsUtils.filter(found, filter_string)  # type: ignore[no-untyped-call]
        ordered = SearchExperimentsUtils.sort(filtered, order_by or ["creation_time DESC"])  # type: ignore[no-untyped-call]
        page, token = SearchExperimentsUtils.paginate(ordered, page_token, max_results)  # type: ignore[no-untyped-call]
        return PagedList(page, token)

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: list[Any] | None = None
    ) -> str:
        """Record a new experiment; returns its id."""
        if not isinstance(name, str) or not name.strip():
            raise MlflowException(
                "Invalid experiment name: give a non-empty name", INVALID_PARAMETER_VALUE
            )
        name = name.strip()
        if name in _DEFAULT_ALIASES or any(
            r["name"] == name for r in self.experiment_table().values()
        ):
            raise MlflowException(
                f"Experiment(name={name}) already exists. Error: an experiment of that name "
                "exists (deleted ones too: restore it, or choose another name)",
                RESOURCE_ALREADY_EXISTS,
            )
        chosen: list[str] = []

        def edit(table: dict[str, dict[str, Any]]) -> None:
            exp_id, n = records.experiment_id(name), 0
            while exp_id in table and table[exp_id]["name"] != name:
                n += 1
                exp_id = records.experiment_id(f"{name}\0{n}")
            now = now_ms()
            table[exp_id] = {
                "name": name,
                "tags": {t.key: str(t.value) for t in tags or []},
                "lifecycle_stage": LifecycleStage.ACTIVE,
                "creation_time": now,
                "last_update_time": now,
            }
            if artifact_location:
                table[exp_id]["artifact_location"] = str(artifact_location)
            chosen[:] = [exp_id]

        self._change(f"create {name}", edit)
        return chosen[0]

    def _change(self, what: str, edit: Any) -> None:
        with self.reading() as repo:
            records.change(repo.git, what, edit)

    @contextlib.contextmanager
    def _editing(self, experiment_id: str, what: str) -> Iterator[dict[str, Any]]:
        """The record of *experiment_id* to change in place (created from its runs if need be)."""
        current = self.experiment_table().get(str(experiment_id))
        if current is None:
            raise MlflowException(
                f"No Experiment with id={experiment_id} exists", RESOURCE_DOES_NOT_EXIST
            )
        changes: dict[str, Any] = {}
        yield changes

        def edit(table: dict[str, dict[str, Any]]) -> None:
            record = table.setdefault(str(experiment_id), dict(current))
            tags = dict(record.get("tags") or {})
            tags.update(changes.pop("set_tags", {}))
            for key in changes.pop("drop_tags", []):
                tags.pop(key, None)
            record.update(changes, tags=tags, last_update_time=now_ms())

        self._change(f"{what} ({current['name']})", edit)

    def get_experiment(self, experiment_id: str) -> Experiment:
        record = self.experiment_table().get(str(experiment_id))
        if record is None:
            raise MlflowException(
                f"No Experiment with id={experiment_id} exists", RESOURCE_DOES_NOT_EXIST
            )
        return self._entity(str(experiment_id), record)

    def get_experiment_by_name(self, experiment_name: str) -> Experiment | None:
        if experiment_name in _DEFAULT_ALIASES:
            return self.get_experiment(records.DEFAULT_ID)
        for exp_id, record in self.experiment_table().items():
            if record["name"] == experiment_name:
                return self._entity(exp_id, record)
        return None

    def delete_experiment(self, experiment_id: str) -> None:
        if str(experiment_id) == records.DEFAULT_ID:
            raise MlflowException(
                "Cannot delete the default experiment '0'.", INVALID_PARAMETER_VALUE
            )
        with self._editing(experiment_id, "delete") as changes:
            changes["lifecycle_stage"] = LifecycleStage.DELETED

    def restore_experiment(self, experiment_id: str) -> None:
        with self._editing(experiment_id, "restore") as changes:
            changes["lifecycle_stage"] = LifecycleStage.ACTIVE

    def set_experiment_tag(self, experiment_id: str, tag: Any) -> None:
        with self._editing(experiment_id, f"tag {tag.key}") as changes:
            changes["set_tags"] = {tag.key: str(tag.value)}

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        with self._editing(experiment_id, f"untag {key}") as changes:
            changes["drop_tags"] = [key]

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Rename: each run of the experiment gets an edit commit; the id stays."""
        from ...format.status import effective_status
        from ...store.edit import RunState, edit_run

        if str(experiment_id) == records.DEFAULT_ID:
            raise MlflowException(
                "Cannot rename the default experiment '0'.", INVALID_PARAMETER_VALUE
            )
        if not isinstance(new_name, str) or not new_name.strip():
            raise MlflowException("give the experiment a non-empty name", INVALID_PARAMETER_VALUE)
        new_name = new_name.strip()
        if self.get_experiment_by_name(new_name) is not None:
            raise MlflowException(
                f"Experiment(name={new_name}) already exists", RESOURCE_ALREADY_EXISTS
            )
        old = self.get_experiment(experiment_id).name
        with self.reading() as repo:
            rows = repo.rows(experiment=old)
            busy = [r["id"] for r in rows if effective_status(r) == "RUNNING"]
            if busy:
                raise MlflowException(
                    f"experiment {old!r} has runs still recording ({', '.join(busy[:3])}); "
                    "rename it once they have ended",
                    INVALID_STATE,
                )
            for row in rows:

                def change(state: RunState) -> None:
                    state.meta["experiment"] = new_name

                edit_run(
                    repo.git, row["ref"], row["commit"], f"move to experiment {new_name}", change
                )
        with self._editing(experiment_id, f"rename to {new_name}") as changes:
            changes["name"] = new_name
