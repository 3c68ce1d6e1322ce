"""Reading git's index (the staging area) fast, for work-tree snapshots.

dulwich parses the index entry by entry in Python with a file object,
which is most of a snapshot's time on a 10,000-file project. Versions 2
and 3 of the format (what git writes unless told otherwise) are parsed
here from one buffer with a precompiled struct, sparse indexes included
(`git sparse-checkout set --sparse-index`: a directory outside the cone is
one entry, mode 040000, naming its tree); anything else (version 4's
compressed paths, split indexes, a malformed file) goes through dulwich as
before.
"""

from __future__ import annotations

import os
import struct
from binascii import hexlify
from typing import Any, NamedTuple

from .repository import GitRepo

_HEADER = struct.Struct(">4sLL")
# ctime, mtime, dev, ino, mode, uid, gid, size, sha, flags; by the id's width in bytes
# (20: SHA-1, 32: SHA-256 -- `gitxp.git.hashing`)
_ENTRIES = {width: struct.Struct(f">LLLLLLLLLL{width}sH") for width in (20, 32)}
_EXTENDED = 0x4000
_SKIP_WORKTREE = 0x4000  # in the extended flags: outside a sparse checkout's cone
_NAME_MASK = 0xFFF
_MODE_TREE = 0o040000


class IndexEntry(NamedTuple):
    """The stage-0 entry of one path (in a sparse index, maybe of a directory outside
    the cone): what a snapshot compares the work tree with."""

    sha: bytes  # hex, as dulwich's IndexEntry.sha
    mode: int
    size: int
    mtime: tuple[int, int]
    ctime: tuple[int, int]
    ino: int
    mtime_ns: int  # the same times as one number, for comparing with os.stat_result
    ctime_ns: int
    skip_worktree: bool = False  # not checked out (sparse checkout): assume it unchanged


class ConflictedEntry:
    """A path with merge-conflict stages (no single blob id; has no `sha`)."""

    __slots__ = ()


class _Unsupported(Exception):
    pass


def _parse_with_tree(data: bytes, width: int = 20) -> tuple[dict[bytes, Any], str | None]:
    """Parse index *data* whose object ids (and trailing checksum) are *width* bytes."""
    if len(data) < _HEADER.size + width:
        raise _Unsupported("too short")
    signature, version, count = _HEADER.unpack_from(data, 0)
    if signature != b"DIRC" or version not in (2, 3):
        raise _Unsupported(f"version {version}")
    end = len(data) - width  # trailing checksum
    entries: dict[bytes, Any] = {}
    entry_struct = _ENTRIES[width]
    unpack = entry_struct.unpack_from
    size = entry_struct.size
    off = _HEADER.size
    conflicted = ConflictedEntry()
    for _ in range(count):
        (ctime_s, ctime_ns, mtime_s, mtime_ns, _, ino, mode, _, _, fsize, sha, flags) = unpack(
            data, off
        )
        start = off + size
        skip = False
        if flags & _EXTENDED:
            if version < 3:
                raise _Unsupported("extended flags in a version 2 index")
            skip = bool(struct.unpack_from(">H", data, start)[0] & _SKIP_WORKTREE)
            start += 2
        length = flags & _NAME_MASK
        if length == _NAME_MASK:
            length = data.index(b"\0", start) - start
        name = data[start : start + length]
        # entries are NUL-padded to a multiple of 8 bytes (1 to 8 NULs)
        entry_len = start + length - off
        off += (entry_len + 8) & ~7
        if off > end:
            raise _Unsupported("truncated")
        if mode == _MODE_TREE and not skip:
            raise _Unsupported("a directory entry that is not sparse")
        if (flags >> 12) & 3:
            entries[name] = conflicted
        else:
            entries[name] = IndexEntry(
                hexlify(sha),
                mode,
                fsize,
                (mtime_s, mtime_ns),
                (ctime_s, ctime_ns),
                ino,
                mtime_s * 1_000_000_000 + mtime_ns,
                ctime_s * 1_000_000_000 + ctime_ns,
                skip,
            )
    root_tree = None
    while off + 8 <= end:  # extensions: a split index keeps entries elsewhere
        ext, ext_size = struct.unpack_from(">4sL", data, off)
        if ext == b"link":
            raise _Unsupported("split index")
        if ext == b"TREE":
            root_tree = _cached_root_tree(data[off + 8 : off + 8 + ext_size], width)
        off += 8 + ext_size
    return entries, root_tree


def _cached_root_tree(ext: bytes, width: int = 20) -> str | None:
    """The root tree id recorded in the index's cache-tree extension, if still valid.

    git keeps the tree ids of the index's directories there (what makes
    `git write-tree` instant) and invalidates an entry (count -1) whenever
    a path below it changes in the index.
    """
    name_end = ext.find(b"\0")
    line_end = ext.find(b"\n", name_end)
    if name_end != 0 or line_end < 0:  # the first entry is the root, whose path is ""
        return None
    count = ext[name_end + 1 : line_end].split(b" ")[0]
    if count.startswith(b"-") or len(ext) < line_end + 1 + width:
        return None
    return hexlify(ext[line_end + 1 : line_end + 1 + width]).decode()


def read_index(repo: GitRepo) -> dict[bytes, Any]:
    """Map each path in the index (bytes) to its IndexEntry, or a ConflictedEntry."""
    return read_index_with_tree(repo)[0]


def read_index_with_tree(repo: GitRepo) -> tuple[dict[bytes, Any], str | None]:
    """The index entries, and the root tree id of its cache-tree when that is valid."""
    path = repo.dulwich.index_path()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}, None
    try:
        return _parse_with_tree(data, repo.ids.raw_length)
    except (_Unsupported, struct.error, ValueError):
        return dict(repo.dulwich.open_index().items()), None


def index_mtime_ns(repo: GitRepo) -> int:
    """When the index was last written (0 when there is none)."""
    try:
        return os.stat(repo.dulwich.index_path()).st_mtime_ns
    except FileNotFoundError:
        return 0
