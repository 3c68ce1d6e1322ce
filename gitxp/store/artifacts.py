"""Artifacts: files and directories kept with a run, small ones in git, large ones in a store.

A file up to the threshold (default 5 MiB) becomes a blob under
``artifacts/<name>/...`` in the run's tree and travels with the run. A
larger file is copied into the repository's content-addressed store,
``.git/gitxp/artifacts/sha256/<2 hex>/<62 hex>`` (never pushed by git),
and the run's tree only holds a pointer: its sha256, size and the shared
store it belongs in. `gitxp push --artifacts` uploads those files to the
shared store (any `pyarrow.fs` URI: s3://, gs://, hdfs://, file://, a
path), `gitxp pull --artifacts` and `gitxp artifacts get` download them,
always verifying the sha256. Stores and settings: `gitxp.store.artifact_store`.

Every run lists its artifacts in ``artifacts.json`` (see docs/sharing.md):

    {"format": 1, "artifacts": {NAME: {"type": "file"|"directory",
      "logged_at": ms, "size": bytes, "files": [
        {"path": "NAME/...", "size": n, "sha256": hex, "mode": "100644",
         "location": "tree"},
        {"path": ..., "size": n, "sha256": hex, "mode": "100644",
         "location": "store", "store": URI|null, "uri": URI|null}]}}}
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ArtifactError, ArtifactIntegrityError, CorruptRunError, InvalidValueError
from ..format import schema, storage
from ..format.values import check_text
from .artifact_store import (
    DEFAULT_THRESHOLD,
    LOCAL_STORE,
    Settings,
    Store,
    file_chunks,
    hash_copy,
    local_path,
    object_key,
    object_uri,
    parse_size,
    public_uri,
    put_local,
    settings,
    stream_chunks,
)

if TYPE_CHECKING:
    from ..git.remote_config import Remote
    from ..git.repository import GitRepo
    from .record import RunRecord
    from .repo import Repo

Progress = Callable[[str], None]


class RunFiles(Protocol):
    """The files of a run being written, which artifacts are logged into (`RunWriter`)."""

    git: GitRepo
    lock: threading.RLock

    def read_file(self, path: str) -> bytes | None: ...

    def put_file(self, path: str, data: bytes, mode: int = 0o100644) -> None: ...

    def drop_files(self, paths: Iterable[str]) -> None: ...


MANIFEST_FORMAT = 1

__all__ = [
    "DEFAULT_THRESHOLD",
    "MANIFEST_FORMAT",
    "Settings",
    "Store",
    "check_name",
    "download",
    "download_artifacts",
    "ensure_local",
    "list_files",
    "local_path",
    "log_artifact",
    "log_content",
    "log_dict",
    "log_text",
    "manifest_at",
    "object_key",
    "parse_size",
    "public_uri",
    "settings",
    "upload_artifacts",
]


# -- logging ----------------------------------------------------------------------------------------
def check_name(name: str) -> str:
    """An artifact name: a relative path of plain components (no `..`, `.git`, absolute)."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidValueError("artifact name", f"{name!r} must be a non-empty string")
    text = name.strip().replace("\\", "/").strip("/")
    parts = text.split("/")
    if name.strip().startswith("/") or any(
        p in ("", ".", "..") or p.lower() == ".git" or "\x00" in p for p in parts
    ):
        raise InvalidValueError(
            "artifact name", f"{name!r} must be a relative path without '..', '.git' or '//'"
        )
    return text


def _read_manifest(data: bytes | None) -> dict[str, Any]:
    """The manifest in *data*, checked against its schema (`schema.Invalid` when it fails)."""
    if not data:
        return {"format": MANIFEST_FORMAT, "artifacts": {}}
    manifest = schema.load_json(data, storage.ARTIFACTS_FILE)
    return schema.check_manifest(manifest, MANIFEST_FORMAT)


