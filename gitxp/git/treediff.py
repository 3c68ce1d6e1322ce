"""What changed between two commits: the changed files and a unified diff.

Generic plumbing (no notion of runs): give it two commit ids, get back a
list of changed paths, and per path a unified diff text. Used by the UI's
code view; small on purpose so other commands can share it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from dulwich.diff_tree import RenameDetector, tree_changes
from dulwich.objects import Blob, Commit

from .repository import MODE_GITLINK, GitRepo

MAX_DIFF_BYTES = 512 * 1024  # per side: bigger files are summarised, not diffed


@dataclass(frozen=True)
class FileChange:
    """One changed path between two trees."""

    status: str  # added, deleted, modified, renamed
    path: str  # new path (old path for deletions)
    old_path: str | None
    old_id: str | None
    new_id: str | None
    old_mode: int | None
    new_mode: int | None


def _object(git: GitRepo, sha: str) -> Any:
    store: Any = git.dulwich.object_store  # dulwich types ids as NewTypes of bytes
    return store[sha.encode()]


def _tree_of(git: GitRepo, commit_id: str | None) -> Any:
    if commit_id is None:
        return None
    obj = _object(git, commit_id)
    if not isinstance(obj, Commit):
        raise ValueError(f"{commit_id} is not a commit")
    return obj.tree


def changed_files(git: GitRepo, old: str | None, new: str | None) -> list[FileChange]:
    """The files that differ from commit *old* to commit *new* (None: the empty tree)."""
    store = git.dulwich.object_store
    out = []
    detector = RenameDetector(store)
    for change in tree_changes(
        store, _tree_of(git, old), _tree_of(git, new), rename_detector=detector
    ):
        o, n = change.old, change.new
        op = o.path.decode("utf-8", "replace") if o and o.path else None
        np_ = n.path.decode("utf-8", "replace") if n and n.path else None
        status = {"add": "added", "delete": "deleted", "rename": "renamed"}.get(
            change.type, "modified"
        )
        out.append(
            FileChange(
                status=status,
                path=np_ or op or "",
                old_path=op,
                old_id=o.sha.decode() if o and o.sha else None,
                new_id=n.sha.decode() if n and n.sha else None,
                old_mode=o.mode if o else None,
                new_mode=n.mode if n else None,
            )
        )
    return sorted(out, key=lambda c: c.path)


def _text(git: GitRepo, sha: str | None, mode: int | None) -> list[str] | str:
    """The lines of a blob, or a reason it is not shown as text."""
    if sha is None:
        return []
    if mode == MODE_GITLINK:
        return [f"Subproject commit {sha}\n"]
    obj = _object(git, sha)
    if not isinstance(obj, Blob):
        return "not a file"
    data = obj.as_raw_string()
    if len(data) > MAX_DIFF_BYTES:
        return f"file too large to diff ({len(data):,} bytes)"
    if b"\0" in data[:8000]:
        return "binary file"
    return data.decode("utf-8", "replace").splitlines(keepends=True)


def file_diff(git: GitRepo, change: FileChange, context: int = 3) -> str:
    """The unified diff of one change (a one-line note for binary or huge files)."""
    a = _text(git, change.old_id, change.old_mode)
    b = _text(git, change.new_id, change.new_mode)
    old_name = f"a/{change.old_path}" if change.old_path else "/dev/null"
    new_name = f"b/{change.path}" if change.new_id else "/dev/null"
    git_line = f"diff --git a/{change.old_path or change.path} b/{change.path}\n"
    header = f"{git_line}--- {old_name}\n+++ {new_name}\n"
    if isinstance(a, str) or isinstance(b, str):
        reason = a if isinstance(a, str) else b
        return header + f"({reason})\n"
    lines = difflib.unified_diff(a, b, old_name, new_name, n=context)
    body = "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
    if not body and change.old_mode != change.new_mode:
        return header + f"(mode {change.old_mode:o} -> {change.new_mode:o})\n"
    return git_line + body if body else header


def unified_diff(
    git: GitRepo, old: str | None, new: str | None, paths: list[str] | None = None
) -> str:
    """The unified diff from commit *old* to *new* (only *paths* when given)."""
    wanted = set(paths) if paths else None
    return "".join(
        file_diff(git, c)
        for c in changed_files(git, old, new)
        if wanted is None or c.path in wanted or c.old_path in wanted
    )
