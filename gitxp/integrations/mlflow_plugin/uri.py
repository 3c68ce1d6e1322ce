"""The `gitxp:` URIs: which repository a tracking URI names, where a run's artifacts are.

Tracking URIs: `gitxp:` (the repository containing the working
directory), `gitxp:PATH` (relative or absolute) and `gitxp:///ABS/PATH`.
A run's artifact URI is `gitxp://<run id>/artifacts?repo=<root>`: MLflow
appends sub-paths to the path and keeps the query, so the run and the
repository survive `runs:/` and LoggedModel resolution. Behind
`mlflow server`, runs get proxied `mlflow-artifacts:/<exp>/<run>/artifacts`
URIs instead, and the server's `--artifacts-destination gitxp:PATH`
resolves those paths back to the runs.
"""

from __future__ import annotations

import functools
import os
import urllib.parse

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from ...errors import GitxpError
from ...git.repository import GitRepo

SCHEME = "gitxp"
ARTIFACTS = "/artifacts"


def tracking_path(uri: str) -> str:
    """The directory a tracking URI names (not yet checked to be in a repository)."""
    if not uri.startswith(SCHEME + ":"):
        raise MlflowException(
            f"{uri!r} is not a gitxp URI; use gitxp:, gitxp:PATH or gitxp:///ABS/PATH",
            INVALID_PARAMETER_VALUE,
        )
    rest = uri[len(SCHEME) + 1 :]
    if rest.startswith("//"):
        parsed = urllib.parse.urlparse(uri)
        if parsed.netloc:
            raise MlflowException(
                f"{uri!r}: gitxp URIs name a local repository, not a host; "
                "write gitxp:///ABS/PATH (three slashes) or gitxp:PATH",
                INVALID_PARAMETER_VALUE,
            )
        rest = urllib.parse.unquote(parsed.path)
    return os.path.abspath(os.path.expanduser(rest or "."))


def repo_root(uri: str) -> str:
    """The work-tree root (or git directory, for a bare repository) a tracking URI names."""
    path = tracking_path(uri)
    try:
        with GitRepo.discover(path) as git:
            return os.path.realpath(git.root)
    except GitxpError as exc:
        raise MlflowException(
            f"tracking URI {uri!r}: {exc} (run `git init` there, or point the URI at a "
            "directory inside a git repository)",
            INVALID_PARAMETER_VALUE,
        ) from None


@functools.lru_cache(maxsize=64)
def _repo_query(root: str) -> str:
    return urllib.parse.urlencode({"repo": root})


def artifact_uri(root: str, run_id: str, path: str = "") -> str:
    """The artifact URI of run *run_id* of the repository at *root* (below *path*)."""
    sub = urllib.parse.quote("/" + path.strip("/")) if path.strip("/") else ""
    return f"{SCHEME}://{run_id}{ARTIFACTS}{sub}?{_repo_query(root)}"


def run_artifact_uri(artifact_root: str, experiment_id: str, run_id: str, path: str = "") -> str:
    """Where a run's artifacts are: under `mlflow-artifacts:` when `mlflow server` proxies
    them (then `--artifacts-destination gitxp:PATH` brings them back here), else in the
    run itself (`artifact_uri`); *artifact_root* is the proxy root or the repository root."""
    if artifact_root.startswith("mlflow-artifacts:"):
        from mlflow.utils.uri import append_to_uri_path

        parts = [experiment_id, run_id, ARTIFACTS.strip("/")] + ([path] if path else [])
        return str(append_to_uri_path(artifact_root, *parts))  # type: ignore[no-untyped-call]
    return artifact_uri(artifact_root, run_id, path)


def parse_artifact_uri(uri: str) -> tuple[str, str, str]:
    """(repository root, run id, path inside the run's artifacts) of an artifact URI."""
    parsed = urllib.parse.urlparse(uri)
    repo = urllib.parse.parse_qs(parsed.query).get("repo", [""])[0]
    path = urllib.parse.unquote(parsed.path)
    if parsed.scheme != SCHEME or not parsed.netloc or not repo or not path.startswith(ARTIFACTS):
        raise MlflowException(
            f"{uri!r} is not a gitxp artifact URI (gitxp://<run id>/artifacts/...?repo=<path>)",
            INVALID_PARAMETER_VALUE,
        )
    return repo, parsed.netloc, path[len(ARTIFACTS) :].strip("/")