def _files_of(path: str, name: str) -> tuple[str, list[tuple[str, str]], list[str]]:
    """(type, [(path in artifacts/, source file)], [skipped]) for a file or directory."""
    if os.path.isfile(path):
        return "file", [(name, path)], []
    files, skipped = [], []
    for root, dirs, names in os.walk(path, followlinks=False):
        dirs.sort()
        for d in list(dirs):
            full = os.path.join(root, d)
            if os.path.islink(full) or d == ".git":
                dirs.remove(d)
                skipped.append(os.path.relpath(full, path))
        for fname in sorted(names):
            full = os.path.join(root, fname)
            rel = os.path.relpath(full, path).replace(os.sep, "/")
            if os.path.islink(full) or not os.path.isfile(full):
                skipped.append(rel)  # never follow a link out of the directory
                continue
            files.append((f"{name}/{rel}", full))
    return "directory", files, skipped


def log_artifact(
    run_files: RunFiles, path: str | os.PathLike[str], name: str | None = None
) -> dict[str, Any]:
    """Store file or directory *path* as artifact *name* (default: its base name) in *run_files*.

    Returns the artifact's manifest entry. Logging a name again replaces it.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidValueError("artifact path", f"{path!r}: give the path of a file or directory")
    source = os.fspath(path)
    if not os.path.exists(source):
        raise ArtifactError(source, "no such file or directory")
    if not (os.path.isfile(source) or os.path.isdir(source)):
        raise ArtifactError(source, "only regular files and directories can be logged")
    name = check_name(name if name is not None else os.path.basename(os.path.abspath(source)))
    git = run_files.git
    config = settings(git)
    with run_files.lock:
        _check_overlap(_read_manifest(run_files.read_file(storage.ARTIFACTS_FILE)), name)
    kind, files, skipped = _files_of(source, name)
    entries = []
    for rel, full in files:
        st = os.stat(full)
        mode = "100755" if st.st_mode & stat.S_IXUSR else "100644"
        entry: dict[str, Any] = {"path": rel, "size": st.st_size, "mode": mode}
        if st.st_size <= config.threshold:
            with open(full, "rb") as f:
                data = f.read()
            entry.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data), location="tree")
            run_files.put_file(storage.ARTIFACTS_DIR + rel, data, int(mode, 8))
        else:
            sha = put_local(git, full)
            store = config.store_display
            entry.update(
                sha256=sha,
                location="store",
                store=store,
                uri=object_uri(store, sha),
            )
        entries.append(entry)
    record = {
        "type": kind,
        "logged_at": time.time_ns() // 1_000_000,
        "size": sum(e["size"] for e in entries),
        "files": entries,
    }
    if skipped:
        record["skipped"] = skipped[:100]
    with run_files.lock:
        manifest = _read_manifest(run_files.read_file(storage.ARTIFACTS_FILE))
        _check_overlap(manifest, name)
        old = manifest["artifacts"].get(name)
        if old:
            keep = {storage.ARTIFACTS_DIR + e["path"] for e in entries if e["location"] == "tree"}
            run_files.drop_files(
                storage.ARTIFACTS_DIR + e["path"]
                for e in old.get("files", [])
                if e.get("location") == "tree" and storage.ARTIFACTS_DIR + e["path"] not in keep
            )
        manifest["format"] = MANIFEST_FORMAT
        manifest["artifacts"][name] = record
        manifest["artifacts"] = dict(sorted(manifest["artifacts"].items()))
        run_files.put_file(storage.ARTIFACTS_FILE, storage.dumps(manifest))
    return {"name": name, **record}


def log_content(run_files: RunFiles, data: bytes, name: str) -> dict[str, Any]:
    """Store in-memory *data* as the file artifact *name* in *run_files* (as if from a file)."""
    import tempfile

    name = check_name(name)
    with tempfile.TemporaryDirectory(prefix="gitxp-artifact-") as tmp:
        local = os.path.join(tmp, name.rsplit("/", 1)[-1])
        with open(local, "wb") as f:
            f.write(data)
        return log_artifact(run_files, local, name)


def log_text(run_files: RunFiles, text: str, name: str) -> dict[str, Any]:
    """Store *text* (UTF-8) as the file artifact *name* in *run_files*."""
    if not isinstance(text, str):
        raise InvalidValueError("text", f"{type(text).__name__} given: log_text takes a str")
    check_text(f"artifact {name!r}", text)  # a lone surrogate cannot be UTF-8: refuse it
    return log_content(run_files, text.encode("utf-8"), name)


def _plain(value: Any) -> Any:
    """JSON's fallback for what a config dict commonly holds: numpy values and paths."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON serializable")


