"""The objects a push or fetch sends, and how they travel: loose when few, else as one pack.

Which objects: those reachable from the wanted commits and not from the
other side's tips, where every object in the trees of commits known to be
on the other side counts as present too. How: a few objects are cheaper
copied loose than as a new pack (like git's `receive.unpackLimit`); more
go as pack records made without delta reuse, with `Writing objects`
progress for large transfers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .loose import write_loose
from .types import ObjectID

UNPACK_LIMIT = 100


def missing_objects(
    store: Any, haves: set[ObjectID], known: set[ObjectID], wants: set[ObjectID]
) -> tuple[list[ObjectID], set[ObjectID]]:
    """The ids of objects reachable from *wants* but not from *haves*, and the
    objects known to be on the other side (usable as delta bases).

    Like dulwich's own negotiation, plus one thing it lacks: every object in
    the trees of the *known* commits counts as present, so a blob shared
    between runs (the same env.json, the same small artifact) is not sent
    again with each new run.
    """
    from dulwich.object_store import MissingObjectFinder, iter_tree_contents
    from dulwich.objects import Commit

    finder = MissingObjectFinder(store, haves=haves, wants=wants)
    for sha in known:
        commit = store[sha]
        if isinstance(commit, Commit) and commit.tree not in finder.sha_done:
            finder.sha_done.add(commit.tree)
            for entry in iter_tree_contents(store, commit.tree, include_trees=True):
                finder.sha_done.add(entry.sha)
    ids = [sha for sha, _ in finder]
    return ids, finder.get_remote_has()


def add_loose(dest: Any, source: Any, ids: list[ObjectID]) -> None:
    """Copy objects *ids* from *source* to *dest* as loose objects, each after those it names.

    A receiver takes a present commit to mean its tree and parents are
    present too: so a process killed half-way must never leave a commit
    without them. (`missing_objects` lists a commit before its tree, a tree
    before its entries, and commits in no particular order.)

    Each object is written by `write_loose` (a temporary file renamed to its id), not
    dulwich's `add_object`, which fails on the `.lock` of another process writing the
    same object at that moment (two clones pushing to one shared repository).
    """
    objects = [source[sha] for sha in reversed(ids)]

    def add(obj: Any) -> None:
        body = obj.as_raw_string()
        write_loose(dest, dest.path, obj.id.decode("ascii"), obj.type_name, body, obj)

    commits = {obj.id: obj for obj in objects if obj.type_name == b"commit"}
    for obj in objects:
        if obj.id not in commits:
            add(obj)
    done: set[bytes] = set()
    for start in commits:  # parents first (a run's history is a chain: no deep recursion)
        stack = [start]
        while stack:
            sha = stack[-1]
            pending = [p for p in commits[sha].parents if p in commits and p not in done]
            if sha in done or not pending:
                stack.pop()
                if sha not in done:
                    done.add(sha)
                    add(commits[sha])
            else:
                stack.extend(pending)


def generate_unpacked(
    store: Any, ids: list[ObjectID], other_haves: set[ObjectID], ofs_delta: bool, progress: Any
) -> Iterator[Any]:
    """Pack records for *ids*, without delta reuse.

    Finding reusable deltas decompresses every object of every pack the
    objects live in (seconds in a 10,000-run repository), while run objects
    are small, new and seldom deltas of anything.
    """
    from dulwich.pack import generate_unpacked_objects

    return generate_unpacked_objects(
        store,
        [(sha, None) for sha in ids],
        reuse_deltas=False,
        progress=progress,
        ofs_delta=ofs_delta,
        other_haves=other_haves,
    )


def pack_for(
    store: Any,
    haves: set[ObjectID],
    known: set[ObjectID],
    wants: set[ObjectID],
    ofs_delta: bool,
    progress: Any,
) -> tuple[int, Iterator[Any]]:
    """The objects reachable from *wants* but not from *haves*, as pack records."""
    ids, remote_has = missing_objects(store, haves, known, wants)
    return len(ids), generate_unpacked(store, ids, remote_has, ofs_delta, progress)


def counting(
    records: Iterable[Any], total: int, progress: Callable[[str], None] | None
) -> Iterator[Any]:
    """Pass pack records through, reporting `Writing objects: n/total` now and then."""
    if progress is None or total < 200:
        yield from records
        return
    last = 0.0
    done = 0
    for done, record in enumerate(records, 1):
        now = time.monotonic()
        if now - last > 0.2:
            progress(f"Writing objects: {100 * done // total}% ({done}/{total})\r")
            last = now
        yield record
    progress(f"Writing objects: 100% ({total}/{total}), done.\n")
