"""Whether fetched history is whole: every object a new run tip reaches is stored.

A server may send a pack in which a run's tip commit is present but an
older commit, a tree or a blob it reaches is not (a lying or broken
server: nothing in the pack format says what is missing). A ref pointing
there breaks `git fsck`, `git gc` and every reader of the run, so a fetch
checks each new tip before its ref is created, as `git fetch` does with its
connectivity check.

What is walked, objects only (no run file is parsed):

- the tip and every commit carrying the run's own `Gitxp-Run` trailer,
  down to a commit a local run ref already points at: their trees in full
  (each blob's presence; a tree shared with an earlier run of the same
  fetch is walked once). These are few and small, and walking them in full
  also catches a run left half-stored by an earlier, refused fetch;
- other commits (the code commit, a snapshot, the code history below them)
  only while they arrived with this fetch: a commit already stored before
  it is taken to be whole, so the user's own code history is never walked.
  Their trees likewise, down to trees already stored.

"Arrived with this fetch" means stored in a pack that appeared, or a loose
object written, since the `Arrivals` snapshot was taken.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

from dulwich.errors import ObjectFormatException
from dulwich.objects import parse_tree

from ..errors import GitxpError
from .objects import STRUCTURE_LIMIT, read_in_pack
from .repository import GitRepo

MODE_TREE = 0o040000
MODE_GITLINK = 0o160000
COMMIT_TYPE, TREE_TYPE = 1, 2  # git's object type numbers
# loose objects written this long before the snapshot still count as new:
# file-system clocks are coarse, and counting too much as new only costs time
CLOCK_SLACK_NS = 2_000_000_000


def _pack_name(pack: Any) -> str | None:
    base = getattr(pack, "_basename", None)  # dulwich: the pack's path without its suffix
    return os.path.basename(base) if base else None


class Arrivals:
    """Which objects of a repository were stored after this snapshot was taken.

    Take it just before a fetch; afterwards `is_new` tells the objects the
    fetch brought (and those another process wrote meanwhile, which only
    makes the check walk a little further) from those already there.
    """

    def __init__(self, git: GitRepo) -> None:
        self._git = git
        self._before = {_pack_name(p) for p in git.dulwich.object_store.packs}
        self._since_ns = time.time_ns() - CLOCK_SLACK_NS
        self._new: list[Any] | None = None
        self._new_ids: frozenset[str] | None = None

    def _new_packs(self) -> list[Any]:
        if self._new is None:
            store = self._git.dulwich.object_store
            self._new = [p for p in store.packs if _pack_name(p) not in self._before]
        return self._new

    def packed(self) -> frozenset[str]:
        """The ids of every object in the packs that arrived after the snapshot.

        Read once from the packs' indexes (a fetch of 100,000 runs brings
        700,000 objects: one set beats as many probes of every pack).
        """
        if self._new_ids is None:
            self._new_ids = frozenset(
                sha.decode("ascii") for pack in self._new_packs() for sha in pack.index
            )
        return self._new_ids

    def read(self, sha: str, kind: int) -> bytes | None:
        """The body of object *sha*, which must be of type *kind*, when an arrived pack
        holds it (None: it is not in one). Bounded like every read of a structure."""
        if sha not in self.packed():
            return None
        store = self._git.dulwich.object_store
        for pack in self._new_packs():
            found = read_in_pack(store, pack, sha, STRUCTURE_LIMIT)
            if found is not None:
                if found[0] != kind:
                    raise GitxpError(f"object {sha} is of type {found[0]}, not {kind}")
                return found[1]
        return None

    def is_new(self, sha: str) -> bool:
        """Whether object *sha* (stored) arrived after the snapshot."""
        if sha in self.packed():
            return True
        path = os.path.join(self._git.dulwich.object_store.path, sha[:2], sha[2:])
        try:
            return os.stat(path).st_mtime_ns >= self._since_ns
        except OSError:
            return False  # packed before the fetch (or in an alternate)


class _Walk:
    """One run's walk; *whole* holds objects already proven whole by earlier walks."""

    def __init__(self, git: GitRepo, arrivals: Arrivals, whole: set[str]) -> None:
        self.git = git
        self.arrivals = arrivals
        self.whole = whole
        self.seen: set[str] = set()
        self.packed = arrivals.packed()

    def has(self, sha: str) -> bool:
        """Whether object *sha* is stored (in an arrived pack: no probe of the store)."""
        return sha in self.packed or self.git.has_object(sha)

    def entries(self, sha: str) -> list[tuple[int, str]]:
        """(mode, id) of each entry of tree *sha*."""
        body = self.arrivals.read(sha, TREE_TYPE)
        if body is None:
            return list(self.git.read_tree(sha).values())
        raw_length = self.git.ids.raw_length
        return [(mode, child.decode()) for _, mode, child in parse_tree(body, raw_length)]

    def commit(self, sha: str) -> tuple[str, list[str], bytes]:
        """(tree, parents, message) of commit *sha*."""
        body = self.arrivals.read(sha, COMMIT_TYPE)
        if body is None:
            info = self.git.read_commit(sha)
            return info.tree, list(info.parents), info.message.encode()
        return _links(sha, body, self.git.ids.hex_length)

    def tree(self, sha: str, full: bool) -> str | None:
        """Why tree *sha* is not whole, or None. Without *full*, a tree stored before
        the fetch is taken as whole."""
        stack = [sha]
        while stack:
            tree = stack.pop()
            if tree in self.seen or tree in self.whole:
                continue
            if not self.has(tree):
                return f"tree {tree} is missing"
            if not full and not self.arrivals.is_new(tree):
                continue  # stored before the fetch
            self.seen.add(tree)
            for mode, child in self.entries(tree):
                if mode == MODE_TREE:
                    stack.append(child)
                elif mode != MODE_GITLINK and child not in self.seen and child not in self.whole:
                    if not self.has(child):
                        return f"blob {child} is missing"
                    self.seen.add(child)
        return None

    def history(self, tip: str, trailer: str, stop: set[str]) -> str | None:
        """Why the history of run tip *tip* is not whole, or None."""
        mark = trailer.encode()
        stack = [tip]
        while stack:
            sha = stack.pop()
            if sha in self.seen or sha in self.whole or sha in stop:
                continue
            if not self.has(sha):
                return f"commit {sha} is missing"
            tree, parents, message = self.commit(sha)
            own = sha == tip or mark in message
            if not own and not self.arrivals.is_new(sha):
                continue  # stored before the fetch: the user's own history
            self.seen.add(sha)
            why = self.tree(tree, full=own)
            if why is not None:
                return why
            stack.extend(parents)
        return None


