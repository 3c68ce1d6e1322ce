"""Commit history questions the hooks ask: which commit a name means, what a push sends.

All answers are hex commit ids (`str`); dulwich stays inside this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from dulwich.errors import MissingCommitError
from dulwich.objects import Commit, Tag

from ..errors import HistoryIncompleteError
from .hashing import is_zero
from .repository import GitRepo
from .types import ObjectID, Ref, as_oid, as_ref

_SUFFIXES = re.compile(r"(.+?)((?:~\d*|\^\d*)*)")
_STEP = re.compile(r"~\d*|\^\d*")
_HEXDIGITS = re.compile(r"[0-9a-f]+")
CLOCK_SKEW_SECONDS = 86_400  # how much later than its child's a parent's commit time may be


def resolve_commit(git: GitRepo, rev: str) -> str | None:
    """The commit *rev* names (a full id, `HEAD`, a ref or branch name), tags peeled.

    Returns None when it names nothing or something that is not a commit.
    """
    text = rev.strip()
    if not text:
        return None
    sha: ObjectID | None = None
    if git.ids.is_id(text.lower()):
        sha = as_oid(text.lower())
    else:
        refs = git.dulwich.refs
        for name in (text, f"refs/heads/{text}", f"refs/tags/{text}", f"refs/remotes/{text}"):
            try:
                sha = refs[as_ref(name)]
                break
            except KeyError:
                continue
    if sha is None:
        return None
    return peel_commit(git, sha.decode())


def resolve_revision(git: GitRepo, rev: str) -> str | None:
    """Like `resolve_commit`, and also a unique abbreviated id (at least 4 hex digits) and
    first-parent suffixes: `main~2`, `HEAD^`, `v1.0~1^`. None when it names no commit."""
    match = _SUFFIXES.fullmatch(rev.strip())
    if match is None:
        return None
    name, suffixes = match.group(1), match.group(2)
    commit = resolve_commit(git, name) or _unique_prefix(git, name)
    for step in _STEP.findall(suffixes):
        count = 1 if step in ("^", "~") else int(step[1:] or 1)
        if step.startswith("^") and count != 1:
            return None  # ^2 and beyond name other parents: not supported
        for _ in range(count):
            if commit is None:
                return None
            commit = first_parent(git, commit)
    return commit


def _unique_prefix(git: GitRepo, text: str) -> str | None:
    """The one commit whose id starts with *text* (4 or more hex digits), else None."""
    prefix = text.lower()
    if not 4 <= len(prefix) < git.ids.hex_length or not _HEXDIGITS.fullmatch(prefix):
        return None
    found = {
        peel_commit(git, sha.decode())
        for sha in git.dulwich.object_store.iter_prefix(prefix.encode())
    }
    found.discard(None)
    return found.pop() if len(found) == 1 else None


def peel_commit(git: GitRepo, sha: str) -> str | None:
    """Follow annotated tags from object *sha* to a commit; None if absent or not a commit."""
    store = git.dulwich.object_store
    key = as_oid(sha)
    for _ in range(16):  # tags of tags are legal but never deep
        try:
            obj = store[key]
        except KeyError:
            return None
        if isinstance(obj, Commit):
            return key.decode()
        if not isinstance(obj, Tag):
            return None
        key = obj.object[1]
    return None


def first_parent(git: GitRepo, sha: str) -> str | None:
    """The first parent of commit *sha*, or None (root commit or missing object)."""
    try:
        parents = git.read_commit(sha).parents
    except Exception:  # missing or damaged object: the caller treats it as "no parent"
        return None
    return parents[0] if parents else None


def remote_tips(git: GitRepo, remote: str | None) -> list[str]:
    """The commits the remote-tracking refs of *remote* (`refs/remotes/<remote>/*`) point at."""
    if not remote or "/" in remote or ":" in remote:
        return []  # a URL, not a configured remote: nothing known about it
    prefix = as_ref(f"refs/remotes/{remote}/")
    refs = git.dulwich.refs
    tips = []
    for name in refs.keys(base=prefix):
        try:
            sha = refs[Ref(prefix + name)]
        except KeyError:
            continue
        commit = peel_commit(git, sha.decode())
        if commit:
            tips.append(commit)
    return tips


def new_commits(git: GitRepo, include: Iterable[str], exclude: Iterable[str] = ()) -> set[str]:
    """Commits reachable from *include* but from none of *exclude* (`git rev-list A --not B`).

    Unknown or zero ids in *exclude* are ignored: a remote tip we never
    fetched cannot hide anything.
    """
    store = git.dulwich.object_store
    wanted = [as_oid(s) for s in include if s and not is_zero(s) and as_oid(s) in store]
    if not wanted:
        return set()
    unwanted = [as_oid(s) for s in exclude if s and not is_zero(s) and as_oid(s) in store]
    walker = git.dulwich.get_walker(include=wanted, exclude=unwanted or None)
    return {git.ids.object_id(entry.commit) for entry in walker}


def _walk(git: GitRepo, include: list[str], exclude: list[str]) -> Iterator[Commit]:
    """Commits of `git rev-list INCLUDE --not EXCLUDE`, newest first (by commit time).

    A commit the walk needs but the repository lacks (a partial fetch), or
    reaching the edge of a shallow clone, is a `HistoryIncompleteError`: the
    answer would be wrong, not just short.
    """
    store = git.dulwich.object_store
    wanted = [as_oid(s) for s in include if s and not is_zero(s)]
    if not wanted:
        return
    unwanted = [as_oid(s) for s in exclude if s and not is_zero(s)]
    for sha in wanted + unwanted:
        if sha not in store:
            raise HistoryIncompleteError(git.root, sha.decode())
    shallow = git.dulwich.get_shallow()  # commits whose parents this clone lacks
    try:
        for entry in git.dulwich.get_walker(include=wanted, exclude=unwanted or None):
            if entry.commit.id in shallow:
                raise HistoryIncompleteError(git.root, entry.commit.id.decode())
            yield entry.commit
    except (KeyError, MissingCommitError) as exc:
        missing = exc.args[0] if exc.args else b""
        text = missing.decode() if isinstance(missing, bytes) else str(missing)
        raise HistoryIncompleteError(git.root, text) from None


def reachable_from(git: GitRepo, candidates: Iterable[str], tips: Iterable[str]) -> set[str]:
    """Those of *candidates* that are *tips* or their ancestors (`git merge-base --is-ancestor`).

    One walk back from the tips that ends when every candidate is found, and
    does not go below the oldest candidate's commit time (less a day of
    clock skew, as parents are older than their children): it costs the
    history since the oldest candidate, not all of it. Candidates the
    repository does not have are never reachable.
    """
    store = git.dulwich.object_store
    wanted = {as_oid(c) for c in candidates if c and not is_zero(c) and as_oid(c) in store}
    todo = [as_oid(t) for t in tips if t and not is_zero(t)]
    if not wanted or not todo:
        return set()
    floor = min(_commit(git, sha).commit_time for sha in wanted) - CLOCK_SKEW_SECONDS
    shallow = git.dulwich.get_shallow()
    found: set[ObjectID] = set()
    seen: set[ObjectID] = set()
    while todo:
        sha = todo.pop()
        if sha in seen:
            continue
        seen.add(sha)
        commit = _commit(git, sha)
        if sha in wanted:
            found.add(sha)
            if len(found) == len(wanted):
                break
        if commit.commit_time < floor:
            continue
        if sha in shallow:  # its parents are not here: the answer would be wrong
            raise HistoryIncompleteError(git.root, sha.decode())
        todo.extend(commit.parents)
    return {sha.decode() for sha in found}


def _commit(git: GitRepo, sha: ObjectID) -> Commit:
    """The commit *sha*; a missing object is a `HistoryIncompleteError`."""
    try:
        obj = git.dulwich.object_store[sha]
    except KeyError:
        raise HistoryIncompleteError(git.root, sha.decode()) from None
    if not isinstance(obj, Commit):
        raise HistoryIncompleteError(git.root, sha.decode())
    return obj


def log_range(
    git: GitRepo, head: str, base: str, limit: int | None = None
) -> tuple[list[tuple[str, str]], int]:
    """`git log --oneline BASE..HEAD`: up to *limit* (None: all) (id, subject) pairs, newest
    first, and how many commits the range holds in all."""
    out: list[tuple[str, str]] = []
    total = 0
    for commit in _walk(git, [head], [base]):
        total += 1
        if limit is None or len(out) < limit:
            message = commit.message.decode("utf-8", "replace").strip()
            out.append((git.ids.object_id(commit), message.split("\n", 1)[0].strip()))
    return out, total
