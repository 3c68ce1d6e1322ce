"""The code a run ran with: HEAD when the work tree is clean, else a snapshot commit.

A snapshot is what `git stash create -u` would record, built without
touching the work tree, the index or any ref: the work tree as it is
(tracked changes and untracked, non-ignored files, exec bits, symlinks,
submodules as gitlinks) committed with HEAD as its only parent.

A submodule is recorded as the commit checked out in it (its HEAD, which
may differ from the gitlink staged in the index); when it has uncommitted
changes of its own, those cannot be in a gitlink, and the snapshot says so.
Files a sparse checkout leaves out (skip-worktree in the index) keep their
index entry: they are not deletions, and their blobs are never read (in a
partial clone they may not even be present).

Files whose stat matches the index reuse their index blob id and are not
re-read; "racily clean" entries (modified in the same second the index was
written) are re-hashed, as git does. Left out, and reported:
ignored paths, files above a size cap, secret-looking files, nested
repositories.

Files that are read go through `.gitattributes` as `git add` would take
them (`filters.WorkTreeFilters`: filter drivers such as Git LFS, line-ending
conversion), so a file `git status` calls clean is clean here too and an
LFS file is stored as its pointer. A file whose filter driver is configured
is not held to the size cap (its stored form is what the cap applies to).
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from dulwich.ignore import IgnoreFilterManager
from dulwich.objects import Blob, Tree

from ..errors import GitxpError
from .filters import WorkTreeFilters
from .index import index_mtime_ns, read_index_with_tree
from .repository import (
    MODE_EXEC,
    MODE_FILE,
    MODE_GITLINK,
    MODE_LINK,
    MODE_TREE,
    GitRepo,
    build_trees,
)

DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024
MAX_LISTED_EXCLUSIONS = 200
DIRTY_SUBMODULE = "submodule with uncommitted changes: only its commit is recorded"
NOT_CHANGES = ("ignored", "nested repository")  # exclusions that are not left-out edits

# Basenames that usually hold credentials; they are never snapshotted.
SECRET_PATTERNS = (
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.kdbx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".pypirc",
    ".npmrc",
    ".git-credentials",
    "credentials",
    "credentials.json",
    "*credentials*.json",
    "service-account*.json",
    "secrets.*",
    "*.secret",
    "*.secrets",
    ".htpasswd",
    "*.ovpn",
    "kubeconfig",
)
SECRET_SAFE = (".env.example", ".env.sample", ".env.template", ".env.dist")


@cache
def _secret_names() -> re.Pattern[str]:
    """SECRET_PATTERNS as one expression, compiled on first use.

    One match per file instead of 29 `fnmatchcase` calls (28 µs per file, and
    29 compiles on the first one, in every `gitxp run` that takes a snapshot).
    """
    return re.compile("|".join(fnmatch.translate(p) for p in SECRET_PATTERNS))


def looks_secret(path: str) -> bool:
    """True when the file name at *path* usually holds credentials."""
    name = path.rsplit("/", 1)[-1].lower()
    if name in SECRET_SAFE or name.endswith(".pub"):
        return False
    return _secret_names().match(name) is not None


@dataclass
class Snapshot:
    """The code commit of a run and what the snapshot left out."""

    code_commit: str | None
    head: str | None
    dirty: bool
    changed: list[str] = field(default_factory=list)
    excluded: list[dict[str, str]] = field(default_factory=list)
    excluded_count: int = 0
    unfiltered: list[dict[str, str]] = field(default_factory=list)  # stored without their filter

    def exclude(self, path: str, reason: str) -> None:
        self.excluded_count += 1
        if len(self.excluded) < MAX_LISTED_EXCLUSIONS:
            self.excluded.append({"path": path, "reason": reason})


def _times_ns(entry: object) -> tuple[int, int]:
    """An index entry's (mtime, ctime) in ns: precomputed by gitxp's index reader,
    converted for dulwich's entries (the fallback for unusual index formats)."""
    fast = getattr(entry, "mtime_ns", None)
    if fast is not None:
        return fast, entry.ctime_ns  # type: ignore[attr-defined]
    return _mtime_ns(entry.mtime), _mtime_ns(entry.ctime)  # type: ignore[attr-defined]


def _mtime_ns(value: object) -> int:
    if isinstance(value, tuple):
        return int(value[0]) * 1_000_000_000 + int(value[1])
    return int(float(value) * 1_000_000_000)  # type: ignore[arg-type]


_SCANDIR_FD = os.scandir in os.supports_fd


def _list_dir(path: str) -> list[tuple[str, os.stat_result | None]] | None:
    """The entries of directory *path* (`.git` left out) with their lstat, or None.

    Where the platform allows, the directory is listed through a descriptor:
    each entry's stat is then an `fstatat` relative to it rather than a walk
    of the full path, a third faster on a 10,000-file tree.
    """
    try:
        if _SCANDIR_FD:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                return _stat_entries(os.scandir(fd))
            finally:
                os.close(fd)
        return _stat_entries(os.scandir(path))
    except OSError:
        return None


