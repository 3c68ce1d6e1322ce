"""Moving one readable run into the trash and back: the ref moves under `gitxp rm` and
`gitxp rm --undo` (`gitxp.ops.manage`), also used by the MLflow plugin's delete/restore.

Removing writes a removal commit (run.json gains `removed`) on the run's
tip, points `refs/gitxp/trash/<id>` at it, and only then deletes the run
ref; restoring is the mirror image. A process killed in between leaves the
run under both refs, which `gitxp rm`, `rm --undo` and `gitxp gc` finish
(docs/format.md, "`gitxp rm` and `rm --undo` converge").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import GitxpError
from ..format.refs import RUNS_PREFIX, TRASH_PREFIX
from ..format.status import now_ms
from ..git.maintenance import remove_reflog
from ..git.refs import delete_ref, read_ref, update_ref
from .edit import RunState, edit_run

if TYPE_CHECKING:
    from ..git.repository import GitRepo


def trash_run(git: GitRepo, ref: str, tip: str, who: str) -> str:
    """Move the run at *ref* (expected at *tip*) to the trash; return the removal commit."""
    run_id = ref.rsplit("/", 1)[-1]
    stamp: dict[str, Any] = {"time": now_ms(), "by": who}

    def change(state: RunState) -> None:
        state.meta["removed"] = stamp

    commit = edit_run(git, ref, tip, "remove (to the trash)", change, move_ref=False)
    trash_ref = TRASH_PREFIX + run_id
    update_ref(git, trash_ref, read_ref(git, trash_ref), commit, "gitxp: rm")
    try:
        delete_ref(git, ref, tip)
    except GitxpError:
        delete_ref(git, trash_ref, commit)  # the run changed meanwhile: keep it
        raise
    remove_reflog(git, ref)
    return commit


def untrash_run(git: GitRepo, trash_ref: str, tip: str) -> str:
    """Move the run in the trash at *trash_ref* (expected at *tip*) back; return the commit."""

    def change(state: RunState) -> None:
        state.meta.pop("removed", None)

    commit = edit_run(git, trash_ref, tip, "restore from the trash", change, move_ref=False)
    update_ref(git, RUNS_PREFIX + trash_ref.rsplit("/", 1)[-1], None, commit, "gitxp: restore")
    delete_ref(git, trash_ref, tip)
    remove_reflog(git, trash_ref)
    return commit
