"""`GitxpArtifactRepository`: MLflow's artifact-repository interface over a gitxp run's artifacts.

MLflow finds it through the `mlflow.artifact_repository` entry point for
`gitxp://<run id>/artifacts/<path>?repo=<root>` URIs, the artifact URIs the
tracking store gives runs and LoggedModels. Files are gitxp artifacts:
small ones in the run's git tree, large ones (over `gitxp.artifactThreshold`,
5 MiB by default) in the content-addressed artifact store, as
`Run.log_artifact` keeps them. Logging into a run this process records adds
to its next checkpoint; logging into any other run (ended, or recorded
elsewhere) commits at once. Reads verify each file's sha256.
"""

from __future__ import annotations

import os
import posixpath
from typing import Any

from mlflow.entities import FileInfo
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST
from mlflow.store.artifact.artifact_repo import ArtifactRepository

from ...format import storage
from ...format.ids import is_run_id
from ...format.refs import RUNS_PREFIX, TRASH_PREFIX
from ...git.refs import read_ref
from ...git.repository import GitRepo
from ...store import artifacts as gitxp_artifacts
from . import live
from .store import mlflow_errors
from .uri import ARTIFACTS, SCHEME, artifact_uri, parse_artifact_uri, repo_root


class GitxpArtifactRepository(ArtifactRepository):
    """The artifacts of one gitxp run (below one path of them), as MLflow reads and writes them."""

    def __init__(
        self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
    ) -> None:
        super().__init__(artifact_uri, tracking_uri, registry_uri)
        self.run_id: str  # "" for a whole repository
        if artifact_uri.startswith(SCHEME + "://") and not artifact_uri.startswith(SCHEME + ":///"):
            self.root, self.run_id, self.base = parse_artifact_uri(artifact_uri)
        else:  # a whole repository: `mlflow server --artifacts-destination gitxp:PATH`
            self.root, self.run_id, self.base = repo_root(artifact_uri), "", ""

    def _delegate(self, path: str | None) -> tuple[GitxpArtifactRepository, str]:
        """The repository of the run that *path* (`<exp id>/<run id>/artifacts/...`, as the
        server's proxy gives it) belongs to, and the path inside that run's artifacts."""
        parts = (path or "").strip("/").split("/")
        if len(parts) < 3 or parts[2] != ARTIFACTS.strip("/") or not is_run_id(parts[1]):
            raise MlflowException(
                f"{path!r} is not a run's artifact path (<experiment id>/<run id>/artifacts/...)",
                INVALID_PARAMETER_VALUE,
            )
        run_uri = artifact_uri(self.root, parts[1])
        return GitxpArtifactRepository(run_uri, self.tracking_uri), "/".join(parts[3:])

    def _name(self, *parts: str | None) -> str:
        """The artifact path of *parts* below this repository's base path."""
        return "/".join(p.strip("/") for p in (self.base, *parts) if p and p.strip("/"))

    # -- writing ------------------------------------------------------------------------------
    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        if not self.run_id:
            run_repo, rest = self._delegate(artifact_path)
            return run_repo.log_artifact(local_file, rest or None)
        name = self._name(artifact_path, os.path.basename(local_file))
        with mlflow_errors(), live.writing(self.root, self.run_id) as run:
            gitxp_artifacts.log_artifact(run._writer, local_file, name)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Every file below *local_dir*, as one directory artifact (or its entries at the root)."""
        if not self.run_id:
            run_repo, rest = self._delegate(artifact_path)
            return run_repo.log_artifacts(local_dir, rest or None)
        with mlflow_errors(), live.writing(self.root, self.run_id) as run:
            target = self._name(artifact_path)
            if target:
                gitxp_artifacts.log_artifact(run._writer, local_dir, target)
                return
            for entry in sorted(os.scandir(local_dir), key=lambda e: e.name):
                if not entry.is_symlink():
                    gitxp_artifacts.log_artifact(run._writer, entry.path, entry.name)

    # -- reading ------------------------------------------------------------------------------
    def _view(self) -> tuple[GitRepo, dict[str, tuple[int, str]], dict[str, Any]]:
        """(repository, the run's files, its manifest): from memory when it is open here."""
        run = live.get(self.run_id)
        if run is not None:
            writer = run._writer
            with writer.lock:
                files = dict(writer.files)
            return (
                writer.git,
                files,
                gitxp_artifacts._read_manifest(writer.read_file(storage.ARTIFACTS_FILE)),
            )
        git = GitRepo(self.root)
        for prefix in (RUNS_PREFIX, TRASH_PREFIX):
            sha = read_ref(git, prefix + self.run_id)
            if sha is not None:
                tree = git.read_commit(sha).tree
                files = {p: (m, s) for p, m, s in git.walk_tree(tree)}
                return git, files, gitxp_artifacts.manifest_at(git, sha, self.run_id)
        git.close()
        raise MlflowException(f"Run {self.run_id!r} not found", RESOURCE_DOES_NOT_EXIST)

    def _entries(self) -> list[dict[str, Any]]:
        with mlflow_errors():
            git, _files, manifest = self._view()
            if live.get(self.run_id) is None:
                git.close()
        return gitxp_artifacts.list_files(manifest)

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """The files and directories directly below *path*."""
        if not self.run_id:
            run_repo, rest = self._delegate(path)
            head = (path or "").strip("/")[: len((path or "").strip("/")) - len(rest)].strip("/")
            return [
                FileInfo(f"{head}/{f.path}", f.is_dir, f.file_size)
                for f in run_repo.list_artifacts(rest or None)
            ]
        prefix = self._name(path)
        children: dict[str, FileInfo] = {}
        for entry in self._entries():
            full = str(entry["path"])
            if prefix and not full.startswith(prefix + "/"):
                continue
            rest = full[len(prefix) + 1 :] if prefix else full
            head, _, tail = rest.partition("/")
            shown = posixpath.join(path.strip("/"), head) if path and path.strip("/") else head
            if tail:
                children.setdefault(shown, FileInfo(shown, True, None))
            else:
                children[shown] = FileInfo(shown, False, int(entry.get("size") or 0))
        return [children[k] for k in sorted(children)]

    def _is_directory(self, artifact_path: str) -> bool:
        if not self.run_id:
            run_repo, rest = self._delegate(artifact_path)
            return not rest or run_repo._is_directory(rest)
        prefix = self._name(artifact_path)
        return any(str(e["path"]).startswith(prefix + "/") for e in self._entries())

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        """Write one artifact file to *local_path*, checked against its sha256."""
        if not self.run_id:
            run_repo, rest = self._delegate(remote_file_path)
            return run_repo._download_file(rest, local_path)
        from ...store.blobs import read_run_file

        name = self._name(remote_file_path)
        with mlflow_errors():
            git, files, manifest = self._view()
            try:
                entry = next(
                    (e for e in gitxp_artifacts.list_files(manifest) if e["path"] == name), None
                )
                if entry is None:
                    raise MlflowException(
                        f"artifact {name!r} not found in run {self.run_id}",
                        RESOURCE_DOES_NOT_EXIST,
                    )
                if entry.get("location") == "store":
                    config = gitxp_artifacts.settings(git)
                    source = gitxp_artifacts.ensure_local(git, entry, config, self.run_id)
                    with open(source, "rb") as handle:
                        data = handle.read()
                else:
                    found = files.get(storage.ARTIFACTS_DIR + name)
                    if found is None:
                        raise MlflowException(
                            f"artifact {name!r} of run {self.run_id} is listed but missing "
                            "from the run's tree",
                            RESOURCE_DOES_NOT_EXIST,
                        )
                    data = read_run_file(git, found[1], name, limit=int(entry["size"]))
            finally:
                if live.get(self.run_id) is None:
                    git.close()
        _check_sha(data, entry, name)
        os.makedirs(os.path.dirname(os.path.abspath(local_path)), exist_ok=True)
        with open(local_path, "wb") as out:
            out.write(data)

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        raise MlflowException(
            "gitxp keeps a run's artifacts in its history; deleting them is not supported "
            "(remove the whole run with MlflowClient().delete_run, i.e. gitxp's trash)"
        )


def _check_sha(data: bytes, entry: dict[str, Any], name: str) -> None:
    import hashlib

    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise MlflowException(f"artifact {name!r}: content does not match its recorded sha256")