def log_dict(run_files: RunFiles, value: Any, name: str) -> dict[str, Any]:
    """Store *value* as the artifact *name*: YAML when it ends in .yaml or .yml, else JSON.

    numpy values and paths are written as their plain equivalents.
    """
    import json

    yaml_wanted = isinstance(name, str) and name.lower().endswith((".yaml", ".yml"))
    try:
        text = json.dumps(
            value, indent=2, ensure_ascii=False, allow_nan=yaml_wanted, default=_plain
        )
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(str(name), f"cannot be written as JSON or YAML: {exc}") from None
    check_text(f"artifact {name!r}", text)  # ensure_ascii=False keeps lone surrogates
    if yaml_wanted:
        try:
            import yaml
        except ImportError:
            raise ArtifactError(
                name, "writing YAML needs PyYAML: pip install pyyaml, or name it .json"
            ) from None
        text = yaml.safe_dump(json.loads(text), sort_keys=False, allow_unicode=True)
    else:
        text += "\n"
    return log_content(run_files, text.encode("utf-8"), name)


def _check_overlap(manifest: dict[str, Any], name: str) -> None:
    for other in manifest["artifacts"]:
        if other != name and (other.startswith(name + "/") or name.startswith(other + "/")):
            raise ArtifactError(name, f"overlaps artifact {other!r}; choose another name")


# -- reading ---------------------------------------------------------------------------------------
def manifest_at(git: GitRepo, commit: str, run_id: str | None = None) -> dict[str, Any]:
    """The artifact manifest of the run *run_id* whose tip is *commit* (empty when it has
    none). One over `GITXP_MAX_JSON_BYTES` or off its schema is a `CorruptRunError`."""
    from .blobs import read_run_file

    tree = git.read_commit(commit).tree
    entry = git.lookup_path(tree, storage.ARTIFACTS_FILE)
    try:
        data = read_run_file(git, entry[1], storage.ARTIFACTS_FILE) if entry else None
        return _read_manifest(data)
    except schema.Invalid as exc:
        raise CorruptRunError(run_id or _run_id_at(git, commit), str(exc)) from None


def list_files(manifest: dict[str, Any], name: str | None = None) -> list[dict[str, Any]]:
    """The files of every artifact (or of artifact/path *name*), each with its artifact name."""
    out = []
    for artifact, record in manifest.get("artifacts", {}).items():
        for entry in record.get("files", []):
            path = str(entry.get("path", ""))
            if name is None or artifact == name or path == name or path.startswith(name + "/"):
                out.append({"name": artifact, **entry})
    if name is not None and not out:
        known = ", ".join(manifest.get("artifacts", {})) or "none"
        raise ArtifactError(name, f"not in this run (its artifacts: {known})")
    return out


def _safe_target(root: str, rel: str) -> str:
    """The path *rel* inside *root*, refusing anything that would land elsewhere."""
    parts = rel.replace("\\", "/").split("/")
    if (
        not rel
        or rel.startswith("/")
        or re.match(r"^[A-Za-z]:", rel)
        or any(p in ("", ".", "..") or p.lower() == ".git" or "\x00" in p for p in parts)
    ):
        raise ArtifactError(rel, "unsafe path in the run's manifest; refusing to write it")
    current = root
    for part in parts[:-1]:
        current = os.path.join(current, part)
        if os.path.islink(current) or (os.path.exists(current) and not os.path.isdir(current)):
            raise ArtifactError(rel, f"{current} is a link or a file; refusing to write through it")
    target = os.path.join(root, *parts)
    if os.path.islink(target):
        raise ArtifactError(rel, f"{target} is a symbolic link; refusing to write through it")
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(os.path.dirname(target))]) != real_root:
        raise ArtifactError(rel, f"would be written outside {root}; refusing")
    return target


