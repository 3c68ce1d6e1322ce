"""Where large artifacts live: settings, the local store, and shared stores via pyarrow.fs.

Objects are addressed by content: ``<store>/sha256/<2 hex>/<62 hex>``. The
local store is ``.git/gitxp/artifacts/`` (never pushed by git); a shared
store is any `pyarrow.fs` URI (s3://, gs://, hdfs://, file://) or a path.

Settings, first found wins: the environment (`GITXP_ARTIFACT_THRESHOLD`,
`GITXP_ARTIFACT_STORE`), git config (`gitxp.artifactThreshold`,
`gitxp.artifactStore`), then ``[tool.gitxp]`` in the project's
pyproject.toml (``artifact_threshold``, ``artifact_store``).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ArtifactError, ArtifactIntegrityError, InvalidValueError

if TYPE_CHECKING:
    from ..git.repository import GitRepo

DEFAULT_THRESHOLD = 5 * 1024 * 1024
CHUNK = 1024 * 1024
LOCAL_STORE = "artifacts"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_SECRET_PARAMS = re.compile(r"(secret|token|password|passwd|key|credential|signature)", re.I)


# -- settings ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """Where large artifacts go and from which size on."""

    threshold: int
    store: str | None  # the shared store URI as configured (may carry credentials)

    @property
    def store_display(self) -> str | None:
        """The shared store URI as recorded in runs: credentials removed."""
        return public_uri(self.store) if self.store else None


def parse_size(text: str | int, what: str = "artifact threshold") -> int:
    """`5242880`, `5M`, `5 MB`, `5MiB`, `512k` -> bytes (k, M, G, T are powers of 1024)."""
    if isinstance(text, bool):
        raise InvalidValueError(what, f"{text!r} is not a size")
    if isinstance(text, int):
        value = float(text)
        unit = ""
    else:
        match = _SIZE.match(str(text))
        if not match:
            raise InvalidValueError(what, f"{text!r} is not a size like 5242880, 512k or 5M")
        value, unit = float(match.group(1)), match.group(2).lower()
    size = int(value * 1024 ** " kmgt".index(unit or " "))
    if size < 0:
        raise InvalidValueError(what, "must not be negative")
    return size


def _pyproject(root: str) -> dict[str, Any]:
    import tomllib

    try:
        with open(os.path.join(root, "pyproject.toml"), "rb") as f:
            data = tomllib.load(f)
    except (OSError, ValueError):
        return {}
    section = data.get("tool", {}).get("gitxp", {})
    return section if isinstance(section, dict) else {}


def settings(git: GitRepo) -> Settings:
    """The artifact settings of a repository (environment, git config, pyproject.toml)."""
    project = _pyproject(git.root)
    raw_threshold: Any = (
        os.environ.get("GITXP_ARTIFACT_THRESHOLD")
        or git.config_value("gitxp", "artifactThreshold")
        or project.get("artifact_threshold")
    )
    threshold = DEFAULT_THRESHOLD if raw_threshold in (None, "") else parse_size(raw_threshold)
    store = (
        os.environ.get("GITXP_ARTIFACT_STORE")
        or git.config_value("gitxp", "artifactStore")
        or project.get("artifact_store")
        or None
    )
    if store is not None:
        store = str(store).strip()
        if "://" not in store and not os.path.isabs(store):
            store = os.path.normpath(os.path.join(git.root, store))
    return Settings(threshold, store or None)


def public_uri(uri: str) -> str:
    """*uri* without user:password@ and without secret-looking query parameters."""
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    # keep the query text as written (only drop secret-looking parameters)
    query = "&".join(
        item
        for item in parts.query.split("&")
        if item and not _SECRET_PARAMS.search(item.split("=")[0])
    )
    return urlunsplit((parts.scheme, host, parts.path, query, parts.fragment))


# -- stores ---------------------------------------------------------------------------------
def object_key(sha256: str) -> str:
    """Where an object lives inside any store: `sha256/ab/cdef...`."""
    return f"sha256/{sha256[:2]}/{sha256[2:]}"


def local_path(git: GitRepo, sha256: str) -> str:
    """Where an object lives in the repository's local store."""
    return git.gitxp_dir(LOCAL_STORE, *object_key(sha256).split("/"))


