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

from ..errors import GitxpError
from .repository import GitRepo

MODE_TREE = 0o040000
MODE_GITLINK = 0o160000
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

    def _new_packs(self) -> list[Any]:
        if self._new is None:
            store = self._git.dulwich.object_store
            self._new = [p for p in store.packs if _pack_name(p) not in self._before]
        return self._new

    def is_new(self, sha: str) -> bool:
        """Whether object *sha* (stored) arrived after the snapshot."""
        raw = bytes.fromhex(sha)
        for pack in self._new_packs():
            try:
                pack.index.object_offset(raw)
                return True
            except KeyError:
                continue
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

    def tree(self, sha: str, full: bool) -> str | None:
        """Why tree *sha* is not whole, or None. Without *full*, a tree stored before
        the fetch is taken as whole."""
        stack = [sha]
        while stack:
            tree = stack.pop()
            if tree in self.seen or tree in self.whole:
                continue
            if not self.git.has_object(tree):
                return f"tree {tree} is missing"
            if not full and not self.arrivals.is_new(tree):
                continue  # stored before the fetch
            self.seen.add(tree)
            for mode, child in self.git.read_tree(tree).values():
                if mode == MODE_TREE:
                    stack.append(child)
                elif mode != MODE_GITLINK and child not in self.seen and child not in self.whole:
                    if not self.git.has_object(child):
                        return f"blob {child} is missing"
                    self.seen.add(child)
        return None

    def history(self, tip: str, trailer: str, stop: set[str]) -> str | None:
        """Why the history of run tip *tip* is not whole, or None."""
        stack = [tip]
        while stack:
            sha = stack.pop()
            if sha in self.seen or sha in self.whole or sha in stop:
                continue
            if not self.git.has_object(sha):
                return f"commit {sha} is missing"
            commit = self.git.read_commit(sha)
            own = sha == tip or trailer in commit.message
            if not own and not self.arrivals.is_new(sha):
                continue  # stored before the fetch: the user's own history
            self.seen.add(sha)
            why = self.tree(commit.tree, full=own)
            if why is not None:
                return why
            stack.extend(commit.parents)
        return None


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
