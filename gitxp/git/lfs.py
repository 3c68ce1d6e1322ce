"""Git LFS pointers in snapshot commits, and whether an LFS store holds their content.

A snapshot stores an LFS-tracked file as git-lfs's pointer (spec v1: a
`version`, `oid sha256:<hex>` and `size` line); the content stays in the
local LFS store (`.git/lfs/objects/<2>/<2>/<oid>`). `git push` of a
branch lets git-lfs's pre-push hook upload the objects of the pushed
commits, but no hook sees snapshot commits pushed with runs. This module
finds the pointers a snapshot adds and checks a remote's LFS store where
that can be done without a server: a remote that is a local path or a
`file://` URL keeps its objects in `<git dir>/lfs/objects`, as git-lfs's
standalone file transfer writes them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from urllib.parse import unquote, urlparse

from .remote_config import Remote
from .repository import MODE_EXEC, MODE_FILE, GitRepo

POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1\n"
MAX_POINTER_SIZE = 1024


def pointer_oid(data: bytes) -> str | None:
    """The sha256 oid a Git LFS pointer names, or None when *data* is not a pointer."""
    if len(data) > MAX_POINTER_SIZE or not data.startswith(POINTER_PREFIX):
        return None
    for line in data.decode("ascii", "replace").splitlines():
        key, _, value = line.partition(" ")
        if key == "oid" and value.startswith("sha256:"):
            oid = value[len("sha256:") :]
            if len(oid) == 64 and all(c in "0123456789abcdef" for c in oid):
                return oid
    return None


def object_path(objects_dir: str, oid: str) -> str:
    """Where git-lfs keeps object *oid* below an `lfs/objects` directory."""
    return os.path.join(objects_dir, oid[0:2], oid[2:4], oid)


def snapshot_pointers(git: GitRepo, snapshots: Iterable[str]) -> dict[str, str]:
    """{oid: path} of the LFS pointers each snapshot commit adds to its parent's tree."""
    found: dict[str, str] = {}
    for commit in snapshots:
        info = git.read_commit(commit)
        before: dict[str, str] = {}
        if info.parents:
            parent_tree = git.read_commit(info.parents[0]).tree
            before = {p: s for p, _m, s in git.walk_tree(parent_tree)}
        for path, mode, sha in git.walk_tree(info.tree):
            if mode not in (MODE_FILE, MODE_EXEC) or before.get(path) == sha:
                continue
            oid = pointer_oid(git.read_blob(sha))
            if oid is not None:
                found.setdefault(oid, path)
    return found


def local_objects_dir(git: GitRepo) -> str:
    """This repository's LFS store (`lfs.storage` if set, else `<git dir>/lfs`)/objects."""
    storage = git.config_value("lfs", "storage")
    base = os.path.join(git.dulwich.controldir(), "lfs")
    if storage:
        base = (
            storage if os.path.isabs(storage) else os.path.join(git.dulwich.controldir(), storage)
        )
    return os.path.join(base, "objects")


def remote_objects_dir(git: GitRepo, remote: Remote) -> str | None:
    """The LFS store of *remote* when it is a directory here, else None (a server).

    An `lfs.url` or `remote.<name>.lfsurl` setting names the LFS server
    instead of the git remote, as git-lfs reads it.
    """
    url = None
    if remote.name:
        url = git.config_value("remote", "lfsurl", remote.name)
    url = url or git.config_value("lfs", "url") or remote.url
    if "://" in url:
        parsed = urlparse(url)
        if parsed.scheme != "file":
            return None
        url = unquote(parsed.path)
    elif ":" in url.split("/", 1)[0]:
        return None  # scp-like ssh address
    if not os.path.isdir(url):
        return None
    git_dir = os.path.join(url, ".git")
    return os.path.join(git_dir if os.path.isdir(git_dir) else url, "lfs", "objects")
