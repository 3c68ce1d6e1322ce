"""Stamps that prove a file or a ref directory unchanged without reading it.

git replaces a ref file or `packed-refs` by renaming a new file over it: the
inode changes, and so does the mtime of the directory the file is in. A
stamp taken when a listing read something, checked by the next listing, lets
that listing skip the read when nothing moved (git/refs.py `list_refs`, the
listing cache in store/).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

# A directory stamp is trusted only when its mtime was this much older than
# the moment it was read: file-system timestamps are coarse (a few ms), so a
# change in the same tick as the reading could otherwise go unnoticed.
SETTLED_NS = 2_000_000_000


def loose_unchanged(git_dir: str, stamps: Mapping[str, list[int]]) -> bool:
    """Whether every ref directory stamped in *stamps* (see `list_refs`) is provably unchanged."""
    if not stamps:
        return False
    for directory, (mtime_ns, seen_ns) in stamps.items():
        if seen_ns - mtime_ns < SETTLED_NS or os.path.isabs(directory):
            return False  # unsettled, or an absolute path: a stamp of another repository
        try:
            if os.stat(os.path.join(git_dir, directory)).st_mtime_ns != mtime_ns:
                return False
        except OSError:
            return False
    return True


def file_stamp(path: str) -> list[int] | None:
    """[mtime_ns, size, inode, read at ns] of the file *path*, None when it does not exist.

    git replaces a file such as packed-refs by renaming a new one over it, which
    changes the inode: an equal stamp means the same content (see `stamp_holds`).
    """
    seen = time.time_ns()
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino, seen]


def stamp_holds(path: str, stamp: list[int] | None) -> bool:
    """Whether the file *path* is provably unchanged since *stamp* (`file_stamp`) was taken.

    A missing file holds for a None stamp. A stamp read within `SETTLED_NS` of
    the file's mtime proves nothing (a rewrite within the same clock tick would
    leave the mtime as it was), so it never holds.
    """
    if stamp is None:
        return not os.path.lexists(path)
    if stamp[3] - stamp[0] < SETTLED_NS:
        return False
    try:
        st = os.stat(path)
    except OSError:
        return False
    return [st.st_mtime_ns, st.st_size, st.st_ino] == stamp[:3]
