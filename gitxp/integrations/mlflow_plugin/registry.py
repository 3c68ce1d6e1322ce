"""`GitxpRegistryStore`: MLflow's model-registry interface over gitxp's registry (GTO's git tags).

MLflow finds it through the `mlflow.model_registry_store` entry point for the
`gitxp` scheme (MLflow uses the tracking URI when `MLFLOW_REGISTRY_URI` is
unset). Everything it writes is a registry tag as `gitxp model` and `gto`
write them (`gitxp.store.registry_actions`), so `gitxp model show` and
`gto show` see what MLflow registered. The mapping (docs/mlflow.md):

- MLflow's version N is the N-th version registered (in tag order), whatever its
  semantic version; new versions get GTO's next patch version.
- An alias is a stage (`churn#prod#N`); deleting an alias unassigns the stage.
- `delete_model_version` deregisters, `delete_registered_model` deprecates.
- A version's description is its registration tag's message (set once).
- There is no place for tags, renames or MLflow 2's stages: those calls raise
  `MlflowException` saying so.

Versions are read back through `versions`; entities and sources are `registry_entities`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.prompt.registry_utils import add_prompt_filter_string
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
)
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.model_registry import (
    SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD,
)
from mlflow.store.model_registry.abstract_store import AbstractStore
from mlflow.utils.search_utils import SearchModelUtils, SearchModelVersionUtils, SearchUtils

from ...errors import ModelNotFoundError, RegistryError
from ...format import registry as fmt
from ...git.repository import GitRepo
from ...store import registry_actions as actions
from ...store.registry import Model, read_models
from . import registry_entities as entities
from .store import mlflow_errors
from .uri import repo_root

_NO_PLACE = (
    "gitxp's model registry is GTO's git tags, which have no place for {what}; "
    "see docs/mlflow.md (Model registry)"
)


def unsupported(what: str) -> MlflowException:
    """The MlflowException for a call gitxp's registry cannot map."""
    return MlflowException(_NO_PLACE.format(what=what), INVALID_PARAMETER_VALUE)


