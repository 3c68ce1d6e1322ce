"""gitxp's registry as MLflow's registry entities: version numbers, sources, download URIs.

`ModelView` numbers a model's versions as MLflow does (1, 2, 3, ... in the
order they were registered) and builds `ModelVersion` and `RegisteredModel`
entities from the registry's state. `locate_source` and `commit_of` find the
run and artifact path a version registers, and the commit its tag names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlflow.entities.model_registry import ModelVersion, RegisteredModel, RegisteredModelAlias
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST

from ...errors import GitxpError
from ...format import registry as fmt
from ...format.ids import is_run_id
from ...format.refs import RUNS_PREFIX
from ...git.refs import read_ref
from ...store.record import RunRecord
from ...store.registry import Model, run_of
from . import live
from .convert import MLFLOW_META
from .uri import artifact_uri, parse_artifact_uri

if TYPE_CHECKING:
    from ...git.repository import GitRepo
    from ...store.registry import ModelVersion as GitxpVersion


class ModelView:
    """One model of gitxp's registry as MLflow sees it (active, registered versions, numbered)."""

    def __init__(self, git: GitRepo, root: str, model: Model) -> None:
        self.git, self.root, self.model = git, root, model
        order: list[str] = []
        for event in model.events:
            if event.action == fmt.REGISTER and event.version and event.version not in order:
                order.append(event.version)
        self.numbers = {semver: i + 1 for i, semver in enumerate(order)}
        self._runs: dict[str, tuple[str | None, str | None]] = {}

    def _active(self) -> list[GitxpVersion]:
        return [v for v in self.model.versions if v.registered and v.active]

    def semver(self, version: Any) -> str:
        """The semantic version of MLflow's version number *version* (active ones only)."""
        try:
            number = int(str(version))
        except ValueError:
            raise MlflowException(
                f"Model version must be an integer, got {version!r}", INVALID_PARAMETER_VALUE
            ) from None
        for v in self._active():
            if self.numbers.get(v.version) == number:
                return v.version
        raise MlflowException(
            f"Model Version (name={self.model.name}, version={version}) not found",
            RESOURCE_DOES_NOT_EXIST,
        )

    def _run(self, v: GitxpVersion) -> tuple[str | None, str | None]:
        """(run id, LoggedModel id) of version *v* (None: not a gitxp run / no such model)."""
        if v.version not in self._runs:
            try:
                run_id: str | None = run_of(self.git, v)
            except GitxpError:
                run_id = None
            self._runs[v.version] = (run_id, self._model_id(run_id, v) if run_id else None)
        return self._runs[v.version]

    def _model_id(self, run_id: str, v: GitxpVersion) -> str | None:
        """The LoggedModel the version's run keeps at the version's path, if any."""
        try:
            section = RunRecord(self.git, RUNS_PREFIX + run_id, v.commit).meta.get(MLFLOW_META)
        except Exception:  # a commit that is not a readable run: no LoggedModel
            return None
        models = section.get("models") if isinstance(section, dict) else None
        path = (v.path or "").strip("/")
        for model_id, record in (models if isinstance(models, dict) else {}).items():
            if isinstance(record, dict) and str(record.get("path", "")).strip("/") == path:
                return str(model_id)
        return None

    def version_entity(self, semver: str) -> ModelVersion:
        """The MLflow `ModelVersion` of version *semver*."""
        v = self.model.version(semver)
        run_id, model_id = self._run(v)
        path = (v.path or "").strip("/")
        if model_id:
            source = f"models:/{model_id}"
        elif run_id:
            source = f"runs:/{run_id}/{path}" if path else f"runs:/{run_id}"
        else:
            source = f"git:{v.commit}"
        first = v.message.splitlines()[0] if v.message else ""
        default = fmt.default_message(fmt.REGISTER, v.model, v.version, None)
        touched = [
            e.time for e in self.model.events if e.version == v.version or e.commit == v.commit
        ]
        return ModelVersion(
            name=v.model,
            version=str(self.numbers[v.version]),
            creation_timestamp=v.created_at * 1000,
            last_updated_timestamp=max(touched, default=v.created_at) * 1000,
            description="" if first == default else first,
            user_id=v.author,
            current_stage="None",
            source=source,
            run_id=run_id,
            tags=[],
            aliases=list(v.stages),
            model_id=model_id,
        )

    def version_entities(self) -> list[ModelVersion]:
        return [self.version_entity(v.version) for v in self._active()]

    def latest(self) -> ModelVersion | None:
        """The entity of the version registered last that is still active."""
        active = self._active()
        if not active:
            return None
        return self.version_entity(max(active, key=lambda v: self.numbers[v.version]).version)

    def registered_model(self) -> RegisteredModel:
        latest = self.latest()
        events = self.model.events
        return RegisteredModel(
            self.model.name,
            creation_timestamp=events[0].time * 1000 if events else None,
            last_updated_timestamp=events[-1].time * 1000 if events else None,
            description="",
            latest_versions=[latest] if latest else [],
            tags=[],
            aliases=[
                RegisteredModelAlias(stage, str(self.numbers[v.version]))  # type: ignore[no-untyped-call]
                for stage, v in self.model.stages.items()
                if v.version in self.numbers
            ],
        )

    def download_uri(self, semver: str) -> str:
        """Where the version's model files are: its run's artifacts at the version's path."""
        v = self.model.version(semver)
        run_id, _ = self._run(v)
        if run_id is None:
            raise MlflowException(
                f"{v.reference} names commit {v.commit[:12]}, which is not a gitxp run, so it "
                "has no model files to load",
                RESOURCE_DOES_NOT_EXIST,
            )
        return artifact_uri(self.root, run_id, v.path or "")


