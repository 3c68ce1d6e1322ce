"""What the web UI shows of the model registry: the models page, and a run's registered versions.

Plain JSON-ready dicts built from `Repo`'s registry (`gitxp.store.registry`):
each model with its stages and versions (linked to their runs), and, for one
run, the versions registered from it. Text here is data, never markup: the
page puts every string into the document as text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import RegistryError
from ..store.registry import read_models, run_of

if TYPE_CHECKING:
    from ..store.registry import Model, ModelVersion
    from ..store.repo import Repo

MAX_MODELS = 500
MAX_VERSIONS = 200
MAX_METRICS = 8
MAX_EVENTS = 50


def _run_id(repo: Repo, version: ModelVersion) -> str | None:
    try:
        return run_of(repo.git, version)
    except RegistryError:
        return None


def _history(model: Model) -> list[dict[str, Any]]:
    """The newest registry events of *model*, newest first."""
    return [
        {
            "action": e.action,
            "version": e.version,
            "stage": e.stage,
            "tag": e.tag,
            "time": e.time,
            "author": e.author,
        }
        for e in reversed(model.events[-MAX_EVENTS:])
    ]


def model_view(repo: Repo, model: Model, rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One model: name, latest, stages, deprecated, its versions (with their runs' name,
    status and a few last metric values; ``removed`` when the run's ref is gone) and history."""
    versions = []
    for v in model.versions[:MAX_VERSIONS]:
        run_id = _run_id(repo, v)
        row = rows.get(run_id) if run_id else None
        metrics = dict(list((row or {}).get("metrics", {}).items())[:MAX_METRICS])
        versions.append(
            {
                "version": v.version,
                "stages": list(v.stages),
                "registered": v.registered,
                "active": v.active,
                "created_at": v.created_at,
                "author": v.author,
                "message": v.message,
                "path": v.path,
                "commit": v.commit,
                "run_id": run_id,
                "run_name": row.get("name") if row else None,
                "status": row.get("status") if row else None,
                "removed": run_id is not None and row is None,
                "metrics": metrics,
            }
        )
    latest = model.latest
    return {
        "name": model.name,
        "latest": latest.version if latest else None,
        "deprecated": model.deprecated,
        "stages": {stage: v.version for stage, v in model.stages.items()},
        "versions": versions,
        "more_versions": max(0, len(model.versions) - MAX_VERSIONS),
        "history": _history(model),
    }


def models_view(repo: Repo) -> dict[str, Any]:
    """Every registered model (up to MAX_MODELS), by name, for the models page."""
    models = read_models(repo.git)
    rows = {r["id"]: r for r in repo.rows()}
    names = list(models)[:MAX_MODELS]
    return {
        "total": len(models),
        "models": [model_view(repo, models[name], rows) for name in names],
    }


def run_versions(repo: Repo, run_id: str) -> list[dict[str, Any]]:
    """The model versions registered from run *run_id*: model, version, stages, active."""
    out = []
    for model in read_models(repo.git).values():
        for v in model.versions:
            if _run_id(repo, v) == run_id:
                out.append(
                    {
                        "model": model.name,
                        "version": v.version,
                        "stages": list(v.stages),
                        "registered": v.registered,
                        "active": v.active,
                        "created_at": v.created_at,
                        "deprecated": model.deprecated,
                    }
                )
    return out


__all__ = ["model_view", "models_view", "run_versions"]
