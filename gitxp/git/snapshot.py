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
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

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


def looks_secret(path: str) -> bool:
    """True when the file name at *path* usually holds credentials."""
    name = path.rsplit("/", 1)[-1].lower()
    if name in SECRET_SAFE or name.endswith(".pub"):
        return False
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in SECRET_PATTERNS)


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


def _mode_of(st: os.stat_result) -> int:
    if stat.S_ISLNK(st.st_mode):
        return MODE_LINK
    return MODE_EXEC if st.st_mode & 0o100 else MODE_FILE


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


def _skips_worktree(entry: object) -> bool:
    """True for an index entry a sparse checkout keeps out of the work tree."""
    flag = getattr(entry, "skip_worktree", False)
    return bool(flag() if callable(flag) else flag)  # dulwich's entries have a method


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


def _scan(repo: GitRepo, max_file_size: int, filters: list[WorkTreeFilters]) -> _Scan:
    """Read the work tree against the index and HEAD, writing nothing."""
    drepo = repo.dulwich
    head = repo.head()
    head_tree = repo.read_commit(head).tree if head else None
    index, cached_root = read_index_with_tree(repo)
    index_mtime = index_mtime_ns(repo)
    tracked: dict[str, object] = {}
    tracked_dirs: set[str] = {""}
    gitlinks: set[str] = set()
    skipped: dict[str, tuple[int, str | bytes]] = {}  # sparse checkout: kept as indexed
    for raw_path, entry in index.items():
        path = raw_path.decode("utf-8", "surrogateescape")
        if _skips_worktree(entry):
            mode = getattr(entry, "mode", 0)
            if mode == MODE_TREE:  # a sparse index: one entry for a whole directory
                path = path.rstrip("/")
                tree = entry.sha.decode()
                for sub_path, sub_mode, sha in repo.walk_tree(tree, path + "/"):
                    skipped[sub_path] = (sub_mode, sha)
            else:
                skipped[path] = (mode, entry.sha)
        tracked[path] = entry
        if getattr(entry, "mode", 0) == MODE_GITLINK:
            gitlinks.add(path)
        parent = path.rpartition("/")[0]
        while parent not in tracked_dirs:
            tracked_dirs.add(parent)
            parent = parent.rpartition("/")[0]

    snap = Snapshot(code_commit=head, head=head, dirty=False)
    scan = _Scan(snap, head_tree)
    files: dict[str, tuple[int, str]] = scan.files
    as_indexed = 0  # files whose stat, mode and blob are exactly the index entry's
    new_blobs: dict[str, bytes] = scan.new_blobs
    ignore: IgnoreFilterManager | None = None

    def get_filters() -> WorkTreeFilters:
        if not filters:
            filters.append(WorkTreeFilters(repo))
        return filters[0]

    def over_cap(rel: str, st: os.stat_result, mode: int) -> bool:
        if st.st_size <= max_file_size or mode == MODE_LINK:
            return False
        return not get_filters().has_driver(rel)  # its clean form is checked once read

    def is_ignored(rel: str) -> bool:
        nonlocal ignore
        if ignore is None:
            ignore = IgnoreFilterManager.from_repo(drepo, repo.config_stack())
        return bool(ignore.is_ignored(rel))

    new_hash = repo.ids.new_hash  # SHA-1 or SHA-256: chosen once per snapshot

    def add_content(rel: str, mode: int, data: bytes, known: str | None) -> None:
        # hash as git does; build a Blob only for content the index does not
        # already hold (a copied or touched tree re-hashes every file, and
        # nearly all of them come out unchanged)
        sha = new_hash(b"blob %d\0" % len(data) + data).hexdigest()
        files[rel] = (mode, sha)
        if sha != known:
            new_blobs[sha] = data

    root = repo.root
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        abs_dir = os.path.join(root, rel_dir) if rel_dir else root
        listed = _list_dir(abs_dir)
        if listed is None:
            continue
        for name, st in listed:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            entry = tracked.get(rel)
            if rel in skipped:
                files[rel] = skipped[rel]  # type: ignore[assignment]
                as_indexed += 1
                continue
            if entry is not None and rel in gitlinks:
                staged = entry.sha.decode()  # type: ignore[attr-defined]
                commit = _submodule_commit(repo, os.path.join(abs_dir, name), rel, snap)
                files[rel] = (MODE_GITLINK, commit or staged)
                if commit in (None, staged):
                    as_indexed += 1
                continue
            if st is None:
                continue
            if stat.S_ISDIR(st.st_mode):
                if rel in tracked_dirs:
                    stack.append(rel)
                elif is_ignored(rel + "/"):
                    snap.exclude(rel + "/", "ignored")
                elif os.path.exists(os.path.join(abs_dir, name, ".git")):
                    snap.exclude(rel + "/", "nested repository")
                else:
                    stack.append(rel)
                continue
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                continue
            smode = st.st_mode
            mode = MODE_LINK if stat.S_ISLNK(smode) else MODE_EXEC if smode & 0o100 else MODE_FILE
            if entry is not None:
                if not hasattr(entry, "sha"):
                    continue  # conflicted entry: the work-tree file is recorded below
                if (
                    entry.size == st.st_size  # type: ignore[attr-defined]
                    and entry.mode == mode  # type: ignore[attr-defined]
                    and st.st_mtime_ns < index_mtime
                    and _times_ns(entry) == (st.st_mtime_ns, st.st_ctime_ns)
                    and entry.ino in (0, st.st_ino & 0xFFFFFFFF)  # type: ignore[attr-defined]
                ):
                    # as indexed: the id stays bytes until a tree is built (never, when clean)
                    files[rel] = (mode, entry.sha)
                    as_indexed += 1
                    continue
                idx_sha = entry.sha.decode()
                if looks_secret(rel):
                    files[rel] = (entry.mode, idx_sha)  # type: ignore[attr-defined]
                    snap.exclude(rel, "secret-looking file: its changes are not snapshotted")
                    continue
                if over_cap(rel, st, mode):
                    files[rel] = (entry.mode, idx_sha)  # type: ignore[attr-defined]
                    snap.exclude(rel, f"larger than {max_file_size} bytes: changes not snapshotted")
                    continue
            else:
                if is_ignored(rel):
                    snap.exclude(rel, "ignored")
                    continue
                if looks_secret(rel):
                    snap.exclude(rel, "secret-looking file")
                    continue
                if over_cap(rel, st, mode):
                    snap.exclude(rel, f"larger than {max_file_size} bytes")
                    continue
            try:
                if mode == MODE_LINK:
                    data = os.fsencode(os.readlink(os.path.join(abs_dir, name)))
                else:
                    with open(os.path.join(abs_dir, name), "rb") as f:
                        data = f.read()
            except OSError:
                continue
            known = entry.sha.decode() if entry is not None else None
            if mode != MODE_LINK:
                data = get_filters().clean(rel, data, known)
                if len(data) > max_file_size:
                    if known is not None:
                        files[rel] = (entry.mode, known)
                    snap.exclude(rel, f"larger than {max_file_size} bytes once filtered")
                    continue
            add_content(rel, mode, data, known)

    for rel, value in skipped.items():
        if rel not in files:  # not checked out: as indexed, not deleted
            files[rel] = value  # type: ignore[assignment]
            as_indexed += 1
    if (
        cached_root is not None
        and cached_root == head_tree
        and as_indexed == len(index)
        and len(files) == as_indexed
    ):
        # Every file is exactly as indexed, nothing untracked was added, and
        # git's cache-tree says the index is HEAD's tree: nothing to build.
        return scan
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
