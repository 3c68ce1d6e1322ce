"""MLflow's model registry calls over gitxp's (GTO-compatible) model registry.

MLflow numbers a registered model's versions 1, 2, 3, ...; gitxp names them
with semantic versions (v0.0.1, ...) in git tags. The two meet here:
**MLflow version N is the N-th version registered** (in registration order,
deregistered ones included, so a number never changes meaning), and an MLflow
alias is a gitxp stage: `set_registered_model_alias("churn", "champion", 2)`
assigns stage ``champion`` to the second version (the tag ``churn#champion#N``).

URIs: ``models:/NAME/N``, ``models:/NAME/latest`` and ``models:/NAME@ALIAS``
resolve through the registry to the registered run and the model's artifact
path recorded at registration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ArtifactError, GitxpError, ModelNotFoundError, RegistryError
from ..format.registry import REGISTER, check_model_name, check_stage
from ..store import registry_actions
from ..store.registry import Model, ModelVersion, run_of
from . import mlflow_fluent as fluent

if TYPE_CHECKING:
    from ..store.repo import Repo

_NUMBERED = re.compile(r"(?P<name>.+)/(?P<version>[0-9]+|latest)")
_ALIASED = re.compile(r"(?P<name>[^@]+)@(?P<alias>[^@/]+)")


@dataclass
class MlflowModelVersion:
    """A registered model version, shaped like `mlflow.entities.model_registry.ModelVersion`;
    `gitxp_version` is its semantic version in gitxp's registry (``v0.0.2``)."""

    name: str
    version: str
    creation_timestamp: int
    run_id: str | None
    source: str | None
    gitxp_version: str
    aliases: list[str] = field(default_factory=list)
    current_stage: str = "None"
    status: str = "READY"
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def last_updated_timestamp(self) -> int:
        return self.creation_timestamp


def numbered(model: Model) -> list[ModelVersion]:
    """The versions of *model* registered by a tag, in registration order (MLflow's 1, 2, ...)."""
    by_version = {v.version: v for v in model.versions if v.registered}
    order = [e.version for e in model.events if e.action == REGISTER and e.version in by_version]
    return [by_version[v] for v in dict.fromkeys(order)]


def number_of(model: Model, version: ModelVersion) -> int:
    """MLflow's number of *version* of *model*."""
    return [v.version for v in numbered(model)].index(version.version) + 1


def by_number(model: Model, number: int | str) -> ModelVersion:
    """The version MLflow numbers *number* (``latest``: the greatest active one)."""
    if str(number) == "latest":
        return model.version("latest")
    try:
        n = int(number)
    except (TypeError, ValueError):
        raise RegistryError(model.name, f"{number!r} is not a model version number") from None
    found = numbered(model)
    if not 1 <= n <= len(found):
        raise ModelNotFoundError(
            f"{model.name}/{n}", f"{model.name} has {len(found)} registered versions"
        )
    if not found[n - 1].active:
        raise ModelNotFoundError(f"{model.name}/{n}", f"version {n} was deregistered")
    return found[n - 1]


def _run(repo: Repo, version: ModelVersion) -> str | None:
    try:
        return run_of(repo.git, version)
    except RegistryError:
        return None


def to_mlflow(repo: Repo, model: Model, version: ModelVersion) -> MlflowModelVersion:
    """*version* as MLflow shows a model version."""
    run_id = _run(repo, version)
    source = f"runs:/{run_id}/{version.path}" if run_id and version.path else None
    return MlflowModelVersion(
        name=model.name,
        version=str(number_of(model, version)),
        creation_timestamp=version.created_at * 1000,
        run_id=run_id,
        source=source,
        gitxp_version=version.version,
        aliases=list(version.stages),
        description=version.message,
    )


