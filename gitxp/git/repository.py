"""The one door to a git repository: discovery, objects, commits and config.

Everything above `gitxp.git` talks to git through `GitRepo` and plain
Python values (hex object ids as `str`, paths as `str`); dulwich types never
leave this package, so the storage engine can change without touching the
run, query or CLI layers.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import BareRepositoryError, GitxpError, NotARepositoryError
from .discovery import find_root
from .hashing import SHA1_IDS, SHA256_IDS, ObjectIds, ids_of
from .layout import file_stamp, plain_layout
from .loose import write_loose
from .objects import STRUCTURE_LIMIT, inflate_loose, read_stored
from .trees import (
    MODE_EXEC,
    MODE_FILE,
    MODE_GITLINK,
    MODE_LINK,
    MODE_TREE,
    VALID_FILE_MODES,
    build_trees,
)
from .types import HEAD, as_oid

if TYPE_CHECKING:
    from dulwich.config import StackedConfig
    from dulwich.objects import Blob, Commit, Tag, Tree

    from .dulwich_repo import DulwichRepo

__all__ = [
    "MODE_EXEC",
    "MODE_FILE",
    "MODE_GITLINK",
    "MODE_LINK",
    "MODE_TREE",
    "VALID_FILE_MODES",
    "CommitInfo",
    "GitRepo",
    "Identity",
    "build_trees",
    "init_repository",
    "open_for_run",
    "read_file",
    "release",
    "strip_credentials",
]

_HEX = frozenset("0123456789abcdef")
_TYPE_NAMES = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}


def read_file(path: str, limit: int = -1) -> bytes:
    """The bytes of the file at *path* (at most *limit* of them when it is >= 0).

    Plain descriptor calls, no buffered file object: the reads listings and
    metric histories are made of are a few small files each, and on a cold
    cache Python's `open()` layer costs more than the system calls under it.
    Raises OSError as `open()` does.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        if limit >= 0:
            return os.read(fd, limit)
        chunks = []
        size = 1 << 16  # most objects fit; a larger first buffer costs an mmap
        while chunk := os.read(fd, size):
            chunks.append(chunk)
            size = 1 << 22
        return b"".join(chunks)  # one chunk is returned as it is, not copied
    finally:
        os.close(fd)


@dataclass(frozen=True)
class CommitInfo:
    """The parts of a commit gitxp reads."""

    id: str
    tree: str
    parents: tuple[str, ...]
    message: str
    author: str
    author_time: int
    commit_time: int


@dataclass(frozen=True)
class Identity:
    """Who a commit is by: `user.name`/`user.email`, else the OS user."""

    name: str
    email: str

    def signature(self) -> bytes:
        return f"{self.name} <{self.email}>".encode()


def init_repository(path: str | os.PathLike[str]) -> tuple[GitRepo, bool]:
    """Open the repository at *path*, creating it (and the directory) when there is none.

    Returns the repository and whether it was created. A directory inside an
    existing repository uses that repository.
    """
    target = os.path.abspath(os.fspath(path))
    try:
        return GitRepo(find_root(target)), False
    except NotARepositoryError:
        pass
    os.makedirs(target, exist_ok=True)
    from .dulwich_repo import init_dulwich

    init_dulwich(target)
    return GitRepo(target), True


# Parsed git config per repository, for every GitRepo of the process; re-read when a file changes.
_CONFIG_CACHE: dict[str, tuple[list[Any], StackedConfig]] = {}


def _config_stamp(git_dir: str) -> list[Any]:
    """The stamps of the config files git reads for this repository."""
    return [
        file_stamp(path)
        for path in (
            os.path.join(git_dir, "config"),
            os.path.expanduser("~/.gitconfig"),
            os.path.join(
                os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"),
                "git",
                "config",
            ),
        )
    ]


# Repositories whose run has ended, kept open for this process's next run in the same
# repository: opening one (dulwich parses the config and sets up its stores) is about a
# tenth of recording a short run. A run never shares its repository with another live run.
_IDLE: dict[str, GitRepo] = {}  # work-tree root -> repository
_IDLE_MAX = 4
_IDLE_LOCK = threading.Lock()


def _forget_idle_in_child() -> None:
    """A forked child opens its own: its parent's share file offsets with it."""
    global _IDLE_LOCK
    _IDLE_LOCK = threading.Lock()
    _IDLE.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_idle_in_child)


