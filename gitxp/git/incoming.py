"""Fetched packs, kept safe from `git repack -a -d` until the refs that reach them exist.

A fetch writes its objects before the caller creates the run refs that
reach them. In between, the new pack is unreachable, and `git repack -a -d`
(or a `git gc` configured without cruft packs) drops unreachable packed
objects at once, whatever their age: the refs would then name missing
commits. git protects a fetched pack with a `<pack>.keep` file until its
refs are updated (`index-pack --keep`); gitxp does the same, without any
moment where the pack is visible and not kept:

1. the pack is received and indexed in a quarantine directory,
   `objects/gitxp-incoming-*` (its objects/info/alternates names the real
   store, to complete thin packs); git never looks there;
2. `objects/pack/<pack>.keep` is created (it names its owner, `gitxp <pid>
   <host>`), then the `.pack`, then the `.idx` are renamed into place (git
   and dulwich see a pack only once its `.idx` exists);
3. after the refs are written, `Incoming.release` deletes the `.keep`.

A process killed in between leaves a `.keep` or a quarantine directory;
`gitxp gc` removes those whose owner is gone from this host
(`clear_stale`). A `.keep` without gitxp's owner line (git's own, or one a
person made) is never touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from dulwich.object_store import DiskObjectStore

from .locks import owner_gone, owner_line
from .repository import GitRepo

log = logging.getLogger("gitxp.git.incoming")
QUARANTINE_PREFIX = "gitxp-incoming-"
OWNER_FILE = "gitxp-owner"


class Incoming:
    """The packs one fetch brings in, each kept by a `.keep` file until `release`."""

    def __init__(self, git: GitRepo) -> None:
        self.git = git
        self.keeps: list[str] = []

    def add_thin_pack(self, read_all: Callable[[int], bytes], progress: Any = None) -> None:
        """Receive a (possibly thin) pack read with *read_all*, and move it in kept."""
        with self._quarantine() as store:
            store.add_thin_pack(read_all, None, progress=progress)

    def add_pack_data(self, count: int, records: Iterator[Any], progress: Any = None) -> None:
        """Write *count* unpacked objects as one pack, and move it in kept."""
        with self._quarantine() as store:
            store.add_pack_data(count, records, progress=progress)

    @contextlib.contextmanager
    def _quarantine(self) -> Iterator[DiskObjectStore]:
        main: Any = self.git.dulwich.object_store
        path = tempfile.mkdtemp(prefix=QUARANTINE_PREFIX, dir=main.path)
        store = None
        try:
            with open(os.path.join(path, OWNER_FILE), "wb") as f:
                f.write(owner_line())
            os.mkdir(os.path.join(path, "pack"))
            store = DiskObjectStore(path, object_format=main.object_format, alternates=[main.path])
            yield store
            store.close()
            self._move_in(os.path.join(path, "pack"), main)
        finally:
            if store is not None:
                store.close()
            shutil.rmtree(path, ignore_errors=True)

    def _move_in(self, source: str, main: Any) -> None:
        for name in sorted(os.listdir(source)):
            if not name.endswith(".idx"):
                continue
            base = name[: -len(".idx")]
            keep = os.path.join(main.pack_dir, base + ".keep")
            try:
                fd = os.open(keep, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pass  # already kept (by git, or another fetch of the same objects)
            else:
                with os.fdopen(fd, "wb") as f:
                    f.write(owner_line())
                self.keeps.append(keep)
            # the .idx last: only a pack with an index exists for git and dulwich
            os.replace(
                os.path.join(source, base + ".pack"), os.path.join(main.pack_dir, base + ".pack")
            )
            os.replace(os.path.join(source, name), os.path.join(main.pack_dir, name))
        main._update_pack_cache()

    def release(self) -> None:
        """Delete the `.keep` files: call once the refs that reach the packs are written."""
        for keep in self.keeps:
            with contextlib.suppress(FileNotFoundError):
                os.remove(keep)
        self.keeps.clear()


def clear_stale(git: GitRepo) -> list[str]:
    """Remove the `.keep` files and quarantine directories of fetches whose process is gone.

    Returns what was removed (paths relative to the git directory). Only
    what names a gitxp owner gone from this host is removed.
    """
    objects: Any = git.dulwich.object_store
    removed: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(objects.pack_dir):
            path = os.path.join(objects.pack_dir, name)
            if name.endswith(".keep") and owner_gone(_head(path)):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                    removed.append(path)
    for name in os.listdir(objects.path):
        path = os.path.join(objects.path, name)
        if name.startswith(QUARANTINE_PREFIX) and owner_gone(_head(os.path.join(path, OWNER_FILE))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    out = [os.path.relpath(p, git.git_dir) for p in removed]
    for item in out:
        log.warning("removed %s, left by a killed fetch", item)
    return out


def _head(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(200)
    except OSError:
        return b""
