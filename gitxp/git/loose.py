"""Writing one loose object as git does: zlib of `<type> <size>\\0<body>`, renamed into place.

Loose objects are what recording a run writes: a handful of small blobs,
trees and a commit each time. They are written here without dulwich's
object layer, which would re-serialise each object and take a lock file
per write; dulwich still writes them in a shared repository
(`core.sharedRepository`), where it sets the permissions.
"""

from __future__ import annotations

import contextlib
import os
import time
import zlib
from typing import TYPE_CHECKING, Any

from dulwich.file import FileLocked

from ..errors import GitxpError
from .types import as_oid

if TYPE_CHECKING:
    from dulwich.objects import Blob, Commit, Tag, Tree

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_FANOUT_ATTEMPTS = 50


def _window(body: bytes) -> tuple[int, int]:
    """zlib's window bits and memory level for compressing an object of this size.

    zlib's defaults size its tables for a 32 KiB window; setting those up costs
    about 40 µs, ten times the compression of a small object. A window just
    wider than the object finds the same matches: over a sample of 1,500 run
    objects the total output was the same size to the byte, and three times
    faster to make. Every inflater, git's included, reads any window size.
    """
    bits = max(9, min(15, (len(body) + 300).bit_length()))
    return bits, max(1, min(8, bits - 6))


def _create_in_fanout(directory: str, tmp: str) -> int:
    """Create *tmp* exclusively in fan-out directory *directory*; return its fd.

    `git prune-packed` (run by `git gc`, `git repack -d`) removes empty fan-out
    directories, even one just made here: make it again and retry. Once the
    file exists the directory is not empty and stays."""
    for _ in range(_FANOUT_ATTEMPTS):
        try:
            return os.open(tmp, _CREATE_FLAGS, 0o444)
        except FileNotFoundError:
            os.makedirs(directory, exist_ok=True)
    return os.open(tmp, _CREATE_FLAGS, 0o444)  # still racing: let the error name the file


def write_loose(
    store: Any,
    objects_dir: str,
    sha: str,
    kind: bytes,
    body: bytes,
    obj: Blob | Tree | Commit | Tag | None = None,
) -> None:
    """Write object *sha* (of type *kind*, content *body*) loose into dulwich *store*,
    whose directory is *objects_dir*: compressed into a temporary file of its
    fan-out directory, then renamed to its id.

    An object already there is only touched: a fresh mtime keeps `git gc
    --prune` off it until a ref points at it. Two processes writing the
    same object at once is harmless (same bytes, atomic rename), so there
    is no lock to wait for. Compression level and fsync follow git's config
    (`core.looseCompression`, `core.fsyncObjectFiles`); a shared repository
    (`core.sharedRepository`) is left to dulwich, which sets its permissions.
    """
    if store.shared_perm is not None:
        if obj is None:
            from dulwich.objects import Blob

            obj = Blob.from_string(body)
        _dulwich_add(store, sha, obj)
        return
    directory = os.path.join(objects_dir, sha[:2])
    path = os.path.join(directory, sha[2:])
    try:
        os.utime(path)
        return
    except FileNotFoundError:
        pass
    header = b"%s %d\0" % (kind, len(body))
    packer = zlib.compressobj(store.loose_compression_level, zlib.DEFLATED, *_window(body))
    data = packer.compress(header) + packer.compress(body) + packer.flush()
    tmp = os.path.join(directory, f"tmp_obj_{os.getpid()}_{os.urandom(6).hex()}")
    fd = _create_in_fanout(directory, tmp)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if store.fsync_object_files:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _dulwich_add(store: Any, sha: str, obj: Blob | Tree | Commit | Tag) -> None:
    """dulwich's loose write of *obj* (id *sha*); tolerate another process storing it too.

    dulwich writes a loose object under `<object>.lock`; two processes that
    write identical content (the same params.json, the same tree) at the
    same moment collide there. The object is the same either way, so wait
    for the other writer instead of failing.
    """
    deadline = time.monotonic() + 10
    while True:
        try:
            store.add_object(obj)
            return
        except FileLocked:
            if as_oid(sha) in store:
                return
            if time.monotonic() > deadline:
                raise GitxpError(
                    f"object {sha} stays locked; if no git or gitxp process "
                    "is running, delete its .lock file under .git/objects and retry"
                ) from None
            time.sleep(0.002)