def _stores_for(entry: dict[str, Any], config: Settings) -> list[Store]:
    """The stores to try for a large file: the one its run names, then the configured one."""
    uris: list[str] = []
    recorded = entry.get("store")
    if config.store and (recorded is None or public_uri(config.store) == recorded):
        uris.append(config.store)  # the configured URI carries the credentials
    if recorded and recorded not in [public_uri(u) for u in uris]:
        uris.append(recorded)
    if config.store and config.store not in uris:
        uris.append(config.store)
    return [Store(u) for u in uris]


def ensure_local(git: GitRepo, entry: dict[str, Any], config: Settings, run_id: str) -> str:
    """The local-store path of a large file, downloading (and verifying) it when missing."""
    sha = str(entry["sha256"])
    path = local_path(git, sha)
    if os.path.exists(path):
        return path
    what = f"{entry.get('path')} of run {run_id}"
    stores = _stores_for(entry, config)
    if not stores:
        raise ArtifactError(
            what,
            "is only in the artifact store of the machine that logged it; there, configure "
            "a shared store (git config gitxp.artifactStore URI) and `gitxp push --artifacts`",
        )
    errors = []
    for store in stores:
        try:
            if not store.has(sha, int(entry["size"])):
                errors.append(f"not in {store.display}")
                continue
            tmp, _ = hash_copy(
                stream_chunks(store.open(sha)),
                git.gitxp_dir(LOCAL_STORE, "tmp"),
                sha,
                what,
            )
        except ArtifactIntegrityError:
            raise
        except ArtifactError as exc:
            errors.append(exc.reason)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.replace(tmp, path)
        return path
    raise ArtifactError(what, "; ".join(errors) + "; was it pushed with `gitxp push --artifacts`?")


def download(
    git: GitRepo,
    commit: str,
    run_id: str,
    name: str | None,
    to: str | os.PathLike[str],
    progress: Progress | None = None,
) -> list[str]:
    """Write the files of a run's artifacts (all, or *name*) under directory *to*.

    Every file is checked against its recorded sha256 before it is moved into
    place, and every path is validated so nothing lands outside *to*.
    Returns the paths written.
    """
    from .blobs import read_run_file

    if not isinstance(to, (str, os.PathLike)):
        raise InvalidValueError("download directory", f"{to!r}: give a directory path")
    manifest = manifest_at(git, commit, run_id)
    files = list_files(manifest, name)
    root = os.path.abspath(os.fspath(to))
    os.makedirs(root, exist_ok=True)
    config = settings(git)
    tree = git.read_commit(commit).tree
    written = []
    for i, entry in enumerate(files, 1):
        rel = str(entry["path"])
        target = _safe_target(root, rel)
        what = f"{rel} of run {run_id}"
        if progress:
            progress(f"Downloading artifacts: {i}/{len(files)} {rel}\r")
        if entry.get("location") == "store":
            chunks: Iterable[bytes] = file_chunks(ensure_local(git, entry, config, run_id))
        else:
            found = git.lookup_path(tree, storage.ARTIFACTS_DIR + rel)
            if found is None:
                raise ArtifactError(what, "is listed but missing from the run's tree")
            try:  # the manifest's size bounds what is inflated
                chunks = [read_run_file(git, found[1], rel, limit=int(entry["size"]))]
            except schema.Invalid as exc:
                raise CorruptRunError(run_id, f"artifacts/{exc}") from None
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp, _ = hash_copy(chunks, os.path.dirname(target), entry.get("sha256"), what)
        os.chmod(tmp, 0o755 if entry.get("mode") == "100755" else 0o644)
        os.replace(tmp, target)
        written.append(target)
    if progress and files:
        progress(f"Downloading artifacts: {len(files)}/{len(files)}, done.\n")
    return written


