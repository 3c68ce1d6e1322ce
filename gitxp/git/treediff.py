"""What changed between two commits' trees: the list of files, and a unified diff."""

from __future__ import annotations

import io

from dulwich.diff_tree import tree_changes
from dulwich.patch import write_tree_diff

from .repository import GitRepo

_KINDS = {"add": "added", "delete": "deleted", "modify": "modified", "rename": "renamed"}


def _tree(git: GitRepo, commit: str | None) -> bytes | None:
    return git.read_commit(commit).tree.encode() if commit else None


def changed_files(git: GitRepo, old: str | None, new: str | None) -> list[dict[str, str]]:
    """The files that differ from commit *old* to commit *new*: [{"path", "change"}], sorted."""
    if old == new:
        return []
    out = []
    for change in tree_changes(git.dulwich.object_store, _tree(git, old), _tree(git, new)):
        kind = _KINDS.get(change.type, change.type)
        entry = change.new if change.new is not None and change.new.path else change.old
        assert entry is not None and entry.path is not None
        out.append({"path": entry.path.decode("utf-8", "replace"), "change": kind})
        if (
            kind == "modified"
            and change.old is not None
            and change.new is not None
            and change.old.mode != change.new.mode
            and change.old.sha == change.new.sha
        ):
            out[-1]["change"] = "mode changed"
    return sorted(out, key=lambda c: c["path"])


def unified_diff(git: GitRepo, old: str | None, new: str | None) -> str:
    """`git diff old new` as text (binary files are named, not shown)."""
    if old == new:
        return ""
    buf = io.BytesIO()
    write_tree_diff(buf, git.dulwich.object_store, _tree(git, old), _tree(git, new))
    return buf.getvalue().decode("utf-8", "replace")
