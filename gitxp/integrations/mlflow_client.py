"""A subset of `mlflow.MlflowClient` over a gitxp repository: reading runs and their histories,
and editing tags of runs that have ended.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidValueError
from . import mlflow_fluent as fluent
from . import mlflow_registry as registry
from . import mlflow_search as search
from .mlflow_entities import Experiment, Metric, Run


@dataclass
class FileInfo:
    """An artifact file, like `mlflow.entities.FileInfo`."""

    path: str
    is_dir: bool
    file_size: int | None


class MlflowClient:
    """Read (and tag) runs by id, like MLflow's client; *tracking_uri* picks the repository."""

    def __init__(self, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        self._uri = tracking_uri

    def _use(self) -> Any:
        """Make this client's tracking URI the one the fluent reader uses, for one call."""
        client = self

        class _Scope:
            def __enter__(self) -> None:
                self.saved = fluent._global["uri"]
                if client._uri is not None:
                    fluent._global["uri"] = client._uri

            def __exit__(self, *exc: object) -> None:
                fluent._global["uri"] = self.saved

        return _Scope()

    def get_run(self, run_id: str) -> Run:
        with self._use():
            return search.get_run(run_id)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        with self._use():
            return search.get_metric_history(run_id, key)

    def search_runs(
        self,
        experiment_ids: list[str] | str,
        filter_string: str = "",
        run_view_type: int = search.RUN_VIEW_ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> list[Run]:
        """Runs of the given experiments (ids are names), as MLflow `Run` objects."""
        with self._use():
            runs = search.search_runs(
                experiment_ids=experiment_ids,
                filter_string=filter_string,
                max_results=max_results,
                order_by=order_by,
                output_format="list",
            )
        return runs

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self._use():
            return fluent.get_experiment_by_name(name)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return fluent.get_experiment(experiment_id)

    def search_experiments(self, **kwargs: Any) -> list[Experiment]:
        with self._use():
            return fluent.search_experiments(**kwargs)

    def create_experiment(self, name: str, **_: Any) -> str:
        return fluent.create_experiment(name)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The artifact files of a run (below *path* when given)."""
        with self._use(), fluent.tracking_repo() as repo:
            files = (
                repo.run(run_id).artifacts(path or None) if path else repo.run(run_id).artifacts()
            )
        return [FileInfo(str(f["path"]), False, f.get("size")) for f in files]

    def download_artifacts(self, run_id: str, path: str = "", dst_path: str | None = None) -> str:
        """Copy a run's artifacts (all, or *path*) to *dst_path* (default: a new temp dir)."""
        import tempfile

        target = dst_path or tempfile.mkdtemp(prefix="gitxp-artifacts-")
        with self._use(), fluent.tracking_repo() as repo:
            repo.run(run_id).download_artifacts(path or None, target)
        return os.path.join(target, path) if path else target

    # -- the model registry (gitxp's; see gitxp.integrations.mlflow_registry) ---------------
    def create_model_version(
        self, name: str, source: str, run_id: str | None = None, **_: Any
    ) -> Any:
        """Register the model at *source* (``runs:/RUN/PATH``) as a new version of *name*."""
        if not isinstance(source, str) or not source.startswith("runs:/"):
            raise InvalidValueError("source", f"{source!r}: give runs:/<run-id>/<model path>")
        run_ref, _sep, path = source[len("runs:/") :].strip("/").partition("/")
        with self._use():
            return registry.register(run_ref, path, name)

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point *alias* at MLflow version *version* of *name*: gitxp assigns stage *alias*."""
        with self._use():
            registry.set_alias(name, alias, version)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove *alias* from model *name* (gitxp unassigns the stage)."""
        with self._use():
            registry.delete_alias(name, alias)

    def get_model_version(self, name: str, version: int | str) -> Any:
        with self._use():
            return registry.get_version(name, version=version)

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        with self._use():
            return registry.get_version(name, alias=alias)

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[Any]:
        """The active versions of *name* (*stages*: only those holding one of these aliases)."""
        with self._use():
            versions = registry.latest_versions(name)
        return [v for v in versions if not stages or set(stages) & set(v.aliases)]

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> None:
        """Set a tag on a run, active or ended (an ended run gets a new commit)."""
        self._edit(run_id, {key: value})

    def _edit(self, run_id: str, tags: Mapping[str, Any]) -> None:
        for active in fluent.active_stack():
            if active.gitxp_run.id == run_id:
                fluent.apply_tags(active.gitxp_run, tags)
                return
        with self._use():
            edit_tags(fluent.tracking_path(), run_id, tags)


def edit_tags(path: str | os.PathLike[str], run_ref: str, tags: Mapping[str, Any]) -> None:
    """Add a commit to an ended run that changes its tags (MLflow's reserved ones mapped)."""
    from ..git.repository import GitRepo
    from ..store.repo import open as open_repo
    from ..tracking.run import Run as GitxpRun

    with open_repo(path) as repo:
        ref, _ = repo.resolve(run_ref)
    run = GitxpRun(GitRepo.discover(path), _join=ref.rsplit("/", 1)[-1])
    try:
        fluent.apply_tags(run, tags)
    finally:
        run.end()  # a joined run keeps its status: this only commits the change
