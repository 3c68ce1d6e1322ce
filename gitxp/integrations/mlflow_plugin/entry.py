"""The two callables MLflow's entry points name: they build the store and the repository.

MLflow loads every registered entry point when `mlflow` is imported, for
whichever tracking URI is used. These functions import the plugin (and with
it gitxp's git layer) only when a `gitxp:` URI is actually used, so MLflow
users who never do pay nothing for gitxp being installed.
"""

from __future__ import annotations

from typing import Any


def tracking_store(store_uri: str | None = None, artifact_uri: str | None = None) -> Any:
    """MLflow's tracking store for a `gitxp:` URI (`store.GitxpTrackingStore`)."""
    from .store import GitxpTrackingStore

    return GitxpTrackingStore(store_uri, artifact_uri)


def artifact_repository(
    artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
) -> Any:
    """MLflow's artifact repository for a `gitxp:` URI (`artifacts.GitxpArtifactRepository`)."""
    from .artifacts import GitxpArtifactRepository

    return GitxpArtifactRepository(artifact_uri, tracking_uri, registry_uri)