def _stat_entries(entries: Iterator[os.DirEntry[str]]) -> list[tuple[str, os.stat_result | None]]:
    listed: list[tuple[str, os.stat_result | None]] = []
    for dent in entries:
        if dent.name == ".git":
            continue
        try:
            listed.append((dent.name, dent.stat(follow_symlinks=False)))
        except OSError:
            listed.append((dent.name, None))
    return listed


def take_snapshot(
    repo: GitRepo,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    message: str = "gitxp: work-tree snapshot",
) -> Snapshot:
    """Record the work tree; return HEAD itself when nothing differs from it."""
    repo.require_work_tree("a run's snapshot of the work tree")
    filters: list[WorkTreeFilters] = []  # made when the first file is read; one per snapshot
    try:
        scan = _scan(repo, max_file_size, filters)
    finally:
        for made in filters:
            made.close()
    snap = scan.snap
    if scan.trees is None:
        return snap
    # Something differs: write the new blobs, the trees and the snapshot commit.
    for sha, data in scan.new_blobs.items():
        if not repo.has_object(sha):
            repo.add_object(Blob.from_string(data))
    for tree in scan.trees:
        repo.add_object(tree)
    snap.changed = _changed_paths(repo, scan.head_tree, scan.files)
    snap.dirty = True
    head = snap.head
    snap.code_commit = repo.write_commit(scan.tree_id, [head] if head else [], message)
    if filters and snap.changed:
        changed = set(snap.changed)
        snap.unfiltered = [item for item in filters[0].unfiltered if item["path"] in changed]
    return snap


@dataclass
class _Scan:
    """What reading a work tree found; `trees` is None when it matches HEAD."""

    snap: Snapshot
    head_tree: str | None
    files: dict[str, tuple[int, str]] = field(default_factory=dict)
    new_blobs: dict[str, bytes] = field(default_factory=dict)
    tree_id: str = ""
    trees: list[Tree] | None = None


@dataclass
class _Indexed:
    """The index as the work-tree walk consults it, keyed by text path."""

    entries: dict[str, object] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=lambda: {""})  # every directory holding an entry
    gitlinks: set[str] = field(default_factory=set)
    skipped: dict[str, tuple[int, str | bytes]] = field(default_factory=dict)  # sparse: as indexed


def _skips_worktree(entry: object) -> bool:
    """True for an index entry a sparse checkout keeps out of the work tree."""
    flag = getattr(entry, "skip_worktree", False)
    return bool(flag() if callable(flag) else flag)  # dulwich's entries have a method


def _read_indexed(repo: GitRepo, index: dict[bytes, Any]) -> _Indexed:
    """Sort the index's entries into what the walk needs: tracked paths, their
    directories, submodules, and the files a sparse checkout leaves out."""
    indexed = _Indexed()
    for raw_path, entry in index.items():
        path = raw_path.decode("utf-8", "surrogateescape")
        if _skips_worktree(entry):
            mode = getattr(entry, "mode", 0)
            if mode == MODE_TREE:  # a sparse index: one entry for a whole directory
                path = path.rstrip("/")
                tree = entry.sha.decode()
                for sub_path, sub_mode, sha in repo.walk_tree(tree, path + "/"):
                    indexed.skipped[sub_path] = (sub_mode, sha)
            else:
                indexed.skipped[path] = (mode, entry.sha)
        indexed.entries[path] = entry
        if getattr(entry, "mode", 0) == MODE_GITLINK:
            indexed.gitlinks.add(path)
        parent = path.rpartition("/")[0]
        while parent not in indexed.dirs:
            indexed.dirs.add(parent)
            parent = parent.rpartition("/")[0]
    return indexed


def _submodule_commit(repo: GitRepo, path: str, rel: str, snap: Snapshot) -> str | None:
    """The commit checked out in the submodule at *path* (None: not initialised).

    Says in *snap* when the submodule has uncommitted changes (tracked edits
    or untracked files that are not ignored, in it or in its own submodules).
    """
    if not os.path.exists(os.path.join(path, ".git")):
        return None
    try:
        sub = GitRepo(path)
    except GitxpError:
        return None
    with sub:
        if sub.bare or sub.root != os.path.abspath(path):
            return None
        head = sub.head()
        sub_filters: list[WorkTreeFilters] = []
        try:
            scan = _scan(sub, sys.maxsize, sub_filters)
        finally:
            for made in sub_filters:
                made.close()
        if scan.trees is not None or any(
            e["reason"] not in NOT_CHANGES for e in scan.snap.excluded
        ):
            snap.exclude(rel + "/", DIRTY_SUBMODULE)
        return head


