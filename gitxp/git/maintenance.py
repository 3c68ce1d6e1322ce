"""Repository upkeep for `gitxp gc`: repacking objects and packing gitxp's refs.

Nothing here deletes an object: runs removed from the trash become
unreachable, and git's own `git gc --prune` reclaims their space with the
reflog and grace rules people already trust. (dulwich's collector ignores
reflogs and stashes, so pruning with it could drop recoverable user work.)
Nor does anything here put an unreachable loose object into a pack, where
git's grace period would no longer protect it (docs/format.md, Maintenance).
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any

from dulwich.file import FileLocked
from dulwich.objects import Commit, ShaFile, Tag, Tree
from dulwich.pack import PackFileDisappeared

from ..errors import GitxpError
from .locks import find_locks, inspect_lock, owner_line
from .refs import PENDING_PREFIX
from .repository import GitRepo

log = logging.getLogger("gitxp.git.maintenance")
_HEX = frozenset("0123456789abcdef")

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
    """Put the packed objects and the loose objects the refs reach into one pack.

    A loose object no ref reaches stays loose: it may be a writer's object
    whose ref is not written yet, and git's grace rules protect loose
    objects only (`git gc` prunes them after `gc.pruneExpire`, two weeks by
    default, while `git repack -a -d` drops unreachable objects from packs at
    once). Packed objects stay packed. Raises GitxpError, naming it, when a
    lock or another repack stands in the way.
    """
    packs, loose = object_counts(git)
    if packs > 1 or loose:
        for attempt in range(3):
            try:
                _repack_once(git)
                break
            except (FileNotFoundError, PackFileDisappeared) as exc:
                # `git repack`/`git gc` replaced a pack while we read it
                log.info("a pack vanished while repacking (%s); starting over", exc)
                git.dulwich.object_store.close()
                if attempt == 2:
                    raise GitxpError(
                        "another process (git gc or git repack) kept repacking at the same "
                        "time; run `gitxp gc` again when it is done"
                    ) from None
            except FileLocked as exc:
                name = os.fsdecode(exc.lockfilename)
                lock = inspect_lock(git.git_dir, name)
                what = lock.describe() if lock else name
                raise GitxpError(
                    f"cannot write the new pack: {what} is held; another process is writing "
                    "the same pack. Retry later, or delete that file if no git or gitxp "
                    "process is running"
                ) from None
    packs_after, loose_after = object_counts(git)
    return RepackStats(packs, loose, packs_after, loose_after)


def _reachable_loose(git: GitRepo, loose: set[bytes]) -> set[bytes]:
    """The loose objects reachable from any ref through loose objects only.

    The walk stops at packed objects: what only a packed object reaches is
    left loose, which is always safe (and keeps gc from walking the whole
    code history).
    """
    store: Any = git.dulwich.object_store
    tips = [sha for _ref, sha in git.dulwich.refs.as_dict().items() if sha in loose]
    seen: set[bytes] = set()
    stack = list(tips)
    while stack:
        sha = stack.pop()
        if sha in seen or sha not in loose:
            continue
        obj = store._get_loose_object(sha)
        if obj is None:
            continue  # pruned meanwhile (it was packed by someone else)
        seen.add(sha)
        if isinstance(obj, Commit):
            stack.append(obj.tree)
            stack.extend(obj.parents)
        elif isinstance(obj, Tree):
            stack.extend(child for _name, mode, child in obj.iteritems() if mode != 0o160000)
        elif isinstance(obj, Tag):
            stack.append(obj.object[1])
    return seen


def _repack_once(git: GitRepo) -> None:
    store: Any = git.dulwich.object_store
    loose = set(store._iter_loose_objects())
    take = _reachable_loose(git, loose)
    objects: dict[bytes, ShaFile] = {}
    for sha in take:
        obj = store._get_loose_object(sha)
        if obj is not None:
            objects[sha] = obj
    # a kept pack (`.keep`: a fetch not done yet, or kept on purpose) stays as it is, as in git
    old_packs = [p for p in store.packs if not os.path.exists(p._basename + ".keep")]
    for pack in old_packs:
        for obj in pack.iterobjects():
            objects.setdefault(obj.id, obj)
    if not objects:
        return
    new = store.add_objects([(obj, None) for obj in objects.values()])
    # the pack and its index are complete: only now drop the copies
    for sha in take:
        with contextlib.suppress(FileNotFoundError):
            store.delete_loose_object(sha)
    for pack in old_packs:
        if new is not None and pack.name() == new.name():
            continue
        with contextlib.suppress(FileNotFoundError):
            store._remove_pack(pack)
    store._update_pack_cache()


def held_locks(git: GitRepo) -> list[str]:
    """Ref lock files that exist now, each with its age ("refs/...lock (3 s old)")."""
    return [lock.describe() for lock in find_locks(git) if not lock.path.startswith("objects")]


def pack_gitxp_refs(git: GitRepo) -> tuple[int, str | None]:
    """Move loose refs under refs/gitxp/ into packed-refs, as `git pack-refs` does.

    Returns (how many moved, why some or all were not). The protocol keeps
    every concurrent update: under `packed-refs.lock`, each loose ref is
    locked (`<ref>.lock`, created exclusively; a ref a writer holds is left
    loose), its value read under the lock and written to packed-refs; only
    after packed-refs is in place are the loose files deleted and their
    locks released. A reader that misses the loose file finds the ref in
    packed-refs, and no writer can move a ref while its lock is held.
    Refs under refs/gitxp/pending/ are left loose (they live for seconds).
    """
    from dulwich.file import GitFile
    from dulwich.refs import write_packed_refs

    container: Any = git.dulwich.refs
    path = os.path.join(git.git_dir, "packed-refs")
    try:
        packed_file = GitFile(path, "wb")
    except FileLocked:
        lock = inspect_lock(git.git_dir, path + ".lock")
        return 0, f"{lock.describe() if lock else 'packed-refs.lock'} is held by another process"
    locked: dict[str, tuple[str, str]] = {}  # ref -> (sha, lock path)
    busy = 0
    try:
        mine = owner_line()
        for ref in _loose_ref_names(git.git_dir, GITXP_REFS):
            if ref.startswith(PENDING_PREFIX):
                continue
            loose = os.path.join(git.git_dir, *ref.split("/"))
            try:
                fd = os.open(loose + ".lock", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                busy += 1
                continue
            try:
                os.write(fd, mine)
            finally:
                os.close(fd)
            try:
                with open(loose, "rb") as f:
                    value = f.read().strip().decode("ascii", "replace")
            except FileNotFoundError:
                value = ""
            if len(value) != git.ids.hex_length or not _HEX.issuperset(value):
                os.remove(loose + ".lock")  # deleted meanwhile, or not a plain ref
                continue
            locked[ref] = (value, loose + ".lock")
        if not locked:
            packed_file.abort()
            return 0, f"{busy} ref(s) were being updated" if busy else None
        container._invalidate_packed_refs_cache()
        packed: dict[Any, Any] = dict(container.get_packed_refs())
        peeled: dict[Any, Any] = dict(getattr(container, "_peeled_refs", None) or {})
        for ref, (sha, _lock) in locked.items():
            packed[ref.encode()] = sha.encode()
            peeled.pop(ref.encode(), None)
        write_packed_refs(packed_file, packed, peeled)
        packed_file.close()  # renames packed-refs.lock over packed-refs
        container._invalidate_packed_refs_cache()
        for ref in locked:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(git.git_dir, *ref.split("/")))
    except BaseException:
        if not packed_file.closed:
            packed_file.abort()
        raise
    finally:
        for _sha, lock_path in locked.values():
            with contextlib.suppress(FileNotFoundError):
                os.remove(lock_path)
    return len(locked), f"{busy} ref(s) were being updated" if busy else None


def _loose_ref_names(git_dir: str, prefix: str) -> list[str]:
    base = os.path.join(git_dir, *prefix.rstrip("/").split("/"))
    names: list[str] = []
    for directory, _dirs, files in os.walk(base):
        rel = os.path.relpath(directory, git_dir).replace(os.sep, "/")
        names.extend(f"{rel}/{n}" for n in files if not n.endswith(".lock"))
    return sorted(names)


def remove_reflog(git: GitRepo, ref: str) -> None:
    """Delete the reflog of a ref that no longer exists (git does the same)."""
    path = os.path.join(git.git_dir, "logs", *ref.split("/"))
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