def register(run_ref: str, path: str, name: str) -> MlflowModelVersion:
    """Register the model at artifact *path* of run *run_ref* as a new version of *name*.

    A run active in this process is checkpointed first and its commit holding
    the model is registered (the run may go on); any other run must have ended.
    """
    check_model_name(name)
    active = next((a.gitxp_run for a in fluent.active_stack() if a.gitxp_run.id == run_ref), None)
    if active is not None:
        active.checkpoint()
    with fluent.tracking_repo() as repo:
        if active is None:
            registered = repo.register_model(run_ref, name, path=path or None)
        else:
            _, tip = repo.resolve(active.id)
            record = repo.run(active.id)
            try:
                record.artifacts(path.rstrip("/") or None)
            except ArtifactError as exc:
                raise RegistryError(
                    name, f"run {active.id} has no artifact {path!r}: {exc}"
                ) from None
            registered = registry_actions.register(
                repo.git, name, active.id, tip, path=path or None
            )
        model = repo.model(name)
        return to_mlflow(repo, model, model.version(registered.version))


def resolve_models_uri(rest: str) -> tuple[str, str] | None:
    """(run id, artifact path) of ``NAME/N``, ``NAME/latest`` or ``NAME@ALIAS`` (the part of
    a ``models:/`` URI after the scheme); None when *rest* has neither shape."""
    numbered_match = _NUMBERED.fullmatch(rest)
    aliased = _ALIASED.fullmatch(rest)
    if numbered_match is None and aliased is None:
        return None
    with fluent.tracking_repo() as repo:
        if aliased is not None:
            name = aliased["name"]
            version = repo.model(name).stage(aliased["alias"])
        else:
            name = numbered_match["name"]  # type: ignore[index]
            version = by_number(repo.model(name), numbered_match["version"])  # type: ignore[index]
        run_id = _run(repo, version)
    if run_id is None:
        raise RegistryError(name, f"{version.reference} names no gitxp run")
    if not version.path:
        raise RegistryError(
            name,
            f"{version.reference} records no model path; load it as runs:/{run_id}/<path>, "
            "or register with a path (log_model(..., registered_model_name=...) records one)",
        )
    return run_id, version.path.strip("/")


def set_alias(name: str, alias: str, version: int | str) -> None:
    """Give *alias* (a gitxp stage) to MLflow version *version* of model *name*; a no-op when
    that version holds it already.

    An MLflow alias names one version, while a GTO stage falls back to the
    version assigned before when the newest assignment is taken away: so the
    stage is first unassigned from the versions that hold it, then assigned.
    """
    check_stage(alias)
    with fluent.tracking_repo() as repo:
        target = by_number(repo.model(name), version)
        if alias in target.stages:
            return
        _take_away(repo, name, alias)
        repo.assign_stage(name, alias, version=target.version)


def _take_away(repo: Repo, name: str, alias: str) -> None:
    """Unassign stage *alias* of model *name* until no version holds it."""
    for _ in range(len(repo.model(name).versions)):
        holder = repo.model(name).stages.get(alias)
        if holder is None:
            return
        repo.unassign_stage(name, alias, version=holder.version)


def delete_alias(name: str, alias: str) -> None:
    """Take *alias* from model *name*: no version holds the stage afterwards."""
    with fluent.tracking_repo() as repo:
        repo.model(name).stage(alias)  # ModelNotFoundError when no version holds it
        _take_away(repo, name, alias)


def get_version(name: str, version: int | str | None = None, alias: str | None = None) -> Any:
    """MLflow version *version* (or the one holding *alias*) of model *name*."""
    with fluent.tracking_repo() as repo:
        model = repo.model(name)
        if alias is not None:
            found = model.stage(alias)
        elif version is not None:
            found = by_number(model, version)
        else:
            raise GitxpError("give a version number or an alias")
        return to_mlflow(repo, model, found)


def latest_versions(name: str) -> list[MlflowModelVersion]:
    """Every active registered version of *name*, newest registration last."""
    with fluent.tracking_repo() as repo:
        model = repo.model(name)
        return [to_mlflow(repo, model, v) for v in numbered(model) if v.active]


__all__ = [
    "MlflowModelVersion",
    "by_number",
    "delete_alias",
    "get_version",
    "latest_versions",
    "number_of",
    "numbered",
    "register",
    "resolve_models_uri",
    "set_alias",
    "to_mlflow",
]