def open_for_run(path: str | os.PathLike[str] = ".") -> GitRepo:
    """The repository whose work tree contains *path*, for one run to record into.

    A repository an earlier run of this process left idle is reused when its
    config files have not changed since it was opened; hand it back with
    `release` when the run ends.
    """
    root = find_root(path)
    with _IDLE_LOCK:
        git = _IDLE.pop(root, None)
    if git is not None:
        if git._config_stamp == _config_stamp(git.git_dir):
            git._identity = None  # the author may come from the environment
            return git
        git.close()
    return GitRepo(root)


def release(git: GitRepo) -> None:
    """A run is done with *git*: keep it for the next run of this process, or close it."""
    evicted = []
    with _IDLE_LOCK:
        previous = _IDLE.pop(git.root, None)
        if previous is not None and previous is not git:
            evicted.append(previous)
        _IDLE[git.root] = git
        while len(_IDLE) > _IDLE_MAX:
            evicted.append(_IDLE.pop(next(iter(_IDLE))))
    for repo in evicted:
        repo.close()


class GitRepo:
    """A git repository opened for gitxp's reads and writes."""

    def __init__(self, root: str) -> None:
        self._opened_at = root
        self._dulwich: DulwichRepo | None = None  # opened on first use: `_repo`
        self._opening = threading.Lock()
        self._identity: Identity | None = None
        # An ordinary repository's layout is read from its files; any other, dulwich opens
        # now (raising NotARepositoryError for one it cannot use): see `gitxp.git.layout`.
        layout = plain_layout(root)
        if layout is not None:
            self.git_dir = layout.git_dir
            self._objects = layout.objects
            self.ids: ObjectIds = SHA256_IDS if layout.object_format == "sha256" else SHA1_IDS
            self.bare: bool = layout.bare
            control_dir = layout.git_dir
        else:
            repo = self._repo
            self.git_dir = os.path.abspath(repo.commondir())
            self._objects = os.fspath(repo.object_store.path)
            # SHA-1 or SHA-256 (`git init --object-format=sha256`): see `gitxp.git.hashing`
            self.ids = ids_of(repo)
            # Bare: no work tree. dulwich knows when it opened a git directory itself;
            # `core.bare = true` in a repository's own config says so too (a linked
            # worktree shares its config with the repository and is never bare).
            self.bare = bool(repo.bare) or (
                repo.controldir() == repo.commondir()
                and (self.config_value("core", "bare") or "").lower() in ("true", "yes", "on", "1")
            )
            control_dir = repo.controldir()
        self._hex_length = self.ids.hex_length
        self._config_stamp = _config_stamp(self.git_dir)  # the settings were read now
        # the top of the work tree; for a bare repository, its git directory
        self.root = os.path.abspath(control_dir if self.bare else root)

    @property
    def _repo(self) -> DulwichRepo:
        """dulwich's repository, opened on first use (thread-safe)."""
        repo = self._dulwich
        if repo is None:
            from .dulwich_repo import close_quietly, open_dulwich

            with self._opening:
                repo = self._dulwich
                if repo is None:
                    repo = self._dulwich = open_dulwich(self._opened_at)
                    # A repository nobody closed (a script's `gitxp.open()`) is closed when
                    # it is collected or the interpreter exits, before dulwich's own
                    # finalisers would warn about, or fail to import warnings for, the
                    # packs it left open.
                    weakref.finalize(self, close_quietly, repo)
        return repo

    @classmethod
    def discover(cls, path: str | os.PathLike[str] = ".") -> GitRepo:
        """Open the repository whose work tree (or bare git directory) contains *path*."""
        return cls(find_root(path))

    def require_work_tree(self, action: str) -> None:
        """Refuse *action* (`gitxp run`, ...) in a bare repository, before it writes anything."""
        if self.bare:
            raise BareRepositoryError(self.root, action)

    # -- lifetime ---------------------------------------------------------
    def close(self) -> None:
        if self._dulwich is not None:
            self._dulwich.close()

    def __enter__(self) -> GitRepo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dulwich(self) -> DulwichRepo:
        """The underlying dulwich repository (for modules of `gitxp.git` only)."""
        return self._repo

    def gitxp_dir(self, *parts: str) -> str:
        """A path under `<git-dir>/gitxp/` (`.git/gitxp/`), gitxp's private, never-pushed area."""
        return os.path.join(self.git_dir, "gitxp", *parts)

    # -- objects ----------------------------------------------------------
    def _read_raw(self, sha: str, want: bytes, limit: int | None = None) -> bytes:
        """The content of object *sha*, which must be of type *want* (b"blob", ...).

        With a *limit*, an object declaring more bytes raises
        `ObjectTooLargeError` before it is inflated (see `gitxp.git.objects`).
        A loose object is opened and inflated here: dulwich's object layer
        (probing every pack first, parsing into an object, serialising back)
        doubles the cost of the small reads listings and metric histories are
        made of. Packed objects and alternates go through dulwich.
        """
        kind, body = b"", None
        if len(sha) == self._hex_length and _HEX.issuperset(sha):
            try:
                raw = read_file(f"{self._objects}/{sha[:2]}/{sha[2:]}")
            except FileNotFoundError:
                pass
            else:
                kind, body = inflate_loose(raw, sha, limit)
        if body is None:
            type_num, body = read_stored(self._repo.object_store, sha, limit)
            kind = _TYPE_NAMES.get(type_num, b"unknown")
        if kind != want:
            raise GitxpError(f"object {sha} is a {kind.decode()}, not a {want.decode()}")
        return body

    def read_blob(self, sha: str, limit: int | None = None) -> bytes:
        """The content of blob *sha*; over *limit* bytes, `ObjectTooLargeError` before inflating.

        Every reader of a run's files passes the limit of that file.
        """
        return self._read_raw(sha, b"blob", limit)

    def read_tree(self, sha: str) -> dict[str, tuple[int, str]]:
        """Map each entry name of tree *sha* to its (mode, id)."""
        from dulwich.objects import parse_tree  # imported here: see `gitxp.git.types`

        return {
            name.decode("utf-8", "surrogateescape"): (mode, hexsha.decode())
            for name, mode, hexsha in parse_tree(
                self._read_raw(sha, b"tree", STRUCTURE_LIMIT), self.ids.raw_length
            )
        }

    def commit_tree(self, sha: str) -> str:
        """The tree id of commit *sha* (its first header line), without parsing the rest."""
        body = self._read_raw(sha, b"commit", STRUCTURE_LIMIT)
        end = 5 + self._hex_length
        if not body.startswith(b"tree ") or body[end : end + 1] != b"\n":
            raise GitxpError(f"object {sha} is not a well-formed commit; run `git fsck`")
        return body[5:end].decode()

    def walk_tree(self, sha: str, prefix: str = "") -> Iterator[tuple[str, int, str]]:
        """Yield (path, mode, id) for every non-tree entry below tree *sha*."""
        for name, (mode, child) in sorted(self.read_tree(sha).items()):
            path = f"{prefix}{name}"
            if mode == MODE_TREE:
                yield from self.walk_tree(child, path + "/")
            else:
                yield path, mode, child

    def lookup_path(self, tree: str, path: str) -> tuple[int, str] | None:
        """Return (mode, id) of *path* inside *tree*, or None when absent."""
        mode, sha = MODE_TREE, tree
        for part in path.strip("/").split("/"):
            if mode != MODE_TREE:
                return None
            entry = self.read_tree(sha).get(part)
            if entry is None:
                return None
            mode, sha = entry
        return mode, sha

    def read_commit(self, sha: str) -> CommitInfo:
        from dulwich.objects import Commit

        obj = Commit.from_raw_string(
            Commit.type_num,
            self._read_raw(sha, b"commit", STRUCTURE_LIMIT),
            object_format=self.ids.format,
        )
        if not isinstance(obj, Commit):  # pragma: no cover - from_raw_string made it one
            raise GitxpError(f"object {sha} is not a commit")
        return CommitInfo(
            id=sha,
            tree=obj.tree.decode(),
            parents=tuple(p.decode() for p in obj.parents),
            message=obj.message.decode("utf-8", "replace"),
            author=obj.author.decode("utf-8", "replace"),
            author_time=obj.author_time,
            commit_time=obj.commit_time,
        )

    def has_object(self, sha: str) -> bool:
        return as_oid(sha) in self._repo.object_store

    def add_object(self, obj: Blob | Tree | Commit | Tag) -> None:
        """Store one object loose (see `gitxp.git.loose`)."""
        self._write_loose(self.ids.object_id(obj), obj.type_name, obj.as_raw_string(), obj)

    def _write_loose(
        self, sha: str, kind: bytes, body: bytes, obj: Blob | Tree | Commit | Tag | None = None
    ) -> None:
        """Store object *sha* loose in this repository (see `gitxp.git.loose`)."""
        write_loose(self._repo.object_store, self._objects, sha, kind, body, obj)

    def write_blob(self, data: bytes) -> str:
        hexsha = self.ids.blob_id(data)
        self._write_loose(hexsha, b"blob", data)
        return hexsha

    def write_tree(self, files: Mapping[str, tuple[int, str]]) -> str:
        """Write the nested trees holding *files* ({path: (mode, id)}); return the root id.

        Only modes git fsck accepts are allowed; the blobs must already exist.
        """
        root_id, trees = build_trees(files, self.ids)
        for tree in trees:
            self.add_object(tree)
        return root_id

    def write_commit(
        self,
        tree: str,
        parents: list[str],
        message: str,
        when: float | None = None,
        author: Identity | None = None,
    ) -> str:
        """Write a commit object (without moving any ref) and return its id."""
        ident = author or self.identity()
        now = int(time.time() if when is None else when)
        tz = time.localtime(now).tm_gmtoff
        from dulwich.objects import Commit

        commit = Commit()
        commit.tree = as_oid(tree)
        commit.parents = [as_oid(p) for p in parents]
        commit.author = commit.committer = ident.signature()
        commit.author_time = commit.commit_time = now
        commit.author_timezone = commit.commit_timezone = tz
        # no `encoding` header: git reads a message without one as UTF-8
        commit.message = message.encode("utf-8")
        sha = self.ids.object_id(commit)
        self._write_loose(sha, b"commit", commit.as_raw_string(), commit)
        return sha

    # -- HEAD and config --------------------------------------------------
    def head(self) -> str | None:
        """The commit HEAD points at, or None in a repository with no commit."""
        try:
            return self._repo.refs[HEAD].decode()
        except KeyError:
            return None

    def head_branch(self) -> str | None:
        """The branch HEAD is on (`main`), or None when detached."""
        try:
            target = self._repo.refs.read_ref(HEAD)
        except KeyError:
            return None
        if target and target.startswith(b"ref: refs/heads/"):
            return target[len(b"ref: refs/heads/") :].decode()
        return None

    def config_stack(self) -> StackedConfig:
        """git config as seen from this repository, re-read only when a config file changed."""
        stamp = _config_stamp(self.git_dir)
        cached = _CONFIG_CACHE.get(self.git_dir)
        if cached is None or cached[0] != stamp:
            cached = (stamp, self._repo.get_config_stack())
            _CONFIG_CACHE[self.git_dir] = cached
        return cached[1]

    def config_value(self, section: str, name: str, subsection: str | None = None) -> str | None:
        """Read one value from the repository's stacked git config."""
        config = self.config_stack()
        key = (section.encode(),) if subsection is None else (section.encode(), subsection.encode())
        try:
            return config.get(key, name.encode()).decode("utf-8", "replace")
        except KeyError:
            return None

    def identity(self) -> Identity:
        """`user.name`/`user.email` from git config, falling back to the OS user."""
        if self._identity is None:
            name = os.environ.get("GIT_AUTHOR_NAME") or self.config_value("user", "name")
            email = os.environ.get("GIT_AUTHOR_EMAIL") or self.config_value("user", "email")
            if not name or not email:
                import getpass

                from ..format.ids import host_name

                try:
                    login = getpass.getuser()
                except Exception:
                    login = "unknown"
                name = name or login
                email = email or f"{login}@{host_name() or 'localhost'}"
            self._identity = Identity(
                name.replace("<", "").replace(">", "").strip() or "unknown",
                email.replace("<", "").replace(">", "").strip(),
            )
        return self._identity

    def remote_url(self, remote: str = "origin") -> str | None:
        """The URL of *remote* with any credentials stripped, or None."""
        url = self.config_value("remote", "url", remote)
        return strip_credentials(url) if url else None


def strip_credentials(url: str) -> str:
    """Remove `user:password@` from a URL so it can be recorded safely."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in url:
        return url  # scp-like `git@host:path` carries no secret
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