# -- moving large artifacts with push and pull ------------------------------------------------------
def _large_entries(git: GitRepo, commits: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for commit in commits:
        manifest = manifest_at(git, commit)
        for record in manifest.get("artifacts", {}).values():
            for entry in record.get("files", []):
                if entry.get("location") == "store":
                    out.append((commit, entry))
    return out


def upload_artifacts(
    r: Repo, commits: Iterable[str], remote: Remote | None = None, progress: Progress | None = None
) -> int:
    """Upload the large artifacts of the runs at *commits* to their shared store.

    Objects already in the store are skipped. Returns how many were uploaded.
    Runs before their refs are pushed, so a pushed run never points at an
    artifact nobody can download.
    """
    git = r.git
    config = settings(git)
    entries = _large_entries(git, commits)
    if not entries:
        return 0
    uploaded = 0
    stores: dict[str, Store] = {}
    seen: set[tuple[str, str]] = set()
    for i, (_, entry) in enumerate(entries, 1):
        sha = str(entry["sha256"])
        recorded = entry.get("store")
        uri = (
            config.store
            if config.store and (recorded is None or public_uri(config.store) == recorded)
            else recorded
        )
        if uri is None:
            raise ArtifactError(
                str(entry.get("path")),
                "is large and no shared artifact store is configured; set one with "
                "`git config gitxp.artifactStore s3://bucket/prefix` (or [tool.gitxp] "
                "artifact_store in pyproject.toml) and push again",
            )
        if (uri, sha) in seen:
            continue
        seen.add((uri, sha))
        store = stores.get(uri) or stores.setdefault(uri, Store(uri))
        if store.has(sha, int(entry["size"])):
            continue
        source = local_path(git, sha)
        if not os.path.exists(source):
            raise ArtifactError(
                str(entry.get("path")),
                f"is neither in {store.display} nor in this repository's artifact store; "
                "push from the machine that logged it",
            )
        if progress:
            progress(f"Uploading artifacts: {i}/{len(entries)} {entry.get('path')}\r")
        store.upload(source, sha)
        uploaded += 1
    if progress:
        progress(f"Uploading artifacts: {uploaded} uploaded, done.\n")
    return uploaded


def download_artifacts(
    r: Repo, commits: Iterable[str], remote: Remote | None = None, progress: Progress | None = None
) -> int:
    """Download the large artifacts of the runs at *commits* into the local store."""
    git = r.git
    config = settings(git)
    entries = _large_entries(git, commits)
    fetched = 0
    for i, (commit, entry) in enumerate(entries, 1):
        if os.path.exists(local_path(git, str(entry["sha256"]))):
            continue
        if progress:
            progress(f"Downloading artifacts: {i}/{len(entries)} {entry.get('path')}\r")
        ensure_local(git, entry, config, _run_id_at(git, commit))
        fetched += 1
    if progress and fetched:
        progress(f"Downloading artifacts: {fetched} downloaded, done.\n")
    return fetched


def _run_id_at(git: GitRepo, commit: str) -> str:
    from .blobs import read_run_file

    found = git.lookup_path(git.read_commit(commit).tree, storage.RUN_FILE)
    if found is None:
        return commit[:12]
    try:
        meta = schema.load_json(read_run_file(git, found[1], storage.RUN_FILE), storage.RUN_FILE)
    except schema.Invalid:
        return commit[:12]
    run_id = meta.get("id") if isinstance(meta, dict) else None
    return run_id if isinstance(run_id, str) else commit[:12]


def record_files(record: RunRecord, name: str | None = None) -> list[dict[str, Any]]:
    """The artifact files of a committed run (see `RunRecord.artifacts`)."""
    return list_files(manifest_at(record._git, record.commit, record.id), name)