class Store:
    """A shared artifact store reached through pyarrow.fs (S3, GCS, HDFS, local paths)."""

    def __init__(self, uri: str) -> None:
        import pyarrow.fs as pafs

        self.uri = uri
        self.display = public_uri(uri)
        try:
            if "://" in uri:
                self.fs, base = pafs.FileSystem.from_uri(uri)
            else:
                self.fs, base = pafs.LocalFileSystem(), os.path.abspath(uri)
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...
            raise ArtifactError(self.display, f"cannot open this store: {exc}") from None
        self.base = base.rstrip("/")
        self.local = self.fs.type_name == "local"

    def path(self, sha256: str) -> str:
        return f"{self.base}/{object_key(sha256)}"

    def has(self, sha256: str, size: int) -> bool:
        import pyarrow.fs as pafs

        try:
            info = self.fs.get_file_info(self.path(sha256))
        except Exception as exc:
            raise ArtifactError(self.display, f"cannot reach the store: {exc}") from None
        return bool(info.type == pafs.FileType.File and info.size == size)

    def upload(self, source: str, sha256: str) -> None:
        """Copy local file *source* to the store under its content address."""
        target = self.path(sha256)
        try:
            parent = target.rsplit("/", 1)[0]
            self.fs.create_dir(parent, recursive=True)
            # a local or mounted store gets a temporary name and a rename, so a
            # reader never sees half a file; object stores publish on completion
            dest = f"{target}.tmp-{os.getpid()}-{time.monotonic_ns()}" if self.local else target
            with open(source, "rb") as src, self.fs.open_output_stream(dest) as out:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
            if dest != target:
                self.fs.move(dest, target)
        except ArtifactError:
            raise
        except Exception as exc:
            raise ArtifactError(self.display, f"upload of {sha256[:12]} failed: {exc}") from None

    def open(self, sha256: str) -> Any:
        try:
            return self.fs.open_input_stream(self.path(sha256))
        except Exception as exc:
            raise ArtifactError(
                self.display, f"object {sha256[:12]} cannot be read: {exc}"
            ) from None


def hash_copy(
    chunks: Iterable[bytes], dest_dir: str, expected: str | None, what: str
) -> tuple[str, str]:
    """Write *chunks* to a temporary file in *dest_dir*, hashing; return (path, sha256).

    Raises ArtifactIntegrityError (and leaves nothing behind) when the sha256
    is not *expected*.
    """
    os.makedirs(dest_dir, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if expected is not None and actual != expected:
            raise ArtifactIntegrityError(what, expected, actual)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp, actual


def file_chunks(path: str) -> Iterator[bytes]:
    """The bytes of a local file, a chunk at a time (artifacts can be gigabytes)."""
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def stream_chunks(stream: Any) -> Iterator[bytes]:
    """The bytes of a pyarrow input stream, a chunk at a time; closes the stream."""
    with stream:
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                return
            yield bytes(chunk)


def put_local(git: GitRepo, source: str) -> str:
    """Copy *source* into the local store (hashing while copying); return its sha256."""
    tmp, sha = hash_copy(file_chunks(source), git.gitxp_dir(LOCAL_STORE, "tmp"), None, source)
    final = local_path(git, sha)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    if os.path.exists(final):
        os.unlink(tmp)  # content-addressed: the same bytes are already stored
    else:
        os.replace(tmp, final)
    return sha


def object_uri(store: str | None, sha256: str) -> str | None:
    """The full URI of an object in *store* (as recorded in a run), or None without a store."""
    if store is None:
        return None
    if "://" not in store:
        return f"{store.rstrip('/')}/{object_key(sha256)}"
    parts = urlsplit(store)
    path = f"{parts.path.rstrip('/')}/{object_key(sha256)}"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
