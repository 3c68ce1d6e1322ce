"""Repository upkeep for `gitxp gc`: repacking objects and packing gitxp's refs.

Nothing here deletes an object: runs removed from the trash become
unreachable, and git's own `git gc --prune` reclaims their space with the
reflog and grace rules people already trust. (dulwich's collector ignores
reflogs and stashes, so pruning with it could drop recoverable user work.)
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from .refs import list_refs
from .repository import GitRepo

GITXP_REFS = "refs/gitxp/"


@dataclass(frozen=True)
class RepackStats:
    """Object storage before and after a repack."""

    packs_before: int
    loose_before: int
    packs_after: int
    loose_after: int


def object_counts(git: GitRepo) -> tuple[int, int]:
    """(number of packs, number of loose objects) in the object store."""
    store = git.dulwich.object_store
    return len(list(store.packs)), int(store.count_loose_objects())


def repack(git: GitRepo) -> RepackStats:
    """Put every object, loose or packed, into one pack (unreachable ones included)."""
    packs, loose = object_counts(git)
    if packs > 1 or loose:
        git.dulwich.object_store.repack()
    packs_after, loose_after = object_counts(git)
    return RepackStats(packs, loose, packs_after, loose_after)


def held_locks(git: GitRepo) -> list[str]:
    """Ref lock files that exist now (a writer is updating a ref)."""
    found = []
    if os.path.exists(os.path.join(git.git_dir, "packed-refs.lock")):
        found.append("packed-refs.lock")
    base = os.path.join(git.git_dir, "refs")
    for directory, _dirs, files in os.walk(base):
        for name in files:
            if name.endswith(".lock"):
                found.append(os.path.relpath(os.path.join(directory, name), git.git_dir))
    return sorted(found)


def pack_gitxp_refs(git: GitRepo) -> int:
    """Move loose refs under refs/gitxp/ into packed-refs; return how many moved.

    Packing deletes loose ref files without taking their locks, so callers
    must make sure no run is being recorded (see `gitxp gc`).
    """
    packed_path = os.path.join(git.git_dir, "packed-refs")
    already: set[str] = set()
    try:
        with open(packed_path, "rb") as f:
            for line in f:
                if line[:1] not in (b"#", b"^"):
                    already.add(line.rstrip(b"\n").partition(b" ")[2].decode("utf-8", "replace"))
    except FileNotFoundError:
        pass
    loose = {}
    for ref, sha in list_refs(git, GITXP_REFS).items():
        if os.path.isfile(os.path.join(git.git_dir, *ref.split("/"))):
            loose[ref.encode()] = sha.encode()
    if loose:
        git.dulwich.refs.add_packed_refs(loose)  # type: ignore[arg-type]
    return len(loose)


def remove_reflog(git: GitRepo, ref: str) -> None:
    """Delete the reflog of a ref that no longer exists (git does the same)."""
    path = os.path.join(git.git_dir, "logs", *ref.split("/"))
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
