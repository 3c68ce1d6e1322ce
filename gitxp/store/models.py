"""`Repo`'s model registry methods: list and read models, register runs, assign stages.

The state is read by `gitxp.store.registry`, the tags are written by
`gitxp.store.registry_actions`; this is the face `Repo` shows for both, taking
run references as every other `Repo` method does. Both are imported by the
methods that use them: every `Repo` carries this mixin, and a command that
never touches the registry (`gitxp log`, `gitxp run`) should not pay for
loading it (docs/performance.md, "Everyday latency").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ArtifactError, CorruptRunError, RegistryError, RunActiveError
from .record import RunRecord, read_row

if TYPE_CHECKING:
    import pandas as pd

    from ..git.repository import GitRepo
    from .registry import Model, ModelVersion

MODEL_COLUMNS = ("name", "latest", "latest_run", "versions", "deprecated", "updated_at")
VERSION_COLUMNS = (
    "model",
    "version",
    "stages",
    "registered",
    "active",
    "created_at",
    "run_id",
    "run_name",
    "status",
    "commit",
    "path",
)


class RegistryMixin:
    """The model registry of a repository (mixed into `Repo`)."""

    git: GitRepo

    def resolve(self, ref: str) -> tuple[str, str]:  # pragma: no cover - Repo defines it
        raise NotImplementedError

    def rows(self) -> list[dict[str, Any]]:  # pragma: no cover - Repo defines it
        raise NotImplementedError

    # -- reading ---------------------------------------------------------------
    def model(self, name: str) -> Model:
        """Model *name*: its versions (greatest first), stages, and history
        (`ModelNotFoundError` when no tag names it)."""
        from .registry import find_model

        return find_model(self.git, name)

    def model_rows(self) -> list[dict[str, Any]]:
        """One plain dict per model (what `models()` tabulates), by name."""
        from .registry import read_models

        out = []
        for model in read_models(self.git).values():
            latest = model.latest
            row: dict[str, Any] = {
                "name": model.name,
                "latest": latest.version if latest else None,
                "latest_run": self._run_id(latest) if latest else None,
                "versions": sum(1 for v in model.versions if v.registered and v.active),
                "deprecated": model.deprecated,
                "updated_at": model.events[-1].time if model.events else None,
            }
            for stage, v in model.stages.items():
                row[f"stages.{stage}"] = v.version
            out.append(row)
        return out

    def models(self) -> pd.DataFrame:
        """One row per registered model: name, latest (version), latest_run, versions (how
        many are active), deprecated, updated_at (last registry event, UTC), then
        ``stages.<stage>``: the version holding each stage."""
        import pandas as pd

        rows = self.model_rows()
        columns = list(MODEL_COLUMNS) + sorted({k for r in rows for k in r} - set(MODEL_COLUMNS))
        frame = pd.DataFrame(rows, columns=columns)
        frame["updated_at"] = pd.to_datetime(frame["updated_at"], unit="s", utc=True)
        return frame

    def version_rows(self, name: str) -> list[dict[str, Any]]:
        """One plain dict per version of model *name*, greatest first, with its run's
        name, status and last metric values (``metrics``), read even if the run was removed."""
        from .registry import find_model

        model = find_model(self.git, name)
        live = {r["id"]: r for r in self.rows()}
        out = []
        for v in model.versions:
            run_id = self._run_id(v)
            run = live.get(run_id) if run_id else None
            if run is None and run_id is not None:
                run = self._row_at(v.commit)
            out.append(
                {
                    "model": v.model,
                    "version": v.version,
                    "stages": list(v.stages),
                    "registered": v.registered,
                    "active": v.active,
                    "created_at": v.created_at,
                    "run_id": run_id,
                    "run_name": run.get("name") if run else None,
                    "status": run.get("status") if run else None,
                    "commit": v.commit,
                    "path": v.path,
                    "removed": run_id is not None and run_id not in live,
                    "metrics": dict(run.get("metrics") or {}) if run else {},
                }
            )
        return out

    def model_versions(self, name: str) -> pd.DataFrame:
        """One row per version of model *name* (greatest first): model, version, stages,
        registered, active, created_at, run_id, run_name, status, commit, path, removed,
        then ``metrics.<key>``: the last value of each metric of the version's run."""
        import pandas as pd

        rows = self.version_rows(name)
        flat = [
            {
                **{k: v for k, v in r.items() if k != "metrics"},
                **{f"metrics.{k}": m for k, m in r["metrics"].items()},
            }
            for r in rows
        ]
        base = [*VERSION_COLUMNS, "removed"]
        columns = base + sorted({k for r in flat for k in r} - set(base))
        frame = pd.DataFrame(flat, columns=columns)
        frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s", utc=True)
        return frame

    def _run_id(self, version: ModelVersion) -> str | None:
        from .registry import run_of

        try:
            return run_of(self.git, version)
        except RegistryError:
            return None

    def _row_at(self, commit: str) -> dict[str, Any] | None:
        try:
            return read_row(self.git, commit)
        except (CorruptRunError, KeyError, ValueError):
            return None

    # -- writing ---------------------------------------------------------------
    def register_model(
        self,
        run: str,
        name: str,
        version: str | None = None,
        bump: str | None = None,
        path: str | None = None,
        message: str | None = None,
    ) -> ModelVersion:
        """Register *run* (any run reference) as a new version of model *name*.

        The version is *version* (``v1.2.3``) or the next one: v0.0.1 first, then
        the greatest version so far with *bump* (``major``, ``minor``, ``patch``,
        the default) raised. *path* records which artifact of the run is the model
        (``model/``). Writes the annotated tag ``NAME@VERSION`` at the run's commit::

            repo.register_model("swift-otter-42", "churn", path="model/")
        """
        ref, tip = self.resolve(run)
        record = RunRecord(self.git, ref, tip)
        if record.status == "RUNNING":
            raise RunActiveError(record.id, "register")
        if path is not None and isinstance(path, str) and path.strip():
            try:
                record.artifacts(path.strip().rstrip("/"))
            except ArtifactError as exc:
                raise RegistryError(
                    name, f"run {record.id} has no artifact {path!r}: {exc}"
                ) from None
        from . import registry_actions as actions

        return actions.register(self.git, name, record.id, tip, version, bump, path, message)

    def assign_stage(
        self, name: str, stage: str, version: str | None = None, message: str | None = None
    ) -> ModelVersion:
        """Assign *stage* to *version* of model *name* (``NAME#STAGE#N``); *name* may carry the
        version (``churn@v1.0.0``). Without a version: the latest."""
        name, version = _split(name, version)
        from . import registry_actions as actions

        return actions.assign(self.git, name, version or "latest", stage, message)

    def unassign_stage(
        self, name: str, stage: str, version: str | None = None, message: str | None = None
    ) -> ModelVersion:
        """Take *stage* from the version of model *name* holding it (``NAME#STAGE!#N``)."""
        name, version = _split(name, version)
        from . import registry_actions as actions

        return actions.unassign(self.git, name, stage, version, message)

    def deregister_version(
        self, name: str, version: str | None = None, message: str | None = None
    ) -> ModelVersion:
        """Deregister *version* of model *name* (``NAME@vX.Y.Z!#N``); *name* may carry it."""
        name, version = _split(name, version)
        if version is None:
            raise RegistryError(
                name, f"say which version of {name} to deregister, e.g. {name}@v0.0.1"
            )
        from . import registry_actions as actions

        return actions.deregister(self.git, name, version, message)

    def deprecate_model(self, name: str, message: str | None = None) -> Model:
        """Deprecate model *name* (``NAME@deprecated#N``); a new registration revives it."""
        from . import registry_actions as actions

        return actions.deprecate(self.git, name, message)


def _split(name: str, version: str | None) -> tuple[str, str | None]:
    """(model, version) from ``churn`` plus *version*, or from ``churn@v1.0.0``."""
    from ..format.registry import parse_reference

    ref = parse_reference(name) if isinstance(name, str) else None
    if ref is None or ref.stage is not None:
        return name, version
    if version is not None and version != ref.version:
        raise RegistryError(ref.model, f"{name!r} and version {version!r} disagree; give one")
    return ref.model, ref.version


__all__ = ["MODEL_COLUMNS", "VERSION_COLUMNS", "RegistryMixin"]
