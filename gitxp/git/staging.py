"""The staging area as the pre-commit hooks see it: which files a commit would add, and how big.

Sizes are the size of the staged blob, not of the work-tree file, so a
file stored through a clean filter (Git LFS pointers) is judged by what
git will actually store.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from dulwich.index import ConflictedIndexEntry, IndexEntry

from .repository import MODE_GITLINK, MODE_LINK, GitRepo
from .types import as_oid


@dataclass(frozen=True)
class StagedFile:
    """A file a commit would add or change: its path (from the top) and size in bytes."""

    path: str
    size: int


def _loose_blob_size(git: GitRepo, sha: str) -> int | None:
    """Read only the header of a loose object (`blob <size>\\0`); None when it is packed."""
    path = os.path.join(git.git_dir, "objects", sha[:2], sha[2:])
    try:
        with open(path, "rb") as f:
            head = zlib.decompressobj().decompress(f.read(256), 64)
    except (OSError, zlib.error):
        return None
    kind, _, rest = head.partition(b" ")
    size, sep, _ = rest.partition(b"\0")
    if kind != b"blob" or not sep or not size.isdigit():
        return None
    return int(size)


def _entry_size(git: GitRepo, entry: IndexEntry) -> int:
    # The index records the work-tree size at `git add` time; the blob (after
    # clean filters such as Git LFS) may be far smaller, so prefer the blob
    # header when the object is loose, which it is right after `git add`.
    blob = _loose_blob_size(git, entry.sha.decode())
    return entry.size if blob is None else blob


def staged_files(git: GitRepo, paths: Sequence[str] | None = None) -> list[StagedFile]:
    """The regular files a commit would add or change, with their sizes.

    With *paths* (what pre-commit passes), describe those paths: from the
    index when staged, else from the work tree. Without, compare the index
    with HEAD. Symlinks, submodules and deletions are left out.
    """
    index = git.dulwich.open_index()
    out: list[StagedFile] = []
    if paths is not None:
        for path in paths:
            rel = path.replace(os.sep, "/")
            try:
                entry = index[rel.encode("utf-8", "surrogateescape")]
            except KeyError:
                entry = None
            if isinstance(entry, IndexEntry):
                if entry.mode not in (MODE_LINK, MODE_GITLINK):
                    out.append(StagedFile(rel, _entry_size(git, entry)))
                continue
            full = os.path.join(git.root, rel)
            try:
                st = os.lstat(full)
            except OSError:
                continue  # deleted, or a conflicted path: nothing added
            if os.path.isfile(full) and not os.path.islink(full):
                out.append(StagedFile(rel, st.st_size))
        return out
    head = git.head()
    tree = as_oid(git.read_commit(head).tree) if head else None
    for (_, new_path), (_, new_mode), (_, new_sha) in index.changes_from_tree(
        git.dulwich.object_store,
        tree,
    ):
        if new_path is None or new_sha is None or new_mode in (MODE_LINK, MODE_GITLINK):
            continue
        entry = index[new_path]
        if isinstance(entry, ConflictedIndexEntry):
            continue
        out.append(StagedFile(new_path.decode("utf-8", "surrogateescape"), _entry_size(git, entry)))
    return sorted(out, key=lambda f: f.path)
