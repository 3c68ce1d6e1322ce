"""A run's own history: the commits that carry its `Gitxp-Run` trailer.

Sharing (fast-forward checks, which objects a push sends) and the replay of
local edits (`pull --rebase-edits`) walk a run's commits, never the code
history below them, so the cost is the length of the run's history.
"""

from __future__ import annotations

from ..format import storage
from ..git.repository import GitRepo

MAX_WALK = 100_000  # commits: far beyond any run's history (a checkpoint every 30 s for a month)


def is_ancestor(git: GitRepo, ancestor: str, descendant: str, run_id: str) -> bool:
    """Whether commit *ancestor* is in the history of run *run_id* ending at *descendant*.

    Only the run's own commits (those carrying its `Gitxp-Run` trailer) are
    walked, so the cost is the length of the run's history, never the
    code's. An *ancestor* not stored locally is not an ancestor.
    """
    if ancestor == descendant:
        return True
    if not git.has_object(ancestor):
        return False
    trailer = f"{storage.TRAILER_RUN}: {run_id}"
    queue = [descendant]
    seen: set[str] = set()
    while queue and len(seen) < MAX_WALK:
        sha = queue.pop()
        if sha in seen or not git.has_object(sha):
            continue
        seen.add(sha)
        commit = git.read_commit(sha)
        if trailer not in commit.message:
            continue  # the code commit (or a snapshot): the run's history ends here
        for parent in commit.parents:
            if parent == ancestor:
                return True
            queue.append(parent)
    return False


def run_commits(git: GitRepo, tip: str, run_id: str, limit: int) -> list[str]:
    """Up to *limit* of run *run_id*'s own commits, newest first, following first parents."""
    trailer = f"{storage.TRAILER_RUN}: {run_id}"
    out: list[str] = []
    sha: str | None = tip
    while sha and len(out) < limit and git.has_object(sha):
        commit = git.read_commit(sha)
        if trailer not in commit.message:
            break
        out.append(sha)
        sha = commit.parents[0] if commit.parents else None
    return out