def _stat_matches(entry: object, st: os.stat_result, mode: int, index_mtime: int) -> bool:
    """True when the file's stat is the index entry's, so its indexed blob is its content.

    A file modified no earlier than the index was written ("racily clean")
    never matches: it may have changed within the same timestamp.
    """
    return bool(
        entry.size == st.st_size  # type: ignore[attr-defined]
        and entry.mode == mode  # type: ignore[attr-defined]
        and st.st_mtime_ns < index_mtime
        and _times_ns(entry) == (st.st_mtime_ns, st.st_ctime_ns)
        and entry.ino in (0, st.st_ino & 0xFFFFFFFF)  # type: ignore[attr-defined]
    )


def _read_content(path: str, mode: int) -> bytes | None:
    """The bytes git would hash for the file or symlink at *path* (None: unreadable)."""
    try:
        if mode == MODE_LINK:
            return os.fsencode(os.readlink(path))
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


class _WorkTreeReader:
    """One walk of a work tree, recording each file's mode and blob id in a `_Scan`.

    Files the index already describes keep their indexed id; the others are
    read, cleaned through the work tree's filters and hashed. What is left out
    is noted in the scan's snapshot.
    """

    def __init__(
        self,
        repo: GitRepo,
        max_file_size: int,
        filters: list[WorkTreeFilters],
        indexed: _Indexed,
        scan: _Scan,
    ) -> None:
        self.repo = repo
        self.max_file_size = max_file_size
        self.filters = filters
        self.indexed = indexed
        self.scan = scan
        self.snap = scan.snap
        self.files = scan.files
        self.index_mtime = index_mtime_ns(repo)
        self.new_hash = repo.ids.new_hash  # SHA-1 or SHA-256: chosen once per snapshot
        self.ignore: IgnoreFilterManager | None = None
        self.as_indexed = 0  # files whose stat, mode and blob are exactly the index entry's

    def walk(self) -> None:
        """Visit every directory below the root that is tracked or not left out."""
        stack = [""]
        root = self.repo.root
        while stack:
            rel_dir = stack.pop()
            abs_dir = os.path.join(root, rel_dir) if rel_dir else root
            listed = _list_dir(abs_dir)
            if listed is None:
                continue
            for name, st in listed:
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if self._visit(abs_dir, name, rel, st):
                    stack.append(rel)

    def keep_sparse_entries(self) -> None:
        """Record the files a sparse checkout left out as indexed: they are not deleted."""
        for rel, value in self.indexed.skipped.items():
            if rel not in self.files:
                self.files[rel] = value  # type: ignore[assignment]
                self.as_indexed += 1

    def _visit(self, abs_dir: str, name: str, rel: str, st: os.stat_result | None) -> bool:
        """Record the entry *name* of *abs_dir*; True when it is a directory to walk into."""
        skipped = self.indexed.skipped.get(rel)
        if skipped is not None:
            self.files[rel] = skipped  # type: ignore[assignment]
            self.as_indexed += 1
            return False
        entry = self.indexed.entries.get(rel)
        if entry is not None and rel in self.indexed.gitlinks:
            staged = entry.sha.decode()  # type: ignore[attr-defined]
            commit = _submodule_commit(self.repo, os.path.join(abs_dir, name), rel, self.snap)
            self.files[rel] = (MODE_GITLINK, commit or staged)
            if commit in (None, staged):
                self.as_indexed += 1
            return False
        if st is None:
            return False
        smode = st.st_mode
        if stat.S_ISDIR(smode):
            return self._walks_into(os.path.join(abs_dir, name), rel)
        if stat.S_ISLNK(smode):
            self._visit_file(abs_dir, name, rel, st, MODE_LINK, entry)
        elif stat.S_ISREG(smode):
            mode = MODE_EXEC if smode & 0o100 else MODE_FILE
            self._visit_file(abs_dir, name, rel, st, mode, entry)
        return False

    def _walks_into(self, path: str, rel: str) -> bool:
        """True for a directory to walk; an ignored one or a nested repository is noted."""
        if rel in self.indexed.dirs:
            return True
        if self._is_ignored(rel + "/"):
            self.snap.exclude(rel + "/", "ignored")
        elif os.path.exists(os.path.join(path, ".git")):
            self.snap.exclude(rel + "/", "nested repository")
        else:
            return True
        return False

    def _visit_file(
        self, abs_dir: str, name: str, rel: str, st: os.stat_result, mode: int, entry: object | None
    ) -> None:
        """Record a file or symlink: as indexed, left out, or read and hashed."""
        if entry is not None:
            if not hasattr(entry, "sha"):
                return  # conflicted entry: the work-tree file is recorded below
            if _stat_matches(entry, st, mode, self.index_mtime):
                # as indexed: the id stays bytes until a tree is built (never, when clean)
                self.files[rel] = (mode, entry.sha)
                self.as_indexed += 1
                return
            if self._keeps_indexed(rel, st, mode, entry):
                return
        elif self._leaves_out_untracked(rel, st, mode):
            return
        data = _read_content(os.path.join(abs_dir, name), mode)
        if data is None:
            return
        known = entry.sha.decode() if entry is not None else None
        if mode != MODE_LINK:
            data = self._filters().clean(rel, data, known)
            if len(data) > self.max_file_size:
                if known is not None:
                    self.files[rel] = (entry.mode, known)  # type: ignore[attr-defined]
                self.snap.exclude(rel, f"larger than {self.max_file_size} bytes once filtered")
                return
        self._add_content(rel, mode, data, known)

    def _keeps_indexed(self, rel: str, st: os.stat_result, mode: int, entry: object) -> bool:
        """True when a changed tracked file's edits are left out: it stays as indexed."""
        if looks_secret(rel):
            reason = "secret-looking file: its changes are not snapshotted"
        elif self._over_cap(rel, st, mode):
            reason = f"larger than {self.max_file_size} bytes: changes not snapshotted"
        else:
            return False
        self.files[rel] = (entry.mode, entry.sha.decode())  # type: ignore[attr-defined]
        self.snap.exclude(rel, reason)
        return True

    def _leaves_out_untracked(self, rel: str, st: os.stat_result, mode: int) -> bool:
        """True when an untracked file is not snapshotted (ignored, secret or too large)."""
        if self._is_ignored(rel):
            self.snap.exclude(rel, "ignored")
        elif looks_secret(rel):
            self.snap.exclude(rel, "secret-looking file")
        elif self._over_cap(rel, st, mode):
            self.snap.exclude(rel, f"larger than {self.max_file_size} bytes")
        else:
            return False
        return True

    def _add_content(self, rel: str, mode: int, data: bytes, known: str | None) -> None:
        """Record *data* under *rel*, keeping it to write unless the index holds it."""
        # hash as git does; build a Blob only for content the index does not
        # already hold (a copied or touched tree re-hashes every file, and
        # nearly all of them come out unchanged)
        sha = self.new_hash(b"blob %d\0" % len(data) + data).hexdigest()
        self.files[rel] = (mode, sha)
        if sha != known:
            self.scan.new_blobs[sha] = data

    def _filters(self) -> WorkTreeFilters:
        """The work tree's filters, made when the first file is read."""
        if not self.filters:
            self.filters.append(WorkTreeFilters(self.repo))
        return self.filters[0]

    def _over_cap(self, rel: str, st: os.stat_result, mode: int) -> bool:
        """True for a file above the size cap that no filter driver will shrink."""
        if st.st_size <= self.max_file_size or mode == MODE_LINK:
            return False
        return not self._filters().has_driver(rel)  # its clean form is checked once read

    def _is_ignored(self, rel: str) -> bool:
        """True when `.gitignore` or the exclude files ignore *rel*."""
        if self.ignore is None:
            self.ignore = IgnoreFilterManager.from_repo(self.repo.dulwich, self.repo.config_stack())
        return bool(self.ignore.is_ignored(rel))