def locate_source(
    root: str, store_uri: str, source: str, run_id: str | None, model_id: str | None
) -> tuple[str, str]:
    """(run id, artifact path) of a version's *source*: `runs:/<run>/<path>`,
    `models:/<LoggedModel id>`, a `gitxp://` artifact URI, or the server's proxied
    `mlflow-artifacts:/<exp>/<run>/artifacts/<path>`."""
    text = str(source or "")
    if model_id is None and text.startswith("models:/m-"):
        model_id = text[len("models:/") :].strip("/")
    if model_id:
        from .store import GitxpTrackingStore

        store = GitxpTrackingStore(store_uri)
        text = store.get_logged_model(model_id).artifact_location
    if text.startswith("runs:/"):
        found, _, path = text[len("runs:/") :].partition("/")
        return _checked_run(found, source), path.strip("/")
    if text.startswith("gitxp://"):
        repo, found, path = parse_artifact_uri(text)
        if repo != root:
            raise MlflowException(
                f"{source!r} is a run of the repository {repo}, not of {root}; a model version "
                "registers a run of the registry's own repository",
                INVALID_PARAMETER_VALUE,
            )
        return _checked_run(found, source), path
    if text.startswith("mlflow-artifacts:"):
        parts = text.split(":", 1)[1].strip("/").split("/")
        if len(parts) >= 3 and parts[2] == "artifacts":
            return _checked_run(parts[1], source), "/".join(parts[3:])
    raise MlflowException(
        f"cannot register {source!r}: gitxp's registry tags a run of this repository; give "
        "runs:/<run id>/<artifact path> or models:/<logged model id>",
        INVALID_PARAMETER_VALUE,
    )


def _checked_run(run_id: str, source: str) -> str:
    if not is_run_id(run_id):
        raise MlflowException(
            f"{source!r} does not name a gitxp run (no run id in it)", INVALID_PARAMETER_VALUE
        )
    return run_id


def commit_of(root: str, run_id: str) -> str:
    """The commit a new version of run *run_id* names: its ref's tip (a run this process is
    recording is checkpointed first, so the tip holds the model files logged so far)."""
    from ...git.repository import GitRepo

    run = live.get(run_id)
    if run is not None:
        run.checkpoint()
    with GitRepo(root) as git:
        sha = read_ref(git, RUNS_PREFIX + run_id)
    if sha is None:
        raise MlflowException(
            f"Run with id={run_id!r} not found (or deleted) in {root}", RESOURCE_DOES_NOT_EXIST
        )
    return sha