def _links(sha: str, body: bytes, hex_length: int) -> tuple[str, list[str], bytes]:
    """(tree, parents, message) read from the raw *body* of commit *sha*: its `tree` and
    `parent` header lines (continuation lines of a signature start with a space)."""
    head, _, message = body.partition(b"\n\n")
    tree: str | None = None
    parents: list[str] = []
    for line in head.split(b"\n"):
        key, _, value = line.partition(b" ")
        if key not in (b"tree", b"parent"):
            continue
        text = value.decode("ascii", "replace")
        if len(text) != hex_length or text.strip("0123456789abcdef"):
            raise GitxpError(f"commit {sha} names {text[:80]!r} as its {key.decode()}")
        if key == b"parent":
            parents.append(text)
        elif tree is None:
            tree = text
        else:
            raise GitxpError(f"commit {sha} has two tree lines")
    if tree is None:
        raise GitxpError(f"commit {sha} has no tree")
    return tree, parents, message


def incomplete_runs(
    git: GitRepo,
    arrivals: Arrivals,
    tips: Mapping[str, str],
    trusted: Iterable[str],
    trailer: str,
) -> dict[str, str]:
    """{ref: what is missing} for each run ref of *tips* ({ref: fetched tip}) whose
    history is not whole. *arrivals* was taken before the fetch; *trusted*
    commits (the local run tips) end a walk; *trailer* is the name of the
    trailer (`Gitxp-Run`) that marks a run's own commits."""
    whole: set[str] = set()
    stop = set(trusted)
    broken: dict[str, str] = {}
    for ref, tip in sorted(tips.items()):
        walk = _Walk(git, arrivals, whole)
        run_id = ref.rsplit("/", 1)[-1]
        try:
            why = walk.history(tip, f"{trailer}: {run_id}", stop)
        except (GitxpError, ObjectFormatException, ValueError) as exc:
            why = f"unreadable: {exc}"  # corrupt, or a tree over its size limit
        if why is None:
            whole |= walk.seen
        else:
            broken[ref] = why
    return broken