def _scan(repo: GitRepo, max_file_size: int, filters: list[WorkTreeFilters]) -> _Scan:
    """Read the work tree against the index and HEAD, writing nothing."""
    head = repo.head()
    head_tree = repo.read_commit(head).tree if head else None
    index, cached_root = read_index_with_tree(repo)
    scan = _Scan(Snapshot(code_commit=head, head=head, dirty=False), head_tree)
    reader = _WorkTreeReader(repo, max_file_size, filters, _read_indexed(repo, index), scan)
    reader.walk()
    reader.keep_sparse_entries()
    as_indexed = reader.as_indexed
    if (
        cached_root is not None
        and cached_root == head_tree
        and as_indexed == len(index)
        and len(scan.files) == as_indexed
    ):
        # Every file is exactly as indexed, nothing untracked was added, and
        # git's cache-tree says the index is HEAD's tree: nothing to build.
        return scan
    files = scan.files
    for rel, (mode, sha) in files.items():
        if isinstance(sha, bytes):
            files[rel] = (mode, sha.decode())
    scan.tree_id, trees = build_trees(files, repo.ids)
    if scan.tree_id != head_tree:
        scan.trees = trees
    return scan


def _changed_paths(
    repo: GitRepo, head_tree: str | None, files: dict[str, tuple[int, str]]
) -> list[str]:
    before = {p: (m, s) for p, m, s in repo.walk_tree(head_tree)} if head_tree else {}
    changed = [p for p, v in files.items() if before.get(p) != v]
    changed += [p for p in before if p not in files]
    return sorted(changed)