class GitxpRegistryStore(AbstractStore):
    """MLflow's model registry for `gitxp:`, `gitxp:PATH` and `gitxp:///ABS/PATH` URIs."""

    def __init__(self, store_uri: str | None = None, tracking_uri: str | None = None) -> None:
        super().__init__(store_uri, tracking_uri)  # type: ignore[no-untyped-call]
        self.store_uri = store_uri or "gitxp:"
        self.root = repo_root(self.store_uri)
        self._lock = threading.RLock()
        self._git: GitRepo | None = None
        self._created: set[str] = set()  # models created here that have no version yet

    @contextmanager
    def git(self) -> Iterator[GitRepo]:
        """The repository, opened once, used by one thread at a time; gitxp's errors as
        MLflow's."""
        with self._lock, _registry_errors():
            if self._git is None:
                self._git = GitRepo(self.root)
            yield self._git

    def _model(self, name: str) -> Model:
        """Model *name* as MLflow sees it: registered and not deprecated."""
        if not isinstance(name, str) or not name:
            raise MlflowException("Registered model name cannot be empty.", INVALID_PARAMETER_VALUE)
        with self.git() as git:
            model = read_models(git, name).get(name)
        if model is None or model.deprecated:
            why = " (it is deprecated)" if model is not None else ""
            raise MlflowException(
                f"Registered Model with name={name} not found{why}", RESOURCE_DOES_NOT_EXIST
            )
        return model

    def _view(self, model: Model) -> entities.ModelView:
        with self.git() as git:
            return entities.ModelView(git, self.root, model)

    # -- registered models ----------------------------------------------------------------
    def create_registered_model(
        self,
        name: str,
        tags: list[Any] | None = None,
        description: str | None = None,
        deployment_job_id: str | None = None,
    ) -> RegisteredModel:
        """A new model: it exists in the registry once its first version is registered (GTO
        has no tag for a model without versions); until then only in this store."""
        if tags:
            raise unsupported("registered model tags")
        if description:
            raise unsupported("a registered model's description")
        with self.git():
            fmt.check_model_name(name)
        try:
            self._model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        else:
            raise MlflowException(
                f"Registered Model (name={name}) already exists.", RESOURCE_ALREADY_EXISTS
            )
        self._created.add(name)
        return RegisteredModel(name, latest_versions=[])

    def get_registered_model(self, name: str) -> RegisteredModel:
        if name in self._created:
            try:
                return self._view(self._model(name)).registered_model()
            except MlflowException:
                return RegisteredModel(name, latest_versions=[])
        return self._view(self._model(name)).registered_model()

    def update_registered_model(
        self, name: str, description: str, deployment_job_id: str | None = None
    ) -> RegisteredModel:
        raise unsupported("a registered model's description")

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        raise unsupported("renaming a model (its tags carry its name; register it anew)")

    def delete_registered_model(self, name: str) -> None:
        """Deprecate the model (GTO's deprecation tag); registering a version revives it."""
        if name in self._created:
            self._created.discard(name)
            with self.git() as git:
                if name not in read_models(git, name):
                    return  # created here, no version yet: nothing was written
        self._model(name)
        with self.git() as git:
            actions.deprecate(git, name)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        """Models that are not deprecated, filtered and ordered by MLflow's own utilities."""
        limit = _max_results(
            max_results,
            SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
            SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD,
        )
        with self.git() as git:
            models = read_models(git)
            found = [
                entities.ModelView(git, self.root, m).registered_model()
                for m in models.values()
                if not m.deprecated
            ]
        found += [
            RegisteredModel(n, latest_versions=[]) for n in sorted(self._created) if n not in models
        ]
        filter_string = add_prompt_filter_string(filter_string, is_prompt=False)
        filtered = SearchModelUtils.filter(found, filter_string)  # type: ignore[no-untyped-call]
        ordered = SearchModelUtils.sort(filtered, order_by)  # type: ignore[no-untyped-call]
        return _page(ordered, page_token, limit)

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[ModelVersion]:
        """The latest version; every version is in MLflow 2's stage "None"."""
        view = self._view(self._model(name))
        latest = view.latest()
        if latest is None:
            return []
        wanted = {s.lower() for s in stages or []}
        return [latest] if not wanted or "none" in wanted else []

    def set_registered_model_tag(self, name: str, tag: Any) -> None:
        raise unsupported("registered model tags")

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        raise unsupported("registered model tags")

    # -- versions ---------------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: list[Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        local_model_path: str | None = None,
        model_id: str | None = None,
    ) -> ModelVersion:
        """Register the run *source* names as the next version of *name* (`NAME@vX.Y.Z` at
        the run's commit; a run still recording is checkpointed first and its checkpoint
        tagged). *description* becomes the tag's message."""
        if tags:
            raise unsupported("model version tags")
        if str(source).startswith("models:/") and not str(source).startswith("models:/m-"):
            source = self._registered_source(str(source))
        run, path = entities.locate_source(self.root, self.store_uri, source, run_id, model_id)
        commit = entities.commit_of(self.root, run)
        with self.git() as git:
            version = actions.register(
                git, name, run, commit, path=path, message=(description or "").strip() or None
            )
        self._created.discard(name)
        return self._view(self._model(name)).version_entity(version.version)

    def _registered_source(self, uri: str) -> str:
        """The source of the version a `models:/NAME/VERSION` or `models:/NAME@ALIAS` URI names."""
        rest = uri[len("models:/") :].strip("/")
        if "@" in rest:
            name, _, alias = rest.partition("@")
            return str(self.get_model_version_by_alias(name, alias).source)
        name, _, version = rest.rpartition("/")
        if version == "latest":
            latest = self._view(self._model(name)).latest()
            if latest is None:
                raise MlflowException(f"{name} has no version", RESOURCE_DOES_NOT_EXIST)
            return str(latest.source)
        return str(self.get_model_version(name, version).source)

    def update_model_version(self, name: str, version: str, description: str) -> ModelVersion:
        raise unsupported(
            "changing a version's description (it is the registration tag's message, "
            "set once by create_model_version(description=...))"
        )

    def transition_model_version_stage(
        self, name: str, version: str, stage: str, archive_existing_versions: bool
    ) -> ModelVersion:
        raise MlflowException(
            "MLflow 2's model stages (Staging, Production, Archived) do not map to gitxp's "
            "registry; use aliases, which are gitxp's and GTO's stages: "
            f"MlflowClient().set_registered_model_alias({name!r}, 'production', {version!r})",
            INVALID_PARAMETER_VALUE,
        )

    def delete_model_version(self, name: str, version: str) -> None:
        """Deregister the version (GTO's deregistration tag); its aliases go with it."""
        view = self._view(self._model(name))
        semver = view.semver(version)
        with self.git() as git:
            actions.deregister(git, name, semver)

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        view = self._view(self._model(name))
        return view.version_entity(view.semver(version))

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        """The gitxp artifact URI of the version's model files in its run."""
        view = self._view(self._model(name))
        return view.download_uri(view.semver(version))

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        """Active versions of models that are not deprecated, by MLflow's own utilities."""
        limit = _max_results(
            max_results,
            SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
            SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD,
        )
        with self.git() as git:
            found = []
            for model in read_models(git).values():
                if not model.deprecated:
                    found += entities.ModelView(git, self.root, model).version_entities()
        filter_string = add_prompt_filter_string(filter_string, is_prompt=False)
        filtered = SearchModelVersionUtils.filter(found, filter_string)  # type: ignore[no-untyped-call]
        ordered = SearchModelVersionUtils.sort(  # type: ignore[no-untyped-call]
            filtered, order_by or ["last_updated_timestamp DESC", "name ASC", "version_number DESC"]
        )
        return _page(ordered, page_token, limit)

    def set_model_version_tag(self, name: str, version: str, tag: Any) -> None:
        raise unsupported("model version tags")

    def delete_model_version_tag(self, name: str, version: str, key: str) -> None:
        raise unsupported("model version tags")

    # -- aliases = stages -----------------------------------------------------------------
    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        """Assign stage *alias* to version *version* (`NAME#ALIAS#N`); already there: nothing."""
        view = self._view(self._model(name))
        semver = view.semver(version)
        if alias in view.model.version(semver).stages:
            return
        with self.git() as git:
            actions.assign(git, name, semver, alias)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Unassign stage *alias* until no version holds it (GTO hands a stage back to its
        previous holder on unassign; MLflow's alias is then gone)."""
        self._model(name)
        with self.git() as git:
            for _ in range(1000):
                model = read_models(git, name)[name]
                if alias not in model.stages:
                    return
                actions.unassign(git, name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        view = self._view(self._model(name))
        holder = view.model.stages.get(alias)
        if holder is None:
            raise MlflowException(
                f"Registered model alias {alias} not found.", INVALID_PARAMETER_VALUE
            )
        return view.version_entity(holder.version)


@contextmanager
def _registry_errors() -> Iterator[None]:
    """gitxp's errors as MlflowException; unknown models, versions and stages are
    RESOURCE_DOES_NOT_EXIST, refused registry actions INVALID_PARAMETER_VALUE."""
    with mlflow_errors():
        try:
            yield
        except ModelNotFoundError as exc:
            raise MlflowException(str(exc), RESOURCE_DOES_NOT_EXIST) from None
        except RegistryError as exc:
            raise MlflowException(str(exc), INVALID_PARAMETER_VALUE) from None


def _max_results(max_results: int | None, default: int, most: int) -> int:
    """*max_results* checked as MLflow's own stores check it (*default* when None)."""
    if max_results is None:
        return default
    if not isinstance(max_results, int) or not 0 < max_results <= most:
        raise MlflowException(
            f"Invalid value for max_results: it must be an integer from 1 to {most}, "
            f"got {max_results!r}",
            INVALID_PARAMETER_VALUE,
        )
    return max_results


def _page(items: list[Any], page_token: str | None, limit: int) -> PagedList[Any]:
    start = SearchUtils.parse_start_offset_from_page_token(page_token)  # type: ignore[no-untyped-call]
    end = start + limit
    token = SearchUtils.create_page_token(end) if end < len(items) else None  # type: ignore[no-untyped-call]
    return PagedList(items[start:end], token)
